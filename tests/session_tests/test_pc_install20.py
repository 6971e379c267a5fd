"""ISO 15118-20 CertificateInstallation as pure functions: the EV's signed request, the backend's checks
and signed response, the EV's checks and the contract it stores, each refusal with its -20 code.
Independent references: the request signature and the key transport recomputed with ``cryptography``
(ECDH P-521, ConcatKDF SHA-512, AES-256-GCM with the PCID ‖ SKI AAD), libcbv2g's -20 installation
messages and the iso15118 package's signed -20 request and its exact fragment octets."""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from _pc_fixtures import real_codec_status
from pki.issue import TestPKI, issue_test_pki
from pki.store import TrustStore
from plugcharge.core.codec import NS_ISO20_CM, NS_XMLDSIG
from plugcharge.pnc.certs import root_certificate_ids
from plugcharge.pnc.codes20 import PnC20Error
from plugcharge.pnc.install20 import (
    InstallationRequest, InstalledContract, build_certificate_installation_req, build_certificate_installation_res,
    certificate_installation_refusal, check_certificate_installation_req, installation_pending,
    verify_certificate_installation_res,
)
from plugcharge.pnc.wallet import ContractWallet

REAL = real_codec_status()
pytestmark = pytest.mark.skipif(REAL is not None, reason=f"real EXI codec not usable: {REAL}")
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
SID = bytes.fromhex("a1a2a3a4a5a6a7a8")
VECTORS = Path(__file__).parent / "data" / "iso20_pnc_vectors.json"


@pytest.fixture(scope="module", params=["secp521r1", "ed448"])
def pki20(request: pytest.FixtureRequest) -> TestPKI:
    """-20 PKI; the Ed448 one keeps a P-521 OEM provisioning key (the key transport agrees keys on it)."""
    return issue_test_pki(20, seed=2022, now=NOW, algorithm=request.param, oem_provisioning_algorithm="secp521r1")


def _codec():  # type: ignore[no-untyped-def]
    import exi

    return exi.get_codec(NS_ISO20_CM)


def wire(message: dict) -> dict:
    return _codec().decode(_codec().encode(message))  # type: ignore[no-any-return]


def oem_of(p: TestPKI) -> SimpleNamespace:
    return SimpleNamespace(leaf=p.cert("oem-provisioning-leaf"), sub_cas=(p.cert("oem-sub2"), p.cert("oem-sub1")),
                           private_key=p.key("oem-provisioning-leaf"))


def request_of(p: TestPKI, **kw: object) -> dict:
    ids = root_certificate_ids([p.cert("v2g-root"), p.cert("mo-root")])
    return build_certificate_installation_req(oem_of(p), session_id=SID, timestamp=1780000000, root_certificate_ids=ids,
                                              **kw)  # type: ignore[arg-type]


def response_for(p: TestPKI, req: InstallationRequest, *, contract_key: object = None, remaining: int = 0,
                 cps_key: object = None) -> tuple[dict, object]:
    issued = p.issue_contract(p.emaid, key=contract_key)  # type: ignore[arg-type]
    res = build_certificate_installation_res(
        session_id=req.session_id, timestamp=1780000001, cps_certificate=p.cert("cps-leaf"),
        cps_sub_cas=(p.cert("cps-sub2"), p.cert("cps-sub1")), cps_key=cps_key or p.key("cps-leaf"),
        contract_certificate=issued.der, contract_sub_cas=(p.cert("mo-sub2"), p.cert("mo-sub1")),
        contract_key=issued.key, receiver_public_key=req.receiver_public_key, pcid=req.pcid,
        remaining_contract_chains=remaining)
    return res, issued


def test_request_signed_by_the_oem_key_checked_independently(pki20: TestPKI) -> None:
    msg = request_of(pki20, maximum_contract_chains=3, prioritized_emaids=["DEPLGC000000999", pki20.emaid])
    body = msg["CertificateInstallationReq"]
    chain = body["OEMProvisioningCertificateChain"]
    assert chain["Certificate"] == pki20.cert("oem-provisioning-leaf") and len(chain["SubCertificates"]["Certificate"]) == 2
    [ref] = body["Header"]["Signature"]["SignedInfo"]["Reference"]
    assert ref["URI"] == "#" + chain["Id"]
    assert ref["DigestValue"] == hashlib.sha512(_codec().encode_fragment({"OEMProvisioningCertificateChain": chain})).digest()
    import exi

    si = exi.get_codec(NS_XMLDSIG).encode_fragment({"SignedInfo": body["Header"]["Signature"]["SignedInfo"]})
    raw = body["Header"]["Signature"]["SignatureValue"]["value"]
    pki20.key("oem-provisioning-leaf").public_key().verify(  # type: ignore[call-arg]
        encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big")), si, ec.ECDSA(hashes.SHA512()))
    req = check_certificate_installation_req(wire(msg), store=TrustStore(pki20.store_roots()), at=NOW)
    assert req.pcid == pki20.pcid and req.session_id == SID and req.maximum_contract_chains == 3
    assert req.prioritized_emaids == ("DEPLGC000000999", pki20.emaid) and req.suite == "iso20-ecdsa-p521-sha512"
    assert req.trusts_root(pki20.cert("v2g-root")) and req.trusts_root(pki20.cert("mo-root"))
    assert not req.trusts_root(pki20.cert("oem-root"))
    assert req.oem_chain.anchor_role == "oem" and req.oem_sub_cas == (pki20.cert("oem-sub2"), pki20.cert("oem-sub1"))


def test_round_trip_to_the_wallet_with_the_key_transport_recomputed(pki20: TestPKI, tmp_path: Path) -> None:
    store = TrustStore(pki20.store_roots())
    req = check_certificate_installation_req(wire(request_of(pki20)), store=store, at=NOW)
    res, issued = response_for(pki20, req, remaining=2)
    got = wire(res)
    data = got["CertificateInstallationRes"]["SignedInstallationData"]
    assert data["ECDHCurve"] == "SECP521" and len(data["DHPublicKey"]) == 133 and len(data["SECP521_EncryptedPrivateKey"]) == 94
    # the key transport by hand: ECDH P-521 with the OEM key, ConcatKDF SHA-512 (01 55 56), AES-256-GCM
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), data["DHPublicKey"])
    z = pki20.key("oem-provisioning-leaf").exchange(ec.ECDH(), peer)  # type: ignore[call-arg]
    k = hashlib.sha512(b"\x00\x00\x00\x01" + z + b"\x01\x55\x56").digest()[:32]
    ski = x509.load_der_x509_certificate(issued.der).extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    field = data["SECP521_EncryptedPrivateKey"]
    plain = AESGCM(k).decrypt(field[:12], field[12:], pki20.pcid.encode() + ski.hex().upper().encode())
    if isinstance(issued.key, ed448.Ed448PrivateKey):
        assert plain == bytes(9) + issued.key.private_bytes_raw()
    else:
        assert int.from_bytes(plain, "big") == issued.key.private_numbers().private_value  # type: ignore[union-attr]
    # the EV's checks and what it stores
    contract = verify_certificate_installation_res(got, oem=oem_of(pki20), store=store, at=NOW)
    assert isinstance(contract, InstalledContract)
    assert contract.emaid == pki20.emaid and contract.leaf == issued.der and contract.remaining_contract_chains == 2
    assert contract.sub_cas == (pki20.cert("mo-sub2"), pki20.cert("mo-sub1"))
    assert contract.cps_chain.anchor_role == "v2g" and contract.not_after <= issued_not_after(issued.der)
    assert "private" not in repr(contract)
    wallet = ContractWallet(tmp_path, enabled_default=True)
    info = contract.install_into(wallet)
    assert info.iso == 20 and wallet.usable_contract(NOW, 20).leaf == issued.der  # type: ignore[union-attr]
    assert wallet.usable_contract(NOW) is None  # not a -2 contract


def issued_not_after(der: bytes) -> dt.datetime:
    return x509.load_der_x509_certificate(der).not_valid_after_utc


def test_backend_refusals(pki20: TestPKI) -> None:
    store = TrustStore(pki20.store_roots())
    msg = wire(request_of(pki20))
    # the chain was changed after signing
    forged = copy.deepcopy(msg)
    forged["CertificateInstallationReq"]["OEMProvisioningCertificateChain"]["SubCertificates"]["Certificate"].reverse()
    with pytest.raises(PnC20Error) as err:
        check_certificate_installation_req(forged, store=store, at=NOW)
    assert err.value.response_code == "FAILED_SignatureError" and err.value.terminal
    # another vehicle's OEM key signed it
    other = issue_test_pki(20, seed=99, now=NOW, algorithm=pki20.algorithm, oem_provisioning_algorithm="secp521r1")
    thief = SimpleNamespace(**{**vars(oem_of(pki20)), "private_key": other.key("oem-provisioning-leaf")})
    stolen = build_certificate_installation_req(thief, session_id=SID, timestamp=1,
                                                root_certificate_ids=root_certificate_ids([pki20.cert("v2g-root")]))
    with pytest.raises(PnC20Error, match="FAILED_SignatureError"):
        check_certificate_installation_req(wire(stolen), store=store, at=NOW)
    # chain codes: expired, not yet valid, an OEM the backend does not know
    for code, kw in {"WARNING_CertificateExpired": dict(store=store, at=NOW + 2000 * DAY),
                     "WARNING_CertificateNotYetValid": dict(store=store, at=NOW - 2 * DAY),
                     "WARNING_CertificateValidationError": dict(store=TrustStore(other.store_roots()), at=NOW)}.items():
        with pytest.raises(PnC20Error) as err:
            check_certificate_installation_req(msg, **kw)  # type: ignore[arg-type]
        assert err.value.response_code == code and not err.value.terminal
    # malformed input: FAILED with the field named
    for path, value, field in ((("ListOfRootCertificateIDs",), {"RootCertificateID": []}, "ListOfRootCertificateIDs"),
                               (("MaximumContractCertificateChains",), 300, "MaximumContractCertificateChains"),
                               (("PrioritizedEMAIDs",), {"EMAID": ["E"] * 9}, "PrioritizedEMAIDs"),
                               (("OEMProvisioningCertificateChain",), {"Id": "id1"}, "OEMProvisioningCertificateChain")):
        bad = copy.deepcopy(msg)
        bad["CertificateInstallationReq"][path[0]] = value
        with pytest.raises(PnC20Error) as err:
            check_certificate_installation_req(bad, store=store, at=NOW)
        assert err.value.response_code == "FAILED" and field in err.value.hint
    with pytest.raises(PnC20Error, match="not an ISO 15118-20 CertificateInstallationReq"):
        check_certificate_installation_req({"CertificateInstallationReq": {}}, store=store, at=NOW)


def test_ev_refusals(pki20: TestPKI) -> None:
    store = TrustStore(pki20.store_roots())
    req = check_certificate_installation_req(wire(request_of(pki20)), store=store, at=NOW)
    res = wire(response_for(pki20, req)[0])
    oem = oem_of(pki20)

    def refused(message: dict, **kw: object) -> PnC20Error:
        with pytest.raises(PnC20Error) as err:
            verify_certificate_installation_res(message, **{"oem": oem, "store": store, "at": NOW, **kw})  # type: ignore[arg-type]
        return err.value

    # anything of SignedInstallationData changed: the CPS signature no longer covers it
    for key in ("DHPublicKey", "SECP521_EncryptedPrivateKey"):
        bad = copy.deepcopy(res)
        v = bytearray(bad["CertificateInstallationRes"]["SignedInstallationData"][key])
        v[-1] ^= 1
        bad["CertificateInstallationRes"]["SignedInstallationData"][key] = bytes(v)
        assert refused(bad).response_code == "FAILED_SignatureError"
    # the EV knows no V2G root for the CPS chain; another V2G root of the same name; an expired chain
    e = refused(res, store=TrustStore({"mo": [pki20.cert("mo-root")]}))
    assert e.response_code == "WARNING_NoCertificateAvailable" and "CPS chain" in e.hint
    other = issue_test_pki(20, seed=98, now=NOW, algorithm=pki20.algorithm)
    e = refused(res, store=TrustStore({"v2g": [other.cert("v2g-root")], "mo": [pki20.cert("mo-root")]}))
    assert e.response_code == "WARNING_CertificateValidationError" and e.reason == "bad_signature"
    assert refused(res, at=NOW + 2000 * DAY).response_code == "WARNING_CertificateExpired"
    # a contract chain the EV cannot anchor (no MO root, the V2G root does not issue MO Sub-CAs here)
    assert refused(res, store=TrustStore({"v2g": [pki20.cert("v2g-root")]})).response_code == "WARNING_NoCertificateAvailable"
    # another EV's OEM key: the GCM tag fails [V2G20-2504]
    e = refused(res, oem=SimpleNamespace(**{**vars(oem), "private_key": ec.generate_private_key(ec.SECP521R1())}))
    assert e.response_code == "FAILED" and "V2G20-2504" in e.hint
    # a correctly encrypted key of another certificate: d·G / public key check [V2G20-2507]
    wrong_key = ed448.Ed448PrivateKey.generate() if pki20.algorithm == "ed448" else ec.generate_private_key(ec.SECP521R1())
    issued = pki20.issue_contract(pki20.emaid)
    mismatched = build_certificate_installation_res(
        session_id=SID, timestamp=1, cps_certificate=pki20.cert("cps-leaf"), cps_sub_cas=(pki20.cert("cps-sub2"), pki20.cert("cps-sub1")),
        cps_key=pki20.key("cps-leaf"), contract_certificate=issued.der, contract_sub_cas=(pki20.cert("mo-sub2"), pki20.cert("mo-sub1")),
        contract_key=wrong_key, receiver_public_key=req.receiver_public_key, pcid=req.pcid)
    e = refused(wire(mismatched))
    assert e.response_code == "FAILED" and "does not match" in e.hint
    # a refusal the charger sent, and a response that is still Ongoing
    refusal = wire(certificate_installation_refusal("WARNING_NoContractMatchingPCIDFound", session_id=SID, timestamp=2))
    assert refused(refusal).response_code == "WARNING_NoContractMatchingPCIDFound"
    ongoing = wire(certificate_installation_refusal("OK", session_id=SID, timestamp=2, evse_processing="Ongoing"))
    assert installation_pending(ongoing) and not installation_pending(res)
    assert "repeat" in refused(ongoing).hint
    # the X448 transport (properly signed by the CPS) is refused with its reason
    from plugcharge.pnc.signatures import sign_message

    x = copy.deepcopy(res)
    x["CertificateInstallationRes"]["SignedInstallationData"]["ECDHCurve"] = "X448"
    e = refused(wire(sign_message(x, pki20.key("cps-leaf"))))
    assert e.response_code == "FAILED" and "SECP521" in e.hint


def test_builder_limits(pki20: TestPKI) -> None:
    oem = oem_of(pki20)
    ids = root_certificate_ids([pki20.cert("v2g-root")])
    for kw, text in ((dict(root_certificate_ids=ids * 21), "1 to 20"), (dict(root_certificate_ids=[]), "1 to 20"),
                     (dict(root_certificate_ids=ids, maximum_contract_chains=256), "0..255"),
                     (dict(root_certificate_ids=ids, prioritized_emaids=["E"] * 9), "at most 8")):
        with pytest.raises(PnC20Error, match=text):
            build_certificate_installation_req(oem, session_id=SID, timestamp=1, **kw)  # type: ignore[arg-type]
    p2 = issue_test_pki(2, seed=5, now=NOW)
    with pytest.raises(PnC20Error) as err:
        build_certificate_installation_req(SimpleNamespace(leaf=p2.cert("oem-provisioning-leaf"), sub_cas=(),
                                                           private_key=p2.key("oem-provisioning-leaf")),
                                           session_id=SID, timestamp=1, root_certificate_ids=ids)
    assert err.value.response_code == "FAILED_SignatureError"
    req = check_certificate_installation_req(wire(request_of(pki20)), store=TrustStore(pki20.store_roots()), at=NOW)
    issued = pki20.issue_contract(pki20.emaid)
    common = dict(session_id=SID, timestamp=1, cps_certificate=pki20.cert("cps-leaf"), cps_sub_cas=(), cps_key=pki20.key("cps-leaf"),
                  contract_certificate=issued.der, contract_sub_cas=(pki20.cert("mo-sub2"),), contract_key=issued.key,
                  pcid=req.pcid)
    with pytest.raises(PnC20Error, match="SECP521 key transport"):
        build_certificate_installation_res(receiver_public_key=x448.X448PrivateKey.generate().public_key(), **common)  # type: ignore[arg-type]
    with pytest.raises(PnC20Error, match="SECP521 key transport"):
        build_certificate_installation_res(receiver_public_key=ed448.Ed448PrivateKey.generate().public_key(), **common)  # type: ignore[arg-type]
    with pytest.raises(PnC20Error, match="0..255"):
        build_certificate_installation_res(receiver_public_key=req.receiver_public_key, remaining_contract_chains=256, **common)  # type: ignore[arg-type]
    with pytest.raises(PnC20Error, match="1 to 3 Sub-CAs"):
        build_certificate_installation_res(receiver_public_key=req.receiver_public_key, **{**common, "contract_sub_cas": ()})  # type: ignore[arg-type]
    with pytest.raises(PnC20Error, match="FAILED_SignatureError"):
        build_certificate_installation_res(receiver_public_key=req.receiver_public_key,  # type: ignore[arg-type]
                                           **{**common, "cps_key": p2.key("cps-leaf")})
    with pytest.raises(PnC20Error, match="PCID"):
        build_certificate_installation_res(receiver_public_key=req.receiver_public_key, **{**common, "pcid": "short"})  # type: ignore[arg-type]


def test_refusal_message_encodes_under_the_schema() -> None:
    for code in ("WARNING_NoContractMatchingPCIDFound", "FAILED_SignatureError", "FAILED"):
        msg = certificate_installation_refusal(code, session_id=SID, timestamp=3)
        assert wire(msg) == msg


# ------------------------------------------------------------------------------------------------
# streams of other implementations (tests/session_tests/data, provenance in its README)
# ------------------------------------------------------------------------------------------------
def _vector(message: str, encoder: str) -> dict:
    for v in json.loads(VECTORS.read_text()):
        if v["message"] == message and encoder in v["encoder"]:
            return v  # type: ignore[no-any-return]
    raise LookupError(message)


def test_libcbv2g_installation_messages_reach_the_certificate_checks() -> None:
    """libcbv2g's -20 CertificateInstallationReq/Res (filler certificates) decode into the shapes the
    checks read: every field is taken (root ID, MaximumContractCertificateChains, the remaining
    count) and the first refusal is the certificate, not the message layout."""
    raw = bytes.fromhex(_vector("CertificateInstallationReq", "libcbv2g")["exi_hex"])
    req = _codec().decode(raw)
    assert _codec().encode(req) == raw
    body = req["CertificateInstallationReq"]
    assert body["ListOfRootCertificateIDs"]["RootCertificateID"][0]["X509IssuerName"] == "Root CA"
    assert body["MaximumContractCertificateChains"] == 3
    with pytest.raises(PnC20Error) as err:
        check_certificate_installation_req(req, store=TrustStore({}), at=NOW)
    assert err.value.response_code == "WARNING_CertificateValidationError" and err.value.reason == "malformed"
    raw = bytes.fromhex(_vector("CertificateInstallationRes", "libcbv2g")["exi_hex"])
    res = _codec().decode(raw)  # its 2-byte DHPublicKey breaks the 133-byte facet: decoded, never re-encoded
    assert not installation_pending(res)
    assert res["CertificateInstallationRes"]["RemainingContractCertificateChains"] == 2
    p = issue_test_pki(20, seed=1, now=NOW)
    with pytest.raises(PnC20Error) as err:
        verify_certificate_installation_res(res, oem=oem_of(p), store=TrustStore(p.store_roots()), at=NOW)
    assert err.value.reason == "malformed" and "CPS chain" in err.value.hint


def test_josev_signed_installation_request() -> None:
    """The iso15118 package's -20 EVCC signs OEMProvisioningCertificateChain with the -2 algorithms.
    Our CommonMessages fragment of that element is byte for byte the one its EXIficient produced,
    its digest and P-256 signature verify with those algorithms, our -20 verifier refuses them, and
    our backend refuses the request for its P-256 OEM chain (-20 profile)."""
    from plugcharge.pnc import signatures as S

    raw = bytes.fromhex(_vector("CertificateInstallationReq", "Josev")["exi_hex"])
    msg = _codec().decode(raw)
    assert _codec().encode(msg) == raw
    chain = msg["CertificateInstallationReq"]["OEMProvisioningCertificateChain"]
    theirs = bytes.fromhex(_vector("SignedCertificateChain (OEMProvisioningCertificateChain)", "Josev")["exi_hex"])
    assert _codec().encode_fragment({"OEMProvisioningCertificateChain": chain}) == theirs
    josev_suite = S.SignatureSuite("josev-20", NS_ISO20_CM, S.ALG_ECDSA_SHA256, S.ALG_SHA256, hashlib.sha256, 32,
                                   "secp256r1", 64)
    S.verify_message(msg, chain["Certificate"], suite=josev_suite)
    with pytest.raises(S.SignatureFormatError):
        S.verify_message(msg, chain["Certificate"])
    at = x509.load_der_x509_certificate(chain["Certificate"]).not_valid_before_utc + DAY
    with pytest.raises(PnC20Error) as err:  # its P-256 OEM chain breaks the -20 profile before the signature
        check_certificate_installation_req(msg, store=TrustStore({}), at=at)
    assert err.value.response_code == "WARNING_CertificateValidationError" and err.value.reason == "algorithm"
