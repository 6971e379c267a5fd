"""The JSON shape of the ``iso15118`` package's EXICodec.jar where it differs from ours.

``exi.josev.JosevCodec`` speaks that jar's JSON (its JAXB classes marshalled by EclipseLink MOXy),
so that the package sees what the jar would give it. Found by probing the jar (the tests hold
the cases) and its binding classes; the native dicts of :mod:`exi` stay faithful to the stream:

- Children of mixed-content elements (xmldsig's ``SignatureMethod``, ``KeyInfo``, ``KeyValue``,
  ``Transform``, ``Object``, ``SignatureProperty``) are always lists: the jar holds such content
  in one ``List<Object>``, so ``"HMACOutputLength": [209]``, ``"RSAKeyValue": [{...}]``. It
  accepts a list or a single value on encoding.
- Text runs of mixed content are a list under ``"value"`` (the empty ones dropped), except in
  ``KeyInfo`` and ``Transform``, where the jar files them under their string-typed child
  (``MgmtData``, ``XPath``) in content order. On encoding a ``"value"`` list is one text.
- Content whose order the keyed dict cannot hold (mixed content, xmldsig's repeated choices
  ``KeyInfo`` and ``X509Data``): the jar's JSON groups each child under its key in order of first
  appearance (no ``"$order"``), and the jar writes a JSON object's children in its key order,
  each key's items together; the drop-in does the same (``"$order"`` from the key order).
- Zero defaults: four optional elements are primitive fields in the jar's classes, so its JSON
  carries ``0`` when the stream has none: ``supportedAppProtocolRes.SchemaID`` and, in ISO
  15118-2, ``MeteringReceiptReq.SAScheduleTupleID``, ``SalesTariff.NumEPriceLevels`` and
  ``SalesTariffEntry.EPriceLevel`` (the only optional primitive fields of its binding; ISO 15118-20
  and DIN have none). The jar also *writes* that 0 for such an absent element; the drop-in
  writes what the JSON says, and leaves out a default that is no valid value of its element
  (``SAScheduleTupleID`` 0, outside 1..255, which the jar writes as an untyped value), see README.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from exi._shape import _names

__all__ = ["JAR_ZERO_DEFAULTS", "JAR_TEXT_UNDER", "from_jar", "to_jar"]

ORDER = "$order"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
#: namespace of the message set -> {element key: (child key, the jar's default)}
JAR_ZERO_DEFAULTS: Dict[str, Dict[str, Tuple[str, int]]] = {  # (the 0 of SAScheduleTupleID is out of range)
    "urn:iso:15118:2:2010:AppProtocol": {"supportedAppProtocolRes": ("SchemaID", 0)},
    "urn:iso:15118:2:2013:MsgDef": {"MeteringReceiptReq": ("SAScheduleTupleID", 0),
                                    "SalesTariff": ("NumEPriceLevels", 0),
                                    "SalesTariffEntry": ("EPriceLevel", 0)},
}
#: mixed-content element -> the child whose list takes the text runs in the jar's JSON
JAR_TEXT_UNDER: Dict[str, str] = {"KeyInfo": "MgmtData", "Transform": "XPath"}


def _reach(states: tuple, sid: int) -> List[int]:
    """The states of one type grammar (not descending into children)."""
    seen: List[int] = []
    todo = [sid]
    done = set()
    while todo:
        s = todo.pop()
        if s < 0 or s in done:
            continue
        done.add(s)
        seen.append(s)
        for p in states[s][1]:
            todo.append(p[3])
    return seen


def _traits(states: tuple, sid: int, cache: Dict[Any, Any]) -> Tuple[bool, bool]:
    """(mixed content, order-sensitive) of the type grammar from ``sid``: mixed when a state has
    both CH and SE productions; order-sensitive when mixed or two different child keys can each
    follow the other (a repeated choice)."""
    key = ("jar", sid)
    got = cache.get(key)
    if got is not None:
        return got  # type: ignore[no-any-return]
    own = _reach(states, sid)
    mixed = any({p[0] for p in states[s][1]} >= {1, 3} for s in own)
    follows: Dict[str, set] = {}
    for s in own:
        for p in states[s][1]:
            if p[0] == 1:
                after = follows.setdefault(p[1], set())
                for t in _reach(states, p[3]):
                    after.update(q[1] for q in states[t][1] if q[0] == 1)
    cyclic = any(b != a and a in follows.get(b, ()) for a, bs in follows.items() for b in bs)
    got = (mixed, mixed or cyclic)
    cache[key] = got
    return got


def _content(d: Dict[str, Any], names: Dict[str, tuple]) -> Tuple[List[Tuple[str, Any]], List[Tuple[str, Any]]]:
    """(attributes and other keys, content) of a native-JSON element dict: the content as (key,
    item) pairs in stream order, texts as ("value", text)."""
    head: List[Tuple[str, Any]] = []
    kids: List[Tuple[str, Any]] = []
    texts: Any = None
    tpos = 0
    for k, v in d.items():
        if k == ORDER:
            continue
        p = names.get(k)
        if k == "value":
            texts = v
            tpos = len(kids)
        elif (p is not None and p[0] == 1) or k.startswith("{"):
            for item in (v if isinstance(v, list) else [v]):
                kids.append((k, item))
        else:
            head.append((k, v))
    order = d.get(ORDER)
    if isinstance(order, list):
        pools: Dict[str, List[Any]] = {}
        for k, item in kids:
            pools.setdefault(k, []).append(item)
        kids = [(k, pools[k].pop(0)) for k in order]
    if isinstance(texts, list):  # one text per gap: gap i before child i
        out: List[Tuple[str, Any]] = []
        for i, t in enumerate(texts):
            if t != "":
                out.append(("value", t))
            if i < len(kids):
                out.append(kids[i])
        kids = out
    elif texts is not None and texts != "":
        kids.insert(tpos, ("value", texts))
    return head, kids


def _to_jar_elem(key: str, d: Any, states: tuple, sid: int, cache: Dict[Any, Any], ns: str) -> Any:
    if not isinstance(d, dict):
        return d
    names = _names(states, sid, cache)
    out: Dict[str, Any] = {}
    mixed, sensitive = _traits(states, sid, cache)
    if not mixed and not sensitive and ORDER not in d:
        for k, v in d.items():
            p = names.get(k)
            if p is not None and p[0] == 1 and p[2] >= 0 and not p[5]:
                v = [_to_jar_elem(k, x, states, p[2], cache, ns) for x in v] if isinstance(v, list) \
                    else _to_jar_elem(k, v, states, p[2], cache, ns)
            out[k] = v
    else:
        head, kids = _content(d, names)
        out.update(head)
        under = JAR_TEXT_UNDER.get(key, "value")
        for k, item in kids:
            if k == "value":
                out.setdefault(under, []).append(item)
                continue
            p = names.get(k)
            if p is not None and p[2] >= 0 and not p[5]:
                item = _to_jar_elem(k, item, states, p[2], cache, ns)
            lst = out.setdefault(k, [])
            lst.append(item)
        if not mixed:  # a repeated choice: keys that never repeat stay single
            for k in list(out):
                p = names.get(k)
                if p is not None and p[0] == 1 and not p[4] and isinstance(out[k], list) and len(out[k]) == 1:
                    out[k] = out[k][0]
    dflt = JAR_ZERO_DEFAULTS.get(ns, {}).get(key)
    if dflt is not None and dflt[0] not in out:
        out[dflt[0]] = dflt[1]
    return out


#: (element key, child key) of the defaults that are no valid value (left out on encoding)
_INVALID_DEFAULTS = frozenset({("MeteringReceiptReq", "SAScheduleTupleID")})


def _from_jar_elem(key: str, d: Any, states: tuple, sid: int, cache: Dict[Any, Any]) -> Any:
    if not isinstance(d, dict):
        return d
    names = _names(states, sid, cache)
    mixed, sensitive = _traits(states, sid, cache)
    out: Dict[str, Any] = {}
    order: List[str] = []
    text: Optional[str] = None
    tpos = 0
    for k, v in d.items():
        p = names.get(k)
        if k == "value" and mixed:
            text = "".join(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v
            tpos = len(order)
            continue
        if p is not None and p[0] == 1:
            if mixed and not p[4] and isinstance(v, list):
                if len(v) != 1:
                    out[k] = v  # the encoder names the error
                    continue
                v = v[0]
            if p[2] >= 0 and not p[5]:
                v = [_from_jar_elem(k, x, states, p[2], cache) for x in v] if isinstance(v, list) \
                    else _from_jar_elem(k, v, states, p[2], cache)
            elif v == 0 and (key, k) in _INVALID_DEFAULTS:
                continue
            order.extend([k] * (len(v) if isinstance(v, list) else 1))
        out[k] = v
    if sensitive and ORDER not in d and (len(set(order)) > 1 or (text is not None and order)):
        out[ORDER] = order
        if text is not None:
            gaps = [""] * (len(order) + 1)
            gaps[tpos] = text  # type: ignore[call-overload]
            out["value"] = gaps
    elif text is not None:
        out["value"] = text
    return out


def _walk_roots(codec: Any, message: Dict[str, Any], fragment: bool, fn: Any) -> Dict[str, Any]:
    t = codec._tables
    start, keys = (t.FRAG_STATE, t.FRAG_KEYS) if fragment else (t.DOC_STATE, t.DOC_KEYS)
    prods = t.STATES[start][1]
    cache = codec._shape_cache
    out = {}
    for k, v in message.items():
        code = keys.get(k)
        if code is None or prods[code][2] < 0 or prods[code][5]:
            out[k] = v
            continue
        out[k] = fn(k, v, t.STATES, prods[code][2], cache)
    return out


def to_jar(codec: Any, message: Dict[str, Any], fragment: bool = False) -> Dict[str, Any]:
    """Our JSON shape (``exi._shape.to_json``) -> the jar's JSON shape."""
    ns = codec.namespace
    return _walk_roots(codec, message, fragment, lambda k, v, st, sid, c: _to_jar_elem(k, v, st, sid, c, ns))


def from_jar(codec: Any, message: Dict[str, Any], fragment: bool = False) -> Dict[str, Any]:
    """The jar's JSON shape -> ours (before ``exi._shape.from_json``)."""
    return _walk_roots(codec, message, fragment, lambda k, v, st, sid, c: _from_jar_elem(k, v, st, sid, c))
