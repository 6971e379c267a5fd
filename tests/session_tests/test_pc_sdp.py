"""SECC Discovery Protocol: message layout, typed errors, UDP server/client with retries."""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time

import pytest

import _netns
from plugcharge.net import sdp as sdp_module
from plugcharge.net.sdp import (
    SDPError,
    SDPRequest,
    SDPResponse,
    SDPTimeoutError,
    Security,
    TransportProtocol,
    discover_secc,
    ipv6_available,
    link_local_address,
    loopback_host,
    make_responder,
    start_sdp_server,
)


def test_request_bytes() -> None:
    assert SDPRequest().to_datagram().hex() == "01fe900000000002" + "0000"
    assert SDPRequest(Security.NO_TLS).encode() == b"\x10\x00"
    assert SDPRequest.from_datagram(bytes.fromhex("01fe9000000000021000")) == SDPRequest(Security.NO_TLS)


def test_response_bytes_roundtrip() -> None:
    res = SDPResponse(ipaddress.IPv6Address("fe80::1"), 50000, Security.TLS, TransportProtocol.TCP)
    data = res.to_datagram()
    assert data[:8].hex() == "01fe900100000014"
    assert data[8:24] == ipaddress.IPv6Address("fe80::1").packed
    assert data[24:26] == (50000).to_bytes(2, "big") and data[26:] == b"\x00\x00"
    assert SDPResponse.from_datagram(data) == res


def test_ipv4_is_mapped() -> None:
    res = SDPResponse(ipaddress.IPv4Address("127.0.0.1"), 1234, Security.NO_TLS)
    back = SDPResponse.from_datagram(res.to_datagram())
    assert str(back.address) == "::ffff:7f00:1"
    assert back.host == "127.0.0.1"


@pytest.mark.parametrize(
    "data, field, offset",
    [
        (bytes.fromhex("01fe9000000000022000"), "Security", 8),
        (bytes.fromhex("01fe9000000000020020"), "TransportProtocol", 9),
        (bytes.fromhex("01fe900000000003000000"), "payload", 8),
        (bytes.fromhex("01fe90000000000200"), "V2GTP header", 9),  # truncated
        (bytes.fromhex("02fd9000000000020000"), "V2GTP header", 0),
        (bytes.fromhex("01fe9001000000020000"), "V2GTP header", 2),  # a response type where a request is due
    ],
)
def test_request_errors(data: bytes, field: str, offset: int) -> None:
    with pytest.raises(SDPError) as ei:
        SDPRequest.from_datagram(data)
    assert ei.value.field == field and ei.value.offset == offset
    assert isinstance(ei.value, ValueError)


def test_response_errors() -> None:
    good = SDPResponse(ipaddress.IPv6Address("::1"), 4000).to_datagram()
    with pytest.raises(SDPError) as ei:
        SDPResponse.from_datagram(good[:-2] + b"\x05\x00")
    assert ei.value.field == "Security" and ei.value.offset == 26
    with pytest.raises(SDPError) as ei:
        SDPResponse.from_datagram(good[:24] + b"\x00\x00" + good[26:])
    assert ei.value.field == "SECC Port"
    with pytest.raises(SDPError):
        SDPResponse.from_datagram(good + b"\x00")


def test_responder_policy() -> None:
    both = make_responder("::1", tls_port=1000, tcp_port=2000)
    assert both(SDPRequest(Security.TLS)).port == 1000
    assert both(SDPRequest(Security.NO_TLS)) == SDPResponse(ipaddress.ip_address("::1"), 2000, Security.NO_TLS)
    tls_only = make_responder("::1", tls_port=1000)
    assert tls_only(SDPRequest(Security.NO_TLS)).security is Security.TLS
    assert tls_only(SDPRequest(Security.TLS, TransportProtocol.UDP)) is None
    with pytest.raises(ValueError):
        make_responder("::1")


def test_sandbox_reports_ipv6() -> None:
    assert loopback_host() == ("::1" if ipv6_available() else "127.0.0.1")


@pytest.mark.parametrize("host", ["::1", "127.0.0.1"])
def test_loopback_discovery(host: str) -> None:
    if host == "::1" and not ipv6_available():
        pytest.skip("no IPv6 on this host")

    async def run() -> tuple[SDPResponse, int]:
        server = await start_sdp_server(make_responder(host, tls_port=64111), loopback=True, host=host, port=0)
        async with server:
            res = await discover_secc(loopback=True, host=host, port=server.port, timeout=0.5, max_requests=3)
            return res, server.requests

    res, count = asyncio.run(run())
    assert res.port == 64111 and res.security is Security.TLS and res.host == host
    assert count == 1


def test_retries_until_answered_and_ignores_garbage() -> None:
    async def run() -> tuple[SDPResponse, int, int]:
        calls = []

        def shy(req: SDPRequest) -> SDPResponse | None:
            calls.append(req)
            return None if len(calls) < 3 else SDPResponse(ipaddress.ip_address("::1"), 999, req.security)

        server = await start_sdp_server(shy, loopback=True, port=0)
        async with server:
            host = server.host
            # a garbage datagram to the server is counted and ignored
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"\x01\x02\x03", (host, server.port))
            res = await discover_secc(SDPRequest(Security.NO_TLS), loopback=True, port=server.port,
                                      timeout=0.05, max_requests=10)
            await asyncio.sleep(0.01)
            return res, len(calls), server.invalid_requests

    res, n, invalid = asyncio.run(run())
    assert n == 3 and res.port == 999 and res.security is Security.NO_TLS
    assert invalid == 1


def test_gives_up_after_max_requests() -> None:
    async def run() -> int:
        calls = []
        server = await start_sdp_server(lambda r: calls.append(r), loopback=True, port=0)  # type: ignore[arg-type,func-returns-value]
        async with server:
            with pytest.raises(SDPTimeoutError) as ei:
                await discover_secc(loopback=True, port=server.port, timeout=0.02, max_requests=4)
            assert ei.value.requests == 4
            await asyncio.sleep(0.02)
            return len(calls)

    assert asyncio.run(run()) == 4


def test_client_ignores_invalid_response() -> None:
    async def run() -> SDPResponse:
        loop = asyncio.get_running_loop()

        class Evil(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.t = transport

            def datagram_received(self, data: bytes, addr: tuple) -> None:
                self.t.sendto(b"\x01\xfe\x90\x01\x00\x00\x00\x01\x00", addr)  # type: ignore[attr-defined]
                self.t.sendto(SDPResponse(ipaddress.ip_address("::1"), 7).to_datagram(), addr)  # type: ignore[attr-defined]

        host = loopback_host()
        t, _ = await loop.create_datagram_endpoint(Evil, local_addr=(host, 0))
        try:
            return await discover_secc(loopback=True, port=t.get_extra_info("sockname")[1], timeout=0.5, max_requests=2)
        finally:
            t.close()

    assert asyncio.run(run()).port == 7


def _needs_netns() -> None:
    why = _netns.unavailable()
    if why is not None:
        pytest.skip(why)


def test_multicast_discovery_over_a_veth_pair() -> None:
    """ff02::1 on a veth pair between two namespaces made for this test (never a host interface)."""
    _needs_netns()
    with _netns.veth_link(labels=("ev", "secc")) as link:
        ev, secc = link.a, link.b
        # the fixture's choice: interfaces it created, in its namespaces, absent from the host's
        assert link.created and not _netns.interface_exists(ev.iface) and not _netns.interface_exists(secc.iface)
        assert ev.iface in ev.namespace.interfaces() and secc.iface in secc.namespace.interfaces()
        addr = secc.namespace.run(link_local_address, secc.iface)
        assert addr == secc.address
        stop = threading.Event()

        async def serve() -> tuple[int, int]:
            server = await start_sdp_server(make_responder(addr, tls_port=55555), interface=secc.iface)
            async with server:
                while not stop.is_set():
                    await asyncio.sleep(0.01)
                return server.requests, server.foreign_requests

        served = secc.namespace.submit(asyncio.run, serve())
        try:
            res = ev.namespace.run(asyncio.run, discover_secc(interface=ev.iface, timeout=0.2, max_requests=10),
                                   timeout=10)
        finally:
            stop.set()
        requests, foreign = served.result(10)
    assert res.address == addr and res.port == 55555 and res.security is Security.TLS
    # the answer names a link-local address: connectable only with the interface as its zone
    assert res.interface == ev.iface and res.host == f"{addr}%{ev.iface}"
    assert requests >= 1 and foreign == 0


def _collect_answers(iface: str, wait: float) -> list[tuple[bytes, tuple]]:
    """Send one SDP request to ff02::1 on ``iface``; every datagram that comes back within ``wait``."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        ifindex = socket.if_nametoindex(iface)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s.bind(("::", 0, 0, 0))
        s.sendto(SDPRequest().to_datagram(), ("ff02::1", 15118, 0, ifindex))
        s.settimeout(0.05)
        got: list[tuple[bytes, tuple]] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                got.append(s.recvfrom(256))
            except socket.timeout:
                continue
        return got


@pytest.mark.parametrize("bind_to_device", [True, False], ids=["SO_BINDTODEVICE", "ifindex-filter-only"])
def test_each_outlet_answers_only_on_its_own_interface(monkeypatch, bind_to_device) -> None:
    """A charger with two outlets on two links runs one SDP server per interface on the same port:
    a request on one link gets exactly one answer, from that link's server with that link's
    address; the other server stays silent (also without SO_BINDTODEVICE, by the arrival
    interface index alone)."""
    _needs_netns()
    if not bind_to_device:
        monkeypatch.setattr(sdp_module, "_bind_to_device", lambda sock, iface: False)
    with _netns.Lab() as lab:
        charger, ev1, ev2 = lab.namespace("charger"), lab.namespace("ev1"), lab.namespace("ev2")
        ev1_end, outlet1 = lab.veth(ev1, charger)
        ev2_end, outlet2 = lab.veth(ev2, charger)
        for end in (ev1_end, outlet1, ev2_end, outlet2):
            assert not _netns.interface_exists(end.iface)  # made here, not a host interface
        ready, stop = threading.Event(), threading.Event()

        async def serve() -> list[tuple[int, int, int]]:
            servers = [await start_sdp_server(make_responder(o.address, tls_port=port), interface=o.iface)
                       for o, port in ((outlet1, 50001), (outlet2, 50002))]
            ready.set()
            try:
                while not stop.is_set():
                    await asyncio.sleep(0.01)
            finally:
                for server in servers:
                    server.close()
            return [(s.requests, s.foreign_requests, s.invalid_requests) for s in servers]

        served = charger.submit(asyncio.run, serve())
        try:
            assert ready.wait(10)
            answers = ev1.run(_collect_answers, ev1_end.iface, 0.5, timeout=10)
        finally:
            stop.set()
        counts = served.result(10)
    assert len(answers) == 1, answers
    res = SDPResponse.from_datagram(answers[0][0])
    assert res.address == outlet1.address and res.port == 50001
    assert ipaddress.IPv6Address(answers[0][1][0].split("%")[0]) == outlet1.address
    assert counts[0][0] == 1
    assert counts[1][0] == 0  # the other outlet never answered
    # with SO_BINDTODEVICE the kernel keeps the request from the other socket altogether
    assert counts[1][1] == (0 if bind_to_device else 1)


def test_link_local_host_carries_the_zone_and_the_wire_does_not() -> None:
    ll = SDPResponse(ipaddress.IPv6Address("fe80::1"), 50000, interface="eth7")
    assert ll.host == "fe80::1%eth7"
    assert ll.encode() == SDPResponse(ipaddress.IPv6Address("fe80::1"), 50000).encode()
    assert SDPResponse.from_datagram(ll.to_datagram()).interface is None
    # global and IPv4-mapped addresses need no zone
    assert SDPResponse(ipaddress.IPv6Address("fd00::2"), 50000, interface="eth7").host == "fd00::2"
    assert SDPResponse(ipaddress.IPv4Address("10.0.0.1"), 50000, interface="eth7").host == "10.0.0.1"
