"""ISO 15118-20 message signatures: ECDSA secp521r1/SHA-512 (the default) and Ed448, over the
CommonMessages fragment grammar, checked independently of our verifier (digests recomputed from
the EXI fragment bytes, the signature value checked with ``cryptography`` directly)."""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from _pc_fixtures import real_codec_status
from plugcharge.pnc import signatures as S
from plugcharge.core.errors import (
    BadSignatureError, DigestMismatchError, MissingReferenceError, SignatureError, SignatureFormatError,
)

REAL = real_codec_status()
pytestmark = pytest.mark.skipif(REAL is not None, reason=f"real EXI codec not usable: {REAL}")
CM = S.NS_ISO20_CM
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
HEADER = {"SessionID": bytes(range(8)), "TimeStamp": 1764547200}


@pytest.fixture(scope="module", params=["secp521r1", "ed448"])
def pki20(request):
    from pki.issue import issue_test_pki

    return issue_test_pki(20, seed=2020, now=NOW, algorithm=None if request.param == "secp521r1" else "ed448")


def _chain(p, leaf, sub2, sub1):
    return {"Certificate": p.cert(leaf), "SubCertificates": {"Certificate": [p.cert(sub2), p.cert(sub1)]}}


def messages(p) -> dict[str, tuple[dict, str]]:
    """-20 root message → (message, role of the signing key)."""
    return {
        "AuthorizationReq": ({"AuthorizationReq": {
            "Header": dict(HEADER), "SelectedAuthorizationService": "PnC",
            "PnC_AReqAuthorizationMode": {"Id": "id1", "GenChallenge": os.urandom(16),
                                          "ContractCertificateChain": _chain(p, "contract-leaf", "mo-sub2", "mo-sub1")}}},
            "contract-leaf"),
        "CertificateInstallationReq": ({"CertificateInstallationReq": {
            "Header": dict(HEADER),
            "OEMProvisioningCertificateChain": {"Id": "id1", **_chain(p, "oem-provisioning-leaf", "oem-sub2", "oem-sub1")},
            "ListOfRootCertificateIDs": {"RootCertificateID": [{"X509IssuerName": "CN=V2GRootCA", "X509SerialNumber": 1}]},
            "MaximumContractCertificateChains": 1}}, "oem-provisioning-leaf"),
        "CertificateInstallationRes": ({"CertificateInstallationRes": {
            "Header": dict(HEADER), "ResponseCode": "OK", "EVSEProcessing": "Finished",
            "CPSCertificateChain": _chain(p, "cps-leaf", "cps-sub2", "cps-sub1"),
            "SignedInstallationData": {"Id": "id2", "ContractCertificateChain": _chain(p, "contract-leaf", "mo-sub2", "mo-sub1"),
                                       "ECDHCurve": "SECP521", "DHPublicKey": b"\x04" + os.urandom(132),
                                       "SECP521_EncryptedPrivateKey": os.urandom(94)},
            "RemainingContractCertificateChains": 0}}, "cps-leaf"),
        "MeteringConfirmationReq": ({"MeteringConfirmationReq": {
            "Header": dict(HEADER),
            "SignedMeteringData": {"Id": "id3", "SessionID": HEADER["SessionID"],
                                   "MeterInfo": {"MeterID": "METER-1", "ChargedEnergyReadingWh": 12345},
                                   "Scheduled_SMDTControlMode": {"SelectedScheduleTupleID": 1}}}}, "contract-leaf"),
    }


def _codec(ns):
    import exi

    return exi.get_codec(ns)


@pytest.mark.parametrize("name", sorted(set(S.SIGNED_ELEMENTS_20) - {"ScheduleExchangeRes"}))
def test_signed_message_is_what_the_profile_says_and_verifies_independently(pki20, name):
    msg, role = messages(pki20)[name]
    S.sign_message(msg, pki20.key(role))
    sig = msg[name]["Header"]["Signature"]
    si = sig["SignedInfo"]
    suite = S.ISO20_ED448 if pki20.algorithm == "ed448" else S.ISO20_ECDSA
    assert si["SignatureMethod"] == {"Algorithm": suite.signature_uri}
    [ref] = si["Reference"]
    [child] = S.SIGNED_ELEMENTS_20[name]
    assert ref["URI"] == "#" + msg[name][child]["Id"]
    assert ref["DigestMethod"] == {"Algorithm": "http://www.w3.org/2001/04/xmlenc#sha512"}
    # the digest, recomputed here from the CommonMessages fragment bytes
    fragment = _codec(CM).encode_fragment({child: msg[name][child]})
    assert ref["DigestValue"] == hashlib.sha512(fragment).digest()
    # the value over the xmldsig-only fragment of SignedInfo, checked with cryptography directly
    signed_info = _codec(S.NS_XMLDSIG).encode_fragment({"SignedInfo": si})
    raw = sig["SignatureValue"]["value"]
    pub = pki20.key(role).public_key()
    if pki20.algorithm == "ed448":
        assert len(raw) == 114
        pub.verify(raw, signed_info)
    else:
        assert len(raw) == 132  # r||s, 66 bytes each [V2G20-1000]
        der = encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big"))
        pub.verify(der, signed_info, ec.ECDSA(hashes.SHA512()))
    # the whole message travels as a -20 document and still verifies, against the certificate
    wire = _codec(CM).decode(_codec(CM).encode(msg))
    assert wire == msg
    S.verify_message(wire, pki20.cert(role))


def test_tampering_wrong_key_and_wrong_suite_are_rejected(pki20):
    msg, role = messages(pki20)["AuthorizationReq"]
    S.sign_message(msg, pki20.key(role))
    bad = copy.deepcopy(msg)
    bad["AuthorizationReq"]["PnC_AReqAuthorizationMode"]["GenChallenge"] = bytes(16)
    with pytest.raises(DigestMismatchError):
        S.verify_message(bad, pki20.cert(role))
    with pytest.raises((BadSignatureError, SignatureError)):
        S.verify_message(msg, pki20.cert("oem-provisioning-leaf"))  # same suite, another key
    flipped = copy.deepcopy(msg)
    value = bytearray(flipped["AuthorizationReq"]["Header"]["Signature"]["SignatureValue"]["value"])
    value[5] ^= 0x01
    flipped["AuthorizationReq"]["Header"]["Signature"]["SignatureValue"]["value"] = bytes(value)
    with pytest.raises(BadSignatureError):
        S.verify_message(flipped, pki20.cert(role))
    # a verifier that allows only ISO-2's suite refuses the -20 algorithms (no algorithm agility)
    with pytest.raises(SignatureFormatError, match="ecdsa-sha256"):
        S.verify_message(msg, pki20.cert(role), suite=S.ISO2)
    # and the other -20 suite alone refuses this one
    other = S.ISO20_ECDSA if pki20.algorithm == "ed448" else S.ISO20_ED448
    with pytest.raises(SignatureFormatError):
        S.verify_message(msg, pki20.cert(role), suite=other)
    # unsigned -20 message
    unsigned, _ = messages(pki20)["CertificateInstallationReq"]
    with pytest.raises(MissingReferenceError):
        S.verify_message(unsigned, pki20.cert("oem-provisioning-leaf"))


def test_key_and_suite_must_agree(pki20):
    from pki.issue import issue_test_pki

    p2 = issue_test_pki(2, seed=2, now=NOW)
    msg, role = messages(pki20)["AuthorizationReq"]
    with pytest.raises(SignatureError, match="ISO 15118-20"):
        S.sign_message(msg, p2.key("contract-leaf"))  # a P-256 key does not sign -20 messages
    with pytest.raises(SignatureError):
        S.create_signature([("PnC_AReqAuthorizationMode", msg["AuthorizationReq"]["PnC_AReqAuthorizationMode"])],
                           p2.key("contract-leaf"), suite=S.ISO20_ECDSA)
    with pytest.raises(SignatureError, match="secp256r1"):
        S.create_signature([("PnC_AReqAuthorizationMode", msg["AuthorizationReq"]["PnC_AReqAuthorizationMode"])],
                           pki20.key(role))  # default suite is ISO-2
    assert S.suite_for_key(pki20.key(role), iso=20) is (S.ISO20_ED448 if pki20.algorithm == "ed448" else S.ISO20_ECDSA)
    assert S.suite_for_key(pki20.cert(role), iso=20) is S.suite_for_key(pki20.key(role), iso=20)
    with pytest.raises(SignatureError):
        S.suite_for_key(pki20.key(role), iso=2)


def test_libcbv2g_vector_signed_info_has_our_suite(shared_dir):
    """The ISO-20 AuthorizationReq vector (libcbv2g, EXIficient agrees) carries exactly the URIs and
    sizes of ISO20_ECDSA; its values are filler, so the digest check is where it must fail."""
    path = shared_dir / "vectors" / "iso15118_20_AuthorizationReq_PnC.json"
    if not path.exists():
        pytest.skip("../shared/vectors absent")
    vec = json.loads(path.read_text())
    msg = _codec(vec["namespace"]).decode(bytes.fromhex(vec["exi_hex"]))
    si = msg["AuthorizationReq"]["Header"]["Signature"]["SignedInfo"]
    assert si["SignatureMethod"]["Algorithm"] == S.ISO20_ECDSA.signature_uri
    assert si["Reference"][0]["DigestMethod"]["Algorithm"] == S.ISO20_ECDSA.digest_uri
    assert len(si["Reference"][0]["DigestValue"]) == 64
    assert len(msg["AuthorizationReq"]["Header"]["Signature"]["SignatureValue"]["value"]) == 132
    key = ec.generate_private_key(ec.SECP521R1()).public_key()
    with pytest.raises(DigestMismatchError):
        S.verify_message(msg, key)


def _price_level(ident, sid):
    return {"Id": ident, "TimeAnchor": 1764547200, "PriceScheduleID": sid, "NumberOfPriceLevels": 2,
            "PriceLevelScheduleEntries": {"PriceLevelScheduleEntry": [{"Duration": 3600, "PriceLevel": 1},
                                                                      {"Duration": 7200, "PriceLevel": 2}]}}


def test_schedule_exchange_res_signs_every_price_schedule(pki20):
    power = {"TimeAnchor": 1764547200,
             "PowerScheduleEntries": {"PowerScheduleEntry": [{"Duration": 3600, "Power": {"Exponent": 3, "Value": 50}}]}}
    msg = {"ScheduleExchangeRes": {"Header": dict(HEADER), "ResponseCode": "OK", "EVSEProcessing": "Finished",
                                   "Scheduled_SEResControlMode": {"ScheduleTuple": [
                                       {"ScheduleTupleID": 1, "ChargingSchedule": {"PowerSchedule": power,
                                                                                   "PriceLevelSchedule": _price_level("p1", 1)}},
                                       {"ScheduleTupleID": 2, "ChargingSchedule": {"PowerSchedule": power,
                                                                                   "PriceLevelSchedule": _price_level("p2", 2)},
                                        "DischargingSchedule": {"PowerSchedule": power,
                                                                "PriceLevelSchedule": _price_level("p3", 3)}}]}}}
    signer = "mo-sub2"  # whoever signs the tariffs: the key is the caller's choice
    S.sign_message(msg, pki20.key(signer))
    refs = msg["ScheduleExchangeRes"]["Header"]["Signature"]["SignedInfo"]["Reference"]
    assert [r["URI"] for r in refs] == ["#p1", "#p2", "#p3"]
    wire = _codec(CM).decode(_codec(CM).encode(msg))
    S.verify_message(wire, pki20.cert(signer))
    # the discharging schedule's prices are covered too
    wire["ScheduleExchangeRes"]["Scheduled_SEResControlMode"]["ScheduleTuple"][1]["DischargingSchedule"][
        "PriceLevelSchedule"]["PriceLevelScheduleEntries"]["PriceLevelScheduleEntry"][0]["PriceLevel"] = 0
    with pytest.raises(DigestMismatchError, match="#p3"):
        S.verify_message(wire, pki20.cert(signer))
    # a schedule added after signing has no Reference
    wire = _codec(CM).decode(_codec(CM).encode(msg))
    wire["ScheduleExchangeRes"]["Scheduled_SEResControlMode"]["ScheduleTuple"][0]["DischargingSchedule"] = {
        "PowerSchedule": power, "PriceLevelSchedule": _price_level("p4", 4)}
    with pytest.raises(MissingReferenceError):
        S.verify_message(wire, pki20.cert(signer))
