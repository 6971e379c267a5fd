"""A V2GTP frame stream over an asyncio ``StreamReader``/``StreamWriter`` pair (TCP or TLS).

:class:`V2GTPStream` is what :mod:`plugcharge.net.transport` hands a charger's handler and returns to an
EV, and what :mod:`plugcharge.net.runner` moves frames through.  Frames of a payload type V2GTP does
not define are skipped (the standard's "discard message"), logged at most a few lines a second
(:class:`~plugcharge.net.logs.RateLimitedLog`).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from typing import Any, Collection, Optional

from .logs import RateLimitedLog
from .tls import peer_chain
from ..core.v2gtp import DEFAULT_MAX_PAYLOAD, Frame, FrameReader, HeaderAction, V2GTPError, encode_frame

__all__ = ["TransportClosed", "V2GTPStream"]

logger = logging.getLogger("plugcharge.net.transport")
#: what peers make the streams log (discarded frames), a few lines a second at most
peer_log = RateLimitedLog(logger)

_READ_CHUNK = 65536


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
                    peer_log.info("discarded V2GTP frame", "V2GTP: discarding frame: %s", exc)
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
