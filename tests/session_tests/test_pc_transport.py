"""asyncio TCP/TLS transports: V2GTP echo over loopback, ISO 15118-2 TLS 1.2 (-20 mutual TLS 1.3: test_pc_tls20.py)."""
from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from _pc_testcerts import Chain, make_chain
from plugcharge.net.sdp import loopback_host
from plugcharge.net.tls import TLSConfigError, client_context, server_context
from plugcharge.net.transport import DYNAMIC_PORTS, TransportClosed, V2GTPStream, open_ev_connection, start_charger_server
from plugcharge.core.v2gtp import ErrorKind, PayloadType, V2GTPError

HOST = loopback_host()


@pytest.fixture(scope="module")
def secc() -> Chain:
    return make_chain("SECC-DE*ABC*E1", "CPO")


async def echo(stream: V2GTPStream) -> None:
    while True:
        try:
            ptype, payload = await stream.read_frame(timeout=5)
        except TransportClosed:
            return
        await stream.write_frame(ptype, payload[::-1])


def run(coro_fn: Callable[[], Awaitable[object]]) -> object:
    return asyncio.run(asyncio.wait_for(coro_fn(), 20))


def test_tcp_echo_many_frames() -> None:
    async def main() -> list[tuple[int, bytes]]:
        async with await start_charger_server(echo, HOST, 0) as server:
            async with await open_ev_connection(HOST, server.port) as ev:
                assert not ev.tls and ev.tls_version is None
                out = []
                for i in range(20):
                    await ev.write_frame(PayloadType.EXI, bytes(range(i)))
                    out.append(tuple(await ev.read_frame(timeout=2)))
                return out

    out = run(main)
    assert out == [(0x8001, bytes(range(i))[::-1]) for i in range(20)]


def test_port_zero_picks_a_dynamic_port_and_an_explicit_port_is_kept() -> None:
    async def main() -> tuple[list[int], int]:
        picked = []
        for _ in range(8):  # the kernel's own choice would often lie below 49152
            async with await start_charger_server(echo, HOST, 0) as server:
                picked.append(server.port)
        async with await start_charger_server(echo, HOST, 0) as first:
            # an explicit port is used as given; taken -> OSError, not another port
            with pytest.raises(OSError):
                await start_charger_server(echo, HOST, first.port)
            return picked, first.port

    picked, port = run(main)
    assert all(p in DYNAMIC_PORTS for p in picked) and port in DYNAMIC_PORTS
    assert DYNAMIC_PORTS == range(49152, 65536)


def test_tls12_iso2_suite_and_chain(secc: Chain) -> None:
    sctx = server_context(secc.tls_chain, secc.leaf.key_pem)
    cctx = client_context([secc.root.der])

    async def main() -> tuple:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            seen = []
            async with await open_ev_connection(HOST, server.port, ssl_context=cctx, verify_peer=seen.append) as ev:
                await ev.write_frame(PayloadType.EXI, b"\x80\x98\x02\x10")
                frame = await ev.read_frame(timeout=2)
                return ev.tls_version, ev.cipher, frame, seen

    version, cipher, frame, seen = run(main)
    assert version == "TLSv1.2"
    assert cipher == "ECDHE-ECDSA-AES128-SHA256"
    assert tuple(frame) == (0x8001, b"\x10\x02\x98\x80")
    assert seen == [secc.leaf.der]


def test_tls12_gcm_only_when_allowed(secc: Chain) -> None:
    sctx = server_context(secc.tls_chain, secc.leaf.key, allow_gcm=True)
    cctx = client_context([secc.root.der], allow_gcm=True)

    async def main() -> str | None:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            async with await open_ev_connection(HOST, server.port, ssl_context=cctx) as ev:
                return ev.cipher

    assert run(main) in {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256"}


def test_untrusted_secc_is_refused(secc: Chain) -> None:
    other = make_chain("x", "CPO")
    sctx = server_context(secc.tls_chain, secc.leaf.key_pem)
    cctx = client_context([other.root.der])

    async def main() -> None:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            with pytest.raises(ssl.SSLCertVerificationError):
                await open_ev_connection(HOST, server.port, ssl_context=cctx)

    run(main)


def test_missing_sub_ca_is_refused(secc: Chain) -> None:
    sctx = server_context([secc.leaf.der], secc.leaf.key_pem)  # SECC forgets its Sub-CAs
    cctx = client_context([secc.root.der])

    async def main() -> None:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            with pytest.raises(ssl.SSLError):
                await open_ev_connection(HOST, server.port, ssl_context=cctx)

    run(main)


def test_verify_peer_can_refuse(secc: Chain) -> None:
    sctx = server_context(secc.tls_chain, secc.leaf.key_pem)
    cctx = client_context([secc.root.der])

    def needs_dc_v2g(der: bytes) -> None:
        dcs = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)
        if [a.value for a in dcs] != ["V2G"]:
            raise PermissionError("SECC leaf lacks the expected DC")

    async def main() -> None:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            with pytest.raises(PermissionError):
                await open_ev_connection(HOST, server.port, ssl_context=cctx, verify_peer=needs_dc_v2g)

    run(main)


def test_read_timeout_keeps_partial_frame_and_split_delivery() -> None:
    got: list = []

    async def handler(stream: V2GTPStream) -> None:
        with pytest.raises(TimeoutError):
            await stream.read_frame(timeout=0.05)  # only half a frame so far
        got.append(tuple(await stream.read_frame(timeout=2)))
        got.append(tuple(await stream.read_frame(timeout=2)))

    async def main() -> None:
        async with await start_charger_server(handler, HOST, 0) as server:
            reader, writer = await asyncio.open_connection(HOST, server.port)
            data = bytes.fromhex("01fe8001000000050102030405") + bytes.fromhex("01fe900100000001ff")
            writer.write(data[:6])
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(data[6:])
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            await writer.wait_closed()

    run(main)
    assert got == [(0x8001, b"\x01\x02\x03\x04\x05"), (0x9001, b"\xff")]


def test_bad_header_and_close_inside_frame() -> None:
    errors: list = []

    async def handler(stream: V2GTPStream) -> None:
        try:
            await stream.read_frame(timeout=2)
        except (V2GTPError, TransportClosed) as exc:
            errors.append(exc)

    async def send(raw: bytes) -> None:
        async with await start_charger_server(handler, HOST, 0) as server:
            _, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(raw)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.1)

    asyncio.run(send(bytes.fromhex("02fd800100000000")))
    asyncio.run(send(bytes.fromhex("01fe80010000000501")))
    asyncio.run(send(b""))
    assert [type(e) for e in errors] == [V2GTPError, V2GTPError, TransportClosed]
    assert errors[0].kind is ErrorKind.BAD_VERSION and errors[1].kind is ErrorKind.TRUNCATED


def test_unknown_payload_type_is_discarded() -> None:
    got: list = []

    async def handler(stream: V2GTPStream) -> None:
        got.append(tuple(await stream.read_frame(timeout=2)))
        got.append(stream.discarded)

    async def main() -> None:
        async with await start_charger_server(handler, HOST, 0) as server:
            _, writer = await asyncio.open_connection(HOST, server.port)
            writer.write(bytes.fromhex("01fe7777000000021234") + bytes.fromhex("01fe80010000000142"))
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            await writer.wait_closed()

    run(main)
    assert got == [(0x8001, b"\x42"), 1]


def test_handler_exception_is_contained() -> None:
    async def bad(stream: V2GTPStream) -> None:
        raise RuntimeError("boom")

    async def main() -> int:
        async with await start_charger_server(bad, HOST, 0) as server:
            ev = await open_ev_connection(HOST, server.port)
            with pytest.raises((TransportClosed, ConnectionError)):
                await ev.read_frame(timeout=2)
            await ev.aclose()
            return server.handler_errors

    assert run(main) == 1


def test_tls_config_errors_are_typed(secc: Chain) -> None:
    with pytest.raises(TLSConfigError):
        server_context([b"not a certificate"], secc.leaf.key_pem)
    with pytest.raises(TLSConfigError) as ei:
        server_context(secc.tls_chain, b"garbage key")
    assert "garbage" not in str(ei.value)
    other = make_chain("o", "CPO")
    with pytest.raises(TLSConfigError):
        server_context(secc.tls_chain, other.leaf.key_pem)  # key does not match the leaf
    with pytest.raises(TLSConfigError):
        client_context([])
    with pytest.raises(ValueError):
        client_context([secc.root.der], iso=3)


def test_tls12_with_the_pki_test_pki() -> None:
    """The SECC chain of ``pki.issue`` (what the demo uses) works with OpenSSL's TLS 1.2."""
    issue = pytest.importorskip("pki.issue")
    import datetime as dt

    from plugcharge.net.tls import secc_leaf_check

    test_pki = issue.issue_test_pki(2, seed=3, now=dt.datetime.now(dt.timezone.utc))
    secc = test_pki.chain("iso2-secc")
    sctx = server_context([secc.leaf, *secc.intermediates], test_pki.key("secc-leaf"))
    cctx = client_context([test_pki.cert("v2g-root")])

    async def main() -> tuple:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            async with await open_ev_connection(HOST, server.port, ssl_context=cctx, verify_peer=secc_leaf_check) as ev:
                await ev.write_frame(PayloadType.EXI, b"\x01\x02")
                return ev.cipher, tuple(await ev.read_frame(timeout=2))

    cipher, frame = run(main)
    assert cipher == "ECDHE-ECDSA-AES128-SHA256" and frame == (0x8001, b"\x02\x01")
    # the CPS leaf chains to the same V2G root but is no SECC certificate: refused by the check
    with pytest.raises(ssl.SSLError):
        secc_leaf_check(test_pki.cert("cps-leaf"))


def test_secc_leaf_check_rules(secc: Chain) -> None:
    from plugcharge.net.tls import secc_leaf_check

    secc_leaf_check(secc.leaf.der)  # DC=CPO, digitalSignature+keyAgreement, not a CA
    with pytest.raises(ssl.SSLError, match="DC=CPO"):
        secc_leaf_check(make_chain("x", "MO").leaf.der)
    with pytest.raises(ssl.SSLError, match="CA"):
        secc_leaf_check(secc.sub2.der)
    with pytest.raises(ssl.SSLError):
        secc_leaf_check(b"junk")


# ------------------------------------------------------------------------------------------
# end to end: SDP → TLS → V2GTP → sans-IO sessions → simulated backend → wallet
# ------------------------------------------------------------------------------------------
class _World:
    """PKI, simulated backend, EV wallet and TLS contexts for the end-to-end tests."""

    def __init__(self, tmp_path: Path) -> None:
        issue = pytest.importorskip("pki.issue")
        pytest.importorskip("exi")
        import datetime as dt

        from plugcharge.backends.simulated import SimulatedBackend
        from plugcharge.pnc.wallet import ContractWallet

        self.pki = issue.issue_test_pki(2, seed=11, now=dt.datetime.now(dt.timezone.utc))
        self.backend = SimulatedBackend(self.pki, codecs=_codecs())
        self.backend.register_pcid(self.pki.pcid, self.pki.emaid)
        self.wallet = ContractWallet(tmp_path / "wallet")
        oem = self.pki.chain("iso2-oem-provisioning")
        self.wallet.set_oem_provisioning(oem.leaf, oem.intermediates, self.pki.key("oem-provisioning-leaf"))
        self.wallet.set_enabled(True)
        secc = self.pki.chain("iso2-secc")
        self.sctx = server_context([secc.leaf, *secc.intermediates], self.pki.key("secc-leaf"))
        self.cctx = client_context([self.pki.cert("v2g-root")])
        self.operator: list = []

    def plug_in(self, **ev_config: Any) -> list:
        """One plug-in: SDP discovery, TLS connection, one V2G session; returns the EV's events."""
        from pki.store import TrustStore
        from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession
        from plugcharge import EVConfig, EVSecurity, EVSession
        from plugcharge.net.sdp import discover_secc, make_responder, start_sdp_server
        from plugcharge.net.tls import secc_leaf_check

        from plugcharge.net.runner import run_charger, run_ev

        codecs = _codecs()

        async def charger(stream: V2GTPStream) -> None:
            assert stream.tls_version == "TLSv1.2"
            session = ChargerSession(ChargerConfig(protocols=("iso2",)),
                                     security=ChargerSecurity(trust_store=TrustStore(self.pki.store_roots())),
                                     codecs=codecs, now=asyncio.get_running_loop().time())
            await run_charger(stream, session, self.backend, on_event=self.operator.append)

        async def drive() -> list:
            async with await start_charger_server(charger, HOST, 0, ssl_context=self.sctx) as server:
                sdp = await start_sdp_server(make_responder(HOST, tls_port=server.port), loopback=True, port=0)
                async with sdp:
                    found = await discover_secc(loopback=True, port=sdp.port, timeout=0.5, max_requests=4)
                stream = await open_ev_connection(found.host, found.port, ssl_context=self.cctx,
                                                  verify_peer=secc_leaf_check)
                session = EVSession(EVConfig(charge_loops=3, poll_interval=0.05, protocols=("iso2",), **ev_config),
                                    security=EVSecurity(wallet=self.wallet, v2g_roots=[self.pki.cert("v2g-root")]),
                                    codecs=codecs)
                driver = await run_ev(stream, session)
                await asyncio.sleep(0.05)
            return driver

        return run(drive)  # type: ignore[return-value]


def _codecs() -> Any:
    from _pc_testcerts import FragmentFallbackCodec

    return FragmentFallbackCodec


def _kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def _end(events: list) -> Any:
    from plugcharge.core.events import SessionEnded

    return [e for e in events if isinstance(e, SessionEnded)][-1]


def test_end_to_end_plug_and_charge_over_sdp_and_tls(tmp_path: Path) -> None:
    from plugcharge.core.events import CertificateInstallationNeeded

    w = _World(tmp_path)
    first = w.plug_in()
    kinds = _kinds(first)
    assert "ContractInstallationStarted" in kinds and "ContractInstallationSucceeded" in kinds, kinds
    assert "AuthorizationAccepted" in kinds and "ChargingStarted" in kinds
    assert _end(first).reason == "finished"
    [info] = w.wallet.contracts()
    assert info.emaid == w.pki.emaid
    assert any(isinstance(e, CertificateInstallationNeeded) for e in w.operator)
    # second plug-in: the installed contract is reused, nothing is installed
    w.operator.clear()
    second = w.plug_in()
    kinds2 = _kinds(second)
    assert "ContractInstallationStarted" not in kinds2 and "AuthorizationAccepted" in kinds2, kinds2
    assert _end(second).reason == "finished" and len(w.wallet.contracts()) == 1
    assert not any(isinstance(e, CertificateInstallationNeeded) for e in w.operator)


def test_end_to_end_failed_installation_falls_back_and_replug_retries(tmp_path: Path) -> None:
    w = _World(tmp_path)
    w.backend.fail_installations = "CPS unreachable"
    first = w.plug_in()
    assert "ContractInstallationFailed" in _kinds(first)
    end = _end(first)
    assert end.reason == "failed" and end.fallback == "ExternalPayment"
    # the car retries at once without Plug & Charge: ExternalPayment, charging works
    fallback = w.plug_in(pnc_suppressed=True)
    assert "ChargingStarted" in _kinds(fallback) and _end(fallback).reason == "finished"
    assert w.wallet.contracts() == []
    # the backend is back: re-plugging retries the installation and it succeeds
    w.backend.fail_installations = None
    again = w.plug_in()
    assert "ContractInstallationSucceeded" in _kinds(again) and _end(again).reason == "finished"
    assert len(w.wallet.contracts()) == 1


def test_end_to_end_plug_and_charge_switched_off_uses_external_payment(tmp_path: Path) -> None:
    from plugcharge.core.events import PaymentSelected

    w = _World(tmp_path)
    w.wallet.set_enabled(False)
    events = w.plug_in()
    assert [e.option for e in events if isinstance(e, PaymentSelected)] == ["ExternalPayment"]
    assert "ContractInstallationStarted" not in _kinds(events) and _end(events).reason == "finished"


def test_end_to_end_revoked_contract_is_refused(tmp_path: Path) -> None:
    w = _World(tmp_path)
    assert _end(w.plug_in()).reason == "finished" and len(w.wallet.contracts()) == 1
    w.backend.revoke(w.pki.emaid)
    events = w.plug_in()
    assert "AuthorizationAccepted" not in _kinds(events) and "ChargingStarted" not in _kinds(events), _kinds(events)
    end = _end(events)
    assert end.reason == "failed" and end.fallback == "ExternalPayment"
