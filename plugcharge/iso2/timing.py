"""ISO 15118-2 timing parameters as data (clause 8.7, Tables 109 and 111).

A *timeout* obliges the party to stop the communication session when it expires; a *performance
time* is how fast the other party ought to be and is informational (8.7.1).  All values are in
seconds.  Sessions read these tables (through :class:`TimingProfile`, which tests may scale down)
instead of hard-coding numbers.

Requirement references (as quoted by public implementations; the standard text was not at hand):
message timer [V2G2-436..438], sequence timer [V2G2-439..445], communication setup
[V2G2-446..449, V2G2-714..716], EVSEProcessing=Ongoing [V2G2-710..713], CableCheck and PreCharge
[V2G2-700..707].
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Mapping

from ..core.timers import ScaledTiming

__all__ = [
    "EVCC_MSG_TIMEOUT",
    "SECC_MSG_PERFORMANCE_TIME",
    "SEQUENCE",
    "TimingProfile",
    "DEFAULT_TIMING",
]

#: Table 109, ``V2G_EVCC_Msg_Timeout`` per request: the EVCC stops the session when the response
#: has not arrived in time [V2G2-436..438].  The AppProtocol handshake has the same 2 s.
EVCC_MSG_TIMEOUT: Mapping[str, float] = MappingProxyType({
    "supportedAppProtocolReq": 2.0,
    "SessionSetupReq": 2.0,
    "ServiceDiscoveryReq": 2.0,
    "ServiceDetailReq": 5.0,
    "PaymentServiceSelectionReq": 2.0,
    "PaymentDetailsReq": 5.0,
    "AuthorizationReq": 2.0,
    "ChargeParameterDiscoveryReq": 2.0,
    "ChargingStatusReq": 2.0,
    "MeteringReceiptReq": 2.0,
    "PowerDeliveryReq": 5.0,
    "CableCheckReq": 2.0,
    "PreChargeReq": 2.0,
    "CurrentDemandReq": 0.25,
    "WeldingDetectionReq": 2.0,
    "SessionStopReq": 2.0,
    "CertificateInstallationReq": 5.0,
    "CertificateUpdateReq": 5.0,
})

#: Table 109, ``V2G_SECC_Msg_Performance_Time`` per response (how fast the SECC should answer).
SECC_MSG_PERFORMANCE_TIME: Mapping[str, float] = MappingProxyType({
    "supportedAppProtocolRes": 1.5,
    "SessionSetupRes": 1.5,
    "ServiceDiscoveryRes": 1.5,
    "ServiceDetailRes": 4.5,
    "PaymentServiceSelectionRes": 1.5,
    "PaymentDetailsRes": 4.5,
    "AuthorizationRes": 1.5,
    "ChargeParameterDiscoveryRes": 1.5,
    "ChargingStatusRes": 1.5,
    "MeteringReceiptRes": 1.5,
    "PowerDeliveryRes": 4.5,
    "CableCheckRes": 1.5,
    "PreChargeRes": 1.5,
    "CurrentDemandRes": 0.025,
    "WeldingDetectionRes": 1.5,
    "SessionStopRes": 1.5,
    "CertificateInstallationRes": 4.5,
    "CertificateUpdateRes": 4.5,
})

#: Sequence, ongoing and phase timers (Tables 109 and 111), with the requirement they belong to.
SEQUENCE: Mapping[str, tuple[float, str]] = MappingProxyType({
    # The EVCC must have sent SessionSetupReq... within this time after the TCP/TLS connection
    # (Table 111) [V2G2-714..716].
    "V2G_EVCC_CommunicationSetup_Timeout": (20.0, "[V2G2-714]"),
    "V2G_SECC_CommunicationSetup_Performance_Time": (18.0, "[V2G2-446]"),
    # The SECC stops the session when no request arrives within this time of its last
    # response [V2G2-443].
    "V2G_SECC_Sequence_Timeout": (60.0, "[V2G2-443]"),
    "V2G_EVCC_Sequence_Performance_Time": (40.0, "[V2G2-441]"),
    # EVSEProcessing=Ongoing loops (Authorization, ChargeParameterDiscovery) [V2G2-710..713].
    "V2G_EVCC_Ongoing_Timeout": (60.0, "[V2G2-711]"),
    "V2G_SECC_Ongoing_Performance_Time": (55.0, "[V2G2-713]"),
    # DC: CableCheck and PreCharge phases (Table 111) [V2G2-700..707].
    "V2G_EVCC_CableCheck_Timeout": (40.0, "[V2G2-701]"),
    "V2G_SECC_CableCheck_Performance_Time": (38.0, "[V2G2-700]"),
    "V2G_EVCC_PreCharge_Timeout": (7.0, "[V2G2-705]"),
    "V2G_SECC_PreCharge_Performance_Time": (5.0, "[V2G2-704]"),
})


@dataclasses.dataclass(frozen=True, slots=True)
class TimingProfile(ScaledTiming):
    """The timer values one session uses.  ``scale`` multiplies every value (tests use < 1);
    ``message_timeout``, ``sequence_timeout`` and ``get`` come from
    :class:`~plugcharge.core.timers.ScaledTiming`."""

    msg_timeout: Mapping[str, float] = dataclasses.field(default_factory=lambda: EVCC_MSG_TIMEOUT)
    performance: Mapping[str, float] = dataclasses.field(default_factory=lambda: SECC_MSG_PERFORMANCE_TIME)
    communication_setup: float = SEQUENCE["V2G_EVCC_CommunicationSetup_Timeout"][0]
    secc_sequence: float = SEQUENCE["V2G_SECC_Sequence_Timeout"][0]
    ongoing: float = SEQUENCE["V2G_EVCC_Ongoing_Timeout"][0]
    secc_ongoing: float = SEQUENCE["V2G_SECC_Ongoing_Performance_Time"][0]
    cable_check: float = SEQUENCE["V2G_EVCC_CableCheck_Timeout"][0]
    pre_charge: float = SEQUENCE["V2G_EVCC_PreCharge_Timeout"][0]
    #: How long a charger waits for its backend (contract installation) before answering FAILED;
    #: below the EVCC's 5 s message timeout so that the EV gets an answer (not from the standard).
    backend_timeout: float = SECC_MSG_PERFORMANCE_TIME["CertificateInstallationRes"]
    scale: float = 1.0


DEFAULT_TIMING = TimingProfile()
