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
from typing import Any, Awaitable, Callable, Collection, Optional

from .tls import PeerCheck, peer_chain
from ..core.v2gtp import DEFAULT_MAX_PAYLOAD, Frame, FrameReader, HeaderAction, V2GTPError, encode_frame

__all__ = [
    "DYNAMIC_PORTS",
    "TransportClosed",
    "V2GTPStream",
    "Server",
    "start_charger_server",
    "open_ev_connection",
]

logger = logging.getLogger(__name__)

_READ_CHUNK = 65536

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


class TransportClosed(ConnectionError):
    """The peer closed the connection (cleanly, between frames)."""


class V2GTPStream:
    """A V2GTP frame stream over an asyncio ``StreamReader``/``StreamWriter`` pair (TCP or TLS).

    Frames with an unknown payload type are skipped (the standard's "discard message"); every
    other header error raises :class:`~plugcharge.core.v2gtp.V2GTPError` and the stream should be
    closed.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        allowed_types: Collection[int] | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._frames: collections.deque[Frame] = collections.deque()
        self._parser = FrameReader(max_payload=max_payload, allowed_types=allowed_types)
        #: frames skipped because of an unknown payload type
        self.discarded = 0
        self._closed = False

    # -- information ---------------------------------------------------------------------
    @property
    def peername(self) -> Any:
        """Remote socket address."""
        return self._writer.get_extra_info("peername")

    @property
    def sockname(self) -> Any:
        """Local socket address."""
        return self._writer.get_extra_info("sockname")

    @property
    def tls(self) -> bool:
        """Whether the connection is TLS-protected."""
        return self._writer.get_extra_info("ssl_object") is not None

    @property
    def tls_version(self) -> Optional[str]:
        """Negotiated TLS version (``"TLSv1.2"``, ``"TLSv1.3"``) or ``None`` for plain TCP."""
        obj = self._writer.get_extra_info("ssl_object")
        return obj.version() if obj is not None else None

    @property
    def cipher(self) -> Optional[str]:
        """Negotiated cipher suite (OpenSSL name) or ``None``."""
        obj = self._writer.get_extra_info("ssl_object")
        return obj.cipher()[0] if obj is not None else None

    @property
    def peer_certificate(self) -> Optional[bytes]:
        """DER of the peer's leaf certificate, when TLS is used and the peer sent one."""
        obj = self._writer.get_extra_info("ssl_object")
        return obj.getpeercert(binary_form=True) if obj is not None else None

    @property
    def peer_chain(self) -> tuple[bytes, ...]:
        """The certificate chain the peer sent (DER, leaf first; empty without TLS or certificate):
        in ISO 15118-20 on the SECC, the vehicle chain [V2G20-2430]."""
        obj = self._writer.get_extra_info("ssl_object")
        return peer_chain(obj) if obj is not None else ()

    @property
    def peer_verified(self) -> Any:
        """What the -20 context's chain check returned after the handshake (the vehicle chain on the
        SECC, the SECC chain on the EVCC, as ``pki.VerifiedChain``), else None; its OCSP request
        data (``pki.ocsp.ocpp_request_data``) is what the SECC asks the backend about [V2G20-2432]."""
        obj = self._writer.get_extra_info("ssl_object")
        return getattr(obj, "peer_verified", None)

    # -- I/O -----------------------------------------------------------------------------
    async def read_frame(self, timeout: float | None = None) -> Frame:
        """Return the next complete frame (unpacks as ``(payload_type, payload)``).

        Raises ``TimeoutError`` when no complete frame arrived within ``timeout`` seconds (the
        partial frame is kept; reading again continues it), :class:`TransportClosed` on a clean
        close by the peer, :class:`V2GTPError` on a bad header or a close inside a frame.
        """
        if self._frames:
            return self._frames.popleft()
        try:
            return await asyncio.wait_for(self._read_loop(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no V2GTP frame within {timeout} s") from None

    async def _read_loop(self) -> Frame:
        while not self._frames:
            data = await self._reader.read(_READ_CHUNK)
            if not data:
                self._parser.eof()  # raises TRUNCATED inside a frame
                raise TransportClosed("connection closed by peer")
            while True:
                try:
                    self._frames.extend(self._parser.feed(data))
                    break
                except V2GTPError as exc:
                    self._frames.extend(exc.frames)
                    if exc.action is not HeaderAction.DISCARD_MESSAGE:
                        if self._frames:  # deliver what came before; the error repeats on next feed
                            return self._frames.popleft()
                        raise
                    self.discarded += 1
                    logger.info("V2GTP: discarding frame: %s", exc)
                    data = b""  # go on parsing what is already buffered
        return self._frames.popleft()

    async def write_frame(self, payload_type: int, payload: bytes) -> None:
        """Send one frame and wait until the transport buffer has drained."""
        if self._closed:
            raise TransportClosed("stream is closed")
        self._writer.write(encode_frame(payload_type, payload))
        await self._writer.drain()

    async def write_raw(self, frames: bytes) -> None:
        """Send bytes that already are complete V2GTP frames (e.g. a sans-IO session's
        ``data_to_send()``), unchanged, and wait for the buffer to drain."""
        if self._closed:
            raise TransportClosed("stream is closed")
        if frames:
            self._writer.write(frames)
            await self._writer.drain()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if not self._closed:
            self._closed = True
            self._writer.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (errors of an aborted TLS shutdown ignored)."""
        try:
            await self._writer.wait_closed()
        except (ConnectionError, ssl.SSLError, OSError):
            pass

    async def aclose(self) -> None:
        """``close()`` then ``wait_closed()``."""
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> "V2GTPStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


Handler = Callable[[V2GTPStream], Awaitable[None]]


class Server:
    """A listening charger (SECC) server; wraps ``asyncio.Server``."""

    def __init__(self, server: asyncio.base_events.Server) -> None:
        self._server = server
        self._tasks: set[asyncio.Task[None]] = set()
        #: handler failures (exceptions are logged, never propagated to the loop)
        self.handler_errors = 0

    @property
    def sockname(self) -> Any:
        """Address of the first listening socket."""
        return self._server.sockets[0].getsockname()

    @property
    def host(self) -> str:
        """Bound host."""
        return str(self.sockname[0])

    @property
    def port(self) -> int:
        """Bound TCP port (useful with ``port=0``)."""
        return int(self.sockname[1])

    def close(self) -> None:
        """Stop accepting connections and cancel running handlers."""
        self._server.close()
        for t in list(self._tasks):
            t.cancel()

    async def wait_closed(self) -> None:
        """Wait for the listener and all handlers to finish."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

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
) -> Server:
    """Listen on ``host:port`` and run ``handler(stream)`` per connection.

    Port 0 picks a free port in the Dynamic Ports range (:data:`DYNAMIC_PORTS`), as the SDP
    response must name one; read it from :attr:`Server.port`.  A link-local ``host`` takes its
    zone (``"fe80::1%eth0"``).

    With ``ssl_context`` (see :func:`plugcharge.net.tls.server_context`) connections are TLS.
    Handler exceptions are logged and counted in :attr:`Server.handler_errors`; the connection is
    closed when the handler ends.
    """
    holder: list[Server] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        srv = holder[0]
        task = asyncio.current_task()
        if task is not None:
            srv._tasks.add(task)  # type: ignore[arg-type]
        stream = V2GTPStream(reader, writer, max_payload=max_payload, allowed_types=allowed_types)
        try:
            await handler(stream)
        except asyncio.CancelledError:
            pass
        except Exception:
            srv.handler_errors += 1
            logger.exception("charger connection handler failed (peer %s)", stream.peername)
        finally:
            await stream.aclose()
            if task is not None:
                srv._tasks.discard(task)  # type: ignore[arg-type]

    sock = await _listen_socket(host, port)
    try:
        aserver = await asyncio.start_server(on_connect, sock=sock, ssl=ssl_context,
                                             ssl_handshake_timeout=handshake_timeout if ssl_context else None)
    except BaseException:
        sock.close()
        raise
    holder.append(Server(aserver))
    return holder[0]


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
