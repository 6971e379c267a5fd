"""Lean DER parser for the X.509 certificates of the ISO 15118 PKI.

One pass over the DER extracts exactly what path validation and the profile checks need (TBS
bytes, algorithms, names as raw DER, validity as comparable strings, public key, basicConstraints,
keyUsage, extensions), without building generic ASN.1 objects: this is the hot path of
:func:`pki.verify.verify_chain` (the issue's speed target leaves ~15 µs per certificate for
everything except signature math). This module is the pure-Python walker; its compiled twin
``pki/_fastcert.pyx`` (built by ``setup.py``) replaces ``parse_certificate`` when present, with
identical behaviour (a differential test checks both; ``PLUGCHARGE_PKI_PURE=1`` forces this one).

Every structural problem raises :class:`CertParseError` with a byte offset; callers turn it into
``ChainValidationError(Reason.MALFORMED, ...)``. Values that are well-formed DER but break a
profile (v1, negative serial, non-critical keyUsage, ...) are *recorded*, not rejected here.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Union

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey

    #: the key objects pki.store.load_public_key builds (KEY_ALGS: the profiles' curves and Ed448)
    PublicKey = Union[EllipticCurvePublicKey, Ed448PublicKey]

__all__ = ["CertParseError", "ParsedCert", "parse_certificate", "COMPILED", "oid_to_der", "oid_to_str", "name_to_str",
           "der_time_key", "KU_DIGITAL_SIGNATURE", "KU_KEY_CERT_SIGN"]


class CertParseError(ValueError):
    """The DER is not a well-formed X.509 certificate; ``offset`` is where parsing stopped."""

    def __init__(self, detail: str, offset: int) -> None:
        self.detail = detail
        self.offset = offset
        super().__init__(f"{detail} at byte offset {offset}")


def oid_to_der(dotted: str) -> bytes:
    """Content octets of an OBJECT IDENTIFIER given in dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    vals = [arcs[0] * 40 + arcs[1]] + arcs[2:]
    out = bytearray()
    for v in vals:
        chunk = [v & 0x7F]
        v >>= 7
        while v:
            chunk.append(0x80 | (v & 0x7F))
            v >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def oid_to_str(content: bytes) -> str:
    """Dotted form of OBJECT IDENTIFIER content octets (best effort, never raises)."""
    arcs: List[int] = []
    v = 0
    for b in content:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    if not arcs:
        return "?"
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


# --- well-known content octets -------------------------------------------------------------------
_OID_BC = oid_to_der("2.5.29.19")
_OID_KU = oid_to_der("2.5.29.15")
_OID_AIA = oid_to_der("1.3.6.1.5.5.7.1.1")
_OID_SKI = oid_to_der("2.5.29.14")
_OID_AKI = oid_to_der("2.5.29.35")
_OID_OCSP = oid_to_der("1.3.6.1.5.5.7.48.1")
_OID_CN = oid_to_der("2.5.4.3")
_OID_DC = oid_to_der("0.9.2342.19200300.100.1.25")

_NAME_LABELS = {
    _OID_CN: "CN",
    oid_to_der("2.5.4.10"): "O",
    oid_to_der("2.5.4.11"): "OU",
    oid_to_der("2.5.4.6"): "C",
    oid_to_der("2.5.4.7"): "L",
    oid_to_der("2.5.4.8"): "ST",
    oid_to_der("2.5.4.5"): "serialNumber",
    _OID_DC: "DC",
}

#: keyUsage masks (bit i = KeyUsage bit i, digitalSignature = bit 0) as in pki.profiles.key_usage_mask
KU_DIGITAL_SIGNATURE = 1
KU_KEY_CERT_SIGN = 1 << 5


def _hdr(b: bytes, i: int, end: int) -> Tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``i``; DER length rules enforced."""
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
        ln = int.from_bytes(b[j:j + n], "big")
        if ln < 0x80:
            raise CertParseError("non-minimal length encoding", i + 1)
        j += n
    e = j + ln
    if e > end:
        raise CertParseError(f"length {ln} exceeds the enclosing structure", i)
    return tag, j, e


def _expect(b: bytes, i: int, end: int, tag: int, what: str) -> Tuple[int, int]:
    t, s, e = _hdr(b, i, end)
    if t != tag:
        raise CertParseError(f"{what}: expected tag 0x{tag:02x}, got 0x{t:02x}", i)
    return s, e


def _time(b: bytes, i: int, end: int) -> Tuple[str, int]:
    """Parse UTCTime/GeneralizedTime at ``i`` into ``YYYYMMDDHHMMSS``; returns (key, next offset)."""
    t, s, e = _hdr(b, i, end)
    raw = b[s:e]
    if t == 0x17 and len(raw) == 13 and raw[12] == 0x5A and raw[:12].isdigit():
        yy = int(raw[:2])
        key = ("19" if yy >= 50 else "20") + raw[:12].decode("ascii")
    elif t == 0x18 and len(raw) == 15 and raw[14] == 0x5A and raw[:14].isdigit():
        key = raw[:14].decode("ascii")
    else:
        raise CertParseError("validity time is not UTCTime/GeneralizedTime in 'Z' form", i)
    mo = int(key[4:6])
    dd = int(key[6:8])
    if not (1 <= mo <= 12 and 1 <= dd <= 31 and key[8:10] < "24" and key[10:12] < "60" and key[12:14] < "61"):
        raise CertParseError("validity time out of range", i)
    return key, e


def der_time_key(dt: "object") -> str:
    """``YYYYMMDDHHMMSS`` key of an aware or naive-UTC datetime, comparable with parsed validity keys."""
    from datetime import timezone, datetime

    assert isinstance(dt, datetime)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return f"{dt.year:04d}{dt.month:02d}{dt.day:02d}{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"


class ParsedCert:
    """The fields of one certificate that validation needs (immutable by convention).

    Names are raw DER (compare bytes for chaining); ``not_before``/``not_after`` are
    ``YYYYMMDDHHMMSS`` strings; ``key_alg`` is the DER of the SPKI AlgorithmIdentifier and
    ``key_bits`` the public key BIT STRING content; ``extensions`` maps OID content octets to
    ``(critical, value)``. ``ku`` is the keyUsage mask (-1 when absent), ``ca``/``path_len`` come
    from basicConstraints (``bc_present`` False when absent).
    """

    __slots__ = ("der", "tbs", "sig_alg", "tbs_sig_alg", "signature", "version", "serial", "issuer", "subject",
                 "not_before", "not_after", "spki", "key_alg", "key_bits", "extensions", "bc_present",
                 "bc_critical", "ca", "path_len", "ku", "ku_critical", "public_key", "checked", "_subject_str",
                 "_attrs", "_names", "facts")

    # the slots, declared for type checkers only (annotations without values add no class attribute,
    # so the slot descriptors stay as they are); parse_certificate here or in pki/_fastcert.pyx sets them
    der: bytes
    tbs: bytes
    sig_alg: bytes
    tbs_sig_alg: bytes
    signature: bytes
    version: int
    serial: bytes
    issuer: bytes
    subject: bytes
    not_before: str
    not_after: str
    spki: bytes
    key_alg: bytes
    key_bits: bytes
    extensions: Dict[bytes, Tuple[bool, bytes]]
    bc_present: bool
    bc_critical: bool
    ca: bool
    path_len: Optional[int]
    ku: int
    ku_critical: bool

    def __init__(self) -> None:
        self.public_key: Optional[PublicKey] = None
        self.checked: Optional[set] = None
        self._subject_str: Optional[str] = None
        self._attrs: Optional[List[Tuple[bytes, str]]] = None
        self._names: Optional[Tuple[Optional[str], Tuple[str, ...]]] = None
        #: profile-relevant facts packed by the compiled walker for pki._fastcert.profile_ok (else None)
        self.facts: Optional[tuple] = None

    @property
    def self_issued(self) -> bool:
        """Subject and issuer names are byte-identical."""
        return self.subject == self.issuer

    @property
    def serial_number(self) -> int:
        """The serial as a (signed) integer."""
        return int.from_bytes(self.serial, "big", signed=True)

    def subject_attrs(self) -> List[Tuple[bytes, str]]:
        """Subject attributes in order as (OID content octets, decoded value); MALFORMED on bad names."""
        if self._attrs is None:
            self._attrs = _name_attrs(self.subject)
        return self._attrs

    def names(self) -> Tuple[Optional[str], Tuple[str, ...]]:
        """(last subject CN or None, all subject domainComponents), computed once."""
        n = self._names
        if n is None:
            cn = None
            dcs = []
            for o, v in self.subject_attrs():
                if o == _OID_CN:
                    cn = v
                elif o == _OID_DC:
                    dcs.append(v)
            n = self._names = (cn, tuple(dcs))
        return n

    def subject_values(self, oid: bytes) -> List[str]:
        """All subject attribute values of one type (OID content octets)."""
        return [v for o, v in self.subject_attrs() if o == oid]

    @property
    def common_name(self) -> Optional[str]:
        """The (last) subject CN, or None."""
        vals = self.subject_values(_OID_CN)
        return vals[-1] if vals else None

    @property
    def domain_components(self) -> List[str]:
        """All subject domainComponent values."""
        return self.subject_values(_OID_DC)

    @property
    def subject_str(self) -> str:
        """RFC 4514-style subject (for messages; never raises)."""
        if self._subject_str is None:
            self._subject_str = name_to_str(self.subject)
        return self._subject_str

    def ocsp_urls(self) -> Tuple[str, ...]:
        """OCSP responder URIs from authorityInfoAccess (empty when absent or unparsable)."""
        ext = self.extensions.get(_OID_AIA)
        if ext is None:
            return ()
        try:
            return _aia_ocsp(ext[1])
        except (CertParseError, UnicodeDecodeError):
            return ()

    def extension_value(self, oid: bytes) -> Optional[bytes]:
        """The extnValue content of an extension (OID content octets), or None."""
        ext = self.extensions.get(oid)
        return None if ext is None else ext[1]


_STRING_TAGS = (0x0C, 0x13, 0x16, 0x14, 0x1E, 0x1C)


def _decode_string(tag: int, raw: bytes) -> str:
    if tag == 0x1E:
        return raw.decode("utf-16-be")
    if tag == 0x1C:
        return raw.decode("utf-32-be")
    if tag == 0x0C:
        return raw.decode("utf-8")
    return raw.decode("latin-1")


def _name_attrs(name: bytes) -> List[Tuple[bytes, str]]:
    out: List[Tuple[bytes, str]] = []
    end = len(name)
    s, e = _expect(name, 0, end, 0x30, "Name")
    i = s
    while i < e:
        ss, se = _expect(name, i, e, 0x31, "RelativeDistinguishedName")
        j = ss
        while j < se:
            as_, ae = _expect(name, j, se, 0x30, "AttributeTypeAndValue")
            os_, oe = _expect(name, as_, ae, 0x06, "attribute type")
            t, vs, ve = _hdr(name, oe, ae)
            if ve != ae:
                raise CertParseError("trailing data in AttributeTypeAndValue", ve)
            if t not in _STRING_TAGS:
                raise CertParseError(f"attribute value tag 0x{t:02x} is not a string", oe)
            try:
                out.append((name[os_:oe], _decode_string(t, name[vs:ve])))
            except UnicodeDecodeError:
                raise CertParseError("attribute value is not valid text", vs) from None
            j = ae
        i = se
    return out


def name_to_str(name: bytes) -> str:
    """RFC 4514-style rendering of a DER Name (most significant RDN last); never raises."""
    try:
        attrs = _name_attrs(name)
    except (CertParseError, UnicodeDecodeError):
        return "<unparsable name>"
    parts = []
    for oid, val in reversed(attrs):
        label = _NAME_LABELS.get(oid) or oid_to_str(oid)
        val = val.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+").replace("=", "\\=")
        parts.append(f"{label}={val}")
    return ",".join(parts)


def _aia_ocsp(value: bytes) -> Tuple[str, ...]:
    urls = []
    end = len(value)
    s, e = _expect(value, 0, end, 0x30, "AuthorityInfoAccess")
    i = s
    while i < e:
        ds, de = _expect(value, i, e, 0x30, "AccessDescription")
        os_, oe = _expect(value, ds, de, 0x06, "accessMethod")
        t, ls, le = _hdr(value, oe, de)
        if value[os_:oe] == _OID_OCSP and t == 0x86:
            urls.append(value[ls:le].decode("ascii"))
        i = de
    return tuple(urls)


def parse_certificate(der: bytes) -> ParsedCert:
    """Parse one DER certificate; raises :class:`CertParseError` on any structural problem."""
    b = der
    n = len(b)
    cs, ce = _expect(b, 0, n, 0x30, "Certificate")
    if ce != n:
        raise CertParseError(f"{n - ce} trailing bytes after the certificate", ce)
    ts, te = _expect(b, cs, ce, 0x30, "tbsCertificate")
    tbs_start = cs
    pc = ParsedCert()
    pc.der = b
    # tbsCertificate header begins at cs; the TBS TLV spans [cs, te)
    pc.tbs = b[tbs_start:te]
    as_, ae = _expect(b, te, ce, 0x30, "signatureAlgorithm")
    pc.sig_alg = b[te:ae]
    ss, se = _expect(b, ae, ce, 0x03, "signatureValue")
    if se != ce:
        raise CertParseError("trailing data after signatureValue", se)
    if ss >= se or b[ss] != 0:
        raise CertParseError("signatureValue BIT STRING has unused bits", ss)
    pc.signature = b[ss + 1:se]

    # --- TBSCertificate ---
    i = ts
    t, s, e = _hdr(b, i, te)
    if t == 0xA0:
        vs, ve = _expect(b, s, e, 0x02, "version")
        if ve != e or ve - vs != 1:
            raise CertParseError("bad version encoding", s)
        pc.version = b[vs] + 1
        i = e
        t, s, e = _hdr(b, i, te)
    else:
        pc.version = 1
    if t != 0x02 or s == e:
        raise CertParseError("serialNumber: expected INTEGER", i)
    if e - s > 1 and ((b[s] == 0 and b[s + 1] < 0x80) or (b[s] == 0xFF and b[s + 1] >= 0x80)):
        raise CertParseError("serialNumber: non-minimal INTEGER", i)
    pc.serial = b[s:e]
    i = e
    s, e = _expect(b, i, te, 0x30, "signature (tbs)")
    pc.tbs_sig_alg = b[i:e]
    i = e
    s, e = _expect(b, i, te, 0x30, "issuer")
    pc.issuer = b[i:e]
    i = e
    vs, ve = _expect(b, i, te, 0x30, "validity")
    pc.not_before, j = _time(b, vs, ve)
    pc.not_after, j = _time(b, j, ve)
    if j != ve:
        raise CertParseError("trailing data in validity", j)
    i = ve
    s, e = _expect(b, i, te, 0x30, "subject")
    pc.subject = b[i:e]
    i = e
    ks, ke = _expect(b, i, te, 0x30, "subjectPublicKeyInfo")
    pc.spki = b[i:ke]
    a_s, a_e = _expect(b, ks, ke, 0x30, "subjectPublicKeyInfo.algorithm")
    pc.key_alg = b[ks:a_e]
    bs, be = _expect(b, a_e, ke, 0x03, "subjectPublicKey")
    if be != ke:
        raise CertParseError("trailing data in subjectPublicKeyInfo", be)
    if bs >= be or b[bs] != 0:
        raise CertParseError("subjectPublicKey BIT STRING has unused bits", bs)
    pc.key_bits = b[bs + 1:be]
    i = ke
    exts: Dict[bytes, Tuple[bool, bytes]] = {}
    pc.extensions = exts
    pc.bc_present = False
    pc.bc_critical = False
    pc.ca = False
    pc.path_len = None
    pc.ku = -1
    pc.ku_critical = False
    while i < te:
        t, s, e = _hdr(b, i, te)
        if t == 0xA1 or t == 0x81 or t == 0xA2 or t == 0x82:
            i = e  # issuer/subject unique IDs: ignored
            continue
        if t != 0xA3:
            raise CertParseError(f"unexpected tag 0x{t:02x} in tbsCertificate", i)
        if e != te:
            raise CertParseError("trailing data after extensions", e)
        ls, le = _expect(b, s, e, 0x30, "Extensions")
        if le != e:
            raise CertParseError("trailing data after Extensions", le)
        k = ls
        while k < le:
            xs, xe = _expect(b, k, le, 0x30, "Extension")
            os_, oe = _expect(b, xs, xe, 0x06, "extnID")
            oid = b[os_:oe]
            t2, s2, e2 = _hdr(b, oe, xe)
            crit = False
            if t2 == 0x01:
                if e2 - s2 != 1:
                    raise CertParseError("bad BOOLEAN", oe)
                crit = b[s2] != 0
                t2, s2, e2 = _hdr(b, e2, xe)
            if t2 != 0x04 or e2 != xe:
                raise CertParseError("extnValue: expected OCTET STRING", s2)
            if oid in exts:
                raise CertParseError(f"duplicate extension {oid_to_str(oid)}", k)
            val = b[s2:e2]
            exts[oid] = (crit, val)
            if oid == _OID_BC:
                pc.bc_present = True
                pc.bc_critical = crit
                _basic_constraints(pc, val, s2)
            elif oid == _OID_KU:
                pc.ku_critical = crit
                pc.ku = _key_usage(val, s2)
            k = xe
        i = e
    return pc


def _basic_constraints(pc: ParsedCert, v: bytes, base: int) -> None:
    n = len(v)
    try:
        s, e = _expect(v, 0, n, 0x30, "BasicConstraints")
        if e != n:
            raise CertParseError("trailing data", e)
        i = s
        if i < e and v[i] == 0x01:
            t, bs, be = _hdr(v, i, e)
            if be - bs != 1:
                raise CertParseError("bad BOOLEAN", i)
            pc.ca = v[bs] != 0
            i = be
        if i < e:
            ps, pe = _expect(v, i, e, 0x02, "pathLenConstraint")
            if pe - ps > 2 or v[ps] & 0x80:
                raise CertParseError("pathLenConstraint out of range", i)
            pc.path_len = int.from_bytes(v[ps:pe], "big")
            i = pe
        if i != e:
            raise CertParseError("trailing data", i)
    except CertParseError as exc:
        raise CertParseError(f"basicConstraints: {exc.detail}", base + exc.offset) from None


def _key_usage(v: bytes, base: int) -> int:
    n = len(v)
    try:
        t, s, e = _hdr(v, 0, n)
    except CertParseError:
        raise CertParseError("keyUsage: expected BIT STRING of at most 9 bits", base) from None
    if t != 0x03 or e != n or e - s < 1 or e - s > 3 or v[s] > 7:
        raise CertParseError("keyUsage: expected BIT STRING of at most 9 bits", base)
    mask = 0
    shift = 0
    for byte in v[s + 1:e]:
        mask |= _REV8[byte] << shift
        shift += 8
    return mask


#: bit-reversed bytes: BIT STRING bit 0 is the most significant bit of the first octet
_REV8 = tuple(int(f"{x:08b}"[::-1], 2) for x in range(256))


#: pure-Python implementations (kept for the differential test and PLUGCHARGE_PKI_PURE=1)
py_parse_certificate = parse_certificate
py_name_attrs = _name_attrs
#: True when the compiled twin (pki/_fastcert.pyx) is in use
COMPILED = False

if os.environ.get("PLUGCHARGE_PKI_PURE") != "1":
    try:
        from ._fastcert import name_attrs as _name_attrs  # noqa: F811
        from ._fastcert import parse_certificate  # noqa: F811

        COMPILED = True
    except ImportError:  # not built: the pure-Python walker above is used
        pass
