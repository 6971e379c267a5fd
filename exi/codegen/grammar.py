"""EXI 1.0 schema-informed grammars (spec section 8.5.4), non-strict, from a loaded Schema.

Each type grammar is built as an epsilon-NFA from its attribute uses (sorted by local name, then
namespace, 8.5.4.1.3), its content particle (sequence / choice / element / wildcard terms with
min/maxOccurs expanded into counted copies, 8.5.4.1.4-8.5.4.1.7) and EE, then normalised by subset
construction (8.5.4.2). Event codes are assigned per state (8.5.4.3): AT(qname) sorted by qname,
SE(qname) in schema order, SE(*), EE, CH. With strict=false every state reserves one more code for
the second-level escape, so a state with n productions spends bit_length(n) bits per event code.

Output: STATES, a list of (width, productions) with production tuples
(kind, key, arg, next_state, is_list, direct[, uri]) as documented in exi/_engine.py; AT and SE
productions carry their qname's URI as an index into the URI partition of the string table.
"""
from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from exi.codegen.xsd import (
    BUILTIN_INT_RANGES,
    DATETIME_TYPES,
    LIST_TYPES,
    STRING_LIKE,
    UNBOUNDED,
    ComplexType,
    ElementDecl,
    Particle,
    Schema,
    SimpleType,
    TypeDef,
)

#: Quirk of one reference implementation, as data: the grammars precompiled into EXICodec.jar
#: (iso15118 0.31.2, the codec of the Josev/iso15118 Python stack) do not unroll every bounded
#: element particle as EXI 1.0 section 8.5.4.1.6 says: above a per-schema-set maxOccurs they hold
#: "minOccurs copies, then a loop", so that after the maxOccurs-th item EE still costs a
#: 2-production event code. Measured against that jar (tests/exi_tests/golden/README.md): ISO-2
#: unrolls 2..8 and loops 16, 20, 24, 255 and 1024; AppProtocol unrolls 20; ISO-20 unrolls up to
#: 128 and loops 1024 and 2048. EXIficient itself, compiling the same XSDs at run time, unrolls
#: every count as the specification says (tests/exi_tests/_xsd_oracle.py), and so do our default
#: tables; these limits only shape the ``<set>_jar`` table modules behind
#: ``exi.get_codec(ns, grammars="iso15118-jar")``. ``None``: that set has no such variant. The
#: encoder enforces the maxOccurs of looped particles itself (EncodeError "occurs").
JAR_LOOP_ABOVE: Dict[str, Optional[int]] = {
    "apphand": None, "din": 8, "iso2": 8, "xmldsig": 8,
    "iso20_cm": 128, "iso20_ac": 128, "iso20_dc": 128, "iso20_wpt": 128, "iso20_acdp": 128,
}

# production kinds (must match exi/_engine.py)
K_AT, K_SE, K_EE, K_CH, K_ANY, K_ED = 0, 1, 2, 3, 4, 5
# datatype kinds (must match exi/_engine.py)
T_NBIT, T_UINT, T_INT, T_BOOL, T_ENUM, T_STRING, T_HEX, T_B64, T_DECIMAL, T_FLOAT, T_DATETIME, T_LIST = range(12)

Prod = Tuple[Any, ...]


def qname_key(qn: Tuple[str, str]) -> Tuple[str, str]:
    """EXI qname order: local name first, then namespace URI."""
    return (qn[1], qn[0])


def datatype(st: SimpleType) -> Tuple[Any, ...]:
    """The EXI datatype representation (spec 7.1) of a simple type, as a table tuple."""
    base = st.base
    if base in BUILTIN_INT_RANGES:
        lo, hi = BUILTIN_INT_RANGES[base]
        if st.min_incl is not None:
            lo = st.min_incl if lo is None else max(lo, st.min_incl)
        if st.max_incl is not None:
            hi = st.max_incl if hi is None else min(hi, st.max_incl)
        if st.enums:
            vals: Tuple[Any, ...] = tuple(int(v) for v in st.enums)
            return (T_ENUM, vals, (len(vals) - 1).bit_length())
        if lo is not None and hi is not None and hi - lo + 1 <= 4096:
            return (T_NBIT, (hi - lo).bit_length(), lo, hi)
        if lo is not None and lo >= 0:
            return (T_UINT, lo, hi)
        return (T_INT, lo, hi)
    if base == "boolean":
        return (T_BOOL,)
    if st.enums:
        if base not in STRING_LIKE:
            raise NotImplementedError(f"enumeration over {base}")
        vals = tuple(st.enums)
        return (T_ENUM, vals, (len(vals) - 1).bit_length())
    lo_len = st.length if st.length is not None else (st.min_len or 0)
    hi_len = st.length if st.length is not None else st.max_len
    if base in STRING_LIKE:
        return (T_STRING, lo_len, hi_len)
    if base == "decimal":
        return (T_DECIMAL,)
    if base in ("float", "double"):
        return (T_FLOAT,)
    if base in DATETIME_TYPES:
        return (T_DATETIME, base)
    if base in LIST_TYPES:
        return (T_LIST, (T_STRING, 0, None))
    if base == "hexBinary":
        return (T_HEX, lo_len, hi_len)
    if base == "base64Binary":
        return (T_B64, lo_len, hi_len)
    raise NotImplementedError(f"datatype {base}")


class _NFA:
    def __init__(self) -> None:
        self.eps: List[List[int]] = []
        self.term: List[List[Tuple[Tuple[Any, ...], int, int, Any]]] = []  # (label, target, order, info)

    def node(self) -> int:
        self.eps.append([])
        self.term.append([])
        return len(self.eps) - 1


class GrammarBuilder:
    """Builds the state table of a schema set."""

    def __init__(self, schema: Schema, loop_above: Optional[int] = None,
                 uri_index: Optional[Dict[str, int]] = None) -> None:
        self.loop_above = loop_above
        self.uri_index: Dict[str, int] = uri_index or {}
        self.schema = schema
        self.states: List[Optional[Tuple[int, Tuple[Prod, ...]]]] = []
        self._type_start: Dict[int, int] = {}
        self._keep: List[Any] = []  # keep typedefs alive (ids are cache keys)
        self._order = 0

    # -------------------------------------------------------------- public
    def element_entry(self, decl: ElementDecl) -> Tuple[int, bool]:
        """(start state of the element's type grammar, value is direct rather than a dict)."""
        t = decl.type
        direct = isinstance(t, SimpleType)
        return self.type_grammar(t), direct

    def type_grammar(self, t: TypeDef) -> int:
        key = id(t)
        if key in self._type_start:
            return self._type_start[key]
        self._keep.append(t)
        if isinstance(t, SimpleType):
            s0 = self._alloc()
            s1 = self._alloc()
            self._type_start[key] = s0
            dt = datatype(t)
            self.states[s0] = (1, ((K_CH, "value", dt, s1, False, False),))
            self.states[s1] = (1, ((K_EE, None, None, -1, False, False),))
            return s0
        start = self._alloc()
        self._type_start[key] = start
        self._complex(t, start)
        return start

    def add_state(self, width: int, prods: Tuple[Prod, ...]) -> int:
        sid = self._alloc()
        self.states[sid] = (width, prods)
        return sid

    # -------------------------------------------------------------- internals
    def _alloc(self) -> int:
        self.states.append(None)
        return len(self.states) - 1

    def _complex(self, ct: ComplexType, start_sid: int) -> None:
        nfa = _NFA()
        start = nfa.node()
        cur = start
        for att in sorted(ct.attributes, key=lambda a: qname_key(a.qname)):
            nxt = nfa.node()
            nfa.term[cur].append((("AT", att.qname), nxt, 0, datatype(att.type)))
            if not att.required:
                nfa.eps[cur].append(nxt)
            cur = nxt
        first_content = len(nfa.eps)
        content_start = cur
        if ct.simple is not None:
            nxt = nfa.node()
            nfa.term[cur].append((("CH",), nxt, 0, datatype(ct.simple)))
            cur = nxt
        elif ct.particle is not None:
            cur = self._particle(nfa, ct.particle, cur, False)
        end = -1
        nfa.term[cur].append((("EE",), end, 0, None))
        if ct.mixed:
            untyped = (T_STRING, 0, None)
            for n in sorted({content_start, *range(first_content, len(nfa.eps))}):
                nfa.term[n].append((("CH",), n, 0, untyped))
        self._determinize(nfa, start, start_sid)

    def _particle(self, nfa: _NFA, p: Particle, cur: int, rep: Any) -> int:
        rep = rep or p.max != 1
        looped = (self.loop_above is not None and p.max != UNBOUNDED and p.max > self.loop_above
                  and p.kind == "element")
        if looped:
            rep = p.max  # the count is enforced by the encoder, not by the grammar
        for _ in range(p.min):
            cur = self._once(nfa, p, cur, rep)
        if p.max == UNBOUNDED or looped:
            loop = nfa.node()
            nfa.eps[cur].append(loop)
            body_end = self._once(nfa, p, loop, rep)
            nfa.eps[body_end].append(loop)
            return loop
        extra = p.max - p.min
        if extra <= 0:
            return cur
        exit_node = nfa.node()
        for _ in range(extra):
            nfa.eps[cur].append(exit_node)
            cur = self._once(nfa, p, cur, rep)
        nfa.eps[cur].append(exit_node)
        return exit_node

    def _once(self, nfa: _NFA, p: Particle, cur: int, rep: bool) -> int:
        if p.kind == "element":
            assert p.elem is not None
            members = self.schema.substitutes(p.elem) if p.elem.is_global else [p.elem]
            members.sort(key=lambda e: qname_key(e.qname))
            nxt = nfa.node()
            for m in members:
                self._order += 1
                nfa.term[cur].append((("SE", m.qname), nxt, self._order, (m, rep)))
            return nxt
        if p.kind == "any":
            nxt = nfa.node()
            self._order += 1
            nfa.term[cur].append((("ANY",), nxt, self._order, rep))
            return nxt
        if p.kind == "sequence":
            for c in p.children:
                cur = self._particle(nfa, c, cur, rep)
            return cur
        if p.kind == "choice":
            end = nfa.node()
            for c in p.children:
                e = self._particle(nfa, c, cur, rep)
                nfa.eps[e].append(end)
            return end
        raise NotImplementedError(p.kind)

    @staticmethod
    def _closure(nfa: _NFA, nodes: FrozenSet[int]) -> FrozenSet[int]:
        todo = list(nodes)
        seen = set(nodes)
        while todo:
            n = todo.pop()
            for m in nfa.eps[n]:
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return frozenset(seen)

    def _determinize(self, nfa: _NFA, start: int, start_sid: int) -> None:
        first = self._closure(nfa, frozenset([start]))
        sids: Dict[FrozenSet[int], int] = {first: start_sid}
        todo = [first]
        pending: List[Tuple[int, Tuple[Tuple[Any, FrozenSet[int], Any], ...]]] = []
        while todo:
            S = todo.pop()
            groups: Dict[Tuple[Any, ...], List[Any]] = {}
            for n in sorted(S):
                for label, target, order, info in nfa.term[n]:
                    g = groups.get(label)
                    if g is None:
                        groups[label] = [set([target]), order, info]
                    else:
                        g[0].add(target)
                        g[1] = min(g[1], order)
            prods: List[Tuple[Tuple[Any, ...], Any, FrozenSet[int], Any]] = []
            for label, (targets, order, info) in groups.items():
                if label[0] == "EE":
                    prods.append(((3, 0, "", ""), label, frozenset(), info))
                    continue
                tgt = self._closure(nfa, frozenset(targets))
                if tgt not in sids:
                    sids[tgt] = self._alloc()
                    todo.append(tgt)
                if label[0] == "AT":
                    sk: Tuple[Any, ...] = (0, 0, label[1][1], label[1][0])
                elif label[0] == "SE":
                    sk = (1, order, "", "")
                elif label[0] == "ANY":
                    sk = (2, order, "", "")
                else:  # CH
                    sk = (4, 0, "", "")
                prods.append((sk, label, tgt, info))
            prods.sort(key=lambda x: x[0])
            pending.append((sids[S], tuple((label, tgt, info) for _sk, label, tgt, info in prods)))
        for sid, plist in pending:
            out: List[Prod] = []
            for label, tgt, info in plist:
                nxt = sids[tgt] if label[0] != "EE" else -1
                if label[0] == "AT":
                    out.append((K_AT, label[1][1], info, nxt, False, False, self.uri_index[label[1][0]]))
                elif label[0] == "SE":
                    decl, rep = info
                    entry, direct = self.element_entry(decl)
                    out.append((K_SE, decl.qname[1], entry, nxt, rep, direct, self.uri_index[decl.qname[0]]))
                elif label[0] == "ANY":
                    out.append((K_ANY, None, None, nxt, info, False))
                elif label[0] == "CH":
                    out.append((K_CH, "value", info, nxt, False, False))
                else:
                    out.append((K_EE, None, None, -1, False, False))
            self.states[sid] = (len(out).bit_length(), tuple(out))
