"""pki: the ISO 15118 certificate engine (on ``cryptography`` and ``asn1crypto``; no sockets, no clock).

Chain validation::

    store = pki.TrustStore({"mo": [mo_root_der], "v2g": [v2g_root_der]})   # DER or PEM anchors
    chain = pki.verify_chain(leaf_der, [sub2_der, sub1_der], store=store,
                             profile="iso2-contract", at=datetime.now(timezone.utc))

:func:`verify_chain` returns a :class:`VerifiedChain` or raises :class:`ChainValidationError` with
``.reason`` (a :class:`Reason`), ``.depth`` and the subject of the offending certificate.
:func:`verify_chains` validates many chains at once; a :class:`VerificationCache` keeps validated
Sub-CA paths between calls. :data:`PROFILES` names the chain profiles (``iso2-contract`` ...
``iso20-vehicle``); a naive ``at`` (no tzinfo) means UTC.

Also here: ISO 15118 message-signature primitives (:func:`sign`, :func:`verify_signature`,
:class:`Suite`), contract-key transport (:func:`encrypt_contract_key`, :func:`decrypt_contract_key`),
OCSP (:func:`build_ocsp_request`, :func:`check_ocsp_response`, :func:`ocpp_request_data`) and a
test-PKI issuer (:func:`issue_test_pki`, :class:`TestPKI`). Every error is a :class:`PKIError`; the
ones bad input causes are also ``ValueError`` (:class:`UnknownProfileError` a ``KeyError``).
"""
from __future__ import annotations

from pki.errors import (
    CertificateRevokedError,
    ChainValidationError,
    KeyTransportError,
    OCSPError,
    OCSPProblem,
    PKIError,
    Reason,
    SignatureError,
    TrustStoreError,
    UnknownProfileError,
    iso_response_code,
)
from pki.issue import (
    DEFAULT_EMAID,
    DEFAULT_PCID,
    ChainCase,
    ContractBundle,
    IssuedCertificate,
    IssueError,
    TestPKI,
    broken_chains,
    issue_contract,
    issue_cps,
    issue_leaf,
    issue_oem_provisioning,
    issue_secc,
    issue_test_pki,
    issue_vehicle,
)
from pki.keytransport import EncryptedContractKey, decrypt_contract_key, encrypt_contract_key
from pki.ocsp import CertID, CertStatus, OCSPResult, build_ocsp_request, cert_id, check_ocsp_response, ocpp_request_data
from pki.profiles import (
    CERT_PROFILES,
    CHAIN_PROFILES,
    ROLES,
    STORE_ROLES,
    CertProfile,
    ChainProfile,
    cert_profile,
    chain_profile,
    is_valid_emaid,
    is_valid_pcid,
    normalize_emaid,
)
from pki.signature import PrivateKey, PublicKey, Suite, der_to_raw, raw_to_der, sign, suite_for_key
from pki.signature import verify as verify_signature
from pki.store import TrustStore, pem_to_der
from pki.verify import VerificationCache, VerifiedChain, verify_chain, verify_chains

#: the chain profile names :func:`verify_chain` accepts, ``"iso2-contract"`` ... ``"iso20-vehicle"``
PROFILES: tuple[str, ...] = tuple(CHAIN_PROFILES)

__all__ = [
    # chain validation
    "TrustStore",
    "verify_chain",
    "verify_chains",
    "VerificationCache",
    "VerifiedChain",
    "pem_to_der",
    # errors
    "PKIError",
    "ChainValidationError",
    "CertificateRevokedError",
    "Reason",
    "TrustStoreError",
    "UnknownProfileError",
    "OCSPError",
    "OCSPProblem",
    "KeyTransportError",
    "SignatureError",
    "iso_response_code",
    # profiles
    "PROFILES",
    "CHAIN_PROFILES",
    "CERT_PROFILES",
    "ROLES",
    "STORE_ROLES",
    "ChainProfile",
    "CertProfile",
    "chain_profile",
    "cert_profile",
    "is_valid_emaid",
    "is_valid_pcid",
    "normalize_emaid",
    # signatures
    "Suite",
    "PrivateKey",
    "PublicKey",
    "sign",
    "verify_signature",
    "suite_for_key",
    "raw_to_der",
    "der_to_raw",
    # contract-key transport
    "EncryptedContractKey",
    "encrypt_contract_key",
    "decrypt_contract_key",
    # OCSP
    "CertStatus",
    "CertID",
    "OCSPResult",
    "cert_id",
    "build_ocsp_request",
    "check_ocsp_response",
    "ocpp_request_data",
    # test PKI
    "issue_test_pki",
    "TestPKI",
    "IssueError",
    "IssuedCertificate",
    "ChainCase",
    "ContractBundle",
    "DEFAULT_EMAID",
    "DEFAULT_PCID",
    "issue_leaf",
    "issue_contract",
    "issue_secc",
    "issue_cps",
    "issue_oem_provisioning",
    "issue_vehicle",
    "broken_chains",
]


def __dir__() -> list[str]:
    """The public API only (``dir(pki)``); submodules stay importable by name."""
    return sorted(__all__)
