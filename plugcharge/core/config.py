"""What the vehicle and the charging station are and want, for every protocol; paused sessions.

:class:`EVConfig` and :class:`ChargerConfig` are plain data (the simulated battery and power stage
included); each protocol's handlers read the fields that exist in that protocol.  ``protocols``
lists the protocols a side speaks, most preferred first (ids of
:data:`~plugcharge.core.protocol.KNOWN_PROTOCOLS`); only those implemented in this package are
offered or agreed.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Optional

from .protocol import DEFAULT_PROTOCOLS

__all__ = ["EVConfig", "ChargerConfig", "PausedSession", "SessionStore"]


@dataclasses.dataclass
class EVConfig:
    """Vehicle parameters and the (simulated) battery."""

    evcc_id: bytes = bytes.fromhex("0A1B2C3D4E5F")
    energy_mode: str = "DC_extended"
    soc: float = 30.0
    target_soc: float = 80.0
    soc_per_loop: float = 1.0
    #: Stop after this many charge-loop requests (None: until target SOC or StopCharging).
    charge_loops: Optional[int] = None
    dc_max_voltage: float = 450.0
    dc_max_current: float = 250.0
    dc_max_power: float = 150000.0
    dc_target_voltage: float = 400.0
    dc_target_current: float = 120.0
    capacity_wh: float = 80000.0
    ac_max_voltage: float = 400.0
    ac_max_current: float = 32.0
    ac_min_current: float = 6.0
    energy_request_wh: float = 40000.0
    departure_time: Optional[int] = None
    #: Delay before re-sending a request answered with EVSEProcessing=Ongoing.
    poll_interval: float = 0.5
    #: Delay between charge-loop requests.
    loop_interval: float = 0.0
    welding_detection: bool = True
    #: PreCharge is complete when the present voltage is within this many volts of the target.
    precharge_tolerance: float = 20.0
    #: Resume a paused session (its SessionID, ``SessionPaused.session_id``).
    resume_session_id: Optional[bytes] = None
    #: Resumed session's payment option (as selected before the pause).
    resume_payment: Optional[str] = None
    #: Resumed session's SAScheduleTupleID (as selected before the pause), chosen again when offered.
    resume_schedule_id: Optional[int] = None
    #: Do not use Plug & Charge in this session (ExternalPayment fallback after a failure).
    pnc_suppressed: bool = False
    #: Ask for the certificate service's details (ServiceDetailReq) before using it.
    query_service_detail: bool = True
    #: Protocols offered in supportedAppProtocolReq, most preferred first (Priority 1, 2, ...).
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    #: Whether the connection runs over TLS (None: not known; every configured protocol is offered).
    tls: Optional[bool] = None
    # ---- ISO 15118-20 only (the other protocols ignore these)
    #: Bidirectional power transfer: ask for the AC_BPT / DC_BPT energy service.
    bpt: bool = False
    #: Control mode: ``"Scheduled"`` (the EV sets its targets within the charger's schedule) or
    #: ``"Dynamic"`` (the charger sets the power).
    control_mode: str = "Scheduled"
    #: BPT in Scheduled mode: discharge during this many charge-loop messages, then charge.
    discharge_loops: int = 0
    max_discharge_power: float = 11000.0
    max_discharge_current: float = 25.0
    #: PowerDelivery(Standby) after this many charge-loop messages (None: never), for ``standby_loops``.
    standby_after_loops: Optional[int] = None
    standby_loops: int = 2


@dataclasses.dataclass
class ChargerConfig:
    """Static description of the charging station (the simulated power stage included)."""

    evse_id: str = "DE*PNC*E12345*1"
    payment_options: tuple[str, ...] = ("Contract", "ExternalPayment")
    energy_modes: tuple[str, ...] = ("DC_extended", "AC_three_phase_core")
    #: The connection runs over TLS: Contract payment is offered only then (Plug & Charge must not
    #: run without it), and only protocols that permit the transport are agreed.
    tls: bool = True
    certificate_service: bool = True
    dc_max_voltage: float = 500.0
    dc_min_voltage: float = 50.0
    dc_max_current: float = 200.0
    dc_min_current: float = 0.0
    dc_max_power: float = 100000.0
    dc_peak_ripple: float = 2.0
    ac_nominal_voltage: float = 230.0
    ac_max_current: float = 32.0
    pmax_w: float = 100000.0
    #: Offer a SalesTariff (signed when ``ChargerSecurity.sales_tariff_key`` is set and payment is Contract).
    sales_tariff: bool = False
    #: Ask for a signed MeteringReceipt every N charge-loop messages (0 = never; Contract only).
    receipt_every: int = 0
    cable_check_polls: int = 1
    schedule_polls: int = 0
    meter_id: str = "METER-0001"
    #: Protocols this charger speaks, its own preference first (breaks ties of the EV's priorities).
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    # ---- ISO 15118-20 only
    #: Control modes offered (one ParameterSet each in ServiceDetailRes).
    control_modes: tuple[str, ...] = ("Scheduled", "Dynamic")
    #: Offer the bidirectional services AC_BPT / DC_BPT beside AC / DC.
    bpt: bool = True
    #: BPT in Dynamic mode: the charger commands discharge for this many charge-loop messages, then charge.
    discharge_loops: int = 0
    max_discharge_power: float = 11000.0
    max_discharge_current: float = 25.0
    #: Accept PowerDelivery(Standby) (else WARNING_StandbyNotAllowed).
    standby_allowed: bool = True


@dataclasses.dataclass
class PausedSession:
    """What a charger keeps of a paused session to join it again (SessionStop Pause, then SessionSetup
    with the same SessionID)."""

    payment: str
    emaid: Optional[str]
    contract_leaf: Optional[bytes]
    energy_mode: Optional[str]
    #: id of the protocol the session ran (a session resumes only in the same protocol)
    protocol: str = ""
    #: when the agreed schedule began (a resumed session gets what is left of it)
    schedule_start: Optional[datetime] = None


class SessionStore:
    """Paused sessions of one charger, shared by its session objects (resume by SessionID)."""

    def __init__(self) -> None:
        self._paused: dict[bytes, PausedSession] = {}

    def pause(self, session_id: bytes, record: PausedSession) -> None:
        """Keep ``record`` for ``session_id``."""
        self._paused[bytes(session_id)] = record

    def resume(self, session_id: bytes, protocol: Optional[str] = None) -> Optional[PausedSession]:
        """Take the paused session ``session_id`` out of the store (only one of ``protocol``, if given)."""
        record = self._paused.get(bytes(session_id))
        if record is None or (protocol is not None and record.protocol not in ("", protocol)):
            return None
        return self._paused.pop(bytes(session_id))

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._paused
