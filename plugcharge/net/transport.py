"""asyncio TCP and TLS transports carrying V2GTP frames.

One call each side::

    server = await start_charger_server(handler, "::1", 0, ssl_context=server_ctx)
    stream = await open_ev_connection("::1", server.port, ssl_context=client_ctx)
    await stream.write_frame(PayloadType.EXI, exi_bytes)
    ptype, payload = await stream.read_frame(timeout=2.0)

``handler(stream)`` is awaited once per accepted connection; when it returns (or raises) the
connection is closed.  Sessions are sans-IO objects; the runner glue (session layer) moves bytes
between a :class:`V2GTPStream` and a session.  TLS contexts come from :mod:`plugcharge.net.tls`.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
import ssl
import struct
from typing import Any, Awaitable, Callable, Collection, Optional

from .stream import TransportClosed, V2GTPStream, peer_log
from .tls import PeerCheck
from ..core.v2gtp import DEFAULT_MAX_PAYLOAD

__all__ = [
    "DYNAMIC_PORTS",
    "TransportClosed",
    "V2GTPStream",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PER_PEER",
    "ConnectionLimits",
    "Server",
    "start_charger_server",
    "open_ev_connection",
]

logger = logging.getLogger(__name__)

#: the StreamReader's buffer bound (asyncio's default); the V2GTP reader bounds frames itself
_READ_LIMIT = 2 ** 16

#: ISO 15118-2 and -20 have the SECC listen on a TCP port of the Dynamic Ports range (IETF RFC
#: 6335); EVCCs reject an SDP response naming another port (the iso15118 package's does), and the
#: kernel's own choice for port 0 on Linux may lie anywhere from 32768 up.
DYNAMIC_PORTS = range(49152, 65536)
_PORT_ATTEMPTS = 64


async def _listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket on ``host``: ``port``, or for port 0 a free one in :data:`DYNAMIC_PORTS`."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port or DYNAMIC_PORTS.start, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    family, _, proto, _, sockaddr = infos[0]
    candidates = [port] if port else random.sample(DYNAMIC_PORTS, _PORT_ATTEMPTS)
    last: OSError | None = None
    for candidate in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((sockaddr[0], candidate, *sockaddr[2:]))
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None
    raise last


Handler = Callable[[V2GTPStream], Awaitable[None]]

#: How many connections a charger holds at once, over all its servers (TLS and TCP): a charger with a
#: few outlets serves one EV per outlet, and an EV has one V2G connection (a second while it falls
#: back to ExternalPayment after a failed session on the same plug-in).
DEFAULT_MAX_CONNECTIONS = 8
#: How many of them may come from one peer address.
DEFAULT_MAX_PER_PEER = 2


class ConnectionLimits:
    """Caps on a charger's live connections, shared by its servers (pass one object to each).

    A connection beyond ``max_connections`` in all or ``max_per_peer`` from one address is reset
    right after ``accept`` (``SO_LINGER`` 0): before any TLS state exists for it, so idle peers cannot
    pile up memory or file descriptors.  ``None`` lifts a cap.  :attr:`refused` counts the resets."""

    def __init__(self, max_connections: Optional[int] = DEFAULT_MAX_CONNECTIONS,
                 max_per_peer: Optional[int] = DEFAULT_MAX_PER_PEER) -> None:
        for name, value in (("max_connections", max_connections), ("max_per_peer", max_per_peer)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be 1 or more (or None for no cap), not {value}")
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self._peers: collections.Counter[str] = collections.Counter()
        #: connections reset because a cap was reached
        self.refused = 0

    @property
    def active(self) -> int:
        """Connections held now."""
        return sum(self._peers.values())

    def peer_count(self, peer: str) -> int:
        """Connections held now from the address ``peer``."""
        return self._peers.get(peer, 0)

    def admit(self, peer: str) -> Optional[str]:
        """Take a slot for a connection from ``peer``; the reason it gets none (it is then refused)."""
        if self.max_connections is not None and self.active >= self.max_connections:
            self.refused += 1
            return f"{self.active} connections held (max_connections {self.max_connections})"
        if self.max_per_peer is not None and self._peers[peer] >= self.max_per_peer:
            self.refused += 1
            return f"{self._peers[peer]} connections held from this address (max_per_peer {self.max_per_peer})"
        self._peers[peer] += 1
        return None

    def release(self, peer: str) -> None:
        """Give back the slot of a connection from ``peer`` that ended."""
        if self._peers[peer] <= 1:
            del self._peers[peer]
        else:
            self._peers[peer] -= 1


def _peer_host(addr: Any) -> str:
    host = str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)
    return host.split("%", 1)[0]  # one peer whatever zone the kernel reports


def _reset(conn: socket.socket) -> None:
    """Close an accepted socket with a TCP RST (no FIN handshake, no TIME_WAIT kept here)."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


class Server:
    """A listening charger (SECC) server: its own accept loop, so that the connection caps
    (:class:`ConnectionLimits`) apply before a refused connection costs anything."""

    def __init__(self, sock: socket.socket, handler: Handler, *, ssl_context: ssl.SSLContext | None,
                 max_payload: int, allowed_types: Collection[int] | None, handshake_timeout: float,
                 limits: ConnectionLimits | None) -> None:
        self._sock: socket.socket | None = sock
        self.sockname: Any = sock.getsockname()
        self._handler = handler
        self._ssl = ssl_context
        self._max_payload = max_payload
        self._allowed_types = allowed_types
        self._handshake_timeout = handshake_timeout
        #: the caps in force (None: none)
        self.limits = limits
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None
        #: handler failures (exceptions are logged, never propagated to the loop)
        self.handler_errors = 0
        #: TLS handshakes that failed or timed out
        self.handshake_errors = 0

    @property
    def host(self) -> str:
        """Bound host."""
        return str(self.sockname[0])

    @property
    def port(self) -> int:
        """Bound TCP port (useful with ``port=0``)."""
        return int(self.sockname[1])

    def _start(self) -> None:
        self._accepting = asyncio.ensure_future(self._accept_loop())

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        sock = self._sock
        assert sock is not None
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:  # EMFILE, ENOBUFS ...: keep serving, do not spin
                peer_log.warning("accept failed", "charger: accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            peer = _peer_host(addr)
            why = self.limits.admit(peer) if self.limits is not None else None
            if why is not None:
                _reset(conn)
                peer_log.info("refused connection", "charger: connection from %s refused: %s", peer, why)
                continue
            task = asyncio.ensure_future(self._serve(conn, peer))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket, peer: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            conn.setblocking(False)
            reader = asyncio.StreamReader(limit=_READ_LIMIT)
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol, conn, ssl=self._ssl,
                    ssl_handshake_timeout=self._handshake_timeout if self._ssl is not None else None)
            except (OSError, ssl.SSLError, asyncio.TimeoutError, ConnectionError) as exc:
                self.handshake_errors += 1
                conn.close()
                peer_log.info("failed handshake", "charger: TLS handshake with %s failed: %s", peer,
                              exc.__class__.__name__ if not str(exc) else exc)
                return
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            stream = V2GTPStream(reader, writer, max_payload=self._max_payload, allowed_types=self._allowed_types)
            try:
                await self._handler(stream)
            except asyncio.CancelledError:
                pass
            except Exception:
                self.handler_errors += 1
                logger.exception("charger connection handler failed (peer %s)", peer)
            finally:
                await stream.aclose()
        finally:
            if self.limits is not None:
                self.limits.release(peer)

    @property
    def connections(self) -> int:
        """Connections this server is handling now."""
        return len(self._tasks)

    def stop_accepting(self) -> None:
        """Close the listening socket; connections already accepted go on."""
        if self._accepting is not None:
            self._accepting.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Stop accepting connections and cancel running handlers."""
        self.stop_accepting()
        for t in list(self._tasks):
            t.cancel()

    async def wait_closed(self) -> None:
        """Wait for the accept loop and all handlers to finish."""
        waiting = [t for t in (self._accepting, *self._tasks) if t is not None]
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)
        peer_log.flush()

    async def __aenter__(self) -> "Server":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def start_charger_server(
    handler: Handler,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    allowed_types: Collection[int] | None = None,
    handshake_timeout: float = 10.0,
    limits: ConnectionLimits | None = None,
    backlog: int = 100,
) -> Server:
    """Listen on ``host:port`` and run ``handler(stream)`` per connection.

    Port 0 picks a free port in the Dynamic Ports range (:data:`DYNAMIC_PORTS`), as the SDP
    response must name one; read it from :attr:`Server.port`.  A link-local ``host`` takes its
    zone (``"fe80::1%eth0"``).

    With ``ssl_context`` (see :func:`plugcharge.net.tls.server_context`) connections are TLS; a
    handshake must complete within ``handshake_timeout`` seconds.  ``limits`` caps the connections
    held at once (default: a :class:`ConnectionLimits` of :data:`DEFAULT_MAX_CONNECTIONS` and
    :data:`DEFAULT_MAX_PER_PEER` for this server alone; pass one object to several servers to share
    the caps, ``ConnectionLimits(None, None)`` for none).  Handler exceptions are logged and counted
    in :attr:`Server.handler_errors`; the connection is closed when the handler ends.
    """
    sock = await _listen_socket(host, port)
    try:
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    server = Server(sock, handler, ssl_context=ssl_context, max_payload=max_payload, allowed_types=allowed_types,
                    handshake_timeout=handshake_timeout, limits=limits if limits is not None else ConnectionLimits())
    server._start()
    return server


async def open_ev_connection(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    allowed_types: Collection[int] | None = None,
    verify_peer: PeerCheck | None = None,
) -> V2GTPStream:
    """Connect to a charger (EVCC side), TLS when ``ssl_context`` is given.

    ``timeout`` bounds connect + handshake.  ``verify_peer(leaf_der)`` runs after the handshake
    (e.g. the -2 check that the SECC leaf carries DC=CPO); if it raises, the connection is closed
    and the exception propagates.  ``ssl.SSLError`` (e.g. an untrusted SECC chain) propagates.
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ssl_context, server_hostname=None if ssl_context is None else ""),
            timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"connecting to {host}:{port} took more than {timeout} s") from None
    stream = V2GTPStream(reader, writer, max_payload=max_payload, allowed_types=allowed_types)
    if verify_peer is not None and ssl_context is not None:
        leaf = stream.peer_certificate
        try:
            if leaf is None:
                raise ssl.SSLError("SECC sent no certificate")
            verify_peer(leaf)
        except BaseException:
            await stream.aclose()
            raise
    return stream
