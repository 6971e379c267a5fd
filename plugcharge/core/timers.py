"""The timers the session core runs for every protocol, by name, and what it needs of a timing profile.

Each protocol keeps its own tables (ISO 15118-2: :mod:`plugcharge.iso2.timing`); the core arms three
timers itself, under the names below, with values it asks the session's timing profile for:

* :data:`MSG` — ``V2G_EVCC_Msg_Timeout``: runs exactly while an EV request is outstanding;
* :data:`COMM_SETUP` — ``V2G_EVCC_CommunicationSetup_Timeout``: from StartSession until the
  session is set up;
* :data:`SEQUENCE` — ``V2G_SECC_Sequence_Timeout``: the charger's wait for the next request.

The standard timer names are the same in DIN SPEC 70121, ISO 15118-2 and -20, and so are the
values the handshake uses (:data:`HANDSHAKE_TIMING`).

Which profile a session uses (:func:`timing_for`): each protocol brings its own tables
(:attr:`~plugcharge.core.protocol.ProtocolSpec.timing`); a profile the caller gives the session
replaces the protocol's when it is of the same type (a scaled ISO-2 profile applies to ISO-2, never
to DIN), or for a protocol without tables of its own.  The handshake runs on the first profile
given, else on :data:`HANDSHAKE_TIMING`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Protocol, Sequence, Union

__all__ = ["MSG", "COMM_SETUP", "SEQUENCE", "TIMER_NAMES", "SAP_REQUEST", "HandshakeTiming", "ScaledTiming",
           "HandshakeProfile", "HANDSHAKE_TIMING", "TimingArg", "given_profiles", "timing_for"]

MSG = "msg"
COMM_SETUP = "comm_setup"
SEQUENCE = "sequence"
#: timer -> the standard's name (as reported in :class:`~plugcharge.core.events.TimerExpired`).
TIMER_NAMES = {MSG: "V2G_EVCC_Msg_Timeout", COMM_SETUP: "V2G_EVCC_CommunicationSetup_Timeout",
               SEQUENCE: "V2G_SECC_Sequence_Timeout"}
#: The handshake request, as named in message timeout tables.
SAP_REQUEST = "supportedAppProtocolReq"


class HandshakeTiming(Protocol):
    """What the session core asks of a timing profile (:class:`plugcharge.iso2.timing.TimingProfile` is one)."""

    def message_timeout(self, request: str) -> float:
        """``V2G_EVCC_Msg_Timeout`` for ``request`` (a body element name), scaled."""
        ...

    def sequence_timeout(self) -> float:
        """``V2G_SECC_Sequence_Timeout``, scaled."""
        ...

    def get(self, name: str) -> float:
        """A named phase timer (``"communication_setup"`` ...), scaled."""
        ...


class ScaledTiming:
    """The :class:`HandshakeTiming` methods over a profile's fields: ``msg_timeout`` (request -> seconds,
    2 s for any other), ``secc_sequence`` and ``scale`` (every value is multiplied by it; tests use
    < 1); a named timer is the attribute of that name.  Mixed into each protocol's profile."""

    __slots__ = ()
    msg_timeout: Any
    secc_sequence: float
    scale: float

    def message_timeout(self, request: str) -> float:
        """``V2G_EVCC_Msg_Timeout`` for ``request`` (a body element name), scaled."""
        return float(self.msg_timeout.get(request, 2.0)) * self.scale

    def sequence_timeout(self) -> float:
        """``V2G_SECC_Sequence_Timeout``, scaled."""
        return self.secc_sequence * self.scale

    def get(self, name: str) -> float:
        """A named timer (an attribute of the profile), scaled."""
        return float(getattr(self, name)) * self.scale


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakeProfile(ScaledTiming):
    """The values the core needs before a protocol is agreed, common to DIN SPEC 70121 ([V2G-DC-432]
    sequence timer, Table 75/77), ISO 15118-2 (Tables 109/111) and -20: the SupportedAppProtocol
    message timeout 2 s, V2G_EVCC_CommunicationSetup_Timeout 20 s, V2G_SECC_Sequence_Timeout 60 s."""

    msg_timeout: Any = dataclasses.field(default_factory=lambda: {SAP_REQUEST: 2.0})
    communication_setup: float = 20.0
    secc_sequence: float = 60.0
    scale: float = 1.0


HANDSHAKE_TIMING = HandshakeProfile()
#: What sessions accept as ``timing``: one profile, several (one per protocol), or None.
TimingArg = Union[HandshakeTiming, Sequence[HandshakeTiming], None]


def given_profiles(timing: Any) -> tuple[Any, ...]:
    """The profiles of a ``timing`` argument, as a tuple (None: none)."""
    if timing is None:
        return ()
    if isinstance(timing, (list, tuple)):
        return tuple(timing)
    return (timing,)


def timing_for(own: Optional[Any], given: Sequence[Any], fallback: Any) -> Any:
    """The profile a protocol whose own tables are ``own`` runs on: the first of ``given`` of the
    same type (any given one when the protocol has no tables), else ``own``, else ``fallback``."""
    for profile in given:
        if own is None or isinstance(profile, type(own)):
            return profile
    return own if own is not None else fallback
