"""SECC Discovery Protocol (SDP): messages and an asyncio UDP server and client.

Before the TCP/TLS connection the EVCC finds the SECC's address and port with SDP (ISO 15118-2
§7.10.1, ISO 15118-20 §7.10.1):

* the EVCC sends an **SDP request** (V2GTP payload type 0x9000, 2-byte payload: requested
  security, requested transport protocol) as a UDP datagram to the link-local all-nodes multicast
  address ``ff02::1``, UDP port 15118 (``V2G_UDP_SDP_SERVER``);
* the SECC answers by unicast to the sender with an **SDP response** (0x9001, 20 bytes: the
  SECC's IPv6 address, its TCP port, the security it offers, the transport protocol);
* the EVCC repeats the request when no valid response arrives in time, up to
  :data:`SDP_MAX_REQUEST_COUNTER` requests, then gives up (:class:`SDPTimeoutError`).

Retry values are data: 50 requests (``SDP_MAX_REQUEST_COUNTER`` of public implementations), 250 ms
per request (``TP_EV_SDP``-style wait; the exact requirement number was not at hand).

The -20 wireless variants (0x9002/0x9003, used by ACDP) carry extra identifiers and are not
implemented here; such datagrams are ignored by the server like any other invalid request.

A *loopback mode* replaces the multicast with unicast to ``::1`` (or ``127.0.0.1`` on hosts
without IPv6), so tests and the demo run on one machine without a multicast-capable interface.
An IPv4 address travels in the 16-byte field as an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``).
"""
from __future__ import annotations

import asyncio
import dataclasses
import enum
import errno
import ipaddress
import logging
import socket
import struct
from dataclasses import dataclass
from typing import Callable, Optional, Union

from .logs import RateLimitedLog
from ..core.v2gtp import PayloadType, V2GTPError, decode_frame, encode_frame

__all__ = [
    "SDP_PORT",
    "SDP_MULTICAST_ADDRESS",
    "SDP_MAX_REQUEST_COUNTER",
    "SDP_REQUEST_TIMEOUT",
    "Security",
    "TransportProtocol",
    "SDPError",
    "SDPTimeoutError",
    "SDPRequest",
    "SDPResponse",
    "Responder",
    "make_responder",
    "SDPServer",
    "start_sdp_server",
    "discover_secc",
    "ipv6_available",
    "loopback_host",
    "link_local_address",
    "check_interface",
]

logger = logging.getLogger(__name__)
#: what peers make SDP log (invalid datagrams), a few lines a second at most
peer_log = RateLimitedLog(logger)

#: UDP port of the SDP server (``V2G_UDP_SDP_SERVER``).
SDP_PORT = 15118
#: Link-local all-nodes multicast group the EVCC sends its request to.
SDP_MULTICAST_ADDRESS = "ff02::1"
#: How many SDP requests the EVCC sends before giving up.
SDP_MAX_REQUEST_COUNTER = 50
#: How long the EVCC waits for a response to one request (seconds).
SDP_REQUEST_TIMEOUT = 0.25

_REQ_LEN = 2
_RES = struct.Struct(">16sHBB")

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


class Security(enum.IntEnum):
    """Security byte of SDP request and response."""

    TLS = 0x00
    NO_TLS = 0x10


class TransportProtocol(enum.IntEnum):
    """Transport-protocol byte of SDP request and response (only TCP is used by -2/-20)."""

    TCP = 0x00
    UDP = 0x10  # reserved


class SDPError(ValueError):
    """An SDP datagram is malformed.

    Attributes: ``field`` (name of the offending field), ``offset`` (byte offset in the datagram,
    V2GTP header included), ``reason``.
    """

    def __init__(self, field: str, offset: int, reason: str) -> None:
        self.field = field
        self.offset = offset
        self.reason = reason
        super().__init__(f"SDP {field} at byte {offset}: {reason}")


class SDPTimeoutError(TimeoutError):
    """No valid SDP response after ``requests`` requests (the EVCC gives up)."""

    def __init__(self, requests: int, timeout: float) -> None:
        self.requests = requests
        self.timeout = timeout
        super().__init__(f"no SDP response after {requests} request(s) of {timeout:g} s each")


def _enum(cls: type[enum.IntEnum], value: int, field: str, offset: int) -> enum.IntEnum:
    try:
        return cls(value)
    except ValueError:
        raise SDPError(field, offset, f"value 0x{value:02X} is not one of "
                       + ", ".join(f"0x{m.value:02X}" for m in cls)) from None


def _frame_payload(data: bytes, ptype: int) -> bytes:
    try:
        frame = decode_frame(data, allowed_types={ptype}, max_payload=64)
    except V2GTPError as exc:
        raise SDPError("V2GTP header", exc.offset, exc.reason) from None
    return frame.payload


@dataclass(frozen=True, slots=True)
class SDPRequest:
    """SDP request: what the EVCC asks for."""

    security: Security = Security.TLS
    transport: TransportProtocol = TransportProtocol.TCP

    def encode(self) -> bytes:
        """The 2-byte payload."""
        return bytes([int(self.security), int(self.transport)])

    def to_datagram(self) -> bytes:
        """Payload in its V2GTP frame (payload type 0x9000)."""
        return encode_frame(PayloadType.SDP_REQUEST, self.encode())

    @classmethod
    def decode(cls, payload: bytes, *, base: int = 0) -> "SDPRequest":
        """Decode the 2-byte payload (``base`` = offset of the payload in the datagram)."""
        if len(payload) != _REQ_LEN:
            raise SDPError("payload", base, f"SDP request payload must be 2 bytes, got {len(payload)}")
        return cls(_enum(Security, payload[0], "Security", base),  # type: ignore[arg-type]
                   _enum(TransportProtocol, payload[1], "TransportProtocol", base + 1))  # type: ignore[arg-type]

    @classmethod
    def from_datagram(cls, data: bytes) -> "SDPRequest":
        """Decode a whole datagram (V2GTP header + payload)."""
        return cls.decode(_frame_payload(data, PayloadType.SDP_REQUEST), base=8)


@dataclass(frozen=True, slots=True)
class SDPResponse:
    """SDP response: where the SECC listens and with which security."""

    address: IPAddress
    port: int
    security: Security = Security.TLS
    transport: TransportProtocol = TransportProtocol.TCP
    #: The interface the response arrived on (not on the wire): a link-local address is only
    #: reachable through it, so :attr:`host` appends it as the zone (``fe80::1%eth0``).
    interface: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", ipaddress.ip_address(self.address))
        if not 0 < self.port <= 0xFFFF:
            raise ValueError(f"port {self.port} out of range")

    @property
    def host(self) -> str:
        """The address as a string a socket can connect to (IPv4-mapped addresses as IPv4, a
        link-local address with its zone when :attr:`interface` is known)."""
        addr = self.address
        if isinstance(addr, ipaddress.IPv6Address):
            if addr.ipv4_mapped is not None:
                return str(addr.ipv4_mapped)
            if addr.is_link_local and self.interface:
                return f"{addr}%{self.interface}"
        return str(addr)

    def encode(self) -> bytes:
        """The 20-byte payload."""
        addr = self.address
        if isinstance(addr, ipaddress.IPv4Address):
            addr = ipaddress.IPv6Address(f"::ffff:{addr}")
        return _RES.pack(addr.packed, self.port, int(self.security), int(self.transport))

    def to_datagram(self) -> bytes:
        """Payload in its V2GTP frame (payload type 0x9001)."""
        return encode_frame(PayloadType.SDP_RESPONSE, self.encode())

    @classmethod
    def decode(cls, payload: bytes, *, base: int = 0) -> "SDPResponse":
        """Decode the 20-byte payload (``base`` = offset of the payload in the datagram)."""
        if len(payload) != _RES.size:
            raise SDPError("payload", base, f"SDP response payload must be 20 bytes, got {len(payload)}")
        raw, port, sec, tra = _RES.unpack(payload)
        if port == 0:
            raise SDPError("SECC Port", base + 16, "port 0")
        return cls(ipaddress.IPv6Address(raw), port,
                   _enum(Security, sec, "Security", base + 18),  # type: ignore[arg-type]
                   _enum(TransportProtocol, tra, "TransportProtocol", base + 19))  # type: ignore[arg-type]

    @classmethod
    def from_datagram(cls, data: bytes) -> "SDPResponse":
        """Decode a whole datagram (V2GTP header + payload)."""
        return cls.decode(_frame_payload(data, PayloadType.SDP_RESPONSE), base=8)


#: A server-side policy: request in, response out (``None`` = stay silent).
Responder = Callable[[SDPRequest], Optional[SDPResponse]]


def make_responder(address: str | IPAddress, *, tls_port: int | None = None, tcp_port: int | None = None) -> Responder:
    """The usual SECC policy: answer with the requested security when it is offered, otherwise
    with the one that is (the EVCC then decides; Plug & Charge needs TLS).  At least one port."""
    if tls_port is None and tcp_port is None:
        raise ValueError("give tls_port and/or tcp_port")
    addr = ipaddress.ip_address(address)

    def respond(req: SDPRequest) -> SDPResponse | None:
        if req.transport is not TransportProtocol.TCP:
            return None
        if req.security is Security.TLS and tls_port is not None:
            return SDPResponse(addr, tls_port, Security.TLS)
        if req.security is Security.NO_TLS and tcp_port is not None:
            return SDPResponse(addr, tcp_port, Security.NO_TLS)
        if tls_port is not None:
            return SDPResponse(addr, tls_port, Security.TLS)
        assert tcp_port is not None
        return SDPResponse(addr, tcp_port, Security.NO_TLS)

    return respond


def ipv6_available() -> bool:
    """Whether this host can bind a UDP socket to ``::1``."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def loopback_host() -> str:
    """``"::1"`` when IPv6 works on this host, else ``"127.0.0.1"``."""
    return "::1" if ipv6_available() else "127.0.0.1"


def check_interface(interface: str) -> None:
    """OSError (ENODEV, naming the interfaces there) when the network namespace of the calling thread
    has no interface ``interface``."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return
    if interface not in names:
        raise OSError(errno.ENODEV, f"no network interface named {interface!r} (here: {', '.join(names)})")


def link_local_address(interface: str) -> ipaddress.IPv6Address:
    """The interface's link-local IPv6 address (Linux ``/proc/thread-self/net/if_inet6``: the
    network namespace of the calling thread).  OSError (ENODEV naming the interfaces there) when no
    interface has that name, OSError when it has no link-local address."""
    check_interface(interface)
    for path in ("/proc/thread-self/net/if_inet6", "/proc/net/if_inet6"):
        try:
            with open(path, encoding="ascii") as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) >= 6 and parts[5] == interface:
                        addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
                        if addr.is_link_local:
                            return addr
            break
        except OSError:
            continue
    raise OSError(f"no link-local IPv6 address found on interface {interface!r}")


#: ``struct in6_pktinfo``: 16-byte destination address, interface index (native int).
_PKTINFO = struct.Struct("=16sI")


class SDPServer:
    """A running SDP server (the SECC side).  Use :func:`start_sdp_server` to create one."""

    def __init__(self, responder: Responder, sock: socket.socket, ifindex: int = 0) -> None:
        self._responder = responder
        self._sock: socket.socket | None = sock
        self._ifindex = ifindex
        self._loop = asyncio.get_running_loop()
        #: number of valid requests answered / invalid datagrams ignored
        self.requests = 0
        self.invalid_requests = 0
        #: requests that arrived on another interface than the server's (ignored)
        self.foreign_requests = 0
        self.sockname: tuple = sock.getsockname()
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def port(self) -> int:
        """The UDP port actually bound."""
        return int(self.sockname[1])

    @property
    def host(self) -> str:
        """The address actually bound."""
        return str(self.sockname[0])

    def _arrival_ifindex(self, ancdata: list) -> int:
        for level, kind, data in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == getattr(socket, "IPV6_PKTINFO", -1) \
                    and len(data) >= _PKTINFO.size:
                return int(_PKTINFO.unpack_from(data)[1])
        return 0

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(2048, socket.CMSG_SPACE(_PKTINFO.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket: keep serving
                peer_log.info("SDP receive error", "SDP: receive error ignored: %s", exc)
                return
            self._datagram(data, ancdata, addr)

    def _datagram(self, data: bytes, ancdata: list, addr: tuple) -> None:
        if self._ifindex:
            # one SECC answers for its own link only: a request that came in on another interface
            # belongs to another outlet (or another host) and gets no answer.
            arrived = self._arrival_ifindex(ancdata) or (addr[3] if len(addr) > 3 else 0)
            if arrived and arrived != self._ifindex:
                self.foreign_requests += 1
                logger.debug("SDP: ignoring a request that arrived on interface index %d", arrived)
                return
        try:
            req = SDPRequest.from_datagram(data)
        except SDPError as exc:
            self.invalid_requests += 1
            peer_log.info("invalid SDP datagram", "SDP: ignoring invalid datagram from %s: %s", addr[0], exc)
            return
        self.requests += 1
        try:
            res = self._responder(req)
        except Exception:  # a faulty policy must not kill the discovery server
            logger.exception("SDP responder failed")
            return
        if res is not None and self._sock is not None:
            try:
                self._sock.sendto(res.to_datagram(), addr)
            except OSError as exc:
                peer_log.info("unsent SDP response", "SDP: response to %s not sent: %s", addr[0], exc)

    def close(self) -> None:
        """Stop serving and release the socket (and say how many log lines were held back)."""
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            peer_log.flush()

    async def __aenter__(self) -> "SDPServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _bind_to_device(sock: socket.socket, interface: str) -> bool:
    """``SO_BINDTODEVICE`` where the platform allows it (Linux); False when it does not."""
    opt = getattr(socket, "SO_BINDTODEVICE", None)
    if opt is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, opt, interface.encode() + b"\0")
    except OSError:  # e.g. no privilege on an old kernel: the interface index filter still holds
        return False
    return True


def _multicast_server_socket(port: int, ifindex: int, interface: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        # several outlets of one charger run one server each on the same port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if interface:
            _bind_to_device(sock, interface)
        if hasattr(socket, "IPV6_RECVPKTINFO"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.bind(("::", port, 0, 0))
        mreq = socket.inet_pton(socket.AF_INET6, SDP_MULTICAST_ADDRESS) + struct.pack("@I", ifindex)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def start_sdp_server(
    responder: Responder,
    *,
    interface: str | None = None,
    port: int = SDP_PORT,
    loopback: bool = False,
    host: str | None = None,
) -> SDPServer:
    """Start an SDP server answering with ``responder``.

    Multicast mode (default): binds ``[::]:port``, joins ``ff02::1`` on ``interface`` (name) and
    answers only requests that arrived on that interface (``SO_BINDTODEVICE`` where allowed, and
    always the arrival interface index from ``IPV6_PKTINFO``), so that the servers of several
    outlets, one per interface, each answer for their own link.  ``interface=None`` lets the
    kernel choose the group's interface and answers on every interface.  Loopback mode: binds
    ``host`` (default :func:`loopback_host`) and ``port`` (0 = any free port; read
    :attr:`SDPServer.port`).
    """
    if loopback:
        bind_host = host or loopback_host()
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((bind_host, port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return SDPServer(responder, sock)
    ifindex = socket.if_nametoindex(interface) if interface else 0
    return SDPServer(responder, _multicast_server_socket(port, ifindex, interface), ifindex)


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.queue.put_nowait(data)


async def discover_secc(
    request: SDPRequest = SDPRequest(),
    *,
    interface: str | None = None,
    port: int = SDP_PORT,
    loopback: bool = False,
    host: str | None = None,
    timeout: float = SDP_REQUEST_TIMEOUT,
    max_requests: int = SDP_MAX_REQUEST_COUNTER,
) -> SDPResponse:
    """EVCC side: send SDP requests until a valid response arrives; return it.

    Multicast mode sends to ``ff02::1`` on ``interface`` (hop limit 1); loopback mode sends
    unicast to ``host`` (default :func:`loopback_host`).  Each request waits ``timeout`` seconds;
    invalid datagrams are ignored (and do not reset the wait).  After ``max_requests`` requests
    without an answer raises :class:`SDPTimeoutError`.  The response's security may differ from
    the requested one: the caller decides whether to proceed (Plug & Charge needs TLS).
    """
    if max_requests < 1:
        raise ValueError("max_requests must be >= 1")
    loop = asyncio.get_running_loop()
    if loopback:
        dest_host = host or loopback_host()
        family = socket.AF_INET6 if ":" in dest_host else socket.AF_INET
        dest: tuple = (dest_host, port)
        transport, proto = await loop.create_datagram_endpoint(
            _ClientProtocol, local_addr=(dest_host, 0), family=family)
    else:
        ifindex = socket.if_nametoindex(interface) if interface else 0
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            if ifindex:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            sock.bind(("::", 0, 0, 0))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        dest = (SDP_MULTICAST_ADDRESS, port, 0, ifindex)
        transport, proto = await loop.create_datagram_endpoint(_ClientProtocol, sock=sock)
    datagram = request.to_datagram()
    try:
        for _attempt in range(max_requests):
            transport.sendto(datagram, dest)
            deadline = loop.time() + timeout
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    data = await asyncio.wait_for(proto.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
                try:
                    res = SDPResponse.from_datagram(data)
                except SDPError as exc:
                    peer_log.info("invalid SDP response", "SDP: ignoring invalid response: %s", exc)
                    continue
                if interface and not loopback:
                    res = dataclasses.replace(res, interface=interface)
                return res
        raise SDPTimeoutError(max_requests, timeout)
    finally:
        transport.close()
