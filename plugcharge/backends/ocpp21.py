"""OCPP 2.1 for the charger's backend: ISO 15118-20's additions on top of :class:`~plugcharge.backends.ocpp.OCPPBackend`.

:class:`OCPP21Backend` offers the websocket subprotocols ``ocpp2.1`` and ``ocpp2.0.1`` (in that
order; a CSMS picks one) and speaks whichever was agreed (:attr:`~OCPP21Backend.ocpp_version`).
Over ``ocpp2.1`` it adds what the ISO 15118-20 sessions need:

===========================================  ====================================================
charger                                      OCPP 2.1 (charging station → CSMS)
===========================================  ====================================================
``get_15118_ev_certificate`` (-20 request)   Get15118EVCertificate with ``iso15118SchemaVersion``
                                             of -20's CommonMessages, ``maximumContractCertificateChains``
                                             and ``prioritizedEMAIDs`` copied from the EV's request;
                                             ``remainingContracts`` back
``get_certificate_chain_status``             GetCertificateChainStatus: the revocation status of
                                             up to four certificates of one (-20 contract) chain
``renew_secc_certificate(iso=20)``           SignCertificate with certificateType
                                             ``V2G20Certificate``; the CertificateSigned chain must
                                             certify the CSR's key and pass profile ``iso20-secc``
``authorize_contract20``                     GetCertificateChainStatus of the -20 contract chain
                                             (revoked: refused at once), then Authorize (eMAID,
                                             ``iso15118CertificateHashData``) as in 2.0.1
===========================================  ====================================================

Over ``ocpp2.0.1`` everything of :class:`OCPPBackend` works as before (a -20 Get15118EVCertificate
goes without the 2.1 fields); GetCertificateChainStatus and -20 SECC renewal raise
:class:`OCPP21Required`, and :attr:`~OCPP21Backend.chain_status_available` is False so callers skip
the chain check.  Time bounds and failures are :class:`OCPPBackend`'s (:class:`CSMSUnavailable`,
:class:`CSMSCallError`): the runner turns them into -20 WARNING codes (EIM in the same session).

The ``ocpp`` package (2.1.0) names ``prioritizedEMAIDs`` ``prioritizedEmaids`` on the wire, which
its own schema refuses; this module sends Get15118EVCertificate with its own request class.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Any, List, Optional, Sequence

from cryptography.hazmat.primitives.asymmetric import ec

from .base import (
    ISO20_SCHEMA_VERSION, V2G20_CERTIFICATE, AuthorizeRequest, AuthorizeResponse, Get15118EVCertificateRequest,
    Get15118EVCertificateResponse,
)
from .capabilities import MAX_CHAIN_STATUS_REQUESTS, CertificateChainStatus, CertificateStatusRequestInfo
from .ocpp import CSMSCallError, OCPPBackend, OCPPBackendError, _checked_certificate_response, _reason, _Station

try:  # the optional 'ocpp' extra (ocpp >= 2.1 has the v21 module)
    from ocpp.v21 import call as call21
    from ocpp.v21 import call_result as call_result21
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"plugcharge.backends.ocpp21 needs the 'ocpp' extra (ocpp>=2.1): "
                      f"pip install 'plugcharge[ocpp]' ({_exc})") from None

__all__ = ["OCPP21Backend", "OCPP21Required", "SUBPROTOCOL_21", "OCPP_VERSIONS", "Get15118EVCertificate"]

_log = logging.getLogger("plugcharge.ocpp")

#: The websocket subprotocol of OCPP 2.1.
SUBPROTOCOL_21 = "ocpp2.1"
#: ``--ocpp-version`` values → subprotocols offered (preferred first)
OCPP_VERSIONS = {"2.1": (SUBPROTOCOL_21,), "2.0.1": ("ocpp2.0.1",), "auto": (SUBPROTOCOL_21, "ocpp2.0.1")}


class OCPP21Required(OCPPBackendError, ValueError):
    """The call exists in OCPP 2.1 only and the CSMS agreed to 2.0.1."""


@dataclasses.dataclass
class Get15118EVCertificate:
    """OCPP 2.1 Get15118EVCertificateRequest as ``ocpp``'s ChargePoint sends it (the field names turn
    into the schema's camelCase: ``prioritized_e_m_a_i_ds`` → ``prioritizedEMAIDs``)."""

    action: str
    exi_request: str
    iso_15118_schema_version: str
    maximum_contract_certificate_chains: Optional[int] = None
    prioritized_e_m_a_i_ds: Optional[List[str]] = None
    custom_data: Optional[dict] = None


class _Station21(_Station):
    """The charging station's ``ocpp`` ChargePoint over ``ocpp2.1`` (schemas and results of v21)."""

    _call = call21
    _call_result = call_result21
    _ocpp_version = "2.1"


class OCPP21Backend(OCPPBackend):
    """:class:`OCPPBackend` that offers OCPP 2.1 first (see the module docstring).

    Args:
        ocpp_version: ``"auto"`` (offer 2.1, then 2.0.1), ``"2.1"`` or ``"2.0.1"`` only.
        trust_store20: :class:`pki.store.TrustStore` with the -20 V2G root, for a renewed -20 SECC
            chain (default: ``trust_store``).
        All other arguments: :class:`OCPPBackend`.
    """

    SUBPROTOCOLS = OCPP_VERSIONS["auto"]

    def __init__(self, url: str, *, ocpp_version: str = "auto", trust_store20: Any = None, **kwargs: Any) -> None:
        if ocpp_version not in OCPP_VERSIONS:
            raise ValueError(f"ocpp_version must be one of {sorted(OCPP_VERSIONS)}, not {ocpp_version!r}")
        super().__init__(url, **kwargs)
        self.SUBPROTOCOLS = OCPP_VERSIONS[ocpp_version]
        self.trust_store20 = trust_store20

    def __repr__(self) -> str:
        return f"OCPP21Backend({self.url!r}, connected={self.connected}, version={self.ocpp_version!r})"

    def _make_station(self, ws: Any) -> Any:
        if ws.subprotocol == SUBPROTOCOL_21:
            return _Station21(self.station_id, ws, self)
        return super()._make_station(ws)

    @property
    def is_21(self) -> bool:
        """True while connected over ``ocpp2.1``."""
        return self.connected and self.ocpp_version == SUBPROTOCOL_21

    @property
    def chain_status_available(self) -> bool:
        """GetCertificateChainStatus can be asked now (connected over ``ocpp2.1``)."""
        return self.is_21

    async def _require_21(self, action: str) -> None:
        loop = asyncio.get_running_loop()
        await self._wait_station(action, loop.time() + self.timeouts.connect_grace)
        if self.ocpp_version != SUBPROTOCOL_21:
            raise OCPP21Required(f"{action} needs OCPP 2.1; the CSMS agreed to {self.ocpp_version}")

    # ------------------------------------------------------------------ Get15118EVCertificate
    async def get_15118_ev_certificate(self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """Get15118EVCertificate; over 2.1 with the -20 fields and ``remainingContracts``."""
        loop = asyncio.get_running_loop()
        await self._wait_station("Get15118EVCertificate", loop.time() + self.timeouts.certificate)
        if self.ocpp_version != SUBPROTOCOL_21:
            return await super().get_15118_ev_certificate(request)
        emaids = list(request.prioritized_emaids) if request.prioritized_emaids else None
        res = await self._call(Get15118EVCertificate(
            action=request.action, exi_request=request.exi_request,
            iso_15118_schema_version=request.iso15118_schema_version,
            maximum_contract_certificate_chains=request.maximum_contract_certificate_chains,
            prioritized_e_m_a_i_ds=emaids), self.timeouts.certificate)
        status, exi = _checked_certificate_response(res)
        remaining = res.remaining_contracts if isinstance(res.remaining_contracts, int) else None
        _log.info("ocpp: %s: Get15118EVCertificate(%s, %s) -> %s%s", self.station_id, request.action,
                  "-20" if request.iso15118_schema_version == ISO20_SCHEMA_VERSION else "-2", status,
                  f" ({remaining} remaining)" if remaining else "")
        return Get15118EVCertificateResponse(status, exi if status == "Accepted" else "", _reason(res.status_info),
                                             remaining_contracts=remaining)

    # ------------------------------------------------------------------ GetCertificateChainStatus
    async def get_certificate_chain_status(
            self, requests: Sequence[CertificateStatusRequestInfo]) -> tuple[CertificateChainStatus, ...]:
        """OCPP 2.1 GetCertificateChainStatus for 1 to 4 certificates of one chain (leaf first); the
        answers in the order asked.  Raises :class:`OCPP21Required` over 2.0.1,
        :class:`CSMSUnavailable` / :class:`CSMSCallError` like every call."""
        items = list(requests)
        if not 1 <= len(items) <= MAX_CHAIN_STATUS_REQUESTS:
            raise ValueError(f"GetCertificateChainStatus takes 1 to {MAX_CHAIN_STATUS_REQUESTS} certificates")
        await self._require_21("GetCertificateChainStatus")
        payload = call21.GetCertificateChainStatus(certificate_status_requests=[{
            "certificate_hash_data": _hash(r), "source": r.source, "urls": list(r.urls)} for r in items])
        res = await self._call(payload, self.timeouts.call)
        answers = res.certificate_status if isinstance(res.certificate_status, list) else None
        if answers is None:
            raise CSMSCallError("GetCertificateChainStatus", "FormatViolation", "no certificateStatus list")
        by_serial = {}
        for a in answers:
            try:
                serial = str(a["certificate_hash_data"]["serial_number"]).lower().lstrip("0")
                when = dt.datetime.fromisoformat(str(a["next_update"]).replace("Z", "+00:00"))
                by_serial[serial] = (str(a["status"]), when)
            except (KeyError, TypeError, ValueError) as exc:
                raise CSMSCallError("GetCertificateChainStatus", "FormatViolation", f"unusable entry: {exc}") from None
        out = []
        for r in items:
            got = by_serial.get(r.serial_number.lower().lstrip("0"))
            if got is None:
                raise CSMSCallError("GetCertificateChainStatus", "OccurrenceConstraintViolation",
                                    f"no status for serial {r.serial_number}")
            try:
                out.append(CertificateChainStatus(r, got[0], got[1]))
            except ValueError as exc:
                raise CSMSCallError("GetCertificateChainStatus", "PropertyConstraintViolation", str(exc)) from None
        _log.info("ocpp: %s: GetCertificateChainStatus(%d) -> %s", self.station_id, len(out),
                  ", ".join(s.status for s in out))
        return tuple(out)

    # ------------------------------------------------------------------ Authorize of a -20 contract
    async def authorize_contract20(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """Authorize a -20 contract: over 2.1 first GetCertificateChainStatus for its chain (a
        revoked certificate refuses at once: ``Blocked`` / ``CertificateRevoked``, which the charger
        answers ``WARNING_CertificateRevoked``), then Authorize with ``iso15118CertificateHashData``.
        The chain status is advisory: Good, Unknown, Failed or no answer leave the verdict to
        Authorize (a CSMS that is down fails there the same way)."""
        data = request.iso15118_certificate_hash_data or ()
        if data and self.chain_status_available:
            try:
                statuses = await self.get_certificate_chain_status(
                    [CertificateStatusRequestInfo.from_ocsp_request_data(d) for d in data[:MAX_CHAIN_STATUS_REQUESTS]])
            except (OCPPBackendError, ValueError) as exc:
                _log.info("ocpp: %s: GetCertificateChainStatus failed: %s", self.station_id, exc)
            else:
                if any(s.status == "Revoked" for s in statuses):
                    return AuthorizeResponse("Blocked", "CertificateRevoked")
        return await self.authorize(request)

    # ------------------------------------------------------------------ SignCertificate (V2G20Certificate)
    async def renew_secc_certificate(self, *, private_key: Any = None, iso: int = 2) -> Any:
        """SignCertificate / CertificateSigned (see :meth:`OCPPBackend.renew_secc_certificate`);
        ``iso=20`` renews the -20 SECC certificate: certificateType ``V2G20Certificate`` (OCPP 2.1),
        a new secp521r1 key by default, and the chain must pass profile ``iso20-secc`` [V2G20-2674]
        up to the -20 V2G root of ``trust_store20``."""
        if iso != 20:
            return await super().renew_secc_certificate(private_key=private_key)
        await self._require_21("SignCertificate(V2G20Certificate)")
        saved = (self._certificate_type, self._secc_profile, self.trust_store)
        self._certificate_type, self._secc_profile = V2G20_CERTIFICATE, "iso20-secc"
        self.trust_store = self.trust_store20 if self.trust_store20 is not None else self.trust_store
        try:
            return await super().renew_secc_certificate(
                private_key=private_key or ec.generate_private_key(ec.SECP521R1()))
        finally:
            self._certificate_type, self._secc_profile, self.trust_store = saved


def _hash(r: CertificateStatusRequestInfo) -> dict[str, str]:
    """CertificateHashDataType for the ``ocpp`` package (snake_case; hashAlgorithm upper case)."""
    return {"hash_algorithm": r.hash_algorithm.upper(), "issuer_name_hash": r.issuer_name_hash,
            "issuer_key_hash": r.issuer_key_hash, "serial_number": r.serial_number}

