"""DIN SPEC 70121 against what real vehicles and a real charger sent (captures of ten cars charging
at an EVerest charger, ``data/din_real_vehicles.json``; provenance inside the file):

* each car's own requests, in the order it sent them, to our charger: our charger agrees on DIN from
  the car's own SupportedAppProtocolReq and answers every request with an OK code;
* the EVerest charger's own responses to our EV: our EV completes its session on them.

The records of one capture keep the order per direction; identical frames were kept once (so a
looping request may appear once)."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from _din_fixtures import din_charger, din_ev, frames
from _pc_fixtures import kinds, real_codec_status
from plugcharge.core.codec import NS_APP, NS_DIN, body_of, frame, from_physical
from plugcharge.core.events import AuthorizationResult, ProtocolAgreed, SessionEnded, StartSession

REAL = real_codec_status()
pytestmark = pytest.mark.skipif(REAL is not None, reason=f"needs the real EXI codec: {REAL}")
DATA = json.loads((Path(__file__).with_name("data") / "din_real_vehicles.json").read_text())


def _captures() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for rec in DATA["records"]:
        out[rec["source"].split(":", 1)[1]].append(rec)
    return dict(out)


CAPTURES = _captures()


def _car(source: str) -> str:
    return "/".join(source.split("/")[:2])


@pytest.mark.parametrize("source", sorted(CAPTURES), ids=_car)
def test_our_charger_answers_a_real_cars_requests(source):
    import exi

    records = CAPTURES[source]
    sap = [r for r in records if r["protocol"] == "app_handshake"]
    reqs = [r for r in records if r["protocol"] == "din70121" and r["direction"] == "EV->charger"]
    assert reqs and reqs[0]["message"] == "SessionSetupReq"
    din = exi.get_codec(NS_DIN)
    first_cpd = next(din.decode(bytes.fromhex(r["exi_hex"])) for r in reqs if r["message"] == "ChargeParameterDiscoveryReq")
    mode = first_cpd["V2G_Message"]["Body"]["ChargeParameterDiscoveryReq"]["EVRequestedEnergyTransferType"]
    ch = din_charger(exi.get_codec, protocols=("iso2", "din"), energy_modes=(mode,), cable_check_polls=0)
    ch.send(AuthorizationResult(True), 0.0)  # the driver identified before the car asked
    if sap:  # the car's own offer: our charger (ISO-2 and DIN) takes what the car prefers
        events = ch.receive_data(frame(bytes.fromhex(sap[0]["exi_hex"])), 0.0)
        offered = exi.get_codec(NS_APP).decode(bytes.fromhex(sap[0]["exi_hex"]))["supportedAppProtocolReq"]
        agreed = [e for e in events if isinstance(e, ProtocolAgreed)]
        assert agreed, (offered, kinds(events))
        if agreed[0].protocol != "din":
            pytest.skip(f"the car prefers {agreed[0].name} here (offer {offered})")
    else:
        ch.receive_data(frame(exi.get_codec(NS_APP).encode(
            {"supportedAppProtocolReq": {"AppProtocol": [{"ProtocolNamespace": NS_DIN, "VersionNumberMajor": 2,
                                                          "VersionNumberMinor": 0, "SchemaID": 1, "Priority": 1}]}})), 0.0)
    ch.data_to_send()
    t = 0.0
    for rec in reqs:
        msg = din.decode(bytes.fromhex(rec["exi_hex"]))
        if rec["message"] != "SessionSetupReq":  # the car's SessionID was the one its charger gave it
            msg["V2G_Message"]["Header"]["SessionID"] = ch.session_id
        t += 0.05
        events = ch.receive_data(frame(din.encode(msg)), t)
        out = frames(ch.data_to_send())
        assert len(out) == 1, (rec["message"], kinds(events))
        name, body, header = body_of(din.decode(out[0]))
        assert name == rec["message"][:-3] + "Res" and body["ResponseCode"].startswith("OK"), (rec["message"], body)
        assert header["SessionID"] == ch.session_id
    names = [r["message"] for r in reqs]
    if names[-1] == "SessionStopReq":
        assert ch.ended and isinstance(events[-1], SessionEnded) and events[-1].reason == "finished"
    else:
        assert not ch.ended


def _responses(records: list[dict]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for r in records:
        if r["protocol"] == "din70121" and r["direction"] == "charger->EV":
            out[r["message"]].append(bytes.fromhex(r["exi_hex"]))
    return out


COMPLETE = sorted(s for s, recs in CAPTURES.items() if {"SessionSetupRes", "PowerDeliveryRes", "CurrentDemandRes",
                                                         "SessionStopRes"} <= set(_responses(recs)))


@pytest.mark.parametrize("source", COMPLETE, ids=_car)
def test_our_ev_completes_on_a_real_chargers_responses(source):
    """Each request of our EV is answered with the next response of that type the EVerest charger sent
    in the capture (its last one again when the capture has no more), bytes unchanged."""
    import exi

    din = exi.get_codec(NS_DIN)
    script = _responses(CAPTURES[source])
    decoded = {n: [din.decode(b)["V2G_Message"]["Body"][n] for b in bs] for n, bs in script.items()}
    service = decoded["ServiceDiscoveryRes"][0]["ChargeService"]
    target = from_physical(decoded["PreChargeRes"][-1]["EVSEPresentVoltage"])  # where its PreCharge ended
    ev = din_ev(exi.get_codec, energy_mode=service["EnergyTransferType"], dc_target_voltage=target,
                poll_interval=0.05, charge_loops=3, welding_detection="WeldingDetectionRes" in script)
    used: dict[str, int] = defaultdict(int)
    data, now, events = ev.send(StartSession(), 0.0).data, 0.0, []
    ok = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}
    for _ in range(200):
        for payload in frames(data):
            if ev.protocol is None:
                events += ev.receive_data(frame(exi.get_codec(NS_APP).encode(ok)), now)
                continue
            name = body_of(din.decode(payload))[0][:-3] + "Res"
            pool = script[name]
            answer = pool[min(used[name], len(pool) - 1)]
            used[name] += 1
            now += 0.05
            events += ev.receive_data(frame(answer), now)
        data = ev.data_to_send()
        if ev.ended:
            break
        if not data:
            now = max(now, ev.get_timer() or now)
            events += ev.handle_timer(now)
            data = ev.data_to_send()
    assert isinstance(events[-1], SessionEnded), kinds(events)
    assert events[-1].reason == "finished", events[-1]
    assert kinds(events).count("MeterValues") == 3
    assert ev.session_id == din.decode(script["SessionSetupRes"][0])["V2G_Message"]["Header"]["SessionID"]
