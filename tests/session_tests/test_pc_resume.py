"""Pause and resume (ISO 15118-2), EV and charger in memory.

A resumed session sends the paused SessionID in SessionSetupReq; the charger joins it with
OK_OldSessionJoined, offers only the payment option it had and the same SAScheduleTuple, shortened
by the time that passed [V2G2-741]; the rest of the sequence runs again. With Contract our EV
sends PaymentDetailsReq and an AuthorizationReq signed over the new GenChallenge (what the
iso15118 package requires); our charger also takes an AuthorizationReq straight after
PaymentServiceSelection from an EV that skips PaymentDetails (the paused authorisation stands)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from _pc_fixtures import NOW, Pump, first, make_pair, make_wallet, real_codec_status, \
    session_pki, trust_store
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, SessionStore
from plugcharge.core.codec import NS_APP, NS_ISO2, body_of, frame, v2g_message
from plugcharge.core.handshake import sap_req
from plugcharge.core.v2gtp import FrameReader
from plugcharge.iso2 import messages as M
from plugcharge.pnc.certs import cert_chain
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, ChargingStarted, PauseCharging, PaymentSelected, SessionEnded,
    SessionPaused, SessionStarted,
)
from plugcharge.pnc.signatures import sign_message

REAL = real_codec_status()


def _payloads(data: bytes) -> list[bytes]:
    """The payloads of the V2GTP frames in ``data``."""
    return [f.payload for f in FrameReader().feed(data)]


class Clock:
    """A wall clock the test moves forward."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


def _ended(events) -> SessionEnded:
    return [e for e in events if isinstance(e, SessionEnded)][-1]


def _bodies(cp, data: bytes, ns: str = NS_ISO2) -> list[tuple[str, dict, dict]]:
    """Every V2G_Message in a stream of frames, as (body name, body, header)."""
    out = []
    for payload in _payloads(data):
        out.append(body_of(cp(ns).decode(payload)))
    return out


class Recorder(Pump):
    """A pump that also keeps every message the charger sent, decoded."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.charger_messages: list[tuple[str, dict, dict]] = []

    def _deliver(self, src, data):
        if src == "charger" and data:
            try:
                self.charger_messages.extend(_bodies(self.ev._codecs, data))
            except Exception:  # the SupportedAppProtocol answer is not a V2G_Message
                pass
        super()._deliver(src, data)


def _pause_first(tmp_path, cp, *, payment_options=("Contract", "ExternalPayment"), mode="DC_extended",
                 wallet_contract=True, clock=None, backend=None):
    clock = clock or Clock()
    wallet = make_wallet(tmp_path / "w", contract=wallet_contract, enabled=wallet_contract)
    store = SessionStore()
    sec = ChargerSecurity(trust_store=trust_store(), wall_clock=clock, sales_tariff_key=session_pki().key("mo-sub2"))
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, wallet=wallet, store=store,
                           ev_config=EVConfig(loop_interval=1.0, energy_mode=mode),
                           charger_config=ChargerConfig(payment_options=payment_options, sales_tariff=True),
                           charger_security=sec, backend=backend)
    p = Recorder(ev, ch, be)
    p.start()
    p.run(until=lambda: any(isinstance(e, ChargingStarted) for e in p.ev_events))
    out = ev.send(PauseCharging(), p.now)
    p._deliver("ev", out.data)
    p.run()
    return p, wallet, store, sec, be


def _resume(tmp_path, cp, paused: SessionPaused, wallet, store, sec, backend, *, mode="DC_extended"):
    ev, ch, _ = make_pair(tmp_path / "resume", codec_provider=cp, wallet=wallet, store=store,
                          ev_config=EVConfig(charge_loops=2, energy_mode=mode, resume_session_id=paused.session_id,
                                             resume_payment=paused.payment, resume_schedule_id=paused.sa_schedule_id),
                          charger_config=ChargerConfig(sales_tariff=True), charger_security=sec)
    p = Recorder(ev, ch, backend)
    p.start()
    return p.run()


@pytest.mark.parametrize("mode", ["DC_extended", "AC_three_phase_core"])
def test_pause_and_resume_with_contract_repeats_payment_details_and_a_signed_authorization(tmp_path, cp, mode):
    clock = Clock()
    p, wallet, store, sec, be = _pause_first(tmp_path, cp, mode=mode, clock=clock)
    paused = first(p.ev_events, SessionPaused)
    assert (paused.session_id, paused.payment, paused.sa_schedule_id) == (p.charger.session_id, "Contract", 1)
    assert first(p.charger_events, SessionPaused).session_id == paused.session_id
    assert _ended(p.ev_events).reason == "paused" and _ended(p.charger_events).reason == "paused"
    assert paused.session_id in store
    first_challenge = p.charger.handler._challenge
    authorisations = sum(isinstance(e, AuthorizationNeeded) for e in p.charger_events)
    clock.now += timedelta(minutes=30)

    p2 = _resume(tmp_path, cp, paused, wallet, store, sec, be, mode=mode)
    started = first(p2.ev_events, SessionStarted)
    assert started.resumed and started.session_id == paused.session_id
    assert first(p2.charger_events, SessionStarted).resumed
    setup = next(b for n, b, _ in p2.charger_messages if n == "SessionSetupRes")
    assert setup["ResponseCode"] == "OK_OldSessionJoined"
    # [V2G2-741]: only the paused payment option is offered, and chosen again
    discovery = next(b for n, b, _ in p2.charger_messages if n == "ServiceDiscoveryRes")
    assert discovery["PaymentOptionList"]["PaymentOption"] == ["Contract"]
    assert first(p2.ev_events, PaymentSelected).option == "Contract"
    sent = [n for d, n in p2.ev.trace if d == "out"]
    # the whole sequence again, no certificate service: PaymentDetails, a signed AuthorizationReq
    assert "PaymentDetailsReq" in sent and "CertificateInstallationReq" not in sent
    assert p2.charger.handler._challenge_ok and p2.charger.handler._challenge != first_challenge
    # the same contract: the paused authorisation stands, the backend is not asked again
    assert sum(isinstance(e, AuthorizationNeeded) for e in p2.charger_events) == 0 and authorisations == 1
    assert first(p2.charger_events, AuthorizationAccepted).emaid == first(p.charger_events, AuthorizationAccepted).emaid
    # [V2G2-741]: the same SAScheduleTuple, shortened by the 30 minutes that passed
    cpd = next(b for n, b, _ in p2.charger_messages if n == "ChargeParameterDiscoveryRes")
    [tup] = cpd["SAScheduleList"]["SAScheduleTuple"]
    assert tup["SAScheduleTupleID"] == 1
    assert tup["PMaxSchedule"]["PMaxScheduleEntry"][0]["RelativeTimeInterval"]["duration"] == 86400 - 1800
    assert first(p2.ev_events, ChargingStarted).sa_schedule_id == 1
    assert _ended(p2.ev_events).reason == "finished" and _ended(p2.charger_events).reason == "finished"
    assert paused.session_id not in store  # a session is resumed once


def test_pause_and_resume_with_external_payment(tmp_path, cp):
    p, wallet, store, sec, be = _pause_first(tmp_path, cp, wallet_contract=False)
    paused = first(p.ev_events, SessionPaused)
    assert paused.payment == "ExternalPayment"
    p2 = _resume(tmp_path, cp, paused, wallet, store, sec, be)
    assert first(p2.ev_events, SessionStarted).resumed
    discovery = next(b for n, b, _ in p2.charger_messages if n == "ServiceDiscoveryRes")
    assert discovery["PaymentOptionList"]["PaymentOption"] == ["ExternalPayment"]
    sent = [n for d, n in p2.ev.trace if d == "out"]
    assert "PaymentDetailsReq" not in sent and "AuthorizationReq" in sent
    assert not [e for e in p2.charger_events if isinstance(e, AuthorizationNeeded)]
    assert _ended(p2.ev_events).reason == "finished"


def test_resume_with_another_contract_is_authorised_afresh(tmp_path, cp):
    p, wallet, store, sec, be = _pause_first(tmp_path, cp)
    paused = first(p.ev_events, SessionPaused)
    # between pause and resume the wallet got a newer contract (the newest one wins)
    issued = session_pki().issue_contract(session_pki().emaid, now=NOW - timedelta(hours=1))
    wallet.install(issued.der, (session_pki().cert("mo-sub2"), session_pki().cert("mo-sub1")), issued.key)
    p2 = _resume(tmp_path, cp, paused, wallet, store, sec, be)
    need = first(p2.charger_events, AuthorizationNeeded)
    assert need.chain[0] == issued.der
    assert _ended(p2.ev_events).reason == "finished"


def test_resume_of_an_unknown_session_starts_a_new_one(tmp_path, cp):
    wallet = make_wallet(tmp_path / "w", contract=True)
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, wallet=wallet,
                           ev_config=EVConfig(charge_loops=1, resume_session_id=bytes.fromhex("0102030405060708"),
                                              resume_payment="Contract"))
    p = Recorder(ev, ch, be)
    p.start()
    p.run()
    started = first(p.ev_events, SessionStarted)
    assert not started.resumed and started.session_id != bytes.fromhex("0102030405060708")
    assert next(b for n, b, _ in p.charger_messages if n == "SessionSetupRes")["ResponseCode"] == \
        "OK_NewSessionEstablished"
    assert first(p.charger_events, AuthorizationNeeded).payment == "Contract"  # a new authorisation
    assert _ended(p.ev_events).reason == "finished"


# ------------------------------------------------------------ our charger, an EV that skips PaymentDetails
def _exchange(cp, ch: ChargerSession, sid: bytes, name: str, body: dict, now: float, *, sign=None):
    msg = v2g_message(sid, name, body)
    if sign is not None:
        sign_message(msg, sign, codecs=cp)
    events = ch.receive_data(frame(cp(NS_ISO2).encode(msg)), now)
    [(res_name, res, _)] = _bodies(cp, ch.data_to_send())
    assert res_name == name[:-3] + "Res"
    return res, events


def _paused_session(cp, store: SessionStore) -> bytes:
    """A Contract session paused in the store, as our charger keeps it."""
    from plugcharge.core.config import PausedSession

    sid = bytes.fromhex("1122334455667788")
    store.pause(sid, PausedSession("Contract", session_pki().emaid, session_pki().cert("contract-leaf"),
                                   "DC_extended", "iso2"))
    return sid


def _resumed_charger(cp, store: SessionStore) -> tuple[ChargerSession, bytes]:
    ch = ChargerSession(ChargerConfig(), security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW),
                        store=store, codecs=cp, now=0.0)
    ch.receive_data(frame(cp(NS_APP).encode(sap_req(((NS_ISO2, 2, 0, 1, 1),)))), 0.0)
    ch.data_to_send()
    sid = _paused_session(cp, store)
    res, events = _exchange(cp, ch, sid, "SessionSetupReq", {"EVCCID": bytes(6)}, 0.1)
    assert res["ResponseCode"] == "OK_OldSessionJoined" and first(events, SessionStarted).resumed
    res, _ = _exchange(cp, ch, sid, "ServiceDiscoveryReq", {}, 0.2)
    assert res["PaymentOptionList"]["PaymentOption"] == ["Contract"]
    res, _ = _exchange(cp, ch, sid, "PaymentServiceSelectionReq",
                       M.payment_service_selection_req("Contract", [(1, None)]), 0.3)
    assert res["ResponseCode"] == "OK"
    return ch, sid


def test_our_charger_accepts_a_resumed_contract_session_that_skips_payment_details(cp):
    ch, sid = _resumed_charger(cp, SessionStore())
    res, events = _exchange(cp, ch, sid, "AuthorizationReq", {}, 0.4)
    assert (res["ResponseCode"], res["EVSEProcessing"]) == ("OK", "Finished")
    assert first(events, AuthorizationAccepted).payment == "Contract"
    assert not [e for e in events if isinstance(e, AuthorizationNeeded)]
    res, _ = _exchange(cp, ch, sid, "ChargeParameterDiscoveryReq", {
        "RequestedEnergyTransferMode": "DC_extended",
        "DC_EVChargeParameter": {"DC_EVStatus": M.dc_ev_status(), "EVMaximumCurrentLimit": M.physical(100, "A"),
                                 "EVMaximumVoltageLimit": M.physical(400, "V")}}, 0.5)
    assert res["ResponseCode"] == "OK"


def test_our_charger_refuses_a_resumed_session_with_another_payment_option(cp):
    store = SessionStore()
    ch = ChargerSession(ChargerConfig(), security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW),
                        store=store, codecs=cp, now=0.0)
    ch.receive_data(frame(cp(NS_APP).encode(sap_req(((NS_ISO2, 2, 0, 1, 1),)))), 0.0)
    ch.data_to_send()
    sid = _paused_session(cp, store)
    _exchange(cp, ch, sid, "SessionSetupReq", {"EVCCID": bytes(6)}, 0.1)
    _exchange(cp, ch, sid, "ServiceDiscoveryReq", {}, 0.2)
    res, events = _exchange(cp, ch, sid, "PaymentServiceSelectionReq",
                            M.payment_service_selection_req("ExternalPayment", [(1, None)]), 0.3)
    assert res["ResponseCode"] == "FAILED_PaymentSelectionInvalid"  # [V2G2-465], [V2G2-741]
    assert _ended(events).response_code == "FAILED_PaymentSelectionInvalid"


def test_a_resumed_contract_session_that_sends_payment_details_must_sign_its_authorization(cp):
    ch, sid = _resumed_charger(cp, SessionStore())
    p = session_pki()
    res, _ = _exchange(cp, ch, sid, "PaymentDetailsReq", {
        "eMAID": p.emaid, "ContractSignatureCertChain": cert_chain(p.cert("contract-leaf"),
                                                                       (p.cert("mo-sub2"), p.cert("mo-sub1")))}, 0.4)
    assert res["ResponseCode"] == "OK"
    # the short form is no longer enough once a GenChallenge was issued
    res, events = _exchange(cp, ch, sid, "AuthorizationReq", {}, 0.5)
    assert res["ResponseCode"] == "FAILED_ChallengeInvalid"  # [V2G2-475]
    assert _ended(events).response_code == "FAILED_ChallengeInvalid"
