"""Random schema-valid V2G messages, straight from the XSDs (test/dev helper).

The generator reads the XSDs with ``xmlschema`` and never looks at the codec's compiled
tables, so that a differential test built on it (our codec vs EXIficient) checks the schema
compiler as well as the engine. It produces messages in the JSON shape of
``../shared/vectors`` (see ``vectors/README.md``): element and attribute names nested as in the
XML, simple content beside attributes under ``"value"``, lists for elements whose ``maxOccurs``
exceeds 1, only present optionals listed.

Binary values come out as :class:`HexBytes` / :class:`B64Bytes` (``bytes`` subclasses that
remember their XSD type); :func:`to_json_shape` turns them into the uppercase-hex / base64
strings the EXIficient oracle consumes and :func:`to_bytes_shape` into plain ``bytes`` for our
codec.

Everything is driven by a caller-supplied ``random.Random``, so a seed reproduces a message.
Wildcards (``xs:any``) and repeated model groups (only in rarely used xmldsig content such as
``KeyInfo`` or ``SignatureProperty``) are never generated: elements that would need them are
left out when optional and reported as not generatable otherwise.
"""
from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

try:  # xmlschema is only needed to generate; the shape helpers below work without it
    import xmlschema
    from xmlschema.validators import XsdAnyElement, XsdElement, XsdGroup
except ImportError:  # pragma: no cover - depends on the environment
    xmlschema = None  # type: ignore[assignment]
    XsdAnyElement = XsdElement = XsdGroup = None  # type: ignore[assignment,misc]

XS = "{http://www.w3.org/2001/XMLSchema}"
XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


class HexBytes(bytes):
    """Bytes of an ``xs:hexBinary`` value."""


class B64Bytes(bytes):
    """Bytes of an ``xs:base64Binary`` value."""


class NotGeneratable(Exception):
    """The requested element needs content this generator does not produce (wildcards)."""


@dataclass(frozen=True)
class SchemaSet:
    """One EXI schema set: the namespace the codec is asked for and the XSD that roots it."""

    name: str
    namespace: str
    xsd: str  # relative to the schemas dir
    kind: str  # "v2g" (V2G_Message + Body substitution group), "flat" (global elements) or "xmldsig"


SCHEMA_SETS: dict[str, SchemaSet] = {
    s.name: s
    for s in (
        SchemaSet("apphand", "urn:iso:15118:2:2010:AppProtocol", "app_handshake/V2G_CI_AppProtocol.xsd", "flat"),
        SchemaSet("din", "urn:din:70121:2012:MsgDef", "din70121/V2G_CI_MsgDef.xsd", "v2g"),
        SchemaSet("iso2", "urn:iso:15118:2:2013:MsgDef", "iso15118_2/V2G_CI_MsgDef.xsd", "v2g"),
        SchemaSet("iso20-common", "urn:iso:std:iso:15118:-20:CommonMessages", "iso15118_20/V2G_CI_CommonMessages.xsd", "flat"),
        SchemaSet("iso20-ac", "urn:iso:std:iso:15118:-20:AC", "iso15118_20/V2G_CI_AC.xsd", "flat"),
        SchemaSet("iso20-dc", "urn:iso:std:iso:15118:-20:DC", "iso15118_20/V2G_CI_DC.xsd", "flat"),
        SchemaSet("iso20-wpt", "urn:iso:std:iso:15118:-20:WPT", "iso15118_20/V2G_CI_WPT.xsd", "flat"),
        SchemaSet("iso20-acdp", "urn:iso:std:iso:15118:-20:ACDP", "iso15118_20/V2G_CI_ACDP.xsd", "flat"),
        SchemaSet("xmldsig", XMLDSIG_NS, "xmldsig-core-schema.xsd", "xmldsig"),
    )
}
NAMESPACE_TO_SET = {s.namespace: s.name for s in SCHEMA_SETS.values()}

# Elements whose full-schema fragment encoding ISO 15118-2 signs (vectors/README.md).
ISO2_FRAGMENT_ELEMENTS = (
    "AuthorizationReq", "MeteringReceiptReq", "CertificateInstallationReq", "CertificateUpdateReq",
    "ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID",
    "SalesTariff",
)

# Builtin integer ranges (inclusive); None = unbounded.
_INT_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "byte": (-(2**7), 2**7 - 1), "short": (-(2**15), 2**15 - 1), "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1), "unsignedByte": (0, 2**8 - 1), "unsignedShort": (0, 2**16 - 1),
    "unsignedInt": (0, 2**32 - 1), "unsignedLong": (0, 2**64 - 1), "integer": (None, None),
    "nonNegativeInteger": (0, None), "positiveInteger": (1, None), "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
}
_ASCII = string.ascii_letters + string.digits + " -_.:/#@+=,;()[]!?*'\"&<>"
_NONASCII = "\u00e9\u00fc\u00df\u20ac\u6f22\u5b57\u0416\u03a9\u00a0\U0001f600\U00010348"
_NCSTART = string.ascii_letters + "_"
_NCCHARS = string.ascii_letters + string.digits + "_-."


def _builtin(t: Any) -> str:
    """Local name of the nearest XSD builtin type a simple type derives from."""
    b = t
    while b is not None and not (b.name and b.name.startswith(XS)):
        b = b.base_type
    return b.local_name if b is not None else "string"


@dataclass
class GenOptions:
    """Knobs: ``mode`` is "random", "max" (every optional, arrays at maxOccurs) or "min"."""

    mode: str = "random"
    p_optional: float = 0.5
    unicode: bool = True
    unbounded_cap: int = 4  # occurrences for maxOccurs="unbounded"
    string_cap: int = 80  # characters for strings without maxLength
    binary_cap: int = 300  # bytes for binaries without maxLength
    budget: int = 4000  # element nodes per message; past it arrays shrink to minOccurs
    force_attrs: frozenset[str] = frozenset()  # optional attributes always generated (e.g. URI)
    omit: frozenset[str] = frozenset()  # optional elements never generated (e.g. Signature)
    allow_empty: bool = False  # empty strings/binaries (EXIficient encodes those as an EE deviation)
    # second-level events: the chance that an element carries xsi:type (its own named type or a
    # named type derived from it) and undeclared attributes ("@name" keys)
    p_xsi_type: float = 0.0
    p_undeclared: float = 0.0
    # undeclared elements ("{uri}local" keys, at a random place among an element's children) and
    # foreign elements in the optional xs:any positions of xmldsig
    p_undeclared_elements: float = 0.0
    p_wild: float = 0.0
    # text in element-only and empty content (second-level CH [untyped value]), as in mixed content
    p_text: float = 0.0
    # the chance that a string value repeats one generated before in the message (of the same
    # kind and fitting its length): value-table hits where the encoder keeps value partitions
    p_repeat: float = 0.0
    # xmldsig in full: optional children of mixed content (HMACOutputLength, RSAKeyValue, XPath)
    # and repeated groups (KeyInfo's and X509Data's repeated choices), each key a list
    full_xmldsig: bool = False


class _Run:
    def __init__(self, gen: "MessageGenerator", rng: random.Random, opts: GenOptions) -> None:
        self.gen, self.rng, self.opts, self.nodes = gen, rng, opts, 0
        self.mixed = False
        self.strings: dict[str, list[str]] = {}  # kind -> the strings generated so far (p_repeat)

    # -- particles -------------------------------------------------------------------------
    def count(self, lo: int, hi: int | None) -> int:
        o = self.opts
        if self.nodes > o.budget:
            return lo
        top = hi if hi is not None else max(lo, o.unbounded_cap)
        if o.mode == "max":
            return top
        if o.mode == "min":
            return lo
        if lo == top:
            return lo
        if lo == 0 and top == 1:
            return 1 if self.rng.random() < o.p_optional else 0
        r = self.rng.random()
        if r < 0.1:
            return top
        if r < 0.25:
            return lo
        return self.rng.randint(lo, min(top, lo + 3))

    def element(self, el: XsdElement) -> tuple[str, Any]:
        """Pick the concrete element (substitution group) and build its value."""
        cands = [e for e in self.gen.substitutes(el) if self.gen.generatable(e, rep=self.opts.full_xmldsig)]
        if not cands:
            raise NotGeneratable(el.name)
        chosen = self.rng.choice(cands)
        self.nodes += 1
        return chosen.local_name, self.value_of(chosen)

    def value_of(self, el: XsdElement) -> Any:
        t = el.type
        typed: dict[str, Any] = {}
        if self.opts.p_xsi_type and self.rng.random() < self.opts.p_xsi_type:
            cands = self.gen.xsi_types(el)
            if cands:
                t = self.rng.choice(cands)
                typed["xsi:type"] = t.name
        if self.opts.p_undeclared and self.rng.random() < self.opts.p_undeclared:
            declared = set() if t.is_simple() else {a.local_name for a in t.attributes.values()}
            for name in self.rng.sample(UNDECLARED_ATTRIBUTES, self.rng.randint(1, 3)):
                if name.rpartition("}")[2] not in declared:
                    typed["@" + name] = self.simple_text()
        v = self.value_of_type(t)
        if (self.opts.p_undeclared_elements and self.rng.random() < self.opts.p_undeclared_elements
                and not (isinstance(v, dict) and isinstance(v.get("value"), list))):  # (gaps counted)
            if not isinstance(v, dict):
                v = {"value": v}
            items = list(v.items())
            attrs = set() if t.is_simple() else {a.local_name for a in t.attributes.values()}
            first = sum(1 for k, _x in items if k in attrs)  # after the attributes
            at = self.rng.randint(first, len(items))
            name = self.rng.choice(["{urn:example:x}u", "{}u", "{urn:example:y}Body"])
            items.insert(at, (name, [self.foreign(0) for _ in range(self.rng.randint(1, 2))]))
            v = dict(items)
        if not typed:
            return v
        if not isinstance(v, dict):
            v = {"value": v}
        return {**typed, **v}

    def foreign(self, depth: int) -> dict[str, Any]:
        """An element outside the schema: attributes, then text and children in random order."""
        rng = self.rng
        out: dict[str, Any] = {}
        if rng.random() < 0.3:
            t, v = self.builtin_value()
            out["xsi:type"] = "{http://www.w3.org/2001/XMLSchema}" + t
        for name in rng.sample(["@a", "@{urn:example:x}b", "@zz"], rng.randint(0, 2)):
            out[name] = self.simple_text()
        if "xsi:type" in out:
            out["value"] = v
            return out
        parts: list[tuple[str, Any]] = []
        if rng.random() < 0.5:
            parts.append(("value", "".join(rng.choice("abcXYZ019") for _ in range(rng.randint(1, 8)))))
        if depth < 2:
            for i in range(rng.randint(0, 2)):
                parts.append((rng.choice(["{urn:example:x}c%d" % i, "{}d%d" % i]),
                              [self.foreign(depth + 1) for _ in range(rng.randint(1, 2))]))
        rng.shuffle(parts)
        for k, x in parts:
            out.setdefault(k, x)
        return out

    def builtin_value(self) -> tuple[str, Any]:
        """An XML Schema built-in the V2G schemas never use and a value of it (canonical text
        where it is text: no trailing zeros in fractions, "Z" or a non-zero offset)."""
        import decimal

        rng = self.rng

        def frac() -> str:
            return "" if rng.random() < 0.5 else "." + str(rng.randint(1, 999)).rstrip("0")

        def tz() -> str:
            r = rng.random()
            if r < 0.3:
                return ""
            if r < 0.6:
                return "Z"
            return f"{rng.choice('+-')}{rng.randint(0, 13):02d}:{rng.choice([15, 30, 45]):02d}"

        y, mo, d = rng.randint(1, 2999), rng.randint(1, 12), rng.randint(1, 28)
        hh, mi, ss = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
        t = rng.choice(["decimal", "float", "double", "dateTime", "date", "time", "gYear", "gYearMonth",
                        "gMonthDay", "gDay", "gMonth", "NMTOKENS", "duration", "anySimpleType"])
        if t == "decimal":
            return t, decimal.Decimal(f"{rng.randint(-10**9, 10**9)}{frac()}")
        if t in ("float", "double"):
            return t, rng.choice([rng.uniform(-1e6, 1e6), rng.uniform(-1, 1) * 10.0 ** rng.randint(-300, 300),
                                  float(rng.randint(-1000, 1000)), float("inf")])
        if t == "dateTime":
            return t, f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mi:02d}:{ss:02d}{frac()}{tz()}"
        if t == "date":
            return t, f"{y:04d}-{mo:02d}-{d:02d}{tz()}"
        if t == "time":
            return t, f"{hh:02d}:{mi:02d}:{ss:02d}{frac()}{tz()}"
        if t == "gYear":
            return t, f"{y:04d}{tz()}"
        if t == "gYearMonth":
            return t, f"{y:04d}-{mo:02d}{tz()}"
        if t == "gMonthDay":
            return t, f"--{mo:02d}-{d:02d}{tz()}"
        if t == "gDay":
            return t, f"---{d:02d}{tz()}"
        if t == "gMonth":
            return t, f"--{mo:02d}{tz()}"
        if t == "NMTOKENS":
            return t, [f"t{rng.randint(0, 99)}" for _ in range(rng.randint(1, 3))]
        if t == "duration":
            return t, f"P{rng.randint(1, 9)}DT{rng.randint(1, 9)}H"
        return t, "any" + str(rng.randint(0, 9))

    def simple_text(self) -> str:
        n = self.rng.randint(0, 6)
        return "".join(self.rng.choice("aZ9 -é€") for _ in range(n))

    def value_of_type(self, t: Any) -> Any:
        if t.is_simple():
            return self.simple(t)
        out: dict[str, Any] = {}
        for name, attr in t.attributes.items():
            if name is None or not hasattr(attr, "type"):
                continue
            if attr.use == "required" or attr.local_name in self.opts.force_attrs or self.count(0, 1):
                out[attr.local_name] = self.simple(attr.type)
        if t.has_simple_content():
            out["value"] = self.simple(t.content)
        elif t.content is not None and isinstance(t.content, XsdGroup):
            # Mixed content (xmldsig SignatureMethod, Transform, ...) holds text and wildcards
            # beside its elements, which the vectors' JSON shape cannot express: only what is
            # required is generated there.
            saved, self.mixed = self.mixed, bool(t.mixed)
            try:
                self.group(t.content, out)
            finally:
                self.mixed = saved
            if t.mixed and self.opts.p_wild and self.rng.random() < self.opts.p_wild:
                self.mixed_text(t, out)
        if (not t.has_simple_content() and not t.mixed and self.opts.p_text
                and self.rng.random() < self.opts.p_text):
            self.mixed_text(t, out)
        return out

    def mixed_text(self, t: Any, out: dict[str, Any]) -> None:
        """Text in mixed content: one run where the dict has "value", or one text per gap."""
        rng = self.rng
        attrs = {a.local_name for a in t.attributes.values()}
        n = sum(len(x) if isinstance(x, list) else 1 for k, x in out.items() if k not in attrs)

        def text() -> str:
            return "".join(rng.choice("abXY09") for _ in range(rng.randint(1, 5)))

        if n and rng.random() < 0.5:
            out["value"] = [text() if rng.random() < 0.7 else "" for _ in range(n + 1)]
            if sum(1 for g in out["value"] if g) < 2:
                out["value"][0], out["value"][-1] = text(), text()
        else:
            items = list(out.items())
            at = rng.randint(sum(1 for k, _x in items if k in attrs), len(items))
            items.insert(at, ("value", text()))
            out.clear()
            out.update(items)

    def group(self, g: XsdGroup, out: dict[str, Any]) -> None:
        if g.max_occurs != 1:
            if not self.opts.full_xmldsig:
                if g.min_occurs == 0:
                    return
                raise NotGeneratable("repeated group")
            # every repetition's elements join one list per key (the dict shape of a repeated
            # group), in order of first appearance
            for _ in range(self.rng.randint(max(1, g.min_occurs), 3)):
                one: dict[str, Any] = {}
                self.group_once(g, one)
                for k, v in one.items():
                    out.setdefault(k, []).extend(v if isinstance(v, list) else [v])
            return
        self.group_once(g, out)

    def group_once(self, g: XsdGroup, out: dict[str, Any]) -> None:
        if g.model == "choice":
            items = [p for p in g if self.gen.generatable(p, rep=self.opts.full_xmldsig)
                     and getattr(p, "local_name", None) not in self.opts.omit]
            if not items:
                raise NotGeneratable("choice")
            self.particle(self.rng.choice(items), out, forced=True)
            return
        for p in g:
            self.particle(p, out, forced=False)

    def particle(self, p: Any, out: dict[str, Any], forced: bool) -> None:
        if isinstance(p, XsdAnyElement):
            if p.min_occurs and forced:
                raise NotGeneratable("wildcard")
            if self.opts.p_wild and self.rng.random() < self.opts.p_wild:
                top = 2 if p.max_occurs is None else min(2, p.max_occurs)
                out["{urn:example:w}w%d" % len(out)] = [self.foreign(0) for _ in range(self.rng.randint(1, top))]
            return
        if isinstance(p, XsdGroup):
            if p.min_occurs == 0 and not forced and ((self.mixed and not self.opts.full_xmldsig) or not self.count(0, 1)):
                return
            self.group(p, out)
            return
        lo = p.min_occurs
        if forced and lo == 0:
            lo = 1
        if not self.gen.generatable(p, rep=self.opts.full_xmldsig) or (not lo and p.local_name in self.opts.omit):
            if lo:
                raise NotGeneratable(p.name)
            return
        n = lo if self.mixed and not self.opts.full_xmldsig else self.count(lo, p.max_occurs)
        if p.max_occurs == 1:
            if n:
                k, v = self.element(p)
                out[k] = v
            return
        # A repeated element: the JSON shape is a list under one name. A substitution-group
        # head could mix member names; pick one member for the whole list.
        vals: list[Any] = []
        key = None
        for _ in range(n):
            k, v = self.element(p) if key is None else (key, self.value_of(self.gen.by_local(p, key)))
            key = k
            vals.append(v)
        if vals:
            out[key] = vals  # type: ignore[index]

    # -- simple values ---------------------------------------------------------------------
    def simple(self, t: Any) -> Any:
        rng, o = self.rng, self.opts
        if t.enumeration:
            return rng.choice(list(t.enumeration))
        b = _builtin(t)
        if b == "boolean":
            return rng.random() < 0.5
        if b in _INT_BOUNDS:
            lo, hi = _INT_BOUNDS[b]
            if t.min_value is not None:
                lo = int(t.min_value) if lo is None else max(lo, int(t.min_value))
            if t.max_value is not None:
                hi = int(t.max_value) if hi is None else min(hi, int(t.max_value))
            lo = -(2**63) if lo is None else lo
            hi = 2**63 - 1 if hi is None else hi
            if o.mode == "max":
                return hi
            if o.mode == "min":
                return lo
            r = rng.random()
            if r < 0.1:
                return lo
            if r < 0.2:
                return hi
            if r < 0.6 and hi - lo > 1000:
                mid = max(lo, min(hi, 0))
                return rng.randint(mid, min(hi, mid + 1000))
            return rng.randint(lo, hi)
        lo_len = t.min_length or 0
        hi_len = t.max_length
        if b in ("hexBinary", "base64Binary"):
            n = self._len(lo_len, hi_len, o.binary_cap)
            data = rng.randbytes(n)
            return HexBytes(data) if b == "hexBinary" else B64Bytes(data)
        lo_n = max(lo_len, 1 if b in ("ID", "NCName", "anyURI") else 0)
        kind = "nc" if b in ("ID", "NCName", "IDREF") else "uri" if b == "anyURI" else "text"
        seen = self.strings.setdefault(kind, [])
        if o.p_repeat and seen and rng.random() < o.p_repeat:
            fits = [x for x in seen if lo_n <= len(x) and (hi_len is None or len(x) <= hi_len)]
            if fits:
                return rng.choice(fits)
        n = self._len(lo_n, hi_len, o.string_cap)
        if b in ("ID", "NCName", "IDREF"):
            s = rng.choice(_NCSTART) + "".join(rng.choice(_NCCHARS) for _ in range(n - 1))
        elif b == "anyURI":
            s = "".join(rng.choice(string.ascii_letters + string.digits + ":/#._-") for _ in range(n))
        else:
            pool = _ASCII + (_NONASCII if o.unicode and rng.random() < 0.3 else "")
            s = "".join(rng.choice(pool) for _ in range(n))
        if o.p_repeat:
            seen.append(s)
        return s

    def _len(self, lo: int, hi: int | None, cap: int) -> int:
        if not self.opts.allow_empty and lo == 0 and (hi is None or hi >= 1):
            lo = 1
        top = hi if hi is not None else max(lo, cap)
        if self.opts.mode == "max":
            return top
        if self.opts.mode == "min":
            return lo
        r = self.rng.random()
        if r < 0.15:
            return top
        if r < 0.25:
            return lo
        return self.rng.randint(lo, min(top, lo + 40))


class MessageGenerator:
    """Random messages for every schema set in ``schema_dir`` (the shared ``schemas/`` dir)."""

    def __init__(self, schema_dir: str | Path) -> None:
        if xmlschema is None:
            raise RuntimeError("the message generator needs xmlschema (pip install xmlschema)")
        self.schema_dir = Path(schema_dir)
        self._schemas: dict[str, xmlschema.XMLSchema] = {}
        self._gen_cache: dict[Any, bool] = {}
        self._xsi_cache: dict[tuple[int, int], list[Any]] = {}

    # -- schema access ---------------------------------------------------------------------
    def schema(self, set_name: str) -> xmlschema.XMLSchema:
        if set_name not in self._schemas:
            self._schemas[set_name] = xmlschema.XMLSchema(str(self.schema_dir / SCHEMA_SETS[set_name].xsd))
        return self._schemas[set_name]

    def substitutes(self, el: XsdElement) -> list[XsdElement]:
        """The element itself (unless abstract) and every member of its substitution group."""
        el = el.ref if getattr(el, "ref", None) is not None else el
        out = [] if el.abstract else [el]
        members = el.maps.substitution_groups.get(el.name, ())
        for m in sorted(members, key=lambda e: e.name):
            out.extend(x for x in self.substitutes(m) if x not in out)
        return out

    def by_local(self, el: XsdElement, local: str) -> XsdElement:
        for e in self.substitutes(el):
            if e.local_name == local:
                return e
        raise KeyError(local)

    def xsi_types(self, el: XsdElement) -> list[Any]:
        """The named types an xsi:type on ``el`` may name: its own type (if named) and every
        non-abstract named type derived from it (XML Schema built-ins only where the engine has a
        datatype for them)."""
        key = (id(el.maps), id(el.type))  # built-in types are shared by every schema set
        got = self._xsi_cache.get(key)
        if got is None:
            base = el.type
            got = []
            for qn, t in el.maps.types.items():
                if not isinstance(qn, str) or getattr(t, "abstract", False):
                    continue
                if qn.startswith("{http://www.w3.org/2001/XMLSchema}") and qn.rpartition("}")[2] not in XSI_BUILTINS:
                    continue
                if t is base or (t.is_derived(base) and (t.is_simple() == base.is_simple())):
                    if t.is_simple() or self.generatable_type(t):
                        got.append(t)
            got.sort(key=lambda t: t.name)
            self._xsi_cache[key] = got
        return got

    def generatable_type(self, t: Any) -> bool:
        c = t.content
        return c is None or not isinstance(c, XsdGroup) or self.generatable(c)

    def generatable(self, p: Any, _stack: tuple[Any, ...] = (), rep: bool = False) -> bool:
        """Whether particle ``p`` can be generated without wildcards or (unless ``rep``) repeated groups."""
        key = (id(p), rep)
        if key in self._gen_cache:
            return self._gen_cache[key]
        if p in _stack:
            return True
        st = _stack + (p,)
        if isinstance(p, XsdAnyElement):
            res = False
        elif isinstance(p, XsdGroup):
            if p.max_occurs != 1 and not rep:
                res = p.min_occurs == 0
            elif p.model == "choice":
                res = any(self.generatable(x, st, rep) for x in p)
            else:
                res = all(self.generatable(x, st, rep) or x.min_occurs == 0 for x in p)
        else:
            res = False
            for e in self.substitutes(p):
                t = e.type
                if t.is_simple() or t.has_simple_content() or not isinstance(t.content, XsdGroup):
                    res = True
                elif self.generatable(t.content, st, rep):
                    res = True
        self._gen_cache[key] = res
        return res

    # -- what can be generated -------------------------------------------------------------
    def _body_head(self, set_name: str) -> XsdElement:
        s = self.schema(set_name)
        v2g = s.elements["V2G_Message"]
        body = [p for p in v2g.type.content if p.local_name == "Body"][0]
        return list(body.type.content)[0]

    def message_types(self, set_name: str) -> list[str]:
        """Names of the message types of a schema set (for V2G_Message sets: the Body elements)."""
        ss = SCHEMA_SETS[set_name]
        if ss.kind == "v2g":
            return [e.local_name for e in self.substitutes(self._body_head(set_name))]
        if ss.kind == "xmldsig":
            return ["SignedInfo"]
        s = self.schema(set_name)
        names = [e.local_name for e in s.elements.values()]
        if set_name.startswith("iso20"):
            names = [n for n in names if n.endswith(("Req", "Res"))]
        return names

    def fragment_types(self, set_name: str) -> list[str]:
        """Elements signed through the set's full-schema fragment grammar (ISO-2 only here)."""
        return list(ISO2_FRAGMENT_ELEMENTS) if set_name == "iso2" else []

    def _global(self, set_name: str, local: str) -> XsdElement:
        for qn, e in self.schema(set_name).maps.elements.items():
            if e.local_name == local:
                return e
        raise KeyError(local)

    def generate(self, set_name: str, msg_type: str, rng: random.Random, opts: GenOptions | None = None) -> dict[str, Any]:
        """A random document message (bytes shape with typed binaries) of ``msg_type``."""
        run = _Run(self, rng, opts or GenOptions())
        ss = SCHEMA_SETS[set_name]
        if ss.kind == "v2g":
            s = self.schema(set_name)
            v2g = s.elements["V2G_Message"]
            header = [p for p in v2g.type.content if p.local_name == "Header"][0]
            body_el = self.by_local(self._body_head(set_name), msg_type)
            return {"V2G_Message": {"Header": run.value_of(header), "Body": {msg_type: run.value_of(body_el)}}}
        el = self._global(set_name, msg_type)
        return {msg_type: run.value_of(el)}

    def generate_fragment(self, set_name: str, element: str, rng: random.Random, opts: GenOptions | None = None) -> dict[str, Any]:
        """A random fragment message: one element of the set, by local name."""
        run = _Run(self, rng, opts or GenOptions())
        return {element: run.value_of(self._global_or_local(set_name, element))}

    def _global_or_local(self, set_name: str, local: str) -> XsdElement:
        """A global element by local name, else a local declaration of that name; where several
        local declarations differ (ISO-2 ``eMAID``: string, or EMAIDType with ``Id``), the one
        with attributes, which is the one that gets signed."""
        try:
            return self._global(set_name, local)
        except KeyError:
            pass
        cands = [c for c in self.schema(set_name).maps.iter_components()
                 if isinstance(c, XsdElement) and c.local_name == local and c.ref is None]
        if not cands:
            raise KeyError(local)
        return max(cands, key=lambda c: (0 if c.type.is_simple() else len(c.type.attributes)))

    # -- type information ------------------------------------------------------------------
    def binary_names(self, set_name: str) -> tuple[set[str], set[str], set[str]]:
        """(hexBinary names, base64Binary names, other simple names) of elements/attributes."""
        hexn, b64n, other = set(), set(), set()
        s = self.schema(set_name)
        for c in s.maps.iter_components():
            if not isinstance(c, (XsdElement, xmlschema.XsdAttribute)):
                continue
            ns = c.name[1:].split("}")[0] if c.name and c.name.startswith("{") else ""
            if ns == XS[1:-1]:
                continue
            t = c.type
            if not t.is_simple():
                if not t.has_simple_content():
                    continue
                t = t.content
            b = _builtin(t)
            (hexn if b == "hexBinary" else b64n if b == "base64Binary" else other).add(c.local_name)
        return hexn, b64n, other


# -- shape conversions -------------------------------------------------------------------------
def to_json_shape(obj: Any) -> Any:
    """Typed binaries -> uppercase hex / base64 strings (the oracle's and the vectors' shape)."""
    if isinstance(obj, HexBytes):
        return bytes(obj).hex().upper()
    if isinstance(obj, B64Bytes):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, bytes):
        raise TypeError("untyped bytes: cannot choose hex or base64")
    if isinstance(obj, dict):
        return {k: to_json_shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_json_shape(v) for v in obj]
    return obj


#: names of the undeclared attributes the generator adds (p_undeclared)
UNDECLARED_ATTRIBUTES = ["a", "zz", "Id", "lang", "{urn:example:x}b", "{urn:example:x}c", "{urn:example:y}a",
                         "{http://www.w3.org/XML/1998/namespace}lang"]
#: XML Schema built-ins an xsi:type may name in the generator (those the V2G schemas build on)
XSI_BUILTINS = {"string", "normalizedString", "token", "language", "Name", "NCName", "ID", "IDREF", "anyURI",
                "boolean", "hexBinary", "base64Binary", "byte", "short", "int", "long", "unsignedByte",
                "unsignedShort", "unsignedInt", "unsignedLong", "integer", "nonNegativeInteger",
                "positiveInteger", "nonPositiveInteger", "negativeInteger"}


def to_bytes_shape(obj: Any) -> Any:
    """Typed binaries -> plain ``bytes`` (our codec's shape)."""
    if isinstance(obj, bytes):
        return bytes(obj)
    if isinstance(obj, dict):
        return {k: to_bytes_shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_bytes_shape(v) for v in obj]
    return obj


def json_to_bytes_shape(obj: Any, hex_names: set[str], b64_names: set[str], _key: str | None = None) -> Any:
    """JSON shape -> bytes shape, using the names of binary elements/attributes of the set.

    Simple content under ``"value"`` takes the binary type of its parent element's name.
    """
    if isinstance(obj, dict):
        return {k: json_to_bytes_shape(v, hex_names, b64_names, _key if k == "value" else k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_to_bytes_shape(v, hex_names, b64_names, _key) for v in obj]
    if isinstance(obj, str) and _key in hex_names:
        return bytes.fromhex(obj)
    if isinstance(obj, str) and _key in b64_names:
        return base64.b64decode(obj, validate=True)
    return obj


def bytes_to_json_shape(obj: Any, hex_names: set[str], _key: str | None = None) -> Any:
    """Bytes shape -> JSON shape: bytes under a hexBinary name become hex, all others base64."""
    if isinstance(obj, dict):
        return {k: bytes_to_json_shape(v, hex_names, _key if k == "value" else k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [bytes_to_json_shape(v, hex_names, _key) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).hex().upper() if _key in hex_names else base64.b64encode(bytes(obj)).decode("ascii")
    return obj


def iter_all_types(gen: MessageGenerator, sets: list[str] | None = None) -> Iterator[tuple[str, str]]:
    """(set name, message type) for every document message of every set."""
    for s in sets or list(SCHEMA_SETS):
        for m in gen.message_types(s):
            yield s, m
