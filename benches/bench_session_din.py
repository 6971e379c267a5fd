"""Cost of one full DIN SPEC 70121 session in memory, per message (DIN has no public-key work).

Run (the summary is printed at the end with ``-s``)::

    pytest benches/bench_session_din.py --benchmark-enable -s -p no:cacheprovider

One *session* is an :class:`~plugcharge.EVSession` against a :class:`~plugcharge.ChargerSession`
speaking DIN SPEC 70121 DC with ExternalPayment (DIN has no Plug & Charge), the charger's
identification answered at once, bytes moved in memory (no sockets; DIN runs over plain TCP):
real EXI encoding and decoding of every message: SupportedAppProtocol, SessionSetup,
ServiceDiscovery, ServicePaymentSelection, ContractAuthentication, ChargeParameterDiscovery,
CableCheck, PreCharge, PowerDelivery, 5 CurrentDemand, PowerDelivery, WeldingDetection,
SessionStop.  With no crypto floor to stand against, the session is reported per message (a
request or a response, counted from the EV's trace): ``session/din: <N> us per message``.
"""
from __future__ import annotations

from typing import Any

from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.core.events import AuthorizationNeeded, AuthorizationResult

from _inmemory import drive  # benches/, beside this file

_RESULTS: dict[str, tuple[float, float, int]] = {}  # key -> (median, min seconds, messages)


def _codecs() -> Any:
    import exi

    return exi.get_codec


def one_session(cp: Any) -> tuple[EVSession, ChargerSession]:
    """Run one complete DIN DC session EV <-> charger in memory; returns both sessions."""
    ev = EVSession(EVConfig(charge_loops=5, poll_interval=0.0, loop_interval=0.0, target_soc=95.0, tls=False,
                            protocols=("din",)), codecs=cp, security=EVSecurity(wallet=None))
    ch = ChargerSession(ChargerConfig(protocols=("din",), tls=False), codecs=cp, now=0.0, security=ChargerSecurity())

    def charger_events(events: list, now: float, to_ev: list) -> None:
        for e in events:
            if isinstance(e, AuthorizationNeeded):
                to_ev.append(ch.send(AuthorizationResult(True), now).data)

    return drive(ev, ch, charger_events)


def _check(ev: EVSession, ch: ChargerSession) -> int:
    """The session really ran to the end (not a quick failure being timed); returns its message count."""
    assert ev.ended and ch.ended and ev.protocol is not None and ev.protocol.id == "din", (ev.state, ch.state)
    assert ev.trace.count(("in", "CurrentDemandRes")) == 5 and ev.trace[-1] == ("in", "SessionStopRes"), ev.trace
    assert ("in", "WeldingDetectionRes") in ev.trace
    return len(ev.trace)


def test_session_din(benchmark: Any) -> None:
    """One DIN session; ``extra_info["messages"]`` is the number of messages it exchanges."""
    benchmark.group = "session-din"
    cp = _codecs()
    messages = _check(*one_session(cp))
    benchmark.extra_info.update(key="din", messages=messages)
    benchmark(lambda: one_session(cp))
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        _RESULTS["din"] = (stats.stats.median, stats.stats.min, messages)
        benchmark.extra_info["us_per_message"] = stats.stats.min / messages * 1e6


def test_zz_report_din() -> None:
    """Print the session per message (``session/din: <N> us per message``)."""
    if not _RESULTS:
        import pytest

        pytest.skip("run with --benchmark-enable to get the report")
    med, best, n = _RESULTS["din"]
    print(f"\nsession/din: {best / n * 1e6:.1f} us per message ({n} messages; session {best * 1e6:.0f} us best, "
          f"{med * 1e6:.0f} us median)")
