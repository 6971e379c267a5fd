"""Typed events (session → caller) and commands (caller → session).

Every event and command is a frozen, slotted dataclass, compared by value.  Events derive from
:class:`Event`; those a charger's caller must answer (by a backend call) derive from
:class:`BackendRequest`; commands derive from :class:`Command` and are passed to
``session.send(command, now)``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

__all__ = [
    "Event", "BackendRequest", "Command", "SendResult",
    # common
    "SessionStarted", "SessionEnded", "ProtocolError", "TimerExpired",
    # EV side
    "PaymentSelected", "ContractInstallationStarted", "ContractInstallationSucceeded",
    "ContractInstallationFailed", "AuthorizationPending", "AuthorizationAccepted",
    "AuthorizationRejected", "ChargingStarted", "MeterValues", "ChargingStopped", "SessionPaused",
    "SalesTariffVerified",
    # charger side
    "CertificateInstallationNeeded", "AuthorizationNeeded", "MeteringReceiptReceived",
    # commands
    "StartSession", "StopCharging", "PauseCharging", "CertificateInstallationResponse",
    "AuthorizationResult",
]

_dc = dataclasses.dataclass(frozen=True, slots=True)


@_dc
class Event:
    """Base of every event a session returns."""


@_dc
class BackendRequest(Event):
    """An event the charger's caller must answer with a command (see each subclass)."""


@_dc
class Command:
    """Base of every command a caller passes to ``session.send``."""


@_dc
class SendResult:
    """What ``session.send`` returns: bytes to put on the wire (V2GTP frames) and new events."""

    data: bytes
    events: tuple[Event, ...] = ()


# ---------------------------------------------------------------- common events
@_dc
class SessionStarted(Event):
    """SessionSetup completed.  ``resumed`` is true when a paused session was joined."""

    session_id: bytes
    evcc_id: bytes
    evse_id: str
    resumed: bool = False


@_dc
class SessionEnded(Event):
    """The V2G communication session is over; the caller closes the connection.

    ``reason`` is one of ``"finished"``, ``"paused"``, ``"failed"``, ``"timeout"``,
    ``"protocol_error"``; ``response_code`` is the ISO ResponseCode that ended it, if any;
    ``fallback`` (EV side) is ``"ExternalPayment"`` when the EV advises to retry at once without
    Plug & Charge on this plug-in (see :mod:`plugcharge.ev` for the policy)."""

    reason: str
    response_code: Optional[str] = None
    detail: str = ""
    fallback: Optional[str] = None


@_dc
class ProtocolError(Event):
    """The peer (``remote=True``) or the link broke the protocol; followed by ``SessionEnded``."""

    response_code: str
    hint: str
    remote: bool = True


@_dc
class TimerExpired(Event):
    """A standard timer expired (name as in :mod:`plugcharge.timeouts`); followed by ``SessionEnded``."""

    timer: str
    message: str = ""


# ---------------------------------------------------------------- EV events
@_dc
class PaymentSelected(Event):
    """The EV chose ``option`` (``Contract`` or ``ExternalPayment``); ``reason`` says why."""

    option: str
    reason: str
    installation: Optional[str] = None  # "install" / "update" when the certificate service is used


@_dc
class ContractInstallationStarted(Event):
    """Driver display: contract installation (``kind`` = install/update) has started."""

    kind: str
    pcid: str = ""

    @property
    def wallet_event(self) -> Any:
        """The driver-display / charge-port-light event (:class:`plugcharge.wallet.InstallationStarted`)."""
        from .wallet import InstallationStarted

        return InstallationStarted(self.kind)


@_dc
class ContractInstallationSucceeded(Event):
    """Driver display: a new contract was verified and stored in the wallet."""

    emaid: str
    kind: str = "install"

    @property
    def wallet_event(self) -> Any:
        """The driver-display event (:class:`plugcharge.wallet.InstallationSucceeded`)."""
        from .wallet import InstallationSucceeded

        return InstallationSucceeded(self.emaid)


@_dc
class ContractInstallationFailed(Event):
    """Driver display: installation failed (``reason`` is log-safe, ``response_code`` if the charger sent one)."""

    reason: str
    response_code: Optional[str] = None

    @property
    def wallet_event(self) -> Any:
        """The driver-display event (:class:`plugcharge.wallet.InstallationFailed`)."""
        from .wallet import InstallationFailed

        return InstallationFailed(self.response_code or self.reason)


@_dc
class AuthorizationPending(Event):
    """The charger answered EVSEProcessing=Ongoing; the EV asks again."""

    processing: str = "Ongoing"


@_dc
class AuthorizationAccepted(Event):
    """Authorisation finished; on the charger side ``emaid`` names the contract (None for EIM)."""

    payment: str
    emaid: Optional[str] = None


@_dc
class AuthorizationRejected(Event):
    """Authorisation was refused with ``response_code``."""

    response_code: str
    emaid: Optional[str] = None


@_dc
class SalesTariffVerified(Event):
    """The signed SalesTariff(s) of the chosen schedule verified (EV side)."""

    tariff_ids: tuple[int, ...]


@_dc
class ChargingStarted(Event):
    """PowerDelivery(Start) was accepted: energy flows."""

    energy_mode: str
    sa_schedule_id: int


@_dc
class MeterValues(Event):
    """A charge-loop status: present values (``voltage``/``current`` in V/A) and the meter reading (Wh)."""

    voltage: Optional[float] = None
    current: Optional[float] = None
    meter_wh: Optional[int] = None
    soc: Optional[int] = None


@_dc
class ChargingStopped(Event):
    """PowerDelivery(Stop) was accepted."""

    reason: str = "ev_request"


@_dc
class SessionPaused(Event):
    """SessionStop(Pause) was accepted; resume later with the same ``session_id``."""

    session_id: bytes


# ---------------------------------------------------------------- charger events
@_dc
class CertificateInstallationNeeded(BackendRequest):
    """Forward ``exi_request`` (the EV's EXI V2G_Message, signature checked) to the backend as an
    OCPP Get15118EVCertificate; answer with :class:`CertificateInstallationResponse`."""

    exi_request: bytes
    action: str = "Install"  # or "Update"
    schema_version: str = "urn:iso:15118:2:2013:MsgDef"


@_dc
class AuthorizationNeeded(BackendRequest):
    """Authorise the session; answer with :class:`AuthorizationResult`.

    Contract: ``emaid``, the contract ``chain`` (DER, leaf first, already validated locally) and
    ``ocsp_data`` (OCPP ``OCSPRequestData`` dicts) as for OCPP Authorize.  ExternalPayment:
    ``emaid`` is None and the caller answers once the driver identified at the charger."""

    payment: str
    emaid: Optional[str] = None
    chain: tuple[bytes, ...] = ()
    ocsp_data: tuple[Mapping[str, Any], ...] = ()


@_dc
class MeteringReceiptReceived(Event):
    """The EV signed a metering receipt (signature verified)."""

    meter_info: Mapping[str, Any]


# ---------------------------------------------------------------- commands
@_dc
class StartSession(Command):
    """EV: open the V2G session (sends supportedAppProtocolReq)."""


@_dc
class StopCharging(Command):
    """EV: stop charging and end the session (PowerDelivery Stop … SessionStop Terminate).
    Charger: ask the EV to stop (EVSENotification StopCharging)."""


@_dc
class PauseCharging(Command):
    """EV: stop charging and pause the session (SessionStop Pause) to resume later."""


@_dc
class CertificateInstallationResponse(Command):
    """Charger: the backend's answer to :class:`CertificateInstallationNeeded`.

    ``exi_response`` is the EXI CertificateInstallationRes/UpdateRes V2G_Message from the
    backend; ``None`` (or ``accepted=False``) makes the charger answer FAILED."""

    exi_response: Optional[bytes]
    accepted: bool = True


@_dc
class AuthorizationResult(Command):
    """Charger: the backend's (or local identification's) answer to :class:`AuthorizationNeeded`."""

    accepted: bool
    response_code: Optional[str] = None  # e.g. FAILED_CertificateRevoked; default FAILED when refused
