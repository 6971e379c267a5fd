"""ISO 15118-20 Plug & Charge: the ResponseCodes of certificate and signature failures, one error type.

ISO 15118-20's ``responseCodeType`` (CommonTypes) has no ``FAILED_CertChainError`` or
``FAILED_CertificateExpired``: a certificate problem is a ``WARNING_*`` code, after which the session
goes on (the EV may fall back to EIM without re-plugging), while ``FAILED_*`` codes end it.  The
codes an AuthorizationRes may carry are OK, OK_CertificateExpiresSoon, WARNING_CertificateExpired,
WARNING_CertificateNotYetValid, WARNING_CertificateRevoked, WARNING_CertificateValidationError,
WARNING_eMSPUnknown, WARNING_GeneralPnCAuthorizationError, WARNING_ChallengeInvalid,
WARNING_AuthorizationSelectionInvalid, WARNING_EIMAuthorizationFailure, FAILED,
FAILED_SequenceError and FAILED_UnknownSession (Table 224 as the iso15118 package quotes it); a
signature that does not verify is ``FAILED_SignatureError``.  Which WARNING code each chain-validation
reason gives is this module's reading of those names (the text of the standard was not at hand):

=====================================  ====================================  ====================================
``pki.Reason``                         contract chain (AuthorizationReq)     OEM provisioning chain (backend)
=====================================  ====================================  ====================================
EXPIRED                                WARNING_CertificateExpired            WARNING_CertificateExpired
NOT_YET_VALID                          WARNING_CertificateNotYetValid        WARNING_CertificateNotYetValid
REVOKED                                WARNING_CertificateRevoked            WARNING_CertificateRevoked
UNTRUSTED_ROOT, UNKNOWN_ISSUER         WARNING_eMSPUnknown (no MO/V2G root)  WARNING_CertificateValidationError
any other                              WARNING_CertificateValidationError    WARNING_CertificateValidationError
=====================================  ====================================  ====================================
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol, Sequence

from cryptography.hazmat.primitives.asymmetric import ec, ed448

from ..core.errors import PlugChargeError

__all__ = [
    "OK", "OK_CERTIFICATE_EXPIRES_SOON", "FAILED", "FAILED_SIGNATURE_ERROR",
    "WARNING_CERTIFICATE_EXPIRED", "WARNING_CERTIFICATE_NOT_YET_VALID", "WARNING_CERTIFICATE_REVOKED",
    "WARNING_CERTIFICATE_VALIDATION_ERROR", "WARNING_EMSP_UNKNOWN", "WARNING_CHALLENGE_INVALID",
    "WARNING_AUTHORIZATION_SELECTION_INVALID", "WARNING_GENERAL_PNC_AUTHORIZATION_ERROR",
    "WARNING_NO_CERTIFICATE_AVAILABLE", "WARNING_NO_CONTRACT_MATCHING_PCID_FOUND",
    "EXPIRY_WARNING_PERIOD", "MAX_SUB_CERTIFICATES", "Credentials20Like", "PnC20Error", "chain_response_code",
    "chain_error", "contract_expires_soon", "leaf_key",
]

OK = "OK"
#: AuthorizationRes when the contract expires within :data:`EXPIRY_WARNING_PERIOD` [V2G20-2218]
OK_CERTIFICATE_EXPIRES_SOON = "OK_CertificateExpiresSoon"
FAILED = "FAILED"
FAILED_SIGNATURE_ERROR = "FAILED_SignatureError"
WARNING_CERTIFICATE_EXPIRED = "WARNING_CertificateExpired"
WARNING_CERTIFICATE_NOT_YET_VALID = "WARNING_CertificateNotYetValid"
WARNING_CERTIFICATE_REVOKED = "WARNING_CertificateRevoked"
WARNING_CERTIFICATE_VALIDATION_ERROR = "WARNING_CertificateValidationError"
WARNING_EMSP_UNKNOWN = "WARNING_eMSPUnknown"
WARNING_CHALLENGE_INVALID = "WARNING_ChallengeInvalid"
WARNING_AUTHORIZATION_SELECTION_INVALID = "WARNING_AuthorizationSelectionInvalid"
WARNING_GENERAL_PNC_AUTHORIZATION_ERROR = "WARNING_GeneralPnCAuthorizationError"
WARNING_NO_CERTIFICATE_AVAILABLE = "WARNING_NoCertificateAvailable"
WARNING_NO_CONTRACT_MATCHING_PCID_FOUND = "WARNING_NoContractMatchingPCIDFound"

#: SubCertificates holds at most three certificates in -20 (SubCertificatesType)
MAX_SUB_CERTIFICATES = 3
#: The contract "expires soon" when its chain ends within 14 days [V2G20-2218].
EXPIRY_WARNING_PERIOD = timedelta(days=14)

_BY_REASON = {
    "expired": WARNING_CERTIFICATE_EXPIRED,
    "not_yet_valid": WARNING_CERTIFICATE_NOT_YET_VALID,
    "revoked": WARNING_CERTIFICATE_REVOKED,
}
_NO_ANCHOR = ("untrusted_root", "unknown_issuer")


class Credentials20Like(Protocol):
    """A certificate, its Sub-CAs (Sub-CA 2 first) and its -20 private key (secp521r1 or Ed448): a
    contract or the OEM provisioning credentials (:class:`plugcharge.pnc.wallet.Contract` and
    :class:`~plugcharge.pnc.wallet.OEMProvisioning` are ones)."""

    @property
    def leaf(self) -> bytes: ...
    @property
    def sub_cas(self) -> Sequence[bytes]: ...
    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey: ...


class PnC20Error(PlugChargeError, ValueError):
    """An ISO 15118-20 Plug & Charge check failed.

    Attributes:
        response_code: the -20 ResponseCode that describes the failure (what a charger answers,
            what a backend refuses an installation with; on the EV, the code the response carried
            or the one matching its own finding).
        hint: a log-safe explanation naming the field, certificate or rule (never key material).
        terminal: the code is a ``FAILED*`` one, after which the session ends; after a
            ``WARNING_*`` code the session may go on (e.g. with EIM).
        reason: the ``pki.Reason`` value (``"expired"`` ...) when a chain validation failed, else None.
    """

    def __init__(self, response_code: str, hint: str, *, reason: str | None = None) -> None:
        super().__init__(f"{response_code}: {hint}")
        self.response_code = response_code
        self.hint = hint
        self.reason = reason
        self.terminal = response_code.startswith("FAILED")

    def __reduce__(self) -> Any:
        return (_rebuild, (self.response_code, self.hint, self.reason))


def _rebuild(code: str, hint: str, reason: str | None) -> PnC20Error:
    return PnC20Error(code, hint, reason=reason)


def chain_response_code(exc: BaseException, *, unknown_anchor: str = WARNING_CERTIFICATE_VALIDATION_ERROR) -> str:
    """The -20 ResponseCode for a failed chain validation (a ``pki.ChainValidationError``; any other
    exception counts as a validation error).  ``unknown_anchor`` is the code when no allowed trust
    anchor was found (the table in the module docstring)."""
    reason = getattr(getattr(exc, "reason", None), "value", None)
    if reason in _NO_ANCHOR:
        return unknown_anchor
    return _BY_REASON.get(str(reason), WARNING_CERTIFICATE_VALIDATION_ERROR)


def chain_error(exc: BaseException, what: str, *, unknown_anchor: str = WARNING_CERTIFICATE_VALIDATION_ERROR) -> PnC20Error:
    """A :class:`PnC20Error` for a rejected chain (``what``: "contract chain", ...)."""
    reason = getattr(getattr(exc, "reason", None), "value", None)
    return PnC20Error(chain_response_code(exc, unknown_anchor=unknown_anchor), f"{what} rejected: {exc}",
                      reason=str(reason) if reason is not None else None)


def leaf_key(chain: Any) -> Any:
    """The leaf public key of a ``pki.VerifiedChain`` (a cryptography EC or Ed448 key)."""
    return chain.leaf_public_key


def contract_expires_soon(not_after: datetime, at: datetime) -> bool:
    """True when a contract valid at ``at`` ends within 14 days (:data:`EXPIRY_WARNING_PERIOD`)
    [V2G20-2218]: the charger then answers AuthorizationRes with ``OK_CertificateExpiresSoon``
    and the EV may install a new contract."""
    return at <= not_after and not_after - at <= EXPIRY_WARNING_PERIOD
