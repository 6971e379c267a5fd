"""The two DIN SPEC 70121 state machines as data: one transition table per side.

Both start where the session core's SupportedAppProtocol handshake leaves them
(:attr:`~plugcharge.core.fsm.CoreState.WAIT_SAP`) and end in :data:`ENDED`.  EV (EVCC) states name the
response it waits for; :data:`EV_TRANSITIONS` maps each to the one response body it accepts and the
states that may follow.  Charger (SECC) states name the request(s) it accepts;
:data:`CHARGER_TRANSITIONS` maps each to ``{request: next states}``: the requests the SECC expects
after each of its responses, [V2G-DC-437] ... [V2G-DC-499] (the ids EVerest's DIN SECC quotes for
them).  A request not allowed in the current state is answered with its own response type carrying
``FAILED_SequenceError`` [V2G-DC-390]; a SessionID other than the session's with
``FAILED_UnknownSession`` [V2G-DC-391]; after a FAILED response the SECC ends the session
[V2G-DC-665].

DIN has one DC sequence, ExternalPayment only: SessionSetup, ServiceDiscovery,
ServicePaymentSelection, ContractAuthentication (EVSEProcessing=Ongoing loops), ChargeParameterDiscovery
(loops too), CableCheck (loops), PreCharge (loops), PowerDelivery(ReadyToChargeState=TRUE), the
CurrentDemand loop, PowerDelivery(FALSE), WeldingDetection (loops), SessionStop.  There is no
renegotiation, no metering receipt and no pause: SessionStopReq always terminates [V2G-DC-451].
"""
from __future__ import annotations

import enum
from types import MappingProxyType
from typing import Any, Mapping

from ..core import fsm
from ..core.fsm import CoreState

__all__ = ["EVState", "ChargerState", "ENDED", "EV_TRANSITIONS", "CHARGER_TRANSITIONS", "REQUEST_TO_RESPONSE",
           "SUPPORTED_REQUESTS", "check_ev_transition", "check_charger_transition"]

#: The state after the session: the core's.
ENDED = CoreState.ENDED


class EVState(str, enum.Enum):
    """EVCC states: ``WAIT_X`` = request X sent, waiting for its response."""

    WAIT_SESSION_SETUP = "WAIT_SESSION_SETUP"
    WAIT_SERVICE_DISCOVERY = "WAIT_SERVICE_DISCOVERY"
    WAIT_PAYMENT_SELECTION = "WAIT_PAYMENT_SELECTION"
    WAIT_CONTRACT_AUTHENTICATION = "WAIT_CONTRACT_AUTHENTICATION"
    WAIT_CHARGE_PARAMETER = "WAIT_CHARGE_PARAMETER"
    WAIT_CABLE_CHECK = "WAIT_CABLE_CHECK"
    WAIT_PRECHARGE = "WAIT_PRECHARGE"
    WAIT_POWER_DELIVERY = "WAIT_POWER_DELIVERY"
    WAIT_CURRENT_DEMAND = "WAIT_CURRENT_DEMAND"
    WAIT_WELDING = "WAIT_WELDING"
    WAIT_SESSION_STOP = "WAIT_SESSION_STOP"


class ChargerState(str, enum.Enum):
    """SECC states: which request(s) may come next."""

    WAIT_SESSION_SETUP = "WAIT_SESSION_SETUP"
    WAIT_SERVICE_DISCOVERY = "WAIT_SERVICE_DISCOVERY"
    WAIT_PAYMENT_SELECTION = "WAIT_PAYMENT_SELECTION"
    WAIT_AUTHORIZATION = "WAIT_AUTHORIZATION"        # ContractAuthenticationReq (Ongoing until decided)
    WAIT_CHARGE_PARAMETER = "WAIT_CHARGE_PARAMETER"
    WAIT_CABLE_CHECK = "WAIT_CABLE_CHECK"
    WAIT_PRECHARGE = "WAIT_PRECHARGE"                # PreChargeReq, or PowerDeliveryReq to start
    CHARGING = "CHARGING"                            # CurrentDemandReq, or PowerDeliveryReq to stop
    STOPPED = "STOPPED"                              # WeldingDetectionReq, SessionStopReq


E, C = EVState, ChargerState

#: state -> (response body accepted, allowed next states).
EV_TRANSITIONS: fsm.EVTable = MappingProxyType({
    CoreState.WAIT_SAP: ("supportedAppProtocolRes", frozenset({E.WAIT_SESSION_SETUP})),
    E.WAIT_SESSION_SETUP: ("SessionSetupRes", frozenset({E.WAIT_SERVICE_DISCOVERY})),
    E.WAIT_SERVICE_DISCOVERY: ("ServiceDiscoveryRes", frozenset({E.WAIT_PAYMENT_SELECTION})),
    E.WAIT_PAYMENT_SELECTION: ("ServicePaymentSelectionRes", frozenset({E.WAIT_CONTRACT_AUTHENTICATION})),
    E.WAIT_CONTRACT_AUTHENTICATION: ("ContractAuthenticationRes", frozenset({
        E.WAIT_CONTRACT_AUTHENTICATION, E.WAIT_CHARGE_PARAMETER})),
    E.WAIT_CHARGE_PARAMETER: ("ChargeParameterDiscoveryRes", frozenset({E.WAIT_CHARGE_PARAMETER, E.WAIT_CABLE_CHECK})),
    E.WAIT_CABLE_CHECK: ("CableCheckRes", frozenset({E.WAIT_CABLE_CHECK, E.WAIT_PRECHARGE})),
    E.WAIT_PRECHARGE: ("PreChargeRes", frozenset({E.WAIT_PRECHARGE, E.WAIT_POWER_DELIVERY})),
    E.WAIT_POWER_DELIVERY: ("PowerDeliveryRes", frozenset({
        E.WAIT_CURRENT_DEMAND, E.WAIT_WELDING, E.WAIT_POWER_DELIVERY})),  # stop right after start is allowed
    E.WAIT_CURRENT_DEMAND: ("CurrentDemandRes", frozenset({E.WAIT_CURRENT_DEMAND, E.WAIT_POWER_DELIVERY})),
    E.WAIT_WELDING: ("WeldingDetectionRes", frozenset({E.WAIT_WELDING, E.WAIT_SESSION_STOP})),
    E.WAIT_SESSION_STOP: ("SessionStopRes", frozenset({ENDED})),
})

_STOP = "SessionStopReq"
_END = frozenset({ENDED})
#: state -> {request body: allowed next states}.  SessionStopReq ends the session from every state
#: after SessionSetup except during energy transfer (the EV stops it with PowerDeliveryReq first).
CHARGER_TRANSITIONS: fsm.ChargerTable = MappingProxyType({
    CoreState.WAIT_SAP: {"supportedAppProtocolReq": frozenset({C.WAIT_SESSION_SETUP})},
    C.WAIT_SESSION_SETUP: {"SessionSetupReq": frozenset({C.WAIT_SERVICE_DISCOVERY})},           # [V2G-DC-437]
    C.WAIT_SERVICE_DISCOVERY: {"ServiceDiscoveryReq": frozenset({C.WAIT_PAYMENT_SELECTION}),   # [V2G-DC-439]
                               _STOP: _END},
    C.WAIT_PAYMENT_SELECTION: {"ServicePaymentSelectionReq": frozenset({C.WAIT_AUTHORIZATION}),  # [V2G-DC-441]
                               _STOP: _END},
    C.WAIT_AUTHORIZATION: {"ContractAuthenticationReq": frozenset({                             # [V2G-DC-444]
        C.WAIT_AUTHORIZATION, C.WAIT_CHARGE_PARAMETER}), _STOP: _END},
    C.WAIT_CHARGE_PARAMETER: {"ChargeParameterDiscoveryReq": frozenset({                        # [V2G-DC-498]
        C.WAIT_CHARGE_PARAMETER, C.WAIT_CABLE_CHECK}), _STOP: _END},
    C.WAIT_CABLE_CHECK: {"CableCheckReq": frozenset({C.WAIT_CABLE_CHECK, C.WAIT_PRECHARGE}),    # [V2G-DC-453]
                         _STOP: _END},
    C.WAIT_PRECHARGE: {"PreChargeReq": frozenset({C.WAIT_PRECHARGE}),                           # [V2G-DC-455]
                       "PowerDeliveryReq": frozenset({C.CHARGING, C.STOPPED}),                  # [V2G-DC-458]
                       _STOP: _END},
    C.CHARGING: {"CurrentDemandReq": frozenset({C.CHARGING}),                                   # [V2G-DC-462]
                 "PowerDeliveryReq": frozenset({C.STOPPED})},                                   # [V2G-DC-465]
    C.STOPPED: {"WeldingDetectionReq": frozenset({C.STOPPED}), _STOP: _END},                    # [V2G-DC-459]
    ENDED: {},
})

#: The requests this package's DIN sessions exchange (DC, ExternalPayment).
SUPPORTED_REQUESTS = (
    "SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq", "ContractAuthenticationReq",
    "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq",
    "WeldingDetectionReq", "SessionStopReq")
#: Every request body of the DIN message set and its response: the ones outside DC ExternalPayment
#: (ServiceDetail, PaymentDetails, ChargingStatus, MeteringReceipt, CertificateInstallation/Update)
#: are never allowed, so the SECC answers them with their own response carrying FAILED_SequenceError.
REQUEST_TO_RESPONSE: Mapping[str, str] = MappingProxyType({
    name: name[:-3] + "Res" for name in (*SUPPORTED_REQUESTS, "ServiceDetailReq", "PaymentDetailsReq",
                                         "ChargingStatusReq", "MeteringReceiptReq", "CertificateInstallationReq",
                                         "CertificateUpdateReq")
})


def check_ev_transition(state: Any, new: Any) -> None:
    """Raise AssertionError if the EV table does not allow ``state -> new`` (ENDED always is, and
    WAIT_SESSION_STOP from every DIN state)."""
    fsm.check_ev_transition(EV_TRANSITIONS, state, new, stop_state=EVState.WAIT_SESSION_STOP)


def check_charger_transition(state: Any, request: str, new: Any) -> None:
    """Raise AssertionError if the charger table does not allow ``state --request--> new``."""
    fsm.check_charger_transition(CHARGER_TRANSITIONS, state, request, new)
