"""Conversion between the codec's native dicts (binary as ``bytes``) and the JSON shape of the
vectors / EXIficient (hexBinary as uppercase hex, base64Binary as standard base64).

Used by the JSON-speaking front ends (CLI, JosevCodec) and by tests; walks the same grammar tables.
"""
from __future__ import annotations

import base64
import binascii
import decimal
from typing import Any, Callable, Dict, Tuple

from exi.errors import DecodeError, EncodeError

__all__ = ["from_json", "to_json"]

_T_HEX = 6
_T_B64 = 7
_T_DECIMAL = 8


def _names(states: tuple, sid: int, cache: Dict[int, Dict[str, tuple]]) -> Dict[str, tuple]:
    got = cache.get(sid)
    if got is not None:
        return got
    names: Dict[str, tuple] = {}
    seen = set()
    todo = [sid]
    while todo:
        s = todo.pop()
        if s in seen or s < 0:
            continue
        seen.add(s)
        for p in states[s][1]:
            if p[0] in (0, 1, 3):
                names.setdefault(p[1], p)
            todo.append(p[3])
    cache[sid] = names
    return names


def _xsi_type(xsi: Dict[Tuple[str, str], Tuple[int, bool]], name: Any) -> Any:
    """(start state, simple) of the type an xsi:type value names, None if unknown."""
    if not isinstance(name, str):
        return None
    if name.startswith("{") and "}" in name:
        uri, _, local = name[1:].partition("}")
        return xsi.get((uri, local))
    found = [v for (u, n), v in xsi.items() if n == name]
    return found[0] if len(found) == 1 else None


def _walk(states: tuple, sid: int, direct: bool, value: Any, conv: Callable[[tuple, Any, str], Any],
          cache: Dict[int, Dict[str, tuple]], path: str, ctx: Tuple[Dict[Tuple[str, str], Tuple[int, bool]], ...]) -> Any:
    if isinstance(value, dict) and "xsi:type" in value:
        # the content follows the named type's grammar (simple or complex)
        got = _xsi_type(ctx[0], value["xsi:type"])
        if got is not None:
            sid, direct = got
    if direct:
        if isinstance(value, dict):  # xsi:type, xsi:nil or undeclared attributes beside "value"
            return {k: conv(states[sid][1][0][2], x, f"{path}.value") if k == "value" else x for k, x in value.items()}
        return conv(states[sid][1][0][2], value, path)
    if not isinstance(value, dict):
        return value
    names = _names(states, sid, cache)
    out = {}
    for k, x in value.items():
        p = names.get(k)
        sub = f"{path}.{k}"
        if p is None:
            if isinstance(k, str) and k.startswith("{") and "}" in k and isinstance(x, list):
                # an undeclared or wildcard element: a global element's grammar, else xs:anyType's
                uri, _, local = k[1:].partition("}")
                g = ctx[1].get((uri, local)) or ctx[0].get(("http://www.w3.org/2001/XMLSchema", "anyType"))
                if g is not None:
                    out[k] = [_walk(states, g[0], g[1], y, conv, cache, sub, ctx) for y in x]
                    continue
            out[k] = x
            continue
        if p[0] == 1:
            def f(y: Any, p: tuple = p, sub: str = sub) -> Any:
                return _walk(states, p[2], p[5], y, conv, cache, sub, ctx)
        else:
            def f(y: Any, p: tuple = p, sub: str = sub) -> Any:
                return conv(p[2], y, sub)
        out[k] = [f(y) for y in x] if isinstance(x, list) else f(x)
    return out


def _entry(codec: Any, message: Dict[str, Any], fragment: bool) -> Tuple[tuple, Any]:
    t = codec._tables
    start, keys = (t.FRAG_STATE, t.FRAG_KEYS) if fragment else (t.DOC_STATE, t.DOC_KEYS)
    return t.STATES, (t.STATES[start][1], keys)


def _convert(codec: Any, message: Dict[str, Any], fragment: bool, conv: Callable[[tuple, Any, str], Any]) -> Dict[str, Any]:
    states, (prods, keys) = _entry(codec, message, fragment)
    cache: Dict[int, Dict[str, tuple]] = codec._shape_cache
    out = {}
    for k, v in message.items():
        code = keys.get(k)
        if code is None or prods[code][2] < 0:
            out[k] = v
            continue
        p = prods[code]
        out[k] = _walk(states, p[2], p[5], v, conv, cache, k, (codec._tables.XSI_TYPES, codec._tables.GLOBAL_ELEMENTS))
    return out


def _to_bytes(dt: tuple, y: Any, path: str) -> Any:
    if not isinstance(y, str):
        return y
    if dt[0] == _T_DECIMAL:  # JSON has no exact decimal: it travels as text
        try:
            return decimal.Decimal(y)
        except decimal.InvalidOperation:
            raise EncodeError(path, "type", f"not a decimal: {y!r}") from None
    try:
        if dt[0] == _T_HEX:
            return bytes.fromhex(y)
        if dt[0] == _T_B64:
            return base64.b64decode(y, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise EncodeError(path, "type", f"not valid {'hex' if dt[0] == _T_HEX else 'base64'}: {exc}") from None
    return y


def _to_text(dt: tuple, y: Any, path: str) -> Any:
    if isinstance(y, decimal.Decimal):
        return str(y)
    if isinstance(y, (bytes, bytearray)):
        if dt[0] == _T_HEX:
            return bytes(y).hex().upper()
        if dt[0] == _T_B64:
            return base64.b64encode(bytes(y)).decode("ascii")
    return y


def from_json(codec: Any, message: Dict[str, Any], fragment: bool = False) -> Dict[str, Any]:
    """JSON shape (hex / base64 strings) -> native shape (bytes), following the codec's grammar."""
    if not isinstance(message, dict):
        raise EncodeError("", "type", "expected a dict")
    return _convert(codec, message, fragment, _to_bytes)


def to_json(codec: Any, message: Dict[str, Any], fragment: bool = False) -> Dict[str, Any]:
    """Native shape (bytes) -> JSON shape (uppercase hex for hexBinary, base64 for base64Binary)."""
    if not isinstance(message, dict):
        raise DecodeError(0, "a dict", "not a decoded message")
    return _convert(codec, message, fragment, _to_text)
