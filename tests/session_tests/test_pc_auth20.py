"""ISO 15118-20 Plug & Charge authorization: the EV's signed PnC_AReqAuthorizationMode and the charger's
validation, with every failure's -20 ResponseCode.  Checked against independent references: the
signature value and digest recomputed with ``cryptography`` and ``hashlib`` from the EXI bytes, the
OCSP request data recomputed from the certificates, and AuthorizationReq streams of the iso15118
package (a live Josev session) and libcbv2g."""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from _pc_fixtures import real_codec_status
from pki.errors import ChainValidationError, Reason
from pki.issue import TestPKI, issue_test_pki
from pki.store import TrustStore
from plugcharge.core.codec import NS_ISO20_CM, NS_XMLDSIG
from plugcharge.pnc import codes20 as C
from plugcharge.pnc.auth20 import (
    PnCAuthorization, authorization_response_code, build_pnc_authorization_req, validate_pnc_authorization,
)
from plugcharge.pnc.codes20 import PnC20Error, chain_response_code, contract_expires_soon

REAL = real_codec_status()
pytestmark = pytest.mark.skipif(REAL is not None, reason=f"real EXI codec not usable: {REAL}")
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
SID = bytes.fromhex("0011223344556677")
CHALLENGE = bytes(range(16))
VECTORS = Path(__file__).parent / "data" / "iso20_pnc_vectors.json"


@pytest.fixture(scope="module", params=["secp521r1", "ed448"])
def pki20(request: pytest.FixtureRequest) -> TestPKI:
    return issue_test_pki(20, seed=2021, now=NOW, algorithm=request.param)


def _codec():  # type: ignore[no-untyped-def]
    import exi

    return exi.get_codec(NS_ISO20_CM)


def contract_of(p: TestPKI) -> SimpleNamespace:
    return SimpleNamespace(leaf=p.cert("contract-leaf"), sub_cas=(p.cert("mo-sub2"), p.cert("mo-sub1")),
                           private_key=p.key("contract-leaf"))


def store_of(p: TestPKI) -> TrustStore:
    return TrustStore(p.store_roots())


def wire(message: dict) -> dict:
    """The message as the charger receives it: EXI-encoded and decoded (CommonMessages)."""
    return _codec().decode(_codec().encode(message))  # type: ignore[no-any-return]


def test_ev_request_verifies_independently_and_the_charger_accepts_it(pki20: TestPKI) -> None:
    msg = build_pnc_authorization_req(contract_of(pki20), CHALLENGE, session_id=SID, timestamp=1780000000)
    body = msg["AuthorizationReq"]
    mode = body["PnC_AReqAuthorizationMode"]
    assert body["SelectedAuthorizationService"] == "PnC" and mode["GenChallenge"] == CHALLENGE
    assert mode["ContractCertificateChain"]["SubCertificates"]["Certificate"] == [pki20.cert("mo-sub2"), pki20.cert("mo-sub1")]
    sig = body["Header"]["Signature"]
    [ref] = sig["SignedInfo"]["Reference"]
    # the digest is SHA-512 of the CommonMessages fragment of PnC_AReqAuthorizationMode [V2G20-2565]
    assert ref["URI"] == "#" + mode["Id"]
    assert ref["DigestValue"] == hashlib.sha512(_codec().encode_fragment({"PnC_AReqAuthorizationMode": mode})).digest()
    import exi

    signed_info = exi.get_codec(NS_XMLDSIG).encode_fragment({"SignedInfo": sig["SignedInfo"]})
    raw = sig["SignatureValue"]["value"]
    pub = pki20.key("contract-leaf").public_key()
    if isinstance(pub, ed448.Ed448PublicKey):
        assert len(raw) == 114
        pub.verify(raw, signed_info)
    else:
        assert len(raw) == 132
        pub.verify(encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big")),  # type: ignore[call-arg]
                   signed_info, ec.ECDSA(hashes.SHA512()))
    auth = validate_pnc_authorization(wire(msg), gen_challenge=CHALLENGE, store=store_of(pki20), at=NOW)
    assert isinstance(auth, PnCAuthorization)
    assert auth.emaid == pki20.emaid and auth.certificates[0] == pki20.cert("contract-leaf")
    assert auth.suite == ("iso20-ed448" if pki20.algorithm == "ed448" else "iso20-ecdsa-p521-sha512")
    assert auth.chain.anchor_role == "mo" and not auth.expires_soon and auth.response_code == "OK"


def test_ocsp_request_data_recomputed_from_the_certificates(pki20: TestPKI) -> None:
    msg = build_pnc_authorization_req(contract_of(pki20), CHALLENGE, session_id=SID, timestamp=1)
    auth = validate_pnc_authorization(wire(msg), gen_challenge=CHALLENGE, store=store_of(pki20), at=NOW)
    certs = [x509.load_der_x509_certificate(pki20.cert(r)) for r in ("contract-leaf", "mo-sub2", "mo-sub1", "mo-root")]
    assert len(auth.ocsp_request_data) == 3  # leaf and both Sub-CAs; the root has no issuer above it
    for entry, cert, issuer in zip(auth.ocsp_request_data, certs, certs[1:]):
        spki = issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        key_bits = _subject_public_key_bits(spki)
        assert entry["hashAlgorithm"] == "SHA256"
        assert entry["issuerNameHash"] == hashlib.sha256(issuer.subject.public_bytes()).hexdigest()
        assert entry["issuerKeyHash"] == hashlib.sha256(key_bits).hexdigest()
        assert int(entry["serialNumber"], 16) == cert.serial_number
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        assert entry["responderURL"] == aia[0].access_location.value
    assert validate_pnc_authorization(wire(msg), gen_challenge=CHALLENGE, store=store_of(pki20), at=NOW,
                                      ocsp=False).ocsp_request_data == ()


def _subject_public_key_bits(spki: bytes) -> bytes:
    """The BIT STRING content of a SubjectPublicKeyInfo (RFC 6960 issuerKeyHash input), read with asn1crypto."""
    from asn1crypto import keys

    return bytes(keys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def test_challenge_signature_and_key_failures(pki20: TestPKI) -> None:
    store = store_of(pki20)
    msg = wire(build_pnc_authorization_req(contract_of(pki20), CHALLENGE, session_id=SID, timestamp=1))
    # another session's challenge: WARNING_ChallengeInvalid, the session may go on [V2G20-2565]
    with pytest.raises(PnC20Error) as err:
        validate_pnc_authorization(msg, gen_challenge=bytes(16), store=store, at=NOW)
    assert err.value.response_code == "WARNING_ChallengeInvalid" and not err.value.terminal
    # the challenge rewritten after signing (to what the charger expects): the signature breaks
    forged = copy.deepcopy(msg)
    forged["AuthorizationReq"]["PnC_AReqAuthorizationMode"]["GenChallenge"] = bytes(16)
    with pytest.raises(PnC20Error) as err:
        validate_pnc_authorization(forged, gen_challenge=bytes(16), store=store, at=NOW)
    assert err.value.response_code == "FAILED_SignatureError" and err.value.terminal and "digest" in err.value.hint
    # a valid contract chain signed with another key of the same kind
    thief = SimpleNamespace(**{**vars(contract_of(pki20)), "private_key": pki20.key("oem-provisioning-leaf")})
    stolen = wire(build_pnc_authorization_req(thief, CHALLENGE, session_id=SID, timestamp=1))
    with pytest.raises(PnC20Error) as err:
        validate_pnc_authorization(stolen, gen_challenge=CHALLENGE, store=store, at=NOW)
    assert err.value.response_code == "FAILED_SignatureError"
    # a flipped bit of the signature value
    flipped = copy.deepcopy(msg)
    value = bytearray(flipped["AuthorizationReq"]["Header"]["Signature"]["SignatureValue"]["value"])
    value[7] ^= 0x10
    flipped["AuthorizationReq"]["Header"]["Signature"]["SignatureValue"]["value"] = bytes(value)
    with pytest.raises(PnC20Error, match="FAILED_SignatureError"):
        validate_pnc_authorization(flipped, gen_challenge=CHALLENGE, store=store, at=NOW)
    # unsigned
    unsigned = copy.deepcopy(msg)
    del unsigned["AuthorizationReq"]["Header"]["Signature"]
    with pytest.raises(PnC20Error, match="FAILED_SignatureError"):
        validate_pnc_authorization(unsigned, gen_challenge=CHALLENGE, store=store, at=NOW)


def test_chain_failures_have_their_warning_codes(pki20: TestPKI) -> None:
    msg = wire(build_pnc_authorization_req(contract_of(pki20), CHALLENGE, session_id=SID, timestamp=1))
    store = store_of(pki20)
    cases = {
        "WARNING_CertificateExpired": dict(store=store, at=NOW + 800 * DAY),
        "WARNING_CertificateNotYetValid": dict(store=store, at=NOW - 2 * DAY),
        "WARNING_eMSPUnknown": dict(store=TrustStore({"oem": [pki20.cert("oem-root")]}), at=NOW),
    }
    for code, kw in cases.items():
        with pytest.raises(PnC20Error) as err:
            validate_pnc_authorization(msg, gen_challenge=CHALLENGE, **kw)  # type: ignore[arg-type]
        assert err.value.response_code == code and not err.value.terminal and err.value.reason is not None
    # a Sub-CA missing from the chain: no issuer for the leaf's issuer name
    short = copy.deepcopy(msg)
    short["AuthorizationReq"]["PnC_AReqAuthorizationMode"]["ContractCertificateChain"]["SubCertificates"]["Certificate"] = [
        pki20.cert("mo-sub1")]
    with pytest.raises(PnC20Error, match="WARNING_eMSPUnknown"):
        validate_pnc_authorization(short, gen_challenge=CHALLENGE, store=store, at=NOW)
    # garbage instead of the leaf certificate
    junk = copy.deepcopy(msg)
    junk["AuthorizationReq"]["PnC_AReqAuthorizationMode"]["ContractCertificateChain"]["Certificate"] = b"\x30\x03junk"
    with pytest.raises(PnC20Error) as err:
        validate_pnc_authorization(junk, gen_challenge=CHALLENGE, store=store, at=NOW)
    assert err.value.response_code == "WARNING_CertificateValidationError" and err.value.reason == "malformed"


def test_a_2_contract_is_no_20_contract() -> None:
    """A P-256 chain (ISO 15118-2) breaks the -20 contract profile: WARNING_CertificateValidationError;
    the EV side does not even sign with a P-256 key."""
    p2 = issue_test_pki(2, seed=2, now=NOW)
    c2 = contract_of(p2)
    with pytest.raises(PnC20Error) as err:
        build_pnc_authorization_req(c2, CHALLENGE, session_id=SID, timestamp=1)
    assert err.value.response_code == "FAILED_SignatureError"
    msg = {"AuthorizationReq": {"Header": {"SessionID": SID, "TimeStamp": 1}, "SelectedAuthorizationService": "PnC",
                                "PnC_AReqAuthorizationMode": {"Id": "id1", "GenChallenge": CHALLENGE,
                                                              "ContractCertificateChain": {
                                                                  "Certificate": c2.leaf,
                                                                  "SubCertificates": {"Certificate": list(c2.sub_cas)}}}}}
    with pytest.raises(PnC20Error) as err:
        validate_pnc_authorization(wire(msg), gen_challenge=CHALLENGE, store=TrustStore(p2.store_roots()), at=NOW)
    assert err.value.response_code == "WARNING_CertificateValidationError" and err.value.reason == "algorithm"


def test_selection_and_shape() -> None:
    eim = {"AuthorizationReq": {"Header": {"SessionID": SID, "TimeStamp": 1}, "SelectedAuthorizationService": "EIM",
                                "EIM_AReqAuthorizationMode": {}}}
    with pytest.raises(PnC20Error) as err:
        validate_pnc_authorization(wire(eim), gen_challenge=CHALLENGE, store=TrustStore({}), at=NOW)
    assert err.value.response_code == "WARNING_AuthorizationSelectionInvalid"
    for bad in ({}, {"SessionSetupReq": {}}, {"AuthorizationReq": "x"}):
        with pytest.raises(PnC20Error, match="FAILED: not an ISO 15118-20 AuthorizationReq"):
            validate_pnc_authorization(bad, gen_challenge=CHALLENGE, store=TrustStore({}), at=NOW)
    c = SimpleNamespace(leaf=b"x", sub_cas=(b"y",), private_key=ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(PnC20Error, match="16 bytes"):
        build_pnc_authorization_req(c, bytes(15), session_id=SID, timestamp=1)
    with pytest.raises(PnC20Error, match="1 to 3 Sub-CAs"):
        build_pnc_authorization_req(SimpleNamespace(**{**vars(c), "sub_cas": ()}), CHALLENGE, session_id=SID, timestamp=1)


def test_fourteen_day_expiry_flag(pki20: TestPKI) -> None:
    """[V2G20-2218]: OK_CertificateExpiresSoon when the chain ends within 14 days."""
    end = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    assert contract_expires_soon(end, end - 14 * DAY)
    assert not contract_expires_soon(end, end - 14 * DAY - dt.timedelta(seconds=1))
    assert contract_expires_soon(end, end) and not contract_expires_soon(end, end + dt.timedelta(seconds=1))
    msg = wire(build_pnc_authorization_req(contract_of(pki20), CHALLENGE, session_id=SID, timestamp=1))
    store = store_of(pki20)
    at_end = validate_pnc_authorization(msg, gen_challenge=CHALLENGE, store=store, at=NOW).chain.not_after
    soon = validate_pnc_authorization(msg, gen_challenge=CHALLENGE, store=store, at=at_end - 10 * DAY)
    assert soon.expires_soon and soon.response_code == "OK_CertificateExpiresSoon"
    assert authorization_response_code(soon) == "OK_CertificateExpiresSoon"
    assert authorization_response_code(soon, "WARNING_CertificateRevoked") == "WARNING_CertificateRevoked"
    later = validate_pnc_authorization(msg, gen_challenge=CHALLENGE, store=store, at=at_end - 20 * DAY)
    assert not later.expires_soon and authorization_response_code(later) == "OK"


def test_chain_response_code_table() -> None:
    codes = {r: chain_response_code(ChainValidationError(r, "x", depth=0)) for r in Reason}
    assert codes[Reason.EXPIRED] == "WARNING_CertificateExpired"
    assert codes[Reason.NOT_YET_VALID] == "WARNING_CertificateNotYetValid"
    assert codes[Reason.REVOKED] == "WARNING_CertificateRevoked"
    others = set(Reason) - {Reason.EXPIRED, Reason.NOT_YET_VALID, Reason.REVOKED}
    assert {codes[r] for r in others} == {"WARNING_CertificateValidationError"}
    assert chain_response_code(ChainValidationError(Reason.UNTRUSTED_ROOT, "x", depth=1),
                               unknown_anchor=C.WARNING_EMSP_UNKNOWN) == "WARNING_eMSPUnknown"
    assert chain_response_code(ValueError("not a pki error")) == "WARNING_CertificateValidationError"
    import pickle

    e = pickle.loads(pickle.dumps(PnC20Error("FAILED_SignatureError", "h", reason="x")))
    assert (e.response_code, e.hint, e.reason, e.terminal) == ("FAILED_SignatureError", "h", "x", True)
    assert isinstance(e, ValueError)


# ------------------------------------------------------------------------------------------------
# streams of other implementations (tests/session_tests/data, provenance in its README)
# ------------------------------------------------------------------------------------------------
def _vector(message: str, encoder: str) -> dict:
    for v in json.loads(VECTORS.read_text()):
        if v["message"] == message and encoder in v["encoder"]:
            return v  # type: ignore[no-any-return]
    raise LookupError(message)


def test_josev_live_authorization_req() -> None:
    """The iso15118 package's -20 EV signed PnC_AReqAuthorizationMode with the -2 algorithms over a
    P-256 chain.  Its digest and signature check out with those algorithms against our CommonMessages
    fragment encoding (so our fragment bytes are EXIficient's); the -20 charger refuses it."""
    import exi

    from plugcharge.pnc import signatures as S

    setup = _codec().decode(bytes.fromhex(_vector("AuthorizationSetupRes", "Josev")["exi_hex"]))
    challenge = setup["AuthorizationSetupRes"]["PnC_ASResAuthorizationMode"]["GenChallenge"]
    raw = bytes.fromhex(_vector("AuthorizationReq", "Josev")["exi_hex"])
    msg = _codec().decode(raw)
    assert _codec().encode(msg) == raw
    mode = msg["AuthorizationReq"]["PnC_AReqAuthorizationMode"]
    assert mode["GenChallenge"] == challenge
    leaf = mode["ContractCertificateChain"]["Certificate"]
    # their algorithms, our fragment encodings: the digest and the P-256 signature verify
    josev_suite = S.SignatureSuite("josev-20", NS_ISO20_CM, S.ALG_ECDSA_SHA256, S.ALG_SHA256, hashlib.sha256, 32,
                                   "secp256r1", 64)
    S.verify_message(msg, leaf, suite=josev_suite)
    sig = msg["AuthorizationReq"]["Header"]["Signature"]
    assert sig["SignedInfo"]["Reference"][0]["DigestValue"] == hashlib.sha256(
        exi.get_codec(NS_ISO20_CM).encode_fragment({"PnC_AReqAuthorizationMode": mode})).digest()
    # the -20 suites refuse ecdsa-sha256; our charger's verdict on the whole request
    with pytest.raises(S.SignatureFormatError, match="ecdsa-sha512 or eddsa-ed448"):
        S.verify_message(msg, leaf)
    cert = x509.load_der_x509_certificate(leaf)
    mo_root_like = TrustStore({})  # their MO root is not among ours
    with pytest.raises(PnC20Error) as err:
        validate_pnc_authorization(msg, gen_challenge=challenge, store=mo_root_like, at=cert.not_valid_before_utc + DAY)
    assert err.value.response_code == "WARNING_CertificateValidationError" and err.value.reason == "algorithm"
    with pytest.raises(PnC20Error, match="WARNING_ChallengeInvalid"):
        validate_pnc_authorization(msg, gen_challenge=bytes(16), store=mo_root_like, at=NOW)
