"""The two ISO 15118-2 state machines as data: one transition table per side.

Both start where the session core's SupportedAppProtocol handshake leaves them
(:attr:`~plugcharge.core.fsm.CoreState.WAIT_SAP`) and end in :data:`ENDED`
(:attr:`~plugcharge.core.fsm.CoreState.ENDED`).  EV (EVCC) states name the response it waits for;
:data:`EV_TRANSITIONS` maps each state to the one response body it accepts and the states that may
follow.  Charger (SECC) states name the
request(s) it accepts; :data:`CHARGER_TRANSITIONS` maps each state to ``{request: next states}``.
Anything not in the table is a sequence error: the charger answers with the response message that
corresponds to the received request [V2G2-538] carrying ``FAILED_SequenceError`` [V2G2-459], then
terminates the session [V2G2-539, V2G2-034]; the EV stops on any FAILED response [V2G2-486].

The session core consults the charger table before a request reaches its handler and asserts that
every transition either side makes is listed here, so the tables are the single, testable
description of the message sequences (ISO 15118-2 Figures 104-107).  The EV may always leave with
SessionStopReq once the session is set up (a rule of the core: :func:`check_ev_transition`).
"""
from __future__ import annotations

import enum
from types import MappingProxyType
from typing import Any, Mapping

from ..core import fsm
from ..core.fsm import CoreState

__all__ = ["EVState", "ChargerState", "ENDED", "EV_TRANSITIONS", "CHARGER_TRANSITIONS", "REQUEST_TO_RESPONSE",
           "RESPONSE_CODES", "allowed_response_code",
           "check_ev_transition", "check_charger_transition"]

#: The state after the session: the core's.
ENDED = CoreState.ENDED


class EVState(str, enum.Enum):
    """EVCC states: ``WAIT_X`` = request X sent, waiting for its response."""

    WAIT_SESSION_SETUP = "WAIT_SESSION_SETUP"
    WAIT_SERVICE_DISCOVERY = "WAIT_SERVICE_DISCOVERY"
    WAIT_SERVICE_DETAIL = "WAIT_SERVICE_DETAIL"
    WAIT_PAYMENT_SELECTION = "WAIT_PAYMENT_SELECTION"
    WAIT_CERT_INSTALL = "WAIT_CERT_INSTALL"
    WAIT_CERT_UPDATE = "WAIT_CERT_UPDATE"
    WAIT_PAYMENT_DETAILS = "WAIT_PAYMENT_DETAILS"
    WAIT_AUTHORIZATION = "WAIT_AUTHORIZATION"
    WAIT_CHARGE_PARAMETER = "WAIT_CHARGE_PARAMETER"
    WAIT_CABLE_CHECK = "WAIT_CABLE_CHECK"
    WAIT_PRECHARGE = "WAIT_PRECHARGE"
    WAIT_POWER_DELIVERY = "WAIT_POWER_DELIVERY"
    WAIT_CHARGING_STATUS = "WAIT_CHARGING_STATUS"
    WAIT_CURRENT_DEMAND = "WAIT_CURRENT_DEMAND"
    WAIT_METERING_RECEIPT = "WAIT_METERING_RECEIPT"
    WAIT_WELDING = "WAIT_WELDING"
    WAIT_SESSION_STOP = "WAIT_SESSION_STOP"


class ChargerState(str, enum.Enum):
    """SECC states: which request(s) may come next."""

    WAIT_SESSION_SETUP = "WAIT_SESSION_SETUP"
    WAIT_SERVICE_DISCOVERY = "WAIT_SERVICE_DISCOVERY"
    WAIT_SERVICE_SELECTION = "WAIT_SERVICE_SELECTION"      # ServiceDetail* then PaymentServiceSelection
    WAIT_CONTRACT = "WAIT_CONTRACT"                        # Contract chosen: certificate service or PaymentDetails
    RESUMED_CONTRACT = "RESUMED_CONTRACT"                  # resumed Contract session: PaymentDetails, or Authorization at once
    WAIT_BACKEND_CERTIFICATE = "WAIT_BACKEND_CERTIFICATE"  # backend busy: the EV must not send anything
    WAIT_PAYMENT_DETAILS = "WAIT_PAYMENT_DETAILS"          # after CertificateInstallation/Update
    WAIT_AUTHORIZATION = "WAIT_AUTHORIZATION"
    WAIT_CHARGE_PARAMETER = "WAIT_CHARGE_PARAMETER"
    WAIT_CABLE_CHECK = "WAIT_CABLE_CHECK"                  # DC
    WAIT_PRECHARGE = "WAIT_PRECHARGE"                      # DC
    WAIT_POWER_DELIVERY = "WAIT_POWER_DELIVERY"            # AC, or DC after renegotiation
    CHARGING_AC = "CHARGING_AC"
    CHARGING_DC = "CHARGING_DC"
    STOPPED_AC = "STOPPED_AC"
    STOPPED_DC = "STOPPED_DC"


E, C = EVState, ChargerState

#: state -> (response body accepted, allowed next states).
EV_TRANSITIONS: fsm.EVTable = MappingProxyType({
    CoreState.WAIT_SAP: ("supportedAppProtocolRes", frozenset({E.WAIT_SESSION_SETUP})),
    E.WAIT_SESSION_SETUP: ("SessionSetupRes", frozenset({E.WAIT_SERVICE_DISCOVERY})),
    E.WAIT_SERVICE_DISCOVERY: ("ServiceDiscoveryRes", frozenset({E.WAIT_SERVICE_DETAIL, E.WAIT_PAYMENT_SELECTION})),
    E.WAIT_SERVICE_DETAIL: ("ServiceDetailRes", frozenset({E.WAIT_PAYMENT_SELECTION})),
    E.WAIT_PAYMENT_SELECTION: ("PaymentServiceSelectionRes", frozenset({
        E.WAIT_CERT_INSTALL, E.WAIT_CERT_UPDATE, E.WAIT_PAYMENT_DETAILS, E.WAIT_AUTHORIZATION})),
    E.WAIT_CERT_INSTALL: ("CertificateInstallationRes", frozenset({E.WAIT_PAYMENT_DETAILS, E.WAIT_SESSION_STOP})),
    E.WAIT_CERT_UPDATE: ("CertificateUpdateRes", frozenset({E.WAIT_PAYMENT_DETAILS, E.WAIT_SESSION_STOP})),
    E.WAIT_PAYMENT_DETAILS: ("PaymentDetailsRes", frozenset({E.WAIT_AUTHORIZATION})),
    E.WAIT_AUTHORIZATION: ("AuthorizationRes", frozenset({E.WAIT_AUTHORIZATION, E.WAIT_CHARGE_PARAMETER})),
    E.WAIT_CHARGE_PARAMETER: ("ChargeParameterDiscoveryRes", frozenset({
        E.WAIT_CHARGE_PARAMETER, E.WAIT_CABLE_CHECK, E.WAIT_POWER_DELIVERY, E.WAIT_SESSION_STOP})),
    E.WAIT_CABLE_CHECK: ("CableCheckRes", frozenset({E.WAIT_CABLE_CHECK, E.WAIT_PRECHARGE})),
    E.WAIT_PRECHARGE: ("PreChargeRes", frozenset({E.WAIT_PRECHARGE, E.WAIT_POWER_DELIVERY})),
    E.WAIT_POWER_DELIVERY: ("PowerDeliveryRes", frozenset({
        E.WAIT_CHARGING_STATUS, E.WAIT_CURRENT_DEMAND, E.WAIT_WELDING, E.WAIT_SESSION_STOP,
        E.WAIT_CHARGE_PARAMETER, E.WAIT_POWER_DELIVERY})),  # Stop right after Start is allowed
    E.WAIT_CHARGING_STATUS: ("ChargingStatusRes", frozenset({
        E.WAIT_CHARGING_STATUS, E.WAIT_METERING_RECEIPT, E.WAIT_POWER_DELIVERY})),
    E.WAIT_CURRENT_DEMAND: ("CurrentDemandRes", frozenset({
        E.WAIT_CURRENT_DEMAND, E.WAIT_METERING_RECEIPT, E.WAIT_POWER_DELIVERY})),
    E.WAIT_METERING_RECEIPT: ("MeteringReceiptRes", frozenset({
        E.WAIT_CHARGING_STATUS, E.WAIT_CURRENT_DEMAND, E.WAIT_POWER_DELIVERY})),
    E.WAIT_WELDING: ("WeldingDetectionRes", frozenset({E.WAIT_WELDING, E.WAIT_SESSION_STOP})),
    E.WAIT_SESSION_STOP: ("SessionStopRes", frozenset({ENDED})),
})

_STOP = "SessionStopReq"
#: state -> {request body: allowed next states}.  SessionStopReq ends the session from any state
#: after SessionSetup (the EV may abort, e.g. when it rejects an installed contract).
CHARGER_TRANSITIONS: fsm.ChargerTable = MappingProxyType({
    CoreState.WAIT_SAP: {"supportedAppProtocolReq": frozenset({C.WAIT_SESSION_SETUP})},
    C.WAIT_SESSION_SETUP: {"SessionSetupReq": frozenset({C.WAIT_SERVICE_DISCOVERY})},
    C.WAIT_SERVICE_DISCOVERY: {"ServiceDiscoveryReq": frozenset({C.WAIT_SERVICE_SELECTION}),
                               _STOP: frozenset({ENDED})},
    C.WAIT_SERVICE_SELECTION: {"ServiceDetailReq": frozenset({C.WAIT_SERVICE_SELECTION}),
                               "PaymentServiceSelectionReq": frozenset({C.WAIT_CONTRACT, C.WAIT_AUTHORIZATION,
                                                                        C.RESUMED_CONTRACT}),
                               _STOP: frozenset({ENDED})},
    C.WAIT_CONTRACT: {"CertificateInstallationReq": frozenset({C.WAIT_BACKEND_CERTIFICATE}),
                      "CertificateUpdateReq": frozenset({C.WAIT_BACKEND_CERTIFICATE}),
                      "PaymentDetailsReq": frozenset({C.WAIT_AUTHORIZATION}),
                      _STOP: frozenset({ENDED})},
    # A resumed Contract session [V2G2-741]: the full form repeats PaymentDetails and a signed
    # AuthorizationReq over a fresh GenChallenge (what the iso15118 package's EVCC sends and its SECC
    # requires); an EV that skips to AuthorizationReq is accepted too (the paused authorisation stands).
    C.RESUMED_CONTRACT: {"PaymentDetailsReq": frozenset({C.WAIT_AUTHORIZATION}),
                         "CertificateInstallationReq": frozenset({C.WAIT_BACKEND_CERTIFICATE}),
                         "CertificateUpdateReq": frozenset({C.WAIT_BACKEND_CERTIFICATE}),
                         "AuthorizationReq": frozenset({C.WAIT_AUTHORIZATION, C.WAIT_CHARGE_PARAMETER}),
                         _STOP: frozenset({ENDED})},
    C.WAIT_BACKEND_CERTIFICATE: {},
    C.WAIT_PAYMENT_DETAILS: {"PaymentDetailsReq": frozenset({C.WAIT_AUTHORIZATION}),
                             _STOP: frozenset({ENDED})},
    C.WAIT_AUTHORIZATION: {"AuthorizationReq": frozenset({C.WAIT_AUTHORIZATION, C.WAIT_CHARGE_PARAMETER}),
                           _STOP: frozenset({ENDED})},
    C.WAIT_CHARGE_PARAMETER: {"ChargeParameterDiscoveryReq": frozenset({
        C.WAIT_CHARGE_PARAMETER, C.WAIT_CABLE_CHECK, C.WAIT_POWER_DELIVERY}), _STOP: frozenset({ENDED})},
    C.WAIT_CABLE_CHECK: {"CableCheckReq": frozenset({C.WAIT_CABLE_CHECK, C.WAIT_PRECHARGE}),
                         _STOP: frozenset({ENDED})},
    C.WAIT_PRECHARGE: {"PreChargeReq": frozenset({C.WAIT_PRECHARGE}),
                       "PowerDeliveryReq": frozenset({C.CHARGING_DC, C.STOPPED_DC}),
                       _STOP: frozenset({ENDED})},
    C.WAIT_POWER_DELIVERY: {"PowerDeliveryReq": frozenset({C.CHARGING_AC, C.CHARGING_DC, C.STOPPED_AC,
                                                           C.STOPPED_DC}),
                            _STOP: frozenset({ENDED})},
    C.CHARGING_AC: {"ChargingStatusReq": frozenset({C.CHARGING_AC}),
                    "MeteringReceiptReq": frozenset({C.CHARGING_AC}),
                    "PowerDeliveryReq": frozenset({C.STOPPED_AC, C.WAIT_CHARGE_PARAMETER, C.CHARGING_AC})},
    C.CHARGING_DC: {"CurrentDemandReq": frozenset({C.CHARGING_DC}),
                    "MeteringReceiptReq": frozenset({C.CHARGING_DC}),
                    "PowerDeliveryReq": frozenset({C.STOPPED_DC, C.WAIT_CHARGE_PARAMETER, C.CHARGING_DC})},
    C.STOPPED_AC: {_STOP: frozenset({ENDED})},
    C.STOPPED_DC: {"WeldingDetectionReq": frozenset({C.STOPPED_DC}), _STOP: frozenset({ENDED})},
    ENDED: {},
})

#: Every ISO-2 request body and its response body (used to answer out-of-sequence requests).
REQUEST_TO_RESPONSE: Mapping[str, str] = MappingProxyType({
    name: name[:-3] + "Res" for name in (
        "SessionSetupReq", "ServiceDiscoveryReq", "ServiceDetailReq", "PaymentServiceSelectionReq",
        "PaymentDetailsReq", "AuthorizationReq", "ChargeParameterDiscoveryReq", "PowerDeliveryReq",
        "MeteringReceiptReq", "SessionStopReq", "CertificateUpdateReq", "CertificateInstallationReq",
        "ChargingStatusReq", "CableCheckReq", "PreChargeReq", "CurrentDemandReq", "WeldingDetectionReq")
})


# Which ResponseCode each response may carry.  The standard's text is not at hand here; the sets are
# the codes ISO 15118-2 assigns to each message as the public stacks quote them: the iso15118
# package (SECC states, "Table 112" for AuthorizationRes and PaymentDetailsRes), RISE-V2G (SECC
# states: "FAILED_CertChainError is not defined for CertificateInstallationRes") and EVerest
# EvseV2G (iso_server.cpp), with the requirement numbers those stacks cite.
_OK = frozenset({"OK"})
#: FAILED for any other problem; FAILED_SequenceError [V2G2-459, V2G2-538]; FAILED_UnknownSession [V2G2-460]
_ANY = frozenset({"FAILED", "FAILED_SequenceError", "FAILED_UnknownSession"})
_CONTRACT = frozenset({"FAILED_CertificateExpired",  # [V2G2-474], not yet valid too [V2G2-824]
                       "FAILED_CertificateRevoked", "FAILED_NoCertificateAvailable", "FAILED_SignatureError"})
RESPONSE_CODES: Mapping[str, frozenset[str]] = MappingProxyType({
    "SessionSetupRes": frozenset({"OK_NewSessionEstablished", "OK_OldSessionJoined", "FAILED",
                                  "FAILED_SequenceError"}),
    "ServiceDiscoveryRes": _OK | _ANY,
    "ServiceDetailRes": _OK | _ANY | {"FAILED_ServiceIDInvalid"},  # [V2G2-464]
    "PaymentServiceSelectionRes": _OK | _ANY | {"FAILED_PaymentSelectionInvalid",  # [V2G2-465]
                                                "FAILED_ServiceSelectionInvalid",  # [V2G2-467]
                                                "FAILED_NoChargeServiceSelected"},  # [V2G2-804]
    # no FAILED_CertChainError here (RISE-V2G): an OEM certificate problem is plain FAILED
    "CertificateInstallationRes": _OK | _ANY | _CONTRACT | {"FAILED_ContractCanceled"},
    "CertificateUpdateRes": _OK | _ANY | _CONTRACT | {"FAILED_CertChainError", "FAILED_ContractCanceled"},
    "PaymentDetailsRes": _OK | _ANY | _CONTRACT | {"OK_CertificateExpiresSoon", "FAILED_CertChainError",
                                                   "FAILED_ContractCanceled",
                                                   "FAILED_CertificateNotAllowedAtThisEVSE"},
    # only these: a backend's revoked / cancelled / unknown contract is plain FAILED here
    "AuthorizationRes": _OK | _ANY | {"FAILED_SignatureError", "FAILED_ChallengeInvalid"},  # [V2G2-475]
    "ChargeParameterDiscoveryRes": _OK | _ANY | {"FAILED_WrongEnergyTransferMode",  # [V2G2-476]
                                                 "FAILED_WrongChargeParameter"},  # [V2G2-477]
    "PowerDeliveryRes": _OK | _ANY | {"FAILED_ChargingProfileInvalid",  # [V2G2-478]
                                      "FAILED_TariffSelectionInvalid",  # [V2G2-479]
                                      "FAILED_PowerDeliveryNotApplied",  # [V2G2-480]
                                      "FAILED_ContactorError"},
    "MeteringReceiptRes": _OK | _ANY | {"FAILED_MeteringSignatureNotValid"},
    "ChargingStatusRes": _OK | _ANY,
    "CableCheckRes": _OK | _ANY,
    "PreChargeRes": _OK | _ANY,
    "CurrentDemandRes": _OK | _ANY,
    "WeldingDetectionRes": _OK | _ANY,
    "SessionStopRes": _OK | _ANY,
})


def allowed_response_code(response: str, code: str) -> str:
    """``code`` if ``response`` may carry it (:data:`RESPONSE_CODES`), else plain ``FAILED``."""
    return code if code in RESPONSE_CODES.get(response, frozenset({code})) else "FAILED"


def check_ev_transition(state: Any, new: Any) -> None:
    """Raise AssertionError if the EV table does not allow ``state -> new`` (ENDED always is, and
    WAIT_SESSION_STOP from every ISO-2 state)."""
    fsm.check_ev_transition(EV_TRANSITIONS, state, new, stop_state=EVState.WAIT_SESSION_STOP)


def check_charger_transition(state: Any, request: str, new: Any) -> None:
    """Raise AssertionError if the charger table does not allow ``state --request--> new``."""
    fsm.check_charger_transition(CHARGER_TRANSITIONS, state, request, new)
