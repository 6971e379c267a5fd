"""The Plug & Charge seam of the ISO 15118-20 sessions: what the EV and charger handlers ask of a
PnC implementation, and where.

The -20 engine runs identification at the charger (EIM) end to end by itself.  Plug & Charge
(contract signatures over the GenChallenge, CertificateInstallation, the -20 wallet, signed metering
data) plugs in through two objects the handlers find on their session's security object
(``security.iso20_pnc``; absent or None: PnC is neither offered by the charger nor chosen by the EV):

Charger (:class:`ChargerPnC`), called from :class:`plugcharge.iso20.charger.ChargerHandler`:

* AuthorizationSetupReq: ``offered(handler)`` decides whether ``PnC`` joins ``EIM`` in
  AuthorizationServices (only over TLS and with ``"Contract"`` in ``ChargerConfig.payment_options``);
  then the handler sends ``PnC_ASResAuthorizationMode`` with a fresh 16-byte GenChallenge
  (``security.random_bytes``) and ``CertificateInstallationService = installation_offered(handler)``.
* AuthorizationReq(PnC): the handler checks the echoed GenChallenge itself [V2G20-2565] (a mismatch
  is answered ``WARNING_ChallengeInvalid``), then ``verify_authorization(handler, body, header, msg)``
  checks the signature and the contract chain and returns a :class:`ContractIdentity`; it raises
  :class:`~plugcharge.core.errors.SignatureError` (answered ``FAILED_SignatureError``, the session
  ends) or :class:`~plugcharge.core.errors.Refused`: a ``WARNING_`` code (e.g.
  ``WARNING_CertificateRevoked``; ``pnc.auth20``'s ``PnC20Error.response_code``) is answered with
  EVSEProcessing=Finished and the session stays in Authorization (the EV may fall back to EIM or
  stop), a ``FAILED`` code ends it.  The handler then asks the backend with
  :class:`~plugcharge.core.events.AuthorizationNeeded` (``payment="Contract"``, eMAID, chain, OCSP
  data) exactly as for ISO-2 and answers EVSEProcessing=Ongoing until
  :class:`~plugcharge.core.events.AuthorizationResult` arrives.
* CertificateInstallationReq (state ``WAIT_AUTHORIZATION``, only when the service was offered):
  ``check_installation_request(handler, body, header, msg)`` checks what the charger can check
  before it forwards (raises :class:`~plugcharge.core.errors.Refused`: a ``WARNING_`` code is
  answered in an unsigned CertificateInstallationRes and the session stays in Authorization, a
  ``FAILED`` code ends it); the handler emits
  :class:`~plugcharge.core.events.CertificateInstallationNeeded` (the EV's EXI message,
  ``schema_version`` the -20 CommonMessages namespace, the EV's root certificate IDs,
  MaximumContractCertificateChains and PrioritizedEMAIDs), waits in ``WAIT_BACKEND_CERTIFICATE``
  (backend timer) and relays the backend's CertificateInstallationRes under its own header (a
  refusal with a ``WARNING_`` code as an unsigned response carrying it; the EV repeats the request
  while RemainingContractCertificateChains says more are there).
* MeteringConfirmationReq in a PnC session: ``verify_metering(handler, body, header, msg)`` (raise
  :class:`~plugcharge.core.errors.SignatureError`: answered ``FAILED_MeteringSignatureNotValid``).

EV (:class:`EVPnC`), called from :class:`plugcharge.iso20.ev.EVHandler`:

* AuthorizationSetupRes: ``choose(handler, services, installation_offered)`` returns ``(choice,
  reason)``: choice None (use EIM), ``"install"`` or ``"use"``; the handler reports
  :class:`~plugcharge.core.events.PaymentSelected` with the reason.
* ``installation_request(handler)`` -> (CertificateInstallationReq body without Header, signer) and
  ``installation_response(handler, body, header, msg)`` -> an object with ``emaid`` and
  ``remaining`` (verify, decrypt, store in the wallet; raise an exception with a
  ``response_code``, e.g. :class:`~plugcharge.pnc.codes20.PnC20Error`, to reject the contract)
  around state ``WAIT_CERT_INSTALL``; while ``remaining`` chains are left and fewer than
  ``EVSecurity.maximum_contract_chains`` were taken, the handler sends the request again.  A
  rejected or refused installation falls back to a contract the wallet already holds, else to EIM
  when the charger offers it, in the same session.
* ``authorization_request(handler, challenge)`` -> (``PnC_AReqAuthorizationMode`` content, signer);
  it sets ``handler.contract`` (the contract used, for the events and metering).
* ``metering_signer(handler)`` -> signer or None for MeteringConfirmationReq.

A *signer* is a callable that signs the complete message dict in place (e.g. a closure over
:func:`plugcharge.pnc.signatures.sign_message` with the contract key).  When PnC authorisation is
refused with a WARNING and the charger also offered EIM, the EV falls back to EIM in the same
session.  The default implementations of both sides are in :mod:`plugcharge.iso20.plugandcharge`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

__all__ = ["ContractIdentity", "Signer", "ChargerPnC", "EVPnC"]

#: Signs a complete -20 message dict in place.
Signer = Callable[[dict], None]


@dataclasses.dataclass(frozen=True)
class ContractIdentity:
    """What the charger learnt from a verified PnC AuthorizationReq."""

    emaid: str
    chain: tuple[bytes, ...]
    ocsp_data: tuple[Mapping[str, Any], ...] = ()
    #: the AuthorizationRes code once the backend accepts: ``OK``, or ``OK_CertificateExpiresSoon``
    #: when the contract chain ends within 14 days [V2G20-2218]
    response_code: str = "OK"


class ChargerPnC(Protocol):
    """The charger's Plug & Charge implementation (see the module docstring)."""

    def offered(self, handler: Any) -> bool: ...
    def installation_offered(self, handler: Any) -> bool: ...
    def verify_authorization(self, handler: Any, body: dict, header: dict, msg: dict) -> ContractIdentity: ...
    def check_installation_request(self, handler: Any, body: dict, header: dict, msg: dict) -> None: ...
    def verify_metering(self, handler: Any, body: dict, header: dict, msg: dict) -> None: ...


class EVPnC(Protocol):
    """The vehicle's Plug & Charge implementation (see the module docstring)."""

    def choose(self, handler: Any, services: Sequence[str],
               installation_offered: bool) -> tuple[Optional[str], str]: ...
    def installation_request(self, handler: Any) -> tuple[dict, Optional[Signer]]: ...
    def installation_response(self, handler: Any, body: dict, header: dict, msg: dict) -> Any: ...
    def authorization_request(self, handler: Any, challenge: bytes) -> tuple[dict, Optional[Signer]]: ...
    def metering_signer(self, handler: Any) -> Optional[Signer]: ...
