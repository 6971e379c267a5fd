"""DIN SPEC 70121 over real loopback sockets: SDP (the EV asks for no TLS, or for TLS where the
charger has only plain TCP), a complete DC session over TCP through the async runner with the
simulated backend identifying an RFID card, and the hostile probes from a raw TCP client (bad V2GTP
header, a request out of order, a wrong SessionID, garbage EXI): each gets its FAILED answer where
one request is expected, then the charger closes the connection.  Bounded in time."""
from __future__ import annotations

import asyncio

import pytest

from _din_fixtures import cp  # noqa: F401 (a fixture)
from _din_fixtures import din_charger, din_ev, din_frame, requests, sap_frame
from _pc_fixtures import NOW, first, kinds, session_pki
from plugcharge.backends.simulated import SimulatedBackend
from plugcharge.core.codec import NS_APP, NS_DIN, body_of
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, ChargingStarted, PaymentSelected, ProtocolAgreed, ProtocolError,
    SessionEnded,
)
from plugcharge.net.runner import run_charger, run_ev
from plugcharge.net.sdp import SDPRequest, Security, discover_secc, loopback_host, make_responder, start_sdp_server
from plugcharge.net.transport import open_ev_connection, start_charger_server
from plugcharge.sessions import default_registry

HOST = loopback_host()




def go(coro, limit: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, limit))


def _backend(cp) -> SimulatedBackend:
    be = SimulatedBackend(session_pki(), clock=lambda: NOW, codecs=cp)
    be.register_id_token("RFID-70121")
    return be


def test_the_charger_listens_where_its_protocols_can_run():
    reg = default_registry()
    assert reg.transports(("din",), "charger") == {False}
    assert reg.transports(("iso2", "din"), "charger") == {True, False}
    assert reg.transports(("iso2", "din"), "ev") == {True, False}


@pytest.mark.parametrize("asked", [Security.NO_TLS, Security.TLS])
def test_din_session_over_sdp_and_tcp(cp, asked):
    """A DIN-only charger listens on TCP only: the EV is answered NO_TLS whatever it asked for, connects
    over plain TCP, offers what fits (ISO-2 and DIN) and charges with DIN, identified by RFID."""
    async def main():
        done: asyncio.Future = asyncio.get_running_loop().create_future()

        async def handler(stream):
            ch = din_charger(cp, now=None, energy_modes=("DC_extended",))
            done.set_result(await run_charger(stream, ch, _backend(cp), id_token="RFID-70121"))

        server = await start_charger_server(handler, HOST, 0)
        sdp = await start_sdp_server(make_responder(HOST, tcp_port=server.port), loopback=True, host=HOST, port=0)
        try:
            async with server:
                resp = await discover_secc(SDPRequest(security=asked), loopback=True, host=HOST, port=sdp.port,
                                           timeout=0.25, max_requests=8)
                assert (resp.security, resp.port) == (Security.NO_TLS, server.port)
                stream = await open_ev_connection(resp.host, resp.port)
                assert not stream.tls
                ev = din_ev(cp, protocols=("iso2", "din"), tls=False, charge_loops=3, poll_interval=0.05)
                ev_events = await run_ev(stream, ev)
                return ev_events, await asyncio.wait_for(done, 10)
        finally:
            sdp.close()

    ev_events, charger_events = go(main())
    assert first(ev_events, ProtocolAgreed).name == "DIN SPEC 70121"
    assert first(ev_events, PaymentSelected).reason == "protocol_without_plug_and_charge"
    assert first(charger_events, AuthorizationNeeded).payment == "ExternalPayment"
    assert first(ev_events, AuthorizationAccepted) and first(charger_events, ChargingStarted)
    assert kinds(ev_events).count("MeterValues") == 3
    assert ev_events[-1].reason == charger_events[-1].reason == "finished"


# ------------------------------------------------------------ hostile probes from a raw client
async def _read_answers(cp, reader, *, until_closed: bool) -> list:
    out = []
    while True:
        try:
            header = await asyncio.wait_for(reader.readexactly(8), 5 if until_closed else 0.5)
        except asyncio.TimeoutError:
            assert not until_closed, "the charger did not close the connection"
            return out
        except asyncio.IncompleteReadError as exc:
            assert exc.partial == b""
            return out
        payload = await reader.readexactly(int.from_bytes(header[4:], "big"))
        try:
            out.append(body_of(cp(NS_DIN).decode(payload))[:2])
        except ValueError:
            out.append(("supportedAppProtocolRes", cp(NS_APP).decode(payload)["supportedAppProtocolRes"]))
        if not until_closed:
            return out


@pytest.mark.parametrize("probe, answer, code", [
    ("bad_header", None, None),
    ("out_of_order", "PowerDeliveryRes", "FAILED_SequenceError"),
    ("wrong_session", "ServiceDiscoveryRes", "FAILED_UnknownSession"),
    ("garbage_exi", "ServiceDiscoveryRes", "FAILED"),
])
def test_hostile_probes_over_tcp(cp, probe, answer, code):
    state: dict = {}

    async def main():
        done: asyncio.Future = asyncio.get_running_loop().create_future()

        async def handler(stream):
            ch = din_charger(cp, now=None)
            state["charger"] = ch
            done.set_result(await run_charger(stream, ch, None))

        async with await start_charger_server(handler, HOST, 0) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            got: list = []
            try:
                writer.write(sap_frame(cp))
                await writer.drain()
                got += await _read_answers(cp, reader, until_closed=False)
                writer.write(din_frame(cp, bytes(8), "SessionSetupReq", {"EVCCID": bytes(6)}))
                await writer.drain()
                got += await _read_answers(cp, reader, until_closed=False)
                sid = state["charger"].session_id
                probe_bytes = {
                    "bad_header": bytes.fromhex("02fd800100000004deadbeef"),
                    "out_of_order": din_frame(cp, sid, "PowerDeliveryReq", requests()["PowerDeliveryReq"]),
                    "wrong_session": din_frame(cp, b"\x0b" * 8, "ServiceDiscoveryReq", {}),
                    "garbage_exi": bytes.fromhex("01fe800100000006") + b"\x80\xff\x13\x37\x00\x42",
                }[probe]
                writer.write(probe_bytes)
                await writer.drain()
                got += await _read_answers(cp, reader, until_closed=True)  # ... then the charger closes
            finally:
                writer.close()
            return got, await asyncio.wait_for(done, 10)

    answers, events = go(main())
    assert [n for n, _ in answers[:2]] == ["supportedAppProtocolRes", "SessionSetupRes"]
    if answer is None:
        assert len(answers) == 2
    else:
        assert [(n, b["ResponseCode"]) for n, b in answers[2:]] == [(answer, code)]
    assert isinstance(events[-1], SessionEnded) and events[-1].reason in ("failed", "protocol_error")
    assert any(isinstance(e, ProtocolError) for e in events)


def test_our_ev_survives_a_hostile_charger_over_tcp(cp):
    """A rogue charger answers the handshake, then sends garbage EXI, then a bad header: our EV ends
    with a protocol error and closes; nothing hangs."""
    from plugcharge.core.codec import frame
    from plugcharge.core.handshake import sap_res

    async def main():
        async def rogue(stream):
            await stream.read_frame(timeout=5)
            await stream.write_raw(frame(cp(NS_APP).encode(sap_res("OK_SuccessfulNegotiation", 2))))
            await stream.read_frame(timeout=5)  # SessionSetupReq
            await stream.write_raw(bytes.fromhex("01fe800100000004") + b"\x80\x00\xff\xff")
            await stream.write_raw(bytes.fromhex("09f68001000000"))
            try:
                await stream.read_frame(timeout=5)
            except Exception:
                pass

        async with await start_charger_server(rogue, HOST, 0) as server:
            stream = await open_ev_connection(HOST, server.port)
            return await run_ev(stream, din_ev(cp, protocols=("iso2", "din"), tls=False))

    events = go(main())
    assert first(events, ProtocolAgreed).protocol == "din"
    assert isinstance(events[-1], SessionEnded) and events[-1].reason == "protocol_error"


@pytest.mark.parametrize("asked", [Security.NO_TLS, Security.TLS])
def test_a_charger_speaking_iso2_and_din_answers_the_security_asked_for(tmp_path, cp, asked):
    """The charger listens on TLS (ISO-2 Plug & Charge) and on TCP (DIN, ISO-2 without TLS) and its SDP
    server answers what the EV asks for: a DIN-only EV asking for no TLS charges with DIN over TCP, an
    EV with a contract asking for TLS charges with ISO-2 Plug & Charge over TLS."""
    import dataclasses

    from _pc_fixtures import make_wallet, trust_store, v2g_roots
    from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
    from plugcharge.net.tls import client_context, secc_leaf_check, server_context

    p = session_pki()
    config = ChargerConfig(protocols=("iso2", "din"), energy_modes=("DC_extended",))
    assert default_registry().transports(config.protocols, "charger") == {True, False}

    async def main():
        done: asyncio.Queue = asyncio.Queue()

        async def handler(stream):
            ch = ChargerSession(dataclasses.replace(config, tls=stream.tls), codecs=cp,
                                security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW))
            done.put_nowait(await run_charger(stream, ch, backend, id_token="RFID-70121"))

        backend = _backend(cp)
        backend.register_pcid(p.pcid, p.emaid)  # the eMSP of the wallet's contract
        sctx = server_context([p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1")], p.key("secc-leaf"))
        tls_server = await start_charger_server(handler, HOST, 0, ssl_context=sctx)
        tcp_server = await start_charger_server(handler, HOST, 0)
        sdp = await start_sdp_server(make_responder(HOST, tls_port=tls_server.port, tcp_port=tcp_server.port),
                                     loopback=True, host=HOST, port=0)
        try:
            async with tls_server, tcp_server:
                resp = await discover_secc(SDPRequest(security=asked), loopback=True, host=HOST, port=sdp.port,
                                           timeout=0.25, max_requests=8)
                tls = resp.security is Security.TLS
                assert resp.security is asked and resp.port == (tls_server.port if tls else tcp_server.port)
                stream = await open_ev_connection(resp.host, resp.port,
                                                  ssl_context=client_context(list(v2g_roots())) if tls else None,
                                                  verify_peer=secc_leaf_check if tls else None)
                if tls:
                    ev = EVSession(EVConfig(tls=True, charge_loops=1), codecs=cp, security=EVSecurity(
                        wallet=make_wallet(tmp_path / "w", contract=True), v2g_roots=v2g_roots(),
                        wall_clock=lambda: NOW))
                else:
                    ev = din_ev(cp, protocols=("din",), tls=False, charge_loops=1, poll_interval=0.05)
                ev_events = await run_ev(stream, ev)
                return ev_events, await asyncio.wait_for(done.get(), 10)
        finally:
            sdp.close()

    ev_events, charger_events = go(main())
    agreed = first(ev_events, ProtocolAgreed)
    payment = first(ev_events, PaymentSelected)
    if asked is Security.TLS:
        assert (agreed.protocol, payment.option) == ("iso2", "Contract")
    else:
        assert (agreed.protocol, payment.option) == ("din", "ExternalPayment")
    assert (ev_events[-1].reason, charger_events[-1].reason) == ("finished", "finished"), (ev_events, charger_events)
