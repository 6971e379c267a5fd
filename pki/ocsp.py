"""OCSP for the ISO 15118 PKI: requests, response checking, OCPP 2.0.1 ``OCSPRequestData``.

No sockets and no clock: the caller transports the bytes and passes the time ``at``.

* :func:`cert_id` / :func:`build_ocsp_request` — the RFC 6960 CertID (hash of the issuer's DER
  name and of its public key BIT STRING, and the serial) and a DER ``OCSPRequest``.
* :func:`check_ocsp_response` — verifies a DER ``OCSPResponse`` for one certificate: status
  ``successful``, signed by the issuer itself or by a delegated responder certificate that the
  issuer issued with ``id-kp-OCSPSigning`` (RFC 6960 §4.2.2.2), a SingleResponse whose CertID
  matches, ``thisUpdate <= at <= nextUpdate``, optional nonce; returns :class:`OCSPResult`
  (good / revoked / unknown). :meth:`OCSPResult.raise_for_status` turns *revoked* into
  :class:`pki.CertificateRevokedError` (``Reason.REVOKED``). Unusable responses raise
  :class:`pki.OCSPError` with an :class:`pki.OCSPProblem`.
* :func:`ocpp_request_data` — the ``OCSPRequestData`` entries a charger sends in OCPP 2.0.1
  ``Authorize`` / ``GetCertificateStatus`` for the contract chain.
"""
from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional, Sequence, Tuple, Union, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509 import ocsp as x_ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from ._certinfo import CertParseError, ParsedCert, parse_certificate
from .errors import CertificateRevokedError, OCSPError, OCSPProblem, Reason
from .store import load_public_key

__all__ = ["CertStatus", "CertID", "OCSPResult", "cert_id", "build_ocsp_request", "check_ocsp_response",
           "ocpp_request_data"]

_HASHES = {"sha1": (hashlib.sha1, hashes.SHA1), "sha256": (hashlib.sha256, hashes.SHA256),
           "sha384": (hashlib.sha384, hashes.SHA384), "sha512": (hashlib.sha512, hashes.SHA512)}
_OCPP_HASH = {"sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}


class CertStatus(enum.Enum):
    """The three RFC 6960 certificate statuses."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CertID:
    """RFC 6960 CertID of one certificate."""

    hash_algorithm: str  #: ``"sha1"``, ``"sha256"``, ``"sha384"`` or ``"sha512"``
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int


@dataclass(frozen=True)
class OCSPResult:
    """Outcome of :func:`check_ocsp_response` for one certificate (the response was authentic and fresh)."""

    status: CertStatus
    cert_id: CertID
    this_update: datetime
    next_update: Optional[datetime]
    produced_at: datetime
    responder: str  #: ``"issuer"`` or ``"delegated"``
    revocation_time: Optional[datetime] = None
    revocation_reason: Optional[str] = None

    @property
    def good(self) -> bool:
        """True for status *good*."""
        return self.status is CertStatus.GOOD

    def raise_for_status(self, *, depth: int = 0, subject: str = "", certificate: Optional[bytes] = None,
                         allow_unknown: bool = False) -> None:
        """Raise :class:`pki.CertificateRevokedError` when revoked; :class:`pki.OCSPError`
        (``UNKNOWN_STATUS``) for *unknown* unless ``allow_unknown``."""
        if self.status is CertStatus.REVOKED:
            when = self.revocation_time.isoformat() if self.revocation_time else "unknown time"
            raise CertificateRevokedError(
                Reason.REVOKED, f"revoked at {when}" + (f" ({self.revocation_reason})" if self.revocation_reason else ""),
                depth=depth, subject=subject, certificate=certificate, revocation_time=self.revocation_time,
                revocation_reason=self.revocation_reason)
        if self.status is CertStatus.UNKNOWN and not allow_unknown:
            raise OCSPError(OCSPProblem.UNKNOWN_STATUS, "responder does not know the certificate")


def _parse(der: bytes, what: str) -> ParsedCert:
    if isinstance(der, ParsedCert):
        return der
    if not isinstance(der, (bytes, bytearray)):
        raise OCSPError(OCSPProblem.BAD_REQUEST, f"{what} must be DER bytes")
    try:
        return parse_certificate(bytes(der))
    except CertParseError as exc:
        raise OCSPError(OCSPProblem.BAD_REQUEST, f"{what} is not a DER certificate: {exc}") from None


def _cert_id(pc: ParsedCert, issuer: ParsedCert, hash_algorithm: str) -> CertID:
    try:
        h = _HASHES[hash_algorithm][0]
    except KeyError:
        raise OCSPError(OCSPProblem.BAD_REQUEST, f"unsupported hash algorithm {hash_algorithm!r}") from None
    if pc.issuer != issuer.subject:
        raise OCSPError(OCSPProblem.BAD_REQUEST, f"{issuer.subject_str} is not the issuer of {pc.subject_str}")
    # issuerNameHash: hash of the issuer's DER-encoded name; issuerKeyHash: hash of the BIT STRING value
    # (excluding tag, length and unused-bits octet) of the issuer's public key [RFC 6960 §4.1.1]
    return CertID(hash_algorithm, h(issuer.subject).digest(), h(issuer.key_bits).digest(),
                  int.from_bytes(pc.serial, "big", signed=True))


def cert_id(certificate: bytes, issuer: bytes, *, hash_algorithm: str = "sha256") -> CertID:
    """The CertID of ``certificate`` issued by ``issuer`` (both DER)."""
    return _cert_id(_parse(certificate, "certificate"), _parse(issuer, "issuer"), hash_algorithm)


def build_ocsp_request(certificate: bytes, issuer: bytes, *, hash_algorithm: str = "sha256",
                       nonce: Optional[bytes] = None) -> bytes:
    """DER ``OCSPRequest`` for one certificate (optionally with a nonce extension)."""
    pc, ipc = _parse(certificate, "certificate"), _parse(issuer, "issuer")
    _cert_id(pc, ipc, hash_algorithm)  # checks the pair and the hash name
    try:
        c = x509.load_der_x509_certificate(pc.der)
        i = x509.load_der_x509_certificate(ipc.der)
        b = x_ocsp.OCSPRequestBuilder().add_certificate(c, i, _HASHES[hash_algorithm][1]())
        if nonce is not None:
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        return b.build().public_bytes(Encoding.DER)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise OCSPError(OCSPProblem.BAD_REQUEST, str(exc)) from None


def _utc(d: datetime) -> datetime:
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)


def _verify_with(pub: object, signature: bytes, data: bytes, hash_alg: Optional[hashes.HashAlgorithm]) -> None:
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if hash_alg is None:
            raise InvalidSignature()
        pub.verify(signature, data, ec.ECDSA(hash_alg))
    elif isinstance(pub, ed448.Ed448PublicKey):
        pub.verify(signature, data)
    else:
        raise InvalidSignature()


def _authorize_delegate(resp: x_ocsp.OCSPResponse, issuer: ParsedCert, at: datetime) -> List[Tuple[ParsedCert, object]]:
    """(certificate, public key) of the delegated responders in ``resp`` that the issuer authorised."""
    keys: List[Tuple[ParsedCert, object]] = []
    issuer_pub = load_public_key(issuer)
    for rc in resp.certificates:
        try:
            rpc = parse_certificate(rc.public_bytes(Encoding.DER))  # type: ignore[attr-defined]
        except CertParseError:
            continue
        if rpc.issuer != issuer.subject:
            continue
        try:
            eku = rc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            raise OCSPError(OCSPProblem.UNAUTHORIZED_RESPONDER,
                            f"responder certificate {rpc.subject_str} lacks id-kp-OCSPSigning") from None
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise OCSPError(OCSPProblem.UNAUTHORIZED_RESPONDER,
                            f"responder certificate {rpc.subject_str} lacks id-kp-OCSPSigning")
        try:
            _verify_with(issuer_pub, rc.signature, rc.tbs_certificate_bytes, rc.signature_hash_algorithm)
        except (InvalidSignature, ValueError):
            raise OCSPError(OCSPProblem.UNAUTHORIZED_RESPONDER,
                            f"responder certificate {rpc.subject_str} is not signed by the issuer") from None
        if _utc(rc.not_valid_after_utc) < at:
            raise OCSPError(OCSPProblem.STALE, f"responder certificate {rpc.subject_str} has expired")
        if _utc(rc.not_valid_before_utc) > at:
            raise OCSPError(OCSPProblem.NOT_YET_VALID, f"responder certificate {rpc.subject_str} is not yet valid")
        keys.append((rpc, rc.public_key()))
    return keys


def check_ocsp_response(response: bytes, certificate: bytes, issuer: bytes, *, at: datetime,
                        nonce: Optional[bytes] = None, max_age: Optional[timedelta] = None,
                        clock_skew: timedelta = timedelta(0)) -> OCSPResult:
    """Check a DER OCSP response for ``certificate`` (issued by ``issuer``) at time ``at``.

    ``max_age`` bounds ``at - thisUpdate`` when the response has no nextUpdate (without it such a
    response is accepted); ``clock_skew`` widens the thisUpdate/nextUpdate window both ways.

    Raises:
        OCSPError: malformed, unsuccessful, badly signed, unauthorised signer, no matching
            CertID, stale or not yet valid, nonce mismatch.
    """
    pc, ipc = _parse(certificate, "certificate"), _parse(issuer, "issuer")
    at = _utc(at)
    if not isinstance(response, (bytes, bytearray)):
        raise OCSPError(OCSPProblem.MALFORMED, "response must be DER bytes")
    try:
        resp = x_ocsp.load_der_ocsp_response(bytes(response))
    except ValueError as exc:
        raise OCSPError(OCSPProblem.MALFORMED, f"not a DER OCSPResponse: {exc}") from None
    if resp.response_status is not x_ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OCSPError(OCSPProblem.UNSUCCESSFUL, f"responseStatus {resp.response_status.name}")
    try:
        tbs = resp.tbs_response_bytes
        signature = resp.signature
        sig_hash = resp.signature_hash_algorithm
        by_name = resp.responder_name
        by_key = resp.responder_key_hash
        singles = list(resp.responses)
        produced = _utc(resp.produced_at_utc)
        exts = resp.extensions
    except Exception as exc:  # cryptography raises assorted types for unsupported algorithms
        raise OCSPError(OCSPProblem.MALFORMED, f"unreadable BasicOCSPResponse: {exc}") from None

    # --- who signed: the issuer itself or a delegated responder it certified [RFC 6960 §4.2.2.2]
    signers: List[tuple] = []
    issuer_key_sha1 = hashlib.sha1(ipc.key_bits).digest()
    if (by_key is not None and by_key == issuer_key_sha1) or (
            by_name is not None and by_name.public_bytes() == ipc.subject):
        signers.append(("issuer", load_public_key(ipc)))
    for rpc, pub in _authorize_delegate(resp, ipc, at):
        if (by_key is not None and by_key == hashlib.sha1(rpc.key_bits).digest()) or (
                by_name is not None and by_name.public_bytes() == rpc.subject):
            signers.append(("delegated", pub))
    if not signers:
        raise OCSPError(OCSPProblem.UNAUTHORIZED_RESPONDER,
                        "the response is signed neither by the issuer nor by a responder it authorised")
    responder = None
    for kind, pub in signers:
        try:
            _verify_with(pub, signature, tbs, sig_hash)
        except (InvalidSignature, ValueError, TypeError):
            continue
        responder = kind
        break
    if responder is None:
        raise OCSPError(OCSPProblem.BAD_SIGNATURE, "response signature does not verify with the responder key")

    # --- the SingleResponse for our CertID
    match = None
    for sr in singles:
        name = sr.hash_algorithm.name
        if name not in _HASHES:
            continue
        cid = _cert_id(pc, ipc, name)
        if (sr.serial_number == cid.serial_number and sr.issuer_name_hash == cid.issuer_name_hash
                and sr.issuer_key_hash == cid.issuer_key_hash):
            match = (sr, cid)
            break
    if match is None:
        raise OCSPError(OCSPProblem.CERT_ID_MISMATCH, f"no SingleResponse for serial {pc.serial.hex()} of "
                        f"{pc.subject_str}")
    sr, cid = match
    this_update = _utc(sr.this_update_utc)
    next_update = _utc(sr.next_update_utc) if sr.next_update_utc is not None else None
    if this_update > at + clock_skew:
        raise OCSPError(OCSPProblem.NOT_YET_VALID, f"thisUpdate {this_update.isoformat()} is after {at.isoformat()}")
    if next_update is not None:
        if at - clock_skew > next_update:
            raise OCSPError(OCSPProblem.STALE, f"nextUpdate {next_update.isoformat()} is before {at.isoformat()}")
    elif max_age is not None and at - this_update > max_age + clock_skew:
        raise OCSPError(OCSPProblem.STALE, f"thisUpdate {this_update.isoformat()} is older than {max_age}")
    if nonce is not None:
        try:
            got = exts.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            got = None
        if got != nonce:
            raise OCSPError(OCSPProblem.NONCE_MISMATCH, "response nonce differs from the request nonce")
    status = {x_ocsp.OCSPCertStatus.GOOD: CertStatus.GOOD, x_ocsp.OCSPCertStatus.REVOKED: CertStatus.REVOKED,
              x_ocsp.OCSPCertStatus.UNKNOWN: CertStatus.UNKNOWN}[sr.certificate_status]
    rtime = rreason = None
    if status is CertStatus.REVOKED:
        rtime = _utc(sr.revocation_time_utc) if sr.revocation_time_utc else None
        rreason = sr.revocation_reason.name if sr.revocation_reason is not None else None
    return OCSPResult(status, cid, this_update, next_update, produced, responder, rtime, rreason)


def ocpp_request_data(chain: Union["object", Sequence[bytes]], *, hash_algorithm: str = "sha256",
                      include_root: bool = False, skip_without_url: bool = True) -> List[Dict[str, str]]:
    """OCPP 2.0.1 ``OCSPRequestDataType`` entries for a chain (leaf first).

    ``chain`` is a :class:`pki.VerifiedChain` or DER certificates leaf → root (each certificate's
    issuer must follow it). One entry per certificate that has an issuer in the chain (the root is
    only included with ``include_root``, using itself as issuer): ``hashAlgorithm`` (``"SHA256"``),
    ``issuerNameHash`` and ``issuerKeyHash`` (lower-case hex of the RFC 6960 CertID hashes),
    ``serialNumber`` (lower-case hex without leading zeros), ``responderURL`` (first AIA OCSP URI).
    Certificates without an OCSP URI are skipped (``responderURL`` is required by OCPP) unless
    ``skip_without_url`` is False, which gives ``""``.
    """
    if hash_algorithm not in _OCPP_HASH:
        raise OCSPError(OCSPProblem.BAD_REQUEST, f"OCPP allows SHA256/SHA384/SHA512, not {hash_algorithm!r}")
    parsed_fn = getattr(chain, "parsed", None)
    if callable(parsed_fn):
        pcs = list(parsed_fn())
    else:
        pcs = [_parse(d, f"certificate #{i}") for i, d in enumerate(cast("Sequence[bytes]", chain))]
    out: List[Dict[str, str]] = []
    for i, pc in enumerate(pcs):
        if i + 1 < len(pcs):
            issuer = pcs[i + 1]
        elif include_root and pc.self_issued:
            issuer = pc
        else:
            break
        key = (pc.der, issuer.der, hash_algorithm)
        entry = _OCPP_ENTRIES.get(key)
        if entry is None:
            urls = pc.ocsp_urls()
            if not urls and skip_without_url:
                continue
            cid = _cert_id(pc, issuer, hash_algorithm)
            entry = {
                "hashAlgorithm": _OCPP_HASH[hash_algorithm],
                "issuerNameHash": cid.issuer_name_hash.hex(),
                "issuerKeyHash": cid.issuer_key_hash.hex(),
                "serialNumber": format(cid.serial_number, "x"),
                "responderURL": urls[0] if urls else "",
            }
            if len(_OCPP_ENTRIES) >= 256:
                _OCPP_ENTRIES.clear()
            _OCPP_ENTRIES[key] = entry
        if not entry["responderURL"] and skip_without_url:
            continue
        out.append(dict(entry))
    return out


#: OCSPRequestDataType entries by (certificate DER, issuer DER, hash): a pure function of those bytes
_OCPP_ENTRIES: Dict[Tuple[bytes, bytes, str], Dict[str, str]] = {}
