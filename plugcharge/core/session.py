"""The protocol-neutral session core: bytes in and out, framing, the handshake, and one dispatch path.

:class:`SessionCore` does what every protocol needs (h11 style, sans-IO): V2GTP framing, EXI codec
access, named timers, events, the ended flag.  :class:`EVSessionBase` and :class:`ChargerSessionBase`
add the SupportedAppProtocol handshake over a :class:`~plugcharge.core.protocol.ProtocolRegistry`
and, once a protocol is agreed, run every message through the same steps: decode → SessionID check
→ table check → the protocol's handler → transition check.  A fault at any step gets the agreed
protocol's wire code (:class:`~plugcharge.core.protocol.Fault` → ``fault_codes``); the charger
answers the request's own response type with it [V2G2-538] and both sides end the session.

A protocol package supplies the handlers (:class:`EVHandler`, :class:`ChargerHandler`): message
meaning only.  An EV handler has a ``_r_<Response>(body, header, msg, now)`` method per response it
awaits; a charger handler a ``_h_<Request>(body, header, msg, payload, now)`` per request, returning
the next state.  They reach the session through the plumbing methods of :class:`Handler`.
"""
from __future__ import annotations

import logging
import weakref
from typing import Any, Mapping, Optional

from .codec import NS_APP, CodecProvider, resolve_codecs
from .config import ChargerConfig, EVConfig, SessionStore
from .errors import LocalProtocolError, Refused, SignatureError, Stop
from .events import (
    AuthorizationResult, Event, NegotiationFailed, PauseCharging, ProtocolAgreed, ProtocolError, SendResult,
    SessionEnded, StartSession, StopCharging, TimerExpired,
)
from .fsm import CoreState, check_charger_transition
from .handshake import FAILED_NO_NEGOTIATION, negotiate, offer, sap_req, sap_res
from .protocol import DEFAULT_FAULT_CODES, Fault, ProtocolRegistry, ProtocolSpec
from .timers import (
    COMM_SETUP, HANDSHAKE_TIMING, MSG, SAP_REQUEST, SEQUENCE, TIMER_NAMES, TimingArg, given_profiles, timing_for,
)
from .sniff import BodySniffer
from .v2gtp import PAYLOAD_TYPES, ErrorKind, FrameReader, HeaderAction, PayloadType, V2GTPError, append_frame

__all__ = ["SessionCore", "EVSessionBase", "ChargerSessionBase", "Handler", "EVHandler", "ChargerHandler"]

_log = logging.getLogger("plugcharge.session")
_SAP_RES = "supportedAppProtocolRes"


class SessionCore:
    """Bytes in/out, V2GTP framing, EXI codec access, named timers, events and the ended flag."""

    _max_payload = 65536
    #: ``"ev"`` or ``"charger"``
    role = ""

    def __init__(self, *, codecs: Optional[CodecProvider], timing: TimingArg,
                 protocols: ProtocolRegistry) -> None:
        self._codecs = resolve_codecs(codecs)
        #: the provider's codec per namespace, asked once per session (every message needs one)
        self._codec_of: dict[str, Any] = {}
        self._reader = FrameReader(max_payload=self._max_payload, allowed_types={PayloadType.EXI})
        self._out = bytearray()
        self._timers: dict[str, float] = {}
        self._events: list[Event] = []
        self.ended = False
        #: Every (direction, body name) exchanged, for logs and tests.
        self.trace: list[tuple[str, str]] = []
        #: the profiles the caller gave (:func:`~plugcharge.core.timers.timing_for` picks per protocol)
        self._given_timing = given_profiles(timing)
        #: the timer values in force: the handshake's, then the agreed protocol's
        self.timing: Any = self._given_timing[0] if self._given_timing else HANDSHAKE_TIMING
        #: The protocols this session may negotiate.
        self.registry = protocols
        #: The agreed protocol (None until the handshake succeeded).
        self.protocol: Optional[ProtocolSpec] = None
        #: The agreed protocol's handler for this side (None until then).
        self.handler: Any = None
        #: A :class:`~plugcharge.core.fsm.CoreState` or a state of the agreed protocol.
        self.state: Any = CoreState.IDLE
        self.session_id = b""
        #: The ``now`` of the current call (receive_data, send, handle_timer).
        self.clock = 0.0
        #: the message timer's deadline as of the last :meth:`transmitted` (one armed since moves)
        self._msg_sent_deadline: Optional[float] = None

    # ---- public API
    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the peer; returns the events they caused.  Never raises for bad input."""
        if self.ended:
            return []
        self.clock = now
        payloads, error = self._payloads(data)
        for payload_type, payload in payloads:
            if self.ended:
                break
            self._on_payload(payload, now, payload_type)
        if error is not None and not self.ended:
            self._remote_failure(Fault.FAILED, error, now)
        return self._take_events()

    def data_to_send(self) -> bytes:
        """Drain the bytes (V2GTP frames) the session wants transmitted."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def transmitted(self, now: float) -> None:
        """Tell the session that the bytes :meth:`data_to_send` returned last were written at ``now``.

        ``V2G_EVCC_Msg_Timeout`` is the EV's wait for the response to a request it has sent (DIN
        SPEC 70121 Table 75, ISO 15118-2 [V2G2-436..438], -20 [V2G20-1966]): a message timer the
        last call armed (at that call's ``now``) starts again from ``now``, so that what the EV spent
        before the request left (encoding it, loading the codec of a protocol's first message,
        signing, the write) does not come out of the charger's time.  Optional: without it the timer
        runs from the call that queued the request, a little shorter.  The runner calls it."""
        deadline = self._timers.get(MSG)
        if deadline is not None and deadline != self._msg_sent_deadline and now > self.clock:
            deadline += now - self.clock
            self._timers[MSG] = deadline
        self._msg_sent_deadline = deadline

    def get_timer(self) -> Optional[float]:
        """The earliest instant at which :meth:`handle_timer` must be called, or None."""
        if self.ended or not self._timers:
            return None
        return min(self._timers.values())

    def handle_timer(self, now: float) -> list[Event]:
        """Run every timer due at ``now``; returns the events (may queue bytes)."""
        self.clock = now
        while not self.ended and self._timers:
            name, deadline = min(self._timers.items(), key=lambda kv: kv[1])
            if deadline > now:
                break
            del self._timers[name]
            self._on_timer(name, now)
        return self._take_events()

    def send(self, command: Any, now: float) -> SendResult:
        """Apply a caller command; returns the bytes to transmit and the events it caused."""
        if self.ended:
            raise LocalProtocolError(f"session has ended; cannot {type(command).__name__}")
        self.clock = now
        self._on_command(command, now)
        return SendResult(self.data_to_send(), tuple(self._take_events()))

    # ---- plumbing for the handlers
    def emit(self, *events: Event) -> None:
        """Queue events for the caller."""
        self._events.extend(events)

    def _take_events(self) -> list[Event]:
        ev = self._events[:]  # the list itself stays: the handler appends to it
        self._events.clear()
        return ev

    def set_timer(self, name: str, deadline: float) -> None:
        """Arm (or re-arm) the timer ``name`` to fire at ``deadline``."""
        self._timers[name] = deadline

    def cancel_timer(self, *names: str) -> None:
        """Disarm the named timers (absent ones are ignored)."""
        for n in names:
            self._timers.pop(n, None)

    def decode(self, payload: bytes, ns: str) -> dict:
        """Decode an EXI document of namespace ``ns``."""
        return self._codec(ns).decode(payload)  # type: ignore[no-any-return]

    def _codec(self, ns: str) -> Any:
        codec = self._codec_of.get(ns)
        if codec is None:
            codec = self._codec_of[ns] = self._codecs(ns)
        return codec

    def queue(self, message: dict, name: str, ns: Optional[str] = None,
              payload_type: Optional[int] = None) -> None:
        """Encode ``message`` (namespace ``ns``, default: where the agreed protocol routes ``name``,
        else its namespace) and queue its frame; ``name`` (the body element) goes to :attr:`trace`."""
        spec = self.protocol
        if ns is None:
            if spec is not None and spec.route is not None:
                ns, routed_type = spec.route(name)
                payload_type = routed_type if payload_type is None else payload_type
            else:
                ns = spec.namespace if spec is not None else NS_APP
        append_frame(self._out, PayloadType.EXI if payload_type is None else payload_type,
                     self._codec(ns).encode(message))
        self.trace.append(("out", name))

    def end(self, reason: str, *, response_code: Optional[str] = None, detail: str = "",
            fallback: Optional[str] = None) -> None:
        """End the session (once): clear the timers, emit :class:`~plugcharge.core.events.SessionEnded`."""
        if self.ended:
            return
        self.ended = True
        self._timers.clear()
        _log.debug("session ended: %s %s %s", reason, response_code or "", detail)
        self._events.append(SessionEnded(reason, response_code, detail, fallback))

    def timeout(self, timer: str, message: str, now: float, *, fallback: Optional[str] = None) -> None:
        """Report the standard timer ``timer`` as expired while waiting for ``message``, then end."""
        self._events.append(TimerExpired(timer, message))
        self.end("timeout", detail=f"{timer} expired waiting for {message or 'the peer'}", fallback=fallback)

    def code(self, fault: Fault) -> str:
        """The wire code of ``fault`` in the agreed protocol (before agreement: the common one)."""
        return self.protocol.code(fault) if self.protocol is not None else DEFAULT_FAULT_CODES[fault]

    # ---- internals
    def _payloads(self, data: bytes) -> tuple[list[tuple[int, bytes]], Optional[str]]:
        """The ``(payload type, payload)`` of each frame ``data`` completes, and why the stream failed
        after them (None: it did not).

        A frame of a payload type V2GTP does not define is skipped
        (:data:`~plugcharge.core.v2gtp.HEADER_ERROR_ACTION`).  A header that breaks the stream fails
        it, and so does a payload type V2GTP defines for another use than this session's messages
        (ISO 15118-20's on an ISO 15118-2 or DIN stream, SDP's on TCP): that peer speaks another
        protocol, and waiting for the sequence timer would only hold the connection."""
        out: list[tuple[int, bytes]] = []
        while True:
            try:
                got = self._reader.feed_payloads(data)
                if out:
                    out += got
                    return out, None
                return got, None
            except V2GTPError as exc:
                out += exc.frames
                known = PAYLOAD_TYPES.get(exc.payload_type) if exc.payload_type is not None else None
                if known is not None and exc.kind is ErrorKind.UNKNOWN_PAYLOAD_TYPE:
                    allowed = self.protocol.name if self.protocol is not None else "the SupportedAppProtocol handshake"
                    return out, (f"V2GTP payload type 0x{exc.payload_type:04X} ({known}) is not one of "
                                 f"{allowed} (stream offset {exc.offset})")
                if exc.action is not HeaderAction.DISCARD_MESSAGE:
                    return out, f"V2GTP framing: {exc.reason} (stream offset {exc.offset})"
                data = b""  # the reader skips that frame; continue with what it holds

    def _agree(self, spec: ProtocolSpec, schema_id: Any, response_code: str, factory: Any) -> None:
        self.protocol = spec
        self.timing = timing_for(spec.timing, self._given_timing, self.timing)
        if spec.payload_types != self._reader.allowed_types:
            self._reader.allowed_types = frozenset(spec.payload_types) | {PayloadType.EXI}
        self.handler = factory(self)
        self._events.append(ProtocolAgreed(spec.id, spec.name, spec.namespace, spec.version,
                                           schema_id if isinstance(schema_id, int) else None, response_code,
                                           spec.plug_and_charge))

    def _protocol_ended(self, reason: str, fault: Fault, hint: str) -> None:
        code = self.code(fault)
        self._events.append(ProtocolError(code, hint, True))
        self.state = CoreState.ENDED
        self.end(reason, response_code=code, detail=hint)

    def _on_payload(self, payload: bytes, now: float,
                    payload_type: int = PayloadType.EXI) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_timer(self, name: str, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_command(self, command: Any, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _remote_failure(self, fault: Fault, hint: str, now: float, payload: Optional[bytes] = None,
                        payload_type: int = PayloadType.EXI) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- handlers
class Handler:
    """Base of a protocol's handler for one session: message meaning; the plumbing is the session's.

    The handler reaches its session through a weak proxy: the session owns the handler, and no
    reference cycle keeps an ended session alive until the garbage collector runs."""

    def __init__(self, session: Any) -> None:
        self.session: Any = weakref.proxy(session)
        #: the session's own timer dict and event list (no proxy hop on the hot path)
        self._timers: dict[str, float] = session._timers
        self._events: list[Event] = session._events
        self.config = session.config
        self.security = session.security
        self.timing = session.timing
        self._codecs = session._codecs

    # -- session state the handler reads and writes
    @property
    def state(self) -> Any:
        """The session's state (the protocol's states, or CoreState.ENDED)."""
        return self.session.state

    @state.setter
    def state(self, value: Any) -> None:
        self.session.state = value

    @property
    def session_id(self) -> bytes:
        """The session's SessionID."""
        return self.session.session_id  # type: ignore[no-any-return]

    @session_id.setter
    def session_id(self, value: bytes) -> None:
        self.session.session_id = value

    @property
    def ended(self) -> bool:
        """Whether the session is over."""
        return bool(self.session.ended)

    @property
    def _clock(self) -> float:
        return float(self.session.clock)

    @_clock.setter
    def _clock(self, now: float) -> None:
        self.session.clock = now

    # -- plumbing
    def _emit(self, *events: Event) -> None:
        self._events.extend(events)

    def _set_timer(self, name: str, deadline: float) -> None:
        self._timers[name] = deadline

    def _cancel_timer(self, *names: str) -> None:
        for n in names:
            self._timers.pop(n, None)

    def _queue(self, message: dict, name: str) -> None:
        self.session.queue(message, name)

    def _decode(self, payload: bytes, ns: str) -> dict:
        return self.session.decode(payload, ns)

    def _end(self, reason: str, *, response_code: Optional[str] = None, detail: str = "",
             fallback: Optional[str] = None) -> None:
        self.session.end(reason, response_code=response_code, detail=detail, fallback=fallback)

    def _timeout(self, timer: str, message: str, now: float, *, fallback: Optional[str] = None) -> None:
        self.session.timeout(timer, message, now, fallback=fallback)

    # -- hooks
    def on_command(self, command: Any, now: float) -> None:
        """A caller command after agreement (default: not supported)."""
        raise LocalProtocolError(f"{self.session.role} cannot handle {type(command).__name__}")

    def on_timer(self, name: str, now: float) -> None:
        """A timer of this handler (or, on the EV, any timer after agreement) fired."""


class EVHandler(Handler):
    """Base of a protocol's EV handler: ``start`` sends the first request after the handshake."""

    def start(self, now: float) -> None:  # pragma: no cover - abstract
        """The protocol was agreed: send its first request (SessionSetupReq)."""
        raise NotImplementedError

    def on_failed_response(self, name: str, code: str, now: float) -> None:
        """A response carried a FAILED code: the EV stops [V2G2-486] (raises :class:`Stop`)."""
        raise Stop(f"{name}: {code}", code)

    def give_up(self, stop: Stop, now: float) -> None:
        """End the session because of ``stop`` (default: end at once, reason ``failed``)."""
        self.state = CoreState.ENDED
        self._end("failed", response_code=stop.code, detail=stop.reason)


class ChargerHandler(Handler):
    """Base of a protocol's charger handler: ``failure_body`` fills a FAILED response."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.store: SessionStore = session.store

    def failure_body(self, response: str, code: str, request: Optional[Mapping[str, Any]]) -> dict[str, Any]:
        """A minimal schema-valid body of ``response`` carrying ``code``."""
        return {"ResponseCode": code}

    def _fail(self, request: str, code: str, hint: str, now: float, req: Optional[Mapping[str, Any]] = None,
              *, remote: bool = True) -> None:
        self.session.fail(request, code, hint, now, req, remote=remote)


# ---------------------------------------------------------------------------------------------- EV
class EVSessionBase(SessionCore):
    """One V2G communication session on the vehicle side (one TCP/TLS connection), any protocol.

    ``StartSession`` offers the protocols of ``config.protocols`` that the registry implements for the
    EV and that fit ``config.tls``, most preferred first; the charger's answer picks the handler."""

    role = "ev"

    def __init__(self, config: EVConfig, *, security: Any, timing: TimingArg,
                 codecs: Optional[CodecProvider], protocols: ProtocolRegistry) -> None:
        super().__init__(codecs=codecs, timing=timing, protocols=protocols)
        self.config = config
        self.security = security
        self.session_id = bytes(config.resume_session_id or bytes(8))
        #: The protocols offered, most preferred first.
        self.offered = protocols.select(config.protocols, "ev", tls=config.tls, config=config)
        if not self.offered:
            raise ValueError(f"the EV is configured for no protocol implemented here: {', '.join(config.protocols)} "
                             f"(implemented: {', '.join(s.id for s in protocols if s.implemented('ev'))})")
        self._request_name = ""
        self._commands: list[Any] = []  # commands given before agreement, for the handler

    def _on_command(self, command: Any, now: float) -> None:
        if self.handler is not None:
            self.handler.on_command(command, now)
        elif isinstance(command, StartSession):
            if self.state is not CoreState.IDLE:
                raise LocalProtocolError("session already started")
            self.set_timer(COMM_SETUP, now + self.timing.get("communication_setup"))
            self.queue(sap_req(offer(self.offered)), SAP_REQUEST, NS_APP)
            self._request_name = SAP_REQUEST
            self.set_timer(MSG, now + self.timing.message_timeout(SAP_REQUEST))
            self.state = CoreState.WAIT_SAP
        elif isinstance(command, (StopCharging, PauseCharging)):
            if self.state is CoreState.IDLE:
                raise LocalProtocolError("session not started")
            self._commands.append(command)
        else:
            raise LocalProtocolError(f"EV cannot handle {type(command).__name__}")

    def _on_timer(self, name: str, now: float) -> None:
        if self.handler is not None:
            self.handler.on_timer(name, now)
        else:
            self.timeout(TIMER_NAMES.get(name, name), self._request_name if name == MSG else "SessionSetupRes", now)

    def _remote_failure(self, fault: Fault, hint: str, now: float, payload: Optional[bytes] = None,
                        payload_type: int = PayloadType.EXI) -> None:
        self._protocol_ended("protocol_error", fault, hint)

    def _on_payload(self, payload: bytes, now: float, payload_type: int = PayloadType.EXI) -> None:
        state = self.state
        if state is CoreState.IDLE or state is CoreState.ENDED or MSG not in self._timers:
            # the message timer runs exactly while a request is outstanding
            self._remote_failure(Fault.SEQUENCE, "data received while no request is outstanding", now)
            return
        spec = self.protocol
        if spec is None:
            self._on_sap_response(payload, now)
            return
        try:
            msg = self.decode(payload, spec.namespace_for(payload_type))
            name, body, header = spec.unwrap(msg)
        except Exception as exc:
            self._remote_failure(Fault.FAILED, f"undecodable response: {type(exc).__name__}: {exc}", now)
            return
        self.trace.append(("in", name))
        entry = spec.ev_table.get(state)
        expected = entry[0] if entry is not None else ""
        if name != expected:
            self._remote_failure(Fault.SEQUENCE, f"got {name}, expected {expected}", now)
            return
        if name != spec.session_setup[1] and spec.session_id_of(header) != self.session_id:
            self._remote_failure(Fault.UNKNOWN_SESSION, f"{name} carries another SessionID", now)
            return
        del self._timers[MSG]
        handler = self.handler
        code = str(body.get("ResponseCode", ""))
        try:
            if code.startswith("FAILED"):
                handler.on_failed_response(name, code, now)
            getattr(handler, "_r_" + name)(body, header, msg, now)
        except Stop as stop:
            handler.give_up(stop, now)
        except Exception as exc:  # malformed content (KeyError/TypeError/ValueError...): never escapes
            self._remote_failure(Fault.FAILED, f"malformed {name}: {type(exc).__name__}: {exc}", now)

    def _on_sap_response(self, payload: bytes, now: float) -> None:
        try:
            body = dict(self._codecs(NS_APP).decode(payload)[_SAP_RES])
        except Exception as exc:
            self._remote_failure(Fault.FAILED, f"undecodable response: {type(exc).__name__}: {exc}", now)
            return
        self.trace.append(("in", _SAP_RES))
        del self._timers[MSG]
        code = str(body.get("ResponseCode", ""))
        try:
            if not code.startswith("OK"):
                self._emit_negotiation_failed(code)
                self.state = CoreState.ENDED
                self.end("failed", response_code=str(body.get("ResponseCode")),
                         detail="charger supports no common protocol")
                return
            schema_id = body.get("SchemaID")
            by_schema = dict(zip((entry[3] for entry in offer(self.offered)), self.offered))
            spec = by_schema.get(schema_id) if schema_id is not None else (
                self.offered[0] if len(self.offered) == 1 else None)
            if spec is None:
                self._remote_failure(Fault.FAILED, f"charger agreed to SchemaID {schema_id!r}, which was not offered", now)
                return
            self._agree(spec, schema_id, code, spec.ev_handler)
            for command in self._commands:
                self.handler.on_command(command, now)
            self._commands.clear()
            self.handler.start(now)
        except Stop as stop:
            self.handler.give_up(stop, now)
        except Exception as exc:
            self._remote_failure(Fault.FAILED, f"malformed {_SAP_RES}: {type(exc).__name__}: {exc}", now)

    def _emit_negotiation_failed(self, code: str) -> None:
        self._events.append(NegotiationFailed(code, tuple(s.namespace for s in self.offered),
                                              tuple(s.name for s in self.offered)))


# ---------------------------------------------------------------------------------------------- charger
class ChargerSessionBase(SessionCore):
    """One V2G communication session on the charger side (one TCP/TLS connection), any protocol.

    Of the EV's offer it takes a protocol of ``config.protocols`` that the registry implements for the
    charger and that fits ``config.tls`` (:func:`~plugcharge.core.handshake.negotiate`); an EV that
    offers none of them gets ``Failed_NoNegotiation`` and the session ends."""

    role = "charger"

    def __init__(self, config: ChargerConfig, *, security: Any, store: Optional[SessionStore],
                 timing: TimingArg, codecs: Optional[CodecProvider], protocols: ProtocolRegistry,
                 now: Optional[float] = None) -> None:
        super().__init__(codecs=codecs, timing=timing, protocols=protocols)
        self.config = config
        self.security = security
        self.store = store if store is not None else SessionStore()
        self.state = CoreState.WAIT_SAP
        #: The protocols this charger may agree to, its own preference first.
        self.supported = protocols.select(config.protocols, "charger", tls=config.tls, config=config)
        if not self.supported:
            raise ValueError(f"the charger is configured for no protocol implemented here that fits "
                             f"tls={config.tls}: {', '.join(config.protocols)} "
                             f"(implemented: {', '.join(s.id for s in protocols if s.implemented('charger'))})")
        self._commands: list[Any] = []
        self._sniffers: dict[str, BodySniffer] = {}  # by namespace, made on the first undecodable request
        if now is not None:
            self.connection_made(now)

    def connection_made(self, now: float) -> None:
        """The EV connected at ``now``: arm V2G_SECC_Sequence_Timeout for its first request."""
        if not self.ended and self.state is CoreState.WAIT_SAP:
            self.set_timer(SEQUENCE, now + self.timing.sequence_timeout())

    # ---- plumbing for the handler
    def respond(self, message: dict, name: str, now: float) -> None:
        """Queue a response and re-arm V2G_SECC_Sequence_Timeout."""
        self.queue(message, name)
        self._timers[SEQUENCE] = now + self.timing.sequence_timeout()

    def fail(self, request: str, code: str, hint: str, now: float, req: Optional[Mapping[str, Any]] = None,
             *, remote: bool = True) -> None:
        """Answer ``request`` with its response carrying ``code`` and end the session cleanly.  A code
        the response may not carry (the spec's ``response_codes``) goes out as the plain failure
        code; the events keep it in their text."""
        spec = self.protocol
        res = spec.request_to_response.get(request) if spec is not None else None
        if res is not None and spec is not None and spec.allowed_code(res, code) != code:
            hint = f"{hint} ({code}; {res} cannot carry it)"
            code = spec.allowed_code(res, code)
        if res is not None and spec is not None:
            try:
                self.respond(spec.wrap(self.session_id or bytes(8), res, self.handler.failure_body(res, code, req)),
                             res, now)
            except Exception as exc:  # the codec refused our own failure message: still end cleanly
                hint += f" (failure response not encodable: {exc})"
        if remote:
            self._events.append(ProtocolError(code, hint, True))
        self.state = CoreState.ENDED
        self.end("failed", response_code=code, detail=hint)

    # ---- input
    def _on_command(self, command: Any, now: float) -> None:
        if self.handler is not None:
            self.handler.on_command(command, now)
        elif isinstance(command, (StopCharging, AuthorizationResult)):
            self._commands.append(command)
        else:
            raise LocalProtocolError(f"charger cannot handle {type(command).__name__} before a protocol is agreed")

    def _on_timer(self, name: str, now: float) -> None:
        if name == SEQUENCE:
            self.timeout(TIMER_NAMES[SEQUENCE], "the next request", now)
        elif self.handler is not None:
            self.handler.on_timer(name, now)

    def _remote_failure(self, fault: Fault, hint: str, now: float, payload: Optional[bytes] = None,
                        payload_type: int = PayloadType.EXI) -> None:
        spec = self.protocol
        if spec is None:
            code = self.code(fault)
            self._events.append(ProtocolError(code, hint, True))
            try:
                self.queue(sap_res(FAILED_NO_NEGOTIATION), _SAP_RES, NS_APP)
            except Exception:
                pass
            self.state = CoreState.ENDED
            self.end("protocol_error", response_code=code, detail=hint)
            return
        request = self._request_meant(payload, payload_type)
        if request is not None:
            self.fail(request, spec.code(fault), hint, now)
        else:
            self._protocol_ended("protocol_error", fault, hint)

    def _request_meant(self, payload: Optional[bytes], payload_type: int = PayloadType.EXI) -> Optional[str]:
        """The request to answer FAILED for input that could not be processed [V2G2-538]: the one
        ``payload`` starts like (:class:`~plugcharge.core.sniff.BodySniffer`), else the first the
        state expects (SessionStopReq only when nothing else is expected); None when the state
        expects no request at all."""
        spec = self.protocol
        assert spec is not None
        if payload:
            ns = spec.namespace_for(payload_type)
            try:
                sniffer = self._sniffers.get(ns)
                if sniffer is None:
                    names = [*spec.request_to_response, *spec.request_to_response.values()]
                    sniffer = self._sniffers[ns] = BodySniffer(self._codecs(ns).encode, spec.wrap,
                                                               self.session_id or bytes(8), names)
                name = sniffer.identify(payload)
            except Exception:  # no codec for probes: fall back to the state's expectation
                name = None
            if name is not None and name in spec.request_to_response:
                return name
        expected = list(spec.charger_table.get(self.state, {}))
        others = [r for r in expected if r != spec.stop_request]
        return (others or expected)[0] if expected else None

    def _on_payload(self, payload: bytes, now: float, payload_type: int = PayloadType.EXI) -> None:
        state = self.state
        spec = self.protocol
        if spec is None:
            self._on_sap(payload, now)
            return
        try:
            msg = self.decode(payload, spec.namespace_for(payload_type))
            name, body, header = spec.unwrap(msg)
        except Exception as exc:  # DecodeError / ValueError from a malformed stream
            self._remote_failure(Fault.FAILED, f"undecodable message: {type(exc).__name__}: {exc}", now, payload,
                                 payload_type)
            return
        self.trace.append(("in", name))
        if name not in spec.request_to_response:  # a response, or a body this protocol never sends
            self._remote_failure(Fault.FAILED, f"{name} is not a request", now)
            return
        # [V2G2-388], [V2G-DC-391]; before SessionSetup no SessionID is assigned, so nothing can be
        # unknown yet: another first request is out of sequence [V2G-DC-666]
        if self.session_id and name != spec.session_setup[0] and spec.session_id_of(header) != self.session_id:
            self.fail(name, spec.code(Fault.UNKNOWN_SESSION), "SessionID does not match this session", now, body)
            return
        if name not in spec.charger_table.get(state, {}):
            # [V2G2-459]/[V2G2-538]: answer the received request's response type, then end [V2G2-539]
            self.fail(name, spec.code(Fault.SEQUENCE), f"{name} not allowed in {state.value}", now, body)
            return
        try:
            new = getattr(self.handler, "_h_" + name)(body, header, msg, payload, now)
        except Refused as exc:
            self.fail(name, exc.response_code, exc.hint, now, body, remote=exc.remote)
            return
        except SignatureError as exc:
            self.fail(name, spec.code(Fault.SIGNATURE), str(exc), now, body)
            return
        except Exception as exc:  # malformed content (KeyError/TypeError/ValueError...): never escapes
            self.fail(name, spec.code(Fault.FAILED), f"malformed {name}: {type(exc).__name__}: {exc}", now, body)
            return
        if new is CoreState.ENDED or self.ended:
            self.state = CoreState.ENDED
            return
        check_charger_transition(spec.charger_table, state, name, new)
        self.state = new

    def _on_sap(self, payload: bytes, now: float) -> None:
        self.cancel_timer(SEQUENCE)
        try:
            # an empty list (schema-invalid: 1..20 entries; the iso15118 package's EVCC sends it when
            # it drops DIN under TLS) offers nothing: Failed_NoNegotiation, not an undecodable request
            entries = self._codecs(NS_APP).decode(payload)["supportedAppProtocolReq"].get("AppProtocol") or []
        except Exception as exc:
            self._remote_failure(Fault.FAILED, f"undecodable supportedAppProtocolReq: {exc}", now)
            return
        self.trace.append(("in", SAP_REQUEST))
        try:
            agreement = negotiate(entries, self.supported)
            offered = tuple(str(e.get("ProtocolNamespace")) for e in entries)
            versions = ", ".join(f"{e.get('ProtocolNamespace')} {e.get('VersionNumberMajor')}.{e.get('VersionNumberMinor')}"
                                 for e in entries)
        except Exception as exc:
            self._remote_failure(Fault.FAILED, f"malformed supportedAppProtocolReq: {exc}", now)
            return
        if agreement is None:
            self.queue(sap_res(FAILED_NO_NEGOTIATION), _SAP_RES, NS_APP)
            self._events.append(NegotiationFailed(FAILED_NO_NEGOTIATION, offered, tuple(s.name for s in self.supported)))
            self.state = CoreState.ENDED
            self.end("failed", response_code=FAILED_NO_NEGOTIATION,
                     detail=f"no common protocol: the EV offers {versions or 'nothing'}")
            return
        spec = agreement.spec
        self.queue(sap_res(agreement.response_code, agreement.schema_id), _SAP_RES, NS_APP)
        self.set_timer(SEQUENCE, now + self.timing.sequence_timeout())
        self._agree(spec, agreement.schema_id, agreement.response_code, spec.charger_handler)
        for command in self._commands:
            self.handler.on_command(command, now)
        self._commands.clear()
        check_charger_transition(spec.charger_table, CoreState.WAIT_SAP, SAP_REQUEST, spec.charger_first_state)
        self.state = spec.charger_first_state
