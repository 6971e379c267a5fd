"""Timer behaviour of both sessions: message, sequence, communication setup, Ongoing, CableCheck,
PreCharge and the charger's backend wait; plus the timing tables themselves."""
from __future__ import annotations

import pytest

from _pc_fixtures import NOW, Pump, fake_codecs, first, make_pair, make_wallet

from plugcharge import ChargerConfig, EVConfig, EVSession
from plugcharge.core.events import (
    AuthorizationPending, ContractInstallationFailed, SessionEnded, StartSession, TimerExpired,
)
from plugcharge.iso2.timing import (
    DEFAULT_TIMING, EVCC_MSG_TIMEOUT, SECC_MSG_PERFORMANCE_TIME, SEQUENCE, TimingProfile,
)

cp = fake_codecs  # timer logic does not depend on the codec


def _end(events) -> SessionEnded:
    assert isinstance(events[-1], SessionEnded)
    return events[-1]


def test_tables_match_the_standard():
    assert EVCC_MSG_TIMEOUT["CurrentDemandReq"] == 0.25
    assert EVCC_MSG_TIMEOUT["CertificateInstallationReq"] == 5.0
    assert EVCC_MSG_TIMEOUT["PaymentDetailsReq"] == 5.0 and EVCC_MSG_TIMEOUT["SessionSetupReq"] == 2.0
    assert SECC_MSG_PERFORMANCE_TIME["CurrentDemandRes"] == 0.025
    # every SECC performance time leaves the EV's message timeout some slack
    for req, t in EVCC_MSG_TIMEOUT.items():
        res = req[:-3] + "Res"
        assert SECC_MSG_PERFORMANCE_TIME[res] < t
    assert SEQUENCE["V2G_SECC_Sequence_Timeout"][0] == 60.0
    assert SEQUENCE["V2G_EVCC_CommunicationSetup_Timeout"][0] == 20.0
    assert SEQUENCE["V2G_EVCC_Ongoing_Timeout"][0] == 60.0
    assert SEQUENCE["V2G_EVCC_CableCheck_Timeout"][0] == 40.0 and SEQUENCE["V2G_EVCC_PreCharge_Timeout"][0] == 7.0
    assert all(ref.startswith("[V2G2-") for _, ref in SEQUENCE.values())
    assert DEFAULT_TIMING.backend_timeout < EVCC_MSG_TIMEOUT["CertificateInstallationReq"]
    assert TimingProfile(scale=0.5).message_timeout("CurrentDemandReq") == 0.125


def test_ev_message_timeout_when_charger_goes_silent(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp)
    p = Pump(ev, ch, be)
    p.start()
    p.run(until=lambda: ev.state.value == "WAIT_SERVICE_DISCOVERY")
    t0 = p.now
    p.drop_to_ev = True
    p.run(until=lambda: ev.ended)
    exp = first(p.ev_events, TimerExpired)
    assert (exp.timer, exp.message) == ("V2G_EVCC_Msg_Timeout", "ServiceDiscoveryReq")
    assert p.now - t0 == pytest.approx(2.0)
    assert _end(p.ev_events).reason == "timeout"


def test_ev_current_demand_timeout_is_250ms(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, wallet=make_wallet(tmp_path / "w", contract=True))
    p = Pump(ev, ch, be)
    p.start()
    p.run(until=lambda: ev.state.value == "WAIT_CURRENT_DEMAND")
    t0 = p.now
    p.drop_to_ev = True
    p.run(until=lambda: ev.ended)
    assert first(p.ev_events, TimerExpired).message == "CurrentDemandReq"
    assert p.now - t0 == pytest.approx(0.25)
    assert _end(p.ev_events).fallback is None  # charging had started: no payment fallback


def test_charger_sequence_timeout(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp)
    p = Pump(ev, ch, be)
    p.start()
    p.run(until=lambda: ch.state.value == "WAIT_SERVICE_DISCOVERY")
    t0 = p.now
    p.drop_to_charger = True
    p.run(until=lambda: ch.ended)
    exp = first(p.charger_events, TimerExpired)
    assert exp.timer == "V2G_SECC_Sequence_Timeout"
    assert p.now - t0 == pytest.approx(60.0)


def test_communication_setup_timeout():
    slow = TimingProfile(msg_timeout={k: 100.0 for k in EVCC_MSG_TIMEOUT})
    ev = EVSession(EVConfig(), codecs=cp, timing=slow)
    ev.send(StartSession(), 0.0)
    assert ev.get_timer() == 20.0
    assert ev.handle_timer(19.9) == []
    events = ev.handle_timer(20.0)
    assert first(events, TimerExpired).timer == "V2G_EVCC_CommunicationSetup_Timeout"
    assert ev.get_timer() is None and ev.ended


def test_authorization_ongoing_charger_gives_up_after_55s(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, wallet=make_wallet(tmp_path / "w", contract=True))
    p = Pump(ev, ch, be, auth_after=1e9)
    p.start()
    p.run()
    assert sum(isinstance(e, AuthorizationPending) for e in p.ev_events) > 100
    end = _end(p.ev_events)
    assert end.reason == "failed" and end.fallback == "ExternalPayment"
    assert 55.0 <= p.now < 60.0


def test_authorization_ongoing_ev_timeout_60s(tmp_path):
    lenient = TimingProfile(secc_ongoing=600.0)
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, wallet=make_wallet(tmp_path / "w", contract=True),
                           timing=lenient)
    p = Pump(ev, ch, be, auth_after=1e9)
    p.start()
    p.run(until=lambda: ev.ended)
    exp = first(p.ev_events, TimerExpired)
    assert exp.timer == "V2G_EVCC_Ongoing_Timeout"
    assert _end(p.ev_events).fallback == "ExternalPayment"
    assert 60.0 <= p.now <= 61.0


def test_cable_check_timeout(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, charger_config=ChargerConfig(cable_check_polls=10_000))
    p = Pump(ev, ch, be)
    p.start()
    p.run(until=lambda: ev.ended)
    assert first(p.ev_events, TimerExpired).timer == "V2G_EVCC_CableCheck_Timeout"


def test_precharge_timeout(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, ev_config=EVConfig(precharge_tolerance=-1.0))
    p = Pump(ev, ch, be)
    p.start()
    p.run(until=lambda: ev.ended)
    exp = first(p.ev_events, TimerExpired)
    assert exp.timer == "V2G_EVCC_PreCharge_Timeout"
    assert _end(p.ev_events).reason == "timeout"


def test_backend_silence_answers_failed_before_ev_times_out(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp)
    p = Pump(ev, ch, be, answer_backend=False)
    p.start()
    p.run()
    fail = first(p.ev_events, ContractInstallationFailed)
    assert fail.response_code == "FAILED"  # the charger answered, the EV's 5 s did not expire
    assert not [e for e in p.ev_events if isinstance(e, TimerExpired)]
    assert _end(p.ev_events).fallback == "ExternalPayment"
    assert _end(p.charger_events).reason == "failed"


def test_timers_are_cleared_after_end(tmp_path):
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, ev_config=EVConfig(charge_loops=1))
    p = Pump(ev, ch, be)
    p.start()
    p.run()
    assert ev.ended and ch.ended
    assert ev.get_timer() is None and ch.get_timer() is None
    assert ev.handle_timer(1e6) == [] and ch.handle_timer(1e6) == []
