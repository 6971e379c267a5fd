# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled twin of the DER walker in :mod:`pki._certinfo` (same results, same errors).

``pki._certinfo`` imports :func:`parse_certificate` and :func:`name_attrs` from here when the
extension is built (``setup.py`` ``COMPILED``) and falls back to its pure-Python code otherwise
(or when ``PLUGCHARGE_PKI_PURE=1``). The differential test in ``test_pki_verify.py`` checks that
both parse every corpus certificate and every truncation/bit flip identically.

The walker also packs ``ParsedCert.facts``, the profile-relevant facts of the certificate, which
:func:`profile_ok` (the compiled fast path of ``pki.verify._check_profile``) compares against a
compiled profile; :func:`emaid_ok` is the compiled twin of ``pki.profiles.is_valid_emaid``.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII, PyUnicode_DecodeLatin1, PyUnicode_DecodeUTF8

from pki._certinfo import CertParseError, ParsedCert

cdef object _NEW = object.__new__  # ParsedCert has __slots__ and no __new__ of its own


# --- direct slot stores: the walker fills a fresh ParsedCert through the slots' member offsets
# (what its member descriptors do, without the per-attribute type lookup); checked at import.
cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset

cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member


cdef Py_ssize_t _slot(str name) except -1:
    import types

    d = ParsedCert.__dict__.get(name)
    if type(d) is not types.MemberDescriptorType or d.__objclass__ is not ParsedCert:
        raise ImportError(f"pki._fastcert: ParsedCert.{name} is not a slot")
    return (<PyMemberDescrObject*><PyObject*>d).d_member.offset


cdef inline void _put(object o, Py_ssize_t off, object v):
    """o.<slot at off> = v for an object of exactly type ParsedCert."""
    cdef PyObject** p = <PyObject**>((<char*><PyObject*>o) + off)
    cdef PyObject* old = p[0]
    Py_INCREF(v)
    p[0] = <PyObject*>v
    Py_XDECREF(old)


_SLOT_NAMES = ParsedCert.__slots__
cdef dict _OFF = {name: _slot(name) for name in _SLOT_NAMES}
cdef Py_ssize_t S_DER = _OFF["der"], S_TBS = _OFF["tbs"], S_SIG_ALG = _OFF["sig_alg"]
cdef Py_ssize_t S_TBS_SIG_ALG = _OFF["tbs_sig_alg"], S_SIGNATURE = _OFF["signature"], S_VERSION = _OFF["version"]
cdef Py_ssize_t S_SERIAL = _OFF["serial"], S_ISSUER = _OFF["issuer"], S_SUBJECT = _OFF["subject"]
cdef Py_ssize_t S_NOT_BEFORE = _OFF["not_before"], S_NOT_AFTER = _OFF["not_after"], S_SPKI = _OFF["spki"]
cdef Py_ssize_t S_KEY_ALG = _OFF["key_alg"], S_KEY_BITS = _OFF["key_bits"], S_EXTENSIONS = _OFF["extensions"]
cdef Py_ssize_t S_BC_PRESENT = _OFF["bc_present"], S_BC_CRITICAL = _OFF["bc_critical"], S_CA = _OFF["ca"]
cdef Py_ssize_t S_PATH_LEN = _OFF["path_len"], S_KU = _OFF["ku"], S_KU_CRITICAL = _OFF["ku_critical"]
cdef Py_ssize_t S_PUBLIC_KEY = _OFF["public_key"], S_CHECKED = _OFF["checked"]
cdef Py_ssize_t S_SUBJECT_STR = _OFF["_subject_str"], S_ATTRS = _OFF["_attrs"], S_NAMES = _OFF["_names"]
cdef Py_ssize_t S_FACTS = _OFF["facts"]


def _check_layout():
    """Every slot store lands where attribute access reads it (else the walker is not used)."""
    probe = _NEW(ParsedCert)
    for name in _SLOT_NAMES:
        marker = object()
        _put(probe, <Py_ssize_t>_OFF[name], marker)
        if getattr(probe, name) is not marker:
            raise ImportError(f"pki._fastcert: unexpected layout of ParsedCert.{name}")


_check_layout()

cdef bytes OID_BC = b"\x55\x1d\x13"
cdef bytes OID_KU = b"\x55\x1d\x0f"
cdef bytes OID_CN = b"\x55\x04\x03"
cdef bytes OID_DC = b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19"


cdef inline int _hdr(const unsigned char* b, Py_ssize_t i, Py_ssize_t end, Py_ssize_t* s, Py_ssize_t* e) except -1:
    """Tag of the TLV at i; content bounds into s/e. DER length rules enforced."""
    cdef int tag
    cdef Py_ssize_t ln, j, n, k
    if i + 2 > end:
        raise CertParseError("truncated TLV header", i)
    tag = b[i]
    if tag & 0x1F == 0x1F:
        raise CertParseError("multi-byte tag not allowed", i)
    ln = b[i + 1]
    j = i + 2
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 3:
            raise CertParseError("indefinite or oversized length", i + 1)
        if j + n > end:
            raise CertParseError("truncated length", i + 1)
        if b[j] == 0:
            raise CertParseError("non-minimal length encoding", i + 1)
        ln = 0
        for k in range(n):
            ln = (ln << 8) | b[j + k]
        if ln < 0x80:
            raise CertParseError("non-minimal length encoding", i + 1)
        j += n
    if j + ln > end:
        raise CertParseError(f"length {ln} exceeds the enclosing structure", i)
    s[0] = j
    e[0] = j + ln
    return tag


cdef inline void _expect(const unsigned char* b, Py_ssize_t i, Py_ssize_t end, int tag, str what,
                         Py_ssize_t* s, Py_ssize_t* e) except *:
    cdef int t = _hdr(b, i, end, s, e)
    if t != tag:
        raise CertParseError(f"{what}: expected tag 0x{tag:02x}, got 0x{t:02x}", i)


cdef inline bytes _sl(const unsigned char* b, Py_ssize_t s, Py_ssize_t e):
    """b[s:e] as a new bytes object (no slice object, no index conversion)."""
    return PyBytes_FromStringAndSize(<const char*>b + s, e - s)


cdef inline bint _digits(const unsigned char* b, Py_ssize_t s, Py_ssize_t n):
    cdef Py_ssize_t k
    for k in range(n):
        if b[s + k] < 48 or b[s + k] > 57:
            return False
    return True


cdef inline int _two(const unsigned char* b, Py_ssize_t s):
    return (b[s] - 48) * 10 + (b[s + 1] - 48)


cdef str _time(const unsigned char* b, Py_ssize_t i, Py_ssize_t end, Py_ssize_t* nxt):
    cdef Py_ssize_t s, e, off, k
    cdef int t = _hdr(b, i, end, &s, &e)
    cdef char key[14]
    if t == 0x17 and e - s == 13 and b[s + 12] == 0x5A and _digits(b, s, 12):
        if _two(b, s) >= 50:
            key[0] = 49  # "19"
            key[1] = 57
        else:
            key[0] = 50  # "20"
            key[1] = 48
        for k in range(12):
            key[2 + k] = <char>b[s + k]
        off = s - 2
    elif t == 0x18 and e - s == 15 and b[s + 14] == 0x5A and _digits(b, s, 14):
        for k in range(14):
            key[k] = <char>b[s + k]
        off = s
    else:
        raise CertParseError("validity time is not UTCTime/GeneralizedTime in 'Z' form", i)
    # month, day, hour, minute, second (offsets in the 14-char key: 4, 6, 8, 10, 12)
    cdef int mo = _two(b, off + 4), dd = _two(b, off + 6), hh = _two(b, off + 8)
    cdef int mi = _two(b, off + 10), ss = _two(b, off + 12)
    if not (1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 61):
        raise CertParseError("validity time out of range", i)
    nxt[0] = e
    return PyUnicode_DecodeASCII(key, 14, NULL)


cdef int _rev8(int x):
    cdef int r = 0, k
    for k in range(8):
        if x >> k & 1:
            r |= 1 << (7 - k)
    return r


def parse_certificate(der):
    """Parse one DER certificate; raises :class:`pki._certinfo.CertParseError` on any structural problem."""
    if not isinstance(der, bytes):
        der = bytes(der)
    cdef bytes bd = <bytes>der
    cdef const unsigned char* b = bd
    cdef Py_ssize_t n = len(bd)
    cdef Py_ssize_t cs, ce, ts, te, as_, ae, ss, se, i, s, e, vs, ve, j, ks, ke, a_s, a_e, bs, be
    cdef Py_ssize_t ls, le, k, xs, xe, os_, oe, s2, e2, ps, pe, q
    cdef int t, t2, ku
    cdef bint crit
    _expect(b, 0, n, 0x30, "Certificate", &cs, &ce)
    if ce != n:
        raise CertParseError(f"{n - ce} trailing bytes after the certificate", ce)
    _expect(b, cs, ce, 0x30, "tbsCertificate", &ts, &te)
    cdef bytes sig_alg, tbs_sig_alg, serial, issuer, key_alg, key_bits
    cdef int version
    pc = _NEW(ParsedCert)  # skip the Python-level __init__; set its fields here
    _put(pc, S_PUBLIC_KEY, None)
    _put(pc, S_CHECKED, None)
    _put(pc, S_SUBJECT_STR, None)
    _put(pc, S_ATTRS, None)
    _put(pc, S_NAMES, None)
    cdef list crits = []
    _put(pc, S_DER, bd)
    _put(pc, S_TBS, _sl(b, cs, te))
    _expect(b, te, ce, 0x30, "signatureAlgorithm", &as_, &ae)
    sig_alg = _sl(b, te, ae)
    _put(pc, S_SIG_ALG, sig_alg)
    _expect(b, ae, ce, 0x03, "signatureValue", &ss, &se)
    if se != ce:
        raise CertParseError("trailing data after signatureValue", se)
    if ss >= se or b[ss] != 0:
        raise CertParseError("signatureValue BIT STRING has unused bits", ss)
    _put(pc, S_SIGNATURE, _sl(b, ss + 1, se))

    i = ts
    t = _hdr(b, i, te, &s, &e)
    if t == 0xA0:
        _expect(b, s, e, 0x02, "version", &vs, &ve)
        if ve != e or ve - vs != 1:
            raise CertParseError("bad version encoding", s)
        version = b[vs] + 1
        i = e
        t = _hdr(b, i, te, &s, &e)
    else:
        version = 1
    if t != 0x02 or s == e:
        raise CertParseError("serialNumber: expected INTEGER", i)
    if e - s > 1 and ((b[s] == 0 and b[s + 1] < 0x80) or (b[s] == 0xFF and b[s + 1] >= 0x80)):
        raise CertParseError("serialNumber: non-minimal INTEGER", i)
    serial = _sl(b, s, e)
    _put(pc, S_SERIAL, serial)
    i = e
    _expect(b, i, te, 0x30, "signature (tbs)", &s, &e)
    tbs_sig_alg = _sl(b, i, e)
    _put(pc, S_TBS_SIG_ALG, tbs_sig_alg)
    i = e
    _expect(b, i, te, 0x30, "issuer", &s, &e)
    issuer = _sl(b, i, e)
    _put(pc, S_ISSUER, issuer)
    i = e
    _expect(b, i, te, 0x30, "validity", &vs, &ve)
    _put(pc, S_NOT_BEFORE, _time(b, vs, ve, &j))
    _put(pc, S_NOT_AFTER, _time(b, j, ve, &j))
    if j != ve:
        raise CertParseError("trailing data in validity", j)
    i = ve
    _expect(b, i, te, 0x30, "subject", &s, &e)
    subject = _sl(b, i, e)
    _put(pc, S_SUBJECT, subject)
    try:  # subject CN / domainComponents now (cheap in C); a bad Name is reported lazily by names()
        attrs = _name_attrs(subject)
        cn = None
        dcs = []
        for o, v in attrs:
            if o == OID_CN:
                cn = v
            elif o == OID_DC:
                dcs.append(v)
        _put(pc, S_ATTRS, attrs)
        _put(pc, S_NAMES, (cn, tuple(dcs)))
    except CertParseError:
        pass
    i = e
    _expect(b, i, te, 0x30, "subjectPublicKeyInfo", &ks, &ke)
    _put(pc, S_SPKI, _sl(b, i, ke))
    _expect(b, ks, ke, 0x30, "subjectPublicKeyInfo.algorithm", &a_s, &a_e)
    key_alg = _sl(b, ks, a_e)
    _put(pc, S_KEY_ALG, key_alg)
    _expect(b, a_e, ke, 0x03, "subjectPublicKey", &bs, &be)
    if be != ke:
        raise CertParseError("trailing data in subjectPublicKeyInfo", be)
    if bs >= be or b[bs] != 0:
        raise CertParseError("subjectPublicKey BIT STRING has unused bits", bs)
    key_bits = _sl(b, bs + 1, be)
    _put(pc, S_KEY_BITS, key_bits)
    i = ke
    exts = {}
    _put(pc, S_EXTENSIONS, exts)
    cdef bint bc_present = False, bc_critical = False, ca = False, ku_critical = False
    cdef int path_len = -1
    ku = -1
    while i < te:
        t = _hdr(b, i, te, &s, &e)
        if t == 0xA1 or t == 0x81 or t == 0xA2 or t == 0x82:
            i = e
            continue
        if t != 0xA3:
            raise CertParseError(f"unexpected tag 0x{t:02x} in tbsCertificate", i)
        if e != te:
            raise CertParseError("trailing data after extensions", e)
        _expect(b, s, e, 0x30, "Extensions", &ls, &le)
        if le != e:
            raise CertParseError("trailing data after Extensions", le)
        k = ls
        while k < le:
            _expect(b, k, le, 0x30, "Extension", &xs, &xe)
            _expect(b, xs, xe, 0x06, "extnID", &os_, &oe)
            oid = _sl(b, os_, oe)
            t2 = _hdr(b, oe, xe, &s2, &e2)
            crit = False
            if t2 == 0x01:
                if e2 - s2 != 1:
                    raise CertParseError("bad BOOLEAN", oe)
                crit = b[s2] != 0
                t2 = _hdr(b, e2, xe, &s2, &e2)
            if t2 != 0x04 or e2 != xe:
                raise CertParseError("extnValue: expected OCTET STRING", s2)
            if oid in exts:
                from pki._certinfo import oid_to_str
                raise CertParseError(f"duplicate extension {oid_to_str(oid)}", k)
            val = _sl(b, s2, e2)
            exts[oid] = (crit, val)
            if crit:
                crits.append(oid)
            if oid == OID_BC:
                bc_present = True
                bc_critical = crit
                _basic_constraints(b, s2, e2, &ca, &path_len)
            elif oid == OID_KU:
                ku_critical = crit
                # BIT STRING, at most 9 bits
                try:
                    t = _hdr(b, s2, e2, &ps, &pe)
                except CertParseError:
                    raise CertParseError("keyUsage: expected BIT STRING of at most 9 bits", s2) from None
                if t != 0x03 or pe != e2 or pe - ps < 1 or pe - ps > 3 or b[ps] > 7:
                    raise CertParseError("keyUsage: expected BIT STRING of at most 9 bits", s2)
                ku = 0
                for q in range(ps + 1, pe):
                    ku |= _rev8(b[q]) << (8 * (q - ps - 1))
            k = xe
        i = e
    py_path_len = None if path_len < 0 else path_len
    _put(pc, S_VERSION, version)
    _put(pc, S_BC_PRESENT, bc_present)
    _put(pc, S_BC_CRITICAL, bc_critical)
    _put(pc, S_CA, ca)
    _put(pc, S_PATH_LEN, py_path_len)
    _put(pc, S_KU, ku)
    _put(pc, S_KU_CRITICAL, ku_critical)
    # the facts profile_ok compares (its comment names the indices), packed once so a check reads one tuple
    cdef const unsigned char* sp = serial
    cdef Py_ssize_t sn = len(serial)
    cdef bint serial_ok = 0 < sn <= 20 and not sp[0] & 0x80
    if serial_ok:
        serial_ok = False
        for q in range(sn):
            if sp[q]:
                serial_ok = True
                break
    _put(pc, S_FACTS, (n, version, serial_ok, sig_alg, sig_alg == tbs_sig_alg, key_alg, len(key_bits),
                       len(key_bits) > 0 and (<const unsigned char*>key_bits)[0] == 4, bc_present and bc_critical,
                       ca, py_path_len, ku, ku_critical, tuple(crits), subject == issuer))
    return pc


cdef void _basic_constraints(const unsigned char* b, Py_ssize_t s0, Py_ssize_t e0, bint* ca,
                             int* path_len) except *:
    cdef Py_ssize_t s, e, i, bs, be, ps, pe
    cdef int t
    try:
        _expect(b, s0, e0, 0x30, "BasicConstraints", &s, &e)
        if e != e0:
            raise CertParseError("trailing data", e)
        i = s
        if i < e and b[i] == 0x01:
            t = _hdr(b, i, e, &bs, &be)
            if be - bs != 1:
                raise CertParseError("bad BOOLEAN", i)
            ca[0] = b[bs] != 0
            i = be
        if i < e:
            _expect(b, i, e, 0x02, "pathLenConstraint", &ps, &pe)
            if pe - ps > 2 or b[ps] & 0x80:
                raise CertParseError("pathLenConstraint out of range", i)
            path_len[0] = b[ps] if pe - ps == 1 else (b[ps] << 8) | b[ps + 1]
            i = pe
        if i != e:
            raise CertParseError("trailing data", i)
    except CertParseError as exc:
        raise CertParseError(f"basicConstraints: {exc.detail}", exc.offset) from None


_STRING_TAGS = frozenset((0x0C, 0x13, 0x16, 0x14, 0x1E, 0x1C))


def name_attrs(name):
    """Subject attributes of a DER Name as [(OID content octets, value)], as pki._certinfo._name_attrs."""
    return _name_attrs(<bytes>name)


cdef list _name_attrs(bytes bn):
    cdef const unsigned char* b = bn
    cdef const char* c = <const char*>b
    cdef Py_ssize_t end = len(bn), s, e, i, ss, se, j, as_, ae, os_, oe, vs, ve
    cdef int t
    cdef list out = []
    _expect(b, 0, end, 0x30, "Name", &s, &e)
    i = s
    while i < e:
        _expect(b, i, e, 0x31, "RelativeDistinguishedName", &ss, &se)
        j = ss
        while j < se:
            _expect(b, j, se, 0x30, "AttributeTypeAndValue", &as_, &ae)
            _expect(b, as_, ae, 0x06, "attribute type", &os_, &oe)
            t = _hdr(b, oe, ae, &vs, &ve)
            if ve != ae:
                raise CertParseError("trailing data in AttributeTypeAndValue", ve)
            if not (t == 0x0C or t == 0x13 or t == 0x16 or t == 0x14 or t == 0x1E or t == 0x1C):
                raise CertParseError(f"attribute value tag 0x{t:02x} is not a string", oe)
            try:
                if t == 0x0C:
                    val = PyUnicode_DecodeUTF8(c + vs, ve - vs, NULL)
                elif t == 0x1E:
                    val = _sl(b, vs, ve).decode("utf-16-be")
                elif t == 0x1C:
                    val = _sl(b, vs, ve).decode("utf-32-be")
                else:
                    val = PyUnicode_DecodeLatin1(c + vs, ve - vs, NULL)
            except UnicodeDecodeError:
                raise CertParseError("attribute value is not valid text", vs) from None
            out.append((_sl(b, os_, oe), val))
            j = ae
        i = se
    return out


def profile_ok(pc, cp):
    """True when ``pc`` passes every static rule of the compiled certificate profile ``cp``.

    The all-rules-pass predicate of :func:`pki.verify._check_profile` (``cp`` is a
    :class:`pki._compiled.CompiledCert`): it compares the facts tuple the walker packed at parse
    time with the profile's ``fast`` tuple, with integer tests and set/table lookups only. False
    also when the facts are missing (pure-Python parse); the caller then runs its rule sequence,
    which names the broken rule. A differential test keeps both in agreement.
    """
    f = pc.facts
    names = pc._names
    if f is None or names is None:
        return False
    cdef tuple ft = <tuple>f, t = <tuple>cp.fast
    cdef long ku, req, permitted
    # t: (max_size, version, sig_algs, key_table, is_ca, path_len, ku_required, ku_permitted, critical_ok,
    #     dcs, dc_required, cn_kind, cn_check, self_signed)
    if <Py_ssize_t>ft[0] > <Py_ssize_t>t[0] or ft[1] != t[1] or not ft[2] or not ft[4] or ft[3] not in t[2]:
        return False
    kt = (<dict>t[3]).get(ft[5])
    if kt is None or ft[6] != (<tuple>kt)[0] or ((<tuple>kt)[1] and not ft[7]):
        return False
    if not ft[8] or ft[9] != t[4] or ft[10] != t[5] or not ft[12]:
        return False
    ku = ft[11]
    req = t[6]
    permitted = t[7]
    if ku < 0 or ku & req != req or ku & ~permitted:
        return False
    crits = <tuple>ft[13]
    if crits:
        critical_ok = t[8]
        for oid in crits:
            if oid not in critical_ok:
                return False
    cn, dcs = names
    allowed = t[9]
    if allowed:
        if t[10] and not dcs:
            return False
        for dc in dcs:
            if dc not in allowed:
                return False
    check = t[12]  # the CN syntax check of an "emaid" / "pcid" profile, else None
    if check is not None:
        if cn is None:
            return False
        if t[11] == "emaid":
            if not emaid_ok(cn):
                return False
        elif not check(cn):
            return False
    if t[13] and not ft[14]:
        return False
    return True


cdef inline bint _alnum(Py_UCS4 ch):
    return (48 <= ch <= 57) or (65 <= ch <= 90) or (97 <= ch <= 122)


cpdef bint emaid_ok(str value):
    """Compiled twin of :func:`pki.profiles.is_valid_emaid` (same answer for every string).

    ``CC[-]PPP[-]IIIIIIIII[[-]C]`` with ASCII letters/digits, the first two separators both present
    or both absent, and a separator before the check character only when they are present.
    """
    cdef Py_ssize_t n = len(value), i = 0, k
    cdef bint sep
    cdef Py_UCS4 ch
    if n > 18 or n < 14:
        return False
    for k in range(2):
        ch = value[i]
        if not ((65 <= ch <= 90) or (97 <= ch <= 122)):
            return False
        i += 1
    sep = value[i] == u"-"
    if sep:
        i += 1
    for k in range(3):
        if i >= n or not _alnum(value[i]):
            return False
        i += 1
    if i >= n:
        return False
    if (value[i] == u"-") != sep:
        return False
    if sep:
        i += 1
    for k in range(9):
        if i >= n or not _alnum(value[i]):
            return False
        i += 1
    if i == n:
        return True
    if value[i] == u"-":
        if not sep:
            return False
        i += 1
    return i == n - 1 and _alnum(value[i])
