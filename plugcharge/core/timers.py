"""The timers the session core runs for every protocol, by name, and what it needs of a timing profile.

Each protocol keeps its own tables (ISO 15118-2: :mod:`plugcharge.iso2.timing`); the core arms three
timers itself, under the names below, with values it asks the session's timing profile for:

* :data:`MSG` — ``V2G_EVCC_Msg_Timeout``: runs exactly while an EV request is outstanding;
* :data:`COMM_SETUP` — ``V2G_EVCC_CommunicationSetup_Timeout``: from StartSession until the
  session is set up;
* :data:`SEQUENCE` — ``V2G_SECC_Sequence_Timeout``: the charger's wait for the next request.

The standard timer names are the same in DIN SPEC 70121, ISO 15118-2 and -20.
"""
from __future__ import annotations

from typing import Protocol

__all__ = ["MSG", "COMM_SETUP", "SEQUENCE", "TIMER_NAMES", "SAP_REQUEST", "HandshakeTiming"]

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
