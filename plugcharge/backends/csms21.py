"""OCPP 2.1 in the test CSMS (:mod:`plugcharge.backends.csms`): ISO 15118-20's calls and fields.

:class:`Station21Handlers` holds the handlers a station connected over ``ocpp2.1`` gets beside (or
instead of) the OCPP 2.0.1 ones; :mod:`plugcharge.backends.csms` mixes it into its station class.

* Get15118EVCertificate with ``maximumContractCertificateChains`` and ``prioritizedEMAIDs``
  (passed to the -20 provisioning, which prefers them to the EV's own values) and
  ``remainingContracts`` in the answer;
* GetCertificateChainStatus: Good / Revoked / Unknown / Failed per certificate from the eMSP's
  OCSP responder (revoked after ``plugcharge csms revoke``);
* SignCertificate with certificateType ``V2G20Certificate``: the CSR's key certified by the -20
  CPO Sub-CA 2 (profile ``iso20-secc``), delivered by CertificateSigned (``V2G20Certificate``).

Each call is logged as one line like the 2.0.1 calls.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .base import V2G20_CERTIFICATE, Get15118EVCertificateRequest
from .capabilities import CertificateStatusRequestInfo

try:  # the optional 'ocpp' extra (ocpp >= 2.1)
    from ocpp.exceptions import FormationViolationError, OCPPError
    from ocpp.routing import after, on
    from ocpp.v21 import call as call21
    from ocpp.v21 import call_result as call_result21
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"plugcharge.backends.csms21 needs the 'ocpp' extra (ocpp>=2.1) ({_exc})") from None

__all__ = ["Station21Handlers", "SUBPROTOCOL_21", "sign_secc20"]

SUBPROTOCOL_21 = "ocpp2.1"


def _status_info(code: str, detail: Optional[str]) -> Optional[dict[str, str]]:
    return {"reason_code": code[:20], "additional_info": detail[:512]} if detail else None


def sign_secc20(pki20: Any, csr: x509.CertificateSigningRequest, now: dt.datetime) -> str:
    """A -20 SECC certificate for the CSR's key under the -20 CPO Sub-CA 2, as a PEM chain (leaf,
    Sub-CA 2, Sub-CA 1)."""
    from pki.issue import issue_secc

    cn = csr.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    issued = issue_secc(pki20.cert("cpo-sub2"), pki20.key("cpo-sub2"), iso=20, now=now,
                        cn=str(cn[0].value) if cn else "SECCCert", public_key=csr.public_key())
    chain = [issued.der, pki20.cert("cpo-sub2"), pki20.cert("cpo-sub1")]
    return "".join(x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM).decode("ascii")
                   for d in chain)


class Station21Handlers:
    """OCPP 2.1 handlers of the test CSMS's station (mixed in before the 2.0.1 station class, whose
    ``csms``, ``id``, ``call``, ``_enter`` and ``_certificate`` they use)."""

    csms: Any
    id: str
    _csr: Any
    _ocpp_version = "2.1"
    _call = call21
    _call_result = call_result21

    @on("Get15118EVCertificate")  # type: ignore[misc]
    async def on_get_15118_ev_certificate(self, iso15118_schema_version: str, action: str, exi_request: str,
                                          maximum_contract_certificate_chains: Optional[int] = None,
                                          prioritized_emai_ds: Optional[list] = None, **_: Any) -> Any:
        """-20 (or -2) installation; ``prioritized_emai_ds`` is how ``ocpp`` names ``prioritizedEMAIDs``."""
        await self._enter("Get15118EVCertificate")  # type: ignore[attr-defined]
        emaids = tuple(str(e) for e in prioritized_emai_ds) if prioritized_emai_ds else None
        try:
            req = Get15118EVCertificateRequest(iso15118_schema_version, action, exi_request,
                                               maximum_contract_certificate_chains, emaids)
        except ValueError as exc:
            raise FormationViolationError(description=str(exc)) from None
        res, what = await self._certificate(req)  # type: ignore[attr-defined]
        self.csms._record(self.id, "Get15118EVCertificate", {
            "action": action, "iso15118SchemaVersion": iso15118_schema_version,
            "maximumContractCertificateChains": maximum_contract_certificate_chains,
            "prioritizedEMAIDs": ",".join(emaids) if emaids else None,
            "exiRequest": f"{len(exi_request)} base64 chars"},
            f"{res.status}{what}" + (f" ({res.remaining_contracts} remaining)" if res.remaining_contracts else ""))
        info = _status_info("Refused" if res.status == "Failed" else "Info", res.status_info)
        return call_result21.Get15118EVCertificate(status=res.status, exi_response=res.exi_response,
                                                   status_info=info, remaining_contracts=res.remaining_contracts)

    @on("GetCertificateChainStatus")  # type: ignore[misc]
    async def on_get_certificate_chain_status(self, certificate_status_requests: list, **_: Any) -> Any:
        """The revocation status of each certificate (the eMSP's OCSP responder decides)."""
        await self._enter("GetCertificateChainStatus")  # type: ignore[attr-defined]
        try:
            items = [CertificateStatusRequestInfo(
                str(r["certificate_hash_data"]["hash_algorithm"]), str(r["certificate_hash_data"]["issuer_name_hash"]),
                str(r["certificate_hash_data"]["issuer_key_hash"]), str(r["certificate_hash_data"]["serial_number"]),
                tuple(str(u) for u in r["urls"]), str(r["source"])) for r in certificate_status_requests]
            statuses = await asyncio.to_thread(self.csms._with_backend, lambda b: b.certificate_chain_status(items))
        except (KeyError, TypeError, ValueError) as exc:
            raise FormationViolationError(description=f"certificateStatusRequests: {exc}") from None
        self.csms._record(self.id, "GetCertificateChainStatus", {
            "serialNumbers": ", ".join(i.serial_number[:8] for i in items)},
            ", ".join(s.status for s in statuses))
        return call_result21.GetCertificateChainStatus(certificate_status=[{
            "certificate_hash_data": {"hash_algorithm": s.request.hash_algorithm,
                                      "issuer_name_hash": s.request.issuer_name_hash,
                                      "issuer_key_hash": s.request.issuer_key_hash,
                                      "serial_number": s.request.serial_number},
            "source": s.request.source, "status": s.status,
            "next_update": s.next_update.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for s in statuses])

    @on("SignCertificate")  # type: ignore[misc]
    async def on_sign_certificate(self, csr: str, certificate_type: Optional[str] = None, **_: Any) -> Any:
        """V2GCertificate (-2 SECC, CPO Sub-CA 2 of the -2 PKI) or V2G20Certificate (-20 PKI)."""
        await self._enter("SignCertificate")  # type: ignore[attr-defined]
        reason = None
        request: Optional[x509.CertificateSigningRequest] = None
        try:
            request = x509.load_pem_x509_csr(csr.encode("ascii"))
            if not request.is_signature_valid:
                reason = "CSR signature invalid"
        except (ValueError, UnicodeError):
            reason = "CSR is not PEM"
        if certificate_type not in (None, "V2GCertificate", V2G20_CERTIFICATE):
            reason = f"certificateType {certificate_type} not handled by this CSMS"
        elif certificate_type == V2G20_CERTIFICATE and self.csms.pki20 is None:
            reason = "this CSMS has no ISO 15118-20 PKI"
        status = "Rejected" if reason else "Accepted"
        self.csms._record(self.id, "SignCertificate", {"certificateType": certificate_type,
                                                        "subject": request.subject.rfc4514_string() if request else ""},
                          status + (f": {reason}" if reason else ""))
        self._csr = (request, certificate_type or "V2GCertificate") if status == "Accepted" else None
        return call_result21.SignCertificate(status=status, status_info=_status_info("InvalidCSR", reason))

    @after("SignCertificate")  # type: ignore[misc]
    async def after_sign_certificate(self, **_: Any) -> None:
        """Deliver the signed chain with CertificateSigned (of the type asked for)."""
        pending = getattr(self, "_csr", None)
        self._csr = None
        if pending is None:
            return
        request, kind = pending
        try:
            if kind == V2G20_CERTIFICATE:
                chain = await asyncio.to_thread(sign_secc20, self.csms.pki20, request, self.csms.clock())
            else:
                chain = await asyncio.to_thread(self.csms.secc_signer, request)
            res = await asyncio.wait_for(self.call(  # type: ignore[attr-defined]
                call21.CertificateSigned(certificate_chain=chain, certificate_type=kind), suppress=False), 30)
            self.csms._record(self.id, "CertificateSigned", {"certificateType": kind},
                              str(res.status) + (f": {res.status_info}" if res.status_info else ""))
        except (OCPPError, asyncio.TimeoutError, OSError, ValueError) as exc:
            self.csms._record(self.id, "CertificateSigned", {}, f"failed: {type(exc).__name__}: {exc}")

