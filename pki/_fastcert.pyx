# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled twin of the DER walker in :mod:`pki._certinfo` (same results, same errors).

``pki._certinfo`` imports :func:`parse_certificate` and :func:`name_attrs` from here when the
extension is built (``setup.py`` ``COMPILED``) and falls back to its pure-Python code otherwise
(or when ``PLUGCHARGE_PKI_PURE=1``). The differential test in ``test_pki_verify.py`` checks that
both parse every corpus certificate and every truncation/bit flip identically.
"""
from pki._certinfo import CertParseError, ParsedCert

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


cdef inline bint _digits(const unsigned char* b, Py_ssize_t s, Py_ssize_t n):
    cdef Py_ssize_t k
    for k in range(n):
        if b[s + k] < 48 or b[s + k] > 57:
            return False
    return True


cdef inline int _two(const unsigned char* b, Py_ssize_t s):
    return (b[s] - 48) * 10 + (b[s + 1] - 48)


cdef str _time(const unsigned char* b, bytes der, Py_ssize_t i, Py_ssize_t end, Py_ssize_t* nxt):
    cdef Py_ssize_t s, e, off
    cdef int t = _hdr(b, i, end, &s, &e)
    cdef str key
    if t == 0x17 and e - s == 13 and b[s + 12] == 0x5A and _digits(b, s, 12):
        key = ("19" if _two(b, s) >= 50 else "20") + der[s:s + 12].decode("ascii")
        off = s - 2
    elif t == 0x18 and e - s == 15 and b[s + 14] == 0x5A and _digits(b, s, 14):
        key = der[s:s + 14].decode("ascii")
        off = s
    else:
        raise CertParseError("validity time is not UTCTime/GeneralizedTime in 'Z' form", i)
    # month, day, hour, minute, second (offsets in the 14-char key: 4, 6, 8, 10, 12)
    cdef int mo = _two(b, off + 4), dd = _two(b, off + 6), hh = _two(b, off + 8)
    cdef int mi = _two(b, off + 10), ss = _two(b, off + 12)
    if not (1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 61):
        raise CertParseError("validity time out of range", i)
    nxt[0] = e
    return key


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
    pc = ParsedCert.__new__(ParsedCert)  # skip the Python-level __init__; set its fields here
    pc.public_key = None
    pc.checked = None
    pc._subject_str = None
    pc._attrs = None
    pc._names = None
    pc.der = bd
    pc.tbs = bd[cs:te]
    _expect(b, te, ce, 0x30, "signatureAlgorithm", &as_, &ae)
    pc.sig_alg = bd[te:ae]
    _expect(b, ae, ce, 0x03, "signatureValue", &ss, &se)
    if se != ce:
        raise CertParseError("trailing data after signatureValue", se)
    if ss >= se or b[ss] != 0:
        raise CertParseError("signatureValue BIT STRING has unused bits", ss)
    pc.signature = bd[ss + 1:se]

    i = ts
    t = _hdr(b, i, te, &s, &e)
    if t == 0xA0:
        _expect(b, s, e, 0x02, "version", &vs, &ve)
        if ve != e or ve - vs != 1:
            raise CertParseError("bad version encoding", s)
        pc.version = b[vs] + 1
        i = e
        t = _hdr(b, i, te, &s, &e)
    else:
        pc.version = 1
    if t != 0x02 or s == e:
        raise CertParseError("serialNumber: expected INTEGER", i)
    if e - s > 1 and ((b[s] == 0 and b[s + 1] < 0x80) or (b[s] == 0xFF and b[s + 1] >= 0x80)):
        raise CertParseError("serialNumber: non-minimal INTEGER", i)
    pc.serial = bd[s:e]
    i = e
    _expect(b, i, te, 0x30, "signature (tbs)", &s, &e)
    pc.tbs_sig_alg = bd[i:e]
    i = e
    _expect(b, i, te, 0x30, "issuer", &s, &e)
    pc.issuer = bd[i:e]
    i = e
    _expect(b, i, te, 0x30, "validity", &vs, &ve)
    pc.not_before = _time(b, bd, vs, ve, &j)
    pc.not_after = _time(b, bd, j, ve, &j)
    if j != ve:
        raise CertParseError("trailing data in validity", j)
    i = ve
    _expect(b, i, te, 0x30, "subject", &s, &e)
    subject = bd[i:e]
    pc.subject = subject
    try:  # subject CN / domainComponents now (cheap in C); a bad Name is reported lazily by names()
        attrs = name_attrs(subject)
        cn = None
        dcs = []
        for o, v in attrs:
            if o == OID_CN:
                cn = v
            elif o == OID_DC:
                dcs.append(v)
        pc._attrs = attrs
        pc._names = (cn, tuple(dcs))
    except CertParseError:
        pass
    i = e
    _expect(b, i, te, 0x30, "subjectPublicKeyInfo", &ks, &ke)
    pc.spki = bd[i:ke]
    _expect(b, ks, ke, 0x30, "subjectPublicKeyInfo.algorithm", &a_s, &a_e)
    pc.key_alg = bd[ks:a_e]
    _expect(b, a_e, ke, 0x03, "subjectPublicKey", &bs, &be)
    if be != ke:
        raise CertParseError("trailing data in subjectPublicKeyInfo", be)
    if bs >= be or b[bs] != 0:
        raise CertParseError("subjectPublicKey BIT STRING has unused bits", bs)
    pc.key_bits = bd[bs + 1:be]
    i = ke
    exts = {}
    pc.extensions = exts
    pc.bc_present = False
    pc.bc_critical = False
    pc.ca = False
    pc.path_len = None
    pc.ku = -1
    pc.ku_critical = False
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
            oid = bd[os_:oe]
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
            val = bd[s2:e2]
            exts[oid] = (crit, val)
            if oid == OID_BC:
                pc.bc_present = True
                pc.bc_critical = crit
                _basic_constraints(pc, b, s2, e2)
            elif oid == OID_KU:
                pc.ku_critical = crit
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
                pc.ku = ku
            k = xe
        i = e
    return pc


cdef void _basic_constraints(object pc, const unsigned char* b, Py_ssize_t s0, Py_ssize_t e0) except *:
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
            pc.ca = b[bs] != 0
            i = be
        if i < e:
            _expect(b, i, e, 0x02, "pathLenConstraint", &ps, &pe)
            if pe - ps > 2 or b[ps] & 0x80:
                raise CertParseError("pathLenConstraint out of range", i)
            pc.path_len = b[ps] if pe - ps == 1 else (b[ps] << 8) | b[ps + 1]
            i = pe
        if i != e:
            raise CertParseError("trailing data", i)
    except CertParseError as exc:
        raise CertParseError(f"basicConstraints: {exc.detail}", exc.offset) from None


_STRING_TAGS = frozenset((0x0C, 0x13, 0x16, 0x14, 0x1E, 0x1C))


def name_attrs(name):
    """Subject attributes of a DER Name as [(OID content octets, value)], as pki._certinfo._name_attrs."""
    cdef bytes bn = <bytes>name
    cdef const unsigned char* b = bn
    cdef Py_ssize_t end = len(bn), s, e, i, ss, se, j, as_, ae, os_, oe, vs, ve
    cdef int t
    out = []
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
            if t not in _STRING_TAGS:
                raise CertParseError(f"attribute value tag 0x{t:02x} is not a string", oe)
            raw = bn[vs:ve]
            try:
                if t == 0x0C:
                    val = raw.decode("utf-8")
                elif t == 0x1E:
                    val = raw.decode("utf-16-be")
                elif t == 0x1C:
                    val = raw.decode("utf-32-be")
                else:
                    val = raw.decode("latin-1")
            except UnicodeDecodeError:
                raise CertParseError("attribute value is not valid text", vs) from None
            out.append((bn[os_:oe], val))
            j = ae
        i = se
    return out
