"""The negotiation matrix over the protocols this package implements (ISO 15118-2 and DIN SPEC 70121
today; ISO 15118-20 joins by itself once it is registered in ``plugcharge.sessions.default_registry``):
every ordered offer of the EV (its priorities) against every ordered set the charger speaks, over a
plain TCP and a TLS connection.  The expected outcome is computed here from the rules alone (the
EV's best Priority among what both speak and the transport permits; else Failed_NoNegotiation),
then both sessions run the handshake and the first request of the agreed protocol."""
from __future__ import annotations

import itertools

import pytest

from _pc_fixtures import NOW, Pump, TestBackend, fake_codecs, first, kinds, make_wallet, real_codec_status, trust_store
from plugcharge import (
    ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession, NegotiationFailed,
    ProtocolAgreed, SessionEnded, StartSession,
)
from plugcharge.core.codec import NS_APP, frame
from plugcharge.core.events import PaymentSelected
from plugcharge.core.handshake import sap_req
from plugcharge.core.protocol import DEFAULT_PROTOCOLS
from plugcharge.sessions import default_registry

REAL = real_codec_status()
REGISTRY = default_registry()
#: the protocol ids a configuration names (-20, -2, DIN), implemented for both roles, in the default
#: order of preference; an id may stand for several specs (a protocol family: -20's message sets)
IMPLEMENTED = tuple(p for p in DEFAULT_PROTOCOLS if REGISTRY.select([p], "ev") and REGISTRY.select([p], "charger"))
ORDERS = [o for n in range(1, len(IMPLEMENTED) + 1) for o in itertools.permutations(IMPLEMENTED, n)]


def config_id(spec) -> str:
    """The configuration id a spec answers to (its family's, if it has one)."""
    return getattr(spec, "family", "") or spec.id


def _policy_fits(policy: str, tls: bool) -> bool:
    return policy == "optional" or (policy == "required") == tls


def fits(pid: str, tls: bool) -> bool:
    """The transport rule, from the TLS policies of the protocol's specs alone."""
    return any(_policy_fits(s.tls.value, tls) for s in REGISTRY.select([pid], "ev"))


def spec_of(entry: dict):
    """The registered spec an AppProtocol entry names (namespace and major version)."""
    return next(s for s in REGISTRY if (s.namespace, s.version[0]) == (entry["ProtocolNamespace"],
                                                                         entry["VersionNumberMajor"]))


def expected(ev_order: tuple, charger_order: tuple, tls: bool):
    ev_fit = [p for p in ev_order if fits(p, tls)]
    charger_fit = [p for p in charger_order if fits(p, tls)]
    common = [p for p in ev_fit if p in charger_fit]
    return ev_fit, charger_fit, (common[0] if common else None)


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.skipif(REAL is not None, reason=str(REAL)))])
def cp(request):
    if request.param == "fake":
        return fake_codecs
    import exi

    return exi.get_codec


def test_the_matrix_covers_what_is_implemented():
    assert {"iso2", "din"} <= set(IMPLEMENTED)
    assert len(ORDERS) == sum(len(list(itertools.permutations(IMPLEMENTED, n))) for n in range(1, len(IMPLEMENTED) + 1))


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("charger_order", ORDERS, ids="+".join)
def test_negotiation_matrix(cp, charger_order, tls):
    for ev_order in ORDERS:
        ev_fit, charger_fit, agreed = expected(ev_order, charger_order, tls)
        if not ev_fit:
            with pytest.raises(ValueError, match="no protocol implemented here"):
                EVSession(EVConfig(protocols=ev_order, tls=tls), codecs=cp)
            continue
        if not charger_fit:
            with pytest.raises(ValueError, match=f"tls={tls}"):
                ChargerSession(ChargerConfig(protocols=charger_order, tls=tls), codecs=cp)
            continue
        ev = EVSession(EVConfig(protocols=ev_order, tls=tls), codecs=cp)
        ch = ChargerSession(ChargerConfig(protocols=charger_order, tls=tls), codecs=cp, now=0.0,
                            security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW))
        out = ev.send(StartSession(), 0.0)
        offer = cp(NS_APP).decode(out.data[8:])["supportedAppProtocolReq"]["AppProtocol"]
        # Priority and SchemaID 1, 2, ...; the entries grouped in the EV's order of what fits the transport
        assert [(e["Priority"], e["SchemaID"]) for e in offer] == [(i, i) for i in range(1, len(offer) + 1)]
        ids = [config_id(spec_of(e)) for e in offer]
        assert sorted(set(ids), key=ids.index) == ev_fit and ids == sorted(ids, key=ev_fit.index)
        ch_events = ch.receive_data(out.data, 0.0)
        ev_events = ev.receive_data(ch.data_to_send(), 0.0)
        case = (ev_order, charger_order, tls)
        if agreed is None:
            assert kinds(ch_events) == kinds(ev_events) == ["NegotiationFailed", "SessionEnded"], case
            assert first(ch_events, NegotiationFailed).response_code == "Failed_NoNegotiation"
            assert ev_events[-1].response_code == ch_events[-1].response_code == "Failed_NoNegotiation"
            assert ev.ended and ch.ended and ev.get_timer() is None and ch.get_timer() is None
            continue
        got = first(ev_events, ProtocolAgreed)
        assert got == first(ch_events, ProtocolAgreed), case
        spec = REGISTRY.get(got.protocol)
        assert spec is not None and config_id(spec) == agreed, case
        # the EV's best entry of that protocol the charger takes
        best = min(i for i, e in enumerate(offer, 1) if spec_of(e) in ch.supported)
        assert (got.schema_id, got.response_code) == (best, "OK_SuccessfulNegotiation"), case
        assert got.plug_and_charge is spec.plug_and_charge
        # the EV goes on in the agreed protocol: its first request
        data = ev.data_to_send()
        payload_type = int.from_bytes(data[2:4], "big")  # a protocol may route its messages by payload type
        namespace = spec.namespace_for(payload_type) if hasattr(spec, "namespace_for") else spec.namespace
        assert spec.unwrap(cp(namespace).decode(data[8:]))[0] == spec.session_setup[0], case
        assert not ev.ended and not ch.ended and ev.protocol is spec and ch.protocol is spec


@pytest.mark.parametrize("pair", list(itertools.permutations(IMPLEMENTED, 2)), ids="+".join)
def test_the_priority_decides_not_the_list_order(cp, pair):
    """Entries in one order with their Priority values the other way round: the charger follows Priority."""
    first_listed, preferred = pair
    specs = [REGISTRY.select([first_listed], "charger")[0], REGISTRY.select([preferred], "charger")[0]]
    entries = [(s.namespace, s.version[0], s.version[1], 10 + i, prio)
               for i, (s, prio) in enumerate(zip(specs, (2, 1)))]
    tls = not (fits(first_listed, False) and fits(preferred, False))
    if not (fits(first_listed, tls) and fits(preferred, tls)):
        pytest.skip(f"{first_listed} and {preferred} never share a transport")
    ch = ChargerSession(ChargerConfig(protocols=pair, tls=tls), codecs=cp, now=0.0,
                        security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW))
    events = ch.receive_data(frame(cp(NS_APP).encode(sap_req(entries))), 0.0)
    agreed = first(events, ProtocolAgreed)
    assert (agreed.protocol, agreed.schema_id) == (specs[1].id, 11)


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_plug_and_charge_only_where_the_agreed_protocol_has_it(tmp_path, tls):
    """An EV with a usable contract offering every protocol, at a charger speaking every protocol:
    over TLS ISO-2 is agreed and the contract pays; over plain TCP the EV's priority picks ISO-2 too,
    which then offers no Contract (no TLS), and a DIN-only charger gets DIN, where the wallet is not
    used at all.  (Full sessions for the protocols with a session test of their own here.)"""
    for charger_protocols in (IMPLEMENTED, ("din",)):
        if not any(fits(p, tls) for p in charger_protocols):
            continue
        wallet = make_wallet(tmp_path / f"{tls}{len(charger_protocols)}", contract=True)
        from _pc_fixtures import v2g_roots

        ev = EVSession(EVConfig(protocols=IMPLEMENTED, tls=tls, charge_loops=1), codecs=fake_codecs,
                       security=EVSecurity(wallet=wallet, v2g_roots=v2g_roots(), wall_clock=lambda: NOW))
        ch = ChargerSession(ChargerConfig(protocols=charger_protocols, tls=tls), codecs=fake_codecs, now=0.0,
                            security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW))
        p = Pump(ev, ch, TestBackend(fake_codecs))
        p.start()
        p.run()
        agreed = first(p.ev_events, ProtocolAgreed)
        if agreed.protocol not in ("iso2", "din"):
            continue
        payment = first(p.ev_events, PaymentSelected)
        assert (payment.option == "Contract") == (agreed.plug_and_charge and tls), (agreed, payment)
        if agreed.protocol == "din":
            assert payment.reason == "protocol_without_plug_and_charge"
        assert isinstance(p.ev_events[-1], SessionEnded) and p.ev_events[-1].reason == "finished"
