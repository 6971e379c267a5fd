"""``plugcharge`` commands as separate processes inside the test's network namespaces.

:class:`Command` starts ``python -m plugcharge ARGS`` (inside a namespace of ``tests/_netns.py``),
collects its output lines in a thread, waits for a line matching a pattern, signals and stops it; it
is always stopped (killed after a grace period) when the test ends.  The working directory is the
data directory's parent, never the checkout: ``-m`` would import the uncompiled sources from there.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import _netns


def plugcharge_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "plugcharge", *args]


#: every Command started and not yet stopped (:func:`stop_all` ends them when a test ends)
RUNNING: list["Command"] = []


def stop_all() -> None:
    """Stop every command still running (a test's teardown: also after a failed assertion)."""
    while RUNNING:
        RUNNING.pop().stop(grace=5.0)


class Command:
    """A running ``plugcharge`` process and its output."""

    def __init__(self, ns: _netns.Namespace, *args: str, cwd: Path) -> None:
        self.args = args
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(ns.command(plugcharge_argv(*args)), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env, cwd=str(cwd))
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        RUNNING.append(self)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match:
        """The first output line from index ``start`` on that matches ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r} from plugcharge {' '.join(self.args)}:\n"
                                         + "\n".join(self.lines[-40:]))
                self._cond.wait(min(left, 0.2))

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> Optional[int]:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return code

    def stop(self, grace: float = 15.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code (None when it had to be killed)."""
        self.signal(signal.SIGTERM)
        code = self.wait(grace)
        if code is None:
            self.proc.kill()
            self.proc.wait(10)
        if self in RUNNING:
            RUNNING.remove(self)
        return code


def run(ns: _netns.Namespace, *args: str, cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run a ``plugcharge`` command to its end inside ``ns``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(ns.command(plugcharge_argv(*args)), capture_output=True, text=True, env=env, cwd=str(cwd),
                          timeout=timeout)
