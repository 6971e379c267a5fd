"""The protocol-neutral core: SupportedAppProtocol negotiation (priorities, refusals, TLS, versions)
between ISO 15118-2 and a second protocol defined here ("toy"), and the one dispatch path the core
runs for any agreed protocol (SessionID and sequence checks, fault codes from the protocol's map)."""
from __future__ import annotations

import enum
from typing import Any, Optional

import pytest

from _pc_fixtures import NOW, Pump, fake_codecs, first, kinds, make_pair, real_codec_status, trust_store
from plugcharge import (
    ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSession, NegotiationFailed, ProtocolAgreed,
    ProtocolError, ProtocolRegistry, ProtocolSpec, SessionEnded, StartSession,
)
from plugcharge import iso2
from plugcharge.core.codec import NS_APP, NS_ISO2, body_of, frame, session_id_of, v2g_message
from plugcharge.core.fsm import CoreState
from plugcharge.core.handshake import negotiate, offer, sap_req
from plugcharge.core.protocol import DEFAULT_PROTOCOLS, Fault, TLSPolicy
from plugcharge.core.session import ChargerHandler, EVHandler

REAL = real_codec_status()
NS_TOY = "urn:plugcharge:test:toy"


# ------------------------------------------------------------ a second protocol, for the tests only
class ToyEV(str, enum.Enum):
    WAIT_HELLO = "WAIT_HELLO"
    WAIT_BYE = "WAIT_BYE"


class ToyCharger(str, enum.Enum):
    WAIT_HELLO = "WAIT_HELLO"
    WAIT_BYE = "WAIT_BYE"


ENDED = CoreState.ENDED
EV_TABLE = {CoreState.WAIT_SAP: ("supportedAppProtocolRes", frozenset({ToyEV.WAIT_HELLO})),
            ToyEV.WAIT_HELLO: ("HelloRes", frozenset({ToyEV.WAIT_BYE})),
            ToyEV.WAIT_BYE: ("ByeRes", frozenset({ENDED}))}
CHARGER_TABLE = {CoreState.WAIT_SAP: {"supportedAppProtocolReq": frozenset({ToyCharger.WAIT_HELLO})},
                 ToyCharger.WAIT_HELLO: {"HelloReq": frozenset({ToyCharger.WAIT_BYE})},
                 ToyCharger.WAIT_BYE: {"ByeReq": frozenset({ENDED})},
                 ENDED: {}}


class ToyEVHandler(EVHandler):
    def _send(self, name: str, new: Any, now: float) -> None:
        self._queue(v2g_message(self.session_id, name, {}), name)
        self.state = new
        self._set_timer("msg", now + 1.0)

    def start(self, now: float) -> None:
        self._send("HelloReq", ToyEV.WAIT_HELLO, now)

    def _r_HelloRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self.session_id = session_id_of(header) or b""
        self._send("ByeReq", ToyEV.WAIT_BYE, now)

    def _r_ByeRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self.state = ENDED
        self._end("finished")


class ToyChargerHandler(ChargerHandler):
    def _respond(self, name: str, now: float) -> None:
        self.session.respond(v2g_message(self.session_id, name, {"ResponseCode": "OK"}), name, now)

    def _h_HelloReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Any:
        self.session_id = b"\x07" * 8
        self._respond("HelloRes", now)
        return ToyCharger.WAIT_BYE

    def _h_ByeReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Any:
        self._respond("ByeRes", now)
        self._end("finished")
        return ENDED


def toy(tls: TLSPolicy = TLSPolicy.OPTIONAL, version: tuple[int, int] = (1, 0), *, ev: bool = True,
        charger: bool = True) -> ProtocolSpec:
    return ProtocolSpec(
        id="toy", name="Toy protocol", namespace=NS_TOY, version=version, tls=tls, ev_table=EV_TABLE,
        charger_table=CHARGER_TABLE, request_to_response={"HelloReq": "HelloRes", "ByeReq": "ByeRes"},
        session_setup=("HelloReq", "HelloRes"), stop_request="ByeReq", ev_stop_state=ToyEV.WAIT_BYE,
        charger_first_state=ToyCharger.WAIT_HELLO, unwrap=body_of, wrap=v2g_message, session_id_of=session_id_of,
        ev_handler=ToyEVHandler if ev else None, charger_handler=ToyChargerHandler if charger else None,
        fault_codes={Fault.SEQUENCE: "FAILED_ToySequence", Fault.UNKNOWN_SESSION: "FAILED_ToySession"})


def registry(*specs: ProtocolSpec) -> ProtocolRegistry:
    return ProtocolRegistry(specs or (iso2.SPEC, toy()))


def ev_session(protocols: tuple[str, ...], reg: Optional[ProtocolRegistry] = None, cp: Any = fake_codecs,
               **kw: Any) -> EVSession:
    return EVSession(EVConfig(protocols=protocols, **kw), codecs=cp, protocols=reg or registry())


def charger_session(protocols: tuple[str, ...], reg: Optional[ProtocolRegistry] = None, cp: Any = fake_codecs,
                    **kw: Any) -> ChargerSession:
    return ChargerSession(ChargerConfig(protocols=protocols, **kw), codecs=cp, now=0.0, protocols=reg or registry(),
                          security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW))


def handshake(ev: EVSession, ch: ChargerSession) -> tuple[list, list]:
    """StartSession, the request to the charger, its answer to the EV: (EV events, charger events)."""
    res = ev.send(StartSession(), 0.0)
    ev_events = list(res.events)
    ch_events = ch.receive_data(res.data, 0.0)
    ev_events += ev.receive_data(ch.data_to_send(), 0.0)
    return ev_events, ch_events


def offered(ev: EVSession, cp: Any = fake_codecs) -> list[tuple[str, int, int]]:
    """(namespace, SchemaID, Priority) of the EV's supportedAppProtocolReq."""
    data = ev.send(StartSession(), 0.0).data
    entries = cp(NS_APP).decode(data[8:])["supportedAppProtocolReq"]["AppProtocol"]
    return [(e["ProtocolNamespace"], e["SchemaID"], e["Priority"]) for e in entries]


# ------------------------------------------------------------ the EV's offer
@pytest.mark.parametrize("cp", [fake_codecs, pytest.param("real", marks=pytest.mark.skipif(REAL is not None,
                                                                                            reason=str(REAL)))])
def test_default_offer_is_the_implemented_protocols_only_and_unchanged_on_the_wire(cp):
    import exi

    from plugcharge.sessions import default_registry

    cp = exi.get_codec if cp == "real" else cp
    assert DEFAULT_PROTOCOLS == ("iso20", "iso2", "din")
    ev = EVSession(EVConfig(), codecs=cp)
    # the EV offers what is implemented, in the default order (-20, -2, DIN), SchemaID and Priority
    # 1, 2, ...; a known protocol not implemented yet is left out
    implemented = default_registry().select(DEFAULT_PROTOCOLS, "ev")
    assert [s.id for s in ev.offered] == [s.id for s in implemented if s in ev.offered]
    assert [s.id for s in ev.offered][-2:] == ["iso2", "din"]
    entries = tuple((s.namespace, s.version[0], s.version[1], i, i) for i, s in enumerate(ev.offered, 1))
    assert ev.send(StartSession(), 0.0).data == frame(cp(NS_APP).encode(sap_req(entries)))


def test_offer_follows_the_configured_priorities():
    assert offered(ev_session(("toy", "iso2"))) == [(NS_TOY, 1, 1), (NS_ISO2, 2, 2)]
    assert offered(ev_session(("iso2", "toy"))) == [(NS_ISO2, 1, 1), (NS_TOY, 2, 2)]
    assert offered(ev_session(("iso20", "toy", "din", "iso2"))) == [(NS_TOY, 1, 1), (NS_ISO2, 2, 2)]


def test_offer_leaves_out_what_the_transport_or_the_package_cannot_do():
    forbidden = registry(iso2.SPEC, toy(TLSPolicy.FORBIDDEN))
    assert offered(ev_session(("toy", "iso2"), forbidden, tls=True)) == [(NS_ISO2, 1, 1)]
    assert offered(ev_session(("toy", "iso2"), forbidden, tls=False)) == [(NS_TOY, 1, 1), (NS_ISO2, 2, 2)]
    assert offered(ev_session(("toy", "iso2"), forbidden)) == [(NS_TOY, 1, 1), (NS_ISO2, 2, 2)]  # tls unknown
    required = registry(iso2.SPEC, toy(TLSPolicy.REQUIRED))
    assert offered(ev_session(("toy", "iso2"), required, tls=False)) == [(NS_ISO2, 1, 1)]
    charger_only = registry(iso2.SPEC, toy(ev=False))
    assert offered(ev_session(("toy", "iso2"), charger_only)) == [(NS_ISO2, 1, 1)]


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="unknown protocol 'iso15118-2'"):
        ev_session(("iso15118-2",))
    with pytest.raises(ValueError, match="no protocol implemented here: din, iso20"):
        ev_session(("din", "iso20"))
    with pytest.raises(ValueError, match="tls=False"):
        charger_session(("toy",), registry(iso2.SPEC, toy(TLSPolicy.REQUIRED)), tls=False)
    with pytest.raises(ValueError, match="registered twice"):
        ProtocolRegistry([iso2.SPEC, iso2.SPEC])


# ------------------------------------------------------------ the charger's choice
@pytest.mark.parametrize("ev_order, charger_order, agreed", [
    (("toy", "iso2"), ("iso2", "toy"), "toy"),      # the EV's priority decides
    (("iso2", "toy"), ("toy", "iso2"), "iso2"),
    (("toy", "iso2"), ("iso2",), "iso2"),           # the EV's second choice when the first is not spoken
    (("iso2", "toy"), ("toy",), "toy"),
    (("toy",), ("toy", "iso2"), "toy"),
])
def test_charger_takes_the_evs_best_common_protocol(ev_order, charger_order, agreed):
    ev, ch = ev_session(ev_order), charger_session(charger_order)
    ev_events, ch_events = handshake(ev, ch)
    assert first(ev_events, ProtocolAgreed).protocol == agreed
    assert first(ch_events, ProtocolAgreed) == first(ev_events, ProtocolAgreed)
    assert ev.protocol is not None and ch.protocol is not None and ev.protocol.id == ch.protocol.id == agreed
    assert not ev.ended and not ch.ended


def test_equal_priorities_go_by_the_chargers_order():
    reg = registry()
    entries = [{"ProtocolNamespace": NS_ISO2, "VersionNumberMajor": 2, "VersionNumberMinor": 0, "SchemaID": 4,
                "Priority": 3},
               {"ProtocolNamespace": NS_TOY, "VersionNumberMajor": 1, "VersionNumberMinor": 0, "SchemaID": 9,
                "Priority": 3}]
    a = negotiate(entries, [reg.get("toy"), reg.get("iso2")])
    assert a is not None and (a.spec.id, a.schema_id) == ("toy", 9)
    a = negotiate(entries, [reg.get("iso2"), reg.get("toy")])
    assert a is not None and (a.spec.id, a.schema_id) == ("iso2", 4)
    # entries without an integer SchemaID are not candidates; another major version is another protocol
    bad = [dict(entries[1], SchemaID="9"), dict(entries[0], VersionNumberMajor=3)]
    assert negotiate(bad, [reg.get("toy"), reg.get("iso2")]) is None


def test_minor_version_deviation_is_agreed_with_its_code():
    ev = ev_session(("toy",), registry(iso2.SPEC, toy(version=(1, 4))))
    ch = charger_session(("toy",))
    ev_events, ch_events = handshake(ev, ch)
    agreed = first(ch_events, ProtocolAgreed)
    assert (agreed.protocol, agreed.version, agreed.response_code) == (
        "toy", (1, 0), "OK_SuccessfulNegotiationWithMinorDeviation")
    assert first(ev_events, ProtocolAgreed).response_code == "OK_SuccessfulNegotiationWithMinorDeviation"


def test_charger_refuses_over_the_wrong_transport():
    reg = registry(iso2.SPEC, toy(TLSPolicy.FORBIDDEN))
    ev, ch = ev_session(("toy", "iso2"), reg), charger_session(("toy", "iso2"), reg, tls=True)
    ev_events, _ = handshake(ev, ch)
    assert first(ev_events, ProtocolAgreed).protocol == "iso2"


# ------------------------------------------------------------ refusals
@pytest.mark.parametrize("cp", [fake_codecs, pytest.param("real", marks=pytest.mark.skipif(REAL is not None,
                                                                                            reason=str(REAL)))])
def test_no_common_protocol_ends_both_sides_cleanly(cp):
    import exi

    cp = exi.get_codec if cp == "real" else cp
    reg = registry(iso2.SPEC, toy(charger=False))
    ev = ev_session(("toy",), reg, cp)
    ch = charger_session(("iso2",), reg, cp)
    ev_events, ch_events = handshake(ev, ch)
    assert ch.trace == [("in", "supportedAppProtocolReq"), ("out", "supportedAppProtocolRes")]
    assert kinds(ch_events) == ["NegotiationFailed", "SessionEnded"]
    refusal = first(ch_events, NegotiationFailed)
    assert (refusal.response_code, refusal.offered, refusal.supported) == (
        "Failed_NoNegotiation", (NS_TOY,), ("ISO 15118-2",))
    end = first(ch_events, SessionEnded)
    assert (end.reason, end.response_code) == ("failed", "Failed_NoNegotiation")
    assert end.detail == f"no common protocol: the EV offers {NS_TOY} 1.0"
    # the EV reports the refusal as an event and ends without a protocol error
    assert kinds(ev_events) == ["NegotiationFailed", "SessionEnded"]
    assert first(ev_events, NegotiationFailed).offered == (NS_TOY,)
    assert (ev_events[-1].reason, ev_events[-1].response_code) == ("failed", "Failed_NoNegotiation")
    assert ev.ended and ch.ended and ev.protocol is None and ch.protocol is None
    assert ev.get_timer() is None and ch.get_timer() is None


def test_ev_rejects_an_agreement_it_did_not_offer():
    ev = ev_session(("toy", "iso2"))
    ev.send(StartSession(), 0.0)
    res = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 7}}
    events = ev.receive_data(frame(fake_codecs(NS_APP).encode(res)), 0.1)
    assert kinds(events) == ["ProtocolError", "SessionEnded"]
    assert "SchemaID 7" in first(events, ProtocolError).hint and ev.protocol is None


def test_a_single_offer_is_agreed_without_a_schema_id():
    ev = ev_session(("toy",))
    ev.send(StartSession(), 0.0)
    res = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation"}}
    events = ev.receive_data(frame(fake_codecs(NS_APP).encode(res)), 0.1)
    assert first(events, ProtocolAgreed).schema_id is None and ev.protocol is not None and ev.protocol.id == "toy"
    assert ev.trace[-1] == ("out", "HelloReq")


# ------------------------------------------------------------ the core runs the agreed protocol
def test_the_second_protocol_runs_through_the_core_to_its_end(tmp_path):
    ev = ev_session(("toy", "iso2"))
    ch = charger_session(("toy", "iso2"))
    p = Pump(ev, ch, None)
    p.start()
    p.run()
    assert ev.trace == [("out", "supportedAppProtocolReq"), ("in", "supportedAppProtocolRes"),
                        ("out", "HelloReq"), ("in", "HelloRes"), ("out", "ByeReq"), ("in", "ByeRes")]
    assert kinds(p.ev_events) == ["ProtocolAgreed", "SessionEnded"]
    assert p.ev_events[-1].reason == p.charger_events[-1].reason == "finished"
    assert ev.session_id == ch.session_id == b"\x07" * 8


def _toy_charger_after_handshake() -> ChargerSession:
    ch = charger_session(("toy",))
    ch.receive_data(frame(fake_codecs(NS_APP).encode(sap_req(offer([registry().get("toy")])))), 0.0)
    ch.data_to_send()
    assert ch.state is ToyCharger.WAIT_HELLO
    return ch


def _toy_charger_after_hello() -> ChargerSession:
    ch = _toy_charger_after_handshake()
    ch.receive_data(frame(fake_codecs(NS_TOY).encode(v2g_message(bytes(8), "HelloReq", {}))), 0.0)
    ch.data_to_send()
    assert ch.state is ToyCharger.WAIT_BYE
    return ch


def _answer(ch: ChargerSession) -> tuple[str, dict]:
    name, body, _ = body_of(fake_codecs(NS_TOY).decode(ch.data_to_send()[8:]))
    return name, body


def test_sequence_and_session_faults_get_the_protocols_own_codes():
    ch = _toy_charger_after_hello()
    events = ch.receive_data(frame(fake_codecs(NS_TOY).encode(v2g_message(b"\x07" * 8, "HelloReq", {}))), 1.0)
    assert _answer(ch) == ("HelloRes", {"ResponseCode": "FAILED_ToySequence"})  # the request's own response type
    assert (events[-1].reason, events[-1].response_code) == ("failed", "FAILED_ToySequence")

    ch = _toy_charger_after_hello()
    events = ch.receive_data(frame(fake_codecs(NS_TOY).encode(v2g_message(bytes(8), "ByeReq", {}))), 1.0)
    assert _answer(ch) == ("ByeRes", {"ResponseCode": "FAILED_ToySession"})
    assert first(events, ProtocolError).response_code == "FAILED_ToySession"

    ch = _toy_charger_after_handshake()  # not decodable: the one request this state awaits answers FAILED
    events = ch.receive_data(frame(b"\x80garbage"), 1.0)
    assert _answer(ch) == ("HelloRes", {"ResponseCode": "FAILED"}) and events[-1].response_code == "FAILED"

    ch = _toy_charger_after_hello()  # where only the stop request may come, it is the one answered FAILED
    events = ch.receive_data(frame(b"\x80garbage"), 1.0)
    assert _answer(ch) == ("ByeRes", {"ResponseCode": "FAILED"})
    assert kinds(events) == ["ProtocolError", "SessionEnded"] and events[-1].response_code == "FAILED"


def test_iso2_session_is_unchanged_by_a_second_registered_protocol(tmp_path):
    """ISO-2 agreed out of a registry of two: the full Plug & Charge session still completes."""
    ev, ch, be = make_pair(tmp_path, codec_provider=fake_codecs, ev_config=EVConfig(charge_loops=2))
    ev2 = EVSession(EVConfig(charge_loops=2, protocols=("toy", "iso2")), security=ev.security, codecs=fake_codecs,
                    protocols=registry(iso2.SPEC, toy(charger=False)))
    ch2 = ChargerSession(ChargerConfig(protocols=("iso2",)), security=ch.security, codecs=fake_codecs, now=0.0,
                         protocols=registry(iso2.SPEC, toy(charger=False)))
    p = Pump(ev2, ch2, be)
    p.start()
    p.run()
    assert first(p.ev_events, ProtocolAgreed).protocol == "iso2"
    assert p.ev_events[-1].reason == p.charger_events[-1].reason == "finished"
    assert "ChargingStarted" in kinds(p.ev_events)
