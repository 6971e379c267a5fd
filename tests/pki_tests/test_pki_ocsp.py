"""OCSP: request building, response checking (good/revoked/unknown/stale/forged/delegated), OCPP data."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from _pki_fixtures import NOW, VARIANTS, cached_pki, pki2  # noqa: F401 (fixture)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from pki._broken import conformant_spec
from pki._builder import KeyFactory, build_certificate, make_name
from pki.errors import CertificateRevokedError, OCSPError, OCSPProblem, Reason
from pki.ocsp import CertStatus, build_ocsp_request, cert_id, check_ocsp_response, ocpp_request_data
from pki.store import TrustStore
from pki.verify import verify_chain

DAY = timedelta(days=1)


def _hash(key):
    if isinstance(key, ed448.Ed448PrivateKey):
        return None
    return {"secp256r1": hashes.SHA256, "secp521r1": hashes.SHA512}[key.curve.name]()


def _c(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _response(pki, *, status=ocsp.OCSPCertStatus.GOOD, signer_key=None, responder_cert=None, this=None,
              nxt="default", role="contract-leaf", issuer_role="mo-sub2", extra_certs=(), nonce=None,
              by_name=False) -> bytes:
    cert, issuer = _c(pki.cert(role)), _c(pki.cert(issuer_role))
    this = NOW - DAY if this is None else this
    nxt = NOW + DAY if nxt == "default" else nxt
    rev = dict(revocation_time=NOW - 2 * DAY, revocation_reason=x509.ReasonFlags.key_compromise) \
        if status is ocsp.OCSPCertStatus.REVOKED else dict(revocation_time=None, revocation_reason=None)
    b = ocsp.OCSPResponseBuilder().add_response(cert=cert, issuer=issuer, algorithm=hashes.SHA256(),
                                                cert_status=status, this_update=this, next_update=nxt, **rev)
    rc = responder_cert if responder_cert is not None else issuer
    b = b.responder_id(ocsp.OCSPResponderEncoding.NAME if by_name else ocsp.OCSPResponderEncoding.HASH, rc)
    if extra_certs:
        b = b.certificates(list(extra_certs))
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    key = signer_key if signer_key is not None else pki.key(issuer_role)
    return b.sign(key, _hash(key)).public_bytes(serialization.Encoding.DER)


def _delegate(pki, *, eku=True, issuer_role="mo-sub2", signer_role=None, not_after=None):
    """A responder certificate issued by ``issuer_role`` (or signed by ``signer_role``'s key)."""
    fac = KeyFactory(5)
    key = fac.key("ocsp-responder", pki.algorithm)
    spec = conformant_spec(pki, "cps-leaf")
    spec.subject = make_name("OCSPResponder", "MO")
    spec.issuer = _c(pki.cert(issuer_role)).subject
    spec.public_key = key.public_key()
    spec.signing_key = pki.key(signer_role or issuer_role)
    spec.aki_key = None
    if not_after is not None:
        spec.not_after = not_after
    if eku:
        spec.extra = ((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),)
    return _c(build_certificate(spec)), key


def _check(pki, resp, **kw):
    return check_ocsp_response(resp, pki.cert("contract-leaf"), pki.cert("mo-sub2"), at=NOW, **kw)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def test_good_revoked_unknown(variant):
    pki = cached_pki(*variant)
    r = _check(pki, _response(pki))
    assert r.status is CertStatus.GOOD and r.good and r.responder == "issuer"
    assert r.this_update == NOW - DAY and r.next_update == NOW + DAY
    assert r.cert_id.serial_number == _c(pki.cert("contract-leaf")).serial_number
    r.raise_for_status()

    r = _check(pki, _response(pki, status=ocsp.OCSPCertStatus.REVOKED))
    assert r.status is CertStatus.REVOKED and r.revocation_reason == "key_compromise"
    with pytest.raises(CertificateRevokedError) as ei:
        r.raise_for_status(depth=0, subject="CN=x")
    assert ei.value.reason is Reason.REVOKED and ei.value.revocation_time == NOW - 2 * DAY
    assert ei.value.response_code == "FAILED_CertificateRevoked"

    r = _check(pki, _response(pki, status=ocsp.OCSPCertStatus.UNKNOWN))
    assert r.status is CertStatus.UNKNOWN
    with pytest.raises(OCSPError) as ei2:
        r.raise_for_status()
    assert ei2.value.problem is OCSPProblem.UNKNOWN_STATUS
    r.raise_for_status(allow_unknown=True)


def test_responder_by_name(pki2):
    assert _check(pki2, _response(pki2, by_name=True)).good


def test_stale_and_not_yet_valid(pki2):
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, this=NOW - 3 * DAY, nxt=NOW - DAY))
    assert ei.value.problem is OCSPProblem.STALE
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, this=NOW + DAY, nxt=NOW + 2 * DAY))
    assert ei.value.problem is OCSPProblem.NOT_YET_VALID
    # a small clock skew allowance
    assert _check(pki2, _response(pki2, this=NOW + timedelta(seconds=30), nxt=NOW + DAY),
                  clock_skew=timedelta(minutes=1)).good
    # no nextUpdate: only bounded by max_age when given
    resp = _response(pki2, this=NOW - 10 * DAY, nxt=None)
    assert _check(pki2, resp).next_update is None
    with pytest.raises(OCSPError) as ei:
        _check(pki2, resp, max_age=DAY)
    assert ei.value.problem is OCSPProblem.STALE


def test_forged_responses(pki2):
    fac = KeyFactory(11)
    forger = fac.key("forger", "secp256r1")
    # claims to come from the issuer (its name) but signed with another key
    spec = conformant_spec(pki2, "mo-sub2")
    spec.public_key, spec.signing_key, spec.aki_key = forger.public_key(), forger, None
    look_alike = _c(build_certificate(spec))
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, signer_key=forger, responder_cert=look_alike, by_name=True))
    assert ei.value.problem is OCSPProblem.BAD_SIGNATURE
    # ... and with the look-alike certificate attached as a "delegate"
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, signer_key=forger, responder_cert=look_alike, extra_certs=[look_alike]))
    assert ei.value.problem is OCSPProblem.UNAUTHORIZED_RESPONDER
    # signed by an unrelated CA (the CPO Sub-CA) that names itself as responder
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, signer_key=pki2.key("cpo-sub2"), responder_cert=_c(pki2.cert("cpo-sub2"))))
    assert ei.value.problem is OCSPProblem.UNAUTHORIZED_RESPONDER
    # tampered byte inside the signed data
    good = bytearray(_response(pki2))
    idx = bytes(good).find(b"\x18\x0f")  # a GeneralizedTime in tbsResponseData
    good[idx + 5] ^= 0x01
    with pytest.raises(OCSPError) as ei:
        _check(pki2, bytes(good))
    assert ei.value.problem in (OCSPProblem.BAD_SIGNATURE, OCSPProblem.MALFORMED)


def test_delegated_responder(pki2):
    rc, key = _delegate(pki2)
    assert _check(pki2, _response(pki2, signer_key=key, responder_cert=rc, extra_certs=[rc])).responder == "delegated"
    # without id-kp-OCSPSigning
    rc2, key2 = _delegate(pki2, eku=False)
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, signer_key=key2, responder_cert=rc2, extra_certs=[rc2]))
    assert ei.value.problem is OCSPProblem.UNAUTHORIZED_RESPONDER
    # claims the issuer's name but is signed by another CA's key
    rc3, key3 = _delegate(pki2, signer_role="cpo-sub2")
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, signer_key=key3, responder_cert=rc3, extra_certs=[rc3]))
    assert ei.value.problem is OCSPProblem.UNAUTHORIZED_RESPONDER
    # expired responder certificate
    rc4, key4 = _delegate(pki2, not_after=NOW - DAY)
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, signer_key=key4, responder_cert=rc4, extra_certs=[rc4]))
    assert ei.value.problem is OCSPProblem.STALE
    # responder key not included at all
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, signer_key=key, responder_cert=rc))
    assert ei.value.problem is OCSPProblem.UNAUTHORIZED_RESPONDER


def test_cert_id_mismatch_and_bad_inputs(pki2):
    other = _response(pki2, role="mo-sub2", issuer_role="mo-sub1")
    with pytest.raises(OCSPError) as ei:
        check_ocsp_response(other, pki2.cert("contract-leaf"), pki2.cert("mo-sub1"), at=NOW)
    assert ei.value.problem is OCSPProblem.BAD_REQUEST  # mo-sub1 did not issue the leaf
    # a response signed by mo-sub2 about a different certificate (secc leaf re-used as "cert")
    resp_for_other = _response(pki2)
    new_leaf = pki2.issue_contract("DEPLGC000000029").der
    with pytest.raises(OCSPError) as ei:
        check_ocsp_response(resp_for_other, new_leaf, pki2.cert("mo-sub2"), at=NOW)
    assert ei.value.problem is OCSPProblem.CERT_ID_MISMATCH
    for junk in (b"", b"\x30\x03\x0a\x01\x00", b"garbage"):
        with pytest.raises(OCSPError) as ei:
            _check(pki2, junk)
        assert ei.value.problem in (OCSPProblem.MALFORMED, OCSPProblem.UNSUCCESSFUL)
    unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    with pytest.raises(OCSPError) as ei:
        _check(pki2, unsuccessful.public_bytes(serialization.Encoding.DER))
    assert ei.value.problem is OCSPProblem.UNSUCCESSFUL
    with pytest.raises(OCSPError):
        cert_id(b"junk", pki2.cert("mo-sub2"))
    with pytest.raises(OCSPError):
        cert_id(pki2.cert("contract-leaf"), pki2.cert("mo-sub2"), hash_algorithm="md5")


def test_nonce(pki2):
    assert _check(pki2, _response(pki2, nonce=b"0123456789abcdef"), nonce=b"0123456789abcdef").good
    with pytest.raises(OCSPError) as ei:
        _check(pki2, _response(pki2, nonce=b"x" * 16), nonce=b"0123456789abcdef")
    assert ei.value.problem is OCSPProblem.NONCE_MISMATCH
    with pytest.raises(OCSPError):
        _check(pki2, _response(pki2), nonce=b"0123456789abcdef")


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def test_request_matches_cryptography(variant):
    pki = cached_pki(*variant)
    der = build_ocsp_request(pki.cert("contract-leaf"), pki.cert("mo-sub2"), nonce=b"n" * 16)
    req = ocsp.load_der_ocsp_request(der)
    cid = cert_id(pki.cert("contract-leaf"), pki.cert("mo-sub2"))
    assert req.issuer_name_hash == cid.issuer_name_hash
    assert req.issuer_key_hash == cid.issuer_key_hash
    assert req.serial_number == cid.serial_number
    assert req.hash_algorithm.name == "sha256"
    assert req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16
    # issuerNameHash is the hash of the issuer's DER subject
    assert cid.issuer_name_hash == hashlib.sha256(_c(pki.cert("mo-sub2")).subject.public_bytes()).digest()
    with pytest.raises(OCSPError):
        build_ocsp_request(pki.cert("contract-leaf"), pki.cert("mo-root"))


def test_ocpp_request_data(pki2):
    c = pki2.chain("iso2-contract")
    v = verify_chain(c.leaf, c.intermediates, store=TrustStore(pki2.store_roots()), profile="iso2-contract", at=NOW)
    data = ocpp_request_data(v)
    assert len(data) == 3  # leaf, Sub-CA 2, Sub-CA 1 (root has no issuer above it)
    assert ocpp_request_data(list(v.certificates)) == data
    for entry, der, issuer in zip(data, v.certificates, v.certificates[1:]):
        cert, iss = _c(der), _c(issuer)
        assert set(entry) == {"hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber", "responderURL"}
        assert entry["hashAlgorithm"] == "SHA256"
        assert entry["issuerNameHash"] == hashlib.sha256(iss.subject.public_bytes()).hexdigest()
        req = ocsp.OCSPRequestBuilder().add_certificate(cert, iss, hashes.SHA256()).build()
        assert entry["issuerKeyHash"] == req.issuer_key_hash.hex()
        assert entry["serialNumber"] == format(cert.serial_number, "x") and not entry["serialNumber"].startswith("0")
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        assert entry["responderURL"] == aia[0].access_location.value
        assert len(entry["issuerNameHash"]) <= 128 and len(entry["serialNumber"]) <= 40
    assert ocpp_request_data(v, hash_algorithm="sha512")[0]["hashAlgorithm"] == "SHA512"
    with pytest.raises(OCSPError):
        ocpp_request_data(v, hash_algorithm="sha1")
    # the root carries no AIA: skipped by default, "" on request
    assert len(ocpp_request_data(v, include_root=True)) == 3
    assert ocpp_request_data(v, include_root=True, skip_without_url=False)[-1]["responderURL"] == ""
