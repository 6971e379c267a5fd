"""A charger on one network interface: SDP, its V2G servers and one session per connection, stopped cleanly.

:class:`ChargerService` is the I/O of ``plugcharge charger``:

* the SDP server on UDP port 15118, joined to ``ff02::1`` on the interface and answering only requests
  that arrived there (:func:`~plugcharge.net.sdp.start_sdp_server`), with the interface's link-local
  address and the ports of its servers;
* a TLS and/or a plain TCP server on that link-local address (``fe80::…%IF``), whichever the protocols
  can run over, sharing one :class:`~plugcharge.net.transport.ConnectionLimits`;
* per connection a session from ``session_factory(stream)`` run by
  :func:`~plugcharge.net.runner.run_charger` with the backend; ``on_event(connection, event)`` sees
  every session event, ``on_connection(connection)`` every accepted connection.

:meth:`ChargerService.stop` is the shutdown (SIGTERM/SIGINT in the command): SDP and the listeners
close at once (no new EV is taken), every session in flight is asked to stop
(:class:`~plugcharge.core.events.StopCharging`: its next response carries EVSENotification StopCharging
and EVSE_Shutdown, so the EV leaves with PowerDelivery, WeldingDetection and SessionStop where the
protocol has them) and is awaited up to ``timeout`` seconds; what still runs then is cut.
``loopback=True`` runs the same on a host address with a unicast SDP port (tests, machines without a
link-local address)."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from typing import Any, Callable, Optional

from ..core.events import Event, SessionEnded, StopCharging
from ..core.session import ChargerSessionBase
from .runner import run_charger
from .sdp import SDP_PORT, SDPServer, link_local_address, make_responder, start_sdp_server
from .stream import V2GTPStream
from .transport import ConnectionLimits, Server, start_charger_server

__all__ = ["ChargerConnection", "ChargerService", "SessionFactory"]

_log = logging.getLogger("plugcharge.net.service")

#: ``stream -> session`` (a ChargerSession configured for the stream's transport: ``stream.tls``)
SessionFactory = Callable[[V2GTPStream], ChargerSessionBase]


@dataclasses.dataclass
class ChargerConnection:
    """One accepted connection and its session."""

    #: 1, 2, ... in the order the connections were accepted
    number: int
    #: the EV's address (link-local, without the zone)
    peer: str
    #: ``"TLSv1.2"``, ``"TLSv1.3"`` or None for plain TCP
    tls_version: Optional[str]
    started: float
    session: Optional[ChargerSessionBase] = None
    stream: Optional[V2GTPStream] = None
    #: the session's events so far
    events: list = dataclasses.field(default_factory=list)

    @property
    def ended(self) -> Optional[SessionEnded]:
        """The session's end, once it ended."""
        last = self.events[-1] if self.events else None
        return last if isinstance(last, SessionEnded) else None


class ChargerService:
    """A charger on ``interface`` (see the module docstring).  ``tls_context`` for the TLS server
    (None: no TLS server), ``tcp`` whether to run the plain TCP server; at least one of them."""

    def __init__(self, *, interface: Optional[str], session_factory: SessionFactory, backend: Any = None,
                 tls_context: Optional[ssl.SSLContext] = None, tcp: bool = False,
                 limits: Optional[ConnectionLimits] = None, id_token: Optional[str] = None,
                 on_event: Optional[Callable[[ChargerConnection, Event], Any]] = None,
                 on_connection: Optional[Callable[[ChargerConnection], Any]] = None,
                 sdp_port: int = SDP_PORT, tls_port: int = 0, tcp_port: int = 0,
                 loopback: bool = False, host: Optional[str] = None) -> None:
        if tls_context is None and not tcp:
            raise ValueError("a charger needs a TLS or a TCP server")
        if interface is None and not loopback:
            raise ValueError("give the interface (or loopback=True)")
        self.interface = interface
        self.session_factory = session_factory
        self.backend = backend
        self.tls_context = tls_context
        self.tcp = tcp
        self.limits = limits if limits is not None else ConnectionLimits()
        self.id_token = id_token
        self.on_event = on_event
        self.on_connection = on_connection
        self.sdp_port, self.tls_port, self.tcp_port = sdp_port, tls_port, tcp_port
        self.loopback = loopback
        self.host = host
        #: the address the servers listen on and SDP announces
        self.address: Optional[str] = None
        self.servers: dict[bool, Server] = {}
        self.sdp: Optional[SDPServer] = None
        #: connections whose session still runs
        self.active: dict[int, ChargerConnection] = {}
        #: connections whose session ended, oldest first (bounded: the last 100)
        self.finished: list[ChargerConnection] = []
        self.accepted = 0
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False

    # ------------------------------------------------------------------ lifetime
    async def start(self) -> None:
        """Open the servers and SDP; raises OSError (no link-local address, port taken, ...)."""
        if self.loopback:
            from .sdp import loopback_host

            self.address = self.host or loopback_host()
            listen = self.address
        else:
            assert self.interface is not None
            self.address = str(link_local_address(self.interface))
            listen = f"{self.address}%{self.interface}"
        try:
            if self.tls_context is not None:
                self.servers[True] = await start_charger_server(self._handle, listen, self.tls_port,
                                                                ssl_context=self.tls_context, limits=self.limits)
            if self.tcp:
                self.servers[False] = await start_charger_server(self._handle, listen, self.tcp_port,
                                                                 limits=self.limits)
            responder = make_responder(self.address, tls_port=self.servers[True].port if True in self.servers else None,
                                       tcp_port=self.servers[False].port if False in self.servers else None)
            if self.loopback:
                self.sdp = await start_sdp_server(responder, loopback=True, host=self.address, port=self.sdp_port)
            else:
                self.sdp = await start_sdp_server(responder, interface=self.interface, port=self.sdp_port)
        except BaseException:
            self._close_listeners()
            raise

    def _close_listeners(self) -> None:
        if self.sdp is not None:
            self.sdp.close()
        for server in self.servers.values():
            server.stop_accepting()

    async def stop(self, timeout: float = 10.0) -> int:
        """Stop taking EVs, ask every session in flight to stop and wait for them at most ``timeout``
        seconds; returns how many were still running when the wait began."""
        self._stopping = True
        self._close_listeners()
        running = [c for c in self.active.values() if c.session is not None and not c.session.ended]
        loop = asyncio.get_running_loop()
        for conn in running:
            assert conn.session is not None and conn.stream is not None
            try:
                res = conn.session.send(StopCharging(), loop.time())
                if res.data:
                    await conn.stream.write_raw(res.data)
            except Exception as exc:  # an ended session, a closed stream: it is going anyway
                _log.info("charger: stop request to connection %d not delivered: %s", conn.number, exc)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        for server in self.servers.values():
            server.close()
        for server in self.servers.values():
            await server.wait_closed()
        return len(running)

    async def __aenter__(self) -> "ChargerService":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ connections
    async def _handle(self, stream: V2GTPStream) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.accepted += 1
        peer = stream.peername
        conn = ChargerConnection(self.accepted, str(peer[0]).split("%", 1)[0] if peer else "?", stream.tls_version,
                                 time.monotonic(), stream=stream)
        self.active[conn.number] = conn
        try:
            if self.on_connection is not None:
                self.on_connection(conn)
            if self._stopping:
                return
            conn.session = self.session_factory(stream)

            def seen(event: Event) -> None:
                conn.events.append(event)
                if self.on_event is not None:
                    self.on_event(conn, event)

            events = await run_charger(stream, conn.session, self.backend, id_token=self.id_token, on_event=seen)
            for event in events[len(conn.events):]:  # what the runner adds itself (a closed link, a bad header)
                seen(event)
        finally:
            self.active.pop(conn.number, None)
            self.finished.append(conn)
            del self.finished[:-100]
            if task is not None:
                self._tasks.discard(task)
