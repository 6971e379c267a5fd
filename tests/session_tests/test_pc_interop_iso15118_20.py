"""ISO 15118-20 sessions against a real peer: the ``iso15118`` PyPI package (0.31.2), both ways.

* our ``EVSession`` against its -20 SECC (DC and AC), and
* its -20 EVCC against our ``ChargerSession`` (DC, AC and DC_BPT),

identification at the charger (EIM), over SDP (``ff02::1``) and TLS 1.3 between two network
namespaces made for these tests and joined by a veth pair (``tests/_netns.py``; never a host
interface).  The peer runs in its own process (``_iso15118_peer20.py``) in one namespace with its
own simulators and EXI codec (java), our side in the other; one -20 test PKI from :mod:`pki` serves
both sides, written in the peer's file layout.  What was shown and the deviations found are in the README ("ISO 15118-20").
"""
from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

import _netns
import exi
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.core.events import ChargingStarted, MeterValues, ProtocolAgreed, SessionEnded
from plugcharge.iso20.timing import EVCC_MSG_TIMEOUT, TimingProfile
from plugcharge.net.runner import run_charger, run_ev
from plugcharge.net.sdp import SDPRequest, discover_secc, make_responder, start_sdp_server
from plugcharge.net.tls import client_context
from plugcharge.net.tlsselect import DualServerContext, protocols_for_tls_version
from plugcharge.net.transport import open_ev_connection, start_charger_server
from test_pc_interop_iso15118 import write_layout

HARNESS = Path(__file__).with_name("_iso15118_peer20.py")
_MISSING = [m for m in ("iso15118", "aiofile", "py4j") if importlib.util.find_spec(m) is None]
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_MISSING), reason=f"interop extra not installed (missing {', '.join(_MISSING)})"),
    pytest.mark.skipif(shutil.which("java") is None, reason="the iso15118 package's EXI codec needs java"),
]
PEER_TIMEOUT = 120.0
#: That package encodes through a JVM (50-100 ms per message): our EV gives it 2 s per message
#: instead of the 0.5 s charge-loop timeout; every other timer is the standard's.
PEER_TIMING = TimingProfile(msg_timeout={k: max(v, 2.0) for k, v in EVCC_MSG_TIMEOUT.items()})


@pytest.fixture(scope="module")
def link() -> Iterator[_netns.Link]:
    why = _netns.unavailable()
    if why is not None:
        pytest.skip(why)
    with _netns.veth_link("i20", ("peer", "ours")) as made:
        yield made


@pytest.fixture(scope="module")
def pki20():
    from pki.issue import issue_test_pki

    return issue_test_pki(20, seed=2020, now=dt.datetime.now(dt.timezone.utc))


class Peer:
    """The peer process; its output goes to ``log``, printed when a test fails."""

    def __init__(self, end: _netns.Endpoint, role: str, pki_dir: Path, log: Path, *extra: str) -> None:
        self.log = log
        self._fh = open(log, "wb")
        argv = [sys.executable, str(HARNESS), role, "--pki", str(pki_dir), "--iface", end.iface, *extra]
        self.proc = subprocess.Popen(end.namespace.command(argv), stdout=self._fh, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=str(pki_dir))

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._fh.close()


_LOOP = {"DC": ("DC_CableCheck", "DC_PreCharge", "DC_ChargeLoop", "DC_WeldingDetection"), "AC": ("AC_ChargeLoop",)}
_COMMON = ("SessionSetup", "AuthorizationSetup", "Authorization", "ServiceDiscovery", "ServiceDetail",
           "ServiceSelection", "ScheduleExchange", "PowerDelivery", "SessionStop")


# --------------------------------------------------------------------- our EV, their SECC
async def _our_ev(pki, iface: str, peer: Peer, service: str) -> tuple[list, str, str]:
    """Runs in our namespace: discover their SECC, TLS 1.3, one -20 session."""
    deadline = time.monotonic() + 60
    while True:  # the peer starts a JVM first; its SDP server comes up after that
        try:
            resp = await discover_secc(SDPRequest(), interface=iface, timeout=0.25, max_requests=8)
            break
        except TimeoutError:
            if peer.proc.poll() is not None or time.monotonic() > deadline:
                raise
    # that SECC asks for the EV's certificate (mutual TLS with its OEM root) and pins ECDHE to
    # prime256v1 (README: deviations); the rest of the context is our -20 EV's
    ctx = client_context([pki.cert("v2g-root")], iso=20,
                         client_chain=[pki.cert("oem-provisioning-leaf"), pki.cert("oem-sub2"), pki.cert("oem-sub1")],
                         client_key=pki.key("oem-provisioning-leaf"))
    ctx.set_ecdh_curve("prime256v1")
    stream = await open_ev_connection(resp.host, resp.port, ssl_context=ctx)
    tls = (stream.tls_version, stream.cipher)
    mode = "AC_three_phase_core" if service == "AC" else "DC_extended"
    ev = EVSession(EVConfig(energy_mode=mode, charge_loops=3, tls=True, protocols=("iso20",), poll_interval=0.2),
                   codecs=exi.get_codec, timing=PEER_TIMING, security=EVSecurity())
    return await asyncio.wait_for(run_ev(stream, ev), PEER_TIMEOUT), *tls


@pytest.mark.parametrize("service", ["DC", "AC"])
def test_our_ev_charges_at_their_secc(tmp_path, link, pki20, service):
    pki_dir = write_layout(pki20, tmp_path / "peer-pki")
    peer = Peer(link.a, "secc", pki_dir, tmp_path / "secc.log", "--service", service)
    try:
        events, version, cipher = link.b.namespace.run(asyncio.run, _our_ev(pki20, link.b.iface, peer, service),
                                                       timeout=PEER_TIMEOUT + 100)
    except BaseException:
        print(peer.output()[-20000:])
        raise
    finally:
        peer.stop()
    log = peer.output()
    assert (version, cipher) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert [e.name for e in events if isinstance(e, ProtocolAgreed)] == [f"ISO 15118-20 {service}"]
    assert events[-1] == SessionEnded("finished"), (events[-1], log[-5000:])
    assert [e.energy_mode for e in events if isinstance(e, ChargingStarted)] == [service]
    assert sum(isinstance(e, MeterValues) for e in events) == 3
    for name in (*_COMMON, *_LOOP[service]):
        assert f'"{name}Req"' in log, f"{name}Req missing from the peer's log"
    assert "Traceback" not in log and "validation failed" not in log, log[-5000:]


# --------------------------------------------------------------------- their EVCC, our charger
async def _their_ev(link: _netns.Link, pki, pki_dir: Path, log: Path, service: str, bpt: bool):
    """Runs in our namespace: our charger on the link; their EVCC in theirs."""
    results: asyncio.Queue = asyncio.Queue()
    dual = DualServerContext(  # the -20 chain for a -20 ClientHello (their -2 chain would be the other)
        iso20=([pki.cert("secc-leaf"), pki.cert("cpo-sub2"), pki.cert("cpo-sub1")], pki.key("secc-leaf")))
    mode = "AC_three_phase_core" if service == "AC" else "DC_extended"

    async def handler(stream) -> None:
        try:
            session = ChargerSession(ChargerConfig(energy_modes=(mode,), tls=stream.tls,
                                                   protocols=protocols_for_tls_version(stream.tls_version)),
                                     codecs=exi.get_codec, security=ChargerSecurity())
            results.put_nowait((stream.tls_version, await run_charger(stream, session, None)))
        except BaseException as exc:  # surfaced below
            results.put_nowait(exc)

    end = link.b
    server = await start_charger_server(handler, end.host, 0, ssl_context=dual.context)
    sdp = await start_sdp_server(make_responder(end.address, tls_port=server.port), interface=end.iface)
    peer = Peer(link.a, "evcc", pki_dir, log, "--service", service, "--loops", "3", *(["--bpt"] if bpt else []))
    try:
        async with server:
            loop = asyncio.get_running_loop()
            exited = loop.run_in_executor(None, peer.proc.wait)
            session = asyncio.ensure_future(results.get())
            await asyncio.wait({session, exited}, timeout=PEER_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            if not session.done():
                session.cancel()
                raise AssertionError(f"no session ended at our charger; peer exit status {peer.proc.poll()}")
            got = session.result()
            if isinstance(got, BaseException):
                raise got
            await asyncio.wait_for(exited, 30)
    finally:
        sdp.close()
        peer.stop()
    return got, peer, dual


@pytest.mark.parametrize("service,bpt", [("DC", False), ("AC", False), ("DC", True)])
def test_their_evcc_charges_at_our_charger(tmp_path, link, pki20, service, bpt):
    pki_dir = write_layout(pki20, tmp_path / "peer-pki")
    log_path = tmp_path / "evcc.log"
    try:
        (version, events), peer, dual = link.b.namespace.run(
            asyncio.run, _their_ev(link, pki20, pki_dir, log_path, service, bpt), timeout=PEER_TIMEOUT + 100)
    except BaseException:
        print(log_path.read_text(errors="replace")[-20000:] if log_path.exists() else "(no peer log)")
        raise
    log = peer.output()
    assert version == "TLSv1.3" and dual.selected == {"iso2": 0, "iso20": 1}
    assert [e.name for e in events if isinstance(e, ProtocolAgreed)] == [f"ISO 15118-20 {service}"]
    assert isinstance(events[-1], SessionEnded) and events[-1].reason == "finished", (events[-1], log[-5000:])
    assert [e.energy_mode for e in events if isinstance(e, ChargingStarted)] == [service + ("_BPT" if bpt else "")]
    assert peer.proc.returncode == 0, log[-5000:]
    for name in (*_COMMON, *_LOOP[service]):
        assert f'"{name}Res"' in log, f"{name}Res missing from the peer's log"
    assert "Traceback" not in log and "validation failed" not in log, log[-5000:]
