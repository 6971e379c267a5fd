"""ISO 15118-20 sessions: EV and charger handlers, transition tables, messages, timing, the PnC seam.

Two message sets, one engine: :data:`SPEC_DC` (``urn:iso:std:iso:15118:-20:DC``) and
:data:`SPEC_AC` (``urn:iso:std:iso:15118:-20:AC``), version 1.0, TLS required, both members of the
protocol family ``"iso20"`` (configuring ``"iso20"`` selects them).  The EV offers the one of its
energy mode (``EVConfig.energy_mode``: an AC mode offers :AC, anything else :DC, as the ``iso15118``
package's EVCC does); the charger accepts those of its ``ChargerConfig.energy_modes``.  The messages
span three schema sets (CommonMessages, AC, DC), each with its own V2GTP payload type: the specs
route and decode by it.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..core.codec import NS_ISO20_CM
from ..core.protocol import ProtocolSpec, TLSPolicy
from ..core.v2gtp import PayloadType
from . import messages
from .charger import ChargerHandler
from .ev import EVHandler
from .pnc import ChargerPnC, ContractIdentity, EVPnC
from .states import CHARGER_TABLES, EV_TABLES, REQUEST_TO_RESPONSE, ChargerState, EVState
from .timing import DEFAULT_TIMING, TimingProfile

__all__ = ["SPEC_AC", "SPEC_DC", "SPECS", "EVHandler", "ChargerHandler", "EVState", "ChargerState", "TimingProfile",
           "DEFAULT_TIMING", "ChargerPnC", "EVPnC", "ContractIdentity"]

_AC_MODES = frozenset({"AC_single_phase_core", "AC_three_phase_core"})


def _fits(service: str) -> Any:
    def fits(config: Any) -> bool:
        modes = [config.energy_mode] if hasattr(config, "energy_mode") else list(getattr(config, "energy_modes", ()))
        return any((m in _AC_MODES) == (service == "AC") for m in modes)
    fits.__doc__ = f"Whether a side's energy mode(s) include an {service} one."
    return fits


def _spec(service: str) -> ProtocolSpec:
    ns = messages.NAMESPACE_OF_SERVICE[service]
    ptype = PayloadType.AC_MAINSTREAM if service == "AC" else PayloadType.DC_MAINSTREAM
    return ProtocolSpec(
        id=f"iso20-{service.lower()}",
        name=f"ISO 15118-20 {service}",
        namespace=ns,
        version=(1, 0),
        tls=TLSPolicy.REQUIRED,
        ev_table=EV_TABLES[service],
        charger_table=CHARGER_TABLES[service],
        request_to_response=REQUEST_TO_RESPONSE,
        session_setup=("SessionSetupReq", "SessionSetupRes"),
        stop_request="SessionStopReq",
        ev_stop_state=EVState.WAIT_SESSION_STOP,
        charger_first_state=ChargerState.WAIT_SESSION_SETUP,
        unwrap=messages.unwrap,
        wrap=messages.wrap,
        session_id_of=messages.session_id_of,
        ev_handler=EVHandler,
        charger_handler=ChargerHandler,
        payload_types=frozenset({PayloadType.MAINSTREAM, ptype}),
        decode_namespaces=MappingProxyType({PayloadType.EXI: NS_ISO20_CM, PayloadType.MAINSTREAM: NS_ISO20_CM,
                                            ptype: ns}),
        route=messages.route,
        family="iso20",
        fits=_fits(service),
        timing=DEFAULT_TIMING,
        plug_and_charge=True,
    )


#: ISO 15118-20 with the DC (and DC_BPT) message set.
SPEC_DC = _spec("DC")
#: ISO 15118-20 with the AC (and AC_BPT) message set.
SPEC_AC = _spec("AC")
#: Both, DC first.
SPECS = (SPEC_DC, SPEC_AC)
