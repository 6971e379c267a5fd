"""A simulated backend: the certificate provisioning service (CPS) and the e-mobility provider
(eMSP, "MO") in process, with the ``pki`` test PKI (ISO 15118-2).

:class:`SimulatedBackend` knows PCIDs (:meth:`~SimulatedBackend.register_pcid`), issues a fresh
contract for a known PCID (CertificateInstallationReq signed by that PCID's OEM provisioning key),
renews contracts (CertificateUpdateReq signed by the old contract key), revokes and cancels
contracts, and authorises eMAIDs with full chain validation.  It also keeps a contract pool
(:meth:`~SimulatedBackend.activate`: the newest pooled contract of a PCID is delivered), answers
OCSP requests for the certificates it knows (:meth:`~SimulatedBackend.certificate_status`) and can
save and load its registry (:meth:`~SimulatedBackend.export_state`); the test CSMS
(:mod:`plugcharge.backends.csms`) serves it over OCPP.  It implements
:class:`plugcharge.backends.base.Backend`.

With an ISO 15118-20 test PKI (``pki20``, or ``pki`` itself when it is one) it also provisions -20
contracts (:mod:`plugcharge.backends.simulated20`: several per PCID, :meth:`~SimulatedBackend.add_emaid`),
authorises -20 contract chains (profile ``iso20-contract``) and answers OCPP 2.1
GetCertificateChainStatus (:meth:`~SimulatedBackend.certificate_chain_status`).
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import logging
from typing import Any, Callable, Mapping, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..core.codec import body_of, resolve_codecs, v2g_message
from ..core.errors import PlugChargeError, SignatureError
from ..pnc.certs import cert_chain, chain_certs, normalize_emaid, utcnow
from ..pnc.signatures import sign_message, verify_message
from .base import (
    ISO2_SCHEMA_VERSION, ISO20_SCHEMA_VERSION, AuthorizeRequest, AuthorizeResponse, Get15118EVCertificateRequest,
    Get15118EVCertificateResponse, OCSPRequestData, der_chain_from_pem,
)
from .capabilities import CertificateChainStatus, CertificateStatusRequestInfo

__all__ = ["IssuedContract", "SimulatedBackend", "ResponseBuilder", "derive_emaid"]

logger = logging.getLogger(__name__)


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

    @property
    def issued_at(self) -> dt.datetime:
        """The issuing time (the test PKI sets notBefore one day earlier)."""
        return _not_before(self.leaf) + dt.timedelta(days=1)


#: Builds the signed CertificateInstallationRes/UpdateRes EXI for an issued contract:
#: ``(request message dict, action, contract, receiver public key) -> EXI bytes``.
ResponseBuilder = Callable[[Mapping[str, Any], str, IssuedContract, Any], bytes]


class _Refused(Exception):
    """A refused installation/update; ``code`` is the ISO ResponseCode when the refusal is the
    eMSP's business (no contract for this car, contract cancelled) rather than a broken request."""

    def __init__(self, reason: str, code: Optional[str] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class SimulatedBackend:
    """In-process CPS + eMSP using a ``pki.issue.TestPKI`` (ISO 15118-2, and -20 with ``pki20``).

    Args:
        pki: the test PKI (its MO Sub-CA 2 issues contracts, its CPS leaf signs responses, its
            roots form the trust store for validation).
        clock: returns the current time (aware UTC); tests pass a fixed clock.
        response_builder: replaces the built-in EXI response builder (see :data:`ResponseBuilder`).
        codecs: EXI codec provider passed on to :mod:`plugcharge.pnc.signatures` (default: ``exi``).
        pki20: an ISO 15118-20 test PKI for -20 installations (default: ``pki`` when it is -20);
            its roots join the trust store.
        contract_algorithm20: key algorithm of -20 contracts, ``"secp521r1"`` or ``"ed448"``
            (default: ``pki20``'s algorithm).
    """

    def __init__(self, pki: Any, *, clock: Callable[[], dt.datetime] = utcnow,
                 response_builder: ResponseBuilder | None = None, codecs: Any = None,
                 pki20: Any = None, contract_algorithm20: Optional[str] = None) -> None:
        from pki.store import TrustStore

        from .simulated20 import ISO20Provisioning

        self.pki = pki
        self.clock = clock
        self.codecs = codecs
        self._builder = response_builder or self._build_response
        self.pki20 = pki20 if pki20 is not None else (pki if getattr(pki, "iso", 2) == 20 else None)
        roots: dict[str, list[bytes]] = {}
        for p in (pki, self.pki20):
            for role, ders in (p.store_roots().items() if p is not None else ()):
                roots.setdefault(role, []).extend(d for d in ders if d not in roots[role])
        self.store = TrustStore(roots)
        #: the -20 provisioning (None without a -20 PKI)
        self.iso20 = ISO20Provisioning(self.pki20, contract_algorithm=contract_algorithm20) if self.pki20 else None
        self._pcids: dict[str, str] = {}
        self._id_tokens: set[str] = set()
        self._revoked_serials: set[int] = set()
        self._revoked_at: dict[int, dt.datetime] = {}
        self._cancelled: set[str] = set()
        self.issued: list[IssuedContract] = []
        #: when set, every installation/update fails with this reason (demo of the fallback)
        self.fail_installations: Optional[str] = None
        #: answer the eMSP's refusals (unknown PCID: FAILED_NoCertificateAvailable, cancelled:
        #: FAILED_ContractCanceled) as OCPP ``Accepted`` with an EXI CertificateInstallationRes /
        #: UpdateRes carrying that code, so the EV learns why (what a CSMS does); default: ``Failed``
        self.exi_refusals = False
        #: contracts the eMSP prepared at activation, by PCID (newest last): the contract pool
        self.pool: dict[str, list[IssuedContract]] = {}
        #: the contract the last accepted installation/update delivered
        self.last_delivered: Optional[IssuedContract] = None
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
        self._cancelled.discard(normalize_emaid(emaid))

    def register_id_token(self, token: str) -> None:
        """An RFID/app token the eMSP accepts for ExternalPayment (EIM)."""
        self._id_tokens.add(token)

    def emaid_for(self, pcid: str) -> Optional[str]:
        """The eMAID registered for ``pcid``."""
        return self._pcids.get(pcid)

    def add_emaid(self, pcid: str, emaid: str) -> None:
        """One more contract (eMAID) of the driver with this PCID, for ISO 15118-20 installations,
        which deliver several contract chains (the registered eMAID first, then these in order)."""
        from pki.profiles import is_valid_emaid

        if self.iso20 is None:
            raise ValueError("this backend has no ISO 15118-20 PKI")
        if not is_valid_emaid(emaid):
            raise ValueError(f"not a valid eMAID: {emaid!r}")
        if pcid not in self._pcids:
            self.register_pcid(pcid, emaid)
        elif normalize_emaid(emaid) != normalize_emaid(self._pcids[pcid]):
            self.iso20.extra_emaids.setdefault(pcid, []).append(emaid)
        self._cancelled.discard(normalize_emaid(emaid))

    @property
    def cancelled_emaids(self) -> frozenset[str]:
        """The eMAIDs whose contracts the eMSP cancelled (normalised: no '-', upper case)."""
        return frozenset(self._cancelled)

    def issue_contract(self, pcid: str, *, now: dt.datetime | None = None) -> IssuedContract:
        """Issue a fresh contract certificate (new key) for a registered PCID."""
        emaid = self._pcids.get(pcid)
        if emaid is None:
            raise KeyError(f"unknown PCID {pcid!r}")
        return self._issue(emaid, pcid, now)

    def record_issued(self, emaid: str, pcid: Optional[str], leaf: bytes, sub_cas: tuple[bytes, ...],
                      private_key: Any) -> IssuedContract:
        """Remember a contract issued outside :meth:`issue_contract` (the -20 provisioning)."""
        contract = IssuedContract(emaid, pcid, leaf, sub_cas, private_key)
        self.issued.append(contract)
        return contract

    def _issue(self, emaid: str, pcid: Optional[str], now: dt.datetime | None) -> IssuedContract:
        issued = self.pki.issue_contract(emaid, now=now or self.clock())
        chain = self.pki.chain("iso2-contract")
        return self.record_issued(emaid, pcid, issued.der, tuple(chain.intermediates), issued.key)

    def activate(self, pcid: str, emaid: Optional[str] = None, *, now: dt.datetime | None = None) -> IssuedContract:
        """The driver activated Plug & Charge with the eMSP for ``pcid``: register it (with
        ``emaid``, else the eMAID it already has, else one derived from the PCID) and put a new
        contract into the pool; the next installation for this PCID delivers the newest pooled
        contract that is not revoked (newest wins)."""
        from pki.profiles import is_valid_pcid

        if not is_valid_pcid(pcid):
            raise ValueError(f"not a valid PCID: {pcid!r}")
        self.register_pcid(pcid, emaid or self._pcids.get(pcid) or derive_emaid(pcid))
        at = now or self.clock()
        if self.pool.get(pcid):  # strictly newer than the last one (certificate times have seconds)
            at = max(at, self.pool[pcid][-1].issued_at + dt.timedelta(seconds=1))
        contract = self._issue(self._pcids[pcid], pcid, at)
        self.pool.setdefault(pcid, []).append(contract)
        return contract

    def pooled_contract(self, pcid: str) -> Optional[IssuedContract]:
        """The newest contract in the pool for ``pcid`` that is not revoked, if any."""
        emaid = self._pcids.get(pcid)
        for c in reversed(self.pool.get(pcid, ())):
            if c.serial not in self._revoked_serials and emaid is not None and normalize_emaid(c.emaid) == normalize_emaid(emaid):
                return c
        return None

    def revoke(self, emaid: str) -> int:
        """Revoke every contract certificate issued for ``emaid``; returns how many."""
        serials = {c.serial for c in self.issued if normalize_emaid(c.emaid) == normalize_emaid(emaid)}
        for serial in serials - self._revoked_serials:
            self.revoke_serial(serial)
        return len(serials)

    def revoke_serial(self, serial: int) -> None:
        """Revoke one certificate by serial number."""
        self._revoked_serials.add(serial)
        self._revoked_at.setdefault(serial, self.clock())

    def cancel_contract(self, emaid: str) -> None:
        """The eMSP ended the contract: Authorize answers ContractCancelled."""
        self._cancelled.add(normalize_emaid(emaid))

    # -- OCSP (GetCertificateStatus) ----------------------------------------------------
    def certificate_status(self, data: OCSPRequestData) -> tuple[str, bytes, Optional[str]]:
        """OCSP responder for the certificates this backend knows (the test PKI's and the contracts
        it issued): ``("Accepted", DER OCSPResponse, None)`` with status good or revoked, signed by
        the certificate's issuer (RFC 6960 §4.2.2.2), else ``("Failed", b"", reason)``."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509 import ocsp

        from pki.ocsp import cert_id

        algorithm = data.hash_algorithm.lower()
        if algorithm not in ("sha256", "sha384", "sha512"):
            return "Failed", b"", f"unsupported hashAlgorithm {data.hash_algorithm}"
        try:
            serial = int(data.serial_number, 16)
        except ValueError:
            return "Failed", b"", "serialNumber is not hex"
        by_role = {(p.iso, role): p.cert(role) for p in (self.pki, self.pki20) if p is not None for role in p.roles}
        pkis = {p.iso: p for p in (self.pki, self.pki20) if p is not None}
        candidates = [c.leaf for c in self.issued] + list(by_role.values())
        for der in candidates:
            cert = x509.load_der_x509_certificate(der)
            if cert.serial_number != serial:
                continue
            for (iso, role), issuer_der in by_role.items():
                issuer = x509.load_der_x509_certificate(issuer_der)
                if issuer.subject != cert.issuer:
                    continue
                cid = cert_id(der, issuer_der, hash_algorithm=algorithm)
                if (cid.issuer_name_hash.hex(), cid.issuer_key_hash.hex()) != (
                        data.issuer_name_hash.lower(), data.issuer_key_hash.lower()):
                    continue
                now = self.clock()
                revoked = serial in self._revoked_serials
                hash_cls: Callable[[], hashes.HashAlgorithm] = {
                    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[algorithm]
                builder = ocsp.OCSPResponseBuilder().add_response(
                    cert=cert, issuer=issuer, algorithm=hash_cls(),
                    cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
                    this_update=now - dt.timedelta(minutes=1), next_update=now + dt.timedelta(days=1),
                    revocation_time=self._revoked_at.get(serial, now) if revoked else None,
                    revocation_reason=x509.ReasonFlags.cessation_of_operation if revoked else None,
                ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
                key = pkis[iso].key(role)
                signed = builder.sign(key, None if not hasattr(key, "curve") else hashes.SHA256())
                return "Accepted", signed.public_bytes(serialization.Encoding.DER), None
        return "Failed", b"", "certificate unknown to this responder"

    def certificate_chain_status(self, requests: Any) -> tuple[CertificateChainStatus, ...]:
        """OCPP 2.1 GetCertificateChainStatus (1 to 4 certificates, e.g. the -20 vehicle chain whose
        revocation the SECC checks [V2G20-2432]): Good / Revoked from this backend's OCSP answer,
        Unknown for a certificate it does not know, Failed for a request it cannot use."""
        from cryptography.x509 import ocsp

        from .capabilities import MAX_CHAIN_STATUS_REQUESTS

        items: list[CertificateStatusRequestInfo] = list(requests)
        if not 1 <= len(items) <= MAX_CHAIN_STATUS_REQUESTS:
            raise ValueError(f"GetCertificateChainStatus takes 1 to {MAX_CHAIN_STATUS_REQUESTS} certificates")
        out = []
        next_update = self.clock() + dt.timedelta(days=1)
        for req in items:
            status, der, reason = self.certificate_status(req.ocsp_request_data)
            if status == "Accepted":
                single = ocsp.load_der_ocsp_response(der).certificate_status
                verdict = {ocsp.OCSPCertStatus.GOOD: "Good", ocsp.OCSPCertStatus.REVOKED: "Revoked"}.get(single, "Unknown")
            else:
                verdict = "Unknown" if reason == "certificate unknown to this responder" else "Failed"
            out.append(CertificateChainStatus(req, verdict, next_update))
        return tuple(out)

    # -- persistence ----------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """The eMSP's registry as JSON-able data (PCIDs, tokens, revocations, issued contracts;
        the keys of pooled contracts as PKCS#8 PEM: keep the file private)."""
        pooled = {id(c) for cs in self.pool.values() for c in cs}

        def contract(c: IssuedContract) -> dict[str, Any]:
            out: dict[str, Any] = {"emaid": c.emaid, "pcid": c.pcid, "leaf": base64.b64encode(c.leaf).decode(),
                                   "sub_cas": [base64.b64encode(d).decode() for d in c.sub_cas],
                                   "pooled": id(c) in pooled}
            if id(c) in pooled and c.private_key is not None:
                out["key"] = c.private_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()).decode("ascii")
            return out

        return {"version": 1, "pcids": dict(self._pcids), "id_tokens": sorted(self._id_tokens),
                "revoked": {format(s, "x"): self._revoked_at.get(s, self.clock()).isoformat()
                            for s in sorted(self._revoked_serials)},
                "cancelled": sorted(self._cancelled), "issued": [contract(c) for c in self.issued]}

    def import_state(self, state: Mapping[str, Any]) -> None:
        """Replace the registry with :meth:`export_state`'s data; raises ValueError when malformed."""
        try:
            if state.get("version") != 1:
                raise ValueError(f"unsupported state version {state.get('version')!r}")
            pcids = {str(k): str(v) for k, v in dict(state["pcids"]).items()}
            tokens = {str(t) for t in state["id_tokens"]}
            revoked_at = {int(k, 16): dt.datetime.fromisoformat(v) for k, v in dict(state["revoked"]).items()}
            cancelled = {str(e) for e in state["cancelled"]}
            issued: list[IssuedContract] = []
            pool: dict[str, list[IssuedContract]] = {}
            for d in state["issued"]:
                key = serialization.load_pem_private_key(d["key"].encode("ascii"), None) if d.get("key") else None
                c = IssuedContract(str(d["emaid"]), d.get("pcid"), base64.b64decode(d["leaf"]),
                                   tuple(base64.b64decode(x) for x in d["sub_cas"]), key)
                issued.append(c)
                if d.get("pooled") and c.pcid:
                    if key is None:
                        raise ValueError(f"pooled contract {c.emaid} has no key")
                    pool.setdefault(c.pcid, []).append(c)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed backend state: {type(exc).__name__}: {exc}") from None
        self._pcids, self._id_tokens, self._cancelled = pcids, tokens, cancelled
        self._revoked_at, self._revoked_serials = revoked_at, set(revoked_at)
        self.issued, self.pool = issued, pool

    # -- Authorize ----------------------------------------------------------------------
    def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """Validate the contract chain (profile ``iso2-contract``, or ``iso20-contract`` for a
        secp521r1 / Ed448 leaf), revocation and contract state."""
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
            if normalize_emaid(token) in self._cancelled:
                return AuthorizeResponse("Invalid", "ContractCancelled")
            for d in request.iso15118_certificate_hash_data or ():
                try:
                    if int(d.serial_number, 16) in self._revoked_serials:
                        return AuthorizeResponse("Blocked", "CertificateRevoked")
                except ValueError:
                    return AuthorizeResponse("Invalid", "CertChainError")
            return AuthorizeResponse("Accepted", "Accepted" if request.iso15118_certificate_hash_data else None)
        try:
            ders = der_chain_from_pem(request.certificate)
        except ValueError:
            return AuthorizeResponse("Invalid", "CertChainError")
        if not ders:
            return AuthorizeResponse("Invalid", "NoCertificateAvailable")
        try:
            verified = verify_chain(ders[0], ders[1:], store=self.store, profile=_contract_profile(ders[0]), at=now)
        except ChainValidationError as exc:
            status = {Reason.BAD_SIGNATURE: "SignatureError", Reason.EXPIRED: "CertificateExpired",
                      Reason.NOT_YET_VALID: "CertificateExpired", Reason.REVOKED: "CertificateRevoked"
                      }.get(exc.reason, "CertChainError")
            logger.info("backend: contract chain rejected: %s", exc)
            return AuthorizeResponse("Invalid" if status != "CertificateExpired" else "Expired", status)
        if normalize_emaid(verified.emaid or "") != normalize_emaid(token):
            return AuthorizeResponse("Invalid", "CertChainError")
        if any(_serial_number(d) in self._revoked_serials for d in ders):
            return AuthorizeResponse("Blocked", "CertificateRevoked")
        if normalize_emaid(token) in self._cancelled:
            return AuthorizeResponse("Invalid", "ContractCancelled")
        if not known:
            return AuthorizeResponse("Unknown", "Accepted")
        return AuthorizeResponse("Accepted", "Accepted")

    def knows_emaid(self, emaid: str) -> bool:
        """True when the eMSP assigned or issued ``emaid`` (compared without '-', case-insensitive)."""
        return self._known_emaid(emaid)

    def _known_emaid(self, emaid: str) -> bool:
        n = normalize_emaid(emaid)
        extra = (e for es in (self.iso20.extra_emaids.values() if self.iso20 is not None else ()) for e in es)
        return any(normalize_emaid(e) == n for e in (*self._pcids.values(), *extra)) or \
            any(normalize_emaid(c.emaid) == n for c in self.issued)

    # -- Get15118EVCertificate ----------------------------------------------------------
    def get_15118_ev_certificate(self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """Handle CertificateInstallationReq (``Install``) or CertificateUpdateReq (``Update``)."""
        if request.iso15118_schema_version == ISO20_SCHEMA_VERSION and self.iso20 is not None:
            return self.iso20.handle(self, request)
        message: Optional[Mapping[str, Any]] = None
        try:
            if request.iso15118_schema_version == ISO20_SCHEMA_VERSION:  # (self.iso20 is None)
                raise _Refused("no ISO 15118-20 test PKI: this backend issues ISO 15118-2 contracts only")
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
                if not any(contract is c for cs in self.pool.values() for c in cs):
                    self.issued.remove(contract)
                raise _Refused(f"response could not be built: {exc}") from None
        except _Refused as exc:
            logger.info("backend: %s refused: %s", request.action, exc.reason)
            if self.exi_refusals and exc.code is not None and message is not None:
                return Get15118EVCertificateResponse("Accepted", base64.b64encode(
                    self._failure_response(message, request.action, exc.code)).decode("ascii"), exc.reason)
            return Get15118EVCertificateResponse("Failed", "", exc.reason)
        self.last_delivered = contract
        return Get15118EVCertificateResponse("Accepted", base64.b64encode(exi_res).decode("ascii"))

    def _codec(self, ns: str) -> Any:
        return resolve_codecs(self.codecs)(ns)

    def _decode(self, exi_req: bytes) -> Mapping[str, Any]:
        from exi import DecodeError

        try:
            return self._codec(ISO2_SCHEMA_VERSION).decode(exi_req)
        except DecodeError as exc:
            raise _Refused(f"EXI request does not decode: {exc}") from None

    def _body(self, message: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        try:
            got, body, _ = body_of(message)
        except ValueError as exc:
            raise _Refused(str(exc)) from None
        if got != name:
            raise _Refused(f"expected {name}, got {got}")
        return body

    def _verify_signature(self, message: Mapping[str, Any], cert_der: bytes) -> None:
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
            raise _Refused(f"unknown PCID {pcid}", "FAILED_NoCertificateAvailable")
        if normalize_emaid(self._pcids[pcid]) in self._cancelled:
            raise _Refused("contract cancelled", "FAILED_ContractCanceled")
        receiver = x509.load_der_x509_certificate(oem_leaf).public_key()
        if self.pool.get(pcid):
            pooled = self.pooled_contract(pcid)
            if pooled is None:
                raise _Refused(f"no valid contract in the pool for PCID {pcid}", "FAILED_NoCertificateAvailable")
            return pooled, receiver
        return self._issue(self._pcids[pcid], pcid, None), receiver

    def _update(self, message: Mapping[str, Any]) -> tuple[IssuedContract, Any]:
        from pki.errors import ChainValidationError
        from pki.verify import verify_chain

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
        if claimed is not None and normalize_emaid(str(claimed)) != normalize_emaid(emaid):
            raise _Refused("eMAID does not match the contract certificate")
        if x509.load_der_x509_certificate(leaf).serial_number in self._revoked_serials:
            raise _Refused("old contract revoked", "FAILED_CertificateRevoked")
        if normalize_emaid(emaid) in self._cancelled or not self._known_emaid(emaid):
            raise _Refused("contract unknown or cancelled", "FAILED_ContractCanceled")
        pcid = next((p for p, e in self._pcids.items() if normalize_emaid(e) == normalize_emaid(emaid)), None)
        receiver = x509.load_der_x509_certificate(leaf).public_key()
        old_serial = x509.load_der_x509_certificate(leaf).serial_number
        if pcid is not None and self.pool.get(pcid):
            # a newer contract the eMSP pooled (a second activation) wins over a fresh one
            pooled = self.pooled_contract(pcid)
            if pooled is not None and pooled.serial != old_serial and _not_before(pooled.leaf) >= _not_before(leaf):
                return pooled, receiver
            fresh = self._issue(emaid, pcid, None)
            self.pool[pcid].append(fresh)
            return fresh, receiver
        return self._issue(emaid, pcid, None), receiver

    def _failure_response(self, request: Mapping[str, Any], action: str, code: str) -> bytes:
        """An unsigned CertificateInstallationRes/UpdateRes carrying ``code`` (the schema's
        mandatory elements filled with placeholders; the EV stops at the FAILED code)."""
        _, _, header = body_of(request)
        body = {"ResponseCode": code, "SAProvisioningCertificateChain": {"Certificate": b"\x00"},
                "ContractSignatureCertChain": {"Id": "id1", "Certificate": b"\x00"},
                "ContractSignatureEncryptedPrivateKey": {"Id": "id2", "value": bytes(48)},
                "DHpublickey": {"Id": "id3", "value": bytes(65)}, "eMAID": {"Id": "id4", "value": "ZZ00000000000000"[:15]}}
        name = "CertificateInstallationRes" if action == "Install" else "CertificateUpdateRes"
        return self._codec(ISO2_SCHEMA_VERSION).encode(v2g_message(header.get("SessionID", b"\x00"), name, body))

    def _next_ids(self) -> list[str]:
        self._id_counter += 1
        return [f"id{i}" for i in range(1, 5)]

    def _build_response(self, request: Mapping[str, Any], action: str, contract: IssuedContract,
                        receiver_key: Any) -> bytes:
        """CertificateInstallationRes / CertificateUpdateRes, signed by the CPS leaf, EXI-encoded."""
        from pki.keytransport import encrypt_contract_key

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


@functools.lru_cache(maxsize=256)
def _serial_number(der: bytes) -> int:
    """The serialNumber of a certificate (DER); memoised by its exact bytes (a pure function of them)."""
    return int(x509.load_der_x509_certificate(der).serial_number)


@functools.lru_cache(maxsize=256)
def _contract_profile(leaf: bytes) -> str:
    """``iso2-contract`` for a P-256 leaf, ``iso20-contract`` for the -20 keys (or anything else:
    the -20 profile names the algorithm in its refusal)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = x509.load_der_x509_certificate(leaf).public_key()
    except ValueError:
        return "iso2-contract"  # its validation reports the malformed certificate
    return "iso2-contract" if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1" else "iso20-contract"


def _not_before(der: bytes) -> dt.datetime:
    return x509.load_der_x509_certificate(der).not_valid_before_utc



def derive_emaid(pcid: str, provider: str = "DEPLG") -> str:
    """A stable eMAID for a PCID (``provider`` = country + provider id, then ``C`` and 9 characters
    derived from the PCID), for an eMSP that assigns eMAIDs itself."""
    import hashlib

    digest = hashlib.sha256(pcid.encode("utf-8")).hexdigest().upper()
    return f"{provider}C{digest[:9]}"
