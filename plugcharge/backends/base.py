"""The charger's backend interface, shaped like OCPP 2.0.1.

A charger (SECC) never issues contracts or decides on authorisation itself: it forwards

* the EV's CertificateInstallationReq / CertificateUpdateReq as OCPP **Get15118EVCertificate**
  (:class:`Get15118EVCertificateRequest` → :class:`Get15118EVCertificateResponse`, the EXI of the
  signed CertificateInstallationRes/UpdateRes V2G_Message, base64 as in OCPP), and
* the contract (eMAID, certificate chain as PEM, OCSP request data) as OCPP **Authorize**
  (:class:`AuthorizeRequest` → :class:`AuthorizeResponse`).

Field names follow OCPP 2.0.1 in snake_case; :meth:`to_ocpp`/``from_ocpp`` convert to and from the
camelCase JSON payloads.  :class:`Backend` is the synchronous interface, :class:`AsyncBackend` the
async one; :func:`as_async` runs a synchronous backend from async code (in a worker thread).

:class:`plugcharge.backends.simulated.SimulatedBackend` implements it in process with the ``pki``
test PKI.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable


__all__ = [
    "ISO2_SCHEMA_VERSION",
    "ISO20_SCHEMA_VERSION",
    "V2G20_CERTIFICATE",
    "CERTIFICATE_STATUS_RESPONSE_CODE",
    "CERTIFICATE_STATUS_RESPONSE_CODE_20",
    "iso20_response_code",
    "Get15118EVCertificateRequest",
    "Get15118EVCertificateResponse",
    "OCSPRequestData",
    "AuthorizeRequest",
    "AuthorizeResponse",
    "Backend",
    "AsyncBackend",
    "SyncBackendAdapter",
    "as_async",
    "iso_response_code",
    "pem_chain",
    "der_chain_from_pem",
    "certificate_request_for",
    "certificate_response_command",
    "authorize_request_for",
    "authorization_result_command",
]

logger = logging.getLogger(__name__)

#: ``iso15118SchemaVersion`` OCPP uses for ISO 15118-2 messages.
ISO2_SCHEMA_VERSION = "urn:iso:15118:2:2013:MsgDef"
#: ``iso15118SchemaVersion`` for ISO 15118-20: the namespace of the CommonMessages schema, which
#: carries CertificateInstallationReq/Res.
ISO20_SCHEMA_VERSION = "urn:iso:std:iso:15118:-20:CommonMessages"
#: OCPP 2.1's certificate use (InstallCertificate, GetInstalledCertificateIds, SignCertificate) of
#: the charger's ISO 15118-20 SECC certificate, beside 2.0.1's ``V2GCertificate`` (-2).
V2G20_CERTIFICATE = "V2G20Certificate"
_MAX_PRIORITIZED_EMAIDS = 8

_ACTIONS = ("Install", "Update")
_CERT_STATUS = ("Accepted", "SignatureError", "CertificateExpired", "CertificateRevoked",
                "NoCertificateAvailable", "CertChainError", "ContractCancelled")
_ID_STATUS = ("Accepted", "Blocked", "ConcurrentTx", "Expired", "Invalid", "NoCredit", "NotAllowedTypeEVSE",
              "NotAtThisLocation", "NotAtThisTime", "Unknown")

#: OCPP ``AuthorizeCertificateStatusEnumType`` → ISO 15118-20 ResponseCode of AuthorizationRes: -20
#: has no FAILED code for certificates, a refused contract is a WARNING after which the EV may use
#: EIM (see :mod:`plugcharge.pnc.codes20`); ``SignatureError`` is the backend's finding about the
#: chain, not about the message signature the charger checked.
CERTIFICATE_STATUS_RESPONSE_CODE_20: Mapping[str, str] = {
    "Accepted": "OK",
    "SignatureError": "WARNING_CertificateValidationError",
    "CertificateExpired": "WARNING_CertificateExpired",
    "CertificateRevoked": "WARNING_CertificateRevoked",
    "NoCertificateAvailable": "WARNING_eMSPUnknown",
    "CertChainError": "WARNING_CertificateValidationError",
    "ContractCancelled": "WARNING_GeneralPnCAuthorizationError",
}

#: OCPP ``AuthorizeCertificateStatusEnumType`` → ISO 15118-2 ResponseCode of PaymentDetailsRes /
#: AuthorizationRes.
CERTIFICATE_STATUS_RESPONSE_CODE: Mapping[str, str] = {
    "Accepted": "OK",
    "SignatureError": "FAILED_SignatureError",
    "CertificateExpired": "FAILED_CertificateExpired",
    "CertificateRevoked": "FAILED_CertificateRevoked",
    "NoCertificateAvailable": "FAILED_NoCertificateAvailable",
    "CertChainError": "FAILED_CertChainError",
    "ContractCancelled": "FAILED_ContractCanceled",  # ISO spells it with one 'l'
}


# ---------------------------------------------------------------------------------------------
# OCPP-shaped messages
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class Get15118EVCertificateRequest:
    """OCPP 2.0.1 Get15118EVCertificateRequest.

    ``exi_request`` is base64 of the EXI-encoded V2G_Message carrying CertificateInstallationReq
    (``action="Install"``) or CertificateUpdateReq (``"Update"``), exactly as the EV sent it; for
    ISO 15118-20 (:data:`ISO20_SCHEMA_VERSION`) the CertificateInstallationReq root message.
    OCPP 2.1 adds, for -20, ``maximum_contract_certificate_chains`` and ``prioritized_emaids``
    (copied from the request, so a CSMS need not decode the EXI); ``None`` = absent.
    """

    iso15118_schema_version: str
    action: str
    exi_request: str
    maximum_contract_certificate_chains: Optional[int] = None
    prioritized_emaids: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise ValueError(f"action must be one of {_ACTIONS}, not {self.action!r}")
        m = self.maximum_contract_certificate_chains
        if m is not None and (not isinstance(m, int) or not 0 <= m <= 255):
            raise ValueError(f"maximumContractCertificateChains must be 0..255, not {m!r}")
        if self.prioritized_emaids is not None and not 1 <= len(self.prioritized_emaids) <= _MAX_PRIORITIZED_EMAIDS:
            raise ValueError(f"prioritizedEMAIDs holds 1 to {_MAX_PRIORITIZED_EMAIDS} eMAIDs")

    @classmethod
    def from_exi(cls, exi: bytes, action: str = "Install", schema: str = ISO2_SCHEMA_VERSION, *,
                 maximum_contract_certificate_chains: Optional[int] = None,
                 prioritized_emaids: Optional[Sequence[str]] = None) -> "Get15118EVCertificateRequest":
        """Build the request from the raw EXI bytes."""
        return cls(schema, action, base64.b64encode(exi).decode("ascii"), maximum_contract_certificate_chains,
                   tuple(prioritized_emaids) if prioritized_emaids else None)

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON payload (the OCPP 2.1 fields only when set)."""
        out: dict[str, Any] = {"iso15118SchemaVersion": self.iso15118_schema_version, "action": self.action,
                               "exiRequest": self.exi_request}
        if self.maximum_contract_certificate_chains is not None:
            out["maximumContractCertificateChains"] = self.maximum_contract_certificate_chains
        if self.prioritized_emaids:
            out["prioritizedEMAIDs"] = list(self.prioritized_emaids)
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class Get15118EVCertificateResponse:
    """OCPP 2.0.1 Get15118EVCertificateResponse (``exi_response``: base64 EXI, empty on failure).

    ``remaining_contracts``: OCPP 2.1's count of contracts further requests fetch (-20).
    ``response_code``: the ISO ResponseCode of a refusal when the backend knows it (an in-process
    backend; OCPP carries it only inside an EXI response), for the charger's failure response.
    """

    status: str
    exi_response: str = ""
    status_info: Optional[str] = None  # OCPP statusInfo.reasonCode, log-safe
    remaining_contracts: Optional[int] = None
    response_code: Optional[str] = None

    def __post_init__(self) -> None:
        if self.status not in ("Accepted", "Failed"):
            raise ValueError(f"status must be Accepted or Failed, not {self.status!r}")

    @property
    def exi(self) -> bytes:
        """The decoded EXI bytes (empty when failed)."""
        return base64.b64decode(self.exi_response) if self.exi_response else b""

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON payload."""
        out: dict[str, Any] = {"status": self.status, "exiResponse": self.exi_response}
        if self.status_info:
            out["statusInfo"] = {"reasonCode": self.status_info}
        if self.remaining_contracts is not None:
            out["remainingContracts"] = self.remaining_contracts
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class OCSPRequestData:
    """OCPP 2.0.1 OCSPRequestDataType (one per certificate of the contract chain)."""

    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    responder_url: str

    _KEYS = (("hash_algorithm", "hashAlgorithm"), ("issuer_name_hash", "issuerNameHash"),
             ("issuer_key_hash", "issuerKeyHash"), ("serial_number", "serialNumber"),
             ("responder_url", "responderURL"))

    @classmethod
    def from_ocpp(cls, data: Mapping[str, Any]) -> "OCSPRequestData":
        """From an OCPP camelCase dict (snake_case keys accepted too)."""
        try:
            return cls(**{snake: str(data[camel] if camel in data else data[snake]) for snake, camel in cls._KEYS})
        except KeyError as exc:
            raise ValueError(f"OCSPRequestData lacks {exc.args[0]!r}") from None

    def to_ocpp(self) -> dict[str, str]:
        """The OCPP JSON object."""
        return {camel: getattr(self, snake) for snake, camel in self._KEYS}


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """OCPP 2.0.1 AuthorizeRequest for Plug & Charge (idToken type eMAID) or EIM.

    ``certificate`` is the contract chain as PEM (leaf first); ``iso15118_certificate_hash_data``
    the OCSP request data of the chain's certificates (when the charger sends no certificate).
    """

    id_token: str
    certificate: Optional[str] = None
    iso15118_certificate_hash_data: Optional[tuple[OCSPRequestData, ...]] = None
    id_token_type: str = "eMAID"

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON payload."""
        out: dict[str, Any] = {"idToken": {"idToken": self.id_token, "type": self.id_token_type}}
        if self.certificate is not None:
            out["certificate"] = self.certificate
        if self.iso15118_certificate_hash_data:
            out["iso15118CertificateHashData"] = [d.to_ocpp() for d in self.iso15118_certificate_hash_data]
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizeResponse:
    """OCPP 2.0.1 AuthorizeResponse: ``idTokenInfo.status`` and ``certificateStatus``."""

    id_token_status: str
    certificate_status: Optional[str] = None

    def __post_init__(self) -> None:
        if self.id_token_status not in _ID_STATUS:
            raise ValueError(f"unknown idTokenInfo.status {self.id_token_status!r}")
        if self.certificate_status is not None and self.certificate_status not in _CERT_STATUS:
            raise ValueError(f"unknown certificateStatus {self.certificate_status!r}")

    @property
    def accepted(self) -> bool:
        """Both the token and (if checked) the certificate are accepted."""
        return self.id_token_status == "Accepted" and self.certificate_status in (None, "Accepted")

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON payload."""
        out: dict[str, Any] = {"idTokenInfo": {"status": self.id_token_status}}
        if self.certificate_status is not None:
            out["certificateStatus"] = self.certificate_status
        return out


def iso_response_code(response: AuthorizeResponse) -> str:
    """The ISO 15118-2 ResponseCode a charger answers with for this Authorize result."""
    if response.certificate_status not in (None, "Accepted"):
        return CERTIFICATE_STATUS_RESPONSE_CODE[response.certificate_status]  # type: ignore[index]
    return "OK" if response.id_token_status == "Accepted" else "FAILED"


def iso20_response_code(response: AuthorizeResponse) -> str:
    """The ISO 15118-20 AuthorizationRes ResponseCode for this Authorize result (before the 14-day
    flag, :func:`plugcharge.pnc.auth20.authorization_response_code`): a rejected certificate gives its
    WARNING code, a rejected token ``WARNING_GeneralPnCAuthorizationError``."""
    if response.certificate_status not in (None, "Accepted"):
        return CERTIFICATE_STATUS_RESPONSE_CODE_20[response.certificate_status]  # type: ignore[index]
    return "OK" if response.id_token_status == "Accepted" else "WARNING_GeneralPnCAuthorizationError"


_PEM_BEGIN, _PEM_END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def pem_chain(certs: Sequence[bytes]) -> str:
    """PEM text of DER certificates (leaf first), as OCPP's Authorize ``certificate`` field wants (the
    text ``cryptography`` writes: base64 in lines of 64 characters; the DER is not parsed here)."""
    out = []
    for der in certs:
        if not isinstance(der, (bytes, bytearray)) or len(der) < 2 or der[0] != 0x30:
            raise ValueError("a certificate of the chain is not DER")
        b64 = base64.b64encode(bytes(der)).decode("ascii")
        lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
        out.append(f"{_PEM_BEGIN}\n{lines}\n{_PEM_END}\n")
    return "".join(out)


def der_chain_from_pem(pem: str) -> list[bytes]:
    """DER certificates of a PEM chain (the inverse of :func:`pem_chain`); ValueError for text that
    is not PEM certificates (the DER itself is checked by whoever validates the chain)."""
    ders: list[bytes] = []
    rest = pem.strip()
    while rest:
        if not rest.startswith(_PEM_BEGIN):
            raise ValueError("not a PEM certificate chain")
        end = rest.find(_PEM_END)
        if end < 0:
            raise ValueError("PEM certificate without its END line")
        try:
            ders.append(base64.b64decode("".join(rest[len(_PEM_BEGIN):end].split()), validate=True))
        except ValueError:
            raise ValueError("PEM certificate with invalid base64") from None
        rest = rest[end + len(_PEM_END):].strip()
    return ders


# ---------------------------------------------------------------------------------------------
# session events <-> backend calls (sans-IO: the runner, the benchmarks and tests share them)
# ---------------------------------------------------------------------------------------------
def certificate_request_for(need: Any) -> Get15118EVCertificateRequest:
    """The Get15118EVCertificate for a charger's ``CertificateInstallationNeeded`` (for ISO 15118-20
    with OCPP 2.1's ``maximumContractCertificateChains`` and ``prioritizedEMAIDs`` copied from it)."""
    emaids = tuple(need.prioritized_emaids)[:_MAX_PRIORITIZED_EMAIDS]
    return Get15118EVCertificateRequest.from_exi(need.exi_request, need.action, need.schema_version,
                                                 maximum_contract_certificate_chains=need.maximum_contract_chains,
                                                 prioritized_emaids=emaids or None)


def certificate_response_command(response: Optional[Get15118EVCertificateResponse], *,
                                 failure: str = "no backend") -> Any:
    """The ``CertificateInstallationResponse`` command for the backend's answer (``None``: no answer,
    ``failure`` says why): the EXI when accepted, else the refusal's ResponseCode when the backend
    named one and its log-safe reason."""
    from ..core.events import CertificateInstallationResponse

    exi = response.exi if response is not None and response.status == "Accepted" else None
    code = response.response_code if response is not None and exi is None else None
    reason = failure if response is None else (response.status_info or "") if exi is None else ""
    return CertificateInstallationResponse(exi, exi is not None, code, reason)


def authorize_request_for(need: Any, id_token: Optional[str] = None) -> Optional[AuthorizeRequest]:
    """The Authorize for a charger's ``AuthorizationNeeded``: the eMAID with the PEM chain and OCSP
    data for a contract; ``id_token`` (ISO14443) for ExternalPayment; None when there is nothing to
    ask (ExternalPayment without a token: accepted locally)."""
    if need.payment == "Contract":
        return AuthorizeRequest(need.emaid or "", pem_chain(need.chain) if need.chain else None,
                                tuple(OCSPRequestData.from_ocpp(d) for d in need.ocsp_data) or None)
    if id_token is not None:
        return AuthorizeRequest(id_token, id_token_type="ISO14443")
    return None


def authorization_result_command(response: Optional[AuthorizeResponse], *, iso20: bool = False,
                                 payment: Optional[str] = None) -> Any:
    """The ``AuthorizationResult`` command for an Authorize answer (``None``: accepted locally); a
    refusal carries the -2 FAILED code or, with ``iso20``, the -20 WARNING code of the certificate
    status (:func:`iso20_response_code`). ``payment``: that of the ``AuthorizationNeeded`` answered
    (the -20 charger ignores an answer to a request the EV has abandoned)."""
    from ..core.events import AuthorizationResult

    if response is None or response.accepted:
        return AuthorizationResult(True, payment=payment)
    return AuthorizationResult(False, iso20_response_code(response) if iso20 else iso_response_code(response),
                               payment=payment)


# ---------------------------------------------------------------------------------------------
# interfaces
# ---------------------------------------------------------------------------------------------
@runtime_checkable
class Backend(Protocol):
    """Synchronous backend (CSMS) as seen by the charger."""

    def get_15118_ev_certificate(self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """Forward a contract installation/update request; return the signed EXI response."""
        ...

    def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """Authorise an eMAID (with its contract chain / OCSP data)."""
        ...


@runtime_checkable
class AsyncBackend(Protocol):
    """Asynchronous backend (e.g. an OCPP websocket client)."""

    async def get_15118_ev_certificate(self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """See :meth:`Backend.get_15118_ev_certificate`."""
        ...

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """See :meth:`Backend.authorize`."""
        ...


class SyncBackendAdapter:
    """Runs a synchronous :class:`Backend` from async code.

    With ``in_thread=True`` (default) each call runs in a worker thread so a slow backend does
    not block the event loop; ``False`` calls inline (fine for the in-process simulation).
    """

    def __init__(self, backend: Backend, *, in_thread: bool = True) -> None:
        self.backend = backend
        self.in_thread = in_thread

    async def _call(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        if self.in_thread:
            return await asyncio.to_thread(fn, arg)
        return fn(arg)

    async def get_15118_ev_certificate(self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """Async wrapper of the sync call."""
        return await self._call(self.backend.get_15118_ev_certificate, request)

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """Async wrapper of the sync call."""
        return await self._call(self.backend.authorize, request)


def as_async(backend: Backend | AsyncBackend, *, in_thread: bool = True) -> AsyncBackend:
    """Return ``backend`` itself if its methods are coroutines, else a :class:`SyncBackendAdapter`."""
    if asyncio.iscoroutinefunction(getattr(backend, "authorize", None)):
        return backend  # type: ignore[return-value]
    return SyncBackendAdapter(backend, in_thread=in_thread)  # type: ignore[arg-type]
