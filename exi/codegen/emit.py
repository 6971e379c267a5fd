"""Writes one generated table module per schema set (exi/_generated/<name>.py)."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from exi.codegen.grammar import (
    JAR_LOOP_ABOVE, K_ANY, K_AT, K_CH, K_ED, K_EE, K_SE, T_STRING, GrammarBuilder, Prod, datatype, qname_key,
)
from exi.codegen.xsd import XS, XS_LOCAL_NAMES, Attribute, ComplexType, ElementDecl, Schema, SimpleType

XML_NS = "http://www.w3.org/XML/1998/namespace"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def string_table(schema: Schema) -> Tuple[Tuple[str, ...], Tuple[Tuple[str, ...], ...]]:
    """The initial qname string table of a schema-informed stream (EXI 1.0 section 7.3.1 and
    appendix D): URI partition "", xml, xsi, XML Schema, then every other namespace of the schema's
    elements, attributes and named types, sorted; one local-name partition per URI, its names
    sorted (D.3: xml base/id/lang/space, xsi nil/type, the XML Schema built-in type names, then
    the schema's element, attribute and type local names by namespace)."""
    names: Dict[str, set] = {"": set(), XML_NS: {"base", "id", "lang", "space"}, XSI_NS: {"nil", "type"},
                             XS: set(XS_LOCAL_NAMES)}
    qnames = [e.qname for e in schema.all_elements] + [a.qname for a in schema.all_attributes]
    qnames += [qn for qn in schema.named_types() if qn[0] != XS]
    for ns, local in qnames:
        names.setdefault(ns, set()).add(local)
    uris = ["", XML_NS, XSI_NS, XS] + sorted(u for u in names if u not in ("", XML_NS, XSI_NS, XS))
    return tuple(uris), tuple(tuple(sorted(names[u])) for u in uris)

#: table module name -> (root XSD relative to --xsd-dir, root namespace)
SCHEMA_SETS: Dict[str, Tuple[str, str]] = {
    "apphand": ("app_handshake/V2G_CI_AppProtocol.xsd", "urn:iso:15118:2:2010:AppProtocol"),
    "din": ("din70121/V2G_CI_MsgDef.xsd", "urn:din:70121:2012:MsgDef"),
    "iso2": ("iso15118_2/V2G_CI_MsgDef.xsd", "urn:iso:15118:2:2013:MsgDef"),
    "iso20_cm": ("iso15118_20/V2G_CI_CommonMessages.xsd", "urn:iso:std:iso:15118:-20:CommonMessages"),
    "iso20_ac": ("iso15118_20/V2G_CI_AC.xsd", "urn:iso:std:iso:15118:-20:AC"),
    "iso20_dc": ("iso15118_20/V2G_CI_DC.xsd", "urn:iso:std:iso:15118:-20:DC"),
    "iso20_wpt": ("iso15118_20/V2G_CI_WPT.xsd", "urn:iso:std:iso:15118:-20:WPT"),
    "iso20_acdp": ("iso15118_20/V2G_CI_ACDP.xsd", "urn:iso:std:iso:15118:-20:ACDP"),
    "xmldsig": ("xmldsig-core-schema.xsd", "http://www.w3.org/2000/09/xmldsig#"),
}


def _entry_keys(decls: List[Tuple[Tuple[str, str], Any]], target_ns: str) -> Dict[str, int]:
    """local name -> production index; on a local-name clash the root namespace wins, then the first."""
    keys: Dict[str, int] = {}
    for i, (qn, _x) in enumerate(decls):
        if qn[1] not in keys or qn[0] == target_ns:
            keys[qn[1]] = i
    return keys


def _relaxed_grammar(gb: GrammarBuilder, schema: Schema, qn: Tuple[str, str], decls: List[ElementDecl],
                     frag_list: List[Tuple[Tuple[str, str], List[ElementDecl]]], entry_of: Any,
                     memo: Dict[Tuple[str, str], int]) -> int:
    """Schema-informed Element Fragment grammar (8.5.3) for a qname declared with several types.

    ElementFragment_0: AT(A_i) over every attribute qname of the schema set sorted by qname (typed
    when all its declarations share a datatype, else untyped), AT(*), SE(F_j) over every element
    qname sorted, SE(*), EE, CH [untyped]; ElementFragment_1 (after content): SE(F_j), SE(*), EE, CH.
    Keys are local names; a local name shared by several qnames is keyed "{uri}local" except for
    the qname this element itself declares (so that e.g. ISO-2 eMAID's Id is the MsgDataTypes one).
    """
    by_aq: Dict[Tuple[str, str], List[Attribute]] = {}
    for a in schema.all_attributes:
        by_aq.setdefault(a.qname, []).append(a)
    attrs = sorted(by_aq, key=qname_key)
    own = {a.qname for d in decls if isinstance(d.type, ComplexType) for a in d.type.attributes}
    local_count: Dict[str, int] = {}
    for aq in attrs:
        local_count[aq[1]] = local_count.get(aq[1], 0) + 1
    ef0 = gb.add_state(0, ())
    ef1 = gb.add_state(0, ())
    memo[qn] = ef0  # before the SE entries: a relaxed element may contain itself
    untyped = (T_STRING, 0, None)
    p0: List[Tuple[Any, ...]] = []
    for aq in attrs:
        dts = {datatype(a.type) for a in by_aq[aq]}
        dt = dts.pop() if len(dts) == 1 else untyped
        key = aq[1] if (local_count[aq[1]] == 1 or aq in own) else "{%s}%s" % aq
        p0.append((K_AT, key, dt, ef0, False, False, gb.uri_index[aq[0]]))
    p0.append((K_ANY, "@*", None, ef0, False, False))  # AT(*): key "@*" tells it from SE(*)
    ses: List[Tuple[Any, ...]] = []
    for fq, _d in frag_list:
        entry, direct = entry_of(fq)
        ses.append((K_SE, fq[1], entry, ef1, False, direct, gb.uri_index[fq[0]]))
    tail = [(K_ANY, None, None, ef1, False, False), (K_EE, None, None, -1, False, False), (K_CH, "value", untyped, ef1, False, False)]
    p0 = p0 + ses + tail
    p1 = ses + tail
    gb.states[ef0] = (len(p0).bit_length(), tuple(p0))
    gb.states[ef1] = (len(p1).bit_length(), tuple(p1))
    return ef0


#: Table variants: "exi" (EXI 1.0 grammars, as EXIficient compiles the XSDs) and "iso15118-jar"
#: (the looped bounded particles of the grammars precompiled into the iso15118 package's jar).
VARIANTS = ("exi", "iso15118-jar")


def build_tables(xsd_dir: str, name: str, variant: str = "exi") -> str:
    """Compile one schema set and return the text of its table module."""
    rel, target_ns = SCHEMA_SETS[name]
    schema = Schema(os.path.join(xsd_dir, rel))
    if variant not in VARIANTS:
        raise ValueError(f"unknown table variant {variant!r}; known: {VARIANTS}")
    uris, local_names = string_table(schema)
    gb = GrammarBuilder(schema, JAR_LOOP_ABOVE[name] if variant == "iso15118-jar" else None,
                        {u: i for i, u in enumerate(uris)})

    # Document grammar (8.5.1 / 8.5.4): DocContent = SE(G_0..G_n-1) sorted by qname, SE(*); DocEnd = ED.
    doc_end = gb.add_state(0, ((K_ED, None, None, -1, False, False),))
    globals_sorted = sorted(schema.globals.values(), key=lambda e: qname_key(e.qname))
    doc_prods: List[Prod] = []
    for g in globals_sorted:
        entry, direct = gb.element_entry(g)
        doc_prods.append((K_SE, g.qname[1], entry, doc_end, False, direct, gb.uri_index[g.qname[0]]))
    doc_prods.append((K_ANY, None, None, doc_end, False, False))
    doc_state = gb.add_state((len(doc_prods) - 1).bit_length(), tuple(doc_prods))
    doc_keys = _entry_keys([(g.qname, g) for g in globals_sorted], target_ns)

    # Fragment grammar (8.5.2 / 8.5.4): FragmentContent = SE(F_0..F_n-1) over every element qname of
    # the schema set sorted by qname, SE(*), ED. A qname declared with different types would need the
    # relaxed element-fragment grammar: such entries get start state -1 (refused at run time).
    by_qn: Dict[Tuple[str, str], List[ElementDecl]] = {}
    for e in schema.all_elements:
        by_qn.setdefault(e.qname, []).append(e)
    frag_list = sorted(by_qn.items(), key=lambda kv: qname_key(kv[0]))
    frag_state = gb.add_state(0, ())
    relaxed: Dict[Tuple[str, str], int] = {}

    def entry_of(qn: Tuple[str, str]) -> Tuple[int, bool]:
        decls = by_qn[qn]
        if len({id(d.type) for d in decls}) == 1:
            return gb.element_entry(decls[0])
        if qn not in relaxed:
            _relaxed_grammar(gb, schema, qn, decls, frag_list, entry_of, relaxed)
        return relaxed[qn], False

    frag_prods: List[Prod] = []
    for qn, _decls in frag_list:
        entry, direct = entry_of(qn)
        frag_prods.append((K_SE, qn[1], entry, frag_state, False, direct, gb.uri_index[qn[0]]))
    frag_prods.append((K_ANY, None, None, frag_state, False, False))
    frag_prods.append((K_ED, None, None, -1, False, False))
    gb.states[frag_state] = ((len(frag_prods) - 1).bit_length(), tuple(frag_prods))
    frag_keys = _entry_keys([(qn, d) for qn, d in frag_list], target_ns)

    # xsi:type (8.5.4.4.1): the type grammar of every type an xsi:type attribute may name (states
    # of types no element uses are appended here); (start state, simple type)
    xsi_types: Dict[Tuple[str, str], Tuple[int, bool]] = {}
    for qn in schema.named_types():
        t = schema.type_by_name(qn)
        xsi_types[qn] = (gb.type_grammar(t), isinstance(t, SimpleType))
    # xs:anyType: the complex ur-type grammar (8.5.4.1.3.3), the content of undeclared elements:
    # Type_0 = AT(*) Type_0, SE(*) Type_1, EE, CH [untyped] Type_1; Type_1 = SE(*) Type_1, EE, CH Type_1
    untyped_t = (T_STRING, 0, None)
    ur0 = gb.add_state(0, ())
    ur1 = gb.add_state(0, ())
    gb.states[ur0] = (3, ((K_ANY, "@*", None, ur0, False, False), (K_ANY, None, None, ur1, False, False),
                          (K_EE, None, None, -1, False, False), (K_CH, "value", untyped_t, ur1, False, False)))
    gb.states[ur1] = (2, ((K_ANY, None, None, ur1, False, False), (K_EE, None, None, -1, False, False),
                          (K_CH, "value", untyped_t, ur1, False, False)))
    xsi_types[(XS, "anyType")] = (ur0, False)
    # SE(*) with the qname of a global element uses that element's grammar (8.5.4.4.1)
    global_elements = {g.qname: gb.element_entry(g) for g in globals_sorted}

    # ---- text
    types: Dict[Tuple[Any, ...], str] = {}
    lines_t: List[str] = []

    def tname(dt: Optional[Tuple[Any, ...]]) -> str:
        if dt is None:
            return "None"
        if dt not in types:
            types[dt] = f"T{len(types)}"
            lines_t.append(f"{types[dt]} = {dt!r}")
        return types[dt]

    # Counted loops (maxOccurs up to 2048) make long runs of states that differ only in their
    # successor (sid + 1): those are written once as a run and expanded at import.
    def template(sid: int) -> Tuple[Any, ...]:
        width, prods = gb.states[sid]  # type: ignore[misc]
        return (width, tuple(p[:3] + ("+" if p[3] == sid + 1 else p[3],) + p[4:] for p in prods))

    def ptext(prods: Tuple[Any, ...]) -> str:
        out = []
        for kind, key, arg, nxt, is_list, direct, *uri in prods:
            a = str(arg) if kind in (K_SE,) or arg is None else tname(arg)
            u = f", {uri[0]}" if uri else ""
            out.append(f"({kind}, {key!r}, {a}, {nxt!r}, {is_list}, {direct}{u})")
        return ", ".join(out)

    state_lines: List[str] = []
    sid = 0
    n_states = len(gb.states)
    while sid < n_states:
        tpl = template(sid)
        run = 1
        if any(p[3] == "+" for p in tpl[1]):
            while sid + run < n_states and template(sid + run) == tpl:
                run += 1
        if run > 2:
            state_lines.append(f"    _run({run}, {tpl[0]}, ({ptext(tpl[1])},)),  # {sid}..{sid + run - 1}")
        else:
            run = 1
            width, prods = gb.states[sid]  # type: ignore[misc]
            state_lines.append(f"    ({width}, ({ptext(prods)},)),  # {sid}")
        sid += run
    files = sorted(schema.files.items())
    header = [
        "# Generated by `python -m exi.codegen` -- do not edit.",
        f"# Schema set {name!r}, root namespace {target_ns}, grammar variant {variant!r}; XSD files (sha256):",
    ]
    for path, digest in files:
        header.append(f"#   {os.path.relpath(path, os.path.abspath(xsd_dir))}  {digest}")
    header.append('"""EXI grammar tables (see exi/_engine.py for the tuple layout)."""')
    expand = [
        "",
        "",
        "class _run(tuple):",
        '    """count states alike but for the successor: \'+\' in a production = the next state id."""',
        "",
        "    def __new__(cls, count, width, prods):",
        "        return tuple.__new__(cls, (count, width, prods))",
        "",
        "",
        "def _expand(items):",
        "    out = []",
        "    for it in items:",
        "        if type(it) is _run:",
        "            count, width, prods = it",
        "            for _ in range(count):",
        "                sid = len(out)",
        "                out.append((width, tuple(p if p[3] != '+' else p[:3] + (sid + 1,) + p[4:] for p in prods)))",
        "        else:",
        "            out.append(it)",
        "    return tuple(out)",
        "",
    ]
    body = header + [f"NAMESPACE = {target_ns!r}", ""] + lines_t + expand + ["", "STATES = _expand(("] + state_lines + ["))", ""]
    body.append(f"DOC_STATE = {doc_state}")
    body.append(f"DOC_KEYS = {doc_keys!r}")
    body.append(f"FRAG_STATE = {frag_state}")
    body.append(f"FRAG_KEYS = {frag_keys!r}")
    body.append("# initial string table (qnames of xsi:type values and undeclared attributes/elements)")
    body.append(f"STRING_TABLE = ({uris!r},")
    body.append("    (" + ",\n     ".join(repr(p) for p in local_names) + "))")
    body.append("# xsi:type: type qname -> (start state of its type grammar, simple type)")
    body.append("XSI_TYPES = {")
    for qn, (sid, direct) in xsi_types.items():
        body.append(f"    {qn!r}: ({sid}, {direct}),")
    body.append("}")
    body.append("# SE(*): global element qname -> (start state of its grammar, simple type)")
    body.append("GLOBAL_ELEMENTS = {")
    for qn, (sid, direct) in sorted(global_elements.items()):
        body.append(f"    {qn!r}: ({sid}, {direct}),")
    body.append("}")
    return "\n".join(body) + "\n"


def generate_all(xsd_dir: str, out_dir: str, only: Optional[List[str]] = None) -> List[str]:
    """Write the table modules for every (or the named) schema set; return the written paths."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    init = os.path.join(out_dir, "__init__.py")
    if not os.path.exists(init):
        with open(init, "w") as fh:
            fh.write('"""Generated EXI grammar tables (python -m exi.codegen). Do not edit."""\n')
    for name in only or sorted(SCHEMA_SETS):
        text = build_tables(xsd_dir, name)
        path = os.path.join(out_dir, f"{name}.py")
        with open(path, "w") as fh:
            fh.write(text)
        written.append(path)
        jar_path = os.path.join(out_dir, f"{name}_jar.py")
        jar = jar_variant(xsd_dir, name)
        if jar is None:
            if os.path.exists(jar_path):
                os.remove(jar_path)
            continue
        with open(jar_path, "w") as fh:
            fh.write(jar)
        written.append(jar_path)
    return written


def jar_variant(xsd_dir: str, name: str) -> Optional[str]:
    """The ``iso15118-jar`` table module text of a set, or None where it equals the default."""
    if JAR_LOOP_ABOVE[name] is None:
        return None
    ref = build_tables(xsd_dir, name).replace("grammar variant 'exi'", "grammar variant 'iso15118-jar'")
    text = build_tables(xsd_dir, name, "iso15118-jar")
    return None if text == ref else text
