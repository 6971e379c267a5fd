"""The charger hardened against what probing it showed: caps on the connections it holds (in all and
per peer address), idle TCP and TLS peers beyond them reset at once and memory bounded; log lines a
peer causes rate-limited with a count of what was held back; an ISO 15118-20 payload type on an
ISO 15118-2 stream refused at once over a socket; no TLS session tickets and no client-initiated
renegotiation (checked with the ``openssl`` command-line client).  Loopback only, bounded in time."""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _pc_fixtures import real_codec_status
from _pc_testcerts import Chain, make_chain
from plugcharge import ChargerConfig, ChargerSession
from plugcharge.core.codec import NS_APP, NS_ISO2, body_of, frame
from plugcharge.core.handshake import offer, sap_req
from plugcharge.core.v2gtp import PayloadType, encode_frame
from plugcharge.net.logs import RateLimitedLog
from plugcharge.net.runner import run_charger
from plugcharge.net.sdp import start_sdp_server
from plugcharge.net.tls import server_context
from plugcharge.net.transport import (
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_PEER, ConnectionLimits, TransportClosed, V2GTPStream, start_charger_server,
)
from plugcharge.sessions import default_registry

HERE = Path(__file__).parent


def go(coro, limit: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, limit))


@pytest.fixture(scope="module")
def secc() -> Chain:
    return make_chain("SECC-HARDENING", "CPO")


# ------------------------------------------------------------------ rate-limited logs
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_token_bucket_lets_a_burst_through_then_a_rate_and_counts_the_rest(caplog):
    clock = _Clock()
    log = RateLimitedLog(logging.getLogger("plugcharge.test.ratelimit"), rate=2.0, burst=3, clock=clock)
    caplog.set_level(logging.INFO, "plugcharge.test.ratelimit")
    passed = [log.info("bad frame", "frame %d", i) for i in range(1000)]
    assert passed[:3] == [True] * 3 and not any(passed[3:])
    assert log.suppressed("bad frame") == 997
    assert log.info("other kind", "another kind has its own bucket")
    clock.now += 0.5  # one token back at 2 per second
    assert log.info("bad frame", "frame %d", 1000)
    assert not log.info("bad frame", "frame %d", 1001)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:3] == ["frame 0", "frame 1", "frame 2"]
    assert messages[-1] == "frame 1000 (997 similar lines suppressed in the last 0 s)"
    clock.now += 10
    log.flush()
    assert caplog.records[-1].getMessage() == "1 bad frame line suppressed in the last 10 s"
    assert log.suppressed("bad frame") == 0
    log.flush()  # nothing held back: nothing said
    assert len(caplog.records) == len(messages) + 1
    with pytest.raises(ValueError):
        RateLimitedLog(logging.getLogger("x"), rate=0)


def test_ten_kilobytes_of_discarded_frames_make_a_few_log_lines(caplog):
    """1,000 frames of a payload type V2GTP does not define (10 kB): each is skipped as the standard
    says, but the log gets a handful of lines and then a count, not 1,000 lines."""
    caplog.set_level(logging.INFO, "plugcharge.net.transport")
    flood = b"".join(encode_frame(0xA000 + (i % 16), b"xy") for i in range(1000))
    assert len(flood) == 10_000

    async def main() -> int:
        got: list = []

        async def reader(stream: V2GTPStream) -> None:
            got.append(await stream.read_frame(timeout=10))  # the one frame after the flood
            got.append(stream.discarded)

        server = await start_charger_server(reader, "127.0.0.1", 0)
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(flood + encode_frame(PayloadType.EXI, b"\x80ok"))
        await writer.drain()
        while len(got) < 2:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()  # says how many lines it held back
        assert tuple(got[0]) == (PayloadType.EXI, b"\x80ok")
        return int(got[1])

    assert go(main()) == 1000
    lines = [r.getMessage() for r in caplog.records if r.name == "plugcharge.net.transport"]
    discards = [m for m in lines if m.startswith("V2GTP: discarding frame")]
    assert 1 <= len(discards) <= 10, lines[:20]
    summary = [m for m in lines if "discarded V2GTP frame lines suppressed" in m or "similar lines suppressed" in m]
    assert summary, lines[-5:]
    held = sum(int(m.split()[0]) for m in lines if m.endswith("s") and "discarded V2GTP frame lines suppressed" in m)
    assert held + len(discards) >= 990  # the rest were counted, none lost silently


def test_a_thousand_bad_sdp_datagrams_make_a_few_log_lines(caplog):
    caplog.set_level(logging.INFO, "plugcharge.net.sdp")

    async def main() -> int:
        server = await start_sdp_server(lambda req: None, loopback=True, host="127.0.0.1", port=0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(1000):
                s.sendto(b"\x01\xfe\x90\x00\x00\x00\x00\x02\xff" + bytes([i % 256]), ("127.0.0.1", server.port))
                if i % 50 == 49:  # let the server read: the socket buffer would drop a burst of 1,000
                    await asyncio.sleep(0.005)
        deadline = time.monotonic() + 10
        while server.invalid_requests < 1000 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        server.close()
        return server.invalid_requests

    assert go(main()) == 1000
    lines = [r.getMessage() for r in caplog.records if r.name == "plugcharge.net.sdp"]
    assert 1 <= len([m for m in lines if m.startswith("SDP: ignoring invalid datagram")]) <= 10, lines[:20]
    assert any("invalid SDP datagram line" in m and "suppressed" in m for m in lines), lines[-3:]


# ------------------------------------------------------------------ connection caps
def test_connection_limits_count_and_refuse():
    limits = ConnectionLimits(3, 2)
    assert [limits.admit("a"), limits.admit("a")] == [None, None]
    assert "max_per_peer 2" in limits.admit("a")
    assert limits.admit("b") is None
    assert "max_connections 3" in limits.admit("c")
    assert (limits.active, limits.refused, limits.peer_count("a")) == (3, 2, 2)
    limits.release("a")
    assert limits.admit("c") is None and limits.active == 3
    assert ConnectionLimits().max_connections == DEFAULT_MAX_CONNECTIONS == 8
    assert ConnectionLimits().max_per_peer == DEFAULT_MAX_PER_PEER == 2
    with pytest.raises(ValueError):
        ConnectionLimits(0)


async def _idle_clients(port: int, sources: list[str], tls: ssl.SSLContext | None) -> list:
    """Connect from each source address (a TLS handshake with ``tls``); each entry is the open
    (reader, writer) or the exception that ended the attempt."""
    async def one(src: str):
        try:
            return await asyncio.wait_for(asyncio.open_connection(
                "127.0.0.1", port, local_addr=(src, 0), ssl=tls, server_hostname="" if tls else None), 10)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            return exc
    return list(await asyncio.gather(*(one(s) for s in sources)))


async def _held(conns: list, wait: float = 1.0) -> tuple[list, float]:
    """Which connections the server still holds after ``wait`` seconds (a read has not ended), and how
    long the others took to end (reset or closed)."""
    t0 = time.monotonic()

    async def ended(c) -> float | None:
        reader, _ = c
        try:
            data = await asyncio.wait_for(reader.read(1), wait)
            assert data == b""
        except asyncio.TimeoutError:
            return None
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        return time.monotonic() - t0

    open_ = [c for c in conns if not isinstance(c, BaseException)]
    times = await asyncio.gather(*(ended(c) for c in open_))
    held = [c for c, t in zip(open_, times) if t is None]
    return held, max((t for t in times if t is not None), default=0.0)


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_idle_connections_beyond_the_caps_are_reset_at_once(secc, tls):
    """60 idle connections from one address, then 30 from 30 others: the charger holds 2 of the first
    (per peer) and 4 in all; every other one is reset right away (a TLS peer before its handshake
    completes).  When held ones go, their slots are free again."""
    sctx = server_context(secc.tls_chain, secc.leaf.key_pem) if tls else None
    cctx = None
    if tls:
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE

    async def main():
        limits = ConnectionLimits(4, 2)
        handled: list = []

        async def idle(stream: V2GTPStream) -> None:
            handled.append(stream.peername[0])
            try:
                await stream.read_frame(timeout=30)
            except (TimeoutError, TransportClosed, Exception):
                pass

        async with await start_charger_server(idle, "127.0.0.1", 0, ssl_context=sctx, limits=limits) as server:
            t0 = time.monotonic()
            same = await _idle_clients(server.port, ["127.0.0.1"] * 60, cctx)
            held_same, slow_same = await _held(same)
            many = await _idle_clients(server.port, [f"127.0.0.{10 + i}" for i in range(30)], cctx)
            held_many, slow_many = await _held(many)
            elapsed = time.monotonic() - t0
            state = (len(held_same), len(held_many), limits.active, limits.refused, sorted(set(handled)))
            for _, w in held_same + held_many:
                w.close()
            deadline = time.monotonic() + 5
            while limits.active and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            again = await _idle_clients(server.port, ["127.0.0.1"], cctx)
            held_again, _ = await _held(again)
            for _, w in held_again:
                w.close()
            return state, elapsed, max(slow_same, slow_many), len(held_again)

    (same, many, active, refused, peers), elapsed, slowest, again = go(main())
    assert (same, many, active) == (2, 2, 4)
    assert refused == 60 + 30 - 4 and len(peers) == 3
    assert slowest < 2.0 and elapsed < 15, (slowest, elapsed)  # reset promptly, not held 60 s
    assert again == 1


def _rss_growth(cap: int, clients: int) -> tuple[int, int, int]:
    """(held connections, refused, RSS growth in kB) of a TLS server process after ``clients`` idle
    TLS peers (each from its own address, so only the total cap applies)."""
    proc = subprocess.Popen([sys.executable, str(HERE / "_pc_idle_server.py"), str(cap)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=str(HERE))
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline().split()[1])

        def stats() -> list[int]:
            proc.stdin.write("\n")
            proc.stdin.flush()
            return [int(x) for x in proc.stdout.readline().split()[1:]]

        async def main():
            cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            cctx.check_hostname, cctx.verify_mode = False, ssl.CERT_NONE
            warm = await _idle_clients(port, ["127.0.0.2"], cctx)  # the first handshake loads OpenSSL's tables
            for c in warm:
                if not isinstance(c, BaseException):
                    c[1].close()
            await asyncio.sleep(0.3)
            before = await asyncio.to_thread(stats)
            conns = await _idle_clients(port, [f"127.0.{1 + i // 200}.{10 + i % 200}" for i in range(clients)], cctx)
            await asyncio.sleep(0.5)
            after = await asyncio.to_thread(stats)
            for c in conns:
                if not isinstance(c, BaseException):
                    c[1].close()
            return before, after

        before, after = go(main(), 120)
        return after[0], after[1], after[2] - before[2]
    finally:
        proc.kill()
        proc.wait(10)


def test_memory_stays_bounded_under_many_idle_tls_peers():
    """300 idle TLS peers: without caps the server holds all and grows by a few hundred kB each; with
    the default cap of 8 it holds 8 and barely grows."""
    capped = _rss_growth(DEFAULT_MAX_CONNECTIONS, 300)
    uncapped = _rss_growth(0, 300)
    assert capped[:2] == (8, 292), capped
    assert uncapped[:2] == (300, 0), uncapped
    assert capped[2] < 8_000, capped  # kB
    assert uncapped[2] > 4 * max(capped[2], 1000), (capped, uncapped)


# ------------------------------------------------------------------ -20 payload type over a socket
@pytest.mark.skipif(real_codec_status() is not None, reason=str(real_codec_status()))
def test_a_20_payload_type_on_an_iso2_stream_is_refused_at_once():
    import exi

    async def main():
        ended: asyncio.Future = asyncio.get_running_loop().create_future()

        async def handler(stream: V2GTPStream) -> None:
            session = ChargerSession(ChargerConfig(tls=False, protocols=("iso2",)), codecs=exi.get_codec)
            ended.set_result(await run_charger(stream, session))

        async with await start_charger_server(handler, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            t0 = time.monotonic()
            iso2 = default_registry().select(["iso2"], "ev")
            writer.write(frame(exi.get_codec(NS_APP).encode(sap_req(offer(iso2)))))
            writer.write(encode_frame(PayloadType.MAINSTREAM, b"\x80\x00\x00"))
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)  # everything until the charger closes
            elapsed = time.monotonic() - t0
            writer.close()
            return data, elapsed, await asyncio.wait_for(ended, 5)

    data, elapsed, events = go(main())
    assert elapsed < 2.0  # not V2G_SECC_Sequence_Timeout (60 s)
    first_len = int.from_bytes(data[4:8], "big")
    second = data[8 + first_len:]
    name, body, _ = body_of(exi.get_codec(NS_ISO2).decode(second[8:]))
    assert (name, body["ResponseCode"]) == ("SessionSetupRes", "FAILED")
    assert events[-1].reason == "protocol_error" or events[-1].response_code == "FAILED"
    assert "0x8002" in events[-1].detail


# ------------------------------------------------------------------ TLS: no tickets, no renegotiation
def _dual_context():
    """The one-port -2/-20 server context (net.tlsselect) with the two test PKIs."""
    import datetime as dt

    from pki.issue import issue_test_pki
    from plugcharge.net.tlsselect import DualServerContext

    now = dt.datetime.now(dt.timezone.utc)
    p2, p20 = issue_test_pki(2, seed=3, now=now), issue_test_pki(20, seed=3, now=now)
    chain = lambda p: [p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1")]  # noqa: E731
    return DualServerContext(iso2=(chain(p2), p2.key("secc-leaf")), iso20=(chain(p20), p20.key("secc-leaf"))).context, \
        [p2.cert("v2g-root"), p20.cert("v2g-root")]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command-line tool")
@pytest.mark.parametrize("context, version", [("iso2", "-tls1_2"), ("dual", "-tls1_2"), ("dual", "-tls1_3")])
def test_tls_issues_no_session_ticket_and_refuses_client_renegotiation(secc, tmp_path, context, version):
    """Neither edition needs them (the EV resumes nothing; a TLS session is one V2G session): the
    openssl client gets no ticket (TLS 1.2 NewSessionTicket, TLS 1.3 post-handshake tickets) and its
    TLS 1.2 renegotiation ('R') is refused with 'no renegotiation'; the one-port -2/-20 context too
    (OpenSSL takes these settings from the context a connection starts with)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if context == "iso2":
        sctx, roots = server_context(secc.tls_chain, secc.leaf.key_pem), [secc.root.der]
    else:
        sctx, roots = _dual_context()
    root = tmp_path / "roots.pem"
    root.write_bytes(b"".join(x509.load_der_x509_certificate(r).public_bytes(serialization.Encoding.PEM)
                              for r in roots))

    async def main():
        async def hold(stream: V2GTPStream) -> None:
            try:
                await stream.read_frame(timeout=15)
            except Exception:
                pass

        async with await start_charger_server(hold, "127.0.0.1", 0, ssl_context=sctx) as server:
            proc = await asyncio.create_subprocess_exec(
                "openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", version, "-CAfile", str(root),
                "-sigalgs", "ecdsa_secp521r1_sha512:ecdsa_secp256r1_sha256",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "LANG": "C"})
            assert proc.stdin is not None and proc.stdout is not None
            out = b""
            while b"Verify return code" not in out:
                chunk = await asyncio.wait_for(proc.stdout.read(4096), 10)
                if not chunk:
                    break
                out += chunk
            await asyncio.sleep(0.5)  # TLS 1.3 tickets would come right after the handshake
            proc.stdin.write(b"R\n")  # s_client: renegotiate
            await proc.stdin.drain()
            rest, _ = await asyncio.wait_for(proc.communicate(), 10)
            return (out + rest).decode(errors="replace")

    text = go(main())
    assert "Verify return code: 0 (ok)" in text, text[-1500:]
    assert "ticket" not in text.lower(), text[-1500:]  # no NewSessionTicket was sent
    if version == "-tls1_2":
        assert "ECDHE-ECDSA-AES128-SHA256" in text
        assert "RENEGOTIATING" in text and "no renegotiation" in text, text[-800:]
    else:
        assert "TLSv1.3" in text and "TLS_AES_256_GCM_SHA384" in text  # TLS 1.3 has no renegotiation at all
