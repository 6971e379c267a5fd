"""V2G Transfer Protocol (V2GTP) framing, sans-IO.

Every V2G message (EXI over TCP/TLS, SDP over UDP) travels in a V2GTP frame: an 8-byte header
followed by the payload (ISO 15118-2 §7.8.3, ISO 15118-20 §7.8.3)::

    offset 0   protocol version        0x01
    offset 1   inverse version         0xFE  (version XOR 0xFF)
    offset 2   payload type            uint16 big-endian (see :class:`PayloadType`)
    offset 4   payload length          uint32 big-endian, header excluded
    offset 8   payload

The payload-type table and the receiver's reaction to a bad header are data
(:data:`PAYLOAD_TYPES`, :data:`HEADER_ERROR_ACTION`).  Requirement numbers: the -2 header fields
and their processing are in clause 7.8.3 (the exact [V2G2-xxx] numbers were not at hand, so they
are not quoted); the -20 payload types are Table 12 of ISO 15118-20 (as quoted by public
implementations).

Nothing here does I/O: :func:`encode_frame` builds bytes, :func:`decode_header` checks a header,
:class:`FrameReader` turns an arbitrary sequence of byte chunks (split or coalesced) into frames.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Collection, Iterator, Mapping

__all__ = [
    "PROTOCOL_VERSION",
    "INVERSE_PROTOCOL_VERSION",
    "HEADER_LENGTH",
    "DEFAULT_MAX_PAYLOAD",
    "PayloadType",
    "PAYLOAD_TYPES",
    "ISO2_PAYLOAD_TYPES",
    "ISO20_PAYLOAD_TYPES",
    "ErrorKind",
    "HeaderAction",
    "HEADER_ERROR_ACTION",
    "V2GTPError",
    "Header",
    "Frame",
    "encode_frame",
    "append_frame",
    "decode_header",
    "decode_frame",
    "FrameReader",
]

#: Protocol version byte (V2GTP version 1) [ISO 15118-2 §7.8.3.2].
PROTOCOL_VERSION = 0x01
#: Bitwise inverse of the protocol version.
INVERSE_PROTOCOL_VERSION = 0xFE
#: Size of the generic V2GTP header.
HEADER_LENGTH = 8
#: Default bound on the payload length a reader accepts.  The largest -2 messages carry a few
#: certificates (at most 800 bytes each) and stay well below 8 KiB; -20 certificates may reach
#: 1600 bytes and CertificateInstallationRes carries several chains, hence the headroom.  The
#: header itself allows 2**32-1, which a receiver must never try to buffer.
DEFAULT_MAX_PAYLOAD = 64 * 1024

_HEADER = struct.Struct(">BBHI")


class PayloadType(enum.IntEnum):
    """V2GTP payload types (ISO 15118-2 Table 10, ISO 15118-20 Table 12).

    ``EXI`` (0x8001) is the only EXI payload type in DIN 70121 and ISO 15118-2; in ISO 15118-20
    the same value carries the SupportedAppProtocol handshake (``SAP``) and the other messages
    use the per-energy-service "main stream" types.
    """

    EXI = 0x8001  # -2: EXI encoded V2G message; -20: SAP (SupportedAppProtocol)
    MAINSTREAM = 0x8002  # -20: CommonMessages
    AC_MAINSTREAM = 0x8003  # -20: AC
    DC_MAINSTREAM = 0x8004  # -20: DC
    ACDP_MAINSTREAM = 0x8005  # -20: ACDP
    WPT_MAINSTREAM = 0x8006  # -20: WPT
    SCHEDULE_RENEGOTIATION = 0x8101  # -20
    METERING_CONFIRMATION = 0x8102  # -20
    ACDP_SYSTEM_STATUS = 0x8103  # -20
    PARKING_STATUS = 0x8104  # -20
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002  # -20 (ACDP / wireless)
    SDP_RESPONSE_WIRELESS = 0x9003  # -20 (ACDP / wireless)

    SAP = 0x8001  # alias of EXI under its -20 name


#: Payload types of DIN SPEC 70121 and ISO 15118-2 (Table 10).
ISO2_PAYLOAD_TYPES: frozenset[int] = frozenset({PayloadType.EXI, PayloadType.SDP_REQUEST, PayloadType.SDP_RESPONSE})
#: Payload types of ISO 15118-20 (Table 12).
ISO20_PAYLOAD_TYPES: frozenset[int] = frozenset(int(p) for p in PayloadType)
#: Every payload type this module knows, with a short description (manufacturer-specific types
#: 0xA000..0xFFFF are not listed: a reader accepts them only when told to).
PAYLOAD_TYPES: Mapping[int, str] = MappingProxyType({
    0x8001: "EXI encoded V2G message (-2) / SupportedAppProtocol (-20)",
    0x8002: "-20 main stream (CommonMessages)",
    0x8003: "-20 AC main stream",
    0x8004: "-20 DC main stream",
    0x8005: "-20 ACDP main stream",
    0x8006: "-20 WPT main stream",
    0x8101: "-20 schedule renegotiation",
    0x8102: "-20 metering confirmation",
    0x8103: "-20 ACDP system status",
    0x8104: "-20 parking status",
    0x9000: "SDP request",
    0x9001: "SDP response",
    0x9002: "-20 SDP request (wireless)",
    0x9003: "-20 SDP response (wireless)",
})


class ErrorKind(enum.Enum):
    """Why a V2GTP header or frame was rejected."""

    BAD_VERSION = "bad_version"
    BAD_INVERSE = "bad_inverse"
    UNKNOWN_PAYLOAD_TYPE = "unknown_payload_type"
    TOO_LARGE = "too_large"
    TRUNCATED = "truncated"
    LENGTH_MISMATCH = "length_mismatch"


class HeaderAction(enum.Enum):
    """What a receiving V2GTP entity does with a frame whose header failed a check."""

    #: Drop the connection (TCP/TLS): the byte stream can no longer be re-synchronised.
    CLOSE_CONNECTION = "close_connection"
    #: Skip this frame's payload and continue with the next frame.
    DISCARD_MESSAGE = "discard_message"
    #: Datagram transports (SDP over UDP): ignore the datagram.
    IGNORE_DATAGRAM = "ignore_datagram"


#: Receiver reaction per error on a stream transport (ISO 15118-2 §7.8.3 header processing, the
#: same scheme as the ISO 13400-2 generic header handler V2GTP is modelled on, but without the
#: negative-acknowledge messages, which V2GTP does not have).  A wrong version pattern means the
#: stream is out of sync: close.  An unknown payload type with a plausible length can be skipped.
#: A length beyond the receiver's buffer cannot be skipped safely: close.  On UDP every error
#: leads to :attr:`HeaderAction.IGNORE_DATAGRAM`.
HEADER_ERROR_ACTION: Mapping[ErrorKind, HeaderAction] = MappingProxyType({
    ErrorKind.BAD_VERSION: HeaderAction.CLOSE_CONNECTION,
    ErrorKind.BAD_INVERSE: HeaderAction.CLOSE_CONNECTION,
    ErrorKind.UNKNOWN_PAYLOAD_TYPE: HeaderAction.DISCARD_MESSAGE,
    ErrorKind.TOO_LARGE: HeaderAction.CLOSE_CONNECTION,
    ErrorKind.TRUNCATED: HeaderAction.CLOSE_CONNECTION,
    ErrorKind.LENGTH_MISMATCH: HeaderAction.IGNORE_DATAGRAM,
})


class V2GTPError(ValueError):
    """A V2GTP header or frame is invalid.

    Attributes:
        kind: the :class:`ErrorKind`.
        offset: byte offset of the offending field, counted from the start of the stream (for
            :class:`FrameReader`) or of the buffer (for the one-shot functions).
        reason: human-readable detail.
        payload_type: the header's payload type when it could be read, else ``None``.
        action: what the receiver should do (:data:`HEADER_ERROR_ACTION`).
    """

    def __init__(self, kind: ErrorKind, offset: int, reason: str, *, payload_type: int | None = None) -> None:
        self.kind = kind
        self.offset = offset
        self.reason = reason
        self.payload_type = payload_type
        self.action = HEADER_ERROR_ACTION[kind]
        #: Frames a :class:`FrameReader` completed in the same call before the error: :class:`Frame`
        #: objects from ``feed``, ``(payload type, payload)`` tuples from ``feed_payloads``.
        self.frames: list[Any] = []
        super().__init__(f"V2GTP {kind.value} at byte {offset}: {reason}")


@dataclass(frozen=True, slots=True)
class Header:
    """A decoded V2GTP header."""

    payload_type: int
    payload_length: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete V2GTP frame: payload type and payload bytes (header stripped)."""

    payload_type: int
    payload: bytes

    def __iter__(self) -> Iterator[object]:  # allows ``ptype, payload = frame``
        yield self.payload_type
        yield self.payload


def _check_type(payload_type: int, allowed: Collection[int] | None, offset: int) -> None:
    known = allowed if allowed is not None else PAYLOAD_TYPES
    if payload_type not in known:
        raise V2GTPError(ErrorKind.UNKNOWN_PAYLOAD_TYPE, offset + 2,
                         f"payload type 0x{payload_type:04X} is not accepted", payload_type=payload_type)


def encode_frame(payload_type: int, payload: bytes) -> bytes:
    """Return the V2GTP frame (header + payload) for ``payload``.

    Raises ``ValueError`` when ``payload_type`` does not fit 16 bits or ``payload`` is longer
    than the 32-bit length field allows.
    """
    if not 0 <= int(payload_type) <= 0xFFFF:
        raise ValueError(f"payload type {payload_type!r} does not fit 16 bits")
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("payload longer than 2**32-1 bytes")
    return _HEADER.pack(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, int(payload_type), len(payload)) + bytes(payload)


def append_frame(out: bytearray, payload_type: int, payload: bytes) -> None:
    """Append the V2GTP frame of ``payload`` to ``out`` (:func:`encode_frame` without the joined copy)."""
    if not 0 <= payload_type <= 0xFFFF:
        raise ValueError(f"payload type {payload_type!r} does not fit 16 bits")
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("payload longer than 2**32-1 bytes")
    out += _HEADER.pack(PROTOCOL_VERSION, INVERSE_PROTOCOL_VERSION, payload_type, len(payload))
    out += payload


def decode_header(
    data: bytes | bytearray | memoryview,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    allowed_types: Collection[int] | None = None,
    offset: int = 0,
) -> Header:
    """Check and decode the 8-byte header at the start of ``data``.

    Checks in the order a receiver applies them: version, inverse version, payload type
    (``allowed_types``, default every type in :data:`PAYLOAD_TYPES`), payload length against
    ``max_payload``.  ``offset`` is added to the byte offsets of errors (stream position).
    """
    if len(data) < HEADER_LENGTH:
        raise V2GTPError(ErrorKind.TRUNCATED, offset + len(data),
                         f"header needs {HEADER_LENGTH} bytes, got {len(data)}")
    version, inverse, ptype, length = _HEADER.unpack_from(data, 0)
    if version != PROTOCOL_VERSION:
        raise V2GTPError(ErrorKind.BAD_VERSION, offset, f"protocol version 0x{version:02X}, expected 0x01")
    if inverse != INVERSE_PROTOCOL_VERSION:
        raise V2GTPError(ErrorKind.BAD_INVERSE, offset + 1,
                         f"inverse protocol version 0x{inverse:02X}, expected 0xFE")
    _check_type(ptype, allowed_types, offset)
    if length > max_payload:
        raise V2GTPError(ErrorKind.TOO_LARGE, offset + 4,
                         f"payload length {length} exceeds the limit of {max_payload}", payload_type=ptype)
    return Header(ptype, length)


def decode_frame(
    data: bytes | bytearray | memoryview,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    allowed_types: Collection[int] | None = None,
) -> Frame:
    """Decode exactly one frame that fills ``data`` (a UDP datagram, e.g. SDP).

    Raises :class:`V2GTPError` with kind ``TRUNCATED`` when the payload is shorter than the
    header says and ``LENGTH_MISMATCH`` when bytes follow it.
    """
    header = decode_header(data, max_payload=max_payload, allowed_types=allowed_types)
    end = HEADER_LENGTH + header.payload_length
    if len(data) < end:
        raise V2GTPError(ErrorKind.TRUNCATED, len(data),
                         f"payload length {header.payload_length} but only {len(data) - HEADER_LENGTH} bytes follow",
                         payload_type=header.payload_type)
    if len(data) > end:
        raise V2GTPError(ErrorKind.LENGTH_MISMATCH, end,
                         f"{len(data) - end} bytes after the payload", payload_type=header.payload_type)
    return Frame(header.payload_type, bytes(data[HEADER_LENGTH:end]))


class FrameReader:
    """Incremental, sans-IO V2GTP frame parser for a byte stream (TCP/TLS).

    Feed whatever the socket delivered; get back every frame completed by it::

        reader = FrameReader(max_payload=16384)
        for frame in reader.feed(chunk):
            handle(frame.payload_type, frame.payload)

    A header error raises :class:`V2GTPError` (with the stream offset) from :meth:`feed`; frames
    completed by the same call before the bad header are in the exception's ``frames``.  If its
    :attr:`V2GTPError.action` is ``DISCARD_MESSAGE`` the reader has already arranged to skip that
    frame's payload and can be fed on; after ``CLOSE_CONNECTION`` it refuses further input.
    The reader never buffers more than one header plus ``max_payload`` bytes of a frame beyond
    the frames it returns.
    """

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD, allowed_types: Collection[int] | None = None) -> None:
        if max_payload < 0:
            raise ValueError("max_payload must be >= 0")
        self.max_payload = max_payload
        self.allowed_types = frozenset(allowed_types) if allowed_types is not None else None
        self._buf = bytearray()
        self._pos = 0  # stream offset of self._buf[0]
        self._skip = 0  # payload bytes still to drop after a discarded frame
        self._failed: V2GTPError | None = None

    @property
    def offset(self) -> int:
        """Number of stream bytes consumed so far (start of the buffered, incomplete data)."""
        return self._pos

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return the frames they complete (possibly none)."""
        try:
            return [Frame(t, p) for t, p in self.feed_payloads(data)]
        except V2GTPError as exc:
            exc.frames = [f if isinstance(f, Frame) else Frame(*f) for f in exc.frames]
            raise

    def feed_payloads(self, data: bytes) -> list[tuple[int, bytes]]:
        """:meth:`feed` returning ``(payload type, payload)`` tuples instead of :class:`Frame`
        objects (what a session loop wants; the errors are the same, their ``frames`` tuples too)."""
        if not self._buf and not self._skip and self._failed is None and len(data) >= HEADER_LENGTH:
            # the common case: the bytes are exactly one whole frame and nothing is buffered
            version, inverse, ptype, length = _HEADER.unpack_from(data, 0)
            if (len(data) == HEADER_LENGTH + length and version == PROTOCOL_VERSION
                    and inverse == INVERSE_PROTOCOL_VERSION and length <= self.max_payload
                    and ptype in (self.allowed_types if self.allowed_types is not None else PAYLOAD_TYPES)):
                self._pos += len(data)
                return [(ptype, bytes(data[HEADER_LENGTH:]))]
        if self._failed is not None:
            raise V2GTPError(self._failed.kind, self._failed.offset,
                             f"stream already failed: {self._failed.reason}")
        mv = memoryview(data)
        if self._skip:
            n = min(self._skip, len(mv))
            self._skip -= n
            self._pos += n
            mv = mv[n:]
        self._buf += mv
        frames: list[Any] = []
        buf = self._buf
        known = self.allowed_types if self.allowed_types is not None else PAYLOAD_TYPES
        unpack = _HEADER.unpack_from
        p = 0  # consumed bytes of buf in this call; compacted once at the end (no quadratic moves)
        try:
            while len(buf) - p >= HEADER_LENGTH:
                version, inverse, ptype, length = unpack(buf, p)
                if (version != PROTOCOL_VERSION or inverse != INVERSE_PROTOCOL_VERSION or ptype not in known
                        or length > self.max_payload):
                    p = self._header_error(buf, p, frames)  # raises, or skips a discardable frame
                    continue
                end = p + HEADER_LENGTH + length
                if len(buf) < end:
                    break
                frames.append((ptype, bytes(buf[p + HEADER_LENGTH:end])))
                p = end
        finally:
            if p:
                del buf[:p]
                self._pos += p
        return frames

    def _header_error(self, buf: bytearray, p: int, frames: list[Any]) -> int:
        """Raise the typed error for the bad header at ``buf[p:]``; for a discardable frame first
        arrange to skip it (consumed bytes are accounted by the caller's ``finally``)."""
        try:
            decode_header(bytes(buf[p:p + HEADER_LENGTH]), max_payload=self.max_payload,
                          allowed_types=self.allowed_types, offset=self._pos + p)
        except V2GTPError as exc:
            exc.frames = frames
            if exc.action is HeaderAction.DISCARD_MESSAGE:
                length = int.from_bytes(buf[p + 4:p + 8], "big")
                if length > self.max_payload:  # cannot skip what we may not buffer: close
                    exc = V2GTPError(ErrorKind.TOO_LARGE, self._pos + p + 4,
                                     f"unknown payload type with length {length} beyond the limit",
                                     payload_type=exc.payload_type)
                    exc.frames = frames
                    self._failed = exc
                    raise exc from None
                start = p + HEADER_LENGTH
                take = min(length, len(buf) - start)
                self._skip = length - take
                # drop this frame's header and available payload; the caller's ``finally``
                # then drops the p bytes of completed frames before it
                del buf[p:start + take]
                self._pos += start + take - p
                raise
            self._failed = exc
            raise
        raise AssertionError("unreachable: header passed the checks")  # pragma: no cover

    def eof(self) -> None:
        """Signal end of stream: raises ``TRUNCATED`` if a frame was incomplete."""
        if self._buf or self._skip:
            raise V2GTPError(ErrorKind.TRUNCATED, self._pos + len(self._buf),
                             f"stream ended inside a frame ({len(self._buf)} bytes buffered)")
