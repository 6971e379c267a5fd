"""ISO 15118-2 sessions: EV and charger handlers, transition tables, message builders, timing.

:data:`SPEC` is what the session core needs to negotiate and run ISO 15118-2 (namespace
``urn:iso:15118:2:2013:MsgDef``, version 2.0, TLS optional: Contract payment only over TLS).
"""
from __future__ import annotations

from ..core.codec import NS_ISO2, body_of, session_id_of, v2g_message
from ..core.protocol import ProtocolSpec, TLSPolicy
from .charger import ChargerHandler
from .ev import EVHandler
from .states import CHARGER_TRANSITIONS, EV_TRANSITIONS, REQUEST_TO_RESPONSE, RESPONSE_CODES, ChargerState, EVState
from .timing import DEFAULT_TIMING, TimingProfile

__all__ = ["SPEC", "EVHandler", "ChargerHandler", "EVState", "ChargerState", "TimingProfile", "DEFAULT_TIMING"]

SPEC = ProtocolSpec(
    id="iso2",
    name="ISO 15118-2",
    namespace=NS_ISO2,
    version=(2, 0),
    tls=TLSPolicy.OPTIONAL,
    ev_table=EV_TRANSITIONS,
    charger_table=CHARGER_TRANSITIONS,
    request_to_response=REQUEST_TO_RESPONSE,
    response_codes=RESPONSE_CODES,
    session_setup=("SessionSetupReq", "SessionSetupRes"),
    stop_request="SessionStopReq",
    ev_stop_state=EVState.WAIT_SESSION_STOP,
    charger_first_state=ChargerState.WAIT_SESSION_SETUP,
    unwrap=body_of,
    wrap=v2g_message,
    session_id_of=session_id_of,
    ev_handler=EVHandler,
    charger_handler=ChargerHandler,
    timing=DEFAULT_TIMING,
    plug_and_charge=True,
)
