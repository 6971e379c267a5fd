"""Network namespaces and veth pairs for the network tests: no test ever sends on a real interface.

Every network test that needs more than loopback builds its own little network here: one or more
network namespaces, each with ``lo`` up, joined by veth pairs whose ends carry a fixed IPv6
link-local address (added ``nodad``, so nothing waits for duplicate address detection; the helper
still waits until the kernel lists the address as usable). Names carry a random suffix (other test
runs build their networks at the same time) and everything is removed on the way out, also when
the test fails or the run is interrupted (SIGINT, SIGTERM). Needs Linux, root and ``ip``
(iproute2); :func:`unavailable` says why not.

    with Lab() as lab:
        ev, charger = lab.namespace("ev"), lab.namespace("charger")
        ev_end, charger_end = lab.veth(ev, charger)
        res = ev.run(asyncio.run, some_coroutine(ev_end.iface))        # a thread inside ``ev``
        proc = subprocess.Popen(charger.command(["python", "peer.py"]))  # a process inside ``charger``

:func:`veth_link` is the common case (two namespaces, one pair). ``PLUGCHARGE_TEST_IFACE`` may
name an interface prepared by hand: :func:`prepared_link` then puts both ends on it in the test
process's own namespace. Nothing ever picks a host interface by itself.

A thread joins a namespace with ``setns(2)`` (per thread on Linux), so code run through
:meth:`Namespace.run` creates its sockets there; threads it starts (asyncio's executor) inherit it.
"""
from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import dataclasses
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, TypeVar

__all__ = ["ENV_IFACE", "Lab", "Namespace", "Endpoint", "Link", "unavailable", "veth_link", "prepared_link",
           "interface_exists", "NetnsError"]

#: Environment variable naming a prepared interface (both test ends then share it).
ENV_IFACE = "PLUGCHARGE_TEST_IFACE"
_CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetnsError(RuntimeError):
    """An ``ip`` command failed while building the test network."""


def unavailable() -> Optional[str]:
    """Why namespaces cannot be built here (``None`` when they can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (ip)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


_libc: Any = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@dataclasses.dataclass(frozen=True)
class Namespace:
    """A network namespace (``name`` None: the test process's own one)."""

    name: Optional[str]

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed so that the process runs inside this namespace."""
        return list(argv) if self.name is None else ["ip", "netns", "exec", self.name, *argv]

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Future[T]":
        """Start ``fn(*args, **kwargs)`` in a new thread that joined this namespace."""
        future: Future[T] = Future()
        name = self.name

        def body() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                if name is not None:
                    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
                    try:
                        _setns(fd)
                    finally:
                        os.close(fd)
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

        threading.Thread(target=body, name=f"netns-{name}", daemon=True).start()
        return future

    def run(self, fn: Callable[..., T], *args: Any, timeout: Optional[float] = None, **kwargs: Any) -> T:
        """Call ``fn(*args, **kwargs)`` in a thread inside this namespace; its result or exception
        (``TimeoutError`` after ``timeout`` seconds)."""
        return self.submit(fn, *args, **kwargs).result(timeout)

    def interfaces(self) -> list[str]:
        """The interface names in this namespace."""
        args = ["-n", self.name] if self.name else []
        out = _ip(*args, "-o", "link", "show")
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One end of a link: its namespace, interface name and link-local address."""

    namespace: Namespace
    iface: str
    address: ipaddress.IPv6Address

    @property
    def host(self) -> str:
        """``fe80::…%iface``: the address with its zone, as a socket connects to it."""
        return f"{self.address}%{self.iface}"


@dataclasses.dataclass(frozen=True)
class Link:
    """Two ends of one link; ``created`` is False only for a prepared interface (:func:`prepared_link`)."""

    a: Endpoint
    b: Endpoint
    created: bool = True


def interface_exists(iface: str, namespace: Optional[str] = None) -> bool:
    """Whether ``iface`` exists in ``namespace`` (None: the test process's own namespace)."""
    try:
        return iface in Namespace(namespace).interfaces()
    except NetnsError:
        return False


def _link_local(iface: str, namespace: str) -> Optional[ipaddress.IPv6Address]:
    out = _ip("-n", namespace, "-6", "-o", "addr", "show", "dev", iface, "scope", "link")
    for line in out.splitlines():
        fields = line.split()
        if "inet6" in fields and "tentative" not in fields and "dadfailed" not in fields:
            return ipaddress.IPv6Address(fields[fields.index("inet6") + 1].split("/")[0])
    return None


def _usable(end: Endpoint) -> bool:
    assert end.namespace.name is not None
    state = _ip("-n", end.namespace.name, "-o", "link", "show", "dev", end.iface)
    return " state UP " in state and _link_local(end.iface, end.namespace.name) == end.address


class Lab:
    """Namespaces and veth pairs created for one test; all removed by :meth:`close`."""

    def __init__(self, tag: str = "pc") -> None:
        why = unavailable()
        if why is not None:
            raise NetnsError(why)
        self.token = secrets.token_hex(3)
        self.tag = tag[:3]
        self.namespaces: list[Namespace] = []
        self.links: list[Link] = []
        self._root_ifaces: list[str] = []
        self._closed = False
        self._old_term: Any = None

    # ---- building
    def namespace(self, label: str) -> Namespace:
        """A new namespace ``plugcharge-test-<token>-<label>`` with ``lo`` up."""
        name = f"plugcharge-test-{self.token}-{label}"
        _ip("netns", "add", name)
        ns = Namespace(name)
        self.namespaces.append(ns)
        _ip("-n", name, "link", "set", "lo", "up")
        return ns

    def veth(self, left: Namespace, right: Namespace) -> tuple[Endpoint, Endpoint]:
        """A veth pair from ``left`` to ``right``, both ends up with a link-local address."""
        index = len(self.links)
        names = (f"{self.tag}{self.token}{index}a", f"{self.tag}{self.token}{index}b")  # <= 11 chars
        _ip("link", "add", names[0], "type", "veth", "peer", "name", names[1])
        self._root_ifaces.append(names[0])
        ends = []
        for iface, ns, host in ((names[0], left, 2 * index + 1), (names[1], right, 2 * index + 2)):
            assert ns.name is not None
            _ip("link", "set", iface, "netns", ns.name)
            _ip("-n", ns.name, "link", "set", iface, "addrgenmode", "none")
            address = ipaddress.IPv6Address(f"fe80::{self.token[:4]}:{int(self.token[4:], 16):x}:0:{host:x}")
            _ip("-n", ns.name, "addr", "add", f"{address}/64", "dev", iface, "nodad")
            _ip("-n", ns.name, "link", "set", iface, "up")
            ends.append(Endpoint(ns, iface, address))
        self._root_ifaces.remove(names[0])
        deadline = time.monotonic() + 10
        for end in ends:  # usable once the link is up and the address is no longer tentative
            assert end.namespace.name is not None
            while not _usable(end):
                if time.monotonic() > deadline:
                    raise NetnsError(f"{end.iface} in {end.namespace.name} did not come up")
                time.sleep(0.02)
        link = Link(ends[0], ends[1])
        self.links.append(link)
        return ends[0], ends[1]

    # ---- lifetime
    def close(self) -> None:
        """Delete every namespace (and with it every veth) this lab created; idempotent."""
        if self._closed:
            return
        self._closed = True
        for iface in self._root_ifaces:  # a pair that never left the root namespace
            subprocess.run(["ip", "link", "del", iface], capture_output=True, timeout=20)
        for ns in reversed(self.namespaces):
            if ns.name is not None:
                subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, timeout=20)

    def __enter__(self) -> "Lab":
        atexit.register(self.close)
        if threading.current_thread() is threading.main_thread():
            self._old_term = signal.getsignal(signal.SIGTERM)

            def on_term(signum: int, frame: Any) -> None:  # let the with-block unwind and clean up
                raise KeyboardInterrupt("SIGTERM")
            signal.signal(signal.SIGTERM, on_term)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            atexit.unregister(self.close)
            if self._old_term is not None:
                signal.signal(signal.SIGTERM, self._old_term)


@contextmanager
def veth_link(tag: str = "pc", labels: tuple[str, str] = ("a", "b")) -> Iterator[Link]:
    """Two fresh namespaces joined by one veth pair (``link.a`` in the first, ``link.b`` in the second)."""
    with Lab(tag) as lab:
        left, right = lab.namespace(labels[0]), lab.namespace(labels[1])
        a, b = lab.veth(left, right)
        yield Link(a, b)


def prepared_link() -> Optional[Link]:
    """The interface named by ``PLUGCHARGE_TEST_IFACE`` as both ends of a link (None when unset)."""
    iface = os.environ.get(ENV_IFACE)
    if not iface:
        return None
    from plugcharge.net.sdp import link_local_address

    end = Endpoint(Namespace(None), iface, link_local_address(iface))
    return Link(end, end, created=False)
