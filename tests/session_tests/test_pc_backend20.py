"""The simulated backend's ISO 15118-20 side: CertificateInstallation with several contracts per PCID
(MaximumContractCertificateChains, PrioritizedEMAIDs, RemainingContractCertificateChains), P-521 or
Ed448 contracts, every refusal's -20 ResponseCode, -20 Authorize, OCPP 2.1 fields and
GetCertificateChainStatus.  The EV side of each exchange is plugcharge.pnc.install20 (itself tested
against cryptography and other implementations' streams in test_pc_install20.py)."""
from __future__ import annotations

import base64
import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from _pc_fixtures import real_codec_status
from pki.issue import TestPKI, issue_test_pki
from pki.ocsp import ocpp_request_data
from pki.store import TrustStore
from plugcharge.backends.base import (
    ISO20_SCHEMA_VERSION, AuthorizeRequest, AuthorizeResponse, Get15118EVCertificateRequest,
    Get15118EVCertificateResponse, iso20_response_code, pem_chain,
)
from plugcharge.backends.capabilities import CertificateStatusRequestInfo
from plugcharge.backends.simulated import SimulatedBackend
from plugcharge.core.codec import NS_ISO20_CM
from plugcharge.pnc.certs import root_certificate_ids
from plugcharge.pnc.codes20 import PnC20Error
from plugcharge.pnc.install20 import (
    build_certificate_installation_req, certificate_installation_refusal, verify_certificate_installation_res,
)
from plugcharge.pnc.wallet import ContractWallet, OEMProvisioning

REAL = real_codec_status()
pytestmark = pytest.mark.skipif(REAL is not None, reason=f"real EXI codec not usable: {REAL}")
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
SID = bytes.fromhex("0102030405060708")
EMAIDS = ("DEPLGC000000501", "DEPLGC000000502", "DEPLGC000000503")


@lru_cache(maxsize=None)
def pki(iso: int, algorithm: str | None = None, oem: str | None = None) -> TestPKI:
    return issue_test_pki(iso, seed=2030 + iso, now=NOW, algorithm=algorithm, oem_provisioning_algorithm=oem)


def _codec() -> Any:
    import exi

    return exi.get_codec(NS_ISO20_CM)


def oem_of(p: TestPKI) -> OEMProvisioning:
    return OEMProvisioning(p.cert("oem-provisioning-leaf"), (p.cert("oem-sub2"), p.cert("oem-sub1")),
                           p.key("oem-provisioning-leaf"))  # type: ignore[arg-type]


def backend_for(p20: TestPKI, **kw: Any) -> SimulatedBackend:
    b = SimulatedBackend(pki(2), pki20=p20, clock=lambda: NOW, **kw)
    b.register_pcid(p20.pcid, EMAIDS[0])
    for e in EMAIDS[1:]:
        b.add_emaid(p20.pcid, e)
    return b


def request(p: TestPKI, *, oem: Any = None, sid: bytes = SID, roots: tuple[str, ...] = ("v2g-root", "mo-root"),
            **kw: Any) -> Get15118EVCertificateRequest:
    msg = build_certificate_installation_req(oem or oem_of(p), session_id=sid, timestamp=1780000000,
                                             root_certificate_ids=root_certificate_ids([p.cert(r) for r in roots]), **kw)
    return Get15118EVCertificateRequest.from_exi(_codec().encode(msg), "Install", ISO20_SCHEMA_VERSION)


def ev_accepts(p: TestPKI, res: Get15118EVCertificateResponse) -> Any:
    assert res.status == "Accepted", res
    return verify_certificate_installation_res(_codec().decode(res.exi), oem=oem_of(p),
                                               store=TrustStore(p.store_roots()), at=NOW)


@pytest.mark.parametrize("p20, algorithm", [(pki(20), None), (pki(20), "ed448"),
                                            (pki(20, "ed448", "secp521r1"), None)],
                         ids=["p521", "p521-pki-ed448-contracts", "ed448"])
def test_several_contracts_in_priority_order_into_the_wallet(p20: TestPKI, algorithm: str | None, tmp_path: Path) -> None:
    backend = backend_for(p20, contract_algorithm20=algorithm)
    wallet = ContractWallet(tmp_path, enabled_default=True)
    got = []
    remaining = None
    while remaining != 0:
        res = backend.get_15118_ev_certificate(request(p20, maximum_contract_chains=2, prioritized_emaids=[EMAIDS[2]]))
        contract = ev_accepts(p20, res)
        remaining = contract.remaining_contract_chains
        assert res.remaining_contracts == remaining and res.to_ocpp()["remainingContracts"] == remaining
        got.append(contract.emaid)
        contract.install_into(wallet)
        assert len(got) <= 2
    assert got == [EMAIDS[2], EMAIDS[0]]  # the EV's priority first, then registration order, cut at 2
    want_ed448 = (algorithm or p20.algorithm) == "ed448"
    for c in wallet.iter_contracts(20):
        assert isinstance(c.private_key, ed448.Ed448PrivateKey) == want_ed448
        assert isinstance(c.private_key, ec.EllipticCurvePrivateKey) != want_ed448
    assert len(wallet.contracts(20)) == 2 and backend.last_delivered is not None
    assert backend.last_delivered.emaid == EMAIDS[0]
    # a new session starts over
    res = backend.get_15118_ev_certificate(request(p20, sid=bytes(8), maximum_contract_chains=1))
    c = ev_accepts(p20, res)
    assert (c.emaid, c.remaining_contract_chains) == (EMAIDS[0], 0)


def test_ocpp21_fields_take_precedence_and_serialise() -> None:
    p20 = pki(20)
    backend = backend_for(p20)
    plain = request(p20, maximum_contract_chains=3)
    req = Get15118EVCertificateRequest(plain.iso15118_schema_version, "Install", plain.exi_request,
                                       maximum_contract_certificate_chains=1, prioritized_emaids=(EMAIDS[1],))
    assert req.to_ocpp() == {"iso15118SchemaVersion": ISO20_SCHEMA_VERSION, "action": "Install",
                             "exiRequest": plain.exi_request, "maximumContractCertificateChains": 1,
                             "prioritizedEMAIDs": [EMAIDS[1]]}
    assert "maximumContractCertificateChains" not in plain.to_ocpp()
    c = ev_accepts(p20, backend.get_15118_ev_certificate(req))
    assert (c.emaid, c.remaining_contract_chains) == (EMAIDS[1], 0)
    for bad in (dict(maximum_contract_certificate_chains=256), dict(prioritized_emaids=("E",) * 9),
                dict(prioritized_emaids=())):
        with pytest.raises(ValueError):
            Get15118EVCertificateRequest(ISO20_SCHEMA_VERSION, "Install", "", **bad)  # type: ignore[arg-type]


def refused(backend: SimulatedBackend, req: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
    res = backend.get_15118_ev_certificate(req)
    assert res.status == "Failed" and res.exi_response == "" and res.status_info
    return res


def test_refusals_carry_the_20_codes() -> None:
    p20 = pki(20)
    backend = backend_for(p20)
    # a PCID the eMSP does not know
    stranger = p20.issue_oem_provisioning("WMIUNKNOWNPCID0001", now=NOW)
    oem = OEMProvisioning(stranger.der, (p20.cert("oem-sub2"), p20.cert("oem-sub1")), stranger.key)  # type: ignore[arg-type]
    assert refused(backend, request(p20, oem=oem)).response_code == "WARNING_NoContractMatchingPCIDFound"
    # every contract of the PCID cancelled
    for e in EMAIDS:
        backend.cancel_contract(e)
    assert refused(backend, request(p20)).response_code == "WARNING_NoContractMatchingPCIDFound"
    backend.add_emaid(p20.pcid, EMAIDS[1])  # re-activating one
    assert ev_accepts(p20, backend.get_15118_ev_certificate(request(p20))).emaid == EMAIDS[1]
    n = len(backend.issued)
    # the EV does not trust the V2G root of the CPS chain
    assert refused(backend, request(p20, roots=("mo-root",))).response_code == "WARNING_NoCertificateAvailable"
    # signed by a key that is not the OEM certificate's
    thief = OEMProvisioning(oem_of(p20).leaf, oem_of(p20).sub_cas, ec.generate_private_key(ec.SECP521R1()))
    assert refused(backend, request(p20, oem=thief)).response_code == "FAILED_SignatureError"
    # an OEM chain of another OEM (same names, other keys)
    foreign = issue_test_pki(20, seed=77, now=NOW)
    r = refused(backend, request(p20, oem=oem_of(foreign)))
    assert r.response_code == "WARNING_CertificateValidationError" and "OEM provisioning chain" in (r.status_info or "")
    # the EV takes no contract; malformed transport; -20 has no update; the demo's forced failure
    assert refused(backend, request(p20, maximum_contract_chains=0)).response_code == "FAILED"
    assert refused(backend, Get15118EVCertificateRequest(ISO20_SCHEMA_VERSION, "Install", "!!")).response_code == "FAILED"
    r = refused(backend, Get15118EVCertificateRequest(ISO20_SCHEMA_VERSION, "Install", base64.b64encode(b"\x80\x00").decode()))
    assert r.response_code == "FAILED" and "decode" in (r.status_info or "")
    ok = request(p20)
    assert refused(backend, Get15118EVCertificateRequest(ISO20_SCHEMA_VERSION, "Update", ok.exi_request)).response_code == "FAILED"
    backend.fail_installations = "CPS unreachable"
    assert refused(backend, ok).status_info == "CPS unreachable"
    assert len(backend.issued) == n  # nothing was issued for a refused request


def test_all_ed448_pki_cannot_agree_keys() -> None:
    """An Ed448 OEM provisioning key signs the request (checked) but cannot agree keys: FAILED with the reason."""
    p = pki(20, "ed448")
    backend = backend_for(p)
    r = refused(backend, request(p))
    assert r.response_code == "FAILED" and "SECP521" in (r.status_info or "")
    assert len(backend.issued) == 0


def test_exi_refusals_reach_the_ev() -> None:
    p20 = pki(20)
    backend = backend_for(p20)
    backend.exi_refusals = True
    backend.cancel_contract(EMAIDS[0]), backend.cancel_contract(EMAIDS[1]), backend.cancel_contract(EMAIDS[2])
    res = backend.get_15118_ev_certificate(request(p20))
    assert res.status == "Accepted" and res.response_code == "WARNING_NoContractMatchingPCIDFound"
    msg = _codec().decode(res.exi)
    assert msg == certificate_installation_refusal("WARNING_NoContractMatchingPCIDFound", session_id=SID,
                                                   timestamp=int(NOW.timestamp()))
    with pytest.raises(PnC20Error) as err:
        verify_certificate_installation_res(msg, oem=oem_of(p20), store=TrustStore(p20.store_roots()), at=NOW)
    assert err.value.response_code == "WARNING_NoContractMatchingPCIDFound"


def test_authorize_iso20_contract_chains() -> None:
    p20 = pki(20)
    backend = backend_for(p20)
    c = ev_accepts(p20, backend.get_15118_ev_certificate(request(p20)))
    ok = backend.authorize(AuthorizeRequest(c.emaid, pem_chain([c.leaf, *c.sub_cas])))
    assert ok.accepted and iso20_response_code(ok) == "OK"
    later = SimulatedBackend(pki(2), pki20=p20, clock=lambda: NOW + dt.timedelta(days=2000))
    expired = later.authorize(AuthorizeRequest(c.emaid, pem_chain([c.leaf, *c.sub_cas])))
    assert expired.certificate_status == "CertificateExpired"
    assert iso20_response_code(expired) == "WARNING_CertificateExpired"
    backend.revoke(c.emaid)
    revoked = backend.authorize(AuthorizeRequest(c.emaid, pem_chain([c.leaf, *c.sub_cas])))
    assert iso20_response_code(revoked) == "WARNING_CertificateRevoked"
    assert iso20_response_code(AuthorizeResponse("Invalid", "ContractCancelled")) == "WARNING_GeneralPnCAuthorizationError"
    assert iso20_response_code(AuthorizeResponse("Blocked")) == "WARNING_GeneralPnCAuthorizationError"
    assert iso20_response_code(AuthorizeResponse("Accepted", "NoCertificateAvailable")) == "WARNING_eMSPUnknown"


def test_certificate_chain_status_of_the_vehicle_chain() -> None:
    """OCPP 2.1 GetCertificateChainStatus for the -20 vehicle chain (leaf, Sub-CA 2, Sub-CA 1) [V2G20-2432]."""
    from pki.verify import verify_chain

    p20 = pki(20)
    backend = backend_for(p20)
    chain = verify_chain(p20.cert("vehicle-leaf"), [p20.cert("oem-sub2"), p20.cert("oem-sub1")],
                         store=TrustStore(p20.store_roots()), profile="iso20-vehicle", at=NOW)
    from plugcharge.backends.base import OCSPRequestData

    infos = [CertificateStatusRequestInfo.from_ocsp_request_data(OCSPRequestData.from_ocpp(d)) for d in ocpp_request_data(chain)]
    assert len(infos) == 3
    statuses = backend.certificate_chain_status(infos)
    assert [s.status for s in statuses] == ["Good"] * 3
    assert statuses[0].to_ocpp()["certificateHashData"]["serialNumber"] == infos[0].serial_number
    backend.revoke_serial(x509.load_der_x509_certificate(p20.cert("vehicle-leaf")).serial_number)
    assert [s.status for s in backend.certificate_chain_status(infos)] == ["Revoked", "Good", "Good"]
    unknown = CertificateStatusRequestInfo("SHA256", "00" * 32, "00" * 32, "abc", ("http://x/",))
    bad = CertificateStatusRequestInfo("SHA1", "00", "00", "1", ("http://x/",))
    assert [s.status for s in backend.certificate_chain_status([unknown, bad])] == ["Unknown", "Failed"]
    with pytest.raises(ValueError):
        backend.certificate_chain_status(infos * 2)
    with pytest.raises(ValueError):
        CertificateStatusRequestInfo("SHA256", "a", "b", "1", ())


def test_one_backend_serves_both_editions() -> None:
    """One backend with a -2 and a -20 PKI: its trust store anchors both editions' chains, it installs
    -20 contracts and authorises -2 and -20 contract chains, each under its own profile."""
    from pki.verify import verify_chain

    p2, p20 = pki(2), pki(20)
    backend = backend_for(p20)
    for p, profile in ((p2, "iso2-contract"), (p20, "iso20-contract")):
        case = p.chain(profile)
        assert verify_chain(case.leaf, case.intermediates, store=backend.store, profile=profile, at=NOW).anchor_role == "mo"
    c20 = ev_accepts(p20, backend.get_15118_ev_certificate(request(p20)))
    backend.register_pcid(p2.pcid, p2.emaid)
    c2 = backend.issue_contract(p2.pcid)
    for emaid, chain in ((c20.emaid, [c20.leaf, *c20.sub_cas]), (c2.emaid, [c2.leaf, *c2.sub_cas])):
        assert backend.authorize(AuthorizeRequest(emaid, pem_chain(chain))).accepted
    assert SimulatedBackend(p2).iso20 is None and SimulatedBackend(p20).pki20 is p20
    with pytest.raises(ValueError, match="-20 PKI"):
        SimulatedBackend(p2).add_emaid(p2.pcid, EMAIDS[0])
