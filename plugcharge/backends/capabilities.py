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
* :class:`SessionReportingBackend` — OCPP **TransactionEvent** (Started / Updated / Ended with
  the session's meter values): ``session_reporter(id_token=...)`` returns a callable the runner
  feeds every charger session event to; it must never block (a CSMS call is queued, not awaited).

Field names follow OCPP 2.0.1 in snake_case, like the dataclasses of :mod:`plugcharge.backends.base`.
"""
from __future__ import annotations

import base64
import dataclasses
from typing import Any, Callable, Optional, Protocol, runtime_checkable

from .base import OCSPRequestData

__all__ = [
    "GetCertificateStatusResponse",
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
