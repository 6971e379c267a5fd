"""The SupportedAppProtocol handshake: request and response dicts, the EV's offer, the charger's choice.

Every V2G communication session starts with it, whatever protocol follows (namespace ``NS_APP``):
the EV lists the protocols it speaks (namespace, major/minor version, a SchemaID it picks, its
Priority, 1 = most preferred); the charger answers with the SchemaID of the one it takes and
``OK_SuccessfulNegotiation`` (same minor version), ``OK_SuccessfulNegotiationWithMinorDeviation``
(another minor version of the same major) or ``Failed_NoNegotiation`` (none it speaks).

The charger's choice (:func:`negotiate`): among the EV's entries that name a protocol the charger
is configured for (same namespace and major version), the one with the EV's best Priority; the
charger's own order breaks ties.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

from .protocol import ProtocolSpec

__all__ = [
    "OK", "OK_MINOR_DEVIATION", "FAILED_NO_NEGOTIATION", "Agreement", "sap_req", "sap_res", "offer",
    "negotiate",
]

OK = "OK_SuccessfulNegotiation"
OK_MINOR_DEVIATION = "OK_SuccessfulNegotiationWithMinorDeviation"
FAILED_NO_NEGOTIATION = "Failed_NoNegotiation"
#: Priority of an entry that has none (the lowest the schema allows).
_NO_PRIORITY = 20


@dataclasses.dataclass(frozen=True)
class Agreement:
    """The charger's choice: the protocol, the EV's SchemaID for it and the response code."""

    spec: ProtocolSpec
    schema_id: int
    response_code: str


def sap_req(protocols: Sequence[tuple[str, int, int, int, int]]) -> dict[str, Any]:
    """supportedAppProtocolReq from ``(namespace, major, minor, schema id, priority)`` tuples."""
    return {"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": ns, "VersionNumberMajor": major, "VersionNumberMinor": minor,
         "SchemaID": sid, "Priority": prio} for ns, major, minor, sid, prio in protocols]}}


def sap_res(code: str, schema_id: Optional[int] = None) -> dict[str, Any]:
    """supportedAppProtocolRes."""
    res: dict[str, Any] = {"ResponseCode": code}
    if schema_id is not None:
        res["SchemaID"] = schema_id
    return {"supportedAppProtocolRes": res}


def offer(specs: Sequence[ProtocolSpec]) -> list[tuple[str, int, int, int, int]]:
    """The EV's AppProtocol entries for ``specs`` (most preferred first): SchemaID and Priority are
    the position, 1-based."""
    return [(s.namespace, s.version[0], s.version[1], i, i) for i, s in enumerate(specs, 1)]


def negotiate(entries: Any, candidates: Sequence[ProtocolSpec]) -> Optional[Agreement]:
    """The charger's choice among the EV's AppProtocol ``entries`` (decoded dicts) of the protocols it
    is configured for (``candidates``, its own order), or None: no common protocol.

    Entries whose SchemaID or Priority is not an integer are ignored; a malformed list (not a list of
    mappings) raises TypeError / AttributeError, which the session reports as a malformed request."""
    best: Optional[tuple[tuple[int, int], Mapping[str, Any], ProtocolSpec]] = None
    for entry in entries:
        if not (isinstance(entry.get("SchemaID"), int) and isinstance(entry.get("Priority", _NO_PRIORITY), int)):
            continue
        for rank, spec in enumerate(candidates):
            if entry.get("ProtocolNamespace") == spec.namespace and entry.get("VersionNumberMajor") == spec.version[0]:
                key = (entry.get("Priority", _NO_PRIORITY), rank)
                if best is None or key < best[0]:
                    best = (key, entry, spec)
                break
    if best is None:
        return None
    _, entry, spec = best
    code = OK if entry.get("VersionNumberMinor") == spec.version[1] else OK_MINOR_DEVIATION
    return Agreement(spec, entry["SchemaID"], code)
