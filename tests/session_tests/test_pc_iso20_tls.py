"""ISO 15118-20 over real loopback sockets with TLS 1.3, and the charger's choice between its -2 and
-20 certificates by the EV's ClientHello (one port for both)."""
from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache

import pytest
from cryptography import x509

import exi
from pki.issue import issue_test_pki
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.core.events import ProtocolAgreed, SessionEnded
from plugcharge.net.runner import run_charger, run_ev
from plugcharge.net.sdp import loopback_host
from plugcharge.net.tls import client_context
from plugcharge.net.tls import V2GSSLObject, handshake_failures
from plugcharge.net.tlsselect import (
    ClientHello, DualServerContext, parse_client_hello, protocols_for_tls_version, wants_iso20,
)
from plugcharge.net.transport import open_ev_connection, start_charger_server

HOST = loopback_host()


@lru_cache(maxsize=None)
def pkis():
    return issue_test_pki(2, seed=2), issue_test_pki(20, seed=20)


def chain(p):
    return [p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1")], p.key("secc-leaf")


def client_hello(ctx: ssl.SSLContext) -> bytes:
    """The ClientHello handshake message ``ctx`` sends (through memory BIOs, no socket)."""
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_side=False)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    record = out.read()
    assert record[0] == 22  # handshake record
    return record[5:5 + int.from_bytes(record[3:5], "big")]


def test_client_hellos_tell_the_editions_apart():
    p2, p20 = pkis()
    h20 = parse_client_hello(client_hello(client_context([p20.cert("v2g-root")], iso=20)))
    h2 = parse_client_hello(client_hello(client_context([p2.cert("v2g-root")], iso=2)))
    assert 0x0304 in h20.versions and 0x0603 in h20.signature_algorithms and wants_iso20(h20)
    assert 0x0304 not in h2.versions and not wants_iso20(h2)
    # TLS 1.3 without a -20 signature algorithm (e.g. a -2 EV on a modern stack) is not -20
    assert not wants_iso20(ClientHello((0x0304, 0x0303), (0x0403, 0x0804)))
    assert wants_iso20(ClientHello((0x0304,), (0x0808,)))  # Ed448
    for bad in (b"", b"\x02\x00\x00\x00", client_hello(client_context([p20.cert("v2g-root")], iso=20))[:50]):
        with pytest.raises(ValueError):
            parse_client_hello(bad)


def test_protocols_per_tls_version():
    assert protocols_for_tls_version("TLSv1.3") == ("iso20",)
    assert protocols_for_tls_version("TLSv1.2") == ("iso2",)
    assert protocols_for_tls_version(None) == ("iso2", "din")


async def _serve_and_connect(dual: DualServerContext, roots: list[bytes], iso: int, *, session: bool = False,
                             ev_config: EVConfig | None = None, client_chain=None, client_key=None):
    results: asyncio.Queue = asyncio.Queue()

    async def handler(stream):
        info = (stream.tls_version, stream.cipher, len(stream.peer_chain or ()))
        events: list = []
        if session:
            ch = ChargerSession(ChargerConfig(protocols=protocols_for_tls_version(stream.tls_version)),
                                codecs=exi.get_codec, security=ChargerSecurity())
            events = await run_charger(stream, ch, None)
        else:
            await stream.read_frame(timeout=2.0)
        results.put_nowait((info, events))

    async with await start_charger_server(handler, HOST, 0, ssl_context=dual.context) as server:
        stream = await open_ev_connection(HOST, server.port, ssl_context=client_context(
            roots, iso=iso, client_chain=client_chain, client_key=client_key))
        leaf = x509.load_der_x509_certificate(stream.peer_certificate or b"")
        client = (stream.tls_version, stream.cipher, leaf.public_key().curve.name)
        ev_events: list = []
        if session:
            ev = EVSession(ev_config or EVConfig(charge_loops=2, tls=True), codecs=exi.get_codec,
                           security=EVSecurity())
            ev_events = await run_ev(stream, ev)
        else:
            await stream.write_frame(0x8001, b"\x80")
            await stream.aclose()
        server_info, charger_events = await asyncio.wait_for(results.get(), 20)
    return client, server_info, ev_events, charger_events


def test_one_port_presents_the_certificate_of_each_edition():
    p2, p20 = pkis()
    dual = DualServerContext(iso2=chain(p2), iso20=chain(p20))

    async def both():
        c20 = await _serve_and_connect(dual, [p20.cert("v2g-root")], 20)
        c2 = await _serve_and_connect(dual, [p2.cert("v2g-root")], 2)
        return c20, c2
    c20, c2 = asyncio.run(asyncio.wait_for(both(), 60))
    assert c20[0] == ("TLSv1.3", "TLS_AES_256_GCM_SHA384", "secp521r1")
    assert c20[1] == ("TLSv1.3", "TLS_AES_256_GCM_SHA384", 0)
    assert c2[0] == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256", "secp256r1")
    assert dual.selected == {"iso2": 1, "iso20": 1}
    assert dual.context.sslobject_class is V2GSSLObject  # the -20 context's checks run after the switch


def test_mutual_tls_for_iso20_on_the_shared_port():
    """With the OEM roots the -20 connection must present the vehicle chain (checked under the -20
    vehicle profile); a -2 EV on the same port still connects without a certificate."""
    p2, p20 = pkis()
    dual = DualServerContext(iso2=chain(p2), iso20=chain(p20), iso20_client_roots=[p20.cert("oem-root")])
    vehicle = [p20.cert("vehicle-leaf"), p20.cert("oem-sub2"), p20.cert("oem-sub1")]

    async def go():
        ok = await _serve_and_connect(dual, [p20.cert("v2g-root")], 20, client_chain=vehicle,
                                      client_key=p20.key("vehicle-leaf"))
        old = await _serve_and_connect(dual, [p2.cert("v2g-root")], 2)
        return ok, old
    ok, old = asyncio.run(asyncio.wait_for(go(), 60))
    assert ok[1] == ("TLSv1.3", "TLS_AES_256_GCM_SHA384", 3)  # the SECC got the vehicle chain
    assert old[0][0] == "TLSv1.2"

    async def anonymous():
        await _serve_and_connect(dual, [p20.cert("v2g-root")], 20)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, asyncio.TimeoutError)):
        asyncio.run(asyncio.wait_for(anonymous(), 10))
    assert handshake_failures(dual.iso20)  # the -20 context recorded why


def test_iso20_only_charger_refuses_a_tls12_ev():
    p2, p20 = pkis()
    dual = DualServerContext(iso20=chain(p20))

    async def go():
        await _serve_and_connect(dual, [p2.cert("v2g-root")], 2)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        asyncio.run(asyncio.wait_for(go(), 30))


def test_ev_refuses_a_charger_outside_its_roots():
    p2, p20 = pkis()
    other = issue_test_pki(20, seed=99)
    dual = DualServerContext(iso2=chain(p2), iso20=chain(other))

    async def go():
        await _serve_and_connect(dual, [p20.cert("v2g-root")], 20)
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        asyncio.run(asyncio.wait_for(go(), 30))


@pytest.mark.parametrize("mode,bpt", [("DC_extended", False), ("AC_three_phase_core", True)])
def test_iso20_session_over_tls13(mode, bpt):
    p2, p20 = pkis()
    dual = DualServerContext(iso2=chain(p2), iso20=chain(p20))
    cfg = EVConfig(charge_loops=3, tls=True, energy_mode=mode, bpt=bpt, discharge_loops=1, poll_interval=0.05)
    client, server_info, ev_events, charger_events = asyncio.run(asyncio.wait_for(
        _serve_and_connect(dual, [p20.cert("v2g-root")], 20, session=True, ev_config=cfg), 60))
    assert client[0] == "TLSv1.3" and server_info[0] == "TLSv1.3"
    kind = "AC" if mode.startswith("AC") else "DC"
    assert [e.name for e in ev_events if isinstance(e, ProtocolAgreed)] == [f"ISO 15118-20 {kind}"]
    assert ev_events[-1] == SessionEnded("finished") and charger_events[-1].reason == "finished"


def test_iso2_session_on_the_same_port_over_tls12():
    p2, p20 = pkis()
    dual = DualServerContext(iso2=chain(p2), iso20=chain(p20))
    cfg = EVConfig(charge_loops=2, tls=True, pnc_suppressed=True)  # offers -20 first, but the charger is on -2
    client, server_info, ev_events, charger_events = asyncio.run(asyncio.wait_for(
        _serve_and_connect(dual, [p2.cert("v2g-root")], 2, session=True, ev_config=cfg), 60))
    assert client[0] == "TLSv1.2"
    assert [e.name for e in ev_events if isinstance(e, ProtocolAgreed)] == ["ISO 15118-2"]
    assert ev_events[-1].reason == "finished"
