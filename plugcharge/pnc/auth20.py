"""ISO 15118-20 Plug & Charge authorization, both sides, as pure functions.

EV: :func:`build_pnc_authorization_req` puts the contract chain and the charger's GenChallenge (from
AuthorizationSetupRes) into ``PnC_AReqAuthorizationMode`` and signs that element with the contract
key [V2G20-2565]: ECDSA secp521r1/SHA-512 or Ed448, the suite following the key [V2G20-2320].

Charger: :func:`validate_pnc_authorization` checks, in this order, the selected service and its
mode element, the GenChallenge (the one this session sent, compared in constant time
[V2G20-2565]), the contract chain under the -20 contract profile to an MO or V2G root (pki,
``iso20-contract``), and the header signature over ``PnC_AReqAuthorizationMode`` with the leaf's key;
it returns the eMAID, the chain, the OCPP OCSP request data (pki.ocsp) and the 14-day expiry flag
[V2G20-2218].  Each failure is a :class:`~plugcharge.pnc.codes20.PnC20Error` with the -20
ResponseCode (:mod:`plugcharge.pnc.codes20`).
"""
from __future__ import annotations

import dataclasses
import hmac
from datetime import datetime
from typing import Any, Mapping, Optional, Sequence

from ..core.codec import CodecProvider
from ..core.errors import SignatureError
from .certs import cert_chain, chain_certs
from .codes20 import (
    FAILED, FAILED_SIGNATURE_ERROR, MAX_SUB_CERTIFICATES, OK, OK_CERTIFICATE_EXPIRES_SOON,
    WARNING_AUTHORIZATION_SELECTION_INVALID, WARNING_CERTIFICATE_VALIDATION_ERROR, WARNING_CHALLENGE_INVALID,
    WARNING_EMSP_UNKNOWN, Credentials20Like, PnC20Error, leaf_key, chain_error, contract_expires_soon,
)
from .signatures import ISO20_SUITES, sign_message, suite_for_key, verify_message

__all__ = [
    "GEN_CHALLENGE_SIZE", "MAX_SUB_CERTIFICATES", "Contract20Like", "PnCAuthorization",
    "pnc_authorization_mode", "build_pnc_authorization_req", "validate_pnc_authorization", "authorization_response_code",
]

#: GenChallenge is 16 bytes (genChallengeType)
GEN_CHALLENGE_SIZE = 16


#: What the EV needs of a -20 contract (:class:`plugcharge.pnc.wallet.Contract` is one).
Contract20Like = Credentials20Like


@dataclasses.dataclass(frozen=True, slots=True)
class PnCAuthorization:
    """A -20 PnC authorization that passed every check of the charger.

    Attributes:
        emaid: the eMAID (contract leaf CN).
        certificates: the contract chain as received, leaf first (OCPP Authorize's ``certificate``).
        chain: the validated path (``pki.VerifiedChain``, leaf to the MO or V2G root).
        suite: the signature suite the EV used (``"iso20-ecdsa-p521-sha512"`` or ``"iso20-ed448"``).
        ocsp_request_data: OCPP ``OCSPRequestDataType`` dicts (camelCase keys) for the chain's
            certificates, for Authorize / GetCertificateChainStatus; empty when none can be built.
        expires_soon: the chain ends within 14 days [V2G20-2218].
    """

    emaid: str
    certificates: tuple[bytes, ...]
    chain: Any = dataclasses.field(repr=False, compare=False)
    suite: str = ""
    ocsp_request_data: tuple[Mapping[str, str], ...] = ()
    expires_soon: bool = False

    @property
    def response_code(self) -> str:
        """``OK`` or ``OK_CertificateExpiresSoon`` [V2G20-2218] (before the backend's verdict)."""
        return OK_CERTIFICATE_EXPIRES_SOON if self.expires_soon else OK


def pnc_authorization_mode(contract: Contract20Like, gen_challenge: bytes, *, ident: str = "id1") -> dict[str, Any]:
    """``PnC_AReqAuthorizationMode`` (Id, GenChallenge, ContractCertificateChain): the element the
    contract key signs [V2G20-2565] (a session wraps it in its AuthorizationReq, then signs).  Checks
    and raises as :func:`build_pnc_authorization_req`."""
    challenge = bytes(gen_challenge)
    if len(challenge) != GEN_CHALLENGE_SIZE:
        raise PnC20Error(FAILED, f"GenChallenge must be {GEN_CHALLENGE_SIZE} bytes, got {len(challenge)}")
    subs = tuple(contract.sub_cas)
    if not 1 <= len(subs) <= MAX_SUB_CERTIFICATES:
        raise PnC20Error(FAILED, f"ContractCertificateChain needs 1 to {MAX_SUB_CERTIFICATES} Sub-CAs, got {len(subs)}")
    try:
        suite_for_key(contract.private_key, iso=20)
    except SignatureError as exc:
        raise PnC20Error(FAILED_SIGNATURE_ERROR, f"contract key cannot sign an ISO 15118-20 message: {exc}") from None
    return {"Id": ident, "GenChallenge": challenge, "ContractCertificateChain": cert_chain(contract.leaf, subs)}


def build_pnc_authorization_req(contract: Contract20Like, gen_challenge: bytes, *, session_id: bytes, timestamp: int,
                                ident: str = "id1", codecs: Optional[CodecProvider] = None) -> dict[str, Any]:
    """The signed -20 ``AuthorizationReq`` root message for Plug & Charge [V2G20-2565].

    ``gen_challenge``: the 16 bytes of AuthorizationSetupRes; ``session_id``/``timestamp``: the header.
    The signature suite follows the contract key (secp521r1 → ecdsa-sha512, Ed448 → Ed448).

    Raises:
        PnC20Error: ``FAILED`` for a challenge of the wrong size or a chain -20 cannot carry;
            ``FAILED_SignatureError`` for a key that signs no -20 suite (e.g. a -2 P-256 key).
    """
    message = {"AuthorizationReq": {
        "Header": {"SessionID": bytes(session_id), "TimeStamp": int(timestamp)},
        "SelectedAuthorizationService": "PnC",
        "PnC_AReqAuthorizationMode": pnc_authorization_mode(contract, gen_challenge, ident=ident),
    }}
    return sign_message(message, contract.private_key, codecs=codecs)


def _mode_of(message: Mapping[str, Any]) -> Mapping[str, Any]:
    body = message.get("AuthorizationReq") if isinstance(message, Mapping) else None
    if not isinstance(body, Mapping):
        raise PnC20Error(FAILED, "not an ISO 15118-20 AuthorizationReq")
    service = body.get("SelectedAuthorizationService")
    mode = body.get("PnC_AReqAuthorizationMode")
    if service != "PnC" or not isinstance(mode, Mapping):
        raise PnC20Error(WARNING_AUTHORIZATION_SELECTION_INVALID,
                         f"SelectedAuthorizationService {service!r} without PnC_AReqAuthorizationMode is no PnC request")
    return mode


def validate_pnc_authorization(message: Mapping[str, Any], *, gen_challenge: bytes, store: Any, at: datetime,
                               codecs: Optional[CodecProvider] = None, cache: Any = None,
                               ocsp: bool = True) -> PnCAuthorization:
    """Charger side: validate a -20 PnC ``AuthorizationReq`` (the decoded root message).

    Args:
        message: ``{"AuthorizationReq": {...}}`` as decoded.
        gen_challenge: the GenChallenge this session sent in AuthorizationSetupRes.
        store: a ``pki.TrustStore`` with the MO and/or V2G roots that may anchor contracts.
        at: validation time (aware UTC); cache: an optional ``pki.VerificationCache``.
        ocsp: build the OCPP OCSP request data of the chain.

    Raises:
        PnC20Error: ``WARNING_AuthorizationSelectionInvalid`` (no PnC request),
            ``WARNING_ChallengeInvalid`` [V2G20-2565], a chain code (``WARNING_CertificateExpired``,
            ``..NotYetValid``, ``..Revoked``, ``WARNING_eMSPUnknown``,
            ``WARNING_CertificateValidationError``) or ``FAILED_SignatureError``.
    """
    from pki.verify import verify_chain

    mode = _mode_of(message)
    got = mode.get("GenChallenge")
    if not isinstance(got, (bytes, bytearray)) or not hmac.compare_digest(bytes(got), bytes(gen_challenge)):
        raise PnC20Error(WARNING_CHALLENGE_INVALID, "GenChallenge is not the one of AuthorizationSetupRes [V2G20-2565]")
    try:
        leaf, subs = chain_certs(mode["ContractCertificateChain"])
    except (KeyError, TypeError, AttributeError):
        raise PnC20Error(WARNING_CERTIFICATE_VALIDATION_ERROR, "ContractCertificateChain lacks its Certificate") from None
    try:
        chain = verify_chain(leaf, subs, store=store, profile="iso20-contract", at=at, cache=cache)
    except ValueError as exc:  # pki.ChainValidationError
        raise chain_error(exc, "contract chain", unknown_anchor=WARNING_EMSP_UNKNOWN) from None
    try:
        verify_message(message, leaf_key(chain), codecs=codecs, suite=ISO20_SUITES)
    except SignatureError as exc:
        raise PnC20Error(FAILED_SIGNATURE_ERROR, f"signature over PnC_AReqAuthorizationMode: {exc}") from None
    suite = suite_for_key(leaf_key(chain), iso=20).name
    data: tuple[Mapping[str, str], ...] = ()
    if ocsp:
        from pki.errors import PKIError
        from pki.ocsp import ocpp_request_data

        try:
            data = tuple(ocpp_request_data(chain))
        except PKIError:  # OCSP data is advisory: the backend decides without it
            data = ()
    return PnCAuthorization(emaid=chain.emaid or "", certificates=(leaf, *subs), chain=chain, suite=suite,
                            ocsp_request_data=data, expires_soon=contract_expires_soon(chain.not_after, at))


def authorization_response_code(authorization: PnCAuthorization, backend_code: str = OK) -> str:
    """The AuthorizationRes ResponseCode once the backend answered: its non-OK code wins, else
    ``OK_CertificateExpiresSoon`` when the contract ends within 14 days [V2G20-2218], else ``OK``."""
    if backend_code != OK:
        return backend_code
    return authorization.response_code
