"""``plugcharge.net.service.ChargerService`` in loopback mode (no namespaces needed): SDP and a TCP
server, one session per connection with its events numbered by connection, and the clean stop: the
listeners close at once, a session in flight is asked to stop and ends with SessionStop, a
connection that never agrees on a protocol is cut when the wait is over.  The same service on a
real interface, in its own process: ``test_pc_field_commands.py``."""
from __future__ import annotations

import asyncio
import time

import pytest

from _din_fixtures import din_ev
from _pc_fixtures import NOW, first, kinds, real_codec_status, session_pki
from plugcharge import ChargerConfig, ChargerSession
from plugcharge.backends.simulated import SimulatedBackend
from plugcharge.core.events import ChargingStarted, ChargingStopped, SessionEnded
from plugcharge.net.runner import run_ev
from plugcharge.net.sdp import SDPRequest, Security, discover_secc, loopback_host
from plugcharge.net.service import ChargerService
from plugcharge.net.transport import ConnectionLimits, open_ev_connection

REAL = real_codec_status()
pytestmark = pytest.mark.skipif(REAL is not None, reason=f"needs the real EXI codec: {REAL}")
HOST = loopback_host()


def _service(events: list, connections: list, **kw) -> ChargerService:
    backend = SimulatedBackend(session_pki(), clock=lambda: NOW)
    backend.register_id_token("RFID-SERVICE")
    config = ChargerConfig(tls=False, protocols=("iso2", "din"))
    return ChargerService(interface=None, loopback=True, host=HOST, sdp_port=0, tcp=True, backend=backend,
                          session_factory=lambda stream: ChargerSession(config), id_token="RFID-SERVICE",
                          on_event=lambda conn, e: events.append((conn.number, e)),
                          on_connection=connections.append, **kw)


def test_stop_asks_the_session_in_flight_to_stop_and_closes_the_listeners():
    async def main():
        events: list = []
        connections: list = []
        service = _service(events, connections)
        await service.start()
        assert service.sdp is not None and False in service.servers and True not in service.servers
        resp = await discover_secc(SDPRequest(Security.NO_TLS), loopback=True, host=HOST, port=service.sdp.port,
                                   timeout=0.25, max_requests=8)
        assert (resp.security, resp.port) == (Security.NO_TLS, service.servers[False].port)
        stream = await open_ev_connection(resp.host, resp.port)
        ev = din_ev(None, protocols=("din",), tls=False, charge_loops=100000, loop_interval=0.05, poll_interval=0.05)
        started = asyncio.Event()
        ev_task = asyncio.ensure_future(run_ev(stream, ev, on_event=lambda e: started.set()
                                               if isinstance(e, ChargingStarted) else None))
        await asyncio.wait_for(started.wait(), 20)
        t0 = time.monotonic()
        running = await service.stop(timeout=10)
        took = time.monotonic() - t0
        ev_events = await asyncio.wait_for(ev_task, 10)
        with pytest.raises(OSError):  # nobody listens any more
            await open_ev_connection(resp.host, resp.port, timeout=2)
        return running, took, ev_events, events, connections, service

    running, took, ev_events, events, connections, service = asyncio.run(asyncio.wait_for(main(), 60))
    assert running == 1 and took < 5
    assert [c.number for c in connections] == [1] and connections[0].tls_version is None
    charger_events = [e for n, e in events if n == 1]
    assert isinstance(charger_events[-1], SessionEnded) and charger_events[-1].reason == "finished", kinds(charger_events)
    assert first(charger_events, ChargingStopped)
    assert isinstance(ev_events[-1], SessionEnded) and ev_events[-1].reason == "finished"
    assert service.active == {} and [c.ended.reason for c in service.finished] == ["finished"]


def test_stop_cuts_what_does_not_end_in_time():
    """A peer that connects and says nothing has no protocol to be asked to stop in: after the wait,
    its connection is cut (and recorded as not ended)."""
    async def main():
        events: list = []
        connections: list = []
        service = _service(events, connections, limits=ConnectionLimits(4, 4))
        await service.start()
        reader, writer = await asyncio.open_connection(HOST, service.servers[False].port)
        for _ in range(100):
            if service.active:
                break
            await asyncio.sleep(0.02)
        t0 = time.monotonic()
        running = await service.stop(timeout=0.5)
        took = time.monotonic() - t0
        closed = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return running, took, closed, service

    running, took, closed, service = asyncio.run(asyncio.wait_for(main(), 30))
    assert running == 1 and 0.4 < took < 3 and closed == b""
    assert service.active == {} and len(service.finished) == 1 and service.finished[0].ended is None


def test_a_service_needs_a_server_and_a_place():
    with pytest.raises(ValueError):
        ChargerService(interface="x", session_factory=lambda s: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError):
        ChargerService(interface=None, session_factory=lambda s: None, tcp=True)  # type: ignore[arg-type,return-value]
