"""DIN SPEC 70121 sessions, EV against charger in memory: the DC ExternalPayment sequence, its
EVSEProcessing=Ongoing loops, every refusal the charger makes, the EV's own reasons to leave, and
each of DIN's timers (Tables 75 and 77).  Every test runs on the JSON fake codec and, where it
matters for the bytes, on the real EXI codec."""
from __future__ import annotations

import pytest

from _din_fixtures import cp  # noqa: F401 (a fixture)
from _din_fixtures import REAL, NoWallet, answer, din_body, din_charger, din_ev, din_frame, din_run, rewrite, sap_frame
from _pc_fixtures import fake_codecs, first, kinds
from plugcharge import EVConfig, EVSession, iso2
from plugcharge.core.codec import NS_DIN
from plugcharge.core.errors import LocalProtocolError
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationPending, AuthorizationRejected, ChargingStarted,
    ChargingStopped,
    MeterValues, PauseCharging, PaymentSelected, ProtocolAgreed, ProtocolError, SessionEnded,
    SessionStarted, StartSession, StopCharging, TimerExpired,
)
from plugcharge.core.fsm import CoreState
from plugcharge.din import NO_PLUG_AND_CHARGE, SPEC, TimingProfile
from plugcharge.din import messages as M
from plugcharge.din.states import (
    CHARGER_TRANSITIONS, EV_TRANSITIONS, REQUEST_TO_RESPONSE, SUPPORTED_REQUESTS, ChargerState, EVState,
    check_charger_transition, check_ev_transition,
)
from plugcharge.din.timing import EVCC_MSG_TIMEOUT, TIMERS





def ended(events) -> SessionEnded:
    assert isinstance(events[-1], SessionEnded), kinds(events)
    return events[-1]


def sent(session, direction: str = "out") -> list[str]:
    return [n for d, n in session.trace if d == direction]


# ------------------------------------------------------------ the session
def test_dc_external_payment_session_completes(cp):
    NoWallet.touched.clear()
    p = din_run(cp, ev={"charge_loops": 3}, auth_after=1.0)
    assert sent(p.ev) == [
        "supportedAppProtocolReq", "SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq",
        *["ContractAuthenticationReq"] * 4, "ChargeParameterDiscoveryReq", "CableCheckReq", "CableCheckReq",
        "PreChargeReq", "PowerDeliveryReq", *["CurrentDemandReq"] * 3, "PowerDeliveryReq", "WeldingDetectionReq",
        "SessionStopReq"]
    assert sent(p.charger, "in") == sent(p.ev)
    agreed = first(p.ev_events, ProtocolAgreed)
    assert (agreed.protocol, agreed.name, agreed.plug_and_charge) == ("din", "DIN SPEC 70121", False)
    assert first(p.charger_events, ProtocolAgreed) == agreed
    # the driver is told that this charger has no Plug & Charge; the wallet is never read
    assert first(p.ev_events, PaymentSelected) == PaymentSelected("ExternalPayment", NO_PLUG_AND_CHARGE)
    assert NoWallet.touched == [] and p.ev.payment == "ExternalPayment" and p.ev.contract is None
    # identification at the charger: the backend is asked once, the EV polls while it decides
    assert first(p.charger_events, AuthorizationNeeded).payment == "ExternalPayment"
    assert sum(isinstance(e, AuthorizationPending) for e in p.ev_events) == 3  # polled every 0.5 s for 1 s
    assert first(p.ev_events, AuthorizationAccepted).emaid is None
    started = first(p.ev_events, SessionStarted)
    assert started.evse_id == "DE*PNC*E12345*1" and started.session_id == p.charger.session_id != bytes(8)
    assert first(p.ev_events, ChargingStarted) == first(p.charger_events, ChargingStarted) == \
        ChargingStarted("DC_extended", 1)
    meters = [e for e in p.charger_events if isinstance(e, MeterValues)]
    assert len(meters) == 3 and meters[-1].voltage == 400.0 and meters[-1].current == 120.0
    assert [e.soc for e in p.ev_events if isinstance(e, MeterValues)] == [30, 31, 32]
    assert "ChargingStopped" in kinds(p.ev_events) and "ChargingStopped" in kinds(p.charger_events)
    assert ended(p.ev_events).reason == ended(p.charger_events).reason == "finished"
    assert p.ev.get_timer() is None and p.charger.get_timer() is None


def test_messages_on_the_wire(cp):
    """What DIN puts in its messages where it differs from ISO-2 (EVSEID as bytes, PaymentOptions,
    one EnergyTransferType, PMax a short in watts, ReadyToChargeState, the empty SessionStopReq)."""
    seen: dict[str, dict] = {}

    def keep(src, data):
        got = din_body(cp, data)
        if got is not None:
            seen.setdefault(got[0], got[1])
        return data
    din_run(cp, ev={"charge_loops": 1}, charger={"pmax_w": 150000.0}, tamper=keep)
    assert seen["SessionSetupRes"]["EVSEID"] == b"DE*PNC*E12345*1"
    assert seen["SessionSetupRes"]["ResponseCode"] == "OK_NewSessionEstablished"
    assert seen["ServiceDiscoveryRes"]["PaymentOptions"] == {"PaymentOption": ["ExternalPayment"]}
    assert seen["ServiceDiscoveryRes"]["ChargeService"] == {
        "ServiceTag": {"ServiceID": 1, "ServiceCategory": "EVCharging"}, "FreeService": False,
        "EnergyTransferType": "DC_extended"}
    assert seen["ServicePaymentSelectionReq"] == M.service_payment_selection_req()
    entry = seen["ChargeParameterDiscoveryRes"]["SAScheduleList"]["SAScheduleTuple"][0]["PMaxSchedule"][
        "PMaxScheduleEntry"][0]
    assert entry["PMax"] == 32767 and entry["RelativeTimeInterval"] == {"start": 0, "duration": 86400}
    assert "SalesTariff" not in seen["ChargeParameterDiscoveryRes"]["SAScheduleList"]["SAScheduleTuple"][0]
    assert seen["PowerDeliveryReq"]["ReadyToChargeState"] is True
    assert seen["SessionStopReq"] == {} and seen["ContractAuthenticationReq"] == {}
    assert "MeterInfo" not in seen["CurrentDemandRes"]


def test_ongoing_loops_of_charge_parameters_and_cable_check(cp):
    p = din_run(cp, ev={"charge_loops": 1, "poll_interval": 0.1}, charger={"schedule_polls": 2, "cable_check_polls": 3})
    assert sent(p.ev).count("ChargeParameterDiscoveryReq") == 3 and sent(p.ev).count("CableCheckReq") == 4
    assert ended(p.ev_events).reason == "finished"


def test_precharge_loops_until_the_voltage_is_reached():
    """The EV repeats PreChargeReq while the present voltage is off its target: a charger whose
    voltage lags one request behind needs two (a charger here answers with the target at once)."""
    lag: list = []

    def lagging(body):
        if not lag:
            lag.append(1)
            body["EVSEPresentVoltage"] = M.physical(50, "V")
    slow = rewrite(fake_codecs, "charger", "PreChargeRes", lagging)
    p = din_run(fake_codecs, ev={"charge_loops": 1}, tamper=slow)
    assert sent(p.ev).count("PreChargeReq") == 2 and ended(p.ev_events).reason == "finished"


def test_without_welding_detection_and_zero_loops(cp):
    p = din_run(cp, ev={"charge_loops": 0, "welding_detection": False})
    assert sent(p.ev)[-3:] == ["PowerDeliveryReq", "PowerDeliveryReq", "SessionStopReq"]
    assert ended(p.ev_events).reason == ended(p.charger_events).reason == "finished"


def test_ev_stops_between_loops_and_pause_is_a_stop():
    for command in (StopCharging(), PauseCharging()):
        p = din_run(fake_codecs, ev={"loop_interval": 1.0},
                    until=lambda p: any(isinstance(e, MeterValues) for e in p.ev_events))
        res = p.ev.send(command, p.now)
        assert res.data and p.ev.state is EVState.WAIT_POWER_DELIVERY  # PowerDeliveryReq(FALSE) at once
        p._deliver("ev", res.data)
        p.run()
        assert ended(p.ev_events).reason == "finished"  # DIN has no pause: the session ends
        assert sent(p.ev).count("CurrentDemandReq") == 1


def test_charger_stops_the_charge_loop():
    p = din_run(fake_codecs, ev={"loop_interval": 0.5},
                until=lambda p: sum(isinstance(e, MeterValues) for e in p.charger_events) == 2)
    p._deliver("charger", p.charger.send(StopCharging(), p.now).data)  # the queued answer goes out first
    p.run()
    assert sent(p.ev).count("CurrentDemandReq") == 3  # EVSE_Shutdown/StopCharging in the next answer
    assert ended(p.ev_events).reason == ended(p.charger_events).reason == "finished"
    assert [e.reason for e in p.ev_events if isinstance(e, ChargingStopped)] == ["charger_request"]


def test_the_session_properties_and_commands_before_agreement():
    ev = din_ev(fake_codecs)
    with pytest.raises(LocalProtocolError):
        ev.send(StopCharging(), 0.0)  # not started
    ch = din_charger(fake_codecs)
    ch.send(StopCharging(), 0.0)  # kept until DIN is agreed
    p = din_run(fake_codecs, ev={"charge_loops": 5})
    assert p.charger.payment == "ExternalPayment" and p.charger.emaid is None and p.charger.energy_mode == "DC_extended"
    with pytest.raises(LocalProtocolError):
        p.ev.send(StartSession(), p.now)


# ------------------------------------------------------------ the charger refuses
def _tampered(cp, name: str, change) -> object:
    """A session in which the EV's ``name`` request is changed by ``change(body)`` on the way."""
    return din_run(cp, ev={"charge_loops": 2}, tamper=rewrite(cp, "ev", name, change))


@pytest.mark.parametrize("name, change, code", [
    ("ServicePaymentSelectionReq", lambda b: b.update(SelectedPaymentOption="Contract"),
     "FAILED_PaymentSelectionInvalid"),
    ("ServicePaymentSelectionReq", lambda b: b.update(SelectedServiceList={"SelectedService": [{"ServiceID": 7}]}),
     "FAILED_ServiceSelectionInvalid"),
    ("ChargeParameterDiscoveryReq", lambda b: b.update(EVRequestedEnergyTransferType="DC_core"),
     "FAILED_WrongEnergyTransferType"),
    ("ChargeParameterDiscoveryReq", lambda b: b.pop("DC_EVChargeParameter"), "FAILED_WrongChargeParameter"),
    ("CurrentDemandReq", lambda b: b.pop("EVTargetVoltage"), "FAILED"),
])
def test_charger_refusals_get_their_code_and_end_both_sides(cp, name, change, code):
    if cp is not fake_codecs and code in ("FAILED_WrongChargeParameter", "FAILED"):
        pytest.skip("the real codec cannot encode the request without its mandatory element")
    p = _tampered(cp, name, change)
    res = name[:-3] + "Res"
    assert p.charger.trace[-1] == ("out", res) and p.ev.trace[-1] == ("in", res)
    assert ended(p.charger_events).response_code == code and ended(p.charger_events).reason == "failed"
    assert first(p.charger_events, ProtocolError).response_code == code
    end = ended(p.ev_events)
    assert (end.reason, end.response_code) == ("failed", code)  # the EV stops on a FAILED answer


def test_power_delivery_start_while_charging_is_not_applied():
    start = ("PowerDeliveryReq", {"ReadyToChargeState": True, "DC_EVPowerDeliveryParameter": {
        "DC_EVStatus": M.dc_ev_status(), "ChargingComplete": False}})
    p = din_run(fake_codecs, tamper=rewrite(fake_codecs, "ev", "CurrentDemandReq", lambda body: start))
    assert ended(p.charger_events).response_code == "FAILED_PowerDeliveryNotApplied"


@pytest.mark.parametrize("backend", ["reject"])
def test_identification_refused(cp, backend):
    p = din_run(cp, backend=backend, auth_after=0.5)
    assert first(p.charger_events, AuthorizationRejected).response_code == "FAILED"
    assert first(p.ev_events, AuthorizationRejected).response_code == "FAILED"
    assert p.charger.trace[-1] == ("out", "ContractAuthenticationRes")
    assert ended(p.ev_events).response_code == ended(p.charger_events).response_code == "FAILED"
    assert "ChargeParameterDiscoveryReq" not in sent(p.ev)


def test_identification_never_answered_ends_with_failed_in_time():
    p = din_run(fake_codecs, auth_after=1e9)
    assert p.charger.trace[-1] == ("out", "ContractAuthenticationRes")
    end = ended(p.charger_events)
    assert end.response_code == "FAILED" and 140.0 < p.now < 141.0  # before the EV's ReadyToCharge timeout
    assert ended(p.ev_events).response_code == "FAILED"


def test_charger_without_a_dc_mode_refuses_service_discovery():
    p = din_run(fake_codecs, charger={"energy_modes": ("AC_three_phase_core",)})
    assert p.charger.trace[-1] == ("out", "ServiceDiscoveryRes")
    assert ended(p.charger_events).response_code == "FAILED" and ended(p.ev_events).reason == "failed"


# ------------------------------------------------------------ the EV leaves
@pytest.mark.parametrize("ev, charger, detail", [
    ({"energy_mode": "AC_three_phase_core"}, {}, "DIN SPEC 70121 charges DC only"),
    ({"energy_mode": "DC_extended"}, {"energy_modes": ("DC_core",)}, "the charger offers DC_core"),
])
def test_ev_leaves_with_session_stop_when_the_charger_does_not_fit(cp, ev, charger, detail):
    p = din_run(cp, ev=ev, charger=charger)
    assert sent(p.ev)[-2:] == ["ServiceDiscoveryReq", "SessionStopReq"]
    end = ended(p.ev_events)
    assert end.reason == "failed" and end.detail.startswith(detail)
    assert ended(p.charger_events).reason == "finished"


def test_combined_energy_type_serves_the_evs_dc_mode():
    p = din_run(fake_codecs, ev={"charge_loops": 1}, charger={"energy_modes": ("AC_core3p_DC_extended",)})
    assert ended(p.ev_events).reason == "finished"
    assert M.supports_mode("AC_core3p_DC_extended", "DC_extended") and not M.supports_mode("DC_core", "DC_extended")


def test_ev_leaves_when_the_charger_shuts_down_during_cable_check():
    shutdown = rewrite(fake_codecs, "charger", "CableCheckRes",
                       lambda body: body["DC_EVSEStatus"].update(EVSEStatusCode="EVSE_EmergencyShutdown"))
    p = din_run(fake_codecs, tamper=shutdown)
    assert sent(p.ev)[-1] == "SessionStopReq" and "EVSE_EmergencyShutdown" in ended(p.ev_events).detail


@pytest.mark.parametrize("target", ["SessionSetupRes", "ServiceDiscoveryRes", "ServicePaymentSelectionRes",
                                    "ChargeParameterDiscoveryRes", "CableCheckRes", "PreChargeRes", "PowerDeliveryRes",
                                    "CurrentDemandRes", "WeldingDetectionRes"])
def test_ev_ends_on_a_failed_response_at_any_step(target):
    """Every response carrying FAILED ends the EV's session at once (no request follows)."""
    p = din_run(fake_codecs, ev={"charge_loops": 1},
                tamper=rewrite(fake_codecs, "charger", target, lambda body: body.update(ResponseCode="FAILED")))
    assert p.ev.trace[-1] == ("in", target)
    assert ended(p.ev_events).response_code == "FAILED" and ended(p.ev_events).reason == "failed"


# ------------------------------------------------------------ timers (Tables 75 and 77)
def test_timing_tables():
    assert EVCC_MSG_TIMEOUT["CurrentDemandReq"] == 0.25 and EVCC_MSG_TIMEOUT["PowerDeliveryReq"] == 2.0
    assert all(v == 2.0 for k, v in EVCC_MSG_TIMEOUT.items() if k != "CurrentDemandReq")
    assert set(EVCC_MSG_TIMEOUT) == {"supportedAppProtocolReq", *SUPPORTED_REQUESTS}
    assert {k: v for k, (v, _) in TIMERS.items()} == {
        "V2G_EVCC_CommunicationSetup_Timeout": 20.0, "V2G_SECC_Sequence_Timeout": 60.0,
        "V2G_EVCC_ReadyToCharge_Timeout": 150.0, "V2G_EVCC_CableCheck_Timeout": 40.0,
        "V2G_EVCC_PreCharge_Timeout": 7.0}
    assert all(ref.startswith(("[V2G-DC-", "Table ")) for _, ref in TIMERS.values())
    assert TimingProfile(scale=0.5).message_timeout("CurrentDemandReq") == 0.125
    assert SPEC.timing.get("secc_authorization") < TIMERS["V2G_EVCC_ReadyToCharge_Timeout"][0]


def _silence(direction: str, when, **kw):
    """Run until ``when(pump)``, then drop everything ``direction`` sends until the other side ended;
    returns (pump, t0)."""
    p = din_run(fake_codecs, until=when, **kw)
    t0 = p.now
    if direction == "charger":
        p.drop_to_ev = True
        p.run(until=lambda: p.ev.ended)
    else:
        p.drop_to_charger = True
        p.run(until=lambda: p.charger.ended)
    return p, t0


@pytest.mark.parametrize("request_name, timeout", [
    ("ServiceDiscoveryReq", 2.0), ("PowerDeliveryReq", 2.0), ("CurrentDemandReq", 0.25), ("SessionStopReq", 2.0)])
def test_ev_message_timeout(request_name, timeout):
    p, t0 = _silence("charger", lambda p: p.ev.trace[-1] == ("out", request_name),
                     ev={"charge_loops": 2, "welding_detection": False})
    exp = first(p.ev_events, TimerExpired)
    assert (exp.timer, exp.message) == ("V2G_EVCC_Msg_Timeout", request_name)
    assert p.now - t0 == pytest.approx(timeout)
    assert ended(p.ev_events).reason == "timeout"


def test_charger_sequence_timeout():
    p, t0 = _silence("ev", lambda p: p.charger.state is ChargerState.WAIT_CABLE_CHECK)
    assert first(p.charger_events, TimerExpired).timer == "V2G_SECC_Sequence_Timeout"
    assert p.now - t0 == pytest.approx(60.0) and ended(p.charger_events).reason == "timeout"


def test_ready_to_charge_timeout_bounds_the_ongoing_loops():
    lenient = TimingProfile(secc_authorization=1e6)
    p = din_run(fake_codecs, auth_after=1e9, timing=lenient, until=lambda p: p.ev.ended)
    exp = first(p.ev_events, TimerExpired)
    assert (exp.timer, exp.message) == ("V2G_EVCC_ReadyToCharge_Timeout", "PowerDeliveryRes")
    assert 150.0 <= p.now <= 150.5
    assert sum(isinstance(e, AuthorizationPending) for e in p.ev_events) > 100


def test_ready_to_charge_timer_stops_at_power_delivery():
    p = din_run(fake_codecs, ev={"loop_interval": 10.0, "charge_loops": 20})
    assert ended(p.ev_events).reason == "finished" and p.now > 150.0  # charging beyond 150 s is fine


def test_cable_check_timeout():
    p = din_run(fake_codecs, charger={"cable_check_polls": 10_000})
    exp = first(p.ev_events, TimerExpired)
    assert exp.timer == "V2G_EVCC_CableCheck_Timeout"
    assert ended(p.ev_events).reason == "timeout"


def test_precharge_timeout():
    p = din_run(fake_codecs, ev={"precharge_tolerance": -1.0, "poll_interval": 0.5})
    exp = first(p.ev_events, TimerExpired)
    assert exp.timer == "V2G_EVCC_PreCharge_Timeout" and sent(p.ev).count("PreChargeReq") >= 14


def test_communication_setup_timeout():
    slow = TimingProfile(msg_timeout={k: 100.0 for k in EVCC_MSG_TIMEOUT})
    ev = din_ev(fake_codecs, timing=slow)
    ev.send(StartSession(), 0.0)
    assert ev.get_timer() == 20.0
    events = ev.handle_timer(20.0)
    assert first(events, TimerExpired).timer == "V2G_EVCC_CommunicationSetup_Timeout" and ev.ended


def test_a_profile_applies_to_its_own_protocol_only():
    """A scaled DIN profile governs DIN and not ISO-2, and the reverse; without one each protocol
    runs on its own tables (ISO-2's PowerDeliveryReq has 5 s, DIN's 2 s)."""
    din_half, iso2_half = TimingProfile(scale=0.5), iso2.TimingProfile(scale=0.5)
    for timing, din_expected in ((None, 2.0), (din_half, 1.0), (iso2_half, 2.0), ((iso2_half, din_half), 1.0)):
        p = din_run(fake_codecs, timing=timing,
                    until=lambda p: p.ev.trace[-1] == ("out", "PowerDeliveryReq"))
        assert p.ev.get_timer() == pytest.approx(p.now + din_expected)
    ev = EVSession(EVConfig(protocols=("iso2",)), codecs=fake_codecs, timing=(din_half,))
    assert ev.timing is din_half  # the handshake runs on the first profile given
    assert ev.registry.get("iso2").timing.message_timeout("PowerDeliveryReq") == 5.0


# ------------------------------------------------------------ tables
def test_transition_tables_are_consistent():
    assert CoreState.WAIT_SAP in EV_TRANSITIONS and CoreState.WAIT_SAP in CHARGER_TRANSITIONS
    for state, (res, nxt) in EV_TRANSITIONS.items():
        assert res.endswith("Res") and all(n in EV_TRANSITIONS or n is CoreState.ENDED for n in nxt)
    for state, reqs in CHARGER_TRANSITIONS.items():
        for req, nxt in reqs.items():
            assert req in SUPPORTED_REQUESTS or req == "supportedAppProtocolReq"
            assert all(n in CHARGER_TRANSITIONS for n in nxt)
    # every supported request is allowed somewhere; the others of the message set nowhere
    allowed = {r for reqs in CHARGER_TRANSITIONS.values() for r in reqs}
    assert allowed - {"supportedAppProtocolReq"} == set(SUPPORTED_REQUESTS)
    assert set(REQUEST_TO_RESPONSE) - set(SUPPORTED_REQUESTS) == {
        "ServiceDetailReq", "PaymentDetailsReq", "ChargingStatusReq", "MeteringReceiptReq",
        "CertificateInstallationReq", "CertificateUpdateReq"}
    with pytest.raises(AssertionError):
        check_ev_transition(EVState.WAIT_CABLE_CHECK, EVState.WAIT_CURRENT_DEMAND)
    check_ev_transition(EVState.WAIT_CABLE_CHECK, EVState.WAIT_SESSION_STOP)  # giving up
    with pytest.raises(AssertionError):
        check_charger_transition(ChargerState.CHARGING, "SessionStopReq", CoreState.ENDED.__class__.WAIT_SAP)
    with pytest.raises(AssertionError):
        check_charger_transition(ChargerState.WAIT_CABLE_CHECK, "PowerDeliveryReq", ChargerState.CHARGING)
    assert SPEC.plug_and_charge is False and SPEC.tls.value == "forbidden"


@pytest.mark.skipif(REAL is not None, reason=str(REAL))
def test_every_failure_body_is_schema_valid():
    """The FAILED answer to every DIN request type encodes with the real codec (the session ends
    cleanly either way, but the EV must get a decodable answer)."""
    import exi

    codec = exi.get_codec(NS_DIN)
    ch = din_charger(exi.get_codec)
    ch.receive_data(sap_frame(exi.get_codec), 0.0)
    for req, res in REQUEST_TO_RESPONSE.items():
        body = ch.handler.failure_body(res, "FAILED_SequenceError", {})
        msg = {"V2G_Message": {"Header": {"SessionID": bytes(8)}, "Body": {res: body}}}
        assert codec.decode(codec.encode(msg)) == msg, res


def test_charger_answers_ev_sent_requests_outside_din_with_sequence_error(cp):
    for req in ("ServiceDetailReq", "PaymentDetailsReq", "ChargingStatusReq", "MeteringReceiptReq"):
        ch = din_charger(cp)
        ch.receive_data(sap_frame(cp), 0.0)
        ch.data_to_send()
        ch.receive_data(din_frame(cp, bytes(8), "SessionSetupReq", {"EVCCID": bytes(6)}), 0.1)
        sid = ch.session_id
        ch.data_to_send()
        body = {"ServiceDetailReq": {"ServiceID": 1}, "ChargingStatusReq": {},
                "PaymentDetailsReq": {"ContractID": "X", "ContractSignatureCertChain": {"Certificate": b"\x01"}},
                "MeteringReceiptReq": {"SessionID": sid, "MeterInfo": {"MeterID": "m"}}}[req]
        events = ch.receive_data(din_frame(cp, sid, req, body), 0.2)
        name, res = answer(cp, ch.data_to_send())
        assert (name, res["ResponseCode"]) == (req[:-3] + "Res", "FAILED_SequenceError")
        assert ended(events).reason == "failed" and ch.ended
