"""Minimal XSD reader for the V2G schema sets (dev-only, never imported at run time).

Reads the subset of XML Schema 1.0 the V2G XSDs use: global/local elements, named and anonymous
complex and simple types, sequence/choice/any particles with min/maxOccurs, complexContent and
simpleContent extension/restriction, attributes, substitution groups, enumerations and the length
and range facets. Anything else raises, so that an unsupported construct never passes silently.
"""
from __future__ import annotations

import hashlib
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union, cast

XS = "http://www.w3.org/2001/XMLSchema"
QName = Tuple[str, str]  # (namespace, local name)
#: a top-level component as read: (node, namespace prefixes in scope, target namespace, schema context)
RawDecl = Tuple[ET.Element, Dict[str, str], str, Dict[str, str]]
UNBOUNDED = -1


def _q(tag: str) -> str:
    return "{%s}%s" % (XS, tag)


@dataclass
class SimpleType:
    """A simple type: a builtin base name plus accumulated facets."""

    base: str  # builtin local name, e.g. "unsignedShort"
    enums: Optional[List[str]] = None
    min_incl: Optional[int] = None
    max_incl: Optional[int] = None
    length: Optional[int] = None
    min_len: Optional[int] = None
    max_len: Optional[int] = None
    name: Optional[QName] = None


@dataclass
class Particle:
    """A content-model particle: kind is 'element', 'sequence', 'choice' or 'any'."""

    kind: str
    min: int = 1
    max: int = 1
    children: List["Particle"] = field(default_factory=list)
    elem: Optional["ElementDecl"] = None  # for kind == 'element'


@dataclass
class Attribute:
    qname: QName
    type: SimpleType
    required: bool


@dataclass
class ComplexType:
    name: Optional[QName]
    attributes: List[Attribute] = field(default_factory=list)
    particle: Optional[Particle] = None  # element content; None = empty
    simple: Optional[SimpleType] = None  # simple content
    mixed: bool = False


TypeDef = Union[SimpleType, ComplexType]


@dataclass
class ElementDecl:
    qname: QName
    type: TypeDef
    is_global: bool
    abstract: bool = False
    subst_head: Optional[QName] = None


BUILTIN_INT_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsignedByte": (0, 2**8 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedLong": (0, 2**64 - 1),
    "integer": (None, None),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
}
STRING_LIKE = {"string", "anyURI", "ID", "IDREF", "NCName", "token", "normalizedString", "Name", "language", "QName",
               "NOTATION", "NMTOKEN", "ENTITY", "duration", "anySimpleType"}
#: built-ins the V2G schemas never use (reachable through xsi:type): their EXI datatypes
DATETIME_TYPES = {"dateTime", "date", "time", "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth"}
LIST_TYPES = {"NMTOKENS", "IDREFS", "ENTITIES"}
KNOWN_BUILTINS = (set(BUILTIN_INT_RANGES) | STRING_LIKE | DATETIME_TYPES | LIST_TYPES
                  | {"boolean", "hexBinary", "base64Binary", "decimal", "float", "double"})
#: The local names of the XML Schema namespace in the initial string table (EXI 1.0 appendix D.3):
#: the built-in datatype names, sorted.
XS_LOCAL_NAMES = (
    "ENTITIES", "ENTITY", "ID", "IDREF", "IDREFS", "NCName", "NMTOKEN", "NMTOKENS", "NOTATION", "Name",
    "QName", "anySimpleType", "anyType", "anyURI", "base64Binary", "boolean", "byte", "date", "dateTime",
    "decimal", "double", "duration", "float", "gDay", "gMonth", "gMonthDay", "gYear", "gYearMonth",
    "hexBinary", "int", "integer", "language", "long", "negativeInteger", "nonNegativeInteger",
    "nonPositiveInteger", "normalizedString", "positiveInteger", "short", "string", "time", "token",
    "unsignedByte", "unsignedInt", "unsignedLong", "unsignedShort",
)


class Schema:
    """All components of one schema set, loaded from a root XSD and its imports."""

    def __init__(self, root_file: str) -> None:
        self.files: Dict[str, str] = {}  # abs path -> sha256
        self._raw_types: Dict[QName, RawDecl] = {}
        self._raw_elems: Dict[QName, RawDecl] = {}
        self._raw_attrs: Dict[QName, RawDecl] = {}
        self.types: Dict[QName, TypeDef] = {}
        self.globals: Dict[QName, ElementDecl] = {}
        self.all_elements: List[ElementDecl] = []
        self.all_attributes: List[Attribute] = []  # every attribute declaration (for the relaxed fragment grammar)
        self.target_namespace = ""
        self._load(os.path.abspath(root_file), first=True)
        for qn in self._raw_elems:
            self.global_element(qn)
        # named types no element uses still declare local elements (and attributes) that belong to
        # the schema set's fragment grammar (8.5.2), so every named type is read
        for qn in sorted(self._raw_types):
            self.type_by_name(qn)

    # ------------------------------------------------------------------ loading
    def _load(self, path: str, first: bool = False) -> None:
        if path in self.files:
            return
        with open(path, "rb") as fh:
            data = fh.read()
        self.files[path] = hashlib.sha256(data).hexdigest()
        ns_map: Dict[str, str] = {}
        for _ev, (prefix, uri) in ET.iterparse(path, events=["start-ns"]):
            ns_map.setdefault(prefix, uri)
        root = ET.fromstring(data)
        tns = root.get("targetNamespace", "")
        if first:
            self.target_namespace = tns
        ctx = {"tns": tns, "efd": root.get("elementFormDefault", "unqualified"), "afd": root.get("attributeFormDefault", "unqualified")}
        for child in root:
            if child.tag in (_q("import"), _q("include")):
                loc = child.get("schemaLocation")
                if loc:
                    self._load(os.path.normpath(os.path.join(os.path.dirname(path), loc)))
            elif child.tag in (_q("complexType"), _q("simpleType")):
                self._raw_types[(tns, cast(str, child.get("name")))] = (child, ns_map, tns, ctx)
            elif child.tag == _q("element"):
                self._raw_elems[(tns, cast(str, child.get("name")))] = (child, ns_map, tns, ctx)
            elif child.tag == _q("attribute"):
                self._raw_attrs[(tns, cast(str, child.get("name")))] = (child, ns_map, tns, ctx)
            elif child.tag == _q("annotation") or not isinstance(child.tag, str):
                continue
            else:
                raise NotImplementedError(f"{path}: top-level {child.tag}")

    @staticmethod
    def _resolve(name: str, ns_map: Dict[str, str]) -> QName:
        if ":" in name:
            prefix, local = name.split(":", 1)
        else:
            prefix, local = "", name
        return (ns_map.get(prefix, ""), local)

    # ------------------------------------------------------------------ types
    def type_by_name(self, qn: QName) -> TypeDef:
        if qn in self.types:
            return self.types[qn]
        if qn[0] == XS:
            if qn[1] not in KNOWN_BUILTINS:
                raise NotImplementedError(f"builtin type {qn[1]}")
            st = SimpleType(base=qn[1], name=qn)
            self.types[qn] = st
            return st
        if qn not in self._raw_types:
            raise KeyError(f"unknown type {qn}")
        node, ns_map, tns, ctx = self._raw_types[qn]
        if node.tag == _q("simpleType"):
            t: TypeDef = self._simple(node, ns_map, qn)
            self.types[qn] = t
            return t
        ct = ComplexType(name=qn)
        self.types[qn] = ct  # before filling: recursion safe
        self._complex(node, ns_map, ctx, ct)
        return ct

    def _simple(self, node: ET.Element, ns_map: Dict[str, str], name: Optional[QName]) -> SimpleType:
        restr = node.find(_q("restriction"))
        if restr is None:
            raise NotImplementedError(f"simpleType {name}: only restriction is supported")
        base_name = restr.get("base")
        if base_name:
            base = self.type_by_name(self._resolve(base_name, ns_map))
        else:
            base = self._simple(restr.find(_q("simpleType")), ns_map, None)  # type: ignore[arg-type]
        if not isinstance(base, SimpleType):
            raise NotImplementedError(f"simpleType {name}: complex base")
        return self._facets(base, restr, name)

    def _facets(self, base: SimpleType, restr: ET.Element, name: Optional[QName]) -> SimpleType:
        st = SimpleType(base=base.base, enums=base.enums, min_incl=base.min_incl, max_incl=base.max_incl,
                        length=base.length, min_len=base.min_len, max_len=base.max_len, name=name)
        enums: List[str] = []
        for f in restr:
            tag = f.tag.split("}")[-1] if isinstance(f.tag, str) else ""
            val = f.get("value")
            if tag == "enumeration":
                enums.append(val)  # type: ignore[arg-type]
            elif tag == "minInclusive":
                st.min_incl = int(val)  # type: ignore[arg-type]
            elif tag == "maxInclusive":
                st.max_incl = int(val)  # type: ignore[arg-type]
            elif tag == "minExclusive":
                st.min_incl = int(val) + 1  # type: ignore[arg-type]
            elif tag == "maxExclusive":
                st.max_incl = int(val) - 1  # type: ignore[arg-type]
            elif tag == "length":
                st.length = int(val)  # type: ignore[arg-type]
            elif tag == "minLength":
                st.min_len = int(val)  # type: ignore[arg-type]
            elif tag == "maxLength":
                st.max_len = int(val)  # type: ignore[arg-type]
            elif tag in ("annotation", "simpleType", "whiteSpace", "totalDigits", "fractionDigits"):
                continue
            elif tag == "pattern":
                raise NotImplementedError("pattern facet (restricted character sets) is not supported")
            elif tag:
                raise NotImplementedError(f"facet {tag}")
        if enums:
            st.enums = enums
        return st

    def _complex(self, node: ET.Element, ns_map: Dict[str, str], ctx: Dict[str, str], ct: ComplexType) -> None:
        ct.mixed = node.get("mixed") == "true"
        content: Optional[ET.Element] = None
        for child in node:
            tag = child.tag
            if tag == _q("complexContent"):
                if child.get("mixed") == "true":
                    ct.mixed = True
                ext = child.find(_q("extension"))
                res = child.find(_q("restriction"))
                if ext is not None:
                    base = self.type_by_name(self._resolve(ext.get("base"), ns_map))  # type: ignore[arg-type]
                    if not isinstance(base, ComplexType):
                        raise NotImplementedError("complexContent extension of a simple type")
                    ct.attributes.extend(base.attributes)
                    own = self._particle_of(ext, ns_map, ctx)
                    parts = [p for p in (base.particle, own) if p is not None]
                    if len(parts) == 2:
                        ct.particle = Particle("sequence", children=parts)
                    elif parts:
                        ct.particle = parts[0]
                    ct.mixed = ct.mixed or base.mixed
                    self._attributes(ext, ns_map, ctx, ct)
                elif res is not None:
                    ct.particle = self._particle_of(res, ns_map, ctx)
                    self._attributes(res, ns_map, ctx, ct)
                else:
                    raise NotImplementedError("complexContent")
            elif tag == _q("simpleContent"):
                ext = child.find(_q("extension"))
                res = child.find(_q("restriction"))
                der = ext if ext is not None else res
                if der is None:
                    raise NotImplementedError("simpleContent")
                base = self.type_by_name(self._resolve(der.get("base"), ns_map))  # type: ignore[arg-type]
                if isinstance(base, ComplexType):
                    ct.attributes.extend(base.attributes)
                    st = base.simple
                else:
                    st = base
                if res is not None:
                    st = self._facets(st, res, None)  # type: ignore[arg-type]
                ct.simple = st
                self._attributes(der, ns_map, ctx, ct)
            elif tag in (_q("sequence"), _q("choice"), _q("all"), _q("group")):
                content = node
            elif tag in (_q("attribute"), _q("anyAttribute"), _q("annotation")) or not isinstance(tag, str):
                continue
            else:
                raise NotImplementedError(f"complexType child {tag}")
        if content is not None:
            ct.particle = self._particle_of(content, ns_map, ctx)
            self._attributes(node, ns_map, ctx, ct)
        elif not any(c.tag in (_q("complexContent"), _q("simpleContent")) for c in node):
            self._attributes(node, ns_map, ctx, ct)

    def _attributes(self, node: ET.Element, ns_map: Dict[str, str], ctx: Dict[str, str], ct: ComplexType) -> None:
        for a in node.findall(_q("attribute")):
            if a.get("use") == "prohibited":
                continue
            if a.get("ref"):
                qn = self._resolve(a.get("ref"), ns_map)  # type: ignore[arg-type]
                anode, amap, _tns, _ctx = self._raw_attrs[qn]
                st = self._attr_type(anode, amap)
            else:
                ns = ctx["tns"] if (a.get("form") or ctx["afd"]) == "qualified" else ""
                qn = (ns, a.get("name"))  # type: ignore[assignment]
                st = self._attr_type(a, ns_map)
            ct.attributes = [x for x in ct.attributes if x.qname != qn]
            att = Attribute(qn, st, a.get("use") == "required")
            ct.attributes.append(att)
            self.all_attributes.append(att)
        if node.find(_q("anyAttribute")) is not None:
            raise NotImplementedError("anyAttribute")

    def _attr_type(self, a: ET.Element, ns_map: Dict[str, str]) -> SimpleType:
        if a.get("type"):
            t = self.type_by_name(self._resolve(a.get("type"), ns_map))  # type: ignore[arg-type]
        else:
            inline = a.find(_q("simpleType"))
            t = self._simple(inline, ns_map, None) if inline is not None else self.type_by_name((XS, "string"))  # type: ignore[arg-type]
        assert isinstance(t, SimpleType)
        return t

    def _particle_of(self, node: ET.Element, ns_map: Dict[str, str], ctx: Dict[str, str]) -> Optional[Particle]:
        for child in node:
            if child.tag in (_q("sequence"), _q("choice"), _q("all"), _q("group")):
                return self._particle(child, ns_map, ctx)
        return None

    @staticmethod
    def _occurs(node: ET.Element) -> Tuple[int, int]:
        mn = int(node.get("minOccurs", "1"))
        mx_s = node.get("maxOccurs", "1")
        return mn, (UNBOUNDED if mx_s == "unbounded" else int(mx_s))

    def _particle(self, node: ET.Element, ns_map: Dict[str, str], ctx: Dict[str, str]) -> Particle:
        mn, mx = self._occurs(node)
        tag = node.tag
        if tag in (_q("sequence"), _q("choice")):
            p = Particle("sequence" if tag == _q("sequence") else "choice", mn, mx)
            for child in node:
                if child.tag in (_q("element"), _q("sequence"), _q("choice"), _q("any"), _q("group")):
                    p.children.append(self._particle(child, ns_map, ctx))
                elif child.tag == _q("annotation") or not isinstance(child.tag, str):
                    continue
                else:
                    raise NotImplementedError(f"particle child {child.tag}")
            return p
        if tag == _q("any"):
            ns = node.get("namespace", "##any")
            if ns not in ("##any", "##other"):
                raise NotImplementedError(f"wildcard namespace {ns}")
            return Particle("any", mn, mx)
        if tag == _q("element"):
            if node.get("ref"):
                decl = self.global_element(self._resolve(node.get("ref"), ns_map))  # type: ignore[arg-type]
            else:
                ns = ctx["tns"] if (node.get("form") or ctx["efd"]) == "qualified" else ""
                decl = ElementDecl((ns, node.get("name")), self._elem_type(node, ns_map, ctx), False)  # type: ignore[arg-type]
                self.all_elements.append(decl)
            return Particle("element", mn, mx, elem=decl)
        raise NotImplementedError(f"particle {tag}")

    def _elem_type(self, node: ET.Element, ns_map: Dict[str, str], ctx: Dict[str, str]) -> TypeDef:
        if node.get("type"):
            return self.type_by_name(self._resolve(node.get("type"), ns_map))  # type: ignore[arg-type]
        inline_c = node.find(_q("complexType"))
        if inline_c is not None:
            ct = ComplexType(name=None)
            self._complex(inline_c, ns_map, ctx, ct)
            return ct
        inline_s = node.find(_q("simpleType"))
        if inline_s is not None:
            return self._simple(inline_s, ns_map, None)
        return ComplexType(name=None, particle=Particle("sequence", 0, UNBOUNDED, [Particle("any", 0, UNBOUNDED)]), mixed=True)  # anyType

    def named_types(self) -> List[QName]:
        """The qnames of every named type of the set (sorted), then those of the XML Schema
        built-ins the engine has datatypes for: the types an xsi:type attribute may name."""
        return sorted(self._raw_types) + [(XS, b) for b in sorted(KNOWN_BUILTINS)]

    def global_element(self, qn: QName) -> ElementDecl:
        if qn in self.globals:
            return self.globals[qn]
        node, ns_map, _tns, ctx = self._raw_elems[qn]
        decl = ElementDecl(qn, ComplexType(name=None), True, abstract=node.get("abstract") == "true")
        self.globals[qn] = decl
        self.all_elements.append(decl)
        if node.get("substitutionGroup"):
            decl.subst_head = self._resolve(node.get("substitutionGroup"), ns_map)  # type: ignore[arg-type]
        if node.get("type") or node.find(_q("complexType")) is not None or node.find(_q("simpleType")) is not None:
            decl.type = self._elem_type(node, ns_map, ctx)
        elif decl.subst_head is not None:
            decl.type = self.global_element(decl.subst_head).type
        else:
            decl.type = self._elem_type(node, ns_map, ctx)
        return decl

    def substitutes(self, head: ElementDecl) -> List[ElementDecl]:
        """The head and every direct or indirect member of its substitution group.

        Abstract declarations are kept: EXIficient and cbexigen both give them an event code (for
        example SE(BodyElement) in the ISO 15118-2 Body grammar), and the golden vectors agree.
        """
        out: List[ElementDecl] = []
        todo = [head]
        seen = set()
        while todo:
            e = todo.pop()
            if e.qname in seen:
                continue
            seen.add(e.qname)
            out.append(e)
            todo.extend(g for g in self.globals.values() if g.subst_head == e.qname)
        return out
