"""Typed events (session → caller) and commands (caller → session).

Every event and command is a frozen, slotted dataclass, compared by value.  Events derive from
:class:`Event`; those a charger's caller must answer (by a backend call) derive from
:class:`BackendRequest`; commands derive from :class:`Command` and are passed to
``session.send(command, now)``.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar, Mapping, Optional

__all__ = [
    "Event", "BackendRequest", "Command", "SendResult",
    # common
    "ProtocolAgreed", "NegotiationFailed", "SessionStarted", "SessionEnded", "ProtocolError", "TimerExpired",
    # EV side
    "PaymentSelected", "ContractInstallationStarted", "ContractInstallationSucceeded",
    "ContractInstallationFailed", "AuthorizationPending", "AuthorizationAccepted",
    "AuthorizationRejected", "ChargingStarted", "MeterValues", "ChargingStopped", "SessionPaused",
    "SalesTariffVerified",
    # charger side
    "CertificateInstallationNeeded", "AuthorizationNeeded", "MeteringReceiptReceived",
    # commands
    "StartSession", "StopCharging", "PauseCharging", "CertificateInstallationResponse",
    "AuthorizationResult", "RequestRenegotiation",
    # driver display (wallet status)
    "ChargePortLight", "WalletEvent", "InstallationStarted", "InstallationSucceeded", "InstallationFailed",
]



@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """Base of every event a session returns."""


@dataclasses.dataclass(frozen=True, slots=True)
class BackendRequest(Event):
    """An event the charger's caller must answer with a command (see each subclass)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """Base of every command a caller passes to ``session.send``."""


@dataclasses.dataclass(frozen=True, slots=True)
class SendResult:
    """What ``session.send`` returns: bytes to put on the wire (V2GTP frames) and new events."""

    data: bytes
    events: tuple[Event, ...] = ()


# ---------------------------------------------------------------- common events
@dataclasses.dataclass(frozen=True, slots=True)
class ProtocolAgreed(Event):
    """The SupportedAppProtocol handshake agreed on ``protocol`` (an id such as ``"iso2"``; ``name``
    is what the driver and the operator read, e.g. ``"ISO 15118-2"``).  ``schema_id`` is the
    SchemaID of the EV's entry, ``response_code`` the charger's answer (``OK_SuccessfulNegotiation``
    or ``OK_SuccessfulNegotiationWithMinorDeviation``).  ``plug_and_charge``: whether the protocol
    has Plug & Charge at all (False for DIN SPEC 70121: the wallet is not used)."""

    protocol: str
    name: str
    namespace: str
    version: tuple[int, int]
    schema_id: Optional[int]
    response_code: str
    plug_and_charge: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class NegotiationFailed(Event):
    """The handshake found no common protocol (``response_code`` ``Failed_NoNegotiation``); followed by
    ``SessionEnded``.  ``offered``: the namespaces the EV offered; ``supported``: the names of the
    protocols this side speaks."""

    response_code: str
    offered: tuple[str, ...]
    supported: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    """SessionSetup completed.  ``resumed`` is true when a paused session was joined."""

    session_id: bytes
    evcc_id: bytes
    evse_id: str
    resumed: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """The V2G communication session is over; the caller closes the connection.

    ``reason`` is one of ``"finished"``, ``"paused"``, ``"failed"``, ``"timeout"``,
    ``"protocol_error"``; ``response_code`` is the ISO ResponseCode that ended it, if any;
    ``fallback`` (EV side) is ``"ExternalPayment"`` when the EV advises to retry at once without
    Plug & Charge on this plug-in (see :mod:`plugcharge.iso2.ev` for the policy)."""

    reason: str
    response_code: Optional[str] = None
    detail: str = ""
    fallback: Optional[str] = None


@dataclasses.dataclass(frozen=True, slots=True)
class ProtocolError(Event):
    """The peer (``remote=True``) or the link broke the protocol; followed by ``SessionEnded``."""

    response_code: str
    hint: str
    remote: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class TimerExpired(Event):
    """A standard timer expired (its name in the standard, e.g. ``V2G_EVCC_Msg_Timeout``); followed by
    ``SessionEnded``."""

    timer: str
    message: str = ""


# ---------------------------------------------------------------- driver display and charge-port light
class ChargePortLight(enum.Enum):
    """What the charge-port light shows for a wallet event."""

    INSTALLING = "installing"  # e.g. pulsing
    SUCCESS = "success"  # e.g. steady green
    FAILURE = "failure"  # e.g. blinking amber/red


@dataclasses.dataclass(frozen=True, slots=True)
class WalletEvent:
    """Base of the status events for driver display and charge-port light.

    The session layer emits them while it installs or updates a contract over the cable:
    :class:`InstallationStarted` when it sends CertificateInstallationReq/UpdateReq,
    :class:`InstallationSucceeded` after the contract was verified and stored in the wallet,
    :class:`InstallationFailed` with a short, log-safe reason otherwise (the car then falls back to
    ExternalPayment; re-plugging retries).
    """

    #: what the charge-port light shows for this event (set by each subclass)
    LIGHT: ClassVar[ChargePortLight] = ChargePortLight.INSTALLING

    @property
    def light(self) -> ChargePortLight:
        """The charge-port light state for this event."""
        return self.LIGHT

    @property
    def display_text(self) -> str:
        """A short text for the driver display."""
        return ""


@dataclasses.dataclass(frozen=True, slots=True)
class InstallationStarted(WalletEvent):
    """Contract installation (``action="install"``) or update (``"update"``) has begun."""

    action: str = "install"

    LIGHT: ClassVar[ChargePortLight] = ChargePortLight.INSTALLING

    @property
    def display_text(self) -> str:
        return "Updating charging contract…" if self.action == "update" else "Installing charging contract…"


@dataclasses.dataclass(frozen=True, slots=True)
class InstallationSucceeded(WalletEvent):
    """A contract for ``emaid`` is installed and ready for Plug & Charge."""

    emaid: str

    LIGHT: ClassVar[ChargePortLight] = ChargePortLight.SUCCESS

    @property
    def display_text(self) -> str:
        return f"Charging contract {self.emaid} installed"


@dataclasses.dataclass(frozen=True, slots=True)
class InstallationFailed(WalletEvent):
    """Installation failed; ``reason`` is short and log-safe (e.g. a ResponseCode)."""

    reason: str

    LIGHT: ClassVar[ChargePortLight] = ChargePortLight.FAILURE

    @property
    def display_text(self) -> str:
        if self.reason == "FAILED_NoCertificateAvailable":  # the eMSP has no contract for this car's PCID
            return f"No contract yet ({self.reason}): activate Plug & Charge with your provider first"
        # the driver sees a response code (short, standard) or nothing technical; the full reason
        # is for the log and the workshop
        code = f" ({self.reason})" if self.reason.startswith("FAILED") and " " not in self.reason else ""
        return f"Contract installation failed{code}; charging without Plug & Charge"



# ---------------------------------------------------------------- EV events
@dataclasses.dataclass(frozen=True, slots=True)
class PaymentSelected(Event):
    """The EV chose ``option`` (``Contract`` or ``ExternalPayment``); ``reason`` says why."""

    option: str
    reason: str
    installation: Optional[str] = None  # "install" / "update" when the certificate service is used


@dataclasses.dataclass(frozen=True, slots=True)
class ContractInstallationStarted(Event):
    """Driver display: contract installation (``kind`` = install/update) has started."""

    kind: str
    pcid: str = ""

    @property
    def wallet_event(self) -> WalletEvent:
        """The driver-display / charge-port-light event (:class:`InstallationStarted`)."""
        return InstallationStarted(self.kind)


@dataclasses.dataclass(frozen=True, slots=True)
class ContractInstallationSucceeded(Event):
    """Driver display: a new contract was verified and stored in the wallet."""

    emaid: str
    kind: str = "install"

    @property
    def wallet_event(self) -> WalletEvent:
        """The driver-display event (:class:`InstallationSucceeded`)."""
        return InstallationSucceeded(self.emaid)


@dataclasses.dataclass(frozen=True, slots=True)
class ContractInstallationFailed(Event):
    """Driver display: installation failed (``reason`` is log-safe, ``response_code`` if the charger sent one)."""

    reason: str
    response_code: Optional[str] = None

    @property
    def wallet_event(self) -> WalletEvent:
        """The driver-display event (:class:`InstallationFailed`)."""
        return InstallationFailed(self.response_code or self.reason)


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationPending(Event):
    """The charger answered EVSEProcessing=Ongoing; the EV asks again."""

    processing: str = "Ongoing"


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationAccepted(Event):
    """Authorisation finished; on the charger side ``emaid`` names the contract (None for EIM)."""

    payment: str
    emaid: Optional[str] = None


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationRejected(Event):
    """Authorisation was refused with ``response_code`` (what the response carried); on the charger
    side ``cause`` is the more specific reason when AuthorizationRes may not carry it (e.g. the
    backend's ``FAILED_CertificateRevoked`` goes out as ``FAILED``)."""

    response_code: str
    emaid: Optional[str] = None
    cause: Optional[str] = None


@dataclasses.dataclass(frozen=True, slots=True)
class SalesTariffVerified(Event):
    """The signed SalesTariff(s) of the chosen schedule verified (EV side)."""

    tariff_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class ChargingStarted(Event):
    """PowerDelivery(Start) was accepted: energy flows."""

    energy_mode: str
    sa_schedule_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class MeterValues(Event):
    """A charge-loop status: present values (``voltage``/``current`` in V/A) and the meter reading (Wh)."""

    voltage: Optional[float] = None
    current: Optional[float] = None
    meter_wh: Optional[int] = None
    soc: Optional[int] = None


@dataclasses.dataclass(frozen=True, slots=True)
class ChargingStopped(Event):
    """PowerDelivery(Stop) was accepted.  ``reason``: ``ev_request`` (the EV is done), ``charger_request``
    (the EV stops because the charger asked it to: EVSENotification StopCharging or an EVSE_Shutdown,
    -20 Terminate), ``pause``, ``standby`` (-20)."""

    reason: str = "ev_request"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionPaused(Event):
    """SessionStop(Pause) was accepted; resume later with the same ``session_id``, payment option
    and SAScheduleTupleID (on the EV side: ``EVConfig.resume_session_id`` / ``resume_payment`` /
    ``resume_schedule_id``)."""

    session_id: bytes
    payment: Optional[str] = None
    sa_schedule_id: Optional[int] = None


# ---------------------------------------------------------------- charger events
@dataclasses.dataclass(frozen=True, slots=True)
class CertificateInstallationNeeded(BackendRequest):
    """Forward ``exi_request`` (the EV's EXI V2G_Message, signature checked) to the backend as an
    OCPP Get15118EVCertificate; answer with :class:`CertificateInstallationResponse`.

    ISO 15118-20 (``schema_version`` its CommonMessages namespace, ``exi_request`` the
    CertificateInstallationReq root message) also names what the request asks for, as OCPP 2.1
    passes it on: the EV's ``root_certificate_ids`` (``(X509IssuerName, X509SerialNumber)``),
    ``maximum_contract_chains`` and ``prioritized_emaids`` (highest priority first)."""

    exi_request: bytes
    action: str = "Install"  # or "Update"
    schema_version: str = "urn:iso:15118:2:2013:MsgDef"
    root_certificate_ids: tuple[tuple[str, int], ...] = ()
    maximum_contract_chains: Optional[int] = None
    prioritized_emaids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationNeeded(BackendRequest):
    """Authorise the session; answer with :class:`AuthorizationResult`.

    Contract: ``emaid``, the contract ``chain`` (DER, leaf first, already validated locally) and
    ``ocsp_data`` (OCPP ``OCSPRequestData`` dicts) as for OCPP Authorize.  ExternalPayment:
    ``emaid`` is None and the caller answers once the driver identified at the charger."""

    payment: str
    emaid: Optional[str] = None
    chain: tuple[bytes, ...] = ()
    ocsp_data: tuple[Mapping[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class MeteringReceiptReceived(Event):
    """The EV signed a metering receipt (signature verified)."""

    meter_info: Mapping[str, Any]


# ---------------------------------------------------------------- commands
@dataclasses.dataclass(frozen=True, slots=True)
class StartSession(Command):
    """EV: open the V2G session (sends supportedAppProtocolReq)."""


@dataclasses.dataclass(frozen=True, slots=True)
class StopCharging(Command):
    """EV: stop charging and end the session (PowerDelivery Stop … SessionStop Terminate).
    Charger: ask the EV to stop (EVSENotification StopCharging)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PauseCharging(Command):
    """EV: stop charging and pause the session (SessionStop Pause) to resume later."""


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateInstallationResponse(Command):
    """Charger: the backend's answer to :class:`CertificateInstallationNeeded`.

    ``exi_response`` is the EXI CertificateInstallationRes/UpdateRes V2G_Message from the
    backend; ``None`` (or ``accepted=False``) is a refusal: the charger answers ``response_code``
    (default ``FAILED``; a code the response may not carry becomes ``FAILED`` too) and reports
    ``reason`` (the backend's, log-safe) in its events.  A backend that knows the cause (an
    unknown PCID: ``FAILED_NoCertificateAvailable``) sends it in its EXI response instead.  In
    ISO 15118-20 a ``WARNING_`` ``response_code`` (e.g. ``WARNING_NoContractMatchingPCIDFound``) is
    answered in an unsigned CertificateInstallationRes and the session goes on (the EV may use EIM)."""

    exi_response: Optional[bytes]
    accepted: bool = True
    response_code: Optional[str] = None
    reason: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationResult(Command):
    """Charger: the backend's (or local identification's) answer to :class:`AuthorizationNeeded`.

    ``payment``: the ``payment`` of the request it answers. An ISO 15118-20 EV may change its
    authorisation mode while an answer is awaited (EIM after PnC); the -20 charger then asks anew
    and ignores a result for the other payment, which answers the abandoned request. None (the
    default) answers whatever request is under way; -2 and DIN have one payment per session."""

    accepted: bool
    response_code: Optional[str] = None  # e.g. FAILED_CertificateRevoked; default FAILED when refused
    payment: Optional[str] = None


@dataclasses.dataclass(frozen=True, slots=True)
class RequestRenegotiation(Command):
    """Charger: ask the EV to renegotiate its schedule (EVSENotification ReNegotiation); the EV
    answers with PowerDelivery(Renegotiate), ChargeParameterDiscovery and PowerDelivery(Start)."""
