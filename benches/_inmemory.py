"""What the session benchmarks share: one session EV <-> charger driven in memory, and the
interleaved measurement of a session against its public-key floor.

Not a benchmark file itself (pytest collects ``bench_*.py`` only); ``bench_session.py``,
``bench_session20.py`` and ``bench_session_din.py`` import it from this folder.
"""
from __future__ import annotations

import gc
import time
from typing import Any, Callable, Iterable, Sequence

__all__ = ["drive", "interleaved_floor_ratio"]

#: how the benchmark answers the charger's events (a backend's Authorize, a certificate
#: installation): called with the events and the current ``now``; it appends what the charger
#: then sends (``ch.send(...).data``) to the list ``drive`` passes it.
ChargerEvents = Callable[[list, float, list], None]


def drive(ev: Any, ch: Any, charger_events: ChargerEvents, *, max_steps: int = 10000) -> tuple[Any, Any]:
    """Run ``ev`` (an EVSession) against ``ch`` (a ChargerSession, connected at 0.0) until both
    have ended, moving bytes in memory and firing their timers (``now`` jumps to the next one when
    neither side has anything to send); returns both sessions.  AssertionError when they do not
    finish."""
    from plugcharge.core.events import StartSession

    now = 0.0
    to_ev: list[bytes] = []
    to_ch = [ev.send(StartSession(), now).data]
    for _ in range(max_steps):
        to_ch.append(ev.data_to_send())
        data = b"".join(to_ch)
        to_ch.clear()
        if data:
            charger_events(ch.receive_data(data, now), now, to_ev)
        to_ev.append(ch.data_to_send())
        data = b"".join(to_ev)
        to_ev.clear()
        if data:
            ev.receive_data(data, now)
        if ev.ended and ch.ended:
            return ev, ch
        if not data:
            timers = [t for t in (ev.get_timer(), ch.get_timer()) if t is not None]
            if not timers:
                break
            now = max(now, min(timers))
            ev.handle_timer(now)
            charger_events(ch.handle_timer(now), now, to_ev)
    raise AssertionError("session did not finish")


def interleaved_floor_ratio(session: Callable[[], Any], work: Iterable[tuple[Callable[[], Any], int]], *,
                            seconds: float = 1.0, min_rounds: int = 10) -> dict[str, float]:
    """Time ``session()`` and, right after it, the floor's operations (``n`` calls of each
    ``(operation, n)`` of ``work``), round after round for about ``seconds`` (at least
    ``min_rounds``), in process CPU time with the cyclic GC off; returns the ratio of the minimums
    and both minimums (µs), so that load on a shared machine weighs on both alike."""
    ops: Sequence[tuple[Callable[[], Any], int]] = [(fn, n) for fn, n in work if n]

    def floor_work() -> None:
        for fn, n in ops:
            for _ in range(n):
                fn()

    clock = time.process_time
    best_s = best_f = float("inf")
    rounds = 0
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        end = time.perf_counter() + seconds
        while rounds < min_rounds or time.perf_counter() < end:
            t0 = clock()
            session()
            t1 = clock()
            floor_work()
            t2 = clock()
            best_s, best_f = min(best_s, t1 - t0), min(best_f, t2 - t1)
            rounds += 1
    finally:
        if was_enabled:
            gc.enable()
    return {"ratio": best_s / best_f, "session_us": best_s * 1e6, "floor_us": best_f * 1e6, "rounds": rounds}
