"""The network-namespace helper of the network tests cleans up after itself, also when killed."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import _netns

pytestmark = pytest.mark.skipif(_netns.unavailable() is not None, reason=str(_netns.unavailable()))


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_a_lab_builds_a_link_and_removes_it():
    with _netns.Lab() as lab:
        left, right = lab.namespace("l"), lab.namespace("r")
        a, b = lab.veth(left, right)
        names = {left.name, right.name}
        assert names <= _namespaces()
        assert len(a.iface) <= 15 and a.iface in left.interfaces() and b.iface in right.interfaces()
        assert not _netns.interface_exists(a.iface) and not _netns.interface_exists(b.iface)
        assert a.address.is_link_local and b.address.is_link_local and a.address != b.address
        assert a.host == f"{a.address}%{a.iface}"
        # code and processes run inside a namespace
        import socket

        assert left.run(socket.if_nametoindex, a.iface) > 0
        with pytest.raises(OSError):
            right.run(socket.if_nametoindex, a.iface)
        out = subprocess.run(left.command(["ip", "-o", "link"]), capture_output=True, text=True, timeout=20).stdout
        assert a.iface in out and b.iface not in out
        # two labs at once never share a name
        with _netns.Lab() as other:
            assert other.namespace("l").name != left.name
    assert not names & _namespaces()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_killed_test_still_removes_its_namespaces(tmp_path, how):
    script = tmp_path / "hold.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import _netns
        with _netns.veth_link() as link:
            print(link.a.namespace.name, link.b.namespace.name, flush=True)
            time.sleep(60)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        names = set(proc.stdout.readline().split())
        assert len(names) == 2 and names <= _namespaces()
        proc.send_signal(how)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not names & _namespaces()


def test_a_prepared_interface_is_used_only_when_named(monkeypatch):
    monkeypatch.delenv(_netns.ENV_IFACE, raising=False)
    assert _netns.prepared_link() is None  # never a host interface by default
    monkeypatch.setenv(_netns.ENV_IFACE, "lo")
    with pytest.raises(OSError):  # lo has no link-local address
        _netns.prepared_link()
