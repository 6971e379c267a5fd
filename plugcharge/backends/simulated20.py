"""The ISO 15118-20 side of the simulated CPS + eMSP (:class:`~plugcharge.backends.simulated.SimulatedBackend`).

:class:`ISO20Provisioning` answers a Get15118EVCertificate whose ``iso15118SchemaVersion`` is
:data:`~plugcharge.backends.base.ISO20_SCHEMA_VERSION`:

1. the CommonMessages CertificateInstallationReq is checked (:func:`plugcharge.pnc.install20.check_certificate_installation_req`:
   the OEM provisioning chain under the -20 profile to an OEM root, the EV's signature over
   ``OEMProvisioningCertificateChain``, ecdsa-sha512/secp521r1 or Ed448);
2. the EV must trust the V2G root that anchors the CPS chain (``ListOfRootCertificateIDs``), else
   ``WARNING_NoCertificateAvailable``;
3. the PCID's contracts (the eMAID of ``register_pcid`` and those of ``add_emaid``, cancelled ones
   left out; none: ``WARNING_NoContractMatchingPCIDFound``) are ordered by the EV's
   ``PrioritizedEMAIDs`` (OCPP 2.1's ``prioritizedEMAIDs`` when the charger passes them), then in
   registration order, and cut to ``MaximumContractCertificateChains``;
4. each request of one session (PCID and SessionID) delivers the next of them: a fresh contract
   (P-521 or Ed448 key per ``contract_algorithm``, issued by the MO Sub-CA 2 of the -20 PKI), its
   key encrypted for the OEM provisioning key (SECP521 key transport), the response signed by the
   -20 CPS leaf, ``RemainingContractCertificateChains`` (and OCPP 2.1's ``remainingContracts``)
   counting what is left.

A refusal is OCPP ``Failed`` with the -20 ResponseCode in ``response_code`` (and the reason in
``status_info``), or, with the backend's ``exi_refusals``, ``Accepted`` with an unsigned
CertificateInstallationRes carrying that code (:func:`plugcharge.pnc.install20.certificate_installation_refusal`).
-20 has no CertificateUpdate: ``action="Update"`` is refused.
"""
from __future__ import annotations

import base64
import collections
import logging
from typing import Any, Optional

from ..core.codec import NS_ISO20_CM, resolve_codecs
from ..pnc.certs import normalize_emaid
from ..pnc.codes20 import FAILED, WARNING_NO_CERTIFICATE_AVAILABLE, WARNING_NO_CONTRACT_MATCHING_PCID_FOUND, PnC20Error
from ..pnc.install20 import (
    InstallationRequest, build_certificate_installation_res, certificate_installation_refusal,
    check_certificate_installation_req,
)
from .base import Get15118EVCertificateRequest, Get15118EVCertificateResponse

__all__ = ["ISO20Provisioning", "CONTRACT_ALGORITHMS"]

logger = logging.getLogger(__name__)

#: key algorithms a -20 contract may have [V2G20-2674, V2G20-2319]
CONTRACT_ALGORITHMS = ("secp521r1", "ed448")


class ISO20Provisioning:
    """-20 contract provisioning for a :class:`~plugcharge.backends.simulated.SimulatedBackend` (see
    the module docstring); the ``backend`` argument of its methods is that backend.

    Args:
        pki20: the ISO 15118-20 ``pki.issue.TestPKI`` (MO Sub-CAs, CPS chain, roots).
        contract_algorithm: ``"secp521r1"`` or ``"ed448"`` (default: the PKI's algorithm).
        max_sessions: how many (PCID, SessionID) delivery counters are remembered.
    """

    def __init__(self, pki20: Any, *, contract_algorithm: Optional[str] = None, max_sessions: int = 256) -> None:
        if getattr(pki20, "iso", None) != 20:
            raise ValueError("ISO20Provisioning needs an ISO 15118-20 test PKI")
        algorithm = contract_algorithm or pki20.algorithm
        if algorithm not in CONTRACT_ALGORITHMS:
            raise ValueError(f"contract_algorithm must be one of {CONTRACT_ALGORITHMS}, not {algorithm!r}")
        self.pki = pki20
        self.contract_algorithm = algorithm
        self.max_sessions = max_sessions
        #: further eMAIDs of a PCID (beside the backend's registered one), in registration order
        self.extra_emaids: dict[str, list[str]] = {}
        self._served: collections.OrderedDict[tuple[str, bytes], int] = collections.OrderedDict()

    def emaids(self, backend: Any, pcid: str) -> list[str]:
        """The eMAIDs the eMSP holds for ``pcid`` (registered one first), cancelled ones left out."""
        first = backend.emaid_for(pcid)
        out: list[str] = []
        for e in ([first] if first else []) + self.extra_emaids.get(pcid, []):
            if normalize_emaid(e) not in backend.cancelled_emaids and \
                    normalize_emaid(e) not in {normalize_emaid(x) for x in out}:
                out.append(e)
        return out

    # -- the request ------------------------------------------------------------------------
    def handle(self, backend: Any, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """Answer one -20 Get15118EVCertificate (never raises for bad input)."""
        message = None
        try:
            if request.action != "Install":
                raise PnC20Error(FAILED, "ISO 15118-20 has no CertificateUpdate: only action Install")
            if backend.fail_installations:
                raise PnC20Error(FAILED, backend.fail_installations)
            try:
                exi = base64.b64decode(request.exi_request, validate=True)
            except ValueError:
                raise PnC20Error(FAILED, "exiRequest is not base64") from None
            message = self._decode(backend, exi)
            req = check_certificate_installation_req(message, store=backend.store, at=backend.clock(),
                                                     codecs=backend.codecs)
            contract, remaining = self._choose(backend, req, request)
            try:
                res = build_certificate_installation_res(
                    session_id=req.session_id, timestamp=int(backend.clock().timestamp()),
                    cps_certificate=self.pki.cert("cps-leaf"), cps_sub_cas=(self.pki.cert("cps-sub2"), self.pki.cert("cps-sub1")),
                    cps_key=self.pki.key("cps-leaf"), contract_certificate=contract.leaf, contract_sub_cas=contract.sub_cas,
                    contract_key=contract.private_key, receiver_public_key=req.receiver_public_key, pcid=req.pcid,
                    remaining_contract_chains=remaining, codecs=backend.codecs)
                exi_res = resolve_codecs(backend.codecs)(NS_ISO20_CM).encode(res)
            except (PnC20Error, ValueError) as exc:
                backend.issued.remove(contract)
                raise exc if isinstance(exc, PnC20Error) else PnC20Error(FAILED, f"response does not encode: {exc}") from None
        except PnC20Error as exc:
            logger.info("backend: -20 installation refused: %s", exc)
            return self._refusal(backend, message, exc)
        backend.last_delivered = contract
        self._count(req)
        return Get15118EVCertificateResponse("Accepted", base64.b64encode(exi_res).decode("ascii"),
                                             remaining_contracts=remaining)

    def _decode(self, backend: Any, exi: bytes) -> dict[str, Any]:
        from exi import DecodeError

        try:
            return resolve_codecs(backend.codecs)(NS_ISO20_CM).decode(exi)  # type: ignore[no-any-return]
        except DecodeError as exc:
            raise PnC20Error(FAILED, f"EXI request does not decode: {exc}") from None

    def _choose(self, backend: Any, req: InstallationRequest,
                request: Get15118EVCertificateRequest) -> tuple[Any, int]:
        """Issue the contract this request delivers; ``(contract, remaining chains)``."""
        if not req.trusts_root(self.pki.cert("v2g-root")):
            raise PnC20Error(WARNING_NO_CERTIFICATE_AVAILABLE,
                             "the EV's ListOfRootCertificateIDs lacks the V2G root of the CPS chain")
        emaids = self.emaids(backend, req.pcid)
        if not emaids:
            raise PnC20Error(WARNING_NO_CONTRACT_MATCHING_PCID_FOUND, f"no contract for PCID {req.pcid}")
        wanted = request.prioritized_emaids if request.prioritized_emaids else req.prioritized_emaids
        rank = {normalize_emaid(e): i for i, e in enumerate(wanted)}
        ordered = sorted(emaids, key=lambda e: (rank.get(normalize_emaid(e), len(rank)), emaids.index(e)))
        maximum = request.maximum_contract_certificate_chains
        if maximum is None:
            maximum = req.maximum_contract_chains
        if maximum == 0:
            raise PnC20Error(FAILED, "MaximumContractCertificateChains is 0: the EV takes no contract")
        chosen = ordered[:maximum]
        index = self._served.get((req.pcid, req.session_id), 0) % len(chosen)
        return self._issue(backend, chosen[index], req.pcid), len(chosen) - index - 1

    def _issue(self, backend: Any, emaid: str, pcid: str) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec, ed448

        key: Any = ed448.Ed448PrivateKey.generate() if self.contract_algorithm == "ed448" else \
            ec.generate_private_key(ec.SECP521R1())
        issued = self.pki.issue_contract(emaid, key=key, now=backend.clock())
        return backend.record_issued(emaid, pcid, issued.der, (self.pki.cert("mo-sub2"), self.pki.cert("mo-sub1")), key)

    def _count(self, req: InstallationRequest) -> None:
        k = (req.pcid, req.session_id)
        self._served[k] = self._served.get(k, 0) + 1
        self._served.move_to_end(k)
        while len(self._served) > self.max_sessions:
            self._served.popitem(last=False)

    def _refusal(self, backend: Any, message: Any, exc: PnC20Error) -> Get15118EVCertificateResponse:
        if backend.exi_refusals and message is not None:
            header = (message.get("CertificateInstallationReq") or {}).get("Header") or {}
            sid = header.get("SessionID")
            res = certificate_installation_refusal(exc.response_code,
                                                   session_id=bytes(sid) if isinstance(sid, (bytes, bytearray)) else bytes(8),
                                                   timestamp=int(backend.clock().timestamp()))
            exi = resolve_codecs(backend.codecs)(NS_ISO20_CM).encode(res)
            return Get15118EVCertificateResponse("Accepted", base64.b64encode(exi).decode("ascii"), exc.hint,
                                                 response_code=exc.response_code)
        return Get15118EVCertificateResponse("Failed", "", exc.hint, response_code=exc.response_code)
