"""Log lines a peer can trigger at will, rate-limited: a token bucket per kind of line.

A charger logs what its peers do wrong (a discarded V2GTP frame, an invalid SDP datagram, a refused
connection).  One line per event lets a peer write the log: 10 kB of small frames on the wire made
1,000 log lines.  :class:`RateLimitedLog` lets ``burst`` lines of one kind through at once and then
``rate`` per second; what it holds back it counts, and the next line of that kind that passes says
how many were suppressed (so does :meth:`RateLimitedLog.flush`, e.g. when a server closes).  Lines
that only a local fault can cause are not limited.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

__all__ = ["RateLimitedLog", "DEFAULT_RATE", "DEFAULT_BURST"]

#: lines per second of one kind once the burst is spent
DEFAULT_RATE = 1.0
#: lines of one kind let through at once
DEFAULT_BURST = 5


class _Bucket:
    __slots__ = ("tokens", "stamp", "suppressed", "since")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.stamp = now
        self.suppressed = 0
        self.since = now


class RateLimitedLog:
    """A logger's lines of each ``kind`` at most ``burst`` at once and ``rate`` per second.

    ``log(level, kind, msg, *args)`` logs like ``logger.log`` when the kind's bucket has a token and
    returns True; otherwise it counts the line and returns False.  A line that passes after suppressed
    ones carries ``(N similar lines suppressed in the last S s)``.  Thread-safe; the buckets are
    bounded by the number of kinds the caller uses (fixed strings, never peer data)."""

    def __init__(self, logger: logging.Logger, *, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.logger = logger
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def suppressed(self, kind: str) -> int:
        """Lines of ``kind`` held back since the last one that passed."""
        bucket = self._buckets.get(kind)
        return bucket.suppressed if bucket is not None else 0

    def log(self, level: int, kind: str, msg: str, *args: Any) -> bool:
        """Log ``msg % args`` at ``level`` if ``kind`` has a token left; returns whether it was logged."""
        if not self.logger.isEnabledFor(level):
            return False
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(kind)
            if bucket is None:
                bucket = self._buckets[kind] = _Bucket(self.burst, now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens < 1.0:
                bucket.suppressed += 1
                return False
            bucket.tokens -= 1.0
            held, since = bucket.suppressed, bucket.since
            bucket.suppressed, bucket.since = 0, now
        if held:
            msg = f"{msg} (%d similar line{'s' if held != 1 else ''} suppressed in the last %.0f s)"
            args = (*args, held, now - since)
        self.logger.log(level, msg, *args)
        return True

    def info(self, kind: str, msg: str, *args: Any) -> bool:
        """``log(logging.INFO, ...)``."""
        return self.log(logging.INFO, kind, msg, *args)

    def warning(self, kind: str, msg: str, *args: Any) -> bool:
        """``log(logging.WARNING, ...)``."""
        return self.log(logging.WARNING, kind, msg, *args)

    def flush(self, level: int = logging.INFO) -> None:
        """Say how many lines of each kind are held back (one line per kind that has any)."""
        with self._lock:
            now = self.clock()
            held = [(kind, b.suppressed, now - b.since) for kind, b in self._buckets.items() if b.suppressed]
            for kind, _, _ in held:
                self._buckets[kind].suppressed = 0
                self._buckets[kind].since = now
        for kind, count, span in held:
            self.logger.log(level, "%d %s line%s suppressed in the last %.0f s", count, kind,
                            "s" if count != 1 else "", span)
