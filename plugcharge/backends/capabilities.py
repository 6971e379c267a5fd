"""Optional backend capabilities beyond the two calls every charger backend has.

Every backend answers ``get_15118_ev_certificate`` and ``authorize`` (see
:mod:`plugcharge.backends.base`).  A backend that is a real CSMS connection can do more; each extra is a
small :class:`typing.Protocol` so a caller checks for it with ``isinstance`` and the simulated
backend stays valid without it:

* :class:`CertificateStatusBackend` — OCPP **GetCertificateStatus**: the OCSP response for one
  certificate (``OCSPRequestData`` in, DER OCSP response out; :func:`pki.ocsp.check_ocsp_response`
  checks it).
* :class:`SECCRenewalBackend` — OCPP **SignCertificate** (``certificateType`` V2GCertificate) with a
  CSR, answered later by the CSMS's **CertificateSigned**; the charger accepts the new SECC chain
  only after checking it with :mod:`pki` (profile ``iso2-secc``: DC=CPO [V2G2-925], key usage,
  chain to the V2G root) and that it certifies the key of the CSR.
* :class:`CertificateChainStatusBackend` — OCPP 2.1 **GetCertificateChainStatus**: the revocation
  status of up to four certificates of one chain at once (:class:`CertificateStatusRequestInfo` in,
  :class:`CertificateChainStatus` out), e.g. the vehicle chain of ISO 15118-20 mutual TLS, whose
  revocation the SECC shall check [V2G20-2432].
* :class:`SessionReportingBackend` — OCPP **TransactionEvent** (Started / Updated / Ended with
  the session's meter values): ``session_reporter(id_token=...)`` returns a callable the runner
  feeds every charger session event to; it must never block (a CSMS call is queued, not awaited).

Field names follow OCPP 2.0.1 in snake_case, like the dataclasses of :mod:`plugcharge.backends.base`.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

from .base import OCSPRequestData

__all__ = [
    "GetCertificateStatusResponse",
    "CertificateStatusRequestInfo",
    "CertificateChainStatus",
    "CertificateChainStatusBackend",
    "MAX_CHAIN_STATUS_REQUESTS",
    "SECCCertificate",
    "CertificateStatusBackend",
    "SECCRenewalBackend",
    "SessionReportingBackend",
    "SessionReporter",
]

#: Feeds one charger session's events (:mod:`plugcharge.core.events`) to the backend; never blocks.
SessionReporter = Callable[[Any], None]


@dataclasses.dataclass(frozen=True, slots=True)
class GetCertificateStatusResponse:
    """OCPP 2.0.1 GetCertificateStatusResponse (``ocsp_result``: base64 DER OCSP response)."""

    status: str
    ocsp_result: str = ""
    status_info: Optional[str] = None

    def __post_init__(self) -> None:
        if self.status not in ("Accepted", "Failed"):
            raise ValueError(f"status must be Accepted or Failed, not {self.status!r}")

    @property
    def der(self) -> bytes:
        """The DER OCSP response (empty when failed)."""
        return base64.b64decode(self.ocsp_result) if self.ocsp_result else b""

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON payload."""
        out: dict[str, Any] = {"status": self.status}
        if self.ocsp_result:
            out["ocspResult"] = self.ocsp_result
        if self.status_info:
            out["statusInfo"] = {"reasonCode": self.status_info}
        return out


_CHAIN_STATUS = ("Good", "Revoked", "Unknown", "Failed")
#: OCPP 2.1 GetCertificateChainStatusRequest holds 1 to 4 certificates
MAX_CHAIN_STATUS_REQUESTS = 4


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateStatusRequestInfo:
    """OCPP 2.1 CertificateStatusRequestInfoType: one certificate's ``certificateHashData``, the
    ``source`` (``"OCSP"`` or ``"CRL"``) and its ``urls`` (1 to 5)."""

    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    urls: tuple[str, ...]
    source: str = "OCSP"

    def __post_init__(self) -> None:
        if self.source not in ("OCSP", "CRL"):
            raise ValueError(f"source must be OCSP or CRL, not {self.source!r}")
        if not 1 <= len(self.urls) <= 5:
            raise ValueError("urls holds 1 to 5 URLs")

    @classmethod
    def from_ocsp_request_data(cls, data: OCSPRequestData) -> "CertificateStatusRequestInfo":
        """From the OCPP 2.0.1 OCSPRequestData of a certificate (its responder URL as the one URL)."""
        return cls(data.hash_algorithm, data.issuer_name_hash, data.issuer_key_hash, data.serial_number,
                   (data.responder_url,))

    @property
    def ocsp_request_data(self) -> OCSPRequestData:
        """The same certificate as OCPP 2.0.1 OCSPRequestData (first URL as responder)."""
        return OCSPRequestData(self.hash_algorithm, self.issuer_name_hash, self.issuer_key_hash, self.serial_number,
                               self.urls[0])

    def hash_data(self) -> dict[str, str]:
        """OCPP CertificateHashDataType JSON."""
        return {"hashAlgorithm": self.hash_algorithm, "issuerNameHash": self.issuer_name_hash,
                "issuerKeyHash": self.issuer_key_hash, "serialNumber": self.serial_number}

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON object."""
        return {"certificateHashData": self.hash_data(), "source": self.source, "urls": list(self.urls)}


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateChainStatus:
    """OCPP 2.1 CertificateStatusType: ``status`` Good, Revoked, Unknown or Failed, valid until ``next_update``."""

    request: CertificateStatusRequestInfo
    status: str
    next_update: dt.datetime

    def __post_init__(self) -> None:
        if self.status not in _CHAIN_STATUS:
            raise ValueError(f"status must be one of {_CHAIN_STATUS}, not {self.status!r}")

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON object."""
        return {"certificateHashData": self.request.hash_data(), "source": self.request.source,
                "status": self.status, "nextUpdate": self.next_update.isoformat()}


@dataclasses.dataclass(frozen=True)
class SECCCertificate:
    """A renewed SECC certificate: the chain (DER, leaf first, Sub-CAs after it) and its key."""

    chain: tuple[bytes, ...]
    private_key: Any = dataclasses.field(repr=False, compare=False)

    @property
    def leaf(self) -> bytes:
        """DER of the new SECC leaf."""
        return self.chain[0]


@runtime_checkable
class CertificateStatusBackend(Protocol):
    """A backend that fetches OCSP responses (OCPP GetCertificateStatus)."""

    async def get_certificate_status(self, request: OCSPRequestData) -> GetCertificateStatusResponse:
        """The CSMS's OCSP response for the certificate ``request`` names."""
        ...


@runtime_checkable
class CertificateChainStatusBackend(Protocol):
    """A backend that answers OCPP 2.1 GetCertificateChainStatus (1 to 4 certificates of one chain)."""

    async def get_certificate_chain_status(
            self, requests: Sequence[CertificateStatusRequestInfo]) -> tuple[CertificateChainStatus, ...]:
        """The status of each requested certificate, in order."""
        ...


@runtime_checkable
class SECCRenewalBackend(Protocol):
    """A backend that renews the charger's SECC certificate (OCPP SignCertificate / CertificateSigned)."""

    async def renew_secc_certificate(self, *, private_key: Any = None) -> SECCCertificate:
        """Send a CSR, wait for CertificateSigned, check it and return the accepted chain."""
        ...


@runtime_checkable
class SessionReportingBackend(Protocol):
    """A backend that reports sessions to the CSMS (OCPP TransactionEvent)."""

    def session_reporter(self, *, id_token: Optional[str] = None) -> SessionReporter:
        """A fresh reporter for one charger session (``id_token``: the EIM token, if any)."""
        ...
