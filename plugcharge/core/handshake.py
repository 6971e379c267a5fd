"""The SupportedAppProtocol handshake: request and response dicts (namespace ``NS_APP``)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

__all__ = ["sap_req", "sap_res"]


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
