"""Hostile input to DIN SPEC 70121 sessions, the probes the ISO-2 charger survives: bad V2GTP headers,
mutated EXI at every step of a session (both directions), requests out of order in every charger
state, a wrong SessionID in every state, messages that are no request, wrongly shaped content.
Every probe gets DIN's FAILED response code in the response type the standard asks for (where one
request is expected) and a clean end: no exception escapes, no timer is left, nothing hangs."""
from __future__ import annotations

import os
import random

import pytest

from _din_fixtures import cp  # noqa: F401 (a fixture)
from _din_fixtures import din_body, din_charger, din_ev, din_frame, din_run, frames, needs_real, requests, sap_frame
from _pc_fixtures import fake_codecs, kinds
from plugcharge.core.codec import NS_DIN, body_of, frame
from plugcharge.core.events import ProtocolError, SessionEnded, StartSession
from plugcharge.core.fsm import CoreState
from plugcharge.din.states import CHARGER_TRANSITIONS, REQUEST_TO_RESPONSE, ChargerState

SEED = int(os.environ.get("PLUGCHARGE_FUZZ_SEED", "70121"))
#: every charger state, in the order a session passes them
STATES = [s for s in ChargerState]




def ended(events) -> SessionEnded:
    assert isinstance(events[-1], SessionEnded), kinds(events)
    return events[-1]


def charger_in(cp, state: ChargerState):
    """A DIN charger driven by a DIN EV into ``state`` (its answer there already drained)."""
    p = din_run(cp, ev={"charge_loops": 2}, until=lambda p: p.charger.state is state)
    assert p.charger.state is state and not p.charger.ended
    p.charger.data_to_send()
    return p.charger


def last_answer(cp, data: bytes) -> tuple[str, dict]:
    payloads = frames(data)
    assert payloads, "no answer"
    name, body, _ = body_of(cp(NS_DIN).decode(payloads[-1]))
    return name, body


# ------------------------------------------------------------ out of order, wrong SessionID
@pytest.mark.parametrize("state", STATES)
def test_every_request_out_of_order_gets_sequence_error(cp, state):
    templates = requests()
    for req in REQUEST_TO_RESPONSE:
        if req in CHARGER_TRANSITIONS[state]:
            continue
        ch = charger_in(cp, state)
        sid = ch.session_id or bytes(8)
        body = templates[req] if req in templates else _other(req)
        events = ch.receive_data(din_frame(cp, sid, req, body), 1e3)
        name, res = last_answer(cp, ch.data_to_send())
        assert (name, res["ResponseCode"]) == (REQUEST_TO_RESPONSE[req], "FAILED_SequenceError"), (state, req)
        end = ended(events)
        assert (end.reason, end.response_code) == ("failed", "FAILED_SequenceError")
        assert ch.ended and ch.state is CoreState.ENDED and ch.get_timer() is None
        assert ch.receive_data(din_frame(cp, sid, req, body), 1e3 + 1) == []  # over


def _other(req: str) -> dict:
    from plugcharge.din import messages as M

    return {"PaymentDetailsReq": {"ContractID": "X", "ContractSignatureCertChain": {"Certificate": b"\x01"}},
            "CertificateInstallationReq": {"Id": "id1", "OEMProvisioningCert": b"\x01",
                                           "ListOfRootCertificateIDs": {"RootCertificateID": ["CN=x"]},
                                           "DHParams": b"\x01"},
            "CertificateUpdateReq": {"Id": "id1", "ContractSignatureCertChain": {"Certificate": b"\x01"},
                                     "ContractID": "X", "ListOfRootCertificateIDs": {"RootCertificateID": ["CN=x"]}, "DHParams": b"\x01"},
            }.get(req, {"DC_EVStatus": M.dc_ev_status()})


@pytest.mark.parametrize("state", [s for s in STATES if s is not ChargerState.WAIT_SESSION_SETUP])
def test_a_wrong_session_id_gets_unknown_session_in_every_state(cp, state):
    templates = requests()
    for req in CHARGER_TRANSITIONS[state]:
        ch = charger_in(cp, state)
        events = ch.receive_data(din_frame(cp, b"\xee" * 8, req, templates[req]), 1e3)
        name, body = last_answer(cp, ch.data_to_send())
        assert (name, body["ResponseCode"]) == (REQUEST_TO_RESPONSE[req], "FAILED_UnknownSession"), (state, req)
        assert ended(events).response_code == "FAILED_UnknownSession" and ch.get_timer() is None


def test_before_session_setup_nothing_is_unknown_only_out_of_sequence(cp):
    ch = charger_in(cp, ChargerState.WAIT_SESSION_SETUP)
    events = ch.receive_data(din_frame(cp, b"\xee" * 8, "ServiceDiscoveryReq", requests()["ServiceDiscoveryReq"]), 1.0)
    name, body = last_answer(cp, ch.data_to_send())
    assert (name, body["ResponseCode"]) == ("ServiceDiscoveryRes", "FAILED_SequenceError")
    assert ended(events).response_code == "FAILED_SequenceError"


def test_messages_that_are_no_request(cp):
    """A response body sent to the charger, and an ISO-2 message on a DIN session: FAILED in the
    response of a request the state expects (the first where more than one may come), then the end."""
    ch = charger_in(cp, ChargerState.WAIT_PAYMENT_SELECTION)
    events = ch.receive_data(din_frame(cp, ch.session_id, "SessionSetupRes", {"ResponseCode": "OK",
                                                                             "EVSEID": b"\x01"}), 1.0)
    assert last_answer(cp, ch.data_to_send()) == ("ServicePaymentSelectionRes", {"ResponseCode": "FAILED"})
    assert ended(events).response_code == "FAILED"
    ch = charger_in(cp, ChargerState.WAIT_PRECHARGE)  # PreChargeReq or PowerDeliveryReq may come
    from plugcharge.core.codec import NS_ISO2, v2g_message

    iso2_stop = frame(cp(NS_ISO2).encode(v2g_message(ch.session_id, "SessionStopReq", {"ChargingSession": "Terminate"})))
    events = ch.receive_data(iso2_stop, 1.0)
    name, body = last_answer(cp, ch.data_to_send())
    assert (name, body["ResponseCode"]) in (("PreChargeRes", "FAILED"), ("SessionStopRes", "FAILED")), name
    assert ch.ended and ended(events).reason in ("protocol_error", "failed")
    assert any(isinstance(e, ProtocolError) and e.remote for e in events)


# ------------------------------------------------------------ V2GTP headers
@pytest.mark.parametrize("header", [
    bytes.fromhex("02fd8001000000010a"),        # protocol version 2
    bytes.fromhex("01fd8001000000010a"),        # inverse version wrong
    bytes.fromhex("01fe8001ffffffff"),          # a 4 GiB payload announced
    bytes.fromhex("01fe9000000000020000"),      # an SDP request on the TCP connection
])
@pytest.mark.parametrize("state", [ChargerState.WAIT_SESSION_SETUP, ChargerState.WAIT_AUTHORIZATION,
                                   ChargerState.CHARGING])
def test_bad_v2gtp_headers_end_the_charger_cleanly(cp, header, state):
    ch = charger_in(cp, state)
    events = ch.receive_data(header, 1.0)
    out = ch.data_to_send()
    # an SDP payload type on the TCP stream is refused at once like a broken header (not skipped)
    assert ch.ended and ch.get_timer() is None and any(isinstance(e, ProtocolError) for e in events)
    if header[2:4] == b"\x90\x00":
        assert "0x9000 (SDP request) is not one of DIN SPEC 70121" in ended(events).detail
    # the request the state expects (the first where several may come) is answered FAILED
    expected = [r for r in CHARGER_TRANSITIONS[state] if r != "SessionStopReq"]
    name, body = last_answer(cp, out)
    assert (name, body["ResponseCode"]) == (REQUEST_TO_RESPONSE[expected[0]], "FAILED")


def test_bad_v2gtp_header_ends_the_ev_cleanly(cp):
    p = din_run(cp, until=lambda p: p.ev.state.value == "WAIT_CABLE_CHECK")
    events = p.ev.receive_data(bytes.fromhex("01fe80") , p.now)  # a header in pieces waits for the rest
    assert events == [] and not p.ev.ended
    events = p.ev.receive_data(bytes.fromhex("01ffffffff"), p.now)  # 4 GiB announced
    assert ended(events).reason == "protocol_error" and p.ev.get_timer() is None
    assert p.ev.receive_data(bytes.fromhex("03fc800100000001ff"), p.now) == []


# ------------------------------------------------------------ mutated EXI at every step
def _mutate(rng: random.Random, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    if rng.random() < 0.2:
        data = data[: rng.randrange(1, len(data) + 1)]
    return bytes(data)


@needs_real
@pytest.mark.parametrize("direction", ["ev", "charger"])
def test_mutated_exi_at_every_step(direction):
    """Bit flips in the k-th EXI message of a session, for every k: the receiving side either reads a
    valid message (and goes on) or refuses it with a FAILED code; both sides always end."""
    import exi

    cp = exi.get_codec
    base = din_run(cp, ev={"charge_loops": 2})
    count = sum(1 for d, _ in (base.ev.trace if direction == "ev" else base.charger.trace) if d == "out")
    rng = random.Random(SEED + (direction == "ev"))
    outcomes = set()
    for k in range(1, count + 1):
        for _ in range(3):
            seen = [0]

            def tamper(src, data, k=k):
                if src != direction:
                    return data
                seen[0] += 1
                if seen[0] != k:
                    return data
                return data[:2] + data[2:4] + len(m := _mutate(rng, data[8:])).to_bytes(4, "big") + m
            p = din_run(cp, ev={"charge_loops": 2}, tamper=tamper)
            assert p.ev.ended and p.charger.ended, (k, kinds(p.ev_events), kinds(p.charger_events))
            assert p.ev.get_timer() is None and p.charger.get_timer() is None
            for events in (p.ev_events, p.charger_events):
                end = ended(events)
                assert end.reason in ("finished", "failed", "protocol_error", "timeout"), end
                if end.reason in ("failed", "protocol_error"):
                    assert end.response_code is None or end.response_code.startswith(("FAILED", "Failed")), end
            outcomes.add(ended(p.charger_events).reason)
    assert outcomes & {"failed", "protocol_error"}  # the probes did reach the refusals


def test_wrongly_shaped_content_never_escapes():
    """Fake codec only (it carries any shape): one leaf of one message replaced by a value of the
    wrong type, at every step, both directions."""
    from test_pc_sessions import _mangle

    rng = random.Random(SEED)
    outcomes = set()
    for direction in ("ev", "charger"):
        for k in range(1, 22):
            seen = [0]

            def tamper(src, data, k=k, direction=direction):
                if src != direction:
                    return data
                seen[0] += 1
                got = din_body(fake_codecs, data)
                if seen[0] != k or got is None:
                    return data
                msg = fake_codecs(NS_DIN).decode(data[8:])
                _mangle(msg, rng)
                return frame(fake_codecs(NS_DIN).encode(msg))
            p = din_run(fake_codecs, ev={"charge_loops": 2}, tamper=tamper)
            assert p.ev.ended and p.charger.ended and p.ev.get_timer() is None and p.charger.get_timer() is None
            outcomes.add(ended(p.ev_events).reason)
    assert "finished" in outcomes and outcomes & {"failed", "protocol_error"}


def test_fuzzed_bytes_never_escape(cp):
    rng = random.Random(SEED)
    blobs = [sap_frame(cp), din_frame(cp, bytes(8), "SessionSetupReq", {"EVCCID": bytes(6)})]
    for _ in range(int(os.environ.get("PLUGCHARGE_FUZZ_N", "30")) * 3):
        ch = din_charger(cp)
        ev = din_ev(cp)
        ev.send(StartSession(), 0.0)
        for blob in blobs:
            data = bytearray(blob)
            for _ in range(rng.randint(0, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            ch.receive_data(bytes(data), 0.0)
            ev.receive_data(bytes(data), 0.0)
        ch.handle_timer(1e4)
        ev.handle_timer(1e4)
        assert ch.ended and ev.ended


# ------------------------------------------------------------ the EV's side
def test_ev_refuses_out_of_order_foreign_and_unsolicited_responses(cp):
    for name, body, sid_ok, code in (
            ("CableCheckRes", {"ResponseCode": "OK", "DC_EVSEStatus": {"EVSEStatusCode": "EVSE_Ready",
                                                                      "NotificationMaxDelay": 0,
                                                                      "EVSENotification": "None"},
                               "EVSEProcessing": "Finished"}, True, "FAILED_SequenceError"),
            ("ServicePaymentSelectionRes", {"ResponseCode": "OK"}, False, "FAILED_UnknownSession")):
        p = din_run(cp, until=lambda p: p.ev.state.value == "WAIT_PAYMENT_SELECTION")
        p.charger.data_to_send()
        sid = p.ev.session_id if sid_ok else b"\x0e" * 8
        events = p.ev.receive_data(din_frame(cp, sid, name, body), p.now)
        assert [e.response_code for e in events if isinstance(e, ProtocolError)] == [code]
        assert ended(events).reason == "protocol_error" and p.ev.get_timer() is None
    # between two CurrentDemandReq nothing is outstanding: any response is unsolicited
    p = din_run(fake_codecs, ev={"loop_interval": 1.0},
                until=lambda p: p.ev.state.value == "WAIT_CURRENT_DEMAND" and p.ev.trace[-1][0] == "in")
    events = p.ev.receive_data(din_frame(fake_codecs, p.ev.session_id, "CurrentDemandRes", {}), p.now)
    assert ended(events).response_code == "FAILED_SequenceError"
