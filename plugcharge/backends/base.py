"""The charger's backend interface (shaped like OCPP 2.0.1) and a simulated backend.

A charger (SECC) never issues contracts or decides on authorisation itself: it forwards

* the EV's CertificateInstallationReq / CertificateUpdateReq as OCPP **Get15118EVCertificate**
  (:class:`Get15118EVCertificateRequest` → :class:`Get15118EVCertificateResponse`, the EXI of the
  signed CertificateInstallationRes/UpdateRes V2G_Message, base64 as in OCPP), and
* the contract (eMAID, certificate chain as PEM, OCSP request data) as OCPP **Authorize**
  (:class:`AuthorizeRequest` → :class:`AuthorizeResponse`).

Field names follow OCPP 2.0.1 in snake_case; :meth:`to_ocpp`/``from_ocpp`` convert to and from the
camelCase JSON payloads.  :class:`Backend` is the synchronous interface, :class:`AsyncBackend` the
async one; :func:`as_async` runs a synchronous backend from async code (in a worker thread).

:class:`SimulatedBackend` plays the certificate provisioning service (CPS) and the e-mobility
provider (eMSP, "MO") with the ``pki`` test PKI: it knows PCIDs (:meth:`~SimulatedBackend.register_pcid`),
issues a fresh contract for a known PCID (CertificateInstallationReq signed by that PCID's OEM
provisioning key), renews contracts (CertificateUpdateReq signed by the old contract key), revokes
and cancels contracts, and authorises eMAIDs with full chain validation.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import logging
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..core.errors import PlugChargeError

__all__ = [
    "ISO2_SCHEMA_VERSION",
    "CERTIFICATE_STATUS_RESPONSE_CODE",
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
    "IssuedContract",
    "SimulatedBackend",
    "ResponseBuilder",
]

logger = logging.getLogger(__name__)

#: ``iso15118SchemaVersion`` OCPP uses for ISO 15118-2 messages.
ISO2_SCHEMA_VERSION = "urn:iso:15118:2:2013:MsgDef"

_ACTIONS = ("Install", "Update")
_CERT_STATUS = ("Accepted", "SignatureError", "CertificateExpired", "CertificateRevoked",
                "NoCertificateAvailable", "CertChainError", "ContractCancelled")
_ID_STATUS = ("Accepted", "Blocked", "ConcurrentTx", "Expired", "Invalid", "NoCredit", "NotAllowedTypeEVSE",
              "NotAtThisLocation", "NotAtThisTime", "Unknown")

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
    (``action="Install"``) or CertificateUpdateReq (``"Update"``), exactly as the EV sent it.
    """

    iso15118_schema_version: str
    action: str
    exi_request: str

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise ValueError(f"action must be one of {_ACTIONS}, not {self.action!r}")

    @classmethod
    def from_exi(cls, exi: bytes, action: str = "Install", schema: str = ISO2_SCHEMA_VERSION) -> "Get15118EVCertificateRequest":
        """Build the request from the raw EXI bytes."""
        return cls(schema, action, base64.b64encode(exi).decode("ascii"))

    def to_ocpp(self) -> dict[str, Any]:
        """The OCPP JSON payload."""
        return {"iso15118SchemaVersion": self.iso15118_schema_version, "action": self.action,
                "exiRequest": self.exi_request}


@dataclasses.dataclass(frozen=True, slots=True)
class Get15118EVCertificateResponse:
    """OCPP 2.0.1 Get15118EVCertificateResponse (``exi_response``: base64 EXI, empty on failure)."""

    status: str
    exi_response: str = ""
    status_info: Optional[str] = None  # OCPP statusInfo.reasonCode, log-safe

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


def pem_chain(certs: Sequence[bytes]) -> str:
    """PEM text of DER certificates (leaf first), as OCPP's Authorize ``certificate`` field wants."""
    return "".join(x509.load_der_x509_certificate(c).public_bytes(serialization.Encoding.PEM).decode("ascii")
                   for c in certs)


def _der_chain_from_pem(pem: str) -> list[bytes]:
    certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    return [c.public_bytes(serialization.Encoding.DER) for c in certs]


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


# ---------------------------------------------------------------------------------------------
# the simulated CPS + eMSP
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class IssuedContract:
    """A contract the simulated eMSP issued (key kept for the EXI response only)."""

    emaid: str
    pcid: Optional[str]
    leaf: bytes
    sub_cas: tuple[bytes, ...]
    private_key: Any = dataclasses.field(repr=False, compare=False)

    @property
    def serial(self) -> int:
        """Serial number of the contract certificate."""
        return x509.load_der_x509_certificate(self.leaf).serial_number


#: Builds the signed CertificateInstallationRes/UpdateRes EXI for an issued contract:
#: ``(request message dict, action, contract, receiver public key) -> EXI bytes``.
ResponseBuilder = Callable[[Mapping[str, Any], str, IssuedContract, Any], bytes]


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class SimulatedBackend:
    """In-process CPS + eMSP using a ``pki.issue.TestPKI`` (ISO 15118-2).

    Args:
        pki: the test PKI (its MO Sub-CA 2 issues contracts, its CPS leaf signs responses, its
            roots form the trust store for validation).
        clock: returns the current time (aware UTC); tests pass a fixed clock.
        response_builder: replaces the built-in EXI response builder (see :data:`ResponseBuilder`).
        codecs: EXI codec provider passed on to :mod:`plugcharge.signatures` (default: ``exi``).
    """

    def __init__(self, pki: Any, *, clock: Callable[[], dt.datetime] = _utcnow,
                 response_builder: ResponseBuilder | None = None, codecs: Any = None) -> None:
        from pki.store import TrustStore

        self.pki = pki
        self.clock = clock
        self.codecs = codecs
        self._builder = response_builder or self._build_response
        self.store = TrustStore(pki.store_roots())
        self._pcids: dict[str, str] = {}
        self._id_tokens: set[str] = set()
        self._revoked_serials: set[int] = set()
        self._cancelled: set[str] = set()
        self.issued: list[IssuedContract] = []
        #: when set, every installation/update fails with this reason (demo of the fallback)
        self.fail_installations: Optional[str] = None
        self._id_counter = 0

    def __repr__(self) -> str:
        return f"SimulatedBackend(pcids={len(self._pcids)}, issued={len(self.issued)})"

    # -- registry ------------------------------------------------------------------------
    def register_pcid(self, pcid: str, emaid: str) -> None:
        """The driver gave this PCID to the eMSP, which assigned ``emaid`` to it."""
        from pki.profiles import is_valid_emaid

        if not is_valid_emaid(emaid):
            raise ValueError(f"not a valid eMAID: {emaid!r}")
        self._pcids[pcid] = emaid
        self._cancelled.discard(_norm(emaid))

    def register_id_token(self, token: str) -> None:
        """An RFID/app token the eMSP accepts for ExternalPayment (EIM)."""
        self._id_tokens.add(token)

    def emaid_for(self, pcid: str) -> Optional[str]:
        """The eMAID registered for ``pcid``."""
        return self._pcids.get(pcid)

    def issue_contract(self, pcid: str, *, now: dt.datetime | None = None) -> IssuedContract:
        """Issue a fresh contract certificate (new key) for a registered PCID."""
        emaid = self._pcids.get(pcid)
        if emaid is None:
            raise KeyError(f"unknown PCID {pcid!r}")
        return self._issue(emaid, pcid, now)

    def _issue(self, emaid: str, pcid: Optional[str], now: dt.datetime | None) -> IssuedContract:
        issued = self.pki.issue_contract(emaid, now=now or self.clock())
        chain = self.pki.chain("iso2-contract")
        contract = IssuedContract(emaid, pcid, issued.der, tuple(chain.intermediates), issued.key)
        self.issued.append(contract)
        return contract

    def revoke(self, emaid: str) -> int:
        """Revoke every contract certificate issued for ``emaid``; returns how many."""
        serials = {c.serial for c in self.issued if _norm(c.emaid) == _norm(emaid)}
        self._revoked_serials |= serials
        return len(serials)

    def revoke_serial(self, serial: int) -> None:
        """Revoke one certificate by serial number."""
        self._revoked_serials.add(serial)

    def cancel_contract(self, emaid: str) -> None:
        """The eMSP ended the contract: Authorize answers ContractCancelled."""
        self._cancelled.add(_norm(emaid))

    # -- Authorize ----------------------------------------------------------------------
    def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """Validate the contract chain (profile ``iso2-contract``), revocation and contract state."""
        from pki.errors import ChainValidationError, Reason
        from pki.verify import verify_chain

        now = self.clock()
        token = request.id_token
        if request.id_token_type != "eMAID":
            return AuthorizeResponse("Accepted" if token in self._id_tokens else "Unknown")
        known = self._known_emaid(token)
        if request.certificate is None:
            if not known:
                return AuthorizeResponse("Unknown", "NoCertificateAvailable" if request.iso15118_certificate_hash_data else None)
            if _norm(token) in self._cancelled:
                return AuthorizeResponse("Invalid", "ContractCancelled")
            for d in request.iso15118_certificate_hash_data or ():
                try:
                    if int(d.serial_number, 16) in self._revoked_serials:
                        return AuthorizeResponse("Blocked", "CertificateRevoked")
                except ValueError:
                    return AuthorizeResponse("Invalid", "CertChainError")
            return AuthorizeResponse("Accepted", "Accepted" if request.iso15118_certificate_hash_data else None)
        try:
            ders = _der_chain_from_pem(request.certificate)
        except ValueError:
            return AuthorizeResponse("Invalid", "CertChainError")
        if not ders:
            return AuthorizeResponse("Invalid", "NoCertificateAvailable")
        try:
            verified = verify_chain(ders[0], ders[1:], store=self.store, profile="iso2-contract", at=now)
        except ChainValidationError as exc:
            status = {Reason.BAD_SIGNATURE: "SignatureError", Reason.EXPIRED: "CertificateExpired",
                      Reason.NOT_YET_VALID: "CertificateExpired", Reason.REVOKED: "CertificateRevoked"
                      }.get(exc.reason, "CertChainError")
            logger.info("backend: contract chain rejected: %s", exc)
            return AuthorizeResponse("Invalid" if status != "CertificateExpired" else "Expired", status)
        if _norm(verified.emaid or "") != _norm(token):
            return AuthorizeResponse("Invalid", "CertChainError")
        if any(x509.load_der_x509_certificate(d).serial_number in self._revoked_serials for d in ders):
            return AuthorizeResponse("Blocked", "CertificateRevoked")
        if _norm(token) in self._cancelled:
            return AuthorizeResponse("Invalid", "ContractCancelled")
        if not known:
            return AuthorizeResponse("Unknown", "Accepted")
        return AuthorizeResponse("Accepted", "Accepted")

    def _known_emaid(self, emaid: str) -> bool:
        n = _norm(emaid)
        return any(_norm(e) == n for e in self._pcids.values()) or any(_norm(c.emaid) == n for c in self.issued)

    # -- Get15118EVCertificate ----------------------------------------------------------
    def get_15118_ev_certificate(self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """Handle CertificateInstallationReq (``Install``) or CertificateUpdateReq (``Update``)."""
        try:
            if request.iso15118_schema_version != ISO2_SCHEMA_VERSION:
                raise _Refused(f"unsupported schema {request.iso15118_schema_version}")
            if self.fail_installations:
                raise _Refused(self.fail_installations)
            try:
                exi_req = base64.b64decode(request.exi_request, validate=True)
            except ValueError:
                raise _Refused("exiRequest is not base64") from None
            message = self._decode(exi_req)
            contract, receiver_key = (self._install(message) if request.action == "Install" else self._update(message))
            try:
                exi_res = self._builder(message, request.action, contract, receiver_key)
            except (ValueError, PlugChargeError) as exc:  # EXI/signature/key-transport problems
                self.issued.remove(contract)
                raise _Refused(f"response could not be built: {exc}") from None
        except _Refused as exc:
            logger.info("backend: %s refused: %s", request.action, exc.reason)
            return Get15118EVCertificateResponse("Failed", "", exc.reason)
        return Get15118EVCertificateResponse("Accepted", base64.b64encode(exi_res).decode("ascii"))

    def _codec(self, ns: str) -> Any:
        from ..iso2.messages import resolve_codecs

        return resolve_codecs(self.codecs)(ns)

    def _decode(self, exi_req: bytes) -> Mapping[str, Any]:
        from exi import DecodeError

        try:
            return self._codec(ISO2_SCHEMA_VERSION).decode(exi_req)
        except DecodeError as exc:
            raise _Refused(f"EXI request does not decode: {exc}") from None

    def _body(self, message: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        from ..iso2.messages import body_of

        try:
            got, body, _ = body_of(message)
        except ValueError as exc:
            raise _Refused(str(exc)) from None
        if got != name:
            raise _Refused(f"expected {name}, got {got}")
        return body

    def _verify_signature(self, message: Mapping[str, Any], cert_der: bytes) -> None:
        from ..core.errors import SignatureError
        from ..pnc.signatures import verify_message

        try:
            verify_message(message, x509.load_der_x509_certificate(cert_der), codecs=self.codecs)
        except SignatureError as exc:
            raise _Refused(f"request signature invalid: {exc}") from None
        except ValueError as exc:
            raise _Refused(f"request signer certificate unusable: {exc}") from None

    def _install(self, message: Mapping[str, Any]) -> tuple[IssuedContract, Any]:
        from pki.errors import ChainValidationError
        from pki.verify import verify_chain

        body = self._body(message, "CertificateInstallationReq")
        oem_leaf = bytes(body.get("OEMProvisioningCert") or b"")
        oem_chain = self.pki.chain("iso2-oem-provisioning")
        try:  # -2 sends only the leaf; the backend knows the OEM Sub-CAs
            verified = verify_chain(oem_leaf, oem_chain.intermediates, store=self.store,
                                    profile="iso2-oem-provisioning", at=self.clock())
        except ChainValidationError as exc:
            raise _Refused(f"OEM provisioning certificate rejected: {exc.reason.value}") from None
        self._verify_signature(message, oem_leaf)
        pcid = verified.pcid or ""
        if pcid not in self._pcids:
            raise _Refused(f"unknown PCID {pcid}")
        if _norm(self._pcids[pcid]) in self._cancelled:
            raise _Refused("contract cancelled")
        return self._issue(self._pcids[pcid], pcid, None), x509.load_der_x509_certificate(oem_leaf).public_key()

    def _update(self, message: Mapping[str, Any]) -> tuple[IssuedContract, Any]:
        from pki.errors import ChainValidationError
        from pki.verify import verify_chain

        from ..iso2.messages import chain_certs

        body = self._body(message, "CertificateUpdateReq")
        try:
            leaf, subs = chain_certs(body["ContractSignatureCertChain"])
        except (KeyError, TypeError):
            raise _Refused("CertificateUpdateReq lacks ContractSignatureCertChain") from None
        try:
            verified = verify_chain(leaf, subs, store=self.store, profile="iso2-contract", at=self.clock())
        except ChainValidationError as exc:
            raise _Refused(f"old contract chain rejected: {exc.reason.value}") from None
        self._verify_signature(message, leaf)
        emaid = verified.emaid or ""
        claimed = body.get("eMAID")
        claimed = claimed.get("value") if isinstance(claimed, Mapping) else claimed
        if claimed is not None and _norm(str(claimed)) != _norm(emaid):
            raise _Refused("eMAID does not match the contract certificate")
        if x509.load_der_x509_certificate(leaf).serial_number in self._revoked_serials:
            raise _Refused("old contract revoked")
        if _norm(emaid) in self._cancelled or not self._known_emaid(emaid):
            raise _Refused("contract unknown or cancelled")
        pcid = next((p for p, e in self._pcids.items() if _norm(e) == _norm(emaid)), None)
        return self._issue(emaid, pcid, None), x509.load_der_x509_certificate(leaf).public_key()

    def _next_ids(self) -> list[str]:
        self._id_counter += 1
        return [f"id{i}" for i in range(1, 5)]

    def _build_response(self, request: Mapping[str, Any], action: str, contract: IssuedContract,
                        receiver_key: Any) -> bytes:
        """CertificateInstallationRes / CertificateUpdateRes, signed by the CPS leaf, EXI-encoded."""
        from pki.keytransport import encrypt_contract_key

        from ..iso2.messages import body_of, cert_chain, v2g_message
        from ..pnc.signatures import sign_message

        _, _, header = body_of(request)
        enc = encrypt_contract_key(contract.private_key, receiver_key, iso=2)
        ids = self._next_ids()
        cps = self.pki.chain("iso2-cps")
        body: dict[str, Any] = {
            "ResponseCode": "OK",
            "SAProvisioningCertificateChain": cert_chain(cps.leaf, cps.intermediates),
            "ContractSignatureCertChain": cert_chain(contract.leaf, contract.sub_cas, ident=ids[0]),
            "ContractSignatureEncryptedPrivateKey": {"Id": ids[1], "value": enc.ciphertext},
            "DHpublickey": {"Id": ids[2], "value": enc.dh_public_key},
            "eMAID": {"Id": ids[3], "value": contract.emaid},
        }
        name = "CertificateInstallationRes" if action == "Install" else "CertificateUpdateRes"
        message = v2g_message(header.get("SessionID", b"\x00"), name, body)
        sign_message(message, self.pki.key("cps-leaf"), codecs=self.codecs)
        return self._codec(ISO2_SCHEMA_VERSION).encode(message)


def _norm(emaid: str) -> str:
    return emaid.replace("-", "").upper()
