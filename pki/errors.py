"""Typed errors of the certificate engine.

Every failure of :mod:`pki` is a :class:`PKIError`. Chain validation failures are
:class:`ChainValidationError` carrying a machine-readable :class:`Reason`, the depth of the
offending certificate (0 = leaf, counting up towards the root) and its subject, so a session can
map the failure to an ISO 15118 ``ResponseCode`` (:func:`iso_response_code`) without parsing
messages. Nothing here ever holds or prints private key material.
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Optional

__all__ = [
    "PKIError",
    "Reason",
    "ChainValidationError",
    "CertificateRevokedError",
    "TrustStoreError",
    "UnknownProfileError",
    "OCSPProblem",
    "OCSPError",
    "KeyTransportError",
    "SignatureError",
    "iso_response_code",
]


class PKIError(Exception):
    """Root of every error raised by :mod:`pki`."""


class Reason(enum.Enum):
    """Why a certificate chain was rejected.

    The value is a stable lower-case token (safe for logs, metrics and test corpora).
    Assignment rules, so that a certificate breaking exactly one rule gets exactly one reason:
    """

    #: DER/PEM cannot be parsed, has trailing bytes, or a mandatory structure is missing/ill-typed.
    MALFORMED = "malformed"
    #: A signature does not verify with the issuer's public key.
    BAD_SIGNATURE = "bad_signature"
    #: ``at`` is after notAfter of some certificate (including the anchor).
    EXPIRED = "expired"
    #: ``at`` is before notBefore of some certificate (including the anchor).
    NOT_YET_VALID = "not_yet_valid"
    #: No issuer for a certificate among the intermediates or trust anchors (name chaining fails).
    UNKNOWN_ISSUER = "unknown_issuer"
    #: The path ends in a self-signed certificate that is not an anchor of a role allowed for
    #: the profile (including a root of the wrong role, or a non-root offered as anchor).
    UNTRUSTED_ROOT = "untrusted_root"
    #: basicConstraints breaks the profile: an issuer without (critical) ``cA=TRUE``, a leaf with
    #: ``cA=TRUE``, or basicConstraints absent / non-critical.
    NOT_A_CA = "not_a_ca"
    #: pathLenConstraint differs from the profile (Sub-CA 1 = 1, Sub-CA 2 = 0, root absent) or is
    #: exceeded, or the path holds more than two Sub-CAs [V2G2-009].
    PATH_LENGTH = "path_length"
    #: keyUsage absent, non-critical, or its bits differ from the profile's (incl. an issuer
    #: without keyCertSign).
    KEY_USAGE = "key_usage"
    #: Key type/curve or signature algorithm not the profile's, or the TBS signature algorithm
    #: differs from the outer one.
    ALGORITHM = "algorithm"
    #: Any other profile rule: not X.509 v3, serial not positive, wrong/missing domainComponent,
    #: CN not an eMAID/PCID where the profile demands it, unknown critical extension.
    PROFILE = "profile"
    #: A certificate's DER exceeds the profile's size limit (-2: 800 bytes [V2G2-010]; -20: 1600).
    TOO_LARGE = "too_large"
    #: The certificate is revoked (OCSP).
    REVOKED = "revoked"


#: ISO 15118-2 ``responseCodeType`` per reason for PaymentDetails / Authorization (SECC side).
_ISO2_RESPONSE = {
    Reason.EXPIRED: "FAILED_CertificateExpired",
    Reason.NOT_YET_VALID: "FAILED_CertificateExpired",  # [V2G2-824]
    Reason.REVOKED: "FAILED_CertificateRevoked",
    Reason.UNTRUSTED_ROOT: "FAILED_NoCertificateAvailable",
    Reason.UNKNOWN_ISSUER: "FAILED_NoCertificateAvailable",
}


def iso_response_code(reason: Reason) -> str:
    """Map a rejection reason to the ISO 15118-2/-20 ``ResponseCode`` a SECC answers with.

    Expired and not-yet-valid certificates give ``FAILED_CertificateExpired``, revoked ones
    ``FAILED_CertificateRevoked``, a missing anchor ``FAILED_NoCertificateAvailable``; every other
    reason ``FAILED_CertChainError``.
    """
    return _ISO2_RESPONSE.get(reason, "FAILED_CertChainError")


class ChainValidationError(PKIError, ValueError):
    """A certificate chain was rejected.

    Attributes:
        reason: why (:class:`Reason`).
        depth: position of the offending certificate in the built path, 0 = leaf; for a
            certificate that is not part of a path (e.g. an unparsable intermediate) its index in
            the input counted as ``1 + index in intermediates``; -1 when no single certificate is
            at fault.
        subject: RFC 4514 subject of the offending certificate, or ``""`` when it cannot be
            parsed.
        certificate: the offending certificate's DER (``None`` when not available).
        detail: the human-readable part of the message.
    """

    def __init__(
        self,
        reason: Reason,
        detail: str,
        *,
        depth: int,
        subject: str = "",
        certificate: Optional[bytes] = None,
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.depth = depth
        self.subject = subject
        self.certificate = certificate
        who = f"certificate at depth {depth}" if depth >= 0 else "chain"
        if subject:
            who += f" ({subject})"
        super().__init__(f"{reason.name}: {who}: {detail}")

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (type(self), self.reason, self.detail, self.depth, self.subject, self.certificate, self._extra()),
        )

    def _extra(self) -> dict:
        return {}

    @property
    def response_code(self) -> str:
        """The ISO 15118 ``ResponseCode`` for this rejection (see :func:`iso_response_code`)."""
        return iso_response_code(self.reason)


def _rebuild(cls: type, reason: Reason, detail: str, depth: int, subject: str,
             certificate: Optional[bytes], extra: dict) -> ChainValidationError:
    return cls(reason, detail, depth=depth, subject=subject, certificate=certificate, **extra)


class CertificateRevokedError(ChainValidationError):
    """An OCSP response says the certificate is revoked (``reason`` is always ``REVOKED``)."""

    def __init__(
        self,
        reason: Reason = Reason.REVOKED,
        detail: str = "revoked",
        *,
        depth: int = 0,
        subject: str = "",
        certificate: Optional[bytes] = None,
        revocation_time: Optional[datetime] = None,
        revocation_reason: Optional[str] = None,
    ) -> None:
        self.revocation_time = revocation_time
        self.revocation_reason = revocation_reason
        super().__init__(Reason.REVOKED, detail, depth=depth, subject=subject, certificate=certificate)

    def _extra(self) -> dict:
        return {"revocation_time": self.revocation_time, "revocation_reason": self.revocation_reason}


class TrustStoreError(PKIError, ValueError):
    """A trust anchor handed to :class:`pki.store.TrustStore` is unusable.

    Attributes:
        role: the role (``"v2g"``, ``"mo"``, ``"oem"``) the anchor was given for.
        index: its position in that role's list (-1 for store-level problems such as an unknown role).
        reason: MALFORMED (unparsable), UNTRUSTED_ROOT (not self-issued / not a CA),
            BAD_SIGNATURE (self-signature does not verify), or PROFILE (unknown role, bad layout).
        source: file path when loaded from a directory, else ``None``.
    """

    def __init__(self, reason: Reason, detail: str, *, role: str = "", index: int = -1,
                 source: Optional[str] = None) -> None:
        self.reason = reason
        self.detail = detail
        self.role = role
        self.index = index
        self.source = source
        where = f"role {role!r}" if role else "trust store"
        if index >= 0:
            where += f" anchor #{index}"
        if source:
            where += f" ({source})"
        super().__init__(f"{reason.name}: {where}: {detail}")

    def __reduce__(self) -> Any:
        return (_rebuild_store, (self.reason, self.detail, self.role, self.index, self.source))


def _rebuild_store(reason: Reason, detail: str, role: str, index: int, source: Optional[str]) -> TrustStoreError:
    return TrustStoreError(reason, detail, role=role, index=index, source=source)


class UnknownProfileError(PKIError, KeyError):
    """A profile name that :mod:`pki.profiles` does not define."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown profile"


class OCSPProblem(enum.Enum):
    """Why an OCSP response could not be used (as opposed to a *revoked* verdict)."""

    #: Not a DER OCSPResponse / BasicOCSPResponse, or a required field is missing.
    MALFORMED = "malformed"
    #: responseStatus is not ``successful`` (e.g. tryLater, unauthorized).
    UNSUCCESSFUL = "unsuccessful"
    #: The response signature does not verify with the responder key.
    BAD_SIGNATURE = "bad_signature"
    #: The signer is neither the issuer nor a delegated responder issued by it with id-kp-OCSPSigning.
    UNAUTHORIZED_RESPONDER = "unauthorized_responder"
    #: No SingleResponse for the asked CertID (hash of issuer name/key and serial).
    CERT_ID_MISMATCH = "cert_id_mismatch"
    #: ``at`` is after nextUpdate (or the delegated responder certificate has expired).
    STALE = "stale"
    #: ``at`` is before thisUpdate (or before the responder certificate's notBefore).
    NOT_YET_VALID = "not_yet_valid"
    #: A nonce was requested and the response echoes a different one.
    NONCE_MISMATCH = "nonce_mismatch"
    #: The response is authentic and fresh but says "unknown" (raised only on request).
    UNKNOWN_STATUS = "unknown_status"
    #: Input to request building is unusable (certificate / issuer mismatch, no AIA URL, ...).
    BAD_REQUEST = "bad_request"


class OCSPError(PKIError, ValueError):
    """An OCSP response (or request input) is unusable; ``.problem`` says why."""

    def __init__(self, problem: OCSPProblem, detail: str) -> None:
        self.problem = problem
        self.detail = detail
        super().__init__(f"OCSP {problem.name}: {detail}")

    def __reduce__(self) -> Any:
        return (OCSPError, (self.problem, self.detail))


class KeyTransportError(PKIError, ValueError):
    """Contract private key encryption/decryption failed (bad length, curve, or d·G mismatch)."""


class SignatureError(PKIError, ValueError):
    """A message signature is malformed or does not verify."""
