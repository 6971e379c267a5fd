"""ISO 15118-20 sessions in memory: our EV against our charger (AC, DC, BPT, Scheduled and Dynamic,
EIM), every failure path with the standard's codes, every -20 timeout, pause and resume,
renegotiation, standby, metering confirmation, and hostile input at every state."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Optional

import pytest

import exi
from _pc_fixtures import NOW, Pump, first, kinds, make_pair, trust_store
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSession, SessionStore
from plugcharge.core.codec import NS_APP, NS_ISO20_CM, frame
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationPending, AuthorizationRejected, AuthorizationResult,
    ChargingStarted, ChargingStopped, MeteringReceiptReceived, MeterValues, PauseCharging, PaymentSelected,
    ProtocolAgreed, ProtocolError, RequestRenegotiation, SessionEnded, SessionPaused, SessionStarted, StopCharging,
    TimerExpired,
)
from plugcharge.core.fsm import CoreState
from plugcharge.core.handshake import sap_req
from plugcharge.core.v2gtp import PayloadType
from plugcharge.iso20 import SPEC_AC, SPEC_DC, ChargerState, ContractIdentity, EVState
from plugcharge.iso20 import messages as M
from plugcharge.iso20.states import CHARGER_TABLES, EV_TABLES, REQUEST_TO_RESPONSE
from plugcharge.iso20.timing import DEFAULT_TIMING, TimingProfile

cp = exi.get_codec
DC, AC = "DC_extended", "AC_three_phase_core"


def run(tmp_path: Path, *, ev: Optional[dict] = None, charger: Optional[dict] = None, auth_after: float = 0.0,
        answer_backend: bool = True, timing: Any = DEFAULT_TIMING, store: Optional[SessionStore] = None,
        until: Any = None, charger_security: Optional[ChargerSecurity] = None, backend: Any = None) -> Pump:
    evc = EVConfig(**{"charge_loops": 4, "tls": True, **(ev or {})})
    chc = ChargerConfig(**(charger or {}))
    e, c, b = make_pair(tmp_path, ev_config=evc, charger_config=chc, codec_provider=cp, timing=timing,
                        protocols=("iso20",), store=store, charger_security=charger_security, backend=backend)
    p = Pump(e, c, b, answer_backend=answer_backend, auth_after=auth_after)
    p.start()
    return p.run(until=None if until is None else (lambda: until(p)))


def command(pump: Pump, side: str, cmd: Any) -> None:
    """Give ``cmd`` to one side and put what it sends on the wire."""
    session = pump.ev if side == "ev" else pump.charger
    out = session.send(cmd, pump.now)
    (pump.ev_events if side == "ev" else pump.charger_events).extend(out.events)
    pump._deliver(side, out.data)


def ev_ended(pump: Pump) -> bool:
    return bool(pump.ev.ended)


def ended(events: list) -> SessionEnded:
    return first(events, SessionEnded)


def sent(session: Any) -> list[str]:
    return [n for d, n in session.trace if d == "out"]


def meters(events: list) -> list[MeterValues]:
    return [e for e in events if isinstance(e, MeterValues)]


# ------------------------------------------------------------ success paths
@pytest.mark.parametrize("mode", [DC, AC])
@pytest.mark.parametrize("control", ["Scheduled", "Dynamic"])
def test_eim_session_completes(tmp_path, mode, control):
    p = run(tmp_path, ev={"energy_mode": mode, "control_mode": control})
    kind = "AC" if mode == AC else "DC"
    agreed = first(p.ev_events, ProtocolAgreed)
    assert (agreed.name, agreed.namespace, agreed.version) == (f"ISO 15118-20 {kind}", M.NAMESPACE_OF_SERVICE[kind],
                                                                (1, 0))
    assert first(p.charger_events, ProtocolAgreed).protocol == f"iso20-{kind.lower()}"
    pre = ["DC_CableCheckReq", "DC_CableCheckReq", "DC_PreChargeReq"] if kind == "DC" else []
    post = ["DC_WeldingDetectionReq"] * 2 if kind == "DC" else []
    assert sent(p.ev) == [
        "supportedAppProtocolReq", "SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq", "AuthorizationReq",
        "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq", f"{kind}_ChargeParameterDiscoveryReq",
        "ScheduleExchangeReq", *pre, "PowerDeliveryReq", *[f"{kind}_ChargeLoopReq"] * 4, "PowerDeliveryReq",
        *post, "SessionStopReq"]
    assert first(p.ev_events, PaymentSelected).option == "ExternalPayment"
    assert first(p.charger_events, AuthorizationNeeded).payment == "ExternalPayment"
    assert first(p.ev_events, ChargingStarted).energy_mode == kind
    assert (p.charger.handler.service, p.charger.handler.control_mode) == (kind, control)
    assert all(m.current and m.current > 0 for m in meters(p.ev_events))
    assert [m.soc for m in meters(p.ev_events)] == [31, 32, 33, 34]
    assert ended(p.ev_events).reason == ended(p.charger_events).reason == "finished"


@pytest.mark.parametrize("mode", [DC, AC])
@pytest.mark.parametrize("control", ["Scheduled", "Dynamic"])
def test_bpt_discharges_then_charges(tmp_path, mode, control):
    """Scheduled: the EV asks for negative current/power for its discharge loops; Dynamic: the charger
    commands the discharge.  Either way the battery drains, then fills, and the meter counts both."""
    p = run(tmp_path, ev={"energy_mode": mode, "control_mode": control, "bpt": True, "discharge_loops": 2,
                          "charge_loops": 5, "loop_interval": 0.25}, charger={"discharge_loops": 2})
    kind = "AC" if mode == AC else "DC"
    assert p.charger.handler.service == kind + "_BPT"
    currents = [m.current for m in meters(p.ev_events)]
    assert currents[0] < 0 and currents[1] < 0 and all(c > 0 for c in currents[2:]), currents
    assert [m.soc for m in meters(p.ev_events)] == [29, 28, 29, 30, 31]
    assert p.charger.handler._discharged_wh > 0 and p.charger.handler._charged_wh > 0
    # the discharge limits were exchanged: BPT charge parameters both ways
    assert "DC_ChargeParameterDiscoveryReq" in sent(p.ev) or "AC_ChargeParameterDiscoveryReq" in sent(p.ev)
    assert p.charger.handler._ev_limits["EVMaximumDischargePower"] == 11000.0
    assert ended(p.ev_events).reason == "finished"


def test_messages_travel_with_their_schema_payload_types(tmp_path):
    seen: list[tuple[str, int]] = []
    evc = EVConfig(charge_loops=1, tls=True)
    e, c, b = make_pair(tmp_path, ev_config=evc, codec_provider=cp, protocols=("iso20",))
    pump = Pump(e, c, b)

    def tap(src: str, data: bytes) -> bytes:
        pos = 0
        while pos < len(data):
            ptype = int.from_bytes(data[pos + 2:pos + 4], "big")
            length = int.from_bytes(data[pos + 4:pos + 8], "big")
            payload = data[pos + 8:pos + 8 + length]
            ns = {0x8001: NS_APP, 0x8002: NS_ISO20_CM, 0x8004: M.NS_DC}[ptype]
            seen.append((next(iter(cp(ns).decode(payload))), ptype))
            pos += 8 + length
        return data
    pump.tamper = tap
    pump.start()
    pump.run()
    types = dict(seen)
    assert types["supportedAppProtocolReq"] == types["supportedAppProtocolRes"] == PayloadType.EXI
    assert types["SessionSetupReq"] == types["ScheduleExchangeRes"] == types["PowerDeliveryReq"] == 0x8002
    assert types["DC_ChargeLoopReq"] == types["DC_CableCheckRes"] == types["DC_WeldingDetectionRes"] == 0x8004


def test_eim_ongoing_until_the_driver_identifies(tmp_path):
    p = run(tmp_path, auth_after=3.0, ev={"poll_interval": 0.5})
    pending = [e for e in p.ev_events if isinstance(e, AuthorizationPending)]
    assert len(pending) >= 5 and pending[0].processing == "Ongoing"
    assert len([e for e in p.charger_events if isinstance(e, AuthorizationNeeded)]) == 1
    assert first(p.ev_events, AuthorizationAccepted).payment == "ExternalPayment"
    assert ended(p.ev_events).reason == "finished"


def test_metering_confirmation_on_the_chargers_request(tmp_path):
    p = run(tmp_path, ev={"charge_loops": 4}, charger={"receipt_every": 2})
    assert sent(p.ev).count("MeteringConfirmationReq") == 2
    receipt = first(p.charger_events, MeteringReceiptReceived)
    assert receipt.meter_info["MeterID"] == ChargerConfig().meter_id
    assert ended(p.ev_events).reason == "finished"


def recording_pump(tmp_path: Path, ev: dict, charger: Optional[dict] = None, **kw: Any) -> Pump:
    """A pump that keeps every decoded EV request (``pump.recorded``)."""
    evc = EVConfig(**{"charge_loops": 4, "tls": True, **ev})
    e, c, b = make_pair(tmp_path, ev_config=evc, charger_config=ChargerConfig(**(charger or {})), codec_provider=cp,
                        protocols=("iso20",), **kw)
    pump = Pump(e, c, b)
    pump.recorded = []  # type: ignore[attr-defined]

    def tap(src: str, data: bytes) -> bytes:
        if src == "ev":
            pos = 0
            while pos < len(data):
                ptype = int.from_bytes(data[pos + 2:pos + 4], "big")
                length = int.from_bytes(data[pos + 4:pos + 8], "big")
                if ptype != 0x8001:
                    ns = M.NS_DC if ptype == 0x8004 else M.NS_AC if ptype == 0x8003 else NS_ISO20_CM
                    pump.recorded.append(cp(ns).decode(data[pos + 8:pos + 8 + length]))  # type: ignore[attr-defined]
                pos += 8 + length
        return data
    pump.tamper = tap
    return pump


def test_renegotiation_sequence_on_the_wire(tmp_path):
    pump = recording_pump(tmp_path, {"charge_loops": 6, "loop_interval": 0.1})
    pump.start()
    pump.run(until=lambda: pump.charger.state is ChargerState.CHARGING)
    command(pump, "charger", RequestRenegotiation())
    pump.run()
    progress = [m["PowerDeliveryReq"]["ChargeProgress"] for m in pump.recorded if "PowerDeliveryReq" in m]
    assert progress == ["Start", "ScheduleRenegotiation", "Start", "Stop"]
    assert len([m for m in pump.recorded if "ScheduleExchangeReq" in m]) == 2
    assert ended(pump.ev_events).reason == ended(pump.charger_events).reason == "finished"


@pytest.mark.parametrize("allowed", [True, False])
def test_standby_and_back(tmp_path, allowed):
    pump = recording_pump(tmp_path, {"charge_loops": 6, "standby_after_loops": 2, "standby_loops": 2},
                          {"standby_allowed": allowed})
    pump.start()
    pump.run()
    progress = [m["PowerDeliveryReq"]["ChargeProgress"] for m in pump.recorded if "PowerDeliveryReq" in m]
    if allowed:
        assert progress == ["Start", "Standby", "Start", "Stop"]
        assert [m.current for m in meters(pump.ev_events)][2:4] == [0.0, 0.0]
        assert [e.reason for e in pump.charger_events if isinstance(e, ChargingStopped)] == ["standby", "ev_request"]
    else:  # WARNING_StandbyNotAllowed: the EV keeps charging
        assert progress == ["Start", "Standby", "Stop"]
        assert all(m.current > 0 for m in meters(pump.ev_events))
    assert ended(pump.ev_events).reason == "finished"


def test_charger_stop_terminates(tmp_path):
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(charge_loops=50, tls=True, loop_interval=0.1),
                        codec_provider=cp, protocols=("iso20",))
    pump = Pump(e, c, b)
    pump.start()
    pump.run(until=lambda: len(meters(pump.ev_events)) >= 2)
    command(pump, "charger", StopCharging())
    pump.run()
    assert len(meters(pump.ev_events)) < 6
    assert [e.reason for e in pump.ev_events if isinstance(e, ChargingStopped)] == ["charger_request"]
    assert ended(pump.ev_events).reason == ended(pump.charger_events).reason == "finished"


def test_pause_and_resume_by_session_id(tmp_path):
    store = SessionStore()
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(charge_loops=50, tls=True, bpt=True, control_mode="Dynamic",
                                                     loop_interval=0.1),
                        codec_provider=cp, protocols=("iso20",), store=store)
    pump = Pump(e, c, b)
    pump.start()
    pump.run(until=lambda: len(meters(pump.ev_events)) >= 2)
    command(pump, "ev", PauseCharging())
    pump.run()
    sid = first(pump.ev_events, SessionPaused).session_id
    assert first(pump.charger_events, SessionPaused).session_id == sid
    assert ended(pump.ev_events).reason == ended(pump.charger_events).reason == "paused"
    assert sent(e)[-2:] == ["DC_WeldingDetectionReq", "SessionStopReq"] and sid in store

    # the EV comes back with the paused SessionID
    pump2 = recording_pump(tmp_path / "2", {"resume_session_id": sid, "bpt": True, "control_mode": "Dynamic"},
                           store=store)
    pump2.start()
    pump2.run()
    started = first(pump2.charger_events, SessionStarted)
    assert started.resumed and started.session_id == sid and pump2.ev.session_id == sid
    assert not [x for x in pump2.charger_events if isinstance(x, AuthorizationNeeded)]  # authorised before
    discovery = [x for x in pump2.recorded if "ServiceDiscoveryReq" in x]
    assert discovery and pump2.charger.handler._services() == ["DC_BPT"]  # [V2G20-1644]
    assert ended(pump2.ev_events).reason == "finished" and sid not in store


def test_resume_with_unknown_session_id_starts_a_new_session(tmp_path):
    p = run(tmp_path, ev={"resume_session_id": b"\x11" * 8})
    started = first(p.charger_events, SessionStarted)
    assert not started.resumed and started.session_id != b"\x11" * 8
    assert ended(p.ev_events).reason == "finished"


# ------------------------------------------------------------ authorisation refused
def test_eim_refused_ends_cleanly(tmp_path):
    class Refuse:
        def authorization(self, req):
            return AuthorizationResult(False)

        def certificate_response(self, req):  # pragma: no cover - not used
            return None
    p = run(tmp_path, backend=Refuse())
    assert first(p.ev_events, AuthorizationRejected).response_code == "WARNING_EIMAuthorizationFailure"
    assert sent(p.ev)[-1] == "SessionStopReq"
    end = ended(p.ev_events)
    assert (end.reason, end.response_code) == ("failed", "WARNING_EIMAuthorizationFailure")
    assert ended(p.charger_events).reason == "finished"


def test_backend_failed_code_ends_with_it(tmp_path):
    class Revoked:
        def authorization(self, req):
            return AuthorizationResult(False, "FAILED")
    p = run(tmp_path, backend=Revoked())
    assert ended(p.ev_events).response_code == ended(p.charger_events).response_code == "FAILED"
    assert p.ev.trace[-1] == ("in", "AuthorizationRes")


def test_charger_without_eim_and_pnc_refuses(tmp_path):
    # no trust store: the default PnC is not offered, and no other PnC implementation is plugged in
    p = run(tmp_path, charger={"payment_options": ("Contract",)}, charger_security=ChargerSecurity(wall_clock=lambda: NOW))
    assert ended(p.charger_events).response_code == "FAILED"
    assert ended(p.ev_events).response_code == "FAILED"


# ------------------------------------------------------------ the PnC seam
class FakePnC:
    """A stand-in PnC implementation: checks nothing but records the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def offered(self, handler):
        return True

    def installation_offered(self, handler):
        return False

    def verify_authorization(self, handler, body, header, msg):
        self.calls.append("verify_authorization")
        return ContractIdentity("DEPLGC000000042", (b"leaf",))

    def check_installation_request(self, handler, body, header, msg):  # pragma: no cover
        raise AssertionError

    def verify_metering(self, handler, body, header, msg):
        self.calls.append("verify_metering")


class FakeEVPnC:
    def __init__(self, challenge: Optional[bytes] = None) -> None:
        self.challenge = challenge

    def choose(self, handler, services, installation_offered):
        return "use", "contract_available"

    def authorization_request(self, handler, challenge):
        cert = {"Certificate": b"\x30\x00", "SubCertificates": {"Certificate": [b"\x30\x00"]}}
        return {"Id": "id1", "GenChallenge": self.challenge or challenge, "ContractCertificateChain": cert}, None

    def metering_signer(self, handler):
        return None


def _pnc_security(pnc: Any, *, ev: bool) -> Any:
    from plugcharge import EVSecurity

    if ev:
        return EVSecurity(wall_clock=lambda: NOW, iso20_pnc=pnc)
    return ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW, iso20_pnc=pnc)


def test_pnc_seam_authorizes_through_the_backend(tmp_path):
    pnc = FakePnC()
    evc = EVConfig(charge_loops=2, tls=True)
    e, c, b = make_pair(tmp_path, ev_config=evc, charger_config=ChargerConfig(receipt_every=2), codec_provider=cp,
                        protocols=("iso20",), charger_security=_pnc_security(pnc, ev=False),
                        ev_security=_pnc_security(FakeEVPnC(), ev=True))
    pump = Pump(e, c, b)
    pump.start()
    pump.run()
    need = first(pump.charger_events, AuthorizationNeeded)
    assert (need.payment, need.emaid, need.chain) == ("Contract", "DEPLGC000000042", (b"leaf",))
    assert pnc.calls == ["verify_authorization", "verify_metering"]
    assert first(pump.ev_events, AuthorizationAccepted).payment == "Contract"
    assert ended(pump.ev_events).reason == "finished"


def test_wrong_gen_challenge_is_refused_and_the_ev_falls_back_to_eim(tmp_path):
    """[V2G20-2565]: a GenChallenge other than the one sent makes the signature invalid:
    WARNING_ChallengeInvalid; the EV then identifies at the charger in the same session."""
    pnc = FakePnC()
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(charge_loops=1, tls=True), codec_provider=cp,
                        protocols=("iso20",), charger_security=_pnc_security(pnc, ev=False),
                        ev_security=_pnc_security(FakeEVPnC(challenge=b"\x00" * 16), ev=True))
    pump = Pump(e, c, b)
    pump.start()
    pump.run()
    assert first(pump.ev_events, AuthorizationRejected).response_code == "WARNING_ChallengeInvalid"
    assert pnc.calls == []  # the signature is never looked at
    assert [x.option for x in pump.ev_events if isinstance(x, PaymentSelected)] == ["Contract", "ExternalPayment"]
    assert first(pump.charger_events, AuthorizationNeeded).payment == "ExternalPayment"
    assert ended(pump.ev_events).reason == "finished"


class RevokedPnC(FakePnC):
    def verify_authorization(self, handler, body, header, msg):
        from plugcharge.core.errors import Refused

        raise Refused("WARNING_CertificateRevoked", "contract revoked")


class ExpiringPnC(FakePnC):
    def verify_authorization(self, handler, body, header, msg):
        return ContractIdentity("DEPLGC000000042", (b"leaf",), response_code="OK_CertificateExpiresSoon")


def test_pnc_warning_from_the_implementation_keeps_the_session_for_eim(tmp_path):
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(charge_loops=1, tls=True), codec_provider=cp,
                        protocols=("iso20",), charger_security=_pnc_security(RevokedPnC(), ev=False),
                        ev_security=_pnc_security(FakeEVPnC(), ev=True))
    pump = Pump(e, c, b)
    pump.start()
    pump.run()
    assert first(pump.ev_events, AuthorizationRejected).response_code == "WARNING_CertificateRevoked"
    assert first(pump.charger_events, AuthorizationNeeded).payment == "ExternalPayment"
    assert ended(pump.ev_events).reason == "finished"


def test_pnc_expiring_contract_is_accepted_with_the_14_day_flag(tmp_path):
    pump = recording_pump(tmp_path, {"charge_loops": 1}, charger_security=_pnc_security(ExpiringPnC(), ev=False),
                          ev_security=_pnc_security(FakeEVPnC(), ev=True))
    codes: list = []
    tap = pump.tamper

    def both(src: str, data: bytes) -> bytes:
        if src == "charger" and data[2:4] == b"\x80\x02":
            name, body, _ = M.unwrap(cp(NS_ISO20_CM).decode(data[8:]))
            if name == "AuthorizationRes":
                codes.append(body["ResponseCode"])
        return tap(src, data)
    pump.tamper = both
    pump.start()
    pump.run()
    assert codes[-1] == "OK_CertificateExpiresSoon" and first(pump.ev_events, AuthorizationAccepted)
    assert ended(pump.ev_events).reason == "finished"


def test_wrong_gen_challenge_without_eim_ends(tmp_path):
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(charge_loops=1, tls=True),
                        charger_config=ChargerConfig(payment_options=("Contract",)), codec_provider=cp,
                        protocols=("iso20",), charger_security=_pnc_security(FakePnC(), ev=False),
                        ev_security=_pnc_security(FakeEVPnC(challenge=b"\x01" * 16), ev=True))
    pump = Pump(e, c, b)
    pump.start()
    pump.run()
    end = ended(pump.ev_events)
    assert (end.reason, end.response_code) == ("failed", "WARNING_ChallengeInvalid")
    assert sent(e)[-1] == "SessionStopReq" and ended(pump.charger_events).reason == "finished"


# ------------------------------------------------------------ timeouts
def test_timing_table_values():
    t = DEFAULT_TIMING
    assert t.message_timeout("SessionSetupReq") == t.message_timeout("PowerDeliveryReq") == 2.0
    assert t.message_timeout("CertificateInstallationReq") == t.message_timeout("ServiceDetailReq") == 5.0
    assert t.message_timeout("DC_ChargeLoopReq") == t.message_timeout("AC_ChargeLoopReq") == 0.5
    assert t.sequence_timeout() == 60.0
    assert (t.get("ongoing"), t.get("eim_ongoing"), t.get("cable_check"), t.get("pre_charge")) == (60, 180, 40, 10)
    assert t.performance["DC_ChargeLoopRes"] < 0.5 and t.performance["ServiceDetailRes"] < 5.0
    assert TimingProfile(scale=0.1).message_timeout("DC_ChargeLoopReq") == pytest.approx(0.05)


def _silence_after(pump: Pump, name: str) -> None:
    """Drop the charger's answers once it has received ``name``."""
    pump.run(until=lambda: ("in", name) in pump.charger.trace)
    pump.drop_to_ev = True
    pump.run()


@pytest.mark.parametrize("request_name,mode,expected", [
    ("SessionSetupReq", DC, 2.0), ("ServiceDetailReq", DC, 5.0), ("DC_ChargeLoopReq", DC, 0.5),
    ("AC_ChargeLoopReq", AC, 0.5), ("ScheduleExchangeReq", AC, 2.0)])
def test_ev_message_timeout(tmp_path, request_name, mode, expected):
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(charge_loops=3, tls=True, energy_mode=mode), codec_provider=cp,
                        protocols=("iso20",))
    pump = Pump(e, c, b)
    pump.start()
    pump.run(until=lambda: ("out", request_name) in e.trace)
    t0 = pump.now
    pump.drop_to_ev = True
    pump.run(until=lambda: e.ended)
    expired = first(pump.ev_events, TimerExpired)
    assert (expired.timer, expired.message) == ("V2G_EVCC_Msg_Timeout", request_name)
    assert pump.now - t0 == pytest.approx(expected)
    assert ended(pump.ev_events).reason == "timeout"


def test_eim_ongoing_timeout_of_the_ev(tmp_path):
    slow_charger = TimingProfile(secc_eim_ongoing=1000.0)
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(tls=True, poll_interval=5.0), codec_provider=cp,
                        protocols=("iso20",))
    c = ChargerSession(ChargerConfig(), security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW),
                       codecs=cp, timing=slow_charger, now=0.0)
    pump = Pump(e, c, b, answer_backend=False)
    pump.start()
    pump.run(until=lambda: e.ended)
    expired = first(pump.ev_events, TimerExpired)
    assert (expired.timer, expired.message) == ("V2G_EVCC_Ongoing_Timeout", "AuthorizationReq")
    assert 180.0 <= pump.now <= 186.0


def test_eim_ongoing_limit_of_the_charger(tmp_path):
    p = run(tmp_path, answer_backend=False, ev={"poll_interval": 2.0}, until=lambda p: p.ev.ended and p.charger.ended)
    end = ended(p.charger_events)
    assert (end.reason, end.response_code) == ("failed", "FAILED")
    assert ended(p.ev_events).response_code == "FAILED" and 175.0 < p.now <= 181.0


def test_schedule_exchange_ongoing_timeout(tmp_path):
    p = run(tmp_path, charger={"schedule_polls": 10_000}, ev={"poll_interval": 1.0}, until=ev_ended)
    expired = first(p.ev_events, TimerExpired)
    assert (expired.timer, expired.message) == ("V2G_EVCC_Ongoing_Timeout", "ScheduleExchangeReq")
    assert 60.0 <= p.now <= 75.0


def test_cable_check_timeout(tmp_path):
    p = run(tmp_path, charger={"cable_check_polls": 10_000}, ev={"poll_interval": 1.0}, until=ev_ended)
    expired = first(p.ev_events, TimerExpired)
    assert expired.timer == "V2G_EVCC_CableCheck_Timeout"
    assert 40.0 <= p.now <= 42.0


def test_precharge_timeout(tmp_path):
    p = run(tmp_path, ev={"precharge_tolerance": -1.0, "poll_interval": 0.5}, until=ev_ended)
    expired = first(p.ev_events, TimerExpired)
    assert expired.timer == "V2G_EVCC_PreCharge_Timeout"
    assert 10.0 <= p.now <= 20.0


def test_charger_sequence_timeout(tmp_path):
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(tls=True), codec_provider=cp, protocols=("iso20",))
    pump = Pump(e, c, b)
    pump.start()
    pump.run(until=lambda: ("out", "ServiceDiscoveryRes") in c.trace)
    pump.drop_to_charger = True
    t0 = pump.now
    pump.run(until=lambda: c.ended)
    expired = first(pump.charger_events, TimerExpired)
    assert expired.timer == "V2G_SECC_Sequence_Timeout" and pump.now - t0 == pytest.approx(60.0)


# ------------------------------------------------------------ the charger against raw requests
class Raw:
    """Drives our charger with hand-made -20 requests."""

    def __init__(self, spec: Any = SPEC_DC, **config: Any) -> None:
        self.ch = ChargerSession(ChargerConfig(**config), codecs=cp, now=0.0, protocols=None,
                                 security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW))
        self.spec = spec
        self.events = list(self.ch.receive_data(frame(cp(NS_APP).encode(sap_req(
            ((spec.namespace, 1, 0, 1, 1),)))), 0.0))
        assert cp(NS_APP).decode(self.ch.data_to_send()[8:])["supportedAppProtocolRes"]["ResponseCode"].startswith("OK")
        self.sid = bytes(8)
        self.now = 0.0

    def send(self, name: str, body: dict, sid: Optional[bytes] = None) -> Optional[tuple[str, dict]]:
        ns, ptype = M.route(name)
        msg = M.wrap(self.sid if sid is None else sid, name, body)
        self.now += 0.01
        self.events += self.ch.receive_data(frame(cp(ns).encode(msg), ptype), self.now)
        return self.answer()

    def raw(self, data: bytes) -> Optional[tuple[str, dict]]:
        self.now += 0.01
        self.events += self.ch.receive_data(data, self.now)
        return self.answer()

    def answer(self) -> Optional[tuple[str, dict]]:
        out = self.ch.data_to_send()
        if not out:
            return None
        ptype = int.from_bytes(out[2:4], "big")
        ns = {0x8002: NS_ISO20_CM, 0x8003: M.NS_AC, 0x8004: M.NS_DC}[ptype]
        name, body, header = M.unwrap(cp(ns).decode(out[8:]))
        assert M.route(name)[1] == ptype
        return name, body

    def setup(self) -> "Raw":
        name, body = self.send("SessionSetupReq", {"EVCCID": "0A1B2C3D4E5F"})
        assert body["ResponseCode"] == "OK_NewSessionEstablished"
        self.sid = self.ch.session_id
        return self

    def authorize(self) -> "Raw":
        self.send("AuthorizationSetupReq", {})
        self.ch.send(AuthorizationResult(True), self.now)
        assert self.send("AuthorizationReq", {"SelectedAuthorizationService": "EIM",
                                              "EIM_AReqAuthorizationMode": {}})[1]["EVSEProcessing"] == "Finished"
        return self

    def select(self, service: str = "DC", pset: int = 1) -> "Raw":
        self.send("ServiceDiscoveryReq", {})
        self.send("ServiceDetailReq", {"ServiceID": M.SERVICE_IDS[service]})
        name, body = self.send("ServiceSelectionReq", {"SelectedEnergyTransferService": {
            "ServiceID": M.SERVICE_IDS[service], "ParameterSetID": pset}})
        assert body["ResponseCode"] == "OK"
        return self

    def code(self) -> Optional[str]:
        e = [x for x in self.events if isinstance(x, SessionEnded)]
        return e[0].response_code if e else None


R = M.rational
DC_CPD = {"DC_CPDReqEnergyTransferMode": {k: R(100) for k in (
    "EVMaximumChargePower", "EVMinimumChargePower", "EVMaximumChargeCurrent", "EVMinimumChargeCurrent",
    "EVMaximumVoltage", "EVMinimumVoltage")}}


def test_out_of_sequence_request_gets_sequence_error():
    raw = Raw().setup()
    name, body = raw.send("ServiceDiscoveryReq", {})
    assert (name, body["ResponseCode"]) == ("ServiceDiscoveryRes", "FAILED_SequenceError")
    assert raw.ch.ended and raw.code() == "FAILED_SequenceError"
    assert raw.ch.receive_data(b"more", 1.0) == []


def test_energy_message_out_of_sequence_answers_in_its_own_schema():
    raw = Raw().setup()
    name, body = raw.send("DC_ChargeLoopReq", {"MeterInfoRequested": False, "EVPresentVoltage": R(400),
                                               "Scheduled_DC_CLReqControlMode": {"EVTargetCurrent": R(10),
                                                                                 "EVTargetVoltage": R(400)}})
    assert (name, body["ResponseCode"]) == ("DC_ChargeLoopRes", "FAILED_SequenceError")


def test_wrong_session_id_gets_unknown_session():
    raw = Raw().setup()
    name, body = raw.send("AuthorizationSetupReq", {}, sid=b"\x01" * 8)
    assert (name, body["ResponseCode"]) == ("AuthorizationSetupRes", "FAILED_UnknownSession")
    assert raw.code() == "FAILED_UnknownSession"


def test_undecodable_request_gets_failed():
    raw = Raw().setup()
    name, body = raw.raw(frame(b"\x80\x99\xff\xff garbage", PayloadType.MAINSTREAM))
    assert (name, body["ResponseCode"]) == ("AuthorizationSetupRes", "FAILED")
    assert first(raw.events, ProtocolError).remote and raw.ch.ended


def test_message_of_the_other_energy_schema_is_refused():
    raw = Raw().setup()
    # an AC payload type on a DC session is a V2GTP type of another message set: refused at once
    # (FAILED in the response the state expects), not skipped until V2G_SECC_Sequence_Timeout
    name, body = raw.raw(frame(b"\x80", PayloadType.AC_MAINSTREAM))
    assert (name, body["ResponseCode"]) == ("AuthorizationSetupRes", "FAILED") and raw.ch.ended
    raw = Raw().setup()
    # a message on the wrong payload type does not decode in that schema: FAILED
    name, body = raw.raw(frame(cp(M.NS_DC).encode(M.wrap(raw.sid, "DC_CableCheckReq", {})), PayloadType.MAINSTREAM))
    assert (name, body["ResponseCode"]) == ("AuthorizationSetupRes", "FAILED")


def test_service_detail_of_a_service_not_offered():
    raw = Raw(bpt=False).setup().authorize()
    raw.send("ServiceDiscoveryReq", {})
    name, body = raw.send("ServiceDetailReq", {"ServiceID": M.SERVICE_IDS["DC_BPT"]})
    assert (name, body["ResponseCode"], body["ServiceID"]) == ("ServiceDetailRes", "FAILED_ServiceIDInvalid", 6)


@pytest.mark.parametrize("sel", [{"ServiceID": 1, "ParameterSetID": 1}, {"ServiceID": 2, "ParameterSetID": 9}])
def test_service_selection_not_offered(sel):
    raw = Raw().setup().authorize()
    raw.send("ServiceDiscoveryReq", {})
    name, body = raw.send("ServiceSelectionReq", {"SelectedEnergyTransferService": sel})
    assert (name, body["ResponseCode"]) == ("ServiceSelectionRes", "FAILED_ServiceSelectionInvalid")


def test_wrong_charge_parameter_for_a_bpt_service():
    raw = Raw().setup().authorize().select("DC_BPT")
    name, body = raw.send("DC_ChargeParameterDiscoveryReq", DC_CPD)
    assert (name, body["ResponseCode"]) == ("DC_ChargeParameterDiscoveryRes", "FAILED_WrongChargeParameter")


def _to_power_delivery(raw: Raw) -> None:
    raw.send("DC_ChargeParameterDiscoveryReq", DC_CPD)
    assert raw.send("ScheduleExchangeReq", {"MaximumSupportingPoints": 1024, "Scheduled_SEReqControlMode": {}}
                    )[1]["EVSEProcessing"] == "Finished"
    raw.send("DC_CableCheckReq", {})
    raw.send("DC_CableCheckReq", {})
    raw.send("DC_PreChargeReq", {"EVProcessing": "Ongoing", "EVPresentVoltage": R(400), "EVTargetVoltage": R(400)})


def _start(tuple_id: int) -> dict:
    return {"EVProcessing": "Finished", "ChargeProgress": "Start", "EVPowerProfile": {
        "TimeAnchor": 0, "Scheduled_EVPPTControlMode": {"SelectedScheduleTupleID": tuple_id},
        "EVPowerProfileEntries": {"EVPowerProfileEntry": [{"Duration": 10, "Power": R(1000)}]}}}


def test_schedule_tuple_not_offered():
    raw = Raw().setup().authorize().select()
    _to_power_delivery(raw)
    name, body = raw.send("PowerDeliveryReq", _start(7))
    assert (name, body["ResponseCode"]) == ("PowerDeliveryRes", "FAILED_ScheduleSelectionInvalid")


def test_schedule_exchange_in_another_control_mode():
    raw = Raw().setup().authorize().select()
    raw.send("DC_ChargeParameterDiscoveryReq", DC_CPD)
    name, body = raw.send("ScheduleExchangeReq", {"MaximumSupportingPoints": 1024, "Dynamic_SEReqControlMode": {
        "DepartureTime": 1, "EVTargetEnergyRequest": R(1), "EVMaximumEnergyRequest": R(1),
        "EVMinimumEnergyRequest": R(0)}})
    assert (name, body["ResponseCode"]) == ("ScheduleExchangeRes", "FAILED")


def test_charge_loop_in_another_control_mode_and_service_renegotiation():
    raw = Raw().setup().authorize().select()
    _to_power_delivery(raw)
    assert raw.send("PowerDeliveryReq", _start(1))[1]["ResponseCode"] == "OK"
    name, body = raw.send("DC_ChargeLoopReq", {"MeterInfoRequested": True, "EVPresentVoltage": R(400),
                                               "Dynamic_DC_CLReqControlMode": {
                                                   k: R(1) for k in ("EVTargetEnergyRequest", "EVMaximumEnergyRequest",
                                                                     "EVMinimumEnergyRequest", "EVMaximumChargePower",
                                                                     "EVMinimumChargePower", "EVMaximumChargeCurrent",
                                                                     "EVMaximumVoltage", "EVMinimumVoltage")}})
    assert (name, body["ResponseCode"]) == ("DC_ChargeLoopRes", "FAILED_WrongChargeParameter")


def test_session_stop_service_renegotiation_not_supported():
    raw = Raw().setup().authorize()
    name, body = raw.send("SessionStopReq", {"ChargingSession": "ServiceRenegotiation"})
    assert (name, body["ResponseCode"]) == ("SessionStopRes", "FAILED_NoServiceRenegotiationSupported")


def test_authorization_mode_not_offered_is_a_warning():
    raw = Raw(payment_options=("ExternalPayment",)).setup()  # PnC not offered
    raw.send("AuthorizationSetupReq", {})
    name, body = raw.send("AuthorizationReq", {"SelectedAuthorizationService": "PnC", "PnC_AReqAuthorizationMode": {
        "Id": "id1", "GenChallenge": bytes(16), "ContractCertificateChain": {
            "Certificate": b"\x30", "SubCertificates": {"Certificate": [b"\x30"]}}}})
    assert (name, body["ResponseCode"]) == ("AuthorizationRes", "WARNING_AuthorizationSelectionInvalid")  # [V2G20-2226]
    assert not raw.ch.ended
    assert raw.send("SessionStopReq", {"ChargingSession": "Terminate"})[1]["ResponseCode"] == "OK"
    assert ended(raw.events).reason == "finished"


def test_metering_confirmation_not_requested_is_a_sequence_error():
    raw = Raw().setup().authorize().select()
    _to_power_delivery(raw)
    raw.send("PowerDeliveryReq", _start(1))
    name, body = raw.send("MeteringConfirmationReq", {"SignedMeteringData": {
        "Id": "id1", "SessionID": raw.sid, "MeterInfo": {"MeterID": "m", "ChargedEnergyReadingWh": 0},
        "Dynamic_SMDTControlMode": {}}})
    assert (name, body["ResponseCode"]) == ("MeteringConfirmationRes", "FAILED_SequenceError")


def test_ev_stops_on_a_failed_response(tmp_path):
    """[V2G20-1967]: FAILED in any response ends the EV's session at once."""
    p = run(tmp_path, ev={"bpt": True}, charger={"bpt": False})
    end = ended(p.ev_events)
    assert end.reason == "failed" and "DC_BPT" in end.detail  # the charger does not offer DC_BPT
    assert sent(p.ev)[-1] == "SessionStopReq"


# ------------------------------------------------------------ hostile input
@pytest.mark.parametrize("header", [
    b"\x02\xfd\x80\x02\x00\x00\x00\x01x",  # wrong protocol version
    b"\x01\xfe\x80\x02\xff\xff\xff\xff",  # payload length beyond the limit
    b"\x01\xfe\x80\x02\x00",  # truncated, then the connection goes quiet
])
def test_bad_v2gtp_headers(header):
    raw = Raw().setup()
    raw.raw(header)
    raw.ch.handle_timer(1000.0)
    assert raw.ch.ended and raw.ch.get_timer() is None


def fixed_ids() -> ChargerSecurity:
    """Charger security whose SessionIDs are always the same (a recorded session replays)."""
    return ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW, random_bytes=lambda k: b"\x07" * k)


def _full_session_frames(tmp_path: Path, **ev: Any) -> list[bytes]:
    frames: list[bytes] = []
    e, c, b = make_pair(tmp_path, ev_config=EVConfig(**{"charge_loops": 2, "tls": True, **ev}), codec_provider=cp,
                        protocols=("iso20",), charger_config=ChargerConfig(receipt_every=2),
                        charger_security=fixed_ids())
    pump = Pump(e, c, b)

    def tap(src: str, data: bytes) -> bytes:
        if src == "ev":
            frames.append(data)
        return data
    pump.tamper = tap
    pump.start()
    pump.run()
    assert ended(pump.ev_events).reason == "finished"
    return frames


@pytest.mark.parametrize("mode", [DC, AC])
def test_mutated_exi_at_every_state(tmp_path, mode):
    """Replay a real session's requests into a fresh charger, flipping bits in the n-th request:
    every outcome is an answer or a clean end, never an exception, a hang or a silent stall."""
    frames = _full_session_frames(tmp_path, energy_mode=mode)
    # unmutated, the replay is the whole session again (so each mutation meets the state it aims at)
    ch = ChargerSession(ChargerConfig(receipt_every=2), codecs=cp, now=0.0, security=fixed_ids())
    last: list = []
    for i, data in enumerate(frames):
        if i == 4:
            ch.send(AuthorizationResult(True), 0.0)
        last = ch.receive_data(data, 0.0) or last
        ch.data_to_send()
    assert ended(last).reason == "finished"
    rng = random.Random(2020)
    codes: set = set()
    for n in range(1, len(frames)):
        for _ in range(4):
            ch = ChargerSession(ChargerConfig(receipt_every=2), codecs=cp, now=0.0, security=fixed_ids())
            t = 0.0
            for i, data in enumerate(frames[:n + 1]):
                if i == n:
                    blob = bytearray(data)
                    for _ in range(rng.randint(1, 3)):
                        pos = rng.randrange(8, len(blob)) if len(blob) > 8 else 0
                        blob[pos] ^= 1 << rng.randrange(8)
                    data = bytes(blob)
                t += 0.01
                if i == 4 and not ch.ended:  # the EIM answer arrives between the two AuthorizationReqs
                    ch.send(AuthorizationResult(True), t)
                ch.receive_data(data, t)
                ch.data_to_send()
            events = ch.handle_timer(t + 61.0)
            assert ch.ended  # it either ended on the mutation or on the sequence timeout
            codes.add(getattr(next(iter(events), None), "timer", None) or "ended before")
    assert len(codes) == 2  # some mutations were answered and ended the session, some were harmless


def test_out_of_order_replay_of_real_requests(tmp_path):
    """Each real request of a session sent first after SessionSetup: FAILED_SequenceError in the
    request's own response type (and schema), and a clean end."""
    frames = _full_session_frames(tmp_path)
    for data in frames[3:]:
        raw = Raw().setup()
        # the recorded request carries the recorded SessionID: unknown session or sequence error
        answer = raw.raw(data)
        assert answer is not None and answer[1]["ResponseCode"] in ("FAILED_SequenceError", "FAILED_UnknownSession")
        assert answer[0] == REQUEST_TO_RESPONSE[answer[0][:-3] + "Req"] and raw.ch.ended


def test_wrong_session_id_in_every_state(tmp_path):
    """A request with a foreign SessionID in any state after SessionSetup: FAILED_UnknownSession."""
    frames = _full_session_frames(tmp_path)
    for n in range(3, len(frames)):
        ch = ChargerSession(ChargerConfig(receipt_every=2), codecs=cp, now=0.0, security=fixed_ids())
        t = 0.0
        for i, data in enumerate(frames[:n + 1]):
            t += 0.01
            if i == 4 and not ch.ended:
                ch.send(AuthorizationResult(True), t)
            ptype = int.from_bytes(data[2:4], "big")
            if i == n and ptype != 0x8001:
                ns = M.NS_DC if ptype == 0x8004 else NS_ISO20_CM
                name, body, header = M.unwrap(cp(ns).decode(data[8:]))
                data = frame(cp(ns).encode(M.wrap(b"\xee" * 8, name, {"Header": {**header, "SessionID": b"\xee" * 8},
                                                                         **body})), ptype)
            events = ch.receive_data(data, t)
            ch.data_to_send()
        assert [e for e in events if isinstance(e, SessionEnded)][0].response_code == "FAILED_UnknownSession", n


# ------------------------------------------------------------ tables and registry
def test_tables_are_consistent():
    for kind in ("AC", "DC"):
        ev_t, ch_t = EV_TABLES[kind], CHARGER_TABLES[kind]
        for state, (res, nxt) in ev_t.items():
            assert res.endswith("Res") and all(n in ev_t or n is CoreState.ENDED for n in nxt)
            other = "DC_" if kind == "AC" else "AC_"
            assert not res.startswith(other)
        for state, reqs in ch_t.items():
            for req, nxt in reqs.items():
                assert req.endswith("Req") and all(n in ch_t for n in nxt)
    assert EVState.WAIT_CABLE_CHECK not in EV_TABLES["AC"] and ChargerState.WAIT_PRECHARGE not in CHARGER_TABLES["AC"]
    for spec, kind in ((SPEC_DC, "DC"), (SPEC_AC, "AC")):
        assert spec.family == "iso20" and spec.namespace.endswith(":" + kind) and spec.version == (1, 0)


def test_the_ev_offers_the_message_set_of_its_energy_mode():
    for mode, ns in ((DC, M.NS_DC), (AC, M.NS_AC)):
        ev = EVSession(EVConfig(energy_mode=mode, protocols=("iso20", "iso2")), codecs=cp)
        assert [s.namespace for s in ev.offered] == [ns, "urn:iso:15118:2:2013:MsgDef"]
    # over TCP without TLS -20 is never offered (TLS required)
    ev = EVSession(EVConfig(tls=False), codecs=cp)
    assert [s.id for s in ev.offered] == ["iso2", "din"]
    ch = ChargerSession(ChargerConfig(energy_modes=(AC,), protocols=("iso20", "iso2")), codecs=cp)
    assert [s.id for s in ch.supported] == ["iso20-ac", "iso2"]
    assert kinds([]) == []
