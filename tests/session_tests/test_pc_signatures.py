"""ISO 15118-2 message signatures (XMLDSig over EXI): creation, verification, forgery, real vectors."""
from __future__ import annotations

import copy
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from _pc_fixtures import fake_codecs, real_codec_status, session_pki
from plugcharge.core.codec import NS_ISO2, NS_XMLDSIG, v2g_message
from plugcharge.pnc.certs import cert_chain
from plugcharge.iso2 import messages as M
from plugcharge.pnc import signatures as S
from plugcharge.core.errors import (
    BadSignatureError, DigestMismatchError, MissingReferenceError, SignatureError, SignatureFormatError,
    UnexpectedReferenceError,
)

REAL = real_codec_status()
needs_real = pytest.mark.skipif(REAL is not None, reason=f"real EXI codec not usable: {REAL}")


@pytest.fixture(params=["fake", pytest.param("real", marks=needs_real)])
def cp(request):
    if request.param == "fake":
        return fake_codecs
    import exi

    return exi.get_codec


def _relaxed_unsupported(cp) -> bool:
    """The real codec cannot (yet) encode the eMAID fragment (element with two types in ISO-2)."""
    try:
        cp(NS_ISO2).encode_fragment({"eMAID": {"Id": "id4", "value": "DEPLGC000000042"}})
        return False
    except ValueError:
        return True


def _auth_req(challenge: bytes = b"0123456789abcdef") -> dict:
    return v2g_message(bytes.fromhex("4A8F1E2293B05C6D"), "AuthorizationReq", {"Id": "id1", "GenChallenge": challenge})


def _contract():
    p = session_pki()
    return p.key("contract-leaf"), p.cert("contract-leaf")


# ------------------------------------------------------------ raw r||s
def test_raw_der_round_trip_pads_short_integers():
    key = ec.generate_private_key(ec.SECP256R1())
    for _ in range(20):
        der = key.sign(b"x", ec.ECDSA(hashes.SHA256()))
        raw = S.der_to_raw(der)
        assert len(raw) == 64
        assert S.raw_to_der(raw) == der
        r, s = decode_dss_signature(der)
        assert int.from_bytes(raw[:32], "big") == r and int.from_bytes(raw[32:], "big") == s


@pytest.mark.parametrize("raw", [bytes(63), bytes(65), bytes(64), b"\x01" * 32 + bytes(32)])
def test_raw_to_der_rejects_bad_values(raw):
    with pytest.raises(SignatureFormatError):
        S.raw_to_der(raw)


# ------------------------------------------------------------ create / verify
def test_sign_and_verify_authorization_req(cp):
    key, cert = _contract()
    msg = S.sign_message(_auth_req(), key, codecs=cp)
    sig = msg["V2G_Message"]["Header"]["Signature"]
    si = sig["SignedInfo"]
    assert si["CanonicalizationMethod"] == {"Algorithm": S.ALG_C14N_EXI}
    assert si["SignatureMethod"] == {"Algorithm": S.ALG_ECDSA_SHA256}
    (ref,) = si["Reference"]
    assert ref["URI"] == "#id1"
    frag = cp(NS_ISO2).encode_fragment({"AuthorizationReq": {"Id": "id1", "GenChallenge": b"0123456789abcdef"}})
    assert ref["DigestValue"] == hashlib.sha256(frag).digest()
    assert len(sig["SignatureValue"]["value"]) == 64
    S.verify_message(msg, cert, codecs=cp)  # certificate DER
    S.verify_message(msg, key.public_key(), codecs=cp)  # public key
    # independent check: ECDSA over the xmldsig-fragment encoding of SignedInfo
    data = cp(NS_XMLDSIG).encode_fragment({"SignedInfo": si})
    key.public_key().verify(S.raw_to_der(sig["SignatureValue"]["value"]), data, ec.ECDSA(hashes.SHA256()))


def test_signature_survives_the_wire(cp):
    key, cert = _contract()
    msg = S.sign_message(_auth_req(), key, codecs=cp)
    codec = cp(NS_ISO2)
    S.verify_message(codec.decode(codec.encode(msg)), cert, codecs=cp)


def test_tampered_element_gives_digest_mismatch(cp):
    key, cert = _contract()
    msg = S.sign_message(_auth_req(), key, codecs=cp)
    msg["V2G_Message"]["Body"]["AuthorizationReq"]["GenChallenge"] = b"X" * 16
    with pytest.raises(DigestMismatchError) as ei:
        S.verify_message(msg, cert, codecs=cp)
    assert ei.value.uri == "#id1" and ei.value.response_code == "FAILED_SignatureError"


def test_wrong_key_gives_bad_signature(cp):
    key, _ = _contract()
    other = ec.generate_private_key(ec.SECP256R1())
    msg = S.sign_message(_auth_req(), other, codecs=cp)
    with pytest.raises(BadSignatureError):
        S.verify_message(msg, key.public_key(), codecs=cp)


def test_flipped_signature_bit_and_forged_signed_info(cp):
    key, cert = _contract()
    msg = S.sign_message(_auth_req(), key, codecs=cp)
    bad = copy.deepcopy(msg)
    v = bytearray(bad["V2G_Message"]["Header"]["Signature"]["SignatureValue"]["value"])
    v[10] ^= 1
    bad["V2G_Message"]["Header"]["Signature"]["SignatureValue"]["value"] = bytes(v)
    with pytest.raises(BadSignatureError):
        S.verify_message(bad, cert, codecs=cp)
    # attacker changes the body AND recomputes the digest: SignatureValue no longer matches
    forged = copy.deepcopy(msg)
    forged["V2G_Message"]["Body"]["AuthorizationReq"]["GenChallenge"] = b"Y" * 16
    ref = forged["V2G_Message"]["Header"]["Signature"]["SignedInfo"]["Reference"][0]
    ref["DigestValue"] = S.digest_fragment("AuthorizationReq", forged["V2G_Message"]["Body"]["AuthorizationReq"], codecs=cp)
    with pytest.raises(BadSignatureError):
        S.verify_message(forged, cert, codecs=cp)


def test_unsigned_message_is_rejected(cp):
    _, cert = _contract()
    with pytest.raises(MissingReferenceError):
        S.verify_message(_auth_req(), cert, codecs=cp)


def test_missing_and_unexpected_references(cp):
    key, cert = _contract()
    msg = S.sign_message(_auth_req(), key, codecs=cp)
    msg["V2G_Message"]["Body"]["AuthorizationReq"]["Id"] = "other"
    with pytest.raises(UnexpectedReferenceError):
        S.verify_message(msg, cert, codecs=cp)
    el = {"Id": "a", "GenChallenge": bytes(16)}
    sig = S.create_signature([("AuthorizationReq", el)], key, codecs=cp)
    with pytest.raises(MissingReferenceError):
        S.verify_signature(sig, [("AuthorizationReq", el), ("MeteringReceiptReq", {"Id": "b"})], cert, codecs=cp)


def test_element_without_id_cannot_be_signed(cp):
    key, _ = _contract()
    with pytest.raises(MissingReferenceError):
        S.create_signature([("AuthorizationReq", {"GenChallenge": bytes(16)})], key, codecs=cp)


@pytest.mark.parametrize("mutate", [
    lambda s: s.__setitem__("KeyInfo", {"KeyName": "x"}),
    lambda s: s["SignedInfo"].__setitem__("Id", "si"),
    lambda s: s["SignedInfo"]["SignatureMethod"].__setitem__("HMACOutputLength", 128),
    lambda s: s["SignedInfo"]["SignatureMethod"].__setitem__("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
    lambda s: s["SignedInfo"]["CanonicalizationMethod"].__setitem__("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#"),
    lambda s: s["SignedInfo"]["Reference"][0].__setitem__("Type", "x"),
    lambda s: s["SignedInfo"]["Reference"][0]["Transforms"]["Transform"].append({"Algorithm": S.ALG_C14N_EXI}),
    lambda s: s["SignedInfo"]["Reference"][0].__setitem__("DigestMethod", {"Algorithm": "http://www.w3.org/2000/09/xmldsig#sha1"}),
    lambda s: s["SignedInfo"]["Reference"][0].__setitem__("URI", "http://example.com/#id1"),
    lambda s: s["SignedInfo"]["Reference"][0].__setitem__("DigestValue", bytes(20)),
    lambda s: s["SignedInfo"]["Reference"].append(dict(s["SignedInfo"]["Reference"][0])),
    lambda s: s["SignatureValue"].__setitem__("Id", "sv"),
    lambda s: s["SignatureValue"].__setitem__("value", bytes(70)),
], ids=["KeyInfo", "SignedInfoId", "HMAC", "rsa", "c14n", "RefType", "2transforms", "sha1", "externalURI",
        "shortDigest", "dupRef", "SigValueId", "longSigValue"])
def test_forbidden_or_malformed_signature_content(cp, mutate):
    key, cert = _contract()
    msg = S.sign_message(_auth_req(), key, codecs=cp)
    mutate(msg["V2G_Message"]["Header"]["Signature"])
    with pytest.raises(SignatureFormatError):
        S.verify_message(msg, cert, codecs=cp)


def test_at_most_four_references():
    with pytest.raises(SignatureFormatError):
        S.build_signed_info([(f"id{i}", bytes(32)) for i in range(5)])
    with pytest.raises(MissingReferenceError):
        S.build_signed_info([])


def test_non_p256_key_refused():
    with pytest.raises(SignatureError):
        S.create_signature([("AuthorizationReq", {"Id": "a"})], ec.generate_private_key(ec.SECP384R1()), codecs=fake_codecs)


def test_sales_tariff_signature(cp):
    p = session_pki()
    body = {"ResponseCode": "OK", "EVSEProcessing": "Finished",
            "SAScheduleList": M.sa_schedule_list(11000, sales_tariff=True),
            "AC_EVSEChargeParameter": {"AC_EVSEStatus": M.ac_evse_status(),
                                       "EVSENominalVoltage": M.physical(230, "V"), "EVSEMaxCurrent": M.physical(16, "A")}}
    msg = v2g_message(bytes(8), "ChargeParameterDiscoveryRes", body)
    S.sign_message(msg, p.key("mo-sub2"), codecs=cp)
    (ref,) = msg["V2G_Message"]["Header"]["Signature"]["SignedInfo"]["Reference"]
    assert ref["URI"] == "#tariff1"
    S.verify_message(msg, p.cert("mo-sub2"), codecs=cp)
    tariff = msg["V2G_Message"]["Body"]["ChargeParameterDiscoveryRes"]["SAScheduleList"]["SAScheduleTuple"][0]["SalesTariff"]
    tariff["SalesTariffEntry"][0]["EPriceLevel"] = 2
    with pytest.raises(DigestMismatchError):
        S.verify_message(msg, p.cert("mo-sub2"), codecs=cp)


def test_certificate_installation_res_signs_four_elements(cp):
    if _relaxed_unsupported(cp):
        pytest.xfail("exi codec: eMAID fragment (two element types) not supported yet")
    p = session_pki()
    body = {"ResponseCode": "OK",
            "SAProvisioningCertificateChain": cert_chain(p.cert("cps-leaf"), [p.cert("cps-sub2")]),
            "ContractSignatureCertChain": cert_chain(p.cert("contract-leaf"), [p.cert("mo-sub2")], "id1"),
            "ContractSignatureEncryptedPrivateKey": {"Id": "id2", "value": bytes(range(48))},
            "DHpublickey": {"Id": "id3", "value": b"\x04" + bytes(64)},
            "eMAID": {"Id": "id4", "value": p.emaid}}
    msg = S.sign_message(v2g_message(bytes(8), "CertificateInstallationRes", body), p.key("cps-leaf"), codecs=cp)
    refs = msg["V2G_Message"]["Header"]["Signature"]["SignedInfo"]["Reference"]
    assert [r["URI"] for r in refs] == ["#id1", "#id2", "#id3", "#id4"]
    S.verify_message(msg, p.cert("cps-leaf"), codecs=cp)
    for name in ("ContractSignatureEncryptedPrivateKey", "DHpublickey"):
        bad = copy.deepcopy(msg)
        v = bytearray(bad["V2G_Message"]["Body"]["CertificateInstallationRes"][name]["value"])
        v[5] ^= 0xFF
        bad["V2G_Message"]["Body"]["CertificateInstallationRes"][name]["value"] = bytes(v)
        with pytest.raises(DigestMismatchError):
            S.verify_message(bad, p.cert("cps-leaf"), codecs=cp)
    drop = copy.deepcopy(msg)
    del drop["V2G_Message"]["Header"]["Signature"]["SignedInfo"]["Reference"][3]
    with pytest.raises(MissingReferenceError):  # every signed element must be covered (EVerest checked only [0])
        S.verify_message(drop, p.cert("cps-leaf"), codecs=cp)


# ------------------------------------------------------------ real-world vectors (need the real codec)
@needs_real
def test_openv2g_authorization_fragment_digest_and_signed_info(shared_dir):
    import exi

    ex = json.loads((shared_dir / "vectors/field/openv2g_examples.json").read_text())
    frag = next(e for e in ex if e["protocol"] == "iso15118-2-fragment" and e["message"] == "AuthorizationReq")
    si = next(e for e in ex if e["protocol"] == "xmldsig-fragment")
    element = exi.get_codec(NS_ISO2).decode_fragment(bytes.fromhex(frag["exi_hex"]))["AuthorizationReq"]
    digest = S.digest_fragment("AuthorizationReq", element)
    assert digest.hex() == "d1b5e03d0065bee56b317984453051eb54ca18fc0e0916174f8b3c77a98f4aa9"
    built = S.build_signed_info([("ID1", digest)])
    assert exi.get_codec(NS_XMLDSIG).encode_fragment({"SignedInfo": built}).hex() == si["exi_hex"]


@needs_real
def test_rise_v2g_certificate_installation_digests(shared_dir):
    import exi

    data = json.loads((shared_dir / "vectors/field/rise_v2g_signature_testdata.json").read_text())
    good = [e for e in data if e["namespace_variant"] == "MsgBody"]
    si_entry = next(e for e in good if e["protocol"] == "xmldsig-fragment")
    si = exi.get_codec(NS_XMLDSIG).decode_fragment(bytes.fromhex(si_entry["exi_hex"]))["SignedInfo"]
    by_uri = {r["URI"]: r["DigestValue"] for r in si["Reference"]}
    checked = 0
    for e in good:
        if e["protocol"] != "iso15118-2-fragment":
            continue
        try:
            (name, element), = exi.get_codec(NS_ISO2).decode_fragment(bytes.fromhex(e["exi_hex"])).items()
        except ValueError:
            continue  # eMAID: relaxed fragment grammar not supported by the codec yet
        digest = S.digest_fragment(name, element)
        assert digest.hex() == e["sha256"]
        assert by_uri["#" + element["Id"]] == digest
        checked += 1
    assert checked >= 3
    rebuilt = S.build_signed_info([(r["URI"][1:], r["DigestValue"]) for r in si["Reference"]])
    assert exi.get_codec(NS_XMLDSIG).encode_fragment({"SignedInfo": rebuilt}).hex() == si_entry["exi_hex"]
