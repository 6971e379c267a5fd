"""XML view of the codec's messages (``python -m exi decode --xml``, ``encode`` of XML).

``to_xml`` renders a message in the JSON shape (exi._shape.to_json) as XML in which every element
and attribute is in its own namespace, as the schema declares it (ISO-2's ``SessionID`` in
MsgHeader, ``Signature`` in xmldsig, ISO-2 and ISO-20 attributes qualified), with one prefix per
namespace declared on the root, so that the text validates against the XSDs. ``from_xml`` reads
such XML (any prefixes) back into the JSON shape. Both walk the grammar tables (each AT and SE
production carries its qname's URI); undeclared and wildcard elements are ``"{uri}local"``
keys, text in mixed content is ``"value"`` (one text per gap between the children where there
are several), children out of the keyed dict's order get ``"$order"``, as in the dicts.
Whitespace-only text between elements is layout: dropped on reading.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape, quoteattr

from exi._shape import _names, _xsi_type
from exi.errors import EncodeError

__all__ = ["from_xml", "to_xml"]

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_NS = "http://www.w3.org/XML/1998/namespace"
ORDER = "$order"
_T_NBIT, _T_UINT, _T_INT, _T_BOOL, _T_ENUM, _T_STRING, _T_HEX, _T_B64, _T_DECIMAL, _T_FLOAT, _T_DATETIME, _T_LIST = range(12)
_ANY = ("http://www.w3.org/2001/XMLSchema", "anyType")


class _Node:
    __slots__ = ("uri", "local", "attrs", "kids")

    def __init__(self, uri: str, local: str) -> None:
        self.uri = uri
        self.local = local
        self.attrs: List[Tuple[str, str, str]] = []  # (uri, local, text); xsi:type text as ("\0uri", local)
        self.kids: List[Any] = []  # _Node or str


def _split(text: str) -> Tuple[str, str]:
    if text.startswith("{") and "}" in text:
        uri, _, local = text[1:].partition("}")
        return uri, local
    return "", text


def _lex(dt: Any, v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        item = dt[1] if dt is not None and dt[0] == _T_LIST else None
        return " ".join(_lex(item, x) for x in v)
    if isinstance(v, float):
        return "NaN" if v != v else "INF" if v == float("inf") else "-INF" if v == float("-inf") else repr(v)
    return str(v)


class _Tables:
    def __init__(self, codec: Any) -> None:
        t = codec._tables
        self.states = t.STATES
        self.uris = t.STRING_TABLE[0]
        self.xsi = t.XSI_TYPES
        self.globals = t.GLOBAL_ELEMENTS
        self.cache: Dict[Any, Any] = codec._shape_cache

    def uri(self, p: tuple) -> str:
        return self.uris[p[6]] if len(p) > 6 else ""


# ---------------------------------------------------------------------------------- dict -> XML
def _elem(tb: _Tables, uri: str, local: str, v: Any, sid: int, direct: bool) -> _Node:
    node = _Node(uri, local)
    if isinstance(v, dict) and "xsi:type" in v:
        got = _xsi_type(tb.xsi, v["xsi:type"])
        if got is not None:
            sid, direct = got
            tu, tl = _split(v["xsi:type"]) if str(v["xsi:type"]).startswith("{") else \
                next(((u, n) for (u, n) in tb.xsi if n == v["xsi:type"]), ("", str(v["xsi:type"])))
            node.attrs.append((XSI, "type", "\0" + tu + "\0" + tl))
    if not isinstance(v, dict):
        dt = tb.states[sid][1][0][2] if direct else None
        node.kids.append(_lex(dt, v))
        return node
    names = _names(tb.states, sid, tb.cache) if not direct else {}
    kids: List[Tuple[str, Any]] = []
    text: Any = None
    for k, x in v.items():
        if k in ("xsi:type", ORDER):
            continue
        if k == "xsi:nil":
            node.attrs.append((XSI, "nil", "true" if x else "false"))
        elif k.startswith("@"):
            au, al = _split(k[1:])
            node.attrs.append((au, al, str(x)))
        elif k == "value":
            if direct and not isinstance(x, list):
                x = _lex(tb.states[sid][1][0][2], x)
            elif not direct and k in names and not isinstance(x, list):
                x = _lex(names[k][2], x)
            text = x
            kids.append(("value", None))
        elif k.startswith("{"):
            for item in x:
                kids.append((k, item))
        else:
            p = names.get(k)
            if p is None:
                raise EncodeError(k, "unknown", "not an element or attribute of this type")
            if p[0] == 0:
                au, al = tb.uri(p), _split(k)[1]
                node.attrs.append((au, al, _lex(p[2], x)))
                continue
            for item in (x if isinstance(x, list) and p[4] else [x]):
                kids.append((k, item))
    order = v.get(ORDER)
    if isinstance(order, list):
        pools: Dict[str, List[Any]] = {}
        for k, item in kids:
            if k != "value":
                pools.setdefault(k, []).append(item)
        kids = [(k, pools[k].pop(0)) for k in order] + ([("value", None)] if text is not None and not isinstance(text, list) else [])
    if isinstance(text, list):  # one text per gap between the children
        elems = [kv for kv in kids if kv[0] != "value"]
        seq: List[Any] = []
        for i, g in enumerate(text):
            if g != "":
                seq.append(_lex(None, g))
            if i < len(elems):
                seq.append(elems[i])
        kids = seq
    for kv in kids:
        if isinstance(kv, str):
            node.kids.append(kv)
            continue
        k, item = kv
        if k == "value":
            if text is not None and not isinstance(text, list):
                node.kids.append(str(text))
        elif k.startswith("{"):
            node.kids.append(_wild(tb, k, item))
        else:
            p = names[k]
            node.kids.append(_elem(tb, tb.uri(p), _split(k)[1], item, p[2], p[5]))
    return node


def _wild(tb: _Tables, key: str, item: Any) -> _Node:
    uri, local = _split(key)
    g = tb.globals.get((uri, local))
    if g is not None:
        return _elem(tb, uri, local, item, g[0], g[1])
    ent = tb.xsi.get(_ANY)
    if isinstance(item, dict) and "xsi:type" in item:
        return _elem(tb, uri, local, item, ent[0], ent[1])
    return _elem(tb, uri, local, item, ent[0], False)


def to_xml(codec: Any, message: Dict[str, Any], fragment: bool = False) -> str:
    """A message in the JSON shape as XML text, each element in its schema namespace."""
    tb = _Tables(codec)
    t = codec._tables
    start, keys = (t.FRAG_STATE, t.FRAG_KEYS) if fragment else (t.DOC_STATE, t.DOC_KEYS)
    prods = t.STATES[start][1]
    roots: List[_Node] = []
    for k, v in message.items():
        code = keys.get(k)
        if code is None:
            for item in (v if isinstance(v, list) else [v]):
                roots.append(_wild(tb, k, item))
            continue
        p = prods[code]
        roots.append(_elem(tb, tb.uri(p), k, v, p[2], p[5]))
    prefixes: Dict[str, str] = {}

    def collect(n: _Node) -> None:
        for u in [n.uri] + [a[0] for a in n.attrs] + [a[2].split("\0")[1] for a in n.attrs if a[2].startswith("\0")]:
            if u and u != XML_NS and u not in prefixes:
                prefixes[u] = "xsi" if u == XSI else f"ns{sum(1 for x in prefixes if x != XSI)}"
        for c in n.kids:
            if isinstance(c, _Node):
                collect(c)

    for r in roots:
        collect(r)
    out: List[str] = ['<?xml version="1.0" encoding="UTF-8"?>']

    def qn(uri: str, local: str) -> str:
        if not uri:
            return local
        return f"xml:{local}" if uri == XML_NS else f"{prefixes[uri]}:{local}"

    def emit(n: _Node, depth: int, decls: str) -> None:
        pad = "  " * depth
        attrs = "".join(f" {qn(u, l)}={quoteattr(_attr_text(x))}" for u, l, x in n.attrs)
        name = qn(n.uri, n.local)
        unqualified_default = ""
        if not n.kids:
            out.append(f"{pad}<{name}{decls}{unqualified_default}{attrs}/>")
        elif all(isinstance(c, str) for c in n.kids):
            out.append(f"{pad}<{name}{decls}{attrs}>{escape(''.join(n.kids))}</{name}>")
        elif any(isinstance(c, str) for c in n.kids):  # mixed: no layout inside
            buf: List[str] = []
            inline(n, buf, decls)
            out.append(pad + "".join(buf))
        else:
            out.append(f"{pad}<{name}{decls}{attrs}>")
            for c in n.kids:
                emit(c, depth + 1, "")
            out.append(f"{pad}</{name}>")

    def _attr_text(x: str) -> str:
        if x.startswith("\0"):
            _e, u, l = x.split("\0")
            return qn(u, l)
        return x

    def inline(n: _Node, buf: List[str], decls: str = "") -> None:
        attrs = "".join(f" {qn(u, l)}={quoteattr(_attr_text(x))}" for u, l, x in n.attrs)
        name = qn(n.uri, n.local)
        buf.append(f"<{name}{decls}{attrs}>")
        for c in n.kids:
            if isinstance(c, str):
                buf.append(escape(c))
            else:
                inline(c, buf)
        buf.append(f"</{name}>")

    decls = "".join(f" xmlns:{p}={quoteattr(u)}" for u, p in prefixes.items())
    for r in roots:
        emit(r, 0, decls)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------- XML -> dict
def _typed(dt: Any, text: str, path: str) -> Any:
    kind = dt[0]
    t = text.strip()
    try:
        if kind in (_T_NBIT, _T_UINT, _T_INT):
            return int(t)
        if kind == _T_BOOL:
            if t in ("true", "1"):
                return True
            if t in ("false", "0"):
                return False
            raise ValueError(t)
        if kind == _T_ENUM:
            return int(t) if dt[1] and isinstance(dt[1][0], int) else text
        if kind == _T_HEX:
            return "".join(t.split()).upper()
        if kind == _T_B64:
            return "".join(t.split())
        if kind in (_T_DECIMAL, _T_DATETIME):
            return t
        if kind == _T_FLOAT:
            return {"INF": float("inf"), "-INF": float("-inf"), "NaN": float("nan")}.get(t) or float(t)
        if kind == _T_LIST:
            return [_typed(dt[1], x, path) for x in t.split()]
    except ValueError:
        raise EncodeError(path, "type", f"{text!r} is not a valid value here") from None
    return text


def _qname_value(text: str, nsmap: Dict[str, str]) -> str:
    prefix, _, local = text.strip().rpartition(":")
    uri = nsmap.get(prefix, "") if prefix or "" in nsmap else ""
    return "{%s}%s" % (uri, local) if uri else local


def _read(tb: _Tables, e: Any, sid: int, direct: bool, path: str, nsmaps: Dict[int, Dict[str, str]]) -> Any:
    d: Dict[str, Any] = {}
    nsmap = nsmaps.get(id(e), {})
    t = e.attrib.get("{%s}type" % XSI)
    if t is not None:
        d["xsi:type"] = _qname_value(t, nsmap)
        got = _xsi_type(tb.xsi, d["xsi:type"])
        if got is None:
            raise EncodeError(path, "unknown", f"xsi:type {t!r} names no type of this schema set")
        sid, direct = got
    names = _names(tb.states, sid, tb.cache) if not direct else {}
    for an, av in e.attrib.items():
        au, al = _split(an)
        if au == XSI and al == "type":
            continue
        if au == XSI and al == "nil":
            d["xsi:nil"] = av.strip() in ("true", "1")
            continue
        p = names.get(al)
        if p is None:
            p = names.get("{%s}%s" % (au, al))
        if p is not None and p[0] == 0 and tb.uri(p) == au:
            d[_key(p, al)] = _typed(p[2], av, f"{path}.{al}")
        else:
            d["@" + ("{%s}%s" % (au, al) if au else al)] = av
    kids = list(e)
    if direct:
        dt = tb.states[sid][1][0][2]
        if not kids:
            v = _typed(dt, e.text or "", path)
            return v if not d else dict(d, value=v)
    seq: List[Tuple[str, Any]] = []  # ("text", str) or (key, value)
    if e.text and e.text.strip():
        seq.append(("text", e.text))
    for c in kids:
        cu, cl = _split(c.tag)
        p = names.get(cl)
        if p is not None and p[0] == 1 and tb.uri(p) == cu:
            seq.append((cl, _read(tb, c, p[2], p[5], f"{path}.{cl}", nsmaps)))
        else:
            key = "{%s}%s" % (cu, cl)
            g = tb.globals.get((cu, cl))
            if g is not None:
                seq.append((key, _read(tb, c, g[0], g[1], f"{path}.{key}", nsmaps)))
            else:
                any_t = tb.xsi[_ANY]
                seq.append((key, _read(tb, c, any_t[0], False, f"{path}.{key}", nsmaps)))
        if c.tail and c.tail.strip():
            seq.append(("text", c.tail))
    ch = names.get("value")
    simple = ch is not None and ch[0] == 3 and not any(k != "text" for k, _ in seq) and not direct
    texts = [x for k, x in seq if k == "text"]
    if simple:
        assert ch is not None
        d["value"] = _typed(ch[2], "".join(texts), path)
        return d
    if direct:  # a simple value among undeclared elements: one text per gap
        pass
    order: List[str] = []
    gaps: List[str] = [""]
    for k, x in seq:
        if k == "text":
            gaps[-1] += x
            continue
        order.append(k)
        gaps.append("")
        p = names.get(k)
        if k.startswith("{") or (p is not None and p[4]):
            d.setdefault(k, []).append(x)
        else:
            if k in d:
                raise EncodeError(f"{path}.{k}", "occurs", "occurs again where the schema allows one")
            d[k] = x
    if any(gaps):
        if direct:
            gaps = [g if i else g for i, g in enumerate(gaps)]
        d["value"] = gaps if len(gaps) > 1 else gaps[0]
    contiguous = all(order[i] == order[i - 1] or order[i] not in order[:i] for i in range(1, len(order)))
    if not contiguous:
        d[ORDER] = order
    return d


def _key(p: tuple, local: str) -> str:
    return p[1]


def from_xml(codec: Any, text: str, fragment: bool = False) -> Dict[str, Any]:
    """XML text of a message (any prefixes) -> the JSON shape (for exi._shape.from_json).

    Raises :class:`exi.EncodeError` for XML that is not well-formed, has a DOCTYPE (no entity
    is ever expanded), or does not fit the schema set."""
    import io

    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise EncodeError("", "type", "XML with a DOCTYPE or entity declarations is not accepted")
    nsmaps: Dict[int, Dict[str, str]] = {}
    pending: Dict[str, str] = {}
    scope: List[Dict[str, str]] = [{}]
    root = None
    try:
        for ev, obj in ET.iterparse(io.StringIO(text), events=("start-ns", "start", "end")):
            if ev == "start-ns":
                pending[obj[0]] = obj[1]
            elif ev == "start":
                cur = dict(scope[-1])
                cur.update(pending)
                pending = {}
                scope.append(cur)
                nsmaps[id(obj)] = cur
                if root is None:
                    root = obj
            else:
                scope.pop()
    except ET.ParseError as exc:
        raise EncodeError("", "type", f"not well-formed XML: {exc}") from None
    if root is None:
        raise EncodeError("", "type", "no XML element")
    tb = _Tables(codec)
    t = codec._tables
    start, keys = (t.FRAG_STATE, t.FRAG_KEYS) if fragment else (t.DOC_STATE, t.DOC_KEYS)
    prods = t.STATES[start][1]
    ru, rl = _split(root.tag)
    code = keys.get(rl)
    if code is not None and tb.uri(prods[code]) == ru:
        p = prods[code]
        return {rl: _read(tb, root, p[2], p[5], rl, nsmaps)}
    key = "{%s}%s" % (ru, rl)
    g = tb.globals.get((ru, rl))
    ent = g if g is not None else (tb.xsi[_ANY][0], False)
    return {key: [_read(tb, root, ent[0], ent[1], key, nsmaps)]}
