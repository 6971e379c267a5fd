"""DIN SPEC 70121 sessions: EV and charger handlers, transition tables, message builders, timing.

:data:`SPEC` is what the session core needs to negotiate and run DIN (namespace
``urn:din:70121:2012:MsgDef``, version 2.0): DC charging with ExternalPayment over plain TCP (DIN
forbids TLS [V2G-DC-618]: it is never offered or agreed over a TLS connection), no Plug & Charge.
"""
from __future__ import annotations

from types import MappingProxyType

from ..core.codec import NS_DIN, body_of, session_id_of, v2g_message
from ..core.protocol import Fault, ProtocolSpec, TLSPolicy
from .charger import ChargerHandler
from .ev import NO_PLUG_AND_CHARGE, EVHandler
from .states import CHARGER_TRANSITIONS, EV_TRANSITIONS, REQUEST_TO_RESPONSE, ChargerState, EVState
from .timing import DEFAULT_TIMING, TimingProfile

__all__ = ["SPEC", "EVHandler", "ChargerHandler", "EVState", "ChargerState", "TimingProfile", "DEFAULT_TIMING",
           "NO_PLUG_AND_CHARGE"]

SPEC = ProtocolSpec(
    id="din",
    name="DIN SPEC 70121",
    namespace=NS_DIN,
    version=(2, 0),
    tls=TLSPolicy.FORBIDDEN,
    ev_table=EV_TRANSITIONS,
    charger_table=CHARGER_TRANSITIONS,
    request_to_response=REQUEST_TO_RESPONSE,
    session_setup=("SessionSetupReq", "SessionSetupRes"),
    stop_request="SessionStopReq",
    ev_stop_state=EVState.WAIT_SESSION_STOP,
    charger_first_state=ChargerState.WAIT_SESSION_SETUP,
    unwrap=body_of,
    wrap=v2g_message,
    session_id_of=session_id_of,
    ev_handler=EVHandler,
    charger_handler=ChargerHandler,
    # DIN's responseCodeType literals for the core's faults
    fault_codes=MappingProxyType({Fault.SEQUENCE: "FAILED_SequenceError", Fault.UNKNOWN_SESSION: "FAILED_UnknownSession",
                                  Fault.FAILED: "FAILED", Fault.SIGNATURE: "FAILED_SignatureError"}),
    timing=DEFAULT_TIMING,
    plug_and_charge=False,
)
