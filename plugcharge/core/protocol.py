"""What a protocol package tells the session core about itself (:class:`ProtocolSpec`), and the registry.

The core runs the SupportedAppProtocol handshake, then for every message of the agreed protocol:
decode (``namespace``) → unwrap the envelope (``unwrap``) → SessionID check (``session_id_of``,
except for ``session_setup``) → table check (``ev_table`` / ``charger_table``) → the handler of the
agreed protocol (built by ``ev_handler`` / ``charger_handler``) → transition check.  On a fault it
answers the request's response type (``request_to_response``, the handler's ``failure_body``) with
the protocol's wire code for the neutral :class:`Fault` (``fault_codes``) and ends the session.

A protocol is *implemented* for a role when it has that role's handler factory; only implemented
protocols are offered (EV) or agreed (charger).  DIN SPEC 70121 forbids TLS, ISO 15118-20 requires
it, ISO 15118-2 runs either way (``tls``): a session that knows its transport's security offers or
accepts only the protocols that fit.  Timer values (``timing``) and whether the protocol has Plug &
Charge at all (``plug_and_charge``) are data of the protocol too.
"""
from __future__ import annotations

import dataclasses
import enum
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from .fsm import ChargerTable, EVTable
from .v2gtp import PayloadType

__all__ = [
    "Fault", "TLSPolicy", "DEFAULT_FAULT_CODES", "KNOWN_PROTOCOLS", "DEFAULT_PROTOCOLS", "ProtocolSpec",
    "ProtocolRegistry",
]


class Fault(str, enum.Enum):
    """Protocol-neutral faults the session core detects; each protocol maps them to a wire code."""

    #: a message the current state does not allow (or a response while none is awaited)
    SEQUENCE = "sequence"
    #: a SessionID other than the session's
    UNKNOWN_SESSION = "unknown_session"
    #: undecodable or malformed input, anything without a code of its own
    FAILED = "failed"
    #: a signature did not verify
    SIGNATURE = "signature"


#: The codes DIN SPEC 70121, ISO 15118-2 and -20 all use; also what the core reports before a
#: protocol is agreed.
DEFAULT_FAULT_CODES: Mapping[Fault, str] = MappingProxyType({
    Fault.SEQUENCE: "FAILED_SequenceError", Fault.UNKNOWN_SESSION: "FAILED_UnknownSession",
    Fault.FAILED: "FAILED", Fault.SIGNATURE: "FAILED_SignatureError",
})


class TLSPolicy(str, enum.Enum):
    """Whether a protocol needs, permits or forbids TLS."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    FORBIDDEN = "forbidden"


#: Protocol ids the package knows of (implemented or planned), with their names.
KNOWN_PROTOCOLS: Mapping[str, str] = MappingProxyType({
    "iso20": "ISO 15118-20", "iso2": "ISO 15118-2", "din": "DIN SPEC 70121"})
#: The EV's and the charger's default protocol order (first = preferred).
DEFAULT_PROTOCOLS: tuple[str, ...] = ("iso20", "iso2", "din")


@dataclasses.dataclass(frozen=True)
class ProtocolSpec:
    """One protocol as data for the session core (see the module docstring)."""

    #: short id (``"iso2"``), used in configurations
    id: str
    #: what the driver and the operator read (``"ISO 15118-2"``)
    name: str
    #: the message set's namespace, as offered in supportedAppProtocolReq
    namespace: str
    #: (major, minor) version this package implements
    version: tuple[int, int]
    tls: TLSPolicy
    ev_table: EVTable
    charger_table: ChargerTable
    #: every request body and its response body (failure responses answer the request's type)
    request_to_response: Mapping[str, str]
    #: (request, response) that carry no SessionID yet
    session_setup: tuple[str, str]
    #: the EV's request to end the session (always allowed to the EV once set up)
    stop_request: str
    #: the EV state awaiting the stop response
    ev_stop_state: Any
    #: the charger state after the handshake
    charger_first_state: Any
    #: decoded message -> (body name, body, header); ValueError when the shape is wrong
    unwrap: Callable[[Any], tuple[str, dict[str, Any], dict[str, Any]]]
    #: (session id, body name, body) -> message dict
    wrap: Callable[[bytes, str, Mapping[str, Any]], dict[str, Any]]
    #: header -> SessionID (None when absent)
    session_id_of: Callable[[Mapping[str, Any]], Optional[bytes]]
    #: session -> the EV handler (None: not implemented for the EV)
    ev_handler: Optional[Callable[[Any], Any]] = None
    #: session -> the charger handler (None: not implemented for the charger)
    charger_handler: Optional[Callable[[Any], Any]] = None
    fault_codes: Mapping[Fault, str] = dataclasses.field(default_factory=lambda: DEFAULT_FAULT_CODES)
    #: response body -> the ResponseCodes it may carry (None: any); others go out as Fault.FAILED
    response_codes: Optional[Mapping[str, frozenset[str]]] = None
    #: V2GTP payload types of its messages
    payload_types: frozenset[int] = frozenset({PayloadType.EXI})
    #: V2GTP payload type -> the namespace its payloads decode with (every other type: ``namespace``);
    #: for protocols whose messages span several schema sets (ISO 15118-20)
    decode_namespaces: Mapping[int, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    #: body name -> (namespace, V2GTP payload type) it is sent with (None: ``namespace``, EXI)
    route: Optional[Callable[[str], tuple[str, int]]] = None
    #: a family id (``"iso20"``): configuring the family selects every member that fits
    family: str = ""
    #: a side's configuration -> whether this protocol serves it (None: always; e.g. the ISO 15118-20
    #: AC message set only for an EV that charges AC)
    fits: Optional[Callable[[Any], bool]] = None
    #: the protocol's own timer values (a :class:`~plugcharge.core.timers.HandshakeTiming` of the
    #: standard's tables); a session given a profile of the same type uses that one instead
    timing: Optional[Any] = None
    #: whether the protocol has Plug & Charge (Contract payment) at all: DIN SPEC 70121 has not
    plug_and_charge: bool = False

    def code(self, fault: Fault) -> str:
        """The wire code for ``fault``."""
        return self.fault_codes.get(fault) or DEFAULT_FAULT_CODES[fault]

    def allowed_code(self, response: str, code: str) -> str:
        """``code`` if ``response`` may carry it (:attr:`response_codes`), else the plain failure code."""
        allowed = (self.response_codes or {}).get(response)
        return code if allowed is None or code in allowed else self.code(Fault.FAILED)

    def namespace_for(self, payload_type: int) -> str:
        """The namespace a payload of ``payload_type`` decodes with."""
        return self.decode_namespaces.get(payload_type, self.namespace)

    def implemented(self, role: str) -> bool:
        """Whether this package has a handler for ``role`` (``"ev"`` or ``"charger"``)."""
        return (self.ev_handler if role == "ev" else self.charger_handler) is not None

    def permits_tls(self, tls: Optional[bool]) -> bool:
        """Whether the protocol may run over a transport with (True) or without (False) TLS; None: unknown."""
        if tls is None or self.tls is TLSPolicy.OPTIONAL:
            return True
        return tls if self.tls is TLSPolicy.REQUIRED else not tls


class ProtocolRegistry:
    """The protocols a session may negotiate, by id, in registration order."""

    def __init__(self, specs: Iterable[ProtocolSpec]) -> None:
        self._specs: dict[str, ProtocolSpec] = {}
        for spec in specs:
            if spec.id in self._specs:
                raise ValueError(f"protocol {spec.id!r} registered twice")
            if any(s.namespace == spec.namespace and s.version[0] == spec.version[0] for s in self._specs.values()):
                raise ValueError(f"{spec.namespace} major {spec.version[0]} registered twice")
            self._specs[spec.id] = spec

    def __iter__(self) -> Iterator[ProtocolSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, protocol_id: object) -> bool:
        return protocol_id in self._specs

    def get(self, protocol_id: str) -> Optional[ProtocolSpec]:
        """The spec registered as ``protocol_id``, or None."""
        return self._specs.get(protocol_id)

    def family(self, family_id: str) -> list[ProtocolSpec]:
        """The specs registered as members of ``family_id``, in registration order."""
        return [s for s in self._specs.values() if s.family == family_id]

    def select(self, protocol_ids: Sequence[str], role: str, *, tls: Optional[bool] = None,
               config: Any = None) -> list[ProtocolSpec]:
        """The specs of ``protocol_ids`` (in that order; a family id stands for its members in
        registration order) that are registered, implemented for ``role``, fit the transport
        (``tls``) and the side's ``config`` (:attr:`ProtocolSpec.fits`).  An id that is neither
        registered, a family nor one of :data:`KNOWN_PROTOCOLS` raises ValueError (a typo must not
        silently drop a protocol)."""
        out: list[ProtocolSpec] = []
        for pid in protocol_ids:
            spec = self._specs.get(pid)
            specs = [spec] if spec is not None else self.family(pid)
            if not specs and pid not in KNOWN_PROTOCOLS:
                raise ValueError(f"unknown protocol {pid!r} (known: {', '.join([*KNOWN_PROTOCOLS, *self._specs])})")
            for s in specs:  # none: known but not implemented in this package yet
                if (s.implemented(role) and s.permits_tls(tls) and s not in out
                        and (config is None or s.fits is None or s.fits(config))):
                    out.append(s)
        return out

    def transports(self, protocol_ids: Sequence[str], role: str) -> frozenset[bool]:
        """Over which transports ``protocol_ids`` can run for ``role``: ``True`` (TLS) and/or ``False``
        (plain TCP), by the protocols' TLS policies; what a charger listens on, what an EV may ask for
        in its SDP request."""
        return frozenset(tls for tls in (True, False) if self.select(protocol_ids, role, tls=tls))
