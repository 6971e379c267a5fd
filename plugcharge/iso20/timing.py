"""ISO 15118-20 timing parameters as data (clause 8.8, Table 215 of ISO 15118-20:2022).

As in ISO 15118-2, a *timeout* obliges a party to stop the communication session when it expires
and a *performance time* says how fast the other party ought to be.  All values are in seconds.
Sessions read them through :class:`TimingProfile` (tests scale it down), never as literals.

Where the numbers come from.  The standard's text was not at hand; every value below is the one
two public stacks agree on (the ``iso15118`` package's ``iso15118_20/timeouts.py`` and EVerest
libiso15118's ``d20/timeout.hpp``), and the requirement numbers are those quoted from the standard
in public material:

* ``V2G_EVCC_Msg_Timeout`` per request: 2 s, 5 s for CertificateInstallation and ServiceDetail,
  0.5 s for the AC and DC charge loops; the EVCC stops the session when it expires [V2G20-1966].
* ``V2G_SECC_Sequence_Timeout`` 60 s: the SECC's wait for the next request, re-armed with every
  response (Table 215, e.g. [V2G20-1643], [V2G20-2007]).
* ``V2G_EVCC_Ongoing_Timeout`` 60 s, ``V2G_SECC_Ongoing_Performance_Time`` 55 s (EVSEProcessing =
  Ongoing loops: ScheduleExchange, DC_CableCheck; [V2G20-1582] has the EVCC repeat the request);
  identification at the charger (EIM) may take up to 180 s (EVerest's ``TIMEOUT_EIM_ONGOING``,
  the EIM ongoing timer of the standard's Authorization loop).
* ``V2G_EVCC_CableCheck_Timeout`` 40 s, ``V2G_EVCC_PreCharge_Timeout`` 10 s (-2 has 7 s),
  ``V2G_EVCC_CommunicationSetup_Timeout`` 20 s.
* ``V2G_SECC_Msg_Performance_Time``: 1.5 s for a 2 s message, 4.5 s for a 5 s one and 0.25 s in
  the charge loops: the same margin below the EVCC's timeout as ISO 15118-2 Table 109 (the -20
  figures themselves are not verified against the standard's text).
* After SessionStopRes the SECC keeps the TCP connection open at least 5 s [V2G20-1633].
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["EVCC_MSG_TIMEOUT", "SECC_MSG_PERFORMANCE_TIME", "PHASES", "TimingProfile", "DEFAULT_TIMING"]

_LONG = ("CertificateInstallationReq", "ServiceDetailReq")
_LOOP = ("AC_ChargeLoopReq", "DC_ChargeLoopReq")
_REQUESTS = (
    "supportedAppProtocolReq", "SessionSetupReq", "AuthorizationSetupReq", "AuthorizationReq",
    "CertificateInstallationReq", "ServiceDiscoveryReq", "ServiceDetailReq", "ServiceSelectionReq",
    "AC_ChargeParameterDiscoveryReq", "DC_ChargeParameterDiscoveryReq", "ScheduleExchangeReq",
    "DC_CableCheckReq", "DC_PreChargeReq", "PowerDeliveryReq", "AC_ChargeLoopReq", "DC_ChargeLoopReq",
    "MeteringConfirmationReq", "DC_WeldingDetectionReq", "SessionStopReq",
)

#: Table 215, ``V2G_EVCC_Msg_Timeout`` per request [V2G20-1966].
EVCC_MSG_TIMEOUT: Mapping[str, float] = MappingProxyType({
    name: 5.0 if name in _LONG else 0.5 if name in _LOOP else 2.0 for name in _REQUESTS})

#: ``V2G_SECC_Msg_Performance_Time`` per response (how fast the SECC should answer).
SECC_MSG_PERFORMANCE_TIME: Mapping[str, float] = MappingProxyType({
    name[:-3] + "Res": 4.5 if name in _LONG else 0.25 if name in _LOOP else 1.5 for name in _REQUESTS})

#: Phase timers: name -> (seconds, source).
PHASES: Mapping[str, tuple[float, str]] = MappingProxyType({
    "V2G_EVCC_CommunicationSetup_Timeout": (20.0, "Table 215"),
    "V2G_SECC_Sequence_Timeout": (60.0, "Table 215, [V2G20-1643]"),
    "V2G_EVCC_Ongoing_Timeout": (60.0, "Table 215, [V2G20-1582]"),
    "V2G_SECC_Ongoing_Performance_Time": (55.0, "Table 215"),
    "V2G_EVCC_EIM_Ongoing_Timeout": (180.0, "EIM authorization loop (EVerest TIMEOUT_EIM_ONGOING)"),
    "V2G_SECC_EIM_Ongoing_Performance_Time": (175.0, "5 s below the EVCC's, as the 55/60 s pair"),
    "V2G_EVCC_CableCheck_Timeout": (40.0, "Table 215"),
    "V2G_EVCC_PreCharge_Timeout": (10.0, "Table 215"),
    "V2G_SECC_SessionStop_Close_Delay": (5.0, "[V2G20-1633]"),
})


@dataclasses.dataclass(frozen=True, slots=True)
class TimingProfile:
    """The -20 timer values one session uses.  ``scale`` multiplies every value (tests use < 1).

    It answers the session core's questions (:class:`~plugcharge.core.timers.HandshakeTiming`) with
    the -20 tables, so a session created with it runs the handshake with -20 timers too."""

    msg_timeout: Mapping[str, float] = dataclasses.field(default_factory=lambda: EVCC_MSG_TIMEOUT)
    performance: Mapping[str, float] = dataclasses.field(default_factory=lambda: SECC_MSG_PERFORMANCE_TIME)
    communication_setup: float = PHASES["V2G_EVCC_CommunicationSetup_Timeout"][0]
    secc_sequence: float = PHASES["V2G_SECC_Sequence_Timeout"][0]
    ongoing: float = PHASES["V2G_EVCC_Ongoing_Timeout"][0]
    secc_ongoing: float = PHASES["V2G_SECC_Ongoing_Performance_Time"][0]
    eim_ongoing: float = PHASES["V2G_EVCC_EIM_Ongoing_Timeout"][0]
    secc_eim_ongoing: float = PHASES["V2G_SECC_EIM_Ongoing_Performance_Time"][0]
    cable_check: float = PHASES["V2G_EVCC_CableCheck_Timeout"][0]
    pre_charge: float = PHASES["V2G_EVCC_PreCharge_Timeout"][0]
    #: How long a charger waits for its backend before answering FAILED (below the EVCC's 5 s
    #: CertificateInstallation timeout; not from the standard).
    backend_timeout: float = SECC_MSG_PERFORMANCE_TIME["CertificateInstallationRes"]
    scale: float = 1.0

    def message_timeout(self, request: str) -> float:
        """``V2G_EVCC_Msg_Timeout`` for ``request`` (a body element name), scaled."""
        return self.msg_timeout.get(request, 2.0) * self.scale

    def sequence_timeout(self) -> float:
        """``V2G_SECC_Sequence_Timeout``, scaled."""
        return self.secc_sequence * self.scale

    def get(self, name: str) -> float:
        """A named phase timer (attribute name of this class), scaled."""
        return float(getattr(self, name)) * self.scale


DEFAULT_TIMING = TimingProfile()

