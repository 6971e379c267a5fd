"""DIN SPEC 70121 timing parameters as data (clause 9.6: Table 75, message timeouts; Table 77, the
timers that span several messages).

All values are in seconds.  Sessions read them through :class:`TimingProfile` (``scale`` shrinks
them for tests) instead of hard-coding numbers.  The values are the ones the public DIN stacks take
from the standard (the ``iso15118`` package's ``din_spec/timeouts.py``, Tables 75 and 77; EVerest's
EvseV2G); the requirement ids are those they quote, as the standard text was not at hand: where none
is known, the table is cited.

What differs from ISO 15118-2: PowerDeliveryReq has 2 s (ISO-2: 5 s); there is no Ongoing timer of
the EVCC: ContractAuthentication and ChargeParameterDiscovery loop until EVSEProcessing=Finished,
bounded (with CableCheck and PreCharge) by ``V2G_EVCC_ReadyToCharge_Timeout``, from the start of the
session to PowerDeliveryReq with ReadyToChargeState=TRUE.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Mapping

from ..core.timers import ScaledTiming

__all__ = ["EVCC_MSG_TIMEOUT", "TIMERS", "TimingProfile", "DEFAULT_TIMING"]

#: Table 75, ``V2G_EVCC_Msg_Timeout`` per request: the EVCC stops the session when the response has
#: not arrived in time.  The SupportedAppProtocol handshake has the same 2 s.
EVCC_MSG_TIMEOUT: Mapping[str, float] = MappingProxyType({
    "supportedAppProtocolReq": 2.0,
    "SessionSetupReq": 2.0,
    "ServiceDiscoveryReq": 2.0,
    "ServicePaymentSelectionReq": 2.0,
    "ContractAuthenticationReq": 2.0,
    "ChargeParameterDiscoveryReq": 2.0,
    "PowerDeliveryReq": 2.0,
    "CableCheckReq": 2.0,
    "PreChargeReq": 2.0,
    "CurrentDemandReq": 0.25,
    "WeldingDetectionReq": 2.0,
    "SessionStopReq": 2.0,
})

#: Timers spanning several messages (Table 77, the sequence timer of 9.6), with their reference.
TIMERS: Mapping[str, tuple[float, str]] = MappingProxyType({
    # From plug-in (here: StartSession) until SessionSetupRes is received.
    "V2G_EVCC_CommunicationSetup_Timeout": (20.0, "Table 77"),
    # The SECC stops the session when no request arrives within this time of its last response.
    "V2G_SECC_Sequence_Timeout": (60.0, "[V2G-DC-432]"),
    # From the start of the session until PowerDeliveryReq with ReadyToChargeState=TRUE.
    "V2G_EVCC_ReadyToCharge_Timeout": (150.0, "Table 77"),
    # CableCheckReq loop (EVSEProcessing=Ongoing) until Finished.
    "V2G_EVCC_CableCheck_Timeout": (40.0, "Table 77"),
    # PreChargeReq loop until the EVSE's present voltage matches the EV's target.
    "V2G_EVCC_PreCharge_Timeout": (7.0, "Table 77"),
})


@dataclasses.dataclass(frozen=True, slots=True)
class TimingProfile(ScaledTiming):
    """The DIN timer values one session uses.  ``scale`` multiplies every value (tests use < 1);
    ``message_timeout``, ``sequence_timeout`` and ``get`` come from
    :class:`~plugcharge.core.timers.ScaledTiming`."""

    msg_timeout: Mapping[str, float] = dataclasses.field(default_factory=lambda: EVCC_MSG_TIMEOUT)
    communication_setup: float = TIMERS["V2G_EVCC_CommunicationSetup_Timeout"][0]
    secc_sequence: float = TIMERS["V2G_SECC_Sequence_Timeout"][0]
    ready_to_charge: float = TIMERS["V2G_EVCC_ReadyToCharge_Timeout"][0]
    cable_check: float = TIMERS["V2G_EVCC_CableCheck_Timeout"][0]
    pre_charge: float = TIMERS["V2G_EVCC_PreCharge_Timeout"][0]
    #: How long the charger answers ContractAuthenticationReq with EVSEProcessing=Ongoing while its
    #: backend decides, before it answers FAILED (not from the standard: below the EV's
    #: ReadyToCharge timeout, so the EV learns the outcome).
    secc_authorization: float = 140.0
    scale: float = 1.0


DEFAULT_TIMING = TimingProfile()
