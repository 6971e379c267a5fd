"""ISO 15118-20 TLS 1.3 with mutual authentication over loopback sockets: the SECC requests and checks
the vehicle chain (OpenSSL to the OEM root, then pki's -20 vehicle profile [V2G20-2430..2432]), the EV
presents it without the root and checks the SECC chain (-20 SECC profile); the -20 suites, one group
per context, no session tickets.  The ``openssl`` command-line tool is an independent peer where a
Python peer cannot do it (a suite or group Python cannot choose, what the server offers)."""
from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from pki.errors import CertificateRevokedError
from pki.issue import TestPKI, issue_leaf, issue_test_pki, issue_vehicle, private_key_pem
from plugcharge.core.v2gtp import PayloadType
from plugcharge.net.sdp import loopback_host
from plugcharge.net.tls import (
    ISO20_CIPHERSUITES, TLSConfigError, TLSPeerError, client_context, handshake_failures, server_context,
    to_pem_chain, vehicle_chain_check,
)
from plugcharge.net.transport import TransportClosed, V2GTPStream, open_ev_connection, start_charger_server

HOST = loopback_host()
#: the handshake checks validity against the real clock
NOW = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
OPENSSL = shutil.which("openssl")


@lru_cache(maxsize=None)
def pki(algorithm: str = "secp521r1", seed: int = 20) -> TestPKI:
    return issue_test_pki(20, seed=seed, now=NOW, algorithm=algorithm)


def secc_side(p: TestPKI) -> tuple[tuple[bytes, ...], Any]:
    return (p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1")), p.key("secc-leaf")


def vehicle_side(p: TestPKI) -> tuple[tuple[bytes, ...], Any]:
    """The EV's TLS chain: vehicle leaf, OEM Sub-CA 2, Sub-CA 1, no root [V2G20-2431]."""
    return (p.cert("vehicle-leaf"), p.cert("oem-sub2"), p.cert("oem-sub1")), p.key("vehicle-leaf")


def contexts(p: TestPKI, *, vehicle: tuple[tuple[bytes, ...], Any] | None = None, group: str | None = None,
             **server_kw: Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    chain, key = secc_side(p)
    sctx = server_context(chain, key, iso=20, client_roots=[p.cert("oem-root")], group=group, **server_kw)
    vchain, vkey = vehicle or vehicle_side(p)
    cctx = client_context([p.cert("v2g-root")], iso=20, client_chain=vchain, client_key=vkey, group=group)
    return sctx, cctx


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(coro_fn(), 30))


async def echo(stream: V2GTPStream) -> None:
    while True:
        try:
            ptype, payload = await stream.read_frame(timeout=5)
        except TransportClosed:
            return
        await stream.write_frame(ptype, payload[::-1])


def connect_and_echo(sctx: ssl.SSLContext, cctx: ssl.SSLContext) -> dict[str, Any]:
    """One connection; what each side saw."""
    seen: dict[str, Any] = {}

    async def handler(stream: V2GTPStream) -> None:
        seen.update(server_chain=stream.peer_chain, server_verified=stream.peer_verified, server_cipher=stream.cipher)
        await echo(stream)

    async def main() -> None:
        async with await start_charger_server(handler, HOST, 0, ssl_context=sctx) as server:
            async with await open_ev_connection(HOST, server.port, ssl_context=cctx) as ev:
                await ev.write_frame(PayloadType.EXI, b"abc")
                seen["frame"] = tuple(await ev.read_frame(timeout=5))
                seen.update(version=ev.tls_version, cipher=ev.cipher, ev_verified=ev.peer_verified,
                            ev_chain=ev.peer_chain)
                obj = ev._writer.get_extra_info("ssl_object")
                seen["ticket"] = obj.session is not None and obj.session.has_ticket
    run(main)
    return seen


@pytest.mark.parametrize("algorithm, group", [("secp521r1", None), ("ed448", "X448")], ids=["p521-secp521r1", "ed448-x448"])
def test_mutual_tls13_with_a_valid_vehicle_chain(algorithm: str, group: str | None) -> None:
    p = pki(algorithm)
    sctx, cctx = contexts(p, group=group)
    seen = connect_and_echo(sctx, cctx)
    assert seen["frame"] == (PayloadType.EXI, b"cba") and seen["version"] == "TLSv1.3"
    assert seen["cipher"] == seen["server_cipher"] == "TLS_AES_256_GCM_SHA384" == ISO20_CIPHERSUITES[0]
    # the SECC got the vehicle chain without the root, checked under the -20 vehicle profile
    assert seen["server_chain"] == vehicle_side(p)[0]
    assert seen["server_verified"].profile == "iso20-vehicle" and seen["server_verified"].anchor_role == "oem"
    assert seen["server_verified"].root == p.cert("oem-root")
    # the EV checked the SECC chain under the -20 SECC profile
    assert seen["ev_verified"].profile == "iso20-secc" and seen["ev_chain"][0] == p.cert("secc-leaf")
    assert seen["ticket"] is False  # no TLS 1.3 session ticket [session tickets off]
    assert handshake_failures(sctx) == [] and handshake_failures(cctx) == []


def test_contexts_set_what_python_allows() -> None:
    p = pki()
    sctx, cctx = contexts(p)
    for ctx in (sctx, cctx):
        assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_3
        assert ctx.options & ssl.OP_NO_TICKET and ctx.options & ssl.OP_NO_RENEGOTIATION
        suites = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.3"]
        assert suites[:2] == list(ISO20_CIPHERSUITES)  # the standard's order; OpenSSL's third cannot be removed
    assert sctx.verify_mode == ssl.CERT_REQUIRED and sctx.num_tickets == 0
    assert sctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    with pytest.raises(TLSConfigError, match="V2G20-1634"):
        server_context(*secc_side(p), iso=20, group="prime256v1")
    # -2 keeps TLS 1.2 and its suite; tickets and renegotiation are off there too
    p2 = issue_test_pki(2, seed=2, now=NOW)
    ctx2 = server_context((p2.cert("secc-leaf"), p2.cert("cpo-sub2")), p2.key("secc-leaf"))
    assert ctx2.maximum_version == ssl.TLSVersion.TLSv1_2 and ctx2.options & ssl.OP_NO_RENEGOTIATION
    assert ctx2.options & ssl.OP_NO_TICKET and [c["name"] for c in ctx2.get_ciphers() if c["protocol"] != "TLSv1.3"] == [
        "ECDHE-ECDSA-AES128-SHA256"]


def _refused_by_the_server(sctx: ssl.SSLContext, cctx: ssl.SSLContext) -> list[str]:
    """The EV connects; the SECC refuses; the EV sees the refusal on its first read. Returns the
    SECC context's recorded reasons."""
    handled: list[bool] = []

    async def handler(stream: V2GTPStream) -> None:
        handled.append(True)

    async def main() -> None:
        async with await start_charger_server(handler, HOST, 0, ssl_context=sctx) as server:
            try:
                ev = await open_ev_connection(HOST, server.port, ssl_context=cctx)
            except (ssl.SSLError, ConnectionError):
                return
            with pytest.raises((ssl.SSLError, TransportClosed, ConnectionError)):
                await ev.write_frame(PayloadType.EXI, b"x")
                await ev.read_frame(timeout=5)
            await ev.aclose()
            for _ in range(50):  # the server side may still be finishing its handshake
                if handshake_failures(sctx):
                    break
                await asyncio.sleep(0.02)
    run(main)
    assert handled == []  # the session handler never ran
    return handshake_failures(sctx)


def test_foreign_vehicle_chain_is_refused() -> None:
    p, other = pki(), pki(seed=21)
    sctx, cctx = contexts(p, vehicle=vehicle_side(other))
    [reason] = _refused_by_the_server(sctx, cctx)
    assert "certificate verify failed" in reason


def test_expired_vehicle_certificate_is_refused() -> None:
    p = pki()
    old = issue_vehicle(p.cert("oem-sub2"), p.key("oem-sub2"), now=NOW - dt.timedelta(days=30),
                        validity=dt.timedelta(days=10))
    sctx, cctx = contexts(p, vehicle=((old.der, p.cert("oem-sub2"), p.cert("oem-sub1")), old.key))
    [reason] = _refused_by_the_server(sctx, cctx)
    assert "certificate verify failed" in reason and "expired" in reason


def test_vehicle_chain_breaking_the_20_profile_is_refused_after_the_handshake() -> None:
    """OpenSSL accepts a leaf of another role under the OEM Sub-CA 2; pki's vehicle profile does not."""
    p = pki()
    wrong = issue_leaf("secc-leaf", iso=20, issuer_certificate=p.cert("oem-sub2"), issuer_key=p.key("oem-sub2"),
                       cn="NotAVehicle", now=NOW)
    sctx, cctx = contexts(p, vehicle=((wrong.der, p.cert("oem-sub2"), p.cert("oem-sub1")), wrong.key))
    [reason] = _refused_by_the_server(sctx, cctx)
    assert "vehicle chain refused [V2G20-2432]" in reason and "domainComponent" in reason


def test_revoked_vehicle_certificate_is_refused() -> None:
    p = pki()

    def revoked(chain: Any) -> None:
        raise CertificateRevokedError(detail="OCSP says revoked", subject=chain.subjects[0])

    check = vehicle_chain_check([p.cert("oem-root")], revocation=revoked)
    sctx, cctx = contexts(p, verify_client=check)
    [reason] = _refused_by_the_server(sctx, cctx)
    assert "(revocation)" in reason and "REVOKED" in reason


def test_no_vehicle_certificate_and_tls12_are_refused() -> None:
    p = pki()
    sctx, _ = contexts(p)
    no_cert = client_context([p.cert("v2g-root")], iso=20)
    reasons = _refused_by_the_server(sctx, no_cert)
    assert reasons and "certificate" in reasons[0].lower()
    tls12 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls12.check_hostname, tls12.verify_mode = False, ssl.CERT_NONE
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    sctx2, _ = contexts(p)
    reasons = _refused_by_the_server(sctx2, tls12)
    assert reasons and "unsupported protocol" in reasons[0].lower()


def test_the_ev_refuses_a_secc_outside_the_20_profile() -> None:
    """An SECC leaf with the wrong DC (OEM) under the CPO Sub-CA 2: OpenSSL accepts, the EV's -20 SECC check refuses."""
    p = pki()
    wrong = issue_leaf("vehicle-leaf", iso=20, issuer_certificate=p.cert("cpo-sub2"), issuer_key=p.key("cpo-sub2"),
                       cn="NotAnSECC", now=NOW)
    sctx = server_context((wrong.der, p.cert("cpo-sub2"), p.cert("cpo-sub1")), wrong.key, iso=20,
                          client_roots=[p.cert("oem-root")])
    _, cctx = contexts(p)

    async def main() -> None:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            with pytest.raises(TLSPeerError, match="SECC chain refused"):
                await open_ev_connection(HOST, server.port, ssl_context=cctx)
    run(main)
    assert "SECC chain refused" in handshake_failures(cctx)[0]


# ------------------------------------------------------------------------------------------------
# openssl as the peer: suites and groups Python cannot choose
# ------------------------------------------------------------------------------------------------
def _files(p: TestPKI, tmp: Path) -> dict[str, Path]:
    out = {}
    for name, data in {"v2g": to_pem_chain([p.cert("v2g-root")]), "oem": to_pem_chain([p.cert("oem-root")]),
                       "vehicle": to_pem_chain([p.cert("vehicle-leaf")]),
                       "vehicle_subs": to_pem_chain([p.cert("oem-sub2"), p.cert("oem-sub1")]),
                       "vehicle_key": private_key_pem(p.key("vehicle-leaf")),
                       "secc": to_pem_chain([p.cert("secc-leaf")]), "secc_key": private_key_pem(p.key("secc-leaf")),
                       "secc_subs": to_pem_chain([p.cert("cpo-sub2"), p.cert("cpo-sub1")])}.items():
        out[name] = tmp / f"{name}.pem"
        out[name].write_bytes(data)
    return out


async def _s_client(port: int, files: dict[str, Path], *extra: str) -> str:
    host = f"[{HOST}]" if ":" in HOST else HOST
    proc = await asyncio.create_subprocess_exec(
        OPENSSL, "s_client", "-connect", f"{host}:{port}", "-tls1_3", "-CAfile", str(files["v2g"]),
        "-cert", str(files["vehicle"]), "-key", str(files["vehicle_key"]), "-cert_chain", str(files["vehicle_subs"]),
        *extra, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(b""), 20)
    return out.decode(errors="replace")


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is not installed")
def test_openssl_client_sees_the_20_parameters_and_a_third_suite_is_refused(tmp_path: Path) -> None:
    p = pki()
    files = _files(p, tmp_path)
    sctx, _ = contexts(p)
    outputs: dict[str, str] = {}

    async def main() -> None:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            outputs["default"] = await _s_client(server.port, files)
            outputs["chacha"] = await _s_client(server.port, files, "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
            n = len(handshake_failures(sctx))
            outputs["aes128"] = await _s_client(server.port, files, "-ciphersuites", "TLS_AES_128_GCM_SHA256")
            for _ in range(100):
                if len(handshake_failures(sctx)) > n:
                    break
                await asyncio.sleep(0.02)
    run(main)
    assert "TLS_AES_256_GCM_SHA384" in outputs["default"] and "Verification: OK" in outputs["default"]
    assert "P-521" in outputs["default"] or "secp521r1" in outputs["default"]  # the server's key share group
    assert "TLS_CHACHA20_POLY1305_SHA256" in outputs["chacha"]
    assert any("TLS_AES_128_GCM_SHA256 is not one of TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256 [V2G20-2458]"
               in r for r in handshake_failures(sctx))


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is not installed")
def test_openssl_client_with_another_group_gets_no_handshake(tmp_path: Path) -> None:
    p = pki("ed448")
    files = _files(p, tmp_path)
    sctx, _ = contexts(p, group="X448")
    outputs: dict[str, str] = {}

    async def main() -> None:
        async with await start_charger_server(echo, HOST, 0, ssl_context=sctx) as server:
            outputs["x448"] = await _s_client(server.port, files, "-groups", "X448")
            outputs["p521"] = await _s_client(server.port, files, "-groups", "secp521r1")
    run(main)
    assert "X448" in outputs["x448"] and "TLS_AES_256_GCM_SHA384" in outputs["x448"]
    assert "TLS_AES_256_GCM_SHA384" not in outputs["p521"]
    assert handshake_failures(sctx) == ["[SSL: NO_SUITABLE_KEY_SHARE] no suitable key share (_ssl.c:1006)"] or \
        "no suitable key share" in " ".join(handshake_failures(sctx))


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is not installed")
def test_our_client_refuses_a_server_that_picks_a_third_suite(tmp_path: Path) -> None:
    p = pki()
    files = _files(p, tmp_path)
    _, cctx = contexts(p)

    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            OPENSSL, "s_server", "-accept", "0", "-naccept", "1", "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256",
            "-cert", str(files["secc"]), "-key", str(files["secc_key"]), "-cert_chain", str(files["secc_subs"]),
            *([] if ":" not in HOST else ["-6"]),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            assert proc.stdout is not None
            port = None
            while port is None:
                line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
                assert line, "s_server ended early"
                if line.startswith("ACCEPT"):
                    port = int(line.rsplit(":", 1)[1])
            with pytest.raises(TLSPeerError, match="TLS_AES_128_GCM_SHA256 is not one of"):
                await open_ev_connection(HOST, port, ssl_context=cctx)
        finally:
            proc.kill()
            await proc.wait()
    run(main)
