"""EXI engine: runs the generated grammar tables (one logic source for both implementations).

This file is the pure-Python engine (``EXI_IMPL=python``) and, compiled by Cython in pure-Python mode
under the module name ``exi._cengine``, the compiled one (``cython.compiled`` branches only swap a
bytearray for a C buffer). It encodes/decodes EXI 1.0 bit-packed streams with the options of V2G
(header byte 0x80, schema-informed, strict=false, no preserve options). The encoder writes every
string value as a literal (valuePartitionCapacity 0, the V2G setting); the decoder also reads
value-table hits (EXI 1.0 section 7.3.3, default partitions) that peers with other settings write.
Second-level events: undeclared EE and CH, xsi:nil, xsi:type, AT(*) and SE(*) (undeclared and
wildcard elements, with the built-in element grammar as EXIficient caps it for V2G), their qnames
through the stream's string table (initial partitions generated with the grammars).

Table layout (written by exi/codegen, converted once per schema set into _State/_Prod/_DT objects):
    STATES[sid] = (width, productions); width = bits per event code in that state.
    production = (kind, key, arg, next_state, is_list, direct[, uri])
      uri (AT and SE only): index of the qname's URI in the string table's URI partition
      kind K_AT: attribute ``key`` of datatype ``arg``
      kind K_SE: child element ``key``; ``arg`` = start state of its type grammar (-1: unsupported);
                 ``is_list`` when the particle may repeat (the dict holds a list): True, or the
                 particle's maxOccurs where the grammar loops instead of counting (the encoder
                 enforces that cap, see JAR_LOOP_ABOVE in exi/codegen/grammar.py); ``direct`` when the
                 element has a simple type (the dict holds the value itself instead of a dict)
      kind K_EE: end element;  K_CH: character content of datatype ``arg`` (dict key "value")
      kind K_ANY: SE(*) wildcard (key None) or AT(*) (key "@*");  K_ED: end document/fragment
    datatype = (T_NBIT, nbits, min, max) | (T_UINT, min, max|None) | (T_INT, min|None, max|None)
             | (T_BOOL,) | (T_ENUM, values, nbits) | (T_STRING|T_HEX|T_B64, min_len, max_len|None)
"""
from __future__ import annotations

try:
    import cython
except ImportError:  # pragma: no cover - pure-Python engine without Cython installed
    from exi import _cyshim as cython  # type: ignore[no-redef]

if cython.compiled:
    from cython.cimports.cpython.bytes import PyBytes_AS_STRING, PyBytes_FromStringAndSize
    from cython.cimports.cpython.dict import PyDict_Next
    from cython.cimports.cpython.long import PyLong_AsLongLongAndOverflow
    from cython.cimports.cpython.object import PyObject, PyObject_Hash
    from cython.cimports.cpython.unicode import (PyUnicode_1BYTE_DATA, PyUnicode_1BYTE_KIND, PyUnicode_CheckExact,
                                                 PyUnicode_DATA, PyUnicode_DecodeASCII, PyUnicode_DecodeUTF8,
                                                 PyUnicode_GET_LENGTH, PyUnicode_KIND)
    from cython.cimports.cpython.mem import PyMem_Free, PyMem_Malloc, PyMem_Realloc
    from cython.cimports.libc.string import memchr, memcmp, memcpy

import base64
from typing import TYPE_CHECKING, Optional

from exi.errors import DecodeError, EncodeError

if TYPE_CHECKING:
    from typing import Any, Dict, Union

    # Names for type checkers only: Cython does not know them and compiles what they annotate as a
    # plain Python object, exactly as ``object`` (an ``int``, ``dict`` or ``bytes`` annotation would
    # make Cython type the slot or argument and check the exact type on every assignment and call).
    # ``Optional[X]`` below keeps the C type of X (None was always allowed there).
    _PyInt = int
    _OptPyInt = Optional[int]
    _Message = Dict[str, Any]
    _Buffer = Union[bytes, bytearray, memoryview]

K_AT = cython.declare(cython.int, 0)
K_SE = cython.declare(cython.int, 1)
K_EE = cython.declare(cython.int, 2)
K_CH = cython.declare(cython.int, 3)
K_ANY = cython.declare(cython.int, 4)
K_ED = cython.declare(cython.int, 5)

T_NBIT = cython.declare(cython.int, 0)
T_UINT = cython.declare(cython.int, 1)
T_INT = cython.declare(cython.int, 2)
T_BOOL = cython.declare(cython.int, 3)
T_ENUM = cython.declare(cython.int, 4)
T_STRING = cython.declare(cython.int, 5)
T_HEX = cython.declare(cython.int, 6)
T_B64 = cython.declare(cython.int, 7)
# the XML Schema built-ins the V2G schemas never use, reachable through xsi:type only
T_DECIMAL = cython.declare(cython.int, 8)
T_FLOAT = cython.declare(cython.int, 9)
T_DATETIME = cython.declare(cython.int, 10)  # (T_DATETIME, "dateTime" | "date" | "time" | "gYear" | ...)
T_LIST = cython.declare(cython.int, 11)  # (T_LIST, item datatype)

_TYPE_NAMES = ("n-bit integer", "unsigned integer", "integer", "boolean", "enumeration", "string", "hexBinary",
               "base64Binary", "decimal", "float", "date-time", "list")
#: dict key of a nil element (AT(xsi:nil) true; EXI 1.0 section 8.5.4.4.1): ``{"xsi:nil": True}``
#: beside the element's attributes, no content
XSI_NIL = "xsi:nil"
#: an element's children in stream order, by key, where the keyed dict alone cannot give it
ORDER = "$order"
_MAX_DEPTH = cython.declare(cython.int, 64)  # element nesting limit (the schemas need < 20; relaxed fragments recurse)
_LL_MIN = -(2**62)
_LL_MAX = 2**62


# --------------------------------------------------------------------------------------------- tables
#: longest key table (_ktab_new) scanned instead of a dict probe: beyond it (substitution groups,
#: large enumerations) the dict's hashing wins over a linear scan
_KTAB_MAX = cython.declare(cython.int, 24)
_KTAB_W = cython.declare(cython.int, 5)  # words per entry: hash, str object, its data, its size, index


@cython.cfunc
def _ktab_new(items: list) -> cython.p_longlong:
    """A C table of str keys (compiled engine): per (key, index) of ``items``, five words: the
    key's hash, the str object (borrowed: the caller keeps the key alive), its character data,
    its size in bytes times 8 plus its PEP 393 kind, and the index. NULL if a key is not an exact
    str (its table then stays a dict). _kfind scans it."""
    tab: cython.p_longlong = cython.NULL
    i: cython.Py_ssize_t
    e: cython.p_longlong
    if cython.compiled:
        for k, _ in items:
            if not PyUnicode_CheckExact(k):
                return cython.NULL
        tab = cython.cast(cython.p_longlong, PyMem_Malloc(8 * _KTAB_W * (len(items) + 1)))
        if tab == cython.NULL:
            raise MemoryError()
        for i in range(len(items)):
            k = items[i][0]
            e = tab + _KTAB_W * i
            e[0] = PyObject_Hash(k)
            e[1] = cython.cast(cython.longlong, cython.cast(cython.p_void, k))
            e[2] = cython.cast(cython.longlong, PyUnicode_DATA(k))
            e[3] = (PyUnicode_GET_LENGTH(k) * PyUnicode_KIND(k)) * 8 + PyUnicode_KIND(k)
            e[4] = items[i][1]
    return tab


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _kfind(tab: cython.p_longlong, n: cython.int, k: object) -> cython.int:
    """The index that the key table ``tab`` (n entries, _ktab_new) gives the exact str ``k``, -1 if
    none: the dict probe it replaces, as a scan of cached hashes (str hashes are cached in the
    object), confirmed by identity or by size, kind and bytes."""
    i: cython.int
    e: cython.p_longlong
    h: cython.longlong
    kn: cython.longlong
    if cython.compiled:
        h = PyObject_Hash(k)
        e = tab
        for i in range(n):
            if e[0] == h:
                if e[1] == cython.cast(cython.longlong, cython.cast(cython.p_void, k)):
                    return cython.cast(cython.int, e[4])
                kn = (PyUnicode_GET_LENGTH(k) * PyUnicode_KIND(k)) * 8 + PyUnicode_KIND(k)
                if e[3] == kn and memcmp(cython.cast(cython.p_void, e[2]), PyUnicode_DATA(k), kn >> 3) == 0:
                    return cython.cast(cython.int, e[4])
            e += _KTAB_W
    return -1


@cython.final
@cython.cclass
class _DT:
    """A datatype with its facets unpacked into C fields."""

    kind: cython.int
    nbits: cython.int
    lo: cython.longlong  # bounds when they fit (lo_c / hi_c), else Python objects
    hi: cython.longlong
    lo_c: cython.bint
    hi_c: cython.bint
    lo_obj: _OptPyInt
    hi_obj: _OptPyInt
    values: tuple
    index: dict
    ext: object  # T_DATETIME: the type's name; T_LIST: the item _DT
    jvals: tuple  # T_ENUM: each literal as JSON text (bytes)
    # T_ENUM of str literals (compiled engine): the literals' key table (_ktab_new), NULL if none
    vtab: cython.p_longlong
    nv: cython.int
    # integers: every value of 18 digits or fewer (the JSON reader's C integers) is inside the
    # bounds that do not fit C (lo_c / hi_c false), so the C bounds alone decide
    llok: cython.bint

    def __init__(self, raw: tuple) -> None:
        self.kind = raw[0]
        self.nv = 0
        self.nbits = 0
        self.lo = 0
        self.hi = 0
        self.lo_obj = None
        self.hi_obj = None
        self.values = ()
        self.index = {}
        self.ext = None
        self.jvals = ()
        if self.kind >= T_DECIMAL:
            if self.kind == T_DATETIME:
                self.ext = raw[1]
            elif self.kind == T_LIST:
                self.ext = _DT(raw[1])
        elif self.kind == T_NBIT:
            self.nbits = raw[1]
            self.lo_obj = raw[2]
            self.hi_obj = raw[3]
        elif self.kind == T_ENUM:
            self.values = raw[1]
            self.nbits = raw[2]
            self.index = {v: i for i, v in enumerate(raw[1])}
            if cython.compiled and 0 < len(raw[1]) <= _KTAB_MAX and len(self.index) == len(raw[1]):
                self.vtab = _ktab_new(list(self.index.items()))
                if self.vtab != cython.NULL:
                    self.nv = len(raw[1])
            self.jvals = tuple([(('"%s"' % v) if isinstance(v, str) else str(v)).encode("utf-8") for v in raw[1]])
        elif self.kind != T_BOOL:
            self.lo_obj = raw[1]
            self.hi_obj = raw[2]
        self.lo_c = self.lo_obj is not None and _LL_MIN < self.lo_obj < _LL_MAX
        self.hi_c = self.hi_obj is not None and _LL_MIN < self.hi_obj < _LL_MAX
        if self.lo_c:
            self.lo = self.lo_obj
        if self.hi_c:
            self.hi = self.hi_obj
        self.llok = not ((self.lo_obj is not None and not self.lo_c and self.lo_obj > 0)
                         or (self.hi_obj is not None and not self.hi_c and self.hi_obj < 0))

    def __dealloc__(self) -> None:
        if cython.compiled:
            if self.vtab != cython.NULL:
                PyMem_Free(self.vtab)
                self.vtab = cython.NULL


@cython.final
@cython.cclass
class _Prod:
    kind: cython.int
    key: object
    arg: cython.int  # K_SE: start state of the child's grammar
    nxt: cython.int
    code: cython.int  # index of this production in its state (= its event code)
    is_list: cython.bint
    cap: cython.Py_ssize_t  # maxOccurs the grammar does not enforce itself (looped particle), else 0
    direct: cython.bint
    dt: _DT
    # K_SE: the keys of SE productions before this one in its state that may still come after it
    # (a repeated choice): the keyed encoder, taking the first production with items left, would
    # write them here, so one of them coming later needs the ordered form (ORDER). None if none.
    later: Optional[frozenset]
    qn: object  # AT / SE: the (uri, local name) qname (its local value partition), else None
    # the jar's JSON (exi.josev): the key as JSON text, a child that is a list there (a repeating
    # one, or any child of mixed content), and (child key, its JSON) of a zero default (jar_defaults)
    jkey: bytes
    jlist: cython.bint
    jdef: object
    # K_SE of a simple-typed child with a grammar: the datatype of its content (the CH production
    # that starts the child's grammar), set by _compile_states; else None
    cdt: Optional[_DT]

    def __init__(self, raw: tuple, dts: dict, code: int, uris: tuple = ()) -> None:
        self.kind = raw[0]
        self.cdt = None
        self.key = raw[1]
        self.code = code
        self.qn = None
        self.jkey = (('"%s":' % raw[1]) if isinstance(raw[1], str) else "").encode("utf-8")
        self.jlist = bool(raw[4])
        self.jdef = None
        if len(raw) > 6 and raw[6] < len(uris):
            local = raw[1]
            if local.startswith("{"):
                local = local[local.find("}") + 1:]
            self.qn = (uris[raw[6]], local)
        self.arg = raw[2] if self.kind == K_SE else 0
        self.nxt = raw[3]
        self.is_list = bool(raw[4])
        self.cap = raw[4] if type(raw[4]) is int else 0
        self.direct = raw[5]
        self.dt = None  # type: ignore[assignment]  # only AT and CH productions carry (and read) a datatype
        self.later = None
        if self.kind == K_AT or self.kind == K_CH:
            dt = dts.get(raw[2])
            if dt is None:
                dt = dts[raw[2]] = _DT(raw[2])
            self.dt = dt


@cython.final
@cython.cclass
class _State:
    width: cython.int
    n: cython.int
    ee: cython.int  # index of the EE production, -1 if none
    ed: cython.int  # index of the ED production, -1 if none
    prods: tuple
    keymap: dict  # key -> index of the first production with that key
    pmap: dict  # key -> that first production itself (one lookup on the encoder's fast path)
    # second-level (undeclared) productions of non-strict grammars, EXI 1.0 section 8.5.4.4.1:
    # tag 0 = first start tag (EE?, AT(xsi:type), AT(xsi:nil), AT(*), AT(invalid), SE(*), CH),
    # 1 = start tag after attributes (EE?, AT(*), AT(invalid), SE(*), CH), 2 = element content
    # (EE?, SE(*), CH); "EE?" only where EE is not a first-level production. Set by _compile_states.
    tag: cython.int
    l2_n: cython.int
    l2_width: cython.int
    any_se: cython.int  # index of the first SE(*) production (a wildcard), -1 if none
    content2: cython.int  # start tags: the state after a second-level SE(*) or CH (no AT productions)
    mixed: cython.bint  # CH beside SE: mixed content
    osens: cython.bint  # in a type grammar whose children's order the keyed dict cannot hold (exi.josev)
    # the jar's JSON encoder (compiled engine): per production, the length and first 7 bytes of its
    # key in one word (_key_word), so that a JSON key finds its production in one contiguous scan
    jfp: cython.p_ulonglong
    # the keys of pmap as a key table (_ktab_new; compiled engine, small states), NULL if none
    ktab: cython.p_longlong
    nk: cython.int

    def __init__(self, raw: tuple, dts: dict, uris: tuple = ()) -> None:
        self.width = raw[0]
        self.nk = 0
        self.prods = tuple([_Prod(p, dts, i, uris) for i, p in enumerate(raw[1])])
        self.n = len(self.prods)
        if cython.compiled:
            self.jfp = cython.cast(cython.p_ulonglong, PyMem_Malloc(8 * (self.n + 1)))
            if self.jfp == cython.NULL:
                raise MemoryError()
            for i, p in enumerate(self.prods):
                self.jfp[i] = _key_word(cython.cast(_Prod, p))
        self.ee = -1
        self.ed = -1
        self.tag = 2
        self.l2_n = 0
        self.l2_width = 0
        self.any_se = -1
        self.content2 = -1
        self.osens = False
        self.keymap = {}
        for i, p in enumerate(raw[1]):
            if p[0] == K_EE and self.ee < 0:
                self.ee = i
            elif p[0] == K_ED and self.ed < 0:
                self.ed = i
            elif p[0] == K_ANY and p[1] is None and self.any_se < 0:
                self.any_se = i
            elif p[0] in (K_AT, K_SE, K_CH) and p[1] not in self.keymap:
                self.keymap[p[1]] = i
        self.pmap = {k: self.prods[i] for k, i in self.keymap.items()}
        if cython.compiled and 0 < len(self.keymap) <= _KTAB_MAX:
            self.ktab = _ktab_new(list(self.keymap.items()))
            if self.ktab != cython.NULL:
                self.nk = len(self.keymap)
        kinds = {p[0] for p in raw[1]}
        self.mixed = K_CH in kinds and K_SE in kinds
        if self.mixed:
            for p in self.prods:
                if cython.cast(_Prod, p).kind == K_SE:
                    cython.cast(_Prod, p).jlist = True


    def __dealloc__(self) -> None:
        if cython.compiled:
            if self.jfp != cython.NULL:
                PyMem_Free(self.jfp)
                self.jfp = cython.NULL
            if self.ktab != cython.NULL:
                PyMem_Free(self.ktab)
                self.ktab = cython.NULL


def _key_word(p: _Prod) -> int:
    """A production's key as _State.jfp holds it: its first 7 bytes (first byte lowest) and its
    length (up to 255) in the top byte; all ones (which no ASCII JSON key gives) where the
    production has no key the JSON encoder looks up."""
    if not (p.kind == K_SE or p.kind == K_AT or p.kind == K_CH) or len(p.jkey) < 3:
        return 0xFFFFFFFFFFFFFFFF
    k: bytes = p.jkey[1:-2]
    w = 0
    for i, b in enumerate(k[:7]):
        w |= b << (8 * i)
    return w | (min(len(k), 255) << 56)


_COMPILED: dict = {}


def _compile_states(raw_states: tuple, type_starts: tuple = (), uris: tuple = ()) -> tuple:
    got = _COMPILED.get(id(raw_states))
    if got is not None and got[0] is raw_states:
        return got[1]
    st: _State
    tw: _State
    dts: dict = {}
    slist = [_State(s, dts, uris) for s in raw_states]
    _classify_tags(slist, type_starts)
    # Element_i,content2 of every start-tag state (EXI 1.0 8.5.4.4.1): its productions without the
    # attributes, where an element goes on after a second-level SE(*) in its start tag
    for i in range(len(raw_states)):
        st = slist[i]
        if st.tag != 2:
            prods = tuple([q for q in raw_states[i][1] if q[0] != K_AT and not (q[0] == K_ANY and q[1] is not None)])
            tw = _State((len(prods).bit_length(), prods), dts, uris)
            _set_tag(tw, 2)
            st.content2 = len(slist)
            slist.append(tw)
    # the content datatype of each simple-typed child, for the encoder's fast path
    for tw in slist:
        for q in tw.prods:
            pq = cython.cast(_Prod, q)
            if pq.kind == K_SE and pq.direct and 0 <= pq.arg < len(raw_states):
                pq.cdt = cython.cast(_Prod, cython.cast(_State, slist[pq.arg]).prods[0]).dt
    _mark_later(slist)
    _mark_osens(slist, type_starts)
    states = tuple(slist)
    _COMPILED[id(raw_states)] = (raw_states, states)
    return states


def _mark_later(states: list) -> None:
    """Set ``later`` of every SE production that has SE productions of other keys before it in
    its state which stay reachable after it (see _Prod.later)."""
    st: _State
    p: _Prod
    q: _Prod
    reach: dict = {}  # state -> SE keys reachable from it (its own included)
    for st in states:
        ses = [p for p in st.prods if p.kind == K_SE]
        if len(ses) < 2:
            continue
        for i in range(1, len(ses)):
            p = ses[i]
            got = reach.get(p.nxt)
            if got is None:
                got = reach[p.nxt] = _se_keys_from(states, p.nxt)
            later = frozenset([q.key for q in ses[:i] if q.key != p.key and q.key in got])
            if later:
                p.later = later


def _own_states(states: list, sid: int) -> list:
    """The states of the type grammar from ``sid`` (not descending into children)."""
    st: _State
    p: _Prod
    out = []
    seen = set()
    todo = [sid]
    while todo:
        s = todo.pop()
        if s < 0 or s in seen:
            continue
        seen.add(s)
        out.append(s)
        st = states[s]
        for p in st.prods:
            todo.append(p.nxt)
    return out


def _mark_osens(states: list, type_starts: tuple) -> None:
    """Set ``osens`` on the states of every type grammar with mixed content or a repeated choice
    (two child keys that can each follow the other): there the jar's JSON groups a child's
    occurrences under one key and the JSON decoder must see when one comes back later."""
    st: _State
    p: _Prod
    starts = set(type_starts)
    for st in states:
        for p in st.prods:
            if p.kind == K_SE and p.arg >= 0:
                starts.add(p.arg)
    for s0 in starts:
        own = _own_states(states, s0)
        sens = False
        after: dict = {}
        for s in own:
            st = states[s]
            if st.mixed:
                sens = True
                break
            for p in st.prods:
                if p.kind == K_SE:
                    got = after.get(p.key)
                    if got is None:
                        got = after[p.key] = set()
                    got.update(_se_keys_from(states, p.nxt))
        if not sens:
            for a, later in after.items():
                for b in later:
                    if b != a and a in after.get(b, ()):
                        sens = True
                        break
                if sens:
                    break
        if sens:
            for s in own:
                cython.cast(_State, states[s]).osens = True


def _se_keys_from(states: list, sid: int) -> frozenset:
    st: _State
    p: _Prod
    keys = set()
    seen = set()
    todo = [sid]
    while todo:
        s = todo.pop()
        if s < 0 or s in seen:
            continue
        seen.add(s)
        st = states[s]
        for p in st.prods:
            if p.kind == K_SE:
                keys.add(p.key)
            todo.append(p.nxt)
    return frozenset(keys)


def _set_tag(st: _State, tag: int) -> None:
    st.tag = tag
    st.l2_n = (1 if st.ee < 0 else 0) + (6 if tag == 0 else 4 if tag == 1 else 2)
    st.l2_width = (st.l2_n - 1).bit_length()


def _classify_tags(states: list, type_starts: tuple) -> None:
    """Mark each state as first start tag, start tag or element content (for second-level codes).

    First start tags are the start states of element grammars (targets of SE productions) and of
    the type grammars xsi:type may name; start tags are the states reached from those through
    attributes only; everything else is content."""
    st: _State
    p: _Prod
    firsts = set(type_starts)
    for st in states:
        for p in st.prods:
            if p.kind == K_SE and p.arg >= 0:
                firsts.add(p.arg)
    tags = [2] * len(states)
    todo = []
    for s in firsts:
        tags[s] = 0
        todo.append(s)
    while todo:
        st = states[todo.pop()]
        for p in st.prods:
            if p.kind == K_AT and p.nxt >= 0 and tags[p.nxt] == 2:
                tags[p.nxt] = 1
                todo.append(p.nxt)
    for i in range(len(states)):
        _set_tag(states[i], tags[i])


@cython.final
@cython.cclass
class _SchemaInfo:
    """What second-level events need of a schema set: its initial qname string table (EXI 1.0
    appendix D) and the type grammars an xsi:type may name."""

    string_table: tuple  # (URIs, local names per URI)
    xsi_types: dict  # (uri, local name) -> (start state, simple type)
    by_local: dict  # local name -> [(uri, local name)] of the types with that local name
    globals: dict  # (uri, local name) -> (start state, simple type) of the global elements (SE(*))

    def __init__(self, string_table: tuple, xsi_types: dict, global_elements: dict) -> None:
        self.string_table = string_table
        self.xsi_types = xsi_types
        self.globals = global_elements
        self.by_local = {}
        for qn in xsi_types:
            self.by_local.setdefault(qn[1], []).append(qn)


@cython.final
@cython.cclass
class _QNames:
    """The qname partitions of one stream's string table (EXI 1.0 section 7.3): the URI partition
    and one local-name partition per URI, initialised from the schema and grown by every miss."""

    uris: list
    uri_ix: dict
    names: list  # per URI: its local names in order of their compact ids
    name_ix: list  # per URI: local name -> compact id

    def __init__(self, info: _SchemaInfo) -> None:
        uris, names = info.string_table
        self.uris = list(uris)
        self.uri_ix = {u: i for i, u in enumerate(uris)}
        self.names = [list(p) for p in names]
        self.name_ix = [{n: i for i, n in enumerate(p)} for p in names]

    def add_uri(self, uri: str) -> int:
        self.uri_ix[uri] = len(self.uris)
        self.uris.append(uri)
        self.names.append([])
        self.name_ix.append({})
        return len(self.uris) - 1


@cython.final
@cython.cclass
class _Values:
    """The value partitions of one stream's string table (EXI 1.0 section 7.3.3), as a decoder
    with the EXI defaults (valueMaxLength and valuePartitionCapacity unbounded) keeps them: every
    string value read as a literal joins the global partition and the local partition of its
    qname (the element or attribute it belongs to); the empty string joins neither.

    Kept only once a stream has shown a hit (see Grammar._dec): V2G peers run with
    valuePartitionCapacity 0 and never write one, and then nothing is recorded."""

    glob: list
    local: dict  # qname -> list of its values in order of their local ids

    def __init__(self) -> None:
        self.glob = []
        self.local = {}

    @cython.cfunc
    @cython.exceptval(-1)
    def add(self, qn: object, value: str) -> cython.int:
        lst = self.local.get(qn)
        if lst is None:
            self.local[qn] = [value]
        else:
            cython.cast(list, lst).append(value)
        self.glob.append(value)
        return 0


class _Restart(Exception):
    """Internal: a value-table hit met by a decoder that keeps no value table (the fast path);
    Grammar._dec decodes the stream again with one."""


_RESTART = _Restart()


#: second-level events of each tag kind, after the optional leading EE
_L2_EVENTS = (("AT(xsi:type)", "AT(xsi:nil)", "AT(*)", "AT(invalid)", "SE(*)", "CH"),
              ("AT(*)", "AT(invalid)", "SE(*)", "CH"),
              ("SE(*)", "CH"))


# --------------------------------------------------------------------------------------------- writer
@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _load_be64(p: cython.p_uchar) -> cython.ulonglong:
    """8 bytes as a big-endian 64-bit word (the compiler makes this one load and a byte swap)."""
    return ((cython.cast(cython.ulonglong, p[0]) << 56) | (cython.cast(cython.ulonglong, p[1]) << 48)
            | (cython.cast(cython.ulonglong, p[2]) << 40) | (cython.cast(cython.ulonglong, p[3]) << 32)
            | (cython.cast(cython.ulonglong, p[4]) << 24) | (cython.cast(cython.ulonglong, p[5]) << 16)
            | (cython.cast(cython.ulonglong, p[6]) << 8) | cython.cast(cython.ulonglong, p[7]))


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _store_be64(p: cython.p_uchar, v: cython.ulonglong) -> cython.void:
    """Store a 64-bit word as 8 big-endian bytes."""
    p[0] = (v >> 56) & 0xFF
    p[1] = (v >> 48) & 0xFF
    p[2] = (v >> 40) & 0xFF
    p[3] = (v >> 32) & 0xFF
    p[4] = (v >> 24) & 0xFF
    p[5] = (v >> 16) & 0xFF
    p[6] = (v >> 8) & 0xFF
    p[7] = v & 0xFF


@cython.final
@cython.cclass
class _Writer:
    """MSB-first bit writer (C buffer when compiled, bytearray otherwise)."""

    cbuf: cython.p_uchar
    size: cython.Py_ssize_t
    cap: cython.Py_ssize_t
    pbuf: bytearray
    acc: cython.ulonglong
    nacc: cython.int
    info: Optional[_SchemaInfo]  # the schema set's string table and xsi:type map (set by Grammar)
    qt: Optional[_QNames]  # this stream's qname string table, made on first use
    learned: Optional[set]  # qnames whose built-in element grammar has learnt AT(xsi:type)

    def __init__(self) -> None:
        self.info = None
        self.qt = None
        self.learned = None
        self.acc = 0
        self.nacc = 0
        self.size = 0
        self.cap = 0
        if cython.compiled:
            self.cbuf = cython.cast(cython.p_uchar, PyMem_Malloc(256))
            if self.cbuf == cython.NULL:
                raise MemoryError()
            self.cap = 256
        else:
            self.pbuf = bytearray()

    def __dealloc__(self) -> None:
        if cython.compiled:
            if self.cbuf != cython.NULL:
                PyMem_Free(self.cbuf)
                self.cbuf = cython.NULL

    @cython.cfunc
    @cython.inline
    def reset(self) -> cython.void:
        """Empty the writer for the next message (the compiled buffer keeps its capacity)."""
        self.acc = 0
        self.nacc = 0
        self.size = 0
        self.qt = None
        self.learned = None
        if not cython.compiled:
            self.pbuf = bytearray()

    @cython.cfunc
    @cython.exceptval(-1)
    def _reserve(self, extra: cython.Py_ssize_t) -> cython.int:
        newcap: cython.Py_ssize_t
        if cython.compiled:
            if self.size + extra > self.cap:
                newcap = 2 * self.cap
                if newcap < self.size + extra:
                    newcap = self.size + extra
                p = PyMem_Realloc(self.cbuf, newcap)
                if p == cython.NULL:
                    raise MemoryError()
                self.cbuf = cython.cast(cython.p_uchar, p)
                self.cap = newcap
        return 0

    @cython.cfunc
    @cython.inline
    @cython.exceptval(-1)
    def bits(self, value: cython.ulonglong, n: cython.int) -> cython.int:
        """Write the n (<= 32) low bits of value."""
        acc: cython.ulonglong = (self.acc << n) | value
        nacc: cython.int = self.nacc + n
        if nacc >= 8:
            if cython.compiled:
                if self.size + 8 > self.cap:
                    self._reserve(8)
                while nacc >= 8:
                    nacc -= 8
                    self.cbuf[self.size] = (acc >> nacc) & 0xFF
                    self.size += 1
            else:
                while nacc >= 8:
                    nacc -= 8
                    self.pbuf.append((acc >> nacc) & 0xFF)
            acc &= (cython.cast(cython.ulonglong, 1) << nacc) - 1
        self.acc = acc
        self.nacc = nacc
        return 0

    @cython.cfunc
    @cython.exceptval(-1)
    def unsigned(self, value: _PyInt) -> cython.int:
        """EXI unsigned integer of any size: 7-bit groups, least significant first, MSB = more follow."""
        while value >= 0x80:
            self.bits((value & 0x7F) | 0x80, 8)
            value >>= 7
        self.bits(value, 8)
        return 0

    @cython.cfunc
    @cython.exceptval(-1)
    def uint_small(self, v: cython.ulonglong) -> cython.int:
        while v >= 0x80:
            self.bits((v & 0x7F) | 0x80, 8)
            v >>= 7
        self.bits(v, 8)
        return 0

    @cython.cfunc
    @cython.exceptval(-1)
    def blob(self, data: bytes) -> cython.int:
        """Write raw bytes at any bit alignment."""
        if cython.compiled:
            return self.blob_raw(cython.cast(cython.p_uchar, PyBytes_AS_STRING(data)), len(data))
        n = len(data)
        sh = self.nacc
        if sh == 0:
            self.pbuf += data
            return 0
        total = (int(self.acc) << (8 * n)) | int.from_bytes(data, "big")
        self.pbuf += (total >> sh).to_bytes(n, "big")
        self.acc = total & ((1 << sh) - 1)
        return 0

    @cython.cfunc
    @cython.exceptval(-1)
    def blob_raw(self, src: cython.p_uchar, n: cython.Py_ssize_t) -> cython.int:
        """Write n raw bytes from a C buffer at any bit alignment (compiled engine only)."""
        i: cython.Py_ssize_t
        sh: cython.int = self.nacc
        acc: cython.ulonglong = self.acc
        b: cython.ulonglong
        if cython.compiled:
            self._reserve(n + 1)
            if sh == 0:
                memcpy(self.cbuf + self.size, src, n)
                self.size += n
                return 0
            dst: cython.p_uchar = self.cbuf + self.size
            mask: cython.ulonglong = (cython.cast(cython.ulonglong, 1) << sh) - 1
            wd: cython.ulonglong
            o: cython.ulonglong
            i = 0
            while i + 8 <= n:  # 64 bits at a time (the compiler turns these into a load/store + bswap)
                wd = _load_be64(src + i)
                o = (acc << (64 - sh)) | (wd >> sh)
                _store_be64(dst + i, o)
                acc = wd & mask
                i += 8
            while i < n:
                b = src[i]
                dst[i] = ((acc << (8 - sh)) | (b >> sh)) & 0xFF
                acc = b & mask
                i += 1
            self.size += n
            self.acc = acc
        return 0

    @cython.cfunc
    def finish(self) -> bytes:
        if self.nacc:
            self.bits(0, 8 - self.nacc)
        if cython.compiled:
            return PyBytes_FromStringAndSize(cython.cast(cython.p_char, self.cbuf), self.size)
        return bytes(self.pbuf)


# --------------------------------------------------------------------------------------------- reader
@cython.final
@cython.cclass
class _Reader:
    """MSB-first bit reader; every read checks the remaining length first."""

    data: bytes
    ptr: cython.p_uchar
    pos: cython.Py_ssize_t
    end: cython.Py_ssize_t
    info: Optional[_SchemaInfo]  # the schema set's string table and xsi:type map (set by Grammar)
    qt: Optional[_QNames]  # this stream's qname string table, made on first use
    builtins: Optional[dict]  # qname -> [StartTagContent, ElementContent] learnt productions
    vt: Optional[_Values]  # the value partitions, kept only when the stream has hits

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.info = None
        self.qt = None
        self.builtins = None
        self.vt = None
        if cython.compiled:
            self.ptr = cython.cast(cython.p_uchar, PyBytes_AS_STRING(data))
        self.pos = 0
        self.end = 8 * len(data)

    @cython.cfunc
    @cython.exceptval(0xFFFFFFFFFFFFFFFF, check=True)
    def bits(self, n: cython.int) -> cython.ulonglong:
        """Read n (<= 32) bits as an unsigned number."""
        result: cython.ulonglong = 0
        avail: cython.int
        take: cython.int
        byte: cython.ulonglong
        if self.pos + n > self.end:
            raise DecodeError(self.pos, f"{n} more bit(s)", "stream truncated")
        if cython.compiled:
            if n <= 0:
                return 0
            bi: cython.Py_ssize_t = self.pos >> 3
            sh: cython.int = self.pos & 7
            if bi + 8 <= (self.end >> 3):
                # one 64-bit load while 8 whole bytes remain (n <= 32, so shift + n <= 39 bits)
                result = (_load_be64(self.ptr + bi) << sh) >> (64 - n)
            else:
                # near the end: the (at most 5) bytes that hold the n bits
                nb: cython.int = (sh + n + 7) >> 3
                for take in range(nb):
                    result = (result << 8) | self.ptr[bi + take]
                result = (result >> (8 * nb - sh - n)) & ((cython.cast(cython.ulonglong, 1) << n) - 1)
            self.pos += n
            return result
        while n > 0:
            if cython.compiled:
                byte = self.ptr[self.pos >> 3]
            else:
                byte = self.data[self.pos >> 3]
            avail = 8 - (self.pos & 7)
            take = avail if avail < n else n
            result = (result << take) | ((byte >> (avail - take)) & ((cython.cast(cython.ulonglong, 1) << take) - 1))
            self.pos += take
            n -= take
        return result

    @cython.cfunc
    def unsigned(self) -> object:
        """EXI unsigned integer (7-bit groups); bounded by the input length."""
        b: cython.ulonglong
        v: cython.ulonglong = 0
        shift: cython.int = 0
        while shift < 56:
            b = self.bits(8)
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7
        value = int(v)
        while True:
            b = self.bits(8)
            value |= int(b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7

    @cython.cfunc
    @cython.exceptval(-1, check=True)
    def ulen(self) -> cython.Py_ssize_t:
        """An unsigned integer that counts something in the stream (a length): as a C integer,
        anything past 2**40 as 2**40 (which no remaining input can hold: the caller's check fails)."""
        b: cython.ulonglong
        v: cython.ulonglong = 0
        shift: cython.int = 0
        while shift < 42:
            b = self.bits(8)
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return v
            shift += 7
        while self.bits(8) >= 0x80:
            pass
        return 1 << 40

    @cython.cfunc
    def blob(self, n: cython.Py_ssize_t) -> bytes:
        """Read n raw bytes; the length is checked against the remaining input before allocating."""
        ln: cython.Py_ssize_t
        i: cython.Py_ssize_t
        start: cython.Py_ssize_t
        sh: cython.int
        if n > (self.end - self.pos) // 8:
            raise DecodeError(self.pos, f"{n} byte(s)", "length runs past the end of the stream")
        ln = n
        sh = self.pos & 7
        start = self.pos >> 3
        self.pos += 8 * ln
        if cython.compiled:
            if sh == 0:
                return PyBytes_FromStringAndSize(cython.cast(cython.p_char, self.ptr + start), ln)
            out = PyBytes_FromStringAndSize(cython.NULL, ln)
            q: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(out))
            src: cython.p_uchar = self.ptr + start
            wd: cython.ulonglong
            i = 0
            while i + 8 <= ln:  # 64 bits at a time; src[i + 8] exists (the stream holds 8 * ln + sh bits here)
                wd = _load_be64(src + i)
                wd = (wd << sh) | (cython.cast(cython.ulonglong, src[i + 8]) >> (8 - sh))
                _store_be64(q + i, wd)
                i += 8
            while i < ln:
                q[i] = ((src[i] << sh) | (src[i + 1] >> (8 - sh))) & 0xFF
                i += 1
            return out
        if sh == 0:
            return self.data[start:start + ln]
        chunk = int.from_bytes(self.data[start:start + ln + 1], "big")
        return ((chunk >> (8 - sh)) & ((1 << (8 * ln)) - 1)).to_bytes(ln, "big")

    @cython.cfunc
    def string(self, n: cython.Py_ssize_t) -> str:
        """Read n code points (each an unsigned integer); ASCII runs are read as one block."""
        ln: cython.Py_ssize_t
        i: cython.Py_ssize_t
        save: cython.Py_ssize_t = self.pos
        if n > (self.end - self.pos) // 8:
            raise DecodeError(self.pos, f"{n} character(s)", "string length runs past the end of the stream")
        ln = n
        if cython.compiled:
            if (self.pos & 7) == 0:
                # byte-aligned: an ASCII run becomes the str straight from the input buffer
                src: cython.p_uchar = self.ptr + (self.pos >> 3)
                high: cython.uchar = 0
                for i in range(ln):
                    high |= src[i]
                if high < 0x80:
                    self.pos += 8 * ln
                    return PyUnicode_DecodeASCII(cython.cast(cython.p_char, src), ln, cython.NULL)
            elif ln <= 256:
                # unaligned: the characters shifted into a stack buffer, then the str at once
                tmp: cython.uchar[256]
                sh: cython.int = self.pos & 7
                sp: cython.p_uchar = self.ptr + (self.pos >> 3)
                high2: cython.uchar = 0
                for i in range(ln):
                    tmp[i] = ((sp[i] << sh) | (sp[i + 1] >> (8 - sh))) & 0xFF
                    high2 |= tmp[i]
                if high2 < 0x80:
                    self.pos += 8 * ln
                    return PyUnicode_DecodeASCII(cython.cast(cython.p_char, cython.address(tmp[0])), ln, cython.NULL)
            else:
                raw = self.blob(ln)
                if raw.isascii():
                    return raw.decode("ascii")
        else:
            raw = self.blob(ln)
            if raw.isascii():
                return raw.decode("ascii")
        self.pos = save
        chars = []
        for i in range(ln):
            cp = self.unsigned()
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise DecodeError(self.pos, "a Unicode scalar value", f"invalid code point {cp}")
            chars.append(chr(cp))
        return "".join(chars)


@cython.cfunc
def _new_reader(data: bytes) -> _Reader:
    """A _Reader without the Python-level __init__ call (the per-message fixed cost)."""
    r: _Reader = _Reader.__new__(_Reader)
    r.data = data
    r.info = None
    r.qt = None
    r.builtins = None
    r.vt = None
    if cython.compiled:
        r.ptr = cython.cast(cython.p_uchar, PyBytes_AS_STRING(data))
    r.pos = 0
    r.end = 8 * len(data)
    return r


# --------------------------------------------------------------------------------------------- values
def _path(path: list, key: object) -> str:
    if path is None:
        return "?"
    return ".".join([str(p) for p in path] + ([str(key)] if key is not None else []))


def _too_many(path: list, key: object, n: int, cap: int) -> EncodeError:
    return EncodeError(_path(path, key), "occurs", f"too many occurrences ({n}, maxOccurs is {cap})")


def _type_error(path: list, key: object, msg: str) -> EncodeError:
    return EncodeError(_path(path, key), "type", msg)


@cython.cfunc
def _range_error(dt: _DT, v: object, path: list, key: object) -> EncodeError:
    return EncodeError(_path(path, key), "range", f"{v} is outside [{dt.lo_obj}, {dt.hi_obj}]")


@cython.cfunc
@cython.exceptval(-1)
def _enc_int(w: _Writer, dt: _DT, v: _PyInt, path: list, key: object) -> cython.int:
    """n-bit, unsigned and signed integers, with the facet range checked (C fast path for 64-bit values)."""
    kind: cython.int = dt.kind
    iv: cython.longlong
    small: cython.bint = True
    ovf: cython.int = 0
    if cython.compiled:
        # v is an int here (checked by _enc_value); no exception state for values past 64 bits
        iv = PyLong_AsLongLongAndOverflow(v, cython.address(ovf))
        if ovf:
            small = False
            iv = 0
    else:
        iv = v
    if small:
        if (dt.lo_c and iv < dt.lo) or (dt.hi_c and iv > dt.hi):
            raise _range_error(dt, v, path, key)
        if (dt.lo_obj is not None and not dt.lo_c and v < dt.lo_obj) or (dt.hi_obj is not None and not dt.hi_c and v > dt.hi_obj):
            raise _range_error(dt, v, path, key)
        if _enc_ll(w, dt, iv):  # nothing written: a negative value for an unsigned type
            raise _range_error(dt, v, path, key)
        return 0
    if (dt.lo_obj is not None and v < dt.lo_obj) or (dt.hi_obj is not None and v > dt.hi_obj):
        raise _range_error(dt, v, path, key)
    if kind == T_UINT:
        w.unsigned(v)
    elif v < 0:
        w.bits(1, 1)
        w.unsigned(-v - 1)
    else:
        w.bits(0, 1)
        w.unsigned(v)
    return 0


@cython.cfunc
@cython.inline
@cython.exceptval(-1)
def _enc_ll(w: _Writer, dt: _DT, iv: cython.longlong) -> cython.int:
    """An integer of at most 18 digits (a C value, ``dt.llok``) as _enc_int writes it; 1 and nothing
    written when it is outside the facets (the caller falls back to the path that says so)."""
    kind: cython.int = dt.kind
    if (dt.lo_c and iv < dt.lo) or (dt.hi_c and iv > dt.hi):
        return 1
    if kind == T_NBIT:
        w.bits(iv - dt.lo, dt.nbits)
    elif kind == T_UINT:
        if iv < 0:
            return 1
        w.uint_small(iv)
    elif iv < 0:
        w.bits(1, 1)
        w.uint_small(-(iv + 1))
    else:
        w.bits(0, 1)
        w.uint_small(iv)
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _check_len(ln: cython.Py_ssize_t, dt: _DT, path: list, key: object, unit: str) -> cython.int:
    if (dt.lo_c and ln < dt.lo) or (dt.hi_c and ln > dt.hi):
        raise EncodeError(_path(path, key), "length", f"{ln} {unit}(s), allowed {dt.lo_obj}..{'unbounded' if dt.hi_obj is None else dt.hi_obj}")
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _enc_empty(w: _Writer, st: _State, dt: _DT, v: object, path: list, key: object) -> cython.int:
    """Write an empty string or binary content as EXIficient does: no CH event at all, but an
    undeclared EE (escape, then second-level code 0) -- the element simply has no content in the
    XML sense. Returns 1 when done, 0 when the value is not empty (write CH as usual)."""
    if dt.kind == T_STRING:
        if not (isinstance(v, str) and len(v) == 0):
            return 0
    elif dt.kind == T_HEX or dt.kind == T_B64:
        if not (isinstance(v, bytes) and len(v) == 0):
            return 0
    elif dt.kind == T_LIST:
        if not (isinstance(v, list) and len(v) == 0):
            return 0
    else:
        return 0
    _check_len(0, dt, path, key, "character" if dt.kind == T_STRING else "byte")
    w.bits(st.n, st.width)
    w.bits(0, st.l2_width)
    return 1


@cython.cfunc
@cython.exceptval(-1)
def _enc_value(w: _Writer, dt: _DT, v: object, path: list, key: object) -> cython.int:
    kind: cython.int = dt.kind
    ln: cython.Py_ssize_t
    ei: cython.Py_ssize_t = -1
    if kind <= T_INT:
        if not isinstance(v, int) or isinstance(v, bool):
            raise _type_error(path, key, f"expected an int ({_TYPE_NAMES[kind]}), got {type(v).__name__}")
        _enc_int(w, dt, v, path, key)
    elif kind == T_BOOL:
        if v is True:
            w.bits(1, 1)
        elif v is False:
            w.bits(0, 1)
        else:
            raise _type_error(path, key, f"expected a bool, got {type(v).__name__}")
    elif kind == T_ENUM:
        if cython.compiled and dt.nv and PyUnicode_CheckExact(v):
            # str literals, an exact str: the literal table (no dict probe)
            ei = _kfind(dt.vtab, dt.nv, v)
        elif isinstance(v, (str, int)):
            idx = dt.index.get(v)
            if idx is not None:
                ei = idx
                # 1 == True == 1.0: the literal's own type only (a str subclass is text)
                if type(dt.values[ei]) is not type(v) and not (isinstance(v, str) and type(dt.values[ei]) is str):
                    ei = -1
        if ei < 0:
            raise EncodeError(_path(path, key), "range", f"{v!r} is not one of the enumeration {list(dt.values)}")
        w.bits(ei, dt.nbits)
    elif kind == T_STRING:
        if not isinstance(v, str):
            raise _type_error(path, key, f"expected a str, got {type(v).__name__}")
        s: str = v if type(v) is str else str.__str__(v)  # a str subclass (StrEnum) by its text
        ln = len(s)
        _check_len(ln, dt, path, key, "character")
        w.uint_small(ln + 2)
        if cython.compiled:
            # ASCII text is copied straight from the str's own 1-byte buffer (no bytes object)
            if PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND:
                chars: cython.p_uchar = cython.cast(cython.p_uchar, PyUnicode_1BYTE_DATA(s))
                high: cython.uchar = 0
                i: cython.Py_ssize_t
                for i in range(ln):
                    high |= chars[i]
                if high < 0x80:
                    w.blob_raw(chars, ln)
                    return 0
            for ch in s:
                w.uint_small(ord(ch))
        elif s.isascii():
            w.blob(s.encode("ascii"))
        else:
            for ch in s:
                w.uint_small(ord(ch))
    elif kind >= T_DECIMAL:
        _enc_ext(w, dt, v, path, key)
    else:  # T_HEX / T_B64
        if type(v) is bytes:
            b: bytes = v
        elif isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
        else:
            raise _type_error(path, key, f"expected bytes, got {type(v).__name__}")
        ln = len(b)
        _check_len(ln, dt, path, key, "byte")
        w.uint_small(ln)
        w.blob(b)
    return 0


@cython.cfunc
def _dec_value(r: _Reader, dt: _DT, qn: object) -> object:
    """Decode one value of the element or attribute ``qn`` (its local value partition). Facets
    (ranges, lengths) are not enforced here, as in EXIficient: real peers send e.g. empty mandatory
    strings in FAILED responses. Only what cannot be represented (an enumeration index past the
    end, a length past the end of the stream, a value-table id past its partition) is an error."""
    kind: cython.int = dt.kind
    start: cython.Py_ssize_t = r.pos
    idx: cython.Py_ssize_t
    if kind == T_NBIT:
        return dt.lo + cython.cast(cython.longlong, r.bits(dt.nbits))
    if kind == T_UINT:
        return r.unsigned()
    if kind == T_INT:
        neg = r.bits(1)
        v = r.unsigned()
        if neg:
            return -v - 1
        return v
    if kind == T_BOOL:
        return r.bits(1) == 1
    if kind == T_ENUM:
        idx = r.bits(dt.nbits)
        if idx >= len(dt.values):
            raise DecodeError(start, f"enumeration index < {len(dt.values)}", f"index {idx} out of range")
        return dt.values[idx]
    if kind == T_STRING:
        ln: cython.Py_ssize_t = r.ulen()
        if ln < 2:
            return _dec_hit(r, ln, qn, start)
        text = r.string(ln - 2)
        if r.vt is not None and ln > 2:
            cython.cast(_Values, r.vt).add(qn, text)
        return text
    if kind >= T_DECIMAL:
        return _dec_ext(r, dt, qn)
    return r.blob(r.ulen())


@cython.cfunc
def _dec_hit(r: _Reader, ln: object, qn: object, start: cython.Py_ssize_t) -> str:
    """A value-table hit (EXI 1.0 section 7.3.3): 0 and an n-bit id into the local partition of
    ``qn`` (n = ceil(log2 of its size)), or 1 and an id into the global partition."""
    vt: _Values
    k: cython.Py_ssize_t
    if r.vt is None:
        raise _RESTART  # the first hit of the stream: Grammar._dec decodes it again, keeping the table
    vt = r.vt
    if ln == 0:
        part = vt.local.get(qn)
        k = 0 if part is None else len(part)
        if k == 0:
            raise DecodeError(start, "a string literal", f"local value-table hit, but {_clark(*qn) if isinstance(qn, tuple) else 'this value'} "
                              "has no value in the table yet")
        i: cython.Py_ssize_t = r.bits((k - 1).bit_length())
        if i >= k:
            raise DecodeError(start, f"a local value id < {k}", f"local value id {i} is not in the table")
        return cython.cast(list, part)[i]
    k = len(vt.glob)
    if k == 0:
        raise DecodeError(start, "a string literal", "global value-table hit, but the table is empty")
    i = r.bits((k - 1).bit_length())
    if i >= k:
        raise DecodeError(start, f"a global value id < {k}", f"global value id {i} is not in the table")
    return vt.glob[i]


_UNTYPED_STRING = _DT((T_STRING, 0, None))


@cython.cfunc
def _empty_value(dt: _DT, start: cython.Py_ssize_t) -> object:
    """The value of an element whose content is empty (an undeclared EE where CH was expected)."""
    if dt.kind == T_STRING:
        return ""
    if dt.kind == T_HEX or dt.kind == T_B64:
        return b""
    if dt.kind == T_LIST:
        return []
    raise DecodeError(start, f"a {_TYPE_NAMES[dt.kind]} value", "element content is empty (undeclared EE)")


_TRUE = frozenset(("true", "1"))
_FALSE = frozenset(("false", "0"))


def _from_text(dt: _DT, text: str) -> object:
    """The value an untyped (string) CH stands for: the schema type's value when the text is a valid
    lexical form of it (EXIficient writes out-of-range integers and RISE-V2G enumerations so, and
    reads them back typed), else the text itself (nothing is lost)."""
    kind: cython.int = dt.kind
    t = text.strip()
    try:
        if kind <= T_INT:
            return int(t)
        if kind == T_BOOL:
            if t in _TRUE:
                return True
            if t in _FALSE:
                return False
        elif kind == T_ENUM:
            if t in dt.index:
                return t
        elif kind == T_HEX:
            return bytes.fromhex(t)
        elif kind == T_B64:
            return base64.b64decode(t, validate=True)
    except ValueError:
        pass
    return text


@cython.cfunc
@cython.exceptval(-1)
def _dec_l2(r: _Reader, st: _State, start: cython.Py_ssize_t) -> cython.int:
    """Read the second-level event code after an escape: 0 for EE, 1 for CH [untyped value],
    2 for AT(xsi:nil), 3 for AT(xsi:type), 4 for AT(*), 5 for SE(*) (their content not yet read).

    The third-level AT(qname) [untyped value] (a declared attribute with an invalid value) raises
    DecodeError."""
    m: cython.Py_ssize_t = r.bits(st.l2_width)
    if m >= st.l2_n:
        raise DecodeError(start, f"a second-level event code < {st.l2_n}", f"invalid second-level event code {m}")
    if st.ee < 0:
        if m == 0:
            return 0
        m -= 1
    name = _L2_EVENTS[st.tag][m]
    if name == "CH":
        return 1
    if name == "AT(xsi:nil)":
        return 2
    if name == "AT(xsi:type)":
        return 3
    if name == "AT(*)":
        return 4
    if name == "SE(*)":
        return 5
    raise DecodeError(start, "a schema-declared event", f"undeclared {name} (schema deviation) is not supported")


# --------------------------------------------------------------------------------------------- xsi:nil
def _empty_twin(st: _State) -> tuple:
    """(attribute productions, EE allowed) of the TypeEmpty grammar state that mirrors ``st``.

    After AT(xsi:nil) true an element continues in the empty grammar of its type (EXI 1.0
    sections 8.5.4.1.3 and 8.5.4.4.1): the same attribute uses (AT(*) of the relaxed fragment
    grammar among them), then EE instead of any content. EE is possible where ``st`` allows
    anything but a (required) attribute. Event codes: the attributes in order, then EE, then the
    escape of non-strict grammars."""
    p: _Prod
    ats = []
    ee_ok = False
    for p in st.prods:
        if p.kind == K_AT or (p.kind == K_ANY and p.key is not None):
            ats.append(p)
        else:
            ee_ok = True
    return ats, ee_ok


@cython.cfunc
@cython.exceptval(-1)
def _dec_nil(r: _Reader, states: tuple, st: _State, d: dict) -> cython.int:
    """The rest of a nil element: its attributes (into ``d``; undeclared ones too) and EE."""
    p: _Prod
    n: cython.Py_ssize_t
    d[XSI_NIL] = True
    first: cython.bint = True  # TypeEmpty_0 keeps the second level of a first start tag
    while True:
        ats, ee_ok = _empty_twin(st)
        n = len(ats) + (1 if ee_ok else 0)
        start = r.pos
        code = r.bits(n.bit_length())
        if code < len(ats):
            p = ats[code]
            if p.kind == K_ANY:
                _dec_any_attr(r, d, start)
                continue
            if p.key in d:
                raise DecodeError(start, "one value per attribute", f"attribute {p.key} occurs twice")
            d[p.key] = _dec_value(r, p.dt, p.qn)
            st = states[p.nxt]
            first = False
            continue
        if ee_ok and code == len(ats):
            return 0
        if code == n:
            # second level: [EE,] then AT(xsi:type), AT(xsi:nil), AT(*), ... or AT(*), ...
            l2_n = (0 if ee_ok else 1) + (6 if first else 4)
            m = r.bits((l2_n - 1).bit_length())
            if not ee_ok:
                if m == 0:
                    return 0
                m -= 1
            if m == (2 if first else 0):
                _dec_any_attr(r, d, start)
                continue
            raise DecodeError(start, "an attribute or the end of the nil element",
                              f"second-level event code {m} after xsi:nil (only AT(*) is supported there)")
        raise DecodeError(start, "an attribute or the end of the nil element", f"invalid event code {code}")


@cython.cfunc
@cython.exceptval(-1)
def _dec_nil_value(r: _Reader, states: tuple, st: _State, d: dict) -> cython.int:
    """After the second-level code of AT(xsi:nil): its boolean; 1 when true (the element is then
    complete in ``d``), 0 when false (the element goes on as declared)."""
    if r.bits(1):
        _dec_nil(r, states, st, d)
        return 1
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _enc_nil(w: _Writer, states: tuple, sid: cython.int, d: dict, path: list) -> cython.int:
    """Write a nil element: escape, AT(xsi:nil) true, its attributes (declared and undeclared,
    merged in qname order), EE. EXIficient writes xsi:nil="false" not at all, and so do we (the
    caller drops it)."""
    st: _State = states[sid]
    p: _Prod
    n: cython.Py_ssize_t
    if st.tag != 0:
        raise EncodeError(_path(path, XSI_NIL), "type", "xsi:nil only at the start of an element")
    w.bits(st.n, st.width)
    w.bits((1 if st.ee < 0 else 0) + 1, st.l2_width)
    w.bits(1, 1)
    done: set = {XSI_NIL}
    und_or_none: Optional[dict] = _undeclared(d)
    und: dict = {} if und_or_none is None else und_or_none
    pending: list = sorted(und, key=_attr_order, reverse=True)
    done.update(und)
    first: cython.bint = True
    while True:
        ats, ee_ok = _empty_twin(st)
        n = len(ats) + (1 if ee_ok else 0)
        width = n.bit_length()
        chosen = -1
        wild = -1  # AT(*) of the relaxed fragment grammar (a first-level code)
        for i in range(len(ats)):
            p = ats[i]
            if p.kind == K_ANY:
                if wild < 0:
                    wild = i
            elif chosen < 0 and p.key in d and p.key not in done:
                chosen = i
        if pending and (chosen < 0 or _attr_order(pending[len(pending) - 1]) < _attr_order("@" + str(cython.cast(_Prod, ats[chosen]).key))):
            k = pending.pop()
            qn = _split_clark(k[1:])
            if qn is None or not qn[1]:
                raise EncodeError(_path(path, k), "type", "expected '@name' or '@{uri}name'")
            if not isinstance(und[k], str):
                raise _type_error(path, k, f"an undeclared attribute's value is text, got {type(und[k]).__name__}")
            if wild >= 0:
                w.bits(wild, width)
            else:
                w.bits(n, width)  # escape, then AT(*) at the second level of TypeEmpty
                l2_n = (0 if ee_ok else 1) + (6 if first else 4)
                w.bits((0 if ee_ok else 1) + (2 if first else 0), (l2_n - 1).bit_length())
            _write_qname(w, qn[0], qn[1])
            _enc_value(w, _UNTYPED_STRING, und[k], path, k)
            continue
        if chosen >= 0:
            p = ats[chosen]
            w.bits(chosen, width)
            _enc_value(w, p.dt, d[p.key], path, p.key)
            done.add(p.key)
            st = states[p.nxt]
            first = False
            continue
        if not ee_ok:
            raise EncodeError(_path(path, cython.cast(_Prod, ats[0]).key), "missing",
                              "required attribute is missing (a nil element keeps its attributes)")
        for k in d:
            if k not in done:
                raise EncodeError(_path(path, k), "unknown",
                                  "a nil element (xsi:nil true) has no content, only its attributes")
        w.bits(len(ats), width)
        return 0


# --------------------------------------------------------------------------------------------- other built-ins
_DT_RE = {
    "dateTime": r"(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?",
    "date": r"(-?\d{4,})-(\d\d)-(\d\d)",
    "time": r"(\d\d):(\d\d):(\d\d)(?:\.(\d+))?",
    "gYearMonth": r"(-?\d{4,})-(\d\d)",
    "gYear": r"(-?\d{4,})",
    "gMonthDay": r"--(\d\d)-(\d\d)",
    "gDay": r"---(\d\d)",
    "gMonth": r"--(\d\d)",
}
_TZ_RE = r"(Z|[+-]\d\d:\d\d)?"
_DT_PARTS = {  # which of year, month, day, time the type's value has (EXI 1.0 7.1.8)
    "dateTime": "ymdt", "date": "ymd", "time": "t", "gYearMonth": "ym", "gYear": "y",
    "gMonthDay": "md", "gDay": "d", "gMonth": "m",
}


def _write_int(w: _Writer, v: int) -> None:
    """EXI Integer: a sign bit, then the magnitude (minus one when negative)."""
    if v < 0:
        w.bits(1, 1)
        w.unsigned(-v - 1)
    else:
        w.bits(0, 1)
        w.unsigned(v)


def _read_int(r: _Reader) -> int:
    neg = r.bits(1)
    v = r.unsigned()
    return -v - 1 if neg else v


def _float_parts(text: str) -> tuple:
    """Mantissa and base-10 exponent of a decimal float text, as EXIficient takes them apart."""
    t = text.strip().lower()
    mant, _, ex = t.partition("e")
    e = int(ex) if ex else 0
    neg = mant.startswith("-")
    mant = mant.lstrip("+-")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    e -= len(frac)
    m = int(digits)
    if m == 0:
        return 0, 0
    while m % 10 == 0:  # EXIficient moves trailing zeros into the exponent (100.0 -> 1E2)
        m //= 10
        e += 1
    return (-m if neg else m), e


def _enc_ext(w: _Writer, dt: _DT, v: object, path: list, key: object) -> int:
    """decimal (7.1.3), float and double (7.1.4), the date-time types (7.1.8) and lists (7.1.5)."""
    import decimal
    import math
    import re

    kind = dt.kind
    if kind == T_DECIMAL:
        if isinstance(v, bool) or not isinstance(v, (int, decimal.Decimal)):
            raise _type_error(path, key, f"expected a decimal.Decimal or int, got {type(v).__name__}")
        d = decimal.Decimal(v)
        if not d.is_finite():
            raise EncodeError(_path(path, key), "range", "a decimal is finite")
        sign, digits, exp_ = d.as_tuple()
        exp = int(exp_)  # finite: an int exponent
        text = "".join(str(x) for x in digits)
        if exp >= 0:
            whole, frac = int(text + "0" * exp), ""
        else:
            text = text.rjust(1 - exp, "0")
            whole, frac = int(text[:exp]), text[exp:].rstrip("0")
        w.bits(1 if sign else 0, 1)
        w.unsigned(whole)
        w.unsigned(int(frac[::-1]) if frac else 0)
    elif kind == T_FLOAT:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _type_error(path, key, f"expected a float, got {type(v).__name__}")
        if isinstance(v, float) and math.isnan(v):
            m, e = 0, -(1 << 14)
        elif isinstance(v, float) and math.isinf(v):
            m, e = (1 if v > 0 else -1), -(1 << 14)
        else:
            m, e = _float_parts(repr(v) if isinstance(v, float) else str(v))
            if not (-(1 << 63) <= m < (1 << 63)) or not (-(1 << 14) < e < (1 << 14)):
                raise EncodeError(_path(path, key), "range", f"{v!r} is beyond EXI's float (64-bit mantissa, 14-bit exponent)")
        _write_int(w, m)
        _write_int(w, e)
    elif kind == T_DATETIME:
        name = str(dt.ext)
        if not isinstance(v, str):
            raise _type_error(path, key, f"expected the {name} text, got {type(v).__name__}")
        got = re.fullmatch(_DT_RE[name] + _TZ_RE, v.strip())
        if got is None:
            raise EncodeError(_path(path, key), "type", f"{v!r} is not an xs:{name} value")
        g = list(got.groups())
        tz = g.pop()
        parts = _DT_PARTS[name]
        year = month = day = 0
        if "y" in parts:
            year = int(g.pop(0))
        if "m" in parts:
            month = int(g.pop(0))
        if "d" in parts:
            day = int(g.pop(0))
        if "y" in parts:
            _write_int(w, year - 2000)
        if "m" in parts or "d" in parts:
            if month > 12 or day > 31:
                raise EncodeError(_path(path, key), "range", f"{v!r}: month or day out of range")
            w.bits(month * 32 + day, 9)
        if "t" in parts:
            hh, mm, ss, frac = int(g[0]), int(g[1]), int(g[2]), g[3]
            if hh > 24 or mm > 59 or ss > 60:
                raise EncodeError(_path(path, key), "range", f"{v!r}: time out of range")
            w.bits((hh * 64 + mm) * 64 + ss, 17)
            frac = (frac or "").rstrip("0")
            w.bits(1 if frac else 0, 1)
            if frac:
                w.unsigned(int(frac[::-1]))
        w.bits(1 if tz else 0, 1)
        if tz:
            minutes = 0 if tz == "Z" else (int(tz[1:3]) * 64 + int(tz[4:6])) * (-1 if tz[0] == "-" else 1)
            w.bits(minutes + 896, 11)
    else:  # T_LIST
        if not isinstance(v, list):
            raise _type_error(path, key, f"expected a list of items, got {type(v).__name__}")
        w.unsigned(len(v))
        for item in v:
            _enc_value(w, dt.ext, item, path, key)
    return 0


def _dec_ext(r: _Reader, dt: _DT, qn: object) -> object:
    import decimal

    kind = dt.kind
    if kind == T_DECIMAL:
        neg = r.bits(1)
        whole = r.unsigned()
        frac = r.unsigned()
        text = f"{'-' if neg else ''}{whole}" + (f".{str(frac)[::-1]}" if frac else "")
        return decimal.Decimal(text)
    if kind == T_FLOAT:
        m = _read_int(r)
        e = _read_int(r)
        if e == -(1 << 14):
            return float("inf") if m == 1 else float("-inf") if m == -1 else float("nan")
        if not (-(1 << 14) < e < (1 << 14)):
            raise DecodeError(r.pos, "a float exponent within 14 bits", f"exponent {e}")
        return float(f"{m}e{e}")
    if kind == T_DATETIME:
        parts = _DT_PARTS[str(dt.ext)]
        out = ""
        if "y" in parts:
            y = _read_int(r) + 2000
            out = f"-{-y:04d}" if y < 0 else f"{y:04d}"
        if "m" in parts or "d" in parts:
            md = r.bits(9)
            month, day = md >> 5, md & 31
            if "y" in parts:
                out += f"-{month:02d}" + (f"-{day:02d}" if "d" in parts else "")
            elif "m" in parts:
                out += f"--{month:02d}" + (f"-{day:02d}" if "d" in parts else "")
            else:
                out += f"---{day:02d}"
        if "t" in parts:
            t = r.bits(17)
            out += ("T" if "y" in parts else "") + f"{t >> 12:02d}:{(t >> 6) & 63:02d}:{t & 63:02d}"
            if r.bits(1):
                out += "." + str(r.unsigned())[::-1]
        if r.bits(1):
            tz = int(r.bits(11)) - 896
            if tz == 0:
                out += "Z"
            else:
                a = abs(tz)
                out += f"{'-' if tz < 0 else '+'}{a // 64:02d}:{a % 64:02d}"
        return out
    n = r.unsigned()
    if n > r.end - r.pos:
        raise DecodeError(r.pos, f"{n} list item(s)", "list length runs past the end of the stream")
    return [_dec_value(r, dt.ext, qn) for _ in range(n)]


# --------------------------------------------------------------------------------------------- qnames, xsi:type, AT(*)
XSI_TYPE = "xsi:type"
_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def _clark(uri: str, local: str) -> str:
    """A qname as dict text: ``local`` without a namespace, else ``{uri}local`` (Clark notation)."""
    return "{%s}%s" % (uri, local) if uri else local


def _qt_of(info: Optional[_SchemaInfo], qt: Optional[_QNames]) -> _QNames:
    if qt is not None:
        return qt
    if info is None:
        raise ValueError("no string table for this grammar")
    return _QNames(info)


@cython.cfunc
def _read_qname(r: _Reader) -> tuple:
    """A qname through the stream's string table (EXI 1.0 sections 7.1.7, 7.3.2 and 7.3.3): the
    URI as an n-bit id + 1 (0: a literal that joins the table), then the local name as 0 and an
    n-bit compact id, or its length + 1 and the characters (which join the URI's partition)."""
    qt: _QNames = _qt_of(r.info, r.qt)
    r.qt = qt
    start: cython.Py_ssize_t = r.pos
    n: cython.Py_ssize_t = len(qt.uris)
    u: cython.Py_ssize_t = r.bits(n.bit_length())
    if u == 0:
        uri = r.string(r.unsigned())
        if uri in qt.uri_ix:
            raise DecodeError(start, "a new URI", f"URI literal {uri!r} is already in the string table")
        ui = qt.add_uri(uri)
    elif u > n:
        raise DecodeError(start, f"a URI id <= {n}", f"URI id {u - 1} is not in the string table")
    else:
        ui = u - 1
        uri = qt.uris[ui]
    names: list = qt.names[ui]
    start = r.pos
    ln = r.unsigned()
    if ln == 0:
        k: cython.Py_ssize_t = len(names)
        if k == 0:
            raise DecodeError(start, "a local-name literal", f"local-name hit in the empty partition of {uri!r}")
        i: cython.Py_ssize_t = r.bits((k - 1).bit_length())
        if i >= k:
            raise DecodeError(start, f"a local-name id < {k}", f"local-name id {i} is not in the string table")
        return uri, names[i]
    local = r.string(ln - 1)
    ix: dict = qt.name_ix[ui]
    if local in ix:
        raise DecodeError(start, "a new local name", f"local-name literal {local!r} is already in the string table")
    ix[local] = len(names)
    names.append(local)
    return uri, local


@cython.cfunc
@cython.exceptval(-1)
def _write_chars(w: _Writer, s: str) -> cython.int:
    for ch in s:
        w.uint_small(ord(ch))
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _write_qname(w: _Writer, uri: str, local: str) -> cython.int:
    """The encoder's side of _read_qname (the same table updates)."""
    qt: _QNames = _qt_of(w.info, w.qt)
    w.qt = qt
    n: cython.Py_ssize_t = len(qt.uris)
    ui = qt.uri_ix.get(uri)
    if ui is None:
        w.bits(0, n.bit_length())
        w.uint_small(len(uri))
        _write_chars(w, uri)
        ui = qt.add_uri(uri)
    else:
        w.bits(ui + 1, n.bit_length())
    names: list = qt.names[ui]
    ix: dict = qt.name_ix[ui]
    li = ix.get(local)
    if li is None:
        w.uint_small(len(local) + 1)
        _write_chars(w, local)
        ix[local] = len(names)
        names.append(local)
    else:
        w.uint_small(0)
        w.bits(li, (len(names) - 1).bit_length())
    return 0


def _split_clark(text: str) -> Optional[tuple]:
    if text.startswith("{"):
        end = text.find("}")
        if end > 0 and end + 1 < len(text):
            return text[1:end], text[end + 1:]
        return None
    return "", text


@cython.cfunc
def _dec_xsi_type(r: _Reader, d: dict, start: cython.Py_ssize_t) -> tuple:
    """After the second-level code of AT(xsi:type): its qname into ``d``; (start state of the named
    type's grammar, simple type). The element goes on in that type grammar (EXI 1.0 8.5.4.4.1)."""
    if XSI_TYPE in d:
        raise DecodeError(start, "one xsi:type", "xsi:type occurs twice")
    uri, local = _read_qname(r)
    info: Optional[_SchemaInfo] = r.info
    if info is None:
        raise DecodeError(start, "a schema-informed grammar", "no xsi:type map")
    ent = info.xsi_types.get((uri, local))
    if ent is None:
        raise DecodeError(start, "a type of the schema set", f"xsi:type names {_clark(uri, local)!r}, "
                                                             "which has no grammar here")
    d[XSI_TYPE] = _clark(uri, local)
    return ent


@cython.cfunc
@cython.exceptval(-1)
def _dec_any_attr(r: _Reader, d: dict, start: cython.Py_ssize_t) -> cython.int:
    """After the code of AT(*): an undeclared attribute, its qname and untyped value, into ``d``
    under "@" + its name (V2G schemas declare no global attributes, so every value is a string)."""
    uri, local = _read_qname(r)
    key = "@" + _clark(uri, local)
    if key in d:
        raise DecodeError(start, "one value per attribute", f"attribute {key} occurs twice")
    d[key] = _dec_value(r, _UNTYPED_STRING, (uri, local))
    return 0


@cython.cfunc
def _enc_xsi_type(w: _Writer, states: tuple, sid: cython.int, v: object, path: list) -> tuple:
    """Write AT(xsi:type) (escape, second-level code, the type's qname) at the start of an element;
    return (start state of that type's grammar, simple type)."""
    st: _State = states[sid]
    info: Optional[_SchemaInfo] = w.info
    if st.tag != 0 or info is None:
        raise EncodeError(_path(path, XSI_TYPE), "type", "xsi:type only at the start of an element")
    if not isinstance(v, str):
        raise _type_error(path, XSI_TYPE, f"expected a type name (str), got {type(v).__name__}")
    qn = _split_clark(v)
    if qn is not None and not qn[0]:
        cands = info.by_local.get(qn[1], [])
        if len(cands) > 1:
            raise EncodeError(_path(path, XSI_TYPE), "type", f"{v!r} names several types: write "
                              f"{' or '.join(repr(_clark(*c)) for c in cands)}")
        qn = cands[0] if cands else None
    ent = None if qn is None else info.xsi_types.get(qn)
    if ent is None or qn is None:
        raise EncodeError(_path(path, XSI_TYPE), "unknown", f"{v!r} is not a type of this schema set")
    w.bits(st.n, st.width)
    w.bits(1 if st.ee < 0 else 0, st.l2_width)
    _write_qname(w, qn[0], qn[1])
    return ent


@cython.cfunc
@cython.exceptval(-1)
def _enc_any_attr(w: _Writer, st: _State, key: str, v: object, path: list) -> cython.int:
    """Write an undeclared attribute (key "@name" or "@{uri}name") as AT(*) [untyped value]."""
    if st.tag == 2:
        raise EncodeError(_path(path, key), "type", "an undeclared attribute only in the start tag")
    qn = _split_clark(key[1:])
    if qn is None or not qn[1]:
        raise EncodeError(_path(path, key), "type", "expected '@name' or '@{uri}name'")
    if not isinstance(v, str):
        raise _type_error(path, key, f"an undeclared attribute's value is text, got {type(v).__name__}")
    p: _Prod
    for p in st.prods:
        if p.kind == K_ANY and p.key is not None:  # AT(*) of the relaxed fragment grammar
            w.bits(p.code, st.width)
            break
    else:
        w.bits(st.n, st.width)
        w.bits((1 if st.ee < 0 else 0) + (2 if st.tag == 0 else 0), st.l2_width)
    _write_qname(w, qn[0], qn[1])
    _enc_value(w, _UNTYPED_STRING, v, path, key)
    return 0


# --------------------------------------------------------------------------------------------- elements
class _Fallback(Exception):
    """Internal: the fast encoder met something it does not handle; the checked encoder takes over."""


_FALLBACK = _Fallback()
_NO_PATH = cython.declare(list, [])  # a C global: no module dict lookup per value


def _any_key_in(keys: frozenset, d: dict) -> bool:
    for k in keys:
        if k in d:
            return True
    return False


@cython.cfunc
@cython.inline
def _pget(st: _State, k: object) -> object:
    """``st.pmap.get(k)``: by the state's key table where it has one and ``k`` is an exact str."""
    i: cython.int
    if cython.compiled:
        if st.nk and PyUnicode_CheckExact(k):
            i = _kfind(st.ktab, st.nk, k)
            if i < 0:
                return None
            return st.prods[i]
    return st.pmap.get(k)


@cython.cfunc
@cython.exceptval(-1)
def _enc_fast(w: _Writer, states: tuple, sid: cython.int, value: object, direct: cython.bint, depth: cython.int) -> cython.int:
    """Encoder fast path: follows the dict's own key order through the grammar (one key lookup
    per child, no path bookkeeping). Any surprise (keys out of schema order, a bad value, a missing
    element) raises and Grammar.encode re-runs the checked encoder, which gives the precise error."""
    st: _State
    p: _Prod
    cdt: _DT
    j: cython.Py_ssize_t
    n: cython.Py_ssize_t
    if direct:
        st = cython.cast(_State, states[sid])
        p = cython.cast(_Prod, st.prods[0])
        if p.dt.kind >= T_STRING and _enc_empty(w, st, p.dt, value, _NO_PATH, None):
            return 0
        w.bits(0, 1)
        _enc_value(w, p.dt, value, _NO_PATH, None)
        w.bits(0, 1)
        return 0
    if not isinstance(value, dict) or depth > _MAX_DEPTH:
        raise _FALLBACK
    d: dict = value
    if cython.compiled:
        # the dict's own walk (PyDict_Next): no per-step size check, no tuple of the pair
        pos: cython.Py_ssize_t = 0
        kp = cython.declare(cython.pointer(PyObject))
        vp = cython.declare(cython.pointer(PyObject))
    else:
        items = iter(d.items())
    while True:
        if cython.compiled:
            if not PyDict_Next(d, cython.address(pos), cython.address(kp), cython.address(vp)):
                break
            k = cython.cast(object, kp)
            v = cython.cast(object, vp)
        else:
            kv = next(items, None)
            if kv is None:
                break
            k, v = kv
        st = cython.cast(_State, states[sid])
        po = _pget(st, k)
        if po is None:
            raise _FALLBACK
        p = cython.cast(_Prod, po)
        if p.is_list:
            if not isinstance(v, list):
                raise _FALLBACK
            lst: list = v
            n = len(lst)
            if p.cap and n > p.cap:
                raise _FALLBACK
            for j in range(n):
                if j:
                    st = cython.cast(_State, states[sid])
                    po = _pget(st, k)
                    if po is None:
                        raise _FALLBACK
                    p = cython.cast(_Prod, po)
                if p.later is not None and _any_key_in(p.later, d):
                    raise _FALLBACK  # a repeated choice: the checked encoder keeps grammar order
                w.bits(p.code, st.width)
                if p.kind == K_SE:
                    if p.arg < 0:
                        raise _FALLBACK
                    _enc_fast(w, states, p.arg, lst[j], p.direct, depth + 1)
                else:
                    _enc_value(w, p.dt, lst[j], _NO_PATH, None)
                sid = p.nxt
        else:
            if p.later is not None and _any_key_in(p.later, d):
                raise _FALLBACK
            if p.cdt is not None:
                # a simple-typed child inline: its event code and CH (code 0 of 1 bit) in one
                # write, the value, EE (code 0 of 1 bit); empty text takes the general path
                cdt = p.cdt
                if cdt.kind >= T_STRING and isinstance(v, (str, bytes, list)) and len(v) == 0:
                    raise _FALLBACK
                w.bits(p.code << 1, st.width + 1)
                _enc_value(w, cdt, v, _NO_PATH, None)
                w.bits(0, 1)
                sid = p.nxt
                continue
            if p.kind == K_CH and (isinstance(v, (str, bytes)) and len(v) == 0):
                raise _FALLBACK  # empty simple content: the checked encoder writes the undeclared EE
            w.bits(p.code, st.width)
            if p.kind == K_SE:
                if p.arg < 0:
                    raise _FALLBACK
                _enc_fast(w, states, p.arg, v, p.direct, depth + 1)
            else:
                _enc_value(w, p.dt, v, _NO_PATH, None)
            sid = p.nxt
    st = cython.cast(_State, states[sid])
    if st.ee < 0:
        raise _FALLBACK
    w.bits(st.ee, st.width)
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _enc_elem(w: _Writer, states: tuple, sid: cython.int, value: object, direct: cython.bint, path: list) -> cython.int:
    st: _State
    p: _Prod
    i: cython.int
    chosen: cython.int
    best: cython.int
    used: cython.Py_ssize_t = 0
    c: cython.Py_ssize_t
    first: cython.int = sid
    if direct and not (isinstance(value, dict) and _has_l2_keys(value)):
        # simple-typed element: CH (1 bit, code 0), the value, EE (1 bit, code 0)
        st = states[sid]
        p = st.prods[0]
        if isinstance(value, dict):
            raise _type_error(path, None, "a simple-typed element takes a value, or a dict with xsi:nil, "
                                          "xsi:type or undeclared attributes ('@name') and its \"value\"")
        if _enc_empty(w, st, p.dt, value, path, None):
            return 0
        w.bits(0, 1)
        _enc_value(w, p.dt, value, path, None)
        w.bits(0, 1)
        return 0
    # (a simple-typed element given as such a dict runs its type grammar here: CH "value", EE)
    if not isinstance(value, dict):
        raise _type_error(path, None, f"expected a dict, got {type(value).__name__}")
    if len(path) > _MAX_DEPTH:
        raise EncodeError(_path(path, None), "type", f"message nested deeper than {_MAX_DEPTH} elements (a cyclic dict?)")
    # dict subclasses (OrderedDict, ...) as plain dicts: the typed local takes exact dicts only
    d: dict = value if type(value) is dict else dict(value)
    if XSI_TYPE in d:
        ent = _enc_xsi_type(w, states, sid, d[XSI_TYPE], path)
        sid = ent[0]
        first = sid
        d = {k: v for k, v in d.items() if k != XSI_TYPE}
    if XSI_NIL in d:
        nil = d[XSI_NIL]
        if nil is True:
            return _enc_nil(w, states, sid, d, path)
        if nil is not False:
            raise _type_error(path, XSI_NIL, f"expected True or False, got {type(nil).__name__}")
        d = {k: v for k, v in d.items() if k != XSI_NIL}
    und: Optional[dict] = _undeclared(d)
    pending: Optional[list] = None
    if und is not None:
        # undeclared attributes go in as AT(*), merged with the declared ones in qname order (as
        # EXIficient sorts a start tag's attributes): pending holds them, last one first
        pending = sorted(und, key=_attr_order, reverse=True)
        d = {k: v for k, v in d.items() if k not in und}
    # undeclared / wildcard elements ("{uri}local" keys): written where the dict has them, once
    # every key before them is written (and the start tag's attributes); (key, items, keys before)
    # mixed content with a list of texts: one per gap between the children, written before each
    # child (and before EE) once the start tag is done
    gaps: Optional[list] = None
    nch: cython.Py_ssize_t = 0  # children written
    gw: cython.Py_ssize_t = -1  # last gap written
    mixed: cython.bint = "value" in d and _is_mixed(states, sid)
    simple: cython.bint = False
    if not mixed and isinstance(d.get("value"), list) and _simple_gaps(states, sid, d):
        mixed = True  # simple content with text runs between undeclared elements: one per gap
        simple = True  # (the typed value among them, where the grammar has its CH)
    if mixed and isinstance(d.get("value"), list):
        gaps = d["value"]
        for x in gaps:
            if not isinstance(x, str) and not simple:
                raise _type_error(path, "value", f"the texts of mixed content are str, got {type(x).__name__}")
        d = {k: v for k, v in d.items() if k != "value"}
    if ORDER in d:
        return _enc_ordered(w, states, sid, d, gaps, pending, und, path)
    wild: Optional[list] = _wild_keys(d, states[sid], mixed, path)
    wi: cython.Py_ssize_t = 0
    if wild is not None:
        wset = wild.pop()
        d = {k: v for k, v in d.items() if k not in wset}

    n_keys: cython.Py_ssize_t = len(d)
    counts: Optional[dict] = None
    # single values already written: a self-looping state (the relaxed grammars of fragments)
    # must not take one twice
    done: Optional[set] = None
    while True:
        st = states[sid]
        if gaps is not None and gw < nch and _wild_ready(st, d, (), counts, done):
            gw = nch
            sid = _enc_gap(w, states, sid, st, gaps, nch, pending, und, path)
            continue
        if (wild is not None and wi < len(wild) and (gaps is None or gw == nch)
                and _wild_ready(st, d, wild[wi][2], counts, done)):
            if pending:  # no declared attribute is left: the undeclared ones go first
                _enc_pending(w, st, None, pending, und, path)
            if wild[wi][0] == "value":  # the text of mixed content, where the dict has it
                sid = _enc_text(w, states, sid, wild[wi][1], path)
            else:
                sid = _enc_wild(w, states, sid, wild[wi][0], wild[wi][1], path)
                nch += 1
            wi += 1
            continue
        chosen = -1
        item = None
        if st.n > n_keys + 2:
            # large state (e.g. a substitution group): look the message's keys up instead
            best = st.n
            for k in d:
                idx = st.keymap.get(k)
                if idx is not None and cython.cast(cython.int, idx) < best:
                    p = st.prods[idx]
                    if p.is_list:
                        v = d[k]
                        if not isinstance(v, list):
                            raise _type_error(path, k, f"expected a list (element may repeat), got {type(v).__name__}")
                        if p.cap and len(v) > p.cap:
                            raise _too_many(path, k, len(v), p.cap)
                        c = 0 if counts is None else counts.get(k, 0)
                        if c >= len(v):
                            continue
                    elif done is not None and k in done:
                        continue
                    best = idx
            if best < st.n:
                chosen = best
                p = st.prods[chosen]
                v = d[p.key]
                if p.is_list:
                    if counts is None:
                        counts = {}
                    c = counts.get(p.key, 0)
                    item = v[c]
                    counts[p.key] = c + 1
                    if c + 1 == len(v):
                        used += 1
                else:
                    item = v
                    used += 1
            elif st.ee >= 0 and used == n_keys:
                chosen = st.ee
        else:
            for i in range(st.n):
                p = st.prods[i]
                if p.kind == K_EE:
                    if used == n_keys:
                        chosen = i
                        break
                    continue
                if p.kind == K_ANY:
                    continue
                v = d.get(p.key)
                if v is None:
                    continue
                if done is not None and not p.is_list and p.key in done:
                    continue
                if p.is_list:
                    if not isinstance(v, list):
                        raise _type_error(path, p.key, f"expected a list (element may repeat), got {type(v).__name__}")
                    if p.cap and len(v) > p.cap:
                        raise _too_many(path, p.key, len(v), p.cap)
                    if counts is None:
                        counts = {}
                    c = counts.get(p.key, 0)
                    if c >= len(v):
                        continue
                    item = v[c]
                    counts[p.key] = c + 1
                    if c + 1 == len(v):
                        used += 1
                else:
                    item = v
                    used += 1
                chosen = i
                break
        if chosen < 0:
            if (simple and st.ee < 0 and used == n_keys and (wild is None or wi == len(wild)) and gw == nch
                    and gaps is not None and len(gaps) == nch + 1):
                # simple content whose value was never due as typed text: an undeclared EE
                w.bits(st.n, st.width)
                w.bits(0, st.l2_width)
                return 0
            chosen = _no_production(d, {} if counts is None else counts, st, states, first, path)
            used = n_keys
        p = st.prods[chosen]
        if pending:
            _enc_pending(w, st, p.key if p.kind == K_AT else None, pending, und, path)
        if (p.kind == K_CH and st.ee < 0 and used == n_keys and (wild is None or wi == len(wild))
                and _enc_empty(w, st, p.dt, item, path, p.key)):
            return 0  # empty simple content ends the element with an undeclared EE
        w.bits(chosen, st.width)
        if p.kind == K_EE:
            if gaps is not None and len(gaps) != nch + 1:
                raise EncodeError(_path(path, "value"), "occurs", f"{len(gaps)} texts for {nch} children "
                                  f"(one text per gap: {nch + 1})")
            return 0
        if not p.is_list:
            # a single value is written once: self-looping states and the relaxed fragment
            # grammar (ElementFragment_0 and _1 offer the same keys) must not take it again
            if done is None:
                done = set()
            done.add(p.key)
        if p.kind == K_SE:
            if p.arg < 0:
                raise EncodeError(_path(path, p.key), "unknown", "no grammar for this element")
            nch += 1
            path.append(p.key)
            _enc_elem(w, states, p.arg, item, p.direct, path)
            path.pop()
        else:  # K_AT / K_CH
            _enc_value(w, p.dt, item, path, p.key)
        sid = p.nxt


@cython.cfunc
@cython.exceptval(-1)
def _enc_ordered(w: _Writer, states: tuple, sid: cython.int, d: dict, gaps: Optional[list],
                 pending: Optional[list], und: Optional[dict], path: list) -> cython.int:
    """The ordered form: the element's children in the order ORDER gives (each key takes the next
    item of its list), declared ones by their production, "{uri}local" ones as undeclared or
    wildcard elements; attributes (and simple content) as usual, before them; the texts of mixed
    content ("value" as a list) in the gaps."""
    st: _State
    p: _Prod
    i: cython.Py_ssize_t
    chosen: cython.Py_ssize_t
    order = d[ORDER]
    if not isinstance(order, list):
        raise _type_error(path, ORDER, f"expected a list of the children's keys, got {type(order).__name__}")
    d = {k: v for k, v in d.items() if k != ORDER}
    n: cython.Py_ssize_t = len(order)
    oi: cython.Py_ssize_t = 0
    nch: cython.Py_ssize_t = 0  # children written
    gw: cython.Py_ssize_t = -1  # last gap written
    counts: dict = {}
    done: set = set()
    atts: set = set()  # attributes and simple content written
    while True:
        st = states[sid]
        chosen = -1
        item = None
        for i in range(st.n):  # attributes (and simple content) first: they are no children
            p = st.prods[i]
            if ((p.kind == K_AT or (p.kind == K_CH and gaps is None)) and p.key in d
                    and p.key not in done):
                chosen = i
                item = d[p.key]
                break
        if chosen < 0:
            if gaps is not None and gw < nch:
                gw = nch
                sid = _enc_gap(w, states, sid, st, gaps, nch, pending, und, path)
                continue
            if oi < n:
                key = order[oi]
                v = d.get(key) if type(key) is str else None
                if v is None:
                    raise EncodeError(_path(path, ORDER), "unknown",
                                      f"item {oi} names {key!r}, which is no child element of the dict")
                if isinstance(v, list):
                    c = counts.get(key, 0)
                    if c >= len(v):
                        raise EncodeError(_path(path, key), "occurs", f"{ORDER} names it more often than its "
                                          f"{len(v)} items")
                    item = v[c]
                    counts[key] = c + 1
                elif key in atts:
                    raise EncodeError(_path(path, key), "unknown", f"an attribute or the text, not a child: "
                                      f"{ORDER} names child elements only")
                elif key in done:
                    raise EncodeError(_path(path, key), "occurs", f"{ORDER} names it again (a single element)")
                else:
                    item = v
                    done.add(key)
                oi += 1
                po = st.pmap.get(key)
                if po is None or cython.cast(_Prod, po).kind != K_SE:
                    if cython.cast(str, key).startswith("{"):  # undeclared or wildcard element
                        if pending:
                            _enc_pending(w, st, None, pending, und, path)
                        sid = _enc_wild(w, states, sid, key, [item], path)
                        nch += 1
                        continue
                    expected = _se_names(st)
                    raise EncodeError(_path(path, key), "unknown", f"not allowed here (item {oi - 1} of "
                                      f"{ORDER}; expected one of {expected}{' or the end' if st.ee >= 0 else ''})")
                p = po
                if p.is_list != isinstance(v, list):
                    raise _type_error(path, key, "expected a list (element may repeat)" if p.is_list
                                      else f"expected a single value, got {type(v).__name__}")
                if p.cap and len(v) > p.cap:
                    raise _too_many(path, key, len(v), p.cap)
                chosen = p.code
            else:
                for k, v in d.items():  # every child is named in ORDER, and every item
                    if isinstance(v, list) and counts.get(k, 0) < len(v):
                        raise EncodeError(_path(path, k), "occurs", f"{len(v)} items, {ORDER} names it "
                                          f"{counts.get(k, 0)} times")
                    if not isinstance(v, list) and k not in done:
                        raise EncodeError(_path(path, k), "unknown", f"not named in {ORDER} (nor an attribute here)")
                if st.ee < 0:
                    expected = _se_names(st)
                    raise EncodeError(_path(path, expected[0] if len(expected) == 1 else None), "missing",
                                      f"required {' or '.join(expected)} is missing after the children {ORDER} names")
                chosen = st.ee
        p = st.prods[chosen]
        if pending:
            _enc_pending(w, st, p.key if p.kind == K_AT else None, pending, und, path)
        w.bits(chosen, st.width)
        if p.kind == K_EE:
            if gaps is not None and len(gaps) != nch + 1:
                raise EncodeError(_path(path, "value"), "occurs", f"{len(gaps)} texts for {nch} children "
                                  f"(one text per gap: {nch + 1})")
            return 0
        if p.kind == K_SE:
            if p.arg < 0:
                raise EncodeError(_path(path, p.key), "unknown", "no grammar for this element")
            nch += 1
            path.append(p.key)
            _enc_elem(w, states, p.arg, item, p.direct, path)
            path.pop()
        else:  # K_AT / K_CH
            done.add(p.key)
            atts.add(p.key)
            _enc_value(w, p.dt, item, path, p.key)
        sid = p.nxt


def _se_names(st: _State) -> list:
    p: _Prod
    out = []
    for p in st.prods:
        if p.kind == K_SE:
            out.append(str(p.key))
    return out


def _undeclared(d: dict) -> Optional[dict]:
    """The undeclared attributes ("@name" keys) of an element's dict, None when there are none."""
    out: Optional[dict] = None
    for k, v in d.items():
        if type(k) is str and cython.cast(str, k).startswith("@"):
            if out is None:
                out = {}
            out[k] = v
    return out


@cython.cfunc
@cython.exceptval(-1)
def _enc_pending(w: _Writer, st: _State, before: object, pending: list, und: dict, path: list) -> cython.int:
    """Write the pending undeclared attributes that sort before the declared attribute ``before``
    (all of them when the next event is no attribute: None)."""
    limit = None if before is None else _attr_order("@" + str(before))
    while pending:
        k = pending[len(pending) - 1]
        if limit is not None and _attr_order(k) > limit:
            break
        pending.pop()
        _enc_any_attr(w, st, k, und[k], path)
    return 0


def _has_l2_keys(d: dict) -> bool:
    """Whether a dict given for a simple-typed element carries second-level events."""
    for k in d:
        if k == XSI_NIL or k == XSI_TYPE or (type(k) is str and (cython.cast(str, k).startswith("@")
                                                                  or cython.cast(str, k).startswith("{"))):
            return True
    return False


def _wild_keys(d: dict, st: _State, mixed: bool, path: list) -> Optional[list]:
    """[(key, items, declared keys before it)] of the "{uri}local" keys of an element's dict that
    name no declared production (the relaxed fragment grammar declares "{uri}Id"-like keys), and
    of "value" in mixed content: these go where the dict has them."""
    out: Optional[list] = None
    keys: set = set()
    before: list = []
    for k in d:
        if mixed and k == "value":
            if not isinstance(d[k], str):
                raise _type_error(path, k, f"text between the children is a str (or a list: one per gap), got {type(d[k]).__name__}")
            if out is None:
                out = []
            out.append((k, d[k], tuple(before)))
            keys.add(k)
        elif type(k) is str and cython.cast(str, k).startswith("{") and k not in st.keymap:
            if out is None:
                out = []
            items = d[k]
            if not isinstance(items, list):
                raise _type_error(path, k, f"expected a list (an undeclared element may repeat), got {type(items).__name__}")
            for item in items:  # one entry an item: a text gap may come between them
                out.append((k, [item], tuple(before)))
            keys.add(k)
        else:
            before.append(k)
    if out is not None:
        out.append(keys)  # last: the keys the entries take out of the dict
    return out


_MIXED: dict = {}


def _is_mixed(states: tuple, sid: int) -> bool:
    """Whether text in the type grammar from ``sid`` goes between the children ("value" one text
    per gap, or one where the dict has it): mixed content, a CH that loops to its state (the
    xmldsig types with mixed="true", xs:anyType's ur-type grammar), or content with no CH at all
    (element-only or empty), where text is CH [untyped value] (EXI 1.0 section 8.5.4.4.1)."""
    st: _State
    p: _Prod
    key = (id(states), sid)
    got = _MIXED.get(key)
    if got is not None:
        return cython.cast(cython.bint, got)
    seen = set()
    todo = [sid]
    loops = False
    has_ch = False
    while todo and not loops:
        s = todo.pop()
        if s < 0 or s in seen:
            continue
        seen.add(s)
        st = states[s]
        for p in st.prods:
            if p.kind == K_CH:
                has_ch = True
                if p.nxt == s:
                    loops = True
            todo.append(p.nxt)
    res = loops or not has_ch
    _MIXED[key] = res
    return res


def _any_wild_key(d: dict) -> bool:
    for k in d:
        if type(k) is str and cython.cast(str, k).startswith("{"):
            return True
    return False


def _simple_gaps(states: tuple, sid: int, d: dict) -> bool:
    """Whether the "value" list of a simple-content element is one text per gap between its
    undeclared elements (the typed value in one of them) rather than the value of a list type."""
    st: _State
    p: _Prod
    if not _any_wild_key(d):
        return False
    seen = set()
    s = sid
    while s >= 0 and s not in seen:
        seen.add(s)
        st = states[s]
        po = st.pmap.get("value")
        if po is not None and cython.cast(_Prod, po).kind == K_CH:
            p = po
            v = d["value"]
            return p.dt.kind != T_LIST or (len(v) > 0 and isinstance(v[0], list))
        s = -1
        for p in st.prods:  # on through the attributes
            if p.kind != K_SE and p.kind != K_EE:
                s = p.nxt
    return False


@cython.cfunc
def _enc_text(w: _Writer, states: tuple, sid: cython.int, text: object, path: list) -> cython.int:
    """Write the text of mixed content (CH [untyped]) in state ``sid``; return the next state.
    Empty text is no event at all (as EXIficient writes it)."""
    st: _State = states[sid]
    p: _Prod
    if isinstance(text, str) and not text:
        return sid
    po = st.pmap.get("value")
    if po is None or cython.cast(_Prod, po).kind != K_CH:
        # no CH here: CH [untyped value] at the second level (after it a start tag goes on in
        # Element_i,content2, content stays in its state: EXI 1.0 section 8.5.4.4.1)
        if not isinstance(text, str):
            raise _type_error(path, "value", f"text where the schema declares none is str, got {type(text).__name__}")
        w.bits(st.n, st.width)
        w.bits((1 if st.ee < 0 else 0) + (5 if st.tag == 0 else 3 if st.tag == 1 else 1), st.l2_width)
        _enc_value(w, _UNTYPED_STRING, text, path, "value")
        return st.content2 if st.tag != 2 else sid
    p = po
    w.bits(p.code, st.width)
    _enc_value(w, p.dt, text, path, "value")
    return p.nxt


@cython.cfunc
def _enc_gap(w: _Writer, states: tuple, sid: cython.int, st: _State, gaps: list, nch: cython.Py_ssize_t,
             pending: Optional[list], und: Optional[dict], path: list) -> cython.int:
    """Write the text of gap ``nch`` (before child ``nch``; the start tag's undeclared attributes
    first); return the next state."""
    if pending:
        _enc_pending(w, st, None, pending, und, path)
    if nch >= len(gaps):
        raise EncodeError(_path(path, "value"), "occurs", f"{len(gaps)} texts for more children "
                          "(one text per gap: before, between and after the children)")
    return _enc_text(w, states, sid, gaps[nch], path)


def _wild_ready(st: _State, d: dict, before: tuple, counts: Optional[dict], done: Optional[set]) -> bool:
    """Whether the next undeclared element may be written in state ``st``: every key before it in
    the dict is written, and in a start tag no declared attribute of the dict is left."""
    p: _Prod
    for k in before:
        if not _key_done(k, d, counts, done):
            return False
    if st.tag != 2:
        for p in st.prods:
            if p.kind == K_AT and p.key in d and not _key_done(p.key, d, counts, done):
                return False
    return True


def _key_done(k: object, d: dict, counts: Optional[dict], done: Optional[set]) -> bool:
    v = d.get(k)
    if isinstance(v, list):
        return (0 if counts is None else counts.get(k, 0)) >= len(v)
    return done is not None and k in done


@cython.cfunc
def _enc_wild(w: _Writer, states: tuple, sid: cython.int, key: str, items: object, path: list) -> cython.int:
    """Write the items of an undeclared or wildcard element: SE(*) (the state's wildcard
    production, else second-level, after which a start tag goes on in Element_i,content2), its
    qname, then a global element's grammar or the built-in element grammar. Returns the state."""
    st: _State
    p: _Prod
    info: Optional[_SchemaInfo] = w.info
    if not isinstance(items, list):
        raise _type_error(path, key, f"expected a list (an undeclared element may repeat), got {type(items).__name__}")
    qn = _split_clark(key)
    if qn is None or info is None:
        raise EncodeError(_path(path, key), "unknown", "expected '{uri}local' for an undeclared element")
    ent = info.globals.get(qn)
    for item in items:
        st = states[sid]
        if st.any_se >= 0:
            p = st.prods[st.any_se]
            w.bits(p.code, st.width)
            sid = p.nxt
        else:
            w.bits(st.n, st.width)
            w.bits((1 if st.ee < 0 else 0) + (4 if st.tag == 0 else 2 if st.tag == 1 else 0), st.l2_width)
            if st.tag != 2:
                sid = st.content2
        _write_qname(w, qn[0], qn[1])
        path.append(key)
        if ent is not None:
            _enc_elem(w, states, ent[0], item, ent[1], path)
        else:
            _enc_builtin(w, states, info, qn, item, path)
        path.pop()
    return sid


@cython.cfunc
@cython.exceptval(-1)
def _enc_builtin(w: _Writer, states: tuple, info: _SchemaInfo, qn: tuple, item: object, path: list) -> cython.int:
    """An element of no declaration: its built-in grammar capped as EXIficient does for V2G (EXI
    Profile, no built-in grammar kept): AT(xsi:type) in StartTagContent (code 0.1, 2 bits) naming
    xs:anyType (or the dict's own xsi:type), then that type's grammar."""
    if not isinstance(item, dict):
        raise _type_error(path, None, "an undeclared element is a dict ('value', '@name' and '{uri}child' keys)")
    rest: dict = item
    tq: Optional[tuple] = _ANY_TYPE
    if XSI_TYPE in item:
        t = item[XSI_TYPE]
        tq = _split_clark(t) if isinstance(t, str) else None
        if tq is not None and not tq[0]:
            cands = info.by_local.get(tq[1], [])
            tq = cands[0] if len(cands) == 1 else None
        rest = {k: v for k, v in item.items() if k != XSI_TYPE}
    ent = None if tq is None else info.xsi_types.get(tq)
    if ent is None or tq is None:
        raise EncodeError(_path(path, XSI_TYPE), "unknown", f"{item.get(XSI_TYPE)!r} is not a type of this schema set")
    learned: Optional[set] = w.learned
    if learned is None:
        learned = w.learned = set()
    if qn in learned:
        w.bits(1, 1)  # past the learnt AT(xsi:type) (code 0), which EXIficient does not use
    w.bits(1, 2)
    learned.add(qn)
    _write_qname(w, _XSI_NS, "type")
    _write_qname(w, tq[0], tq[1])
    if ent[1] and len(rest) == 1 and "value" in rest:
        _enc_elem(w, states, ent[0], rest["value"], True, path)
    else:
        _enc_elem(w, states, ent[0], rest, ent[1], path)
    return 0


def _attr_order(key: str) -> tuple:
    qn = _split_clark(key[1:])
    return ("", "") if qn is None else (qn[1], qn[0])


def _names_of(states: tuple, sid: int) -> dict:
    """Every key the grammar from ``sid`` may produce -> whether it repeats."""
    st: _State
    p: _Prod
    seen = set()
    todo = [sid]
    names: dict = {}
    while todo:
        s = todo.pop()
        if s in seen or s < 0:
            continue
        seen.add(s)
        st = states[s]
        for p in st.prods:
            if p.kind == K_AT or p.kind == K_SE or p.kind == K_CH:
                names[p.key] = p.is_list
            todo.append(p.nxt)
    return names


def _no_production(d: dict, counts: dict, st: _State, states: tuple, first: int, path: list) -> int:
    """Error path of the encoder: explain why no production fits (or accept trailing empty lists).

    ``first`` is the start state of the element's type grammar (for the names it knows at all)."""
    p: _Prod
    names = _names_of(states, first)
    prods = st.prods
    for k, v in d.items():
        if v is None:
            raise _type_error(path, k, "None is not a value: omit absent optional elements")
        if not isinstance(k, str) or k not in names:
            raise EncodeError(_path(path, k), "unknown", "not an element or attribute of this type")
        if isinstance(v, list) != bool(names[k]):
            raise _type_error(path, k, "expected a list (element may repeat)" if names[k] else f"expected a single value, got {type(v).__name__}")
    leftover = [k for k, v in d.items() if isinstance(v, list) and counts.get(k, 0) < len(v)]
    if not leftover and st.ee >= 0:
        return st.ee  # only empty lists were left
    for k in leftover:
        if counts.get(k, 0) > 0 and k not in st.keymap:
            raise EncodeError(_path(path, k), "occurs", f"too many occurrences ({len(d[k])}, at most {counts[k]} here)")
    expected = []
    for p in prods:
        if p.kind == K_AT or p.kind == K_SE or p.kind == K_CH:
            expected.append(p.key)
    if st.ee < 0 and (len(expected) == 1 or not leftover):
        raise EncodeError(_path(path, expected[0] if len(expected) == 1 else None), "missing",
                          f"required {' or '.join(str(e) for e in expected)} is missing")
    bad = leftover[0] if leftover else None
    if bad is None:
        raise EncodeError(_path(path, None), "missing", f"one of {expected} is required here")
    raise EncodeError(_path(path, bad), "unknown", f"not allowed here (expected one of {expected}{' or the end' if st.ee >= 0 else ''})")


@cython.cfunc
def _dec_elem(r: _Reader, states: tuple, sid: cython.int, direct: cython.bint, depth: cython.int, qn: object) -> object:
    """One element of qname ``qn`` from the start state ``sid`` of its type grammar (``direct``:
    a simple type, whose value is returned as such)."""
    st: _State
    p: _Prod
    nd: dict
    code: cython.Py_ssize_t
    start: cython.Py_ssize_t
    if direct:
        st = states[sid]
        p = st.prods[0]
        start = r.pos
        if r.bits(st.width) != 0:  # escape: an undeclared EE (empty content), CH [untyped value] or xsi:nil
            l2 = _dec_l2(r, st, start)
            if l2 == 0:
                return _empty_value(p.dt, start)
            if l2 == 2:
                if depth > _MAX_DEPTH:
                    raise DecodeError(start, "fewer nested elements", f"nesting deeper than {_MAX_DEPTH}")
                nd = {}
                if _dec_nil_value(r, states, st, nd):
                    return nd
                return _dec_elem(r, states, sid, direct, depth + 1, qn)  # xsi:nil false: as declared
            if l2 >= 3:
                # xsi:type, an undeclared attribute or element: the element becomes a dict ("value"
                # beside them)
                nd = {}
                if l2 == 5:
                    return _dec_content(r, states, st.content2, nd, depth, True, qn)
                if l2 == 3:
                    sid = _dec_xsi_type(r, nd, start)[0]
                else:
                    _dec_any_attr(r, nd, start)
                return _dec_content(r, states, sid, nd, depth, False, qn)
            # CH [untyped value] (l2 == 1): the text, as the schema type where it is a valid form
            # of it, then Element_i,content2 (the value's state: EE, or more undeclared content)
            nd = _dec_content(r, states, st.content2, {"value": _from_text(p.dt, _dec_value(r, _UNTYPED_STRING, qn))},
                              depth, False, qn)
            return nd["value"] if len(nd) == 1 else nd
        else:
            v = _dec_value(r, p.dt, qn)
        start = r.pos
        if r.bits(1) != 0:  # undeclared content after the value: the element becomes a dict
            r.pos = start
            return _dec_content(r, states, p.nxt, {"value": v}, depth, False, qn)
        return v
    return _dec_content(r, states, sid, {}, depth, False, qn)


@cython.cfunc
def _dec_content(r: _Reader, states: tuple, sid: cython.int, d: dict, depth: cython.int, wild: cython.bint,
                 qn: object) -> object:
    """The events of an element from state ``sid`` on, into ``d`` (the element's dict); ``wild``:
    an SE(*) was read, its qname and element come first.

    Children go under their keys (lists where they repeat); undeclared and wildcard elements
    (SE(*)) under "{uri}local" keys, each a list. Where the keyed dict alone would re-encode in
    another order (a qname again after other children, a repeated choice out of grammar order,
    an SE(*) between occurrences of one key) the dict also gets ORDER: every child's key in stream
    order. The text of mixed content is "value" where it came, or, with several runs (or a run the
    dict's order cannot place, or with ORDER), a list of one text per gap between the children."""
    st: _State
    p: _Prod
    code: cython.Py_ssize_t
    start: cython.Py_ssize_t
    frozen: Optional[set] = None  # keys present at the last SE(*)
    since: cython.bint = False  # another event since the last SE(*)
    last = None  # key of the last child
    nchild: cython.Py_ssize_t = 0  # child elements so far
    first: cython.Py_ssize_t = 0  # keys of d before the first child (attributes, xsi:type, text)
    slot0: cython.Py_ssize_t = 0  # the gap of the first text run
    runs: Optional[list] = None  # mixed content: [(gap, text)] once a second run or a self-looping CH came
    tfrozen: Optional[set] = None  # keys present at the first run of mixed text
    tconf: cython.bint = False  # a key from before that text came again after it
    forbid: Optional[set] = None  # keys that, coming now, the keyed encoder would have written earlier
    flater = None  # the last ``later`` added to forbid
    order: Optional[list] = None  # children's keys, recorded from the first non-contiguous one
    need: cython.bint = False  # the keyed dict cannot give the stream back: it gets ORDER
    ch: Optional[_Prod]
    if depth > _MAX_DEPTH:
        raise DecodeError(r.pos, "fewer nested elements", f"nesting deeper than {_MAX_DEPTH}")
    while True:
        if wild:
            wild = False
            if nchild == 0:
                first = len(d)
            key, v = _dec_wild_value(r, states, depth)
            lst = d.get(key)
            if not need:
                if tfrozen is not None and key in tfrozen:
                    tconf = True
                if lst is not None and (since or key != last):
                    need = True  # the keyed encoder writes one "{uri}local" list in one piece
                    if order is None:
                        order = _order_so_far(d, first)
            if lst is None:
                d[key] = [v]
            else:
                lst.append(v)
            if order is not None:
                order.append(key)
            nchild += 1
            frozen = set(d)
            since = False
            last = key
            continue
        st = states[sid]
        start = r.pos
        code = r.bits(st.width)
        if code >= st.n:
            if code > st.n:
                raise _bad_code(start, code, st)
            nsid = _dec_deviation(r, states, st, sid, d, start)
            if nsid == -3:  # SE(*) at the second level: then Element_i,content2 (start tags)
                if st.tag != 2:
                    sid = st.content2
                wild = True
                continue
            if nsid == -4:  # CH [untyped value]: the simple content, or text where the schema has none
                text = _dec_value(r, _UNTYPED_STRING, qn)
                ch = None
                for p in st.prods:
                    if p.kind == K_CH:
                        ch = p
                        break
                if ch is not None and ch.key not in d:
                    d[ch.key] = _from_text(ch.dt, text)  # the value, untyped (RISE-V2G's enumerations)
                    slot0 = nchild
                else:
                    runs = _text_run(d, runs, slot0, nchild, text, start)
                    if runs is None:
                        slot0 = nchild
                    if tfrozen is None:
                        tfrozen = set(d)  # a key from before this text may not come again
                if st.tag != 2:
                    sid = st.content2
                continue
            if nsid < 0:
                break
            sid = nsid
            continue
        p = st.prods[code]
        if p.kind == K_EE:
            break
        if p.kind == K_SE:
            if p.arg < 0:
                raise DecodeError(start, "a supported element", f"no grammar for element {p.key}")
            if nchild == 0:
                first = len(d)
            if not need:
                if frozen is not None:  # (text runs have their gaps, below)
                    since = True
                    if p.key in frozen:  # it came before the last SE(*) too
                        need = True
                if forbid is not None and p.key in forbid:
                    need = True  # the keyed encoder would have written it before
                if need:
                    if order is None:
                        order = _order_so_far(d, first)
                elif order is None and p.is_list and p.key in d and p.key != last:
                    # again after another child (a repeated sequence re-encodes so from the keyed
                    # dict; a later trigger needs the order so far)
                    order = _order_so_far(d, first)
                if tfrozen is not None and p.key in tfrozen:
                    tconf = True
                if p.later is not None and p.later is not flater:
                    flater = p.later
                    if forbid is None:
                        forbid = set(flater)
                    else:
                        forbid |= flater
            v = _dec_elem(r, states, p.arg, p.direct, depth + 1, p.qn)
            nchild += 1
            last = p.key
            if order is not None:
                order.append(p.key)
            if p.is_list:
                lst = d.get(p.key)
                if lst is None:
                    d[p.key] = [v]
                else:
                    lst.append(v)
            else:
                # a self-looping state (relaxed fragment grammar) could take it again: the dict
                # holds one, never lose one (the encoder's "done" set is the other side of this)
                if p.nxt == sid and p.key in d:
                    raise DecodeError(start, f"one {p.key}", f"{p.key} occurs again where the message holds one")
                d[p.key] = v
        elif p.kind == K_ANY:
            if p.key is not None:  # AT(*) of the relaxed fragment grammar
                _dec_any_attr(r, d, start)
                sid = p.nxt
                continue
            wild = True  # SE(*): a wildcard element
            sid = p.nxt
            continue
        else:
            text = _dec_value(r, p.dt, p.qn if p.kind == K_AT else qn)
            if runs is None and p.key not in d:
                d[p.key] = text
                slot0 = nchild
                if p.nxt == sid:  # mixed content: a key from before this text may not come again
                    tfrozen = set(d)
            else:  # a second run of text
                runs = _text_run(d, runs, slot0, nchild, text, start)
        sid = p.nxt
    if need:
        d[ORDER] = order
        if tfrozen is not None or runs is not None:
            return _mixed_done(d, runs, slot0, nchild)
        return d
    return d if runs is None and not tconf else _mixed_done(d, runs, slot0, nchild)


def _text_run(d: dict, runs: Optional[list], slot0: int, nchild: int, text: object, start: int) -> Optional[list]:
    """Record a run of text: the first one goes into "value" (``runs`` stays None), from the
    second on all runs are [(gap, text)]. Two runs in one gap join as text; a typed value (not a
    str) cannot join another run (no XML text gives two character events in a row)."""
    if runs is None:
        if "value" not in d:
            d["value"] = text
            return None
        runs = [(slot0, d["value"])]
    if runs[len(runs) - 1][0] == nchild and not (isinstance(text, str) and isinstance(runs[len(runs) - 1][1], str)):
        raise DecodeError(start, "EE or an element", "a second character event right after a typed value")
    runs.append((nchild, text))
    return runs


def _order_so_far(d: dict, first: int) -> list:
    """ORDER of the children decoded so far, which the keyed dict still held in its own order:
    its keys from the first child's on, each as often as its list has items (the text of mixed
    content, "value", is no child)."""
    out: list = []
    i: cython.Py_ssize_t = 0
    for k, v in d.items():
        if i >= first and k != "value":
            if isinstance(v, list):
                out.extend([k] * len(v))
            else:
                out.append(k)
        i += 1
    return out


def _mixed_done(d: dict, runs: Optional[list], slot0: int, nchild: int) -> dict:
    """Mixed content with several text runs (or one the dict's order cannot place): "value"
    becomes one text per gap between children."""
    gaps = [""] * (nchild + 1)
    for gap, text in (runs if runs is not None else [(slot0, d["value"])]):
        gaps[gap] = text if gaps[gap] == "" else gaps[gap] + text  # (a typed value has a gap to itself)
    d["value"] = gaps if nchild else gaps[0]  # runs in a row and no child: one text
    return d


@cython.cfunc
@cython.exceptval(-2)
def _dec_deviation(r: _Reader, states: tuple, st: _State, sid: cython.int, d: dict, start: cython.Py_ssize_t) -> cython.int:
    """An escaped (second-level) event in element content: returns the next state, -1 after EE.

    An undeclared EE where the simple content ("value") was due gives the empty value; an untyped
    CH in place of "value" gives its string; AT(xsi:nil) true the nil element. -3: SE(*) follows,
    -4: CH [untyped value] follows (both then go on in Element_i,content2 from a start tag, else
    in the same state: EXI 1.0 section 8.5.4.4.1)."""
    p: _Prod
    ch: Optional[_Prod] = None
    for p in st.prods:
        if p.kind == K_CH:
            ch = p
            break
    l2 = _dec_l2(r, st, start)
    if l2 == 2:
        return -1 if _dec_nil_value(r, states, st, d) else sid
    if l2 == 3:
        return _dec_xsi_type(r, d, start)[0]
    if l2 == 4:
        _dec_any_attr(r, d, start)
        return sid
    if l2 == 5:
        return -3  # SE(*): the caller reads the element
    if l2 == 0:
        if ch is not None and ch.key not in d:
            d[ch.key] = _empty_value(ch.dt, start)
        return -1
    return -4  # CH [untyped value]: the caller reads the text


def _bad_code(start: int, code: int, st: _State) -> DecodeError:
    p: _Prod
    names = []
    for p in st.prods:
        if p.kind == K_EE:
            names.append("EE")
        elif p.kind == K_ED:
            names.append("ED")
        elif p.kind == K_ANY:
            names.append("SE(*)" if p.key is None else "AT(*)")
        else:
            names.append(("AT(" if p.kind == K_AT else "SE(" if p.kind == K_SE else "CH(") + str(p.key) + ")")
    if code == st.n:
        return DecodeError(start, f"one of {names}", "second-level event code (schema deviation) is not supported")
    return DecodeError(start, f"one of {names}", f"invalid event code {code}")


# --------------------------------------------------------------------------------------------- SE(*)
_XS_NS = "http://www.w3.org/2001/XMLSchema"
_ANY_TYPE = (_XS_NS, "anyType")


@cython.cfunc
def _dec_wild_value(r: _Reader, states: tuple, depth: cython.int) -> tuple:
    """After SE(*): the element's qname and value, ("{uri}local", value). A global element of the
    schema set keeps its grammar (EXI 1.0 8.5.4.4.1), anything else has the built-in grammar."""
    uri, local = _read_qname(r)
    info: Optional[_SchemaInfo] = r.info
    if info is None:
        raise DecodeError(r.pos, "a schema-informed grammar", "no string table")
    ent = info.globals.get((uri, local))
    if ent is not None:
        return "{%s}%s" % (uri, local), _dec_elem(r, states, ent[0], ent[1], depth + 1, (uri, local))
    return "{%s}%s" % (uri, local), _dec_builtin(r, states, depth + 1, (uri, local))


@cython.cfunc
def _dec_builtin(r: _Reader, states: tuple, depth: cython.int, qn: tuple) -> dict:
    """An element of no declaration: its built-in element grammar (EXI 1.0 8.4.3), one per qname
    and stream, which learns: AT(q), SE(q), CH and EE matched at the second level of
    StartTagContent (2 bits: EE, AT(*), SE(*), CH) become its first-level productions (code 0,
    the others shifted), SE(q) and CH matched in ElementContent (EE, then 1 bit: SE(*), CH) too.
    AT(xsi:type) switches to that type's grammar; EXIficient, with the iso15118 codec's EXI
    Profile settings, writes every such element as AT(xsi:type)="xs:anyType" and the ur-type
    grammar, and that xsi:type is left implied in the dict."""
    d: dict = {}
    if depth > _MAX_DEPTH:
        raise DecodeError(r.pos, "fewer nested elements", f"nesting deeper than {_MAX_DEPTH}")
    tables: Optional[dict] = r.builtins
    if tables is None:
        tables = r.builtins = {}
    g = tables.get(qn)
    if g is None:
        g = tables[qn] = ([], [])
    stc: list = g[0]
    ec: list = g[1]
    nchild: cython.Py_ssize_t = 0
    runs: list = []
    last = None
    tkeys: Optional[set] = None  # keys present at the first text run
    tconf: cython.bint = False  # one of them came again after it
    while True:  # StartTagContent
        start = r.pos
        k = len(stc)
        code = r.bits(k.bit_length())
        if code < k:
            prod = stc[code]
        elif code == k:
            sub = r.bits(2)
            if sub == 0:
                prod = ("EE",)
            elif sub == 1:
                prod = ("AT", _read_qname(r))
            elif sub == 2:
                prod = ("SE", _read_qname(r))
            else:
                prod = ("CH",)
            if prod not in stc:  # (EXIficient's capped grammars match AT(xsi:type) by AT(*) again)
                stc.insert(0, prod)
        else:
            raise DecodeError(start, f"an event code <= {k}", f"invalid event code {code}")
        if prod[0] == "EE":
            return d
        if prod[0] == "AT":
            aq = prod[1]
            if aq[0] == _XSI_NS and aq[1] == "type":
                tq = _read_qname(r)
                info: Optional[_SchemaInfo] = r.info
                ent = None if info is None else info.xsi_types.get(tq)
                if ent is None:
                    raise DecodeError(start, "a type of the schema set", f"xsi:type names {_clark(tq[0], tq[1])!r}, "
                                                                         "which has no grammar here")
                if d or tq != _ANY_TYPE:
                    d[XSI_TYPE] = _clark(tq[0], tq[1])
                return _dec_content(r, states, ent[0], d, depth, False, qn)
            key = "@" + _clark(aq[0], aq[1])
            if key in d:
                raise DecodeError(start, "one value per attribute", f"attribute {key} occurs twice")
            d[key] = _dec_value(r, _UNTYPED_STRING, aq)
            continue
        break
    first: cython.Py_ssize_t = len(d)  # the attributes come before the content
    order: Optional[list] = None  # ORDER, from the first child the keyed dict cannot place
    while True:  # the content: prod is SE(q) or CH, then ElementContent
        start = r.pos
        if prod[0] == "SE":
            cq = prod[1]
            key = "{%s}%s" % cq
            info2: Optional[_SchemaInfo] = r.info
            ent2 = None if info2 is None else info2.globals.get(cq)
            v = _dec_elem(r, states, ent2[0], ent2[1], depth + 1, cq) if ent2 is not None else _dec_builtin(r, states, depth + 1, cq)
            lst = d.get(key)
            if lst is None:
                d[key] = [v]
            else:
                if order is None and last != key:
                    order = _order_so_far(d, first)  # the keyed dict cannot hold this: ORDER
                lst.append(v)
                if tkeys is not None and key in tkeys:
                    tconf = True
            if order is not None:
                order.append(key)
            nchild += 1
            last = key
        else:
            text = _dec_value(r, _UNTYPED_STRING, qn)
            if not runs:
                d["value"] = text  # one run sits where it came in the dict
                tkeys = set(d)
            runs.append((nchild, text))
        start = r.pos
        k = len(ec)
        code = r.bits((k + 1).bit_length())
        if code < k:
            prod = ec[code]
        elif code == k:
            break  # EE
        elif code == k + 1:
            prod = ("SE", _read_qname(r)) if r.bits(1) == 0 else ("CH",)
            if prod not in ec:
                ec.insert(0, prod)
        else:
            raise DecodeError(start, f"an event code <= {k + 1}", f"invalid event code {code}")
    if order is not None:
        d[ORDER] = order
    if len(runs) > 1 or tconf or (runs and order is not None):
        gaps = [""] * (nchild + 1)
        for gap, text in runs:
            gaps[gap] += text
        d["value"] = gaps
    return d


# --------------------------------------------------------------------------------------------- the jar's JSON, compiled
# exi.josev.JosevCodec speaks the JSON of the iso15118 package's jar (exi/_jarshape.py). Its common
# case runs here, straight between EXI bits and JSON text: no dict, no json module, no shape walk.
# Anything outside that case (second-level events, value-table hits, text in mixed content, keys
# out of grammar order, escapes or non-ASCII in JSON strings, the rarer built-ins, bad values)
# raises _FALLBACK and the drop-in takes the general path (dicts, exi._jarshape), which also
# gives the precise error. tests/exi_tests/test_exi_josev_fast.py holds both paths equal.
_HEXU = b"0123456789ABCDEF"
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_INV: bytes = bytes([_B64.index(c) if c in _B64 else 255 for c in range(256)])
_HEX_INV: bytes = bytes([int(chr(c), 16) if chr(c) in "0123456789abcdefABCDEF" else 255 for c in range(256)])


def _b64_tables() -> bytes:
    """Four tables of 256 native uint32: digit value << 18, << 12, << 6, << 0 at the character's
    place, 0x01000000 for a character that is no base64 digit (one OR of four lookups decodes
    and checks a quad)."""
    import array

    out = array.array("I")
    for shift in (18, 12, 6, 0):
        out.extend([(_B64.index(c) << shift) if c in _B64 else 0x01000000 for c in range(256)])
    return out.tobytes()


_B64_DEC: bytes = _b64_tables()


def _b64_mem_tables() -> tuple:
    """(tables, bad flag): four tables of 256 native uint32 whose OR over a quad's characters is
    the quad's three bytes in memory order (a 4-byte store puts them in place), a character that
    is no base64 digit setting the flag in the fourth byte."""
    import array
    import sys

    def word(b: bytes) -> int:
        return int.from_bytes(b, sys.byteorder)

    out = array.array("I")
    for shift in (18, 12, 6, 0):
        for c in range(256):
            if c in _B64:
                x = _B64.index(c) << shift
                out.append(word(bytes([(x >> 16) & 255, (x >> 8) & 255, x & 255, 0])))
            else:
                out.append(word(b"\0\0\0\1"))
    return out.tobytes(), word(b"\0\0\0\1")


_B64_MEM, _B64_BAD_FLAG = _b64_mem_tables()
_B64_BAD = cython.declare(cython.uint, _B64_BAD_FLAG)


# The JSON text goes into a _Writer used as a plain byte buffer (whole bytes, no bit accumulator).
@cython.cfunc
@cython.inline
@cython.exceptval(-1)
def _jch(o: _Writer, c: cython.int) -> cython.int:
    if cython.compiled:
        if o.size + 1 > o.cap:
            o._reserve(1)
        o.cbuf[o.size] = c
        o.size += 1
    else:
        o.pbuf.append(c)
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _jraw(o: _Writer, b: bytes) -> cython.int:
    n: cython.Py_ssize_t = len(b)
    if cython.compiled:
        o._reserve(n)
        memcpy(o.cbuf + o.size, PyBytes_AS_STRING(b), n)
        o.size += n
    else:
        o.pbuf += b
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _jkey(o: _Writer, jkey: bytes, first: cython.bint) -> cython.int:
    """``,"k":`` (``jkey`` is ``"k":``; no comma first)."""
    if not first:
        _jch(o, 44)
    _jraw(o, jkey)
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _jnum(o: _Writer, v: cython.longlong) -> cython.int:
    digits: cython.uchar[24]
    n: cython.int = 0
    u: cython.ulonglong
    if not cython.compiled:
        o.pbuf += str(v).encode("ascii")
        return 0
    if v < 0:
        _jch(o, 45)
        u = cython.cast(cython.ulonglong, -(v + 1)) + 1
    else:
        u = v
    while True:
        digits[n] = 48 + u % 10
        n += 1
        u //= 10
        if u == 0:
            break
    while n > 0:
        n -= 1
        _jch(o, digits[n])
    return 0


@cython.cfunc
def _jtext(o: _Writer) -> str:
    if cython.compiled:
        return PyUnicode_DecodeUTF8(cython.cast(cython.p_char, o.cbuf), o.size, cython.NULL)
    return bytes(o.pbuf).decode("utf-8")


@cython.cfunc
@cython.exceptval(-1)
def _jdec_value(r: _Reader, o: _Writer, dt: _DT) -> cython.int:
    kind: cython.int = dt.kind
    i: cython.Py_ssize_t
    n: cython.Py_ssize_t
    if kind == T_NBIT:
        _jnum(o, dt.lo + cython.cast(cython.longlong, r.bits(dt.nbits)))
    elif kind == T_UINT or kind == T_INT:
        v = _dec_value(r, dt, None)
        if -(2**62) < v < 2**62:
            _jnum(o, v)
        else:
            _jraw(o, str(v).encode("ascii"))
    elif kind == T_BOOL:
        _jraw(o, b"true" if r.bits(1) else b"false")
    elif kind == T_ENUM:
        i = r.bits(dt.nbits)
        if i >= len(dt.values):
            raise _FALLBACK
        _jraw(o, dt.jvals[i])
    elif kind == T_STRING:
        start: cython.Py_ssize_t = r.pos
        ln = r.unsigned()
        if ln < 2:
            raise _FALLBACK  # a value-table hit
        r.pos = start
        s: str = _dec_value(r, dt, None)
        if not s.isascii() or not _json_plain(s):
            _jraw(o, _json_str(s))
        else:
            _jch(o, 34)
            _jraw(o, s.encode("ascii"))
            _jch(o, 34)
    elif cython.compiled and kind == T_B64:
        _jch(o, 34)
        _b64_from_reader(r, o, r.ulen())
        _jch(o, 34)
    elif kind == T_HEX or kind == T_B64:
        b: bytes = r.blob(r.unsigned())
        _jch(o, 34)
        if kind == T_HEX:
            _hex_out(o, b)
        else:
            _b64_out(o, b)
        _jch(o, 34)
    else:
        raise _FALLBACK
    return 0


def _json_plain(s: str) -> bool:
    """Whether an ASCII text goes into JSON as it is (no quote, backslash or control character)."""
    for c in s:
        if c == '"' or c == "\\" or c < " " or c == "\x7f":
            return False
    return True


def _json_str(s: str) -> bytes:
    import json

    return json.dumps(s, ensure_ascii=False).encode("utf-8")


@cython.cfunc
@cython.exceptval(-1)
def _hex_out(o: _Writer, b: bytes) -> cython.int:
    """Uppercase hex of ``b``."""
    i: cython.Py_ssize_t
    n: cython.Py_ssize_t = len(b)
    if cython.compiled:
        o._reserve(2 * n)
        src: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(b))
        hx: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(_HEXU))
        dst: cython.p_uchar = o.cbuf + o.size
        for i in range(n):
            dst[2 * i] = hx[src[i] >> 4]
            dst[2 * i + 1] = hx[src[i] & 15]
        o.size += 2 * n
    else:
        o.pbuf += b.hex().upper().encode("ascii")
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _b64_out(o: _Writer, b: bytes) -> cython.int:
    """Standard base64 of ``b``, padded."""
    n: cython.Py_ssize_t = len(b)
    if not cython.compiled:
        o.pbuf += base64.b64encode(b)
        return 0
    o._reserve(4 * (n // 3 + 1))
    o.size += _b64_chars(cython.cast(cython.p_uchar, PyBytes_AS_STRING(b)), n, o.cbuf + o.size)
    return 0


@cython.cfunc
@cython.inline
@cython.exceptval(check=False)
def _b64_chars(src: cython.p_uchar, n: cython.Py_ssize_t, dst: cython.p_uchar) -> cython.Py_ssize_t:
    """Standard base64 (padded) of the ``n`` bytes at ``src`` written to ``dst``; returns the number of
    characters (4 per started triple). Compiled engine only."""
    tb: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(_B64))
    i: cython.Py_ssize_t = 0
    k: cython.Py_ssize_t = 0
    x: cython.uint
    while i + 3 <= n:
        x = (cython.cast(cython.uint, src[i]) << 16) | (cython.cast(cython.uint, src[i + 1]) << 8) | src[i + 2]
        dst[k] = tb[x >> 18]
        dst[k + 1] = tb[(x >> 12) & 63]
        dst[k + 2] = tb[(x >> 6) & 63]
        dst[k + 3] = tb[x & 63]
        k += 4
        i += 3
    if n - i == 1:
        x = cython.cast(cython.uint, src[i]) << 16
        dst[k] = tb[x >> 18]
        dst[k + 1] = tb[(x >> 12) & 63]
        dst[k + 2] = 61
        dst[k + 3] = 61
        k += 4
    elif n - i == 2:
        x = (cython.cast(cython.uint, src[i]) << 16) | (cython.cast(cython.uint, src[i + 1]) << 8)
        dst[k] = tb[x >> 18]
        dst[k + 1] = tb[(x >> 12) & 63]
        dst[k + 2] = tb[(x >> 6) & 63]
        dst[k + 3] = 61
        k += 4
    return k


_B64_PAIRS: bytes = bytes([c for i in range(4096) for c in (_B64[i >> 6], _B64[i & 63])])


@cython.cfunc
@cython.exceptval(-1)
def _b64_from_reader(r: _Reader, o: _Writer, n: cython.Py_ssize_t) -> cython.int:
    """Standard base64 (padded) of the next ``n`` bytes of the stream, read in place at any bit
    alignment (compiled engine only): six bytes at a time by one 64-bit load, as four lookups of
    two characters each; the last few bytes through a small buffer."""
    i: cython.Py_ssize_t = 0
    k: cython.Py_ssize_t = 0
    t: cython.Py_ssize_t
    wd: cython.ulonglong
    tmp: cython.uchar[8]
    if n > (r.end - r.pos) // 8:
        raise DecodeError(r.pos, f"{n} byte(s)", "length runs past the end of the stream")
    sh: cython.int = r.pos & 7
    src: cython.p_uchar = r.ptr + (r.pos >> 3)
    avail: cython.Py_ssize_t = (r.end >> 3) - (r.pos >> 3)  # bytes from src to the end of the stream
    o._reserve(4 * (n // 3 + 1) + 8)
    dst: cython.p_uchar = o.cbuf + o.size
    pairs: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(_B64_PAIRS))
    while i + 6 <= n and i + 8 <= avail:
        wd = _load_be64(src + i) << sh  # (64 - sh >= 57 valid bits: the 48 needed)
        memcpy(dst + k, pairs + 2 * ((wd >> 52) & 4095), 2)
        memcpy(dst + k + 2, pairs + 2 * ((wd >> 40) & 4095), 2)
        memcpy(dst + k + 4, pairs + 2 * ((wd >> 28) & 4095), 2)
        memcpy(dst + k + 6, pairs + 2 * ((wd >> 16) & 4095), 2)
        k += 8
        i += 6
    m: cython.Py_ssize_t = n - i  # < 8 bytes left (the stream holds byte i + t + 1 when sh > 0)
    for t in range(m):
        if sh == 0:
            tmp[t] = src[i + t]
        else:
            tmp[t] = ((src[i + t] << sh) | (src[i + t + 1] >> (8 - sh))) & 0xFF
    k += _b64_chars(cython.address(tmp[0]), m, dst + k)
    o.size += k
    r.pos += 8 * n
    return 0


@cython.cfunc
@cython.exceptval(-1)
def _jdec_elem(r: _Reader, o: _Writer, states: tuple, sid: cython.int, direct: cython.bint, depth: cython.int,
               jdef: object) -> cython.int:
    """One element as the jar's JSON: its value, or an object of its attributes and children."""
    st: _State
    p: _Prod
    code: cython.Py_ssize_t
    if depth > _MAX_DEPTH:
        raise _FALLBACK
    if direct:
        st = states[sid]
        p = st.prods[0]
        if r.bits(st.width) != 0:
            raise _FALLBACK  # an escape: empty content, untyped value, xsi:nil ...
        _jdec_value(r, o, p.dt)
        if r.bits(1) != 0:
            raise _FALLBACK
        return 0
    _jch(o, 123)
    first: cython.bint = True
    last = None
    open_list: cython.bint = False
    seen: Optional[set] = None
    dkey = None if jdef is None else cython.cast(tuple, jdef)[0]
    have: cython.bint = False
    while True:
        st = states[sid]
        code = r.bits(st.width)
        if code >= st.n:
            raise _FALLBACK
        p = st.prods[code]
        if p.kind == K_EE:
            break
        if p.kind == K_SE:
            if p.arg < 0:
                raise _FALLBACK
            if open_list and p.key is last:
                _jch(o, 44)
            else:
                if open_list:
                    _jch(o, 93)
                if st.osens:
                    if seen is None:
                        seen = set()
                    if p.key in seen:
                        raise _FALLBACK  # again after other children: the general path groups it
                    seen.add(p.key)
                _jkey(o, p.jkey, first)
                first = False
                if dkey is not None and p.key == dkey:
                    have = True
                open_list = p.jlist
                if open_list:
                    _jch(o, 91)
            last = p.key
            _jdec_elem(r, o, states, p.arg, p.direct, depth + 1, p.jdef)
        elif p.kind == K_AT or (p.kind == K_CH and not st.mixed):
            if open_list:
                _jch(o, 93)
                open_list = False
            _jkey(o, p.jkey, first)
            first = False
            last = None
            _jdec_value(r, o, p.dt)
        else:
            raise _FALLBACK  # SE(*), AT(*), text in mixed content
        sid = p.nxt
    if open_list:
        _jch(o, 93)
    if jdef is not None and not have:
        _jkey(o, cython.cast(tuple, jdef)[1], first)  # the jar's zero default of an absent element
    _jch(o, 125)
    return 0


#: the JSON buffer kept from the last jar_decode (taken, set to None, while one is written)
_SPARE_OUT: Optional[_Writer] = None


# ---- JSON text in
@cython.final
@cython.cclass
class _JIn:
    """A cursor over JSON text (ASCII only: anything else makes the caller fall back)."""

    buf: cython.p_uchar
    data: bytes  # the pure-Python engine's text; the compiled one reads ``owner``'s buffer in place
    owner: object
    pos: cython.Py_ssize_t
    end: cython.Py_ssize_t
    sa: cython.Py_ssize_t  # the last string's characters: start and length (string_span)
    sn: cython.Py_ssize_t

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.data = b""
        if cython.compiled:
            if isinstance(owner, bytes):
                self.buf = cython.cast(cython.p_uchar, PyBytes_AS_STRING(owner))
            else:  # a str of 1-byte kind (checked by the caller)
                self.buf = cython.cast(cython.p_uchar, PyUnicode_1BYTE_DATA(owner))
        else:
            self.data = owner if isinstance(owner, bytes) else cython.cast(str, owner).encode("latin-1")
        self.pos = 0
        self.end = len(owner)  # type: ignore[arg-type]  # a str or bytes
        self.sa = 0
        self.sn = 0

    @cython.cfunc
    @cython.inline
    @cython.exceptval(-1)
    def peek(self) -> cython.int:
        """The next non-blank character (not consumed); -2 at the end."""
        c: cython.int
        while self.pos < self.end:
            if cython.compiled:
                c = self.buf[self.pos]
            else:
                c = self.data[self.pos]
            if c == 32 or c == 10 or c == 13 or c == 9:
                self.pos += 1
                continue
            return c
        return -2

    @cython.cfunc
    @cython.inline
    @cython.exceptval(-1)
    def take(self, c: cython.int) -> cython.int:
        if self.peek() != c:
            raise _FALLBACK
        self.pos += 1
        return 0

    @cython.cfunc
    @cython.inline
    @cython.exceptval(-1)
    def at(self, i: cython.Py_ssize_t) -> cython.int:
        if i >= self.end:
            return -2
        if cython.compiled:
            return self.buf[i]
        return self.data[i]

    @cython.cfunc
    @cython.exceptval(-1)
    def word(self, w: bytes) -> cython.int:
        n: cython.Py_ssize_t = len(w)
        i: cython.Py_ssize_t
        for i in range(n):
            if self.at(self.pos + i) != w[i]:
                raise _FALLBACK
        self.pos += n
        return 0

    @cython.cfunc
    @cython.exceptval(-1)
    def string_span(self) -> cython.int:
        """A JSON string: its characters' start and length into ``sa``/``sn``, positioned after
        it; plain ASCII only."""
        c: cython.int
        self.take(34)
        start: cython.Py_ssize_t = self.pos
        i: cython.Py_ssize_t = start
        end: cython.Py_ssize_t = self.end
        if cython.compiled:
            buf: cython.p_uchar = self.buf
            while i < end:
                c = buf[i]
                if c == 34:
                    self.sa = start
                    self.sn = i - start
                    self.pos = i + 1
                    return 0
                if c == 92 or c >= 128 or c < 32:
                    raise _FALLBACK  # escapes and non-ASCII: the general path
                i += 1
            raise _FALLBACK
        while i < end:
            c = self.data[i]
            if c == 34:
                self.sa = start
                self.sn = i - start
                self.pos = i + 1
                return 0
            if c == 92 or c >= 128 or c < 32:
                raise _FALLBACK
            i += 1
        raise _FALLBACK

    @cython.cfunc
    def string(self) -> str:
        self.string_span()
        if cython.compiled:
            return PyUnicode_DecodeASCII(cython.cast(cython.p_char, self.buf + self.sa), self.sn, cython.NULL)
        return self.data[self.sa:self.sa + self.sn].decode("ascii")

    @cython.cfunc
    @cython.exceptval(-1)
    def span_is(self, jkey: bytes) -> cython.bint:
        """Whether the last string is the key of ``jkey`` (``"key":``)."""
        n: cython.Py_ssize_t = len(jkey)
        i: cython.Py_ssize_t
        if n != self.sn + 3:
            return False
        if cython.compiled:
            return memcmp(self.buf + self.sa, PyBytes_AS_STRING(jkey) + 1, self.sn) == 0
        for i in range(self.sn):
            if self.at(self.sa + i) != jkey[i + 1]:
                return False
        return True

    @cython.cfunc
    def integer(self) -> object:
        return self.llong()

    @cython.cfunc
    @cython.exceptval(-1, check=True)
    def llong(self) -> cython.longlong:
        """A JSON integer of at most 18 digits, read in place (anything else: _FALLBACK)."""
        c: cython.int = self.peek()
        neg: cython.bint = c == 45
        v: cython.longlong = 0
        nd: cython.int = 0
        if neg:
            self.pos += 1
        while True:
            c = self.at(self.pos)
            if c < 48 or c > 57:
                break
            if nd >= 18:
                raise _FALLBACK  # past 64 bits: the general path
            v = v * 10 + (c - 48)
            nd += 1
            self.pos += 1
        if c == 46 or c == 101 or c == 69 or nd == 0:
            raise _FALLBACK  # a fraction or an exponent: no integer
        return -v if neg else v


@cython.cfunc
@cython.exceptval(-1)
def _jenc_value(w: _Writer, j: _JIn, dt: _DT) -> cython.int:
    kind: cython.int = dt.kind
    c: cython.int
    i: cython.Py_ssize_t
    n: cython.Py_ssize_t
    a: cython.Py_ssize_t
    if kind <= T_INT:
        if dt.llok:
            if _enc_ll(w, dt, j.llong()):
                raise _FALLBACK  # outside the facets: the general path names the field
        else:
            _enc_int(w, dt, j.integer(), _NO_PATH, None)
    elif kind == T_BOOL:
        c = j.peek()
        if c == 116:
            j.word(b"true")
            w.bits(1, 1)
        elif c == 102:
            j.word(b"false")
            w.bits(0, 1)
        else:
            raise _FALLBACK
    elif kind == T_ENUM:
        c = j.peek()
        if cython.compiled and c == 34 and dt.nv:
            # str literals: the span against each literal's JSON text, in place (no str made)
            j.string_span()
            n = j.sn + 2
            for i in range(dt.nv):
                jv = cython.cast(bytes, dt.jvals[i])
                if len(jv) == n and memcmp(j.buf + j.sa, PyBytes_AS_STRING(jv) + 1, j.sn) == 0:
                    w.bits(i, dt.nbits)
                    return 0
            raise _FALLBACK
        v = j.string() if c == 34 else j.integer()
        idx = dt.index.get(v)
        if idx is None or type(dt.values[idx]) is not type(v):
            raise _FALLBACK
        w.bits(idx, dt.nbits)
    elif kind == T_STRING:
        j.string_span()
        a = j.sa
        n = j.sn
        _check_len(n, dt, _NO_PATH, None, "character")
        w.uint_small(n + 2)
        if cython.compiled:
            w.blob_raw(j.buf + a, n)
        else:
            w.blob(j.data[a:a + n])
    elif kind == T_HEX or kind == T_B64:
        if cython.compiled:
            # the closing quote by memchr; the decoders below refuse every character that is no
            # hex or base64 digit (quotes, backslashes, control and non-ASCII characters among them)
            j.take(34)
            a = j.pos
            q = memchr(j.buf + a, 34, j.end - a)
            if q == cython.NULL:
                raise _FALLBACK
            n = cython.cast(cython.p_uchar, q) - (j.buf + a)
            j.pos = a + n + 1
        else:
            j.string_span()
            a = j.sa
            n = j.sn
        if cython.compiled and kind == T_B64:
            _b64_into(w, j.buf + a, n, dt)  # straight into the bit stream, no bytes object
            return 0
        raw = _unhex(j, a, n) if kind == T_HEX else _unb64(j, a, n)
        _check_len(len(raw), dt, _NO_PATH, None, "byte")
        w.uint_small(len(raw))
        w.blob(raw)
    else:
        raise _FALLBACK
    return 0


@cython.cfunc
def _unhex(j: _JIn, a: cython.Py_ssize_t, n: cython.Py_ssize_t) -> bytes:
    """The bytes of hex text (either case)."""
    i: cython.Py_ssize_t
    hi: cython.uint
    lo: cython.uint
    if n & 1:
        raise _FALLBACK
    if not cython.compiled:
        return bytes.fromhex(j.data[a:a + n].decode("ascii"))
    out = PyBytes_FromStringAndSize(cython.NULL, n >> 1)
    dst: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(out))
    src: cython.p_uchar = j.buf + a
    inv: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(_HEX_INV))
    for i in range(n >> 1):
        hi = inv[src[2 * i]]
        lo = inv[src[2 * i + 1]]
        if hi > 15 or lo > 15:
            raise _FALLBACK
        dst[i] = (hi << 4) | lo
    return out


@cython.cfunc
@cython.inline
@cython.exceptval(-1)
def _b64_last_quad(src: cython.p_uchar, pad: cython.Py_ssize_t, inv: cython.p_uchar) -> cython.longlong:
    """The 24 bits of the last base64 quad at ``src``, '=' only as its ``pad`` padding characters;
    _FALLBACK for any other character (compiled engine only)."""
    x: cython.longlong = 0
    q: cython.int
    v: cython.uint
    for q in range(4):
        if src[q] == 61 and q >= 4 - pad:
            v = 0
        else:
            v = inv[src[q]]
            if v > 63:
                raise _FALLBACK
        x = (x << 6) | v
    return x


@cython.cfunc
def _unb64(j: _JIn, a: cython.Py_ssize_t, n: cython.Py_ssize_t) -> bytes:
    """Strict base64 (as base64.b64decode(validate=True)): whole quads, '=' only as padding."""
    i: cython.Py_ssize_t
    k: cython.Py_ssize_t = 0
    x: cython.uint
    pad: cython.Py_ssize_t = 0
    if n & 3:
        raise _FALLBACK
    if not cython.compiled:
        return base64.b64decode(j.data[a:a + n], validate=True)
    src: cython.p_uchar = j.buf + a
    inv: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(_B64_INV))
    if n and src[n - 1] == 61:
        pad = 2 if src[n - 2] == 61 else 1
    m: cython.Py_ssize_t = 3 * (n >> 2) - pad
    out = PyBytes_FromStringAndSize(cython.NULL, m)
    dst: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(out))
    i = 0
    tab: cython.p_uint = cython.cast(cython.p_uint, PyBytes_AS_STRING(_B64_DEC))
    while i + 4 < n:  # whole quads, the last one aside
        x = tab[src[i]] | tab[256 + src[i + 1]] | tab[512 + src[i + 2]] | tab[768 + src[i + 3]]
        if x & 0x01000000:
            raise _FALLBACK
        dst[k] = (x >> 16) & 255
        dst[k + 1] = (x >> 8) & 255
        dst[k + 2] = x & 255
        k += 3
        i += 4
    if n:
        x = _b64_last_quad(src + i, pad, inv)
        dst[k] = (x >> 16) & 255
        k += 1
        if k < m:
            dst[k] = (x >> 8) & 255
            k += 1
        if k < m:
            dst[k] = x & 255
            k += 1
    return out


@cython.cfunc
@cython.exceptval(-1)
def _b64_into(w: _Writer, src: cython.p_uchar, n: cython.Py_ssize_t, dt: _DT) -> cython.int:
    """Strict base64 text (as _unb64 takes it) -> its length and bytes written at the writer's bit
    position (compiled engine only), no bytes object: each quad is one OR of four lookups in
    _B64_MEM, stored as one 4-byte word in the writer's spare room, the character check folded
    into one test after the loop (a bad character: the general path); then one shifted copy."""
    i: cython.Py_ssize_t = 0
    k: cython.Py_ssize_t = 0
    x: cython.uint
    bad: cython.uint = 0
    pad: cython.Py_ssize_t = 0
    if n & 3:
        raise _FALLBACK
    if n and src[n - 1] == 61:
        pad = 2 if src[n - 2] == 61 else 1
    m: cython.Py_ssize_t = 3 * (n >> 2) - pad
    _check_len(m, dt, _NO_PATH, None, "byte")
    w.uint_small(m)
    if n == 0:
        return 0
    tab: cython.p_uint = cython.cast(cython.p_uint, PyBytes_AS_STRING(_B64_MEM))
    inv: cython.p_uchar = cython.cast(cython.p_uchar, PyBytes_AS_STRING(_B64_INV))
    # room for the bytes where they go and, past them, for the decoded bytes themselves
    w._reserve(2 * m + 24)
    tmp: cython.p_uchar = w.cbuf + w.size + m + 16
    while i + 4 < n:  # whole quads, the last one aside
        x = tab[src[i]] | tab[256 + src[i + 1]] | tab[512 + src[i + 2]] | tab[768 + src[i + 3]]
        bad |= x
        memcpy(tmp + k, cython.address(x), 4)  # three bytes (the fourth is written over next)
        k += 3
        i += 4
    if bad & _B64_BAD:
        raise _FALLBACK
    x = _b64_last_quad(src + i, pad, inv)
    tmp[k] = (x >> 16) & 255
    tmp[k + 1] = (x >> 8) & 255
    tmp[k + 2] = x & 255
    w.blob_raw(tmp, m)  # (its own reserve finds the room made above: tmp stays valid)
    return 0


@cython.cfunc
def _new_jin(owner: object) -> _JIn:
    """A _JIn without the Python-level __init__ call."""
    j: _JIn = _JIn.__new__(_JIn)
    j.owner = owner
    j.data = b""
    if cython.compiled:
        if isinstance(owner, bytes):
            j.buf = cython.cast(cython.p_uchar, PyBytes_AS_STRING(owner))
        else:
            j.buf = cython.cast(cython.p_uchar, PyUnicode_1BYTE_DATA(owner))
    else:
        j.data = owner if isinstance(owner, bytes) else cython.cast(str, owner).encode("latin-1")
    j.pos = 0
    j.end = len(owner)  # type: ignore[arg-type]  # a str or bytes
    j.sa = 0
    j.sn = 0
    return j


@cython.cfunc
def _key_prod(st: _State, j: _JIn) -> object:
    """The first production of ``st`` whose key is the JSON string just read (as pmap would
    give it), without making a str of it; None if none."""
    p: _Prod
    i: cython.Py_ssize_t
    if cython.compiled:
        # the span's word as _key_word makes it, then one scan of the state's words
        sn: cython.Py_ssize_t = j.sn
        src: cython.p_uchar = j.buf + j.sa
        w: cython.ulonglong = cython.cast(cython.ulonglong, sn if sn < 255 else 255) << 56
        for i in range(sn if sn < 7 else 7):
            w |= cython.cast(cython.ulonglong, src[i]) << (8 * i)
        fp: cython.p_ulonglong = st.jfp
        for i in range(st.n):
            if fp[i] == w:
                p = cython.cast(_Prod, st.prods[i])
                if sn <= 7 or j.span_is(p.jkey):
                    return p
        return None
    n: cython.Py_ssize_t = j.sn + 3
    for p in st.prods:
        if (p.kind == K_SE or p.kind == K_AT or p.kind == K_CH) and len(p.jkey) == n and j.span_is(p.jkey):
            return p
    return None


@cython.cfunc
@cython.exceptval(-1)
def _jenc_elem(w: _Writer, j: _JIn, states: tuple, sid: cython.int, direct: cython.bint, depth: cython.int) -> cython.int:
    """One element from the jar's JSON: keys in the JSON's order through the grammar (a repeated
    choice in the order the JSON gives, as the jar writes it)."""
    st: _State
    p: _Prod
    n: cython.Py_ssize_t
    c: cython.int
    if depth > _MAX_DEPTH:
        raise _FALLBACK
    if direct:
        st = cython.cast(_State, states[sid])
        p = cython.cast(_Prod, st.prods[0])
        if j.peek() == 34 and p.dt.kind >= T_STRING and j.at(j.pos + 1) == 34:
            # empty content: an undeclared EE
            j.pos += 2
            _check_len(0, p.dt, _NO_PATH, None, "character")
            w.bits(st.n, st.width)
            w.bits(0, st.l2_width)
            return 0
        w.bits(0, 1)
        _jenc_value(w, j, p.dt)
        w.bits(0, 1)
        return 0
    j.take(123)
    if j.peek() == 125:
        j.pos += 1
    else:
        while True:
            j.string_span()
            j.take(58)
            st = cython.cast(_State, states[sid])
            po = _key_prod(st, j)
            if po is None:
                raise _FALLBACK
            p = cython.cast(_Prod, po)
            if p.kind == K_SE:
                if p.arg < 0:
                    raise _FALLBACK
                if j.peek() == 91 and (p.is_list or p.jlist):
                    j.pos += 1
                    n = 0
                    if j.peek() == 93:
                        raise _FALLBACK
                    while True:
                        if n:
                            st = cython.cast(_State, states[sid])
                            po = _pget(st, p.key)
                            if po is None:
                                raise _FALLBACK
                            p = cython.cast(_Prod, po)
                        n += 1
                        if (not p.is_list and n > 1) or (p.cap and n > p.cap):
                            raise _FALLBACK
                        w.bits(p.code, st.width)
                        _jenc_elem(w, j, states, p.arg, p.direct, depth + 1)
                        sid = p.nxt
                        c = j.peek()
                        j.pos += 1
                        if c == 93:
                            break
                        if c != 44:
                            raise _FALLBACK
                elif p.is_list:
                    raise _FALLBACK
                else:
                    w.bits(p.code, st.width)
                    _jenc_elem(w, j, states, p.arg, p.direct, depth + 1)
                    sid = p.nxt
            elif p.kind == K_AT or (p.kind == K_CH and not st.mixed):
                if p.kind == K_CH and j.peek() == 34 and j.at(j.pos + 1) == 34:
                    raise _FALLBACK  # empty simple content: the general path writes the undeclared EE
                w.bits(p.code, st.width)
                _jenc_value(w, j, p.dt)
                sid = p.nxt
            else:
                raise _FALLBACK
            c = j.peek()
            j.pos += 1
            if c == 125:
                break
            if c != 44:
                raise _FALLBACK
    st = cython.cast(_State, states[sid])
    if st.ee < 0:
        raise _FALLBACK
    w.bits(st.ee, st.width)
    return 0



# --------------------------------------------------------------------------------------------- fast decoder
@cython.cfunc
def _dec_fast(r: _Reader, states: tuple, sid: cython.int, direct: cython.bint, depth: cython.int) -> object:
    """Decoder fast path: a stream of declared events only, each child key in one run (what a
    keyed dict holds without ORDER or text gaps). Anything else (a second-level event, SE(*),
    text in mixed content, a repeated choice, a list key again after another child, a value-table
    hit) raises, and Grammar._dec decodes the stream again with the general decoder, which gives
    the same dict for the streams this one takes."""
    st: _State
    p: _Prod
    code: cython.Py_ssize_t
    if direct:
        st = states[sid]
        p = st.prods[0]
        if r.bits(st.width) != 0:
            raise _FALLBACK
        v = _dec_value(r, p.dt, None)
        if r.bits(1) != 0:
            raise _FALLBACK
        return v
    if depth > _MAX_DEPTH:
        raise _FALLBACK
    d: dict = {}
    last = None
    while True:
        st = states[sid]
        code = r.bits(st.width)
        if code >= st.n:
            raise _FALLBACK
        p = st.prods[code]
        if p.kind == K_SE:
            if p.arg < 0 or p.later is not None or st.mixed:
                raise _FALLBACK
            if p.direct:  # a simple-typed child inline: CH (1 bit, 0), its value, EE (1 bit, 0)
                if r.bits(1) != 0:
                    raise _FALLBACK
                v = _dec_value(r, cython.cast(_Prod, cython.cast(_State, states[p.arg]).prods[0]).dt, p.qn)
                if r.bits(1) != 0:
                    raise _FALLBACK
            else:
                v = _dec_fast(r, states, p.arg, False, depth + 1)
            lst = d.get(p.key)
            if lst is None:
                d[p.key] = [v] if p.is_list else v
            elif p.is_list and p.key is last:
                cython.cast(list, lst).append(v)
            else:
                raise _FALLBACK
            last = p.key
        elif p.kind == K_EE:
            return d
        elif p.kind == K_AT or (p.kind == K_CH and not st.mixed):
            if p.kind == K_CH and p.key in d:
                raise _FALLBACK
            d[p.key] = _dec_value(r, p.dt, p.qn)
            last = None
        else:
            raise _FALLBACK
        sid = p.nxt


# --------------------------------------------------------------------------------------------- entry
#: a writer whose buffer grew past this is not kept for the next message
_SPARE_MAX = cython.declare(cython.Py_ssize_t, 1 << 16)


@cython.final
@cython.cclass
class Grammar:
    """Document or fragment entry point of one schema set."""

    states: tuple
    start: cython.int
    keys: dict
    roots: dict  # root element name -> its production in the start state
    fragment: cython.bint
    spare: Optional[_Writer]  # writer kept from the previous message; taken (set to None) while one is written
    info: Optional[_SchemaInfo]

    def __init__(self, raw_states: tuple, start: int, keys: dict, fragment: bool,
                 string_table: Optional[tuple] = None, xsi_types: Optional[dict] = None,
                 global_elements: Optional[dict] = None) -> None:
        st: _State
        self.info = None if string_table is None else _SchemaInfo(string_table, xsi_types or {}, global_elements or {})
        self.states = _compile_states(raw_states, () if xsi_types is None else tuple([e[0] for e in xsi_types.values()]),
                                      () if string_table is None else tuple(string_table[0]))
        self.start = start
        self.keys = keys
        self.fragment = fragment
        st = self.states[start]
        self.roots = {k: st.prods[c] for k, c in keys.items()}
        self.spare = None

    def encode(self, message: object) -> bytes:
        """Encode one root element (a one-key dict) as a document or fragment."""
        return self._enc(message)

    def decode(self, data: object) -> dict:
        """Decode a document or fragment stream (header byte 0x80 first)."""
        return self._dec(data)

    @cython.cfunc
    def _enc(self, message: object) -> bytes:
        st: _State
        p: _Prod
        w: Optional[_Writer]
        if not isinstance(message, dict) or not (len(message) == 1 or (self.fragment and len(message) > 1)):
            raise EncodeError("", "type", "expected a dict with exactly one key: the root element"
                              if not self.fragment else "expected a dict of the fragment's root elements")
        if len(message) > 1 or _any_wild_key(message):
            return self._enc_roots(message)
        for key, value in message.items():
            pass
        po = self.roots.get(key)
        if po is None:
            raise EncodeError(str(key), "unknown", "not an element of this schema set" if self.fragment else "not a global element of this schema set")
        p = cython.cast(_Prod, po)
        if p.arg < 0:
            raise EncodeError(str(key), "unknown", "element declared with several types: the relaxed fragment grammar is not supported")
        st = cython.cast(_State, self.states[self.start])
        # reuse the previous call's writer; a nested or concurrent call (none in normal use) finds
        # None here and makes its own, so no two messages ever share a buffer
        w = self.spare
        if w is None:
            w = _Writer()
        else:
            self.spare = None
            w.reset()
        w.info = self.info
        w.bits(0x80, 8)
        w.bits(p.code, st.width)
        fast_ok: cython.bint = True
        try:
            _enc_fast(w, self.states, p.arg, value, p.direct, 1)
        except Exception:
            fast_ok = False
        if not fast_ok:
            # checked encoder: any order of keys, precise EncodeError (path and rule) on bad input
            w.reset()
            w.bits(0x80, 8)
            w.bits(p.code, st.width)
            path = [key]
            try:
                _enc_elem(w, self.states, p.arg, value, p.direct, path)
            except RecursionError:
                raise EncodeError(".".join([str(x) for x in path]), "type", "message nested too deeply") from None
        st = cython.cast(_State, self.states[p.nxt])
        if st.ed >= 0:
            w.bits(st.ed, st.width)
        out = w.finish()
        if w.cap <= _SPARE_MAX:
            self.spare = w
        return out

    def _enc_roots(self, message: dict) -> bytes:
        """Several root elements (a fragment) or an undeclared one ("{uri}local": SE(*) of the
        document or fragment grammar, then the built-in element grammar): the checked encoder."""
        st: _State
        p: _Prod
        w: _Writer = _Writer()
        w.info = self.info
        w.bits(0x80, 8)
        sid: cython.int = self.start
        for key, value in message.items():
            st = self.states[sid]
            po = self.roots.get(key)
            if po is None:
                if not (type(key) is str and cython.cast(str, key).startswith("{") and st.any_se >= 0):
                    raise EncodeError(str(key), "unknown", "not an element of this schema set" if self.fragment
                                      else "not a global element of this schema set")
                if not isinstance(value, list) or (not self.fragment and len(value) != 1):
                    raise _type_error([], key, "an undeclared root element is a list of one element"
                                      if not self.fragment else "an undeclared element is a list (it may repeat)")
                try:
                    sid = _enc_wild(w, self.states, sid, key, value, [])
                except RecursionError:
                    raise EncodeError(str(key), "type", "message nested too deeply") from None
                continue
            p = po
            if p.arg < 0:
                raise EncodeError(str(key), "unknown", "element declared with several types: the relaxed fragment grammar is not supported")
            w.bits(p.code, st.width)
            path = [key]
            try:
                _enc_elem(w, self.states, p.arg, value, p.direct, path)
            except RecursionError:
                raise EncodeError(".".join([str(x) for x in path]), "type", "message nested too deeply") from None
            sid = p.nxt
        st = self.states[sid]
        if st.ed >= 0:
            w.bits(st.ed, st.width)
        return w.finish()

    @cython.cfunc
    def _dec(self, data: object) -> dict:
        if type(data) is bytes or isinstance(data, bytes):
            r = _new_reader(data)
        elif isinstance(data, (bytearray, memoryview)):
            r = _new_reader(bytes(data))
        else:
            raise DecodeError(0, "bytes", f"got {type(data).__name__}")
        r.info = self.info
        mode: cython.int = 0  # 0: the fast decoder, 1: the general one, 2: it with value partitions
        try:
            while True:
                try:
                    return self._decode(r, mode == 0)
                except _Fallback:
                    # more than the fast decoder takes: the general decoder
                    if mode != 0:
                        raise DecodeError(r.pos, "a valid stream", "internal fallback") from None
                    mode = 1
                except _Restart:
                    # a value-table hit: decode again, now keeping the value partitions (a
                    # stream without hits never pays for them)
                    if mode == 2:
                        raise DecodeError(r.pos, "a valid stream", "internal restart") from None
                    mode = 2
                r = _new_reader(r.data)
                r.info = self.info
                if mode == 2:
                    r.vt = _Values()
        except DecodeError:
            raise
        except (IndexError, KeyError, TypeError, ValueError, OverflowError, RecursionError, MemoryError) as exc:
            raise DecodeError(r.pos, "a valid stream", f"{type(exc).__name__}: {exc}") from None

    @cython.cfunc
    def _decode(self, r: _Reader, fast: cython.bint) -> dict:
        st: _State
        p: _Prod
        sid: cython.int = self.start
        if r.end < 8:
            raise DecodeError(0, "EXI header byte 0x80", "stream shorter than one byte")
        h = r.bits(8)
        if h != 0x80:
            raise DecodeError(0, "EXI header byte 0x80", f"got 0x{h:02x}")
        out: dict = {}
        last = None  # the previous root element's key
        while True:
            st = self.states[sid]
            start = r.pos
            code = r.bits(st.width)
            if code >= st.n:
                raise _bad_code(start, code, st)
            p = st.prods[code]
            if p.kind == K_ED:
                break
            if p.kind == K_ANY:  # an undeclared root: "{uri}local", a list as everywhere
                if fast:
                    raise _FALLBACK
                key, v = _dec_wild_value(r, self.states, 1)
                lst = out.get(key)
                if lst is None:
                    out[key] = [v]
                elif last != key:
                    raise DecodeError(start, "ED or another root element", f"root element {key} again after "
                                      "another one (the message holds one list per name, in one piece)")
                else:
                    lst.append(v)
                last = key
                sid = p.nxt
                continue
            if p.arg < 0:
                raise DecodeError(start, "an element with a single type", f"element {p.key} needs the relaxed fragment grammar (not supported)")
            if p.key in out:
                raise DecodeError(start, "ED", f"root element {p.key} again in one fragment (the message holds one)")
            if fast:
                out[p.key] = _dec_fast(r, self.states, p.arg, p.direct, 1)
            else:
                out[p.key] = _dec_elem(r, self.states, p.arg, p.direct, 1, p.qn)
            last = p.key
            sid = p.nxt
        if (r.end - r.pos) >= 8:
            # Whole zero bytes after the padding are accepted (Tesla DIN stacks append one; EXIficient
            # and libcbv2g ignore it); anything else after the end of the stream is garbage.
            tail = r.data[(r.pos + 7) >> 3:]
            if tail.count(0) != len(tail):
                raise DecodeError(r.pos, "end of stream (padding only)", f"{len(tail)} trailing byte(s)")
        return out


@cython.cclass
class CodecCore:
    """Base of :class:`exi.Codec`: its four entry points run straight in the engine.

    ``exi.Codec`` only adds the schema tables and its constructor; calling ``codec.encode(msg)``
    enters compiled code directly (no Python-level wrapper frame per message).
    """

    _doc = cython.declare(object, visibility="public")
    _frag = cython.declare(object, visibility="public")

    def encode(self, message: _Message) -> bytes:
        """Encode an EXI document (header byte 0x80 included) from a message dict."""
        g = self._doc
        if type(g) is Grammar:
            return cython.cast(Grammar, g)._enc(message)
        return g.encode(message)  # a Grammar of the other engine (tests comparing both)

    def decode(self, data: _Buffer) -> dict:
        """Decode an EXI document (header byte 0x80 first) into a message dict."""
        g = self._doc
        if type(g) is Grammar:
            return cython.cast(Grammar, g)._dec(data)
        return g.decode(data)

    def encode_fragment(self, message: _Message) -> bytes:
        """Encode an EXI fragment with this schema set's fragment grammar (used for signature digests)."""
        g = self._frag
        if type(g) is Grammar:
            return cython.cast(Grammar, g)._enc(message)
        return g.encode(message)

    def decode_fragment(self, data: _Buffer) -> dict:
        """Decode an EXI fragment of this schema set's fragment grammar."""
        g = self._frag
        if type(g) is Grammar:
            return cython.cast(Grammar, g)._dec(data)
        return g.decode(data)


def jar_encode(roots: dict, text: object) -> Optional[bytes]:
    """The jar's JSON text of one message -> EXI bytes, or None when the general path must take
    it. ``roots``: root element key -> Grammar (document or fragment) of the message set."""
    return _jar_encode(roots, text)


def jar_decode(g: object, data: object) -> Optional[str]:
    """EXI bytes of one message (document or fragment of Grammar ``g``) -> the jar's JSON text,
    or None when the general path must take it."""
    return _jar_decode(g, data)


@cython.cclass
class JarCore:
    """Base of exi.josev.JosevCodec: ``encode``/``decode`` run the compiled path straight from
    the call (no Python frame), the subclass's ``_encode_general``/``_decode_general`` the rest.
    ``_ents``: namespace -> (root key -> Grammar, the decoding Grammar, the codec)."""

    _ents = cython.declare(dict, visibility="public")

    def __init__(self) -> None:
        self._ents = {}

    def encode(self, message: object, namespace: object) -> bytes:
        """The jar's JSON text (str or bytes) -> EXI bytes."""
        ent: object = None
        try:
            ent = self._ents.get(namespace)
        except TypeError:  # unhashable: the general path names the error
            pass
        if ent is not None:
            out = _jar_encode(cython.cast(tuple, ent)[0], message)
            if out is not None:
                return out
        return self._encode_general(message, namespace)  # type: ignore[attr-defined,no-any-return]

    def decode(self, stream: object, namespace: object) -> str:
        """EXI bytes -> the jar's JSON text."""
        ent: object = None
        try:
            ent = self._ents.get(namespace)
        except TypeError:
            pass
        if ent is not None and type(stream) is bytes:
            out = _jar_decode(cython.cast(tuple, ent)[1], stream)
            if out is not None:
                return out
        return self._decode_general(stream, namespace)  # type: ignore[attr-defined,no-any-return]


#: the root element of the previous drop-in message (compiled engine): its roots dict, its key as
#: bytes, its Grammar and production, so that the next message of that root finds them by one
#: comparison of its key's text (no str made, no dict probe)
_JR_ROOTS = cython.declare(object, None)
_JR_KEY = cython.declare(bytes, b"")
_JR_G = cython.declare(object, None)
_JR_P = cython.declare(object, None)


@cython.cfunc
def _jar_encode(roots: dict, text: object) -> object:
    global _JR_ROOTS, _JR_KEY, _JR_G, _JR_P
    g: Grammar
    p: _Prod
    st: _State
    w: Optional[_Writer]
    hit: cython.bint = False
    if isinstance(text, str):
        s: str = text
        if cython.compiled:
            if PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND:
                return None  # (Latin-1 text in a 1-byte str: the string scanner refuses bytes >= 128)
        elif not s.isascii():
            return None
    elif not isinstance(text, bytes):
        return None
    j = _new_jin(text)
    try:
        j.take(123)
        if cython.compiled:
            j.string_span()
            if (roots is _JR_ROOTS and j.sn == len(_JR_KEY)
                    and memcmp(j.buf + j.sa, PyBytes_AS_STRING(_JR_KEY), j.sn) == 0):
                g = cython.cast(Grammar, _JR_G)
                p = cython.cast(_Prod, _JR_P)
                hit = True
            else:
                j.pos = j.sa - 1  # read the key again, as a str
        if not hit:
            key = j.string()
            go = roots.get(key)
            if go is None:
                return None
            g = go
            po = g.roots.get(key)
            if po is None:
                return None
            p = po
            if p.arg < 0:
                return None
            if cython.compiled:
                _JR_ROOTS = roots
                _JR_KEY = cython.cast(str, key).encode("ascii")
                _JR_G = g
                _JR_P = p
        j.take(58)
        w = g.spare
        if w is None:
            w = _Writer()
        else:
            g.spare = None
            w.reset()
        w.info = g.info
        st = g.states[g.start]
        w.bits(0x80, 8)
        w.bits(p.code, st.width)
        _jenc_elem(w, j, g.states, p.arg, p.direct, 1)
        j.take(125)
        if j.peek() != -2:
            return None
    except (_Fallback, EncodeError, ValueError, IndexError, TypeError, OverflowError, RecursionError):
        return None
    st = g.states[p.nxt]
    if st.ed >= 0:
        w.bits(st.ed, st.width)
    out = w.finish()
    if w.cap <= _SPARE_MAX:
        g.spare = w
    return out


@cython.cfunc
def _jar_decode(g: object, data: object) -> object:
    gr: Grammar = g  # type: ignore[assignment]  # a Grammar (the caller's table entry)
    st: _State
    p: _Prod
    if not isinstance(data, bytes):
        return None
    r = _new_reader(data)
    r.info = gr.info
    global _SPARE_OUT
    o: Optional[_Writer] = _SPARE_OUT
    if o is None:
        o = _Writer()
    else:
        _SPARE_OUT = None
        o.reset()
    try:
        if r.end < 8 or r.bits(8) != 0x80:
            return None
        st = gr.states[gr.start]
        code = r.bits(st.width)
        if code >= st.n:
            return None
        p = st.prods[code]
        if p.kind != K_SE or p.arg < 0:
            return None
        _jch(o, 123)
        _jkey(o, p.jkey, True)
        _jdec_elem(r, o, gr.states, p.arg, p.direct, 1, p.jdef)
        _jch(o, 125)
        st = gr.states[p.nxt]
        if st.ed >= 0:
            if r.bits(st.width) != st.ed:
                return None  # several roots (a fragment): the general path
        if (r.end - r.pos) >= 8:
            tail = r.data[(r.pos + 7) >> 3:]
            if tail.count(0) != len(tail):
                return None
    except (_Fallback, DecodeError, ValueError, IndexError, TypeError, OverflowError, RecursionError):
        return None
    text = _jtext(o)
    if o.cap <= _SPARE_MAX:
        _SPARE_OUT = o
    return text


def jar_defaults(g: object, defaults: dict) -> None:
    """Mark the elements whose absent child the jar's JSON carries as a default: ``defaults`` maps
    an element key to (child key, default) (exi._jarshape.JAR_ZERO_DEFAULTS)."""
    gr: Grammar = g  # type: ignore[assignment]  # a Grammar (the caller's table entry)
    st: _State
    p: _Prod
    for st in gr.states:
        for p in st.prods:
            if p.kind == K_SE and p.key in defaults:
                child, v = defaults[p.key]
                p.jdef = (child, ('"%s":%s' % (child, v)).encode("ascii"))
