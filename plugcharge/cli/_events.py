"""Session events as one line of text or one JSON object (``plugcharge charger`` and ``ev``, ``--json``).

Text: the sentence the demo's view has for the event where it has one, else the event's name and
its fields.  JSON: ``{"event": name, field: value, ...}`` with bytes as upper-case hex (long byte
strings, e.g. an EXI request, only by their length), tuples as lists, enums by value; certificate
chains by their count (a certificate is public, but a line per certificate is noise).
"""
from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any, Callable, Optional

__all__ = ["event_fields", "event_json", "event_text"]

#: byte strings longer than this are shown by their length only
_MAX_BYTES = 32
#: fields shown by their count
_COUNTED = {"chain", "ocsp_data", "tariff_ids"}


def _value(name: str, v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        return b.hex().upper() if len(b) <= _MAX_BYTES else f"<{len(b)} bytes>"
    if isinstance(v, enum.Enum):
        return v.value
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _value(f.name, getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        if name in _COUNTED and v and isinstance(v[0], (bytes, dict)):
            return len(v)
        return [_value(name, x) for x in v]
    if isinstance(v, dict):
        return {str(k): _value(str(k), x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def event_fields(event: Any) -> dict[str, Any]:
    """The event's fields as JSON-ready values (see the module docstring)."""
    if not dataclasses.is_dataclass(event):
        return {}
    return {f.name: _value(f.name, getattr(event, f.name)) for f in dataclasses.fields(event)}


def event_json(event: Any, **extra: Any) -> str:
    """One JSON object: ``extra`` first, then ``"event"`` and the fields."""
    return json.dumps({**extra, "event": type(event).__name__, **event_fields(event)}, sort_keys=False,
                      separators=(", ", ": "))


def event_text(event: Any, describe: Optional[Callable[[Any, Callable[[str, str], None]], None]] = None) -> str:
    """One line for ``event``: what ``describe(event, line)`` says (the demo view's texts, joined),
    else ``Name: field=value, ...`` of the fields that are set."""
    said: list[str] = []
    if describe is not None:
        describe(event, lambda who, text: said.append(" ".join(text.split())))
    if said:
        return " / ".join(said)
    fields = ", ".join(f"{k}={v}" for k, v in event_fields(event).items() if v not in (None, "", [], ()))
    return f"{type(event).__name__}" + (f": {fields}" if fields else "")
