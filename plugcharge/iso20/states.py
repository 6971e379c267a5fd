"""The ISO 15118-20 state machines as data: one transition table per side and energy service.

The message sequence is that of ISO 15118-20 clause 8.6.4 (Figures 215/216 of the standard, as the
public stacks implement it): SessionSetup, AuthorizationSetup, (CertificateInstallation),
Authorization, ServiceDiscovery, ServiceDetail, ServiceSelection, {AC,DC}_ChargeParameterDiscovery,
ScheduleExchange, (DC: DC_CableCheck, DC_PreCharge), PowerDelivery(Start), {AC,DC}_ChargeLoop with
MeteringConfirmation on the charger's request, PowerDelivery(Standby / ScheduleRenegotiation /
Stop), (DC: DC_WeldingDetection), SessionStop(Terminate / Pause).

EV (EVCC) states are ``WAIT_X`` (request X sent); :func:`ev_table` maps each to the one response
it accepts and the states that may follow.  Charger (SECC) states name the request(s) accepted;
:func:`charger_table` maps each to ``{request: next states}``.  The AC and DC message sets differ
only in the energy-service messages, so both tables are built per service (:data:`EV_TABLES`,
:data:`CHARGER_TABLES`).  Anything not in the charger's table is answered with the request's
response carrying ``FAILED_SequenceError`` and ends the session; the EVCC stops on any ``FAILED``
response [V2G20-1967, V2G20-2220].  The EV may always leave with SessionStopReq once the session is
set up (a rule of the session core).

Plug & Charge lives in the same tables: ``WAIT_CERT_INSTALL`` (EV) and the charger's
CertificateInstallationReq in ``WAIT_AUTHORIZATION`` with ``WAIT_BACKEND_CERTIFICATE`` while the
backend works (see :mod:`plugcharge.iso20.pnc`).
"""
from __future__ import annotations

import enum
from types import MappingProxyType
from typing import Mapping

from ..core import fsm
from ..core.fsm import CoreState

__all__ = ["EVState", "ChargerState", "ENDED", "ev_table", "charger_table", "EV_TABLES", "CHARGER_TABLES",
           "REQUESTS", "REQUEST_TO_RESPONSE", "SERVICE_MESSAGES"]

ENDED = CoreState.ENDED


class EVState(str, enum.Enum):
    """EVCC states: ``WAIT_X`` = request X sent, waiting for its response."""

    WAIT_SESSION_SETUP = "WAIT_SESSION_SETUP"
    WAIT_AUTHORIZATION_SETUP = "WAIT_AUTHORIZATION_SETUP"
    WAIT_CERT_INSTALL = "WAIT_CERT_INSTALL"
    WAIT_AUTHORIZATION = "WAIT_AUTHORIZATION"
    WAIT_SERVICE_DISCOVERY = "WAIT_SERVICE_DISCOVERY"
    WAIT_SERVICE_DETAIL = "WAIT_SERVICE_DETAIL"
    WAIT_SERVICE_SELECTION = "WAIT_SERVICE_SELECTION"
    WAIT_CHARGE_PARAMETER = "WAIT_CHARGE_PARAMETER"
    WAIT_SCHEDULE_EXCHANGE = "WAIT_SCHEDULE_EXCHANGE"
    WAIT_CABLE_CHECK = "WAIT_CABLE_CHECK"
    WAIT_PRECHARGE = "WAIT_PRECHARGE"
    WAIT_POWER_DELIVERY = "WAIT_POWER_DELIVERY"
    WAIT_CHARGE_LOOP = "WAIT_CHARGE_LOOP"
    WAIT_METERING_CONFIRMATION = "WAIT_METERING_CONFIRMATION"
    WAIT_WELDING = "WAIT_WELDING"
    WAIT_SESSION_STOP = "WAIT_SESSION_STOP"


class ChargerState(str, enum.Enum):
    """SECC states: which request(s) may come next."""

    WAIT_SESSION_SETUP = "WAIT_SESSION_SETUP"
    WAIT_AUTHORIZATION_SETUP = "WAIT_AUTHORIZATION_SETUP"
    WAIT_AUTHORIZATION = "WAIT_AUTHORIZATION"              # AuthorizationReq (EIM/PnC) or CertificateInstallationReq
    WAIT_BACKEND_CERTIFICATE = "WAIT_BACKEND_CERTIFICATE"  # PnC: the backend works, the EV must not send
    WAIT_SERVICE_DISCOVERY = "WAIT_SERVICE_DISCOVERY"
    WAIT_SERVICE_SELECTION = "WAIT_SERVICE_SELECTION"      # ServiceDetail* then ServiceSelection
    WAIT_CHARGE_PARAMETER = "WAIT_CHARGE_PARAMETER"
    WAIT_SCHEDULE_EXCHANGE = "WAIT_SCHEDULE_EXCHANGE"
    WAIT_CABLE_CHECK = "WAIT_CABLE_CHECK"                  # DC
    WAIT_PRECHARGE = "WAIT_PRECHARGE"                      # DC
    WAIT_POWER_DELIVERY = "WAIT_POWER_DELIVERY"            # AC, and both after a schedule renegotiation
    CHARGING = "CHARGING"
    STANDBY = "STANDBY"                                    # PowerDelivery(Standby): loop at no power
    STOPPED = "STOPPED"


E, C = EVState, ChargerState
_STOP = "SessionStopReq"

#: The energy-service messages of each message set (their schema: ``urn:iso:std:iso:15118:-20:<service>``).
SERVICE_MESSAGES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "AC": ("AC_ChargeParameterDiscoveryReq", "AC_ChargeLoopReq"),
    "DC": ("DC_ChargeParameterDiscoveryReq", "DC_CableCheckReq", "DC_PreChargeReq", "DC_ChargeLoopReq",
           "DC_WeldingDetectionReq"),
})
_COMMON = ("SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq", "CertificateInstallationReq",
           "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq", "ScheduleExchangeReq",
           "PowerDeliveryReq", "MeteringConfirmationReq", "SessionStopReq")
#: Every request of both message sets.
REQUESTS: tuple[str, ...] = _COMMON + SERVICE_MESSAGES["AC"] + SERVICE_MESSAGES["DC"]
#: Every request body and its response body (to answer out-of-sequence requests).
REQUEST_TO_RESPONSE: Mapping[str, str] = MappingProxyType({name: name[:-3] + "Res" for name in REQUESTS})


def ev_table(service: str) -> fsm.EVTable:
    """The EV table of the ``"AC"`` or ``"DC"`` message set."""
    dc = service == "DC"
    p = service + "_"
    table: dict = {
        CoreState.WAIT_SAP: ("supportedAppProtocolRes", frozenset({E.WAIT_SESSION_SETUP})),
        E.WAIT_SESSION_SETUP: ("SessionSetupRes", frozenset({E.WAIT_AUTHORIZATION_SETUP})),
        E.WAIT_AUTHORIZATION_SETUP: ("AuthorizationSetupRes", frozenset({E.WAIT_AUTHORIZATION, E.WAIT_CERT_INSTALL})),
        E.WAIT_CERT_INSTALL: ("CertificateInstallationRes", frozenset({E.WAIT_CERT_INSTALL, E.WAIT_AUTHORIZATION})),
        E.WAIT_AUTHORIZATION: ("AuthorizationRes", frozenset({E.WAIT_AUTHORIZATION, E.WAIT_SERVICE_DISCOVERY})),
        E.WAIT_SERVICE_DISCOVERY: ("ServiceDiscoveryRes", frozenset({E.WAIT_SERVICE_DETAIL, E.WAIT_SERVICE_SELECTION})),
        E.WAIT_SERVICE_DETAIL: ("ServiceDetailRes", frozenset({E.WAIT_SERVICE_DETAIL, E.WAIT_SERVICE_SELECTION})),
        E.WAIT_SERVICE_SELECTION: ("ServiceSelectionRes", frozenset({E.WAIT_CHARGE_PARAMETER})),
        E.WAIT_CHARGE_PARAMETER: (p + "ChargeParameterDiscoveryRes", frozenset({E.WAIT_SCHEDULE_EXCHANGE})),
        E.WAIT_SCHEDULE_EXCHANGE: ("ScheduleExchangeRes", frozenset(
            {E.WAIT_SCHEDULE_EXCHANGE, E.WAIT_POWER_DELIVERY} | ({E.WAIT_CABLE_CHECK} if dc else set()))),
        E.WAIT_POWER_DELIVERY: ("PowerDeliveryRes", frozenset({
            E.WAIT_POWER_DELIVERY, E.WAIT_CHARGE_LOOP, E.WAIT_SCHEDULE_EXCHANGE, E.WAIT_SESSION_STOP}
            | ({E.WAIT_WELDING} if dc else set()))),
        E.WAIT_CHARGE_LOOP: (p + "ChargeLoopRes", frozenset({
            E.WAIT_CHARGE_LOOP, E.WAIT_METERING_CONFIRMATION, E.WAIT_POWER_DELIVERY})),
        E.WAIT_METERING_CONFIRMATION: ("MeteringConfirmationRes", frozenset({E.WAIT_CHARGE_LOOP,
                                                                              E.WAIT_POWER_DELIVERY})),
        E.WAIT_SESSION_STOP: ("SessionStopRes", frozenset({ENDED})),
    }
    if dc:
        table.update({
            E.WAIT_CABLE_CHECK: ("DC_CableCheckRes", frozenset({E.WAIT_CABLE_CHECK, E.WAIT_PRECHARGE})),
            E.WAIT_PRECHARGE: ("DC_PreChargeRes", frozenset({E.WAIT_PRECHARGE, E.WAIT_POWER_DELIVERY})),
            E.WAIT_WELDING: ("DC_WeldingDetectionRes", frozenset({E.WAIT_WELDING, E.WAIT_SESSION_STOP})),
        })
    return MappingProxyType(table)


def charger_table(service: str) -> fsm.ChargerTable:
    """The charger table of the ``"AC"`` or ``"DC"`` message set.  SessionStopReq ends the session
    from every state outside the energy transfer (the EV may give up, e.g. after a refused
    authorisation); during it the EV stops with PowerDeliveryReq(Stop) first."""
    dc = service == "DC"
    p = service + "_"
    end = frozenset({ENDED})
    table: dict = {
        CoreState.WAIT_SAP: {"supportedAppProtocolReq": frozenset({C.WAIT_SESSION_SETUP})},
        C.WAIT_SESSION_SETUP: {"SessionSetupReq": frozenset({C.WAIT_AUTHORIZATION_SETUP})},
        C.WAIT_AUTHORIZATION_SETUP: {"AuthorizationSetupReq": frozenset({C.WAIT_AUTHORIZATION}), _STOP: end},
        C.WAIT_AUTHORIZATION: {"AuthorizationReq": frozenset({C.WAIT_AUTHORIZATION, C.WAIT_SERVICE_DISCOVERY}),
                               "CertificateInstallationReq": frozenset({C.WAIT_BACKEND_CERTIFICATE, C.WAIT_AUTHORIZATION}),
                               _STOP: end},
        C.WAIT_BACKEND_CERTIFICATE: {},
        C.WAIT_SERVICE_DISCOVERY: {"ServiceDiscoveryReq": frozenset({C.WAIT_SERVICE_SELECTION}), _STOP: end},
        C.WAIT_SERVICE_SELECTION: {"ServiceDetailReq": frozenset({C.WAIT_SERVICE_SELECTION}),
                                   "ServiceSelectionReq": frozenset({C.WAIT_CHARGE_PARAMETER}), _STOP: end},
        C.WAIT_CHARGE_PARAMETER: {p + "ChargeParameterDiscoveryReq": frozenset({C.WAIT_SCHEDULE_EXCHANGE}),
                                  _STOP: end},
        C.WAIT_SCHEDULE_EXCHANGE: {"ScheduleExchangeReq": frozenset(
            {C.WAIT_SCHEDULE_EXCHANGE, C.WAIT_POWER_DELIVERY} | ({C.WAIT_CABLE_CHECK} if dc else set())),
            _STOP: end},
        C.WAIT_POWER_DELIVERY: {"PowerDeliveryReq": frozenset({C.WAIT_POWER_DELIVERY, C.CHARGING, C.STOPPED}),
                                _STOP: end},
        C.CHARGING: {p + "ChargeLoopReq": frozenset({C.CHARGING}),
                     "MeteringConfirmationReq": frozenset({C.CHARGING}),
                     "PowerDeliveryReq": frozenset({C.CHARGING, C.STANDBY, C.STOPPED, C.WAIT_SCHEDULE_EXCHANGE})},
        C.STANDBY: {p + "ChargeLoopReq": frozenset({C.STANDBY}),
                    "PowerDeliveryReq": frozenset({C.STANDBY, C.CHARGING, C.STOPPED})},
        C.STOPPED: {_STOP: end},
        ENDED: {},
    }
    if dc:
        table.update({
            C.WAIT_CABLE_CHECK: {"DC_CableCheckReq": frozenset({C.WAIT_CABLE_CHECK, C.WAIT_PRECHARGE}), _STOP: end},
            C.WAIT_PRECHARGE: {"DC_PreChargeReq": frozenset({C.WAIT_PRECHARGE}),
                               "PowerDeliveryReq": frozenset({C.WAIT_PRECHARGE, C.CHARGING, C.STOPPED}), _STOP: end},
            C.STOPPED: {"DC_WeldingDetectionReq": frozenset({C.STOPPED}), _STOP: end},
        })
    return MappingProxyType(table)


#: The tables per message set.
EV_TABLES: Mapping[str, fsm.EVTable] = MappingProxyType({s: ev_table(s) for s in ("AC", "DC")})
CHARGER_TABLES: Mapping[str, fsm.ChargerTable] = MappingProxyType({s: charger_table(s) for s in ("AC", "DC")})
