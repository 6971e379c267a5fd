"""Transition tables as data: their types, the handshake states every protocol starts from, the checks.

A protocol describes each side's message sequence as one table (h11 style):

* EV (:data:`EVTable`): ``state -> (response awaited, allowed next states)``; the EV is in a
  ``WAIT_X`` state while request X is outstanding.
* Charger (:data:`ChargerTable`): ``state -> {request: allowed next states}``.

Both tables start at :attr:`CoreState.WAIT_SAP`, the SupportedAppProtocol handshake the session core
runs for every protocol, and may go to :attr:`CoreState.ENDED` from anywhere.  The core consults the
charger's table before a request reaches its handler (a miss is a sequence error) and checks every
transition a handler makes against it afterwards (a miss is a bug: ``AssertionError``).  An EV may
always leave with the protocol's stop request once the session is set up (``stop_state``): giving
up cleanly is one rule here, not a row in every protocol's table.
"""
from __future__ import annotations

import enum
from typing import Any, Mapping, Optional

__all__ = ["CoreState", "EVTable", "ChargerTable", "check_ev_transition", "check_charger_transition"]


class CoreState(str, enum.Enum):
    """The states of a session before and after its protocol's own."""

    #: EV: created, StartSession not sent yet.
    IDLE = "IDLE"
    #: EV: supportedAppProtocolReq sent; charger: waiting for it.
    WAIT_SAP = "WAIT_SAP"
    #: The communication session is over (either side, any protocol).
    ENDED = "ENDED"


#: state -> (response body awaited, allowed next states).
EVTable = Mapping[Any, tuple[str, frozenset[Any]]]
#: state -> {request body: allowed next states}.
ChargerTable = Mapping[Any, Mapping[str, frozenset[Any]]]


def check_ev_transition(table: EVTable, state: Any, new: Any, *, stop_state: Optional[Any] = None) -> None:
    """Raise AssertionError unless ``table`` allows ``state -> new``.

    ENDED is always allowed; ``stop_state`` (the state awaiting the stop response) is allowed from
    every state of the protocol itself (not from the handshake)."""
    if new is CoreState.ENDED:
        return
    if new is stop_state and stop_state is not None and not isinstance(state, CoreState):
        return
    entry = table.get(state)
    if entry is None or new not in entry[1]:
        raise AssertionError(f"EV transition {state.value} -> {new.value} is not in the table")


def check_charger_transition(table: ChargerTable, state: Any, request: str, new: Any) -> None:
    """Raise AssertionError unless ``table`` allows ``state --request--> new`` (ENDED always is)."""
    if new is CoreState.ENDED:
        return
    allowed = table.get(state, {}).get(request)
    if allowed is None or new not in allowed:
        raise AssertionError(f"charger transition {state.value} --{request}--> {new.value} is not in the table")
