"""Every request the charger cannot decode gets its FAILED response before the session ends, in every
state of every protocol, also where several requests may come; and a V2GTP payload type V2GTP defines
for another use (ISO 15118-20's main streams on an ISO 15118-2 or DIN stream, SDP on TCP) is refused at
once instead of being held until V2G_SECC_Sequence_Timeout.

The sessions run in memory on the real EXI codec: whole sessions of ISO 15118-2 (DC Plug & Charge
with installation, AC with metering receipts, DC ExternalPayment), DIN SPEC 70121 and ISO 15118-20
(DC and AC, identification at the charger), where the k-th
request of the EV is spoilt (cut short: its leading bits, which select the body element, stay; decoding fails
further on; or bytes follow the document), for every k."""
from __future__ import annotations

import pytest

from _din_fixtures import din_charger, din_ev
from _pc_fixtures import Pump, TestBackend, kinds, make_pair, real_codec_status
from plugcharge import ChargerConfig, EVConfig
from plugcharge.core.codec import NS_DIN, NS_ISO2, body_of, frame, v2g_message
from plugcharge.core.events import ProtocolError, SessionEnded
from plugcharge.core.sniff import BodySniffer, common_prefix_bits
from plugcharge.core.v2gtp import PayloadType, encode_frame
from plugcharge.sessions import default_registry

REAL = real_codec_status()
pytestmark = pytest.mark.skipif(REAL is not None, reason=f"the real EXI codec is needed: {REAL}")


def _codecs():
    import exi

    return exi.get_codec


def _spoil(payload: bytes, how: str, cp, ns: str) -> bytes:
    """``payload`` made undecodable: ``"junk"`` appends bytes after the document (every bit of it kept),
    ``"cut"`` shortens it until it no longer decodes (a short message may lose its body's bits)."""
    if how == "junk":
        candidates = [payload + b"\xa5\x5a"]
    else:
        candidates = [payload[:keep] for keep in range(len(payload) - 1, 1, -1)]
    for data in candidates:
        try:
            cp(ns).decode(data)
        except ValueError:
            return data
    raise AssertionError("no undecodable variant")


def _flows(tmp_path):
    cp = _codecs()
    iso2 = ("iso2", NS_ISO2)
    runs = iter(range(10**6))
    fresh = lambda: tmp_path / f"w{next(runs)}"  # noqa: E731 - a new, empty wallet for every run
    yield "iso2 DC Plug & Charge with installation", iso2, lambda: make_pair(
        fresh(), codec_provider=cp, ev_config=EVConfig(charge_loops=2, protocols=("iso2",)))
    yield "iso2 AC with metering receipts", iso2, lambda: make_pair(
        fresh(), codec_provider=cp, ev_config=EVConfig(charge_loops=3, protocols=("iso2",),
                                                               energy_mode="AC_three_phase_core"),
        charger_config=ChargerConfig(energy_modes=("AC_three_phase_core",), receipt_every=1))
    yield "iso2 DC ExternalPayment over TCP", iso2, lambda: make_pair(
        fresh(), codec_provider=cp, ev_config=EVConfig(charge_loops=2, tls=False, protocols=("iso2",)),
        charger_config=ChargerConfig(tls=False))
    yield "DIN SPEC 70121 DC", ("din", NS_DIN), lambda: (
        din_ev(cp, charge_loops=2), din_charger(cp, energy_modes=("DC_extended",)), TestBackend(cp))
    for mode, pid in (("DC_extended", "iso20-dc"), ("AC_three_phase_core", "iso20-ac")):
        yield f"ISO 15118-20 {mode} EIM", (pid, None), lambda mode=mode: make_pair(
            fresh(), codec_provider=cp, protocols=("iso20",),
            ev_config=EVConfig(charge_loops=2, tls=True, energy_mode=mode))


@pytest.mark.parametrize("how", ["junk", "cut"])
def test_every_spoilt_request_of_every_state_is_answered_with_its_failed_response(tmp_path, how):
    cp = _codecs()
    reg = default_registry()
    multi_states: dict[str, set] = {}
    for label, (pid, ns), make in _flows(tmp_path):
        spec = reg.get(pid)
        assert spec is not None
        ev, ch, be = make()
        base = Pump(ev, ch, be)
        deliveries = {"n": 0}

        def count(src, data):
            deliveries["n"] += src == "ev"
            return data

        base.tamper = count
        base.start()
        base.run()
        assert base.ev_events[-1].reason == "finished", (label, kinds(base.ev_events))
        for k in range(2, deliveries["n"] + 1):  # the first is supportedAppProtocolReq (its own tests)
            ev, ch, be = make()
            p = Pump(ev, ch, be)
            seen = {"n": 0}

            def tamper(src, data, k=k, p=p, seen=seen):
                if src != "ev":
                    return data
                seen["n"] += 1
                if seen["n"] != k:
                    return data
                payload = data[8:]
                name, _, header = spec.unwrap(cp(spec.namespace_for(int.from_bytes(data[2:4], "big"))).decode(payload))
                seen.update(name=name, state=p.charger.state, signed="Signature" in header,
                            table=list(spec.charger_table.get(p.charger.state, {})))
                ptype = int.from_bytes(data[2:4], "big")
                return frame(_spoil(payload, how, cp, spec.namespace_for(ptype)), ptype)

            p.tamper = tamper
            p.start()
            p.run()
            where = (label, k, seen.get("name"), seen.get("state"))
            assert "name" in seen, where
            end = p.charger_events[-1]
            assert isinstance(end, SessionEnded) and end.response_code == "FAILED", (where, kinds(p.charger_events))
            assert any(isinstance(e, ProtocolError) and e.remote for e in p.charger_events), where
            answered = [n for d, n in p.charger.trace if d == "out"][-1]
            if not seen["signed"] and how == "junk":  # the header the probes model: the request's response
                assert answered == spec.request_to_response[seen["name"]], where
            else:  # a signed header or a body cut short: the request's, or one the state expects
                assert answered in {spec.request_to_response[r] for r in (*seen["table"], seen["name"])}, where
            assert ch.ended and ch.get_timer() is None and p.ev.ended, where
            requests = [r for r in seen["table"] if r != spec.stop_request]
            if len(requests) != 1:
                multi_states.setdefault(pid, set()).add(seen["state"].name)
    # the states where several requests may come (the silent closes of before) were all probed
    assert {"WAIT_SERVICE_SELECTION", "WAIT_CONTRACT", "WAIT_PRECHARGE", "CHARGING_AC",
            "CHARGING_DC"} <= multi_states["iso2"], multi_states
    assert {"WAIT_PRECHARGE", "CHARGING"} <= multi_states["din"], multi_states
    assert {"WAIT_AUTHORIZATION", "WAIT_SERVICE_SELECTION", "WAIT_PRECHARGE", "CHARGING"} <= multi_states["iso20-dc"]
    assert {"WAIT_AUTHORIZATION", "WAIT_SERVICE_SELECTION", "CHARGING"} <= multi_states["iso20-ac"], multi_states


@pytest.mark.parametrize("pid, ns", [("iso2", NS_ISO2), ("din", NS_DIN)])
def test_the_sniffer_tells_every_body_apart(pid, ns):
    cp = _codecs()
    spec = default_registry().get(pid)
    names = [*spec.request_to_response, *spec.request_to_response.values()]
    sid = bytes.fromhex("0102030405060708")
    sniffer = BodySniffer(cp(ns).encode, spec.wrap, sid, names)
    assert set(sniffer.names) == set(names)
    for name in spec.request_to_response:  # a real request of each kind, cut short, is recognised
        probe = cp(ns).encode(spec.wrap(sid, name, {"xsi:nil": True, **({"Id": "i"} if "Certificate" in name else {})}))
        assert sniffer.identify(probe) == name
        assert sniffer.identify(probe[:1]) is None  # too short to tell
    # another SessionID in the header is not modelled: nothing is claimed
    other = cp(ns).encode(spec.wrap(b"\xee" * 8, "SessionStopReq", {"xsi:nil": True}))
    assert sniffer.identify(other) is None
    assert common_prefix_bits(b"\x80\x00", b"\x80\x01") == 15 and common_prefix_bits(b"\x80", b"\x80\x01") == 8


@pytest.mark.parametrize("ptype", [PayloadType.MAINSTREAM, PayloadType.DC_MAINSTREAM,
                                   PayloadType.METERING_CONFIRMATION, PayloadType.SDP_REQUEST])
@pytest.mark.parametrize("pid", ["iso2", "din"])
def test_a_payload_type_of_another_protocol_is_refused_at_once(tmp_path, pid, ptype):
    """After the handshake, and before it: FAILED in the response the state expects, the session ends
    in the same call (no wait for V2G_SECC_Sequence_Timeout)."""
    cp = _codecs()
    if pid == "iso2":
        ev, ch, _ = make_pair(tmp_path, codec_provider=cp, ev_config=EVConfig(protocols=("iso2",), tls=False),
                              charger_config=ChargerConfig(tls=False))
    else:
        ev, ch = din_ev(cp), din_charger(cp, energy_modes=("DC_extended",))
    # before the handshake: the answer is the handshake's refusal
    fresh = ch
    events = fresh.receive_data(encode_frame(ptype, b"\x80\x00"), 1.0)
    assert fresh.ended and isinstance(events[-1], SessionEnded), kinds(events)
    assert f"0x{int(ptype):04X}" in events[-1].detail and "SupportedAppProtocol" in events[-1].detail
    assert body_of_app(cp, fresh.data_to_send()) == "Failed_NoNegotiation"
    # after the handshake
    if pid == "iso2":
        ev, ch, _ = make_pair(tmp_path / "b", codec_provider=cp, ev_config=EVConfig(protocols=("iso2",), tls=False),
                              charger_config=ChargerConfig(tls=False))
    else:
        ev, ch = din_ev(cp), din_charger(cp, energy_modes=("DC_extended",))
    from plugcharge.core.events import StartSession

    ch.receive_data(ev.send(StartSession(), 0.0).data, 0.0)
    ev.receive_data(ch.data_to_send(), 0.0)
    ev.data_to_send()  # SessionSetupReq, not delivered
    ns = NS_ISO2 if pid == "iso2" else NS_DIN
    valid = frame(cp(ns).encode(v2g_message(bytes(8), "SessionStopReq", {"ChargingSession": "Terminate"})
                                if pid == "iso2" else v2g_message(bytes(8), "SessionStopReq", {})))
    events = ch.receive_data(encode_frame(ptype, b"\x80\x00\x01") + valid, 2.0)
    assert ch.ended and ch.get_timer() is None, kinds(events)
    name, body, _ = body_of(cp(ns).decode(ch.data_to_send()[8:]))
    assert (name, body["ResponseCode"]) == ("SessionSetupRes", "FAILED")
    assert f"payload type 0x{int(ptype):04X}" in events[-1].detail


def body_of_app(cp, data: bytes) -> str:
    from plugcharge.core.codec import NS_APP

    return str(cp(NS_APP).decode(data[8:])["supportedAppProtocolRes"]["ResponseCode"])


def test_an_unknown_payload_type_is_still_skipped(tmp_path):
    """A type V2GTP does not define (manufacturer-specific) is discarded as the standard says: the
    session goes on."""
    cp = _codecs()
    ev, ch, be = make_pair(tmp_path, codec_provider=cp, ev_config=EVConfig(protocols=("iso2",), charge_loops=1))
    p = Pump(ev, ch, be)
    inserted = {"n": 0}

    def tamper(src, data):
        if src == "ev" and inserted["n"] < 3:
            inserted["n"] += 1
            return encode_frame(0xA001, b"vendor data") + data
        return data

    p.tamper = tamper
    p.start()
    p.run()
    assert inserted["n"] == 3 and p.charger_events[-1].reason == p.ev_events[-1].reason == "finished"
