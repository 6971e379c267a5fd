"""Profile-aware ISO 15118 certificate chain validation.

:func:`verify_chain` builds the path from the leaf to a trust anchor of an allowed role
(intermediates in any order, duplicates and extra certificates ignored, loops impossible, work
bounded), then checks for every certificate: validity at ``at``, every rule of its position's
profile from :mod:`pki.profiles`, and the signature with its issuer's key — RFC 5280 basic path
validation as profiled by ISO 15118 [V2G2-885], with at most two Sub-CAs [V2G2-009], the size
limit [V2G2-010] and the anchor-role rule [V2G2-925]. Every rejection is a
:class:`pki.ChainValidationError` with a :class:`pki.Reason`, the depth (0 = leaf) and subject.

Speed: certificates are parsed once by the lean DER walker in :mod:`pki._certinfo`; a
:class:`VerificationCache` keeps parsed CA certificates and verified CA links keyed by
``(certificate DER, issuer public key)`` so a second chain under the same Sub-CAs costs one
signature verification (the leaf's, which is never cached).
"""
from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union, cast

from cryptography.exceptions import InvalidSignature

from . import profiles as P
from ._certinfo import COMPILED, CertParseError, ParsedCert, der_time_key, parse_certificate
from ._compiled import KEY_ALGS, SIG_ALGS, CompiledCert, CompiledChain, compiled_chain
from .errors import ChainValidationError, Reason, UnknownProfileError
from .store import TrustStore, load_public_key, pem_to_der

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448

__all__ = ["VerifiedChain", "VerificationCache", "verify_chain", "verify_chains", "MAX_INTERMEDIATES",
           "MAX_PARSE_SIZE"]

#: more intermediates than this are refused outright (bounded work; -2 sends at most 4, -20 at most 3)
MAX_INTERMEDIATES = 8
#: certificates larger than this are never parsed (TOO_LARGE), whatever the profile
MAX_PARSE_SIZE = 16 * 1024
#: signature verifications one path search may spend (bounded work with decoy candidates)
_SIG_BUDGET = 24

_OID_CN = P.OID_COMMON_NAME
_profile_ok: Optional[Callable[[ParsedCert, CompiledCert], bool]]
if COMPILED:  # the all-rules-pass predicate of _check_profile, compiled (pki/_fastcert.pyx)
    from ._fastcert import profile_ok as _profile_ok
else:
    _profile_ok = None
_SIG_OF_KEY = {"secp256r1": "ecdsa-with-SHA256", "secp521r1": "ecdsa-with-SHA512", "ed448": "ed448"}


class VerificationCache:
    """Bounded LRU memory of parsed CA certificates and verified CA links.

    A link is "certificate DER ``c`` carries a valid signature by public key ``k``" and is stored
    only after the full check of ``c`` passed. It is keyed by ``(c, k)`` (exact bytes), so a
    different issuer key, a modified certificate or a removed trust anchor can never profit from
    it; it is never used when ``c`` has expired at the validation time (the validity of every
    certificate is re-checked on each call anyway). On top of the links it memoises, per
    ``(intermediates, leaf issuer name, store, profile)``, the fully validated CA part of a path and
    the time window in which every CA certificate on it is valid, so a warm call checks the leaf,
    its one signature and that window only. Leaf certificates are never cached. Not thread-safe;
    use one per thread (or a lock) if sharing.
    """

    __slots__ = ("maxsize", "_parsed", "_links", "_pools", "_paths", "hits", "misses")

    def __init__(self, maxsize: int = 512) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._parsed: "OrderedDict[bytes, ParsedCert]" = OrderedDict()
        self._links: "OrderedDict[Tuple[bytes, bytes], str]" = OrderedDict()
        #: intermediates tuple -> {subject DER: [parsed CA certificates]} (only parse results, no trust)
        self._pools: Dict[Tuple[bytes, ...], Dict[bytes, List[ParsedCert]]] = {}
        #: (intermediates, leaf issuer name, store, profile) -> (validated CA path, anchor role, window)
        self._paths: "OrderedDict[tuple, tuple]" = OrderedDict()
        self.hits = 0
        self.misses = 0

    def parsed(self, der: bytes) -> ParsedCert:
        """Parsed form of a CA certificate (parsing it on a miss); raises CertParseError."""
        pc = self._parsed.get(der)
        if pc is None:
            pc = parse_certificate(der)
            self._parsed[der] = pc
            if len(self._parsed) > self.maxsize:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(der)
        return pc

    def has_link(self, der: bytes, issuer_spki: bytes, at_key: str) -> bool:
        """True when the link was verified before and ``der`` is not expired at ``at_key``."""
        k = (der, issuer_spki)
        na = self._links.get(k)
        if na is None or na < at_key:
            self.misses += 1
            return False
        self._links.move_to_end(k)
        self.hits += 1
        return True

    def add_link(self, der: bytes, issuer_spki: bytes, not_after: str) -> None:
        """Remember a verified link (``not_after`` as ``YYYYMMDDHHMMSS``)."""
        self._links[(der, issuer_spki)] = not_after
        if len(self._links) > self.maxsize:
            self._links.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (e.g. after a trust-store change, although keys make that unnecessary)."""
        self._parsed.clear()
        self._links.clear()
        self._pools.clear()
        self._paths.clear()

    def __len__(self) -> int:
        return len(self._links)


def _to_datetime(key: str) -> datetime:
    return datetime(int(key[0:4]), int(key[4:6]), int(key[6:8]), int(key[8:10]), int(key[10:12]),
                    min(int(key[12:14]), 59), tzinfo=timezone.utc)


class VerifiedChain:
    """A chain that passed :func:`verify_chain`.

    Attributes:
        certificates: DER of the path leaf → root (the anchor from the store last).
        profile: chain profile name.
        anchor_role: store role of the anchor (``"v2g"``, ``"mo"``, ``"oem"``).
    """

    __slots__ = ("profile", "anchor_role", "_parsed", "_cn_kind", "_ders")

    def __init__(self, parsed: Tuple[ParsedCert, ...], profile: str, anchor_role: str, cn_kind: Optional[str]) -> None:
        self._parsed = parsed
        self.profile = profile
        self.anchor_role = anchor_role
        self._cn_kind = cn_kind
        self._ders: Optional[Tuple[bytes, ...]] = None

    @property
    def certificates(self) -> Tuple[bytes, ...]:
        """DER of the path leaf → root (the anchor from the store last)."""
        d = self._ders
        if d is None:
            d = self._ders = tuple([pc.der for pc in self._parsed])
        return d

    @property
    def leaf(self) -> bytes:
        """DER of the leaf certificate."""
        return self.certificates[0]

    @property
    def root(self) -> bytes:
        """DER of the trust anchor."""
        return self.certificates[-1]

    @property
    def sub_cas(self) -> Tuple[bytes, ...]:
        """DER of the Sub-CAs, Sub-CA 2 first (the wire order of SubCertificates)."""
        return self.certificates[1:-1]

    @property
    def emaid(self) -> Optional[str]:
        """The eMAID (contract leaf CN, as written in the certificate) for contract chains, else None."""
        return self._parsed[0].common_name if self._cn_kind == "emaid" else None

    @property
    def pcid(self) -> Optional[str]:
        """The PCID (OEM provisioning leaf CN) for OEM provisioning chains, else None."""
        return self._parsed[0].common_name if self._cn_kind == "pcid" else None

    @property
    def common_name(self) -> Optional[str]:
        """The leaf's subject CN."""
        return self._parsed[0].common_name

    @property
    def subjects(self) -> Tuple[str, ...]:
        """RFC 4514-style subjects leaf → root."""
        return tuple(pc.subject_str for pc in self._parsed)

    @property
    def not_after(self) -> datetime:
        """Expiry of the chain: the earliest notAfter of all its certificates (UTC)."""
        return _to_datetime(min(pc.not_after for pc in self._parsed))

    @property
    def not_before(self) -> datetime:
        """The latest notBefore of all its certificates (UTC)."""
        return _to_datetime(max(pc.not_before for pc in self._parsed))

    @property
    def ocsp_urls(self) -> Tuple[Tuple[str, ...], ...]:
        """OCSP responder URLs from authorityInfoAccess, one tuple per certificate leaf → root."""
        return tuple(pc.ocsp_urls() for pc in self._parsed)

    @property
    def leaf_public_key(self) -> object:
        """The leaf's public key as a cryptography object (loaded on first use)."""
        return load_public_key(self._parsed[0])

    def parsed(self) -> Tuple[ParsedCert, ...]:
        """The internal parsed certificates leaf → root (for pki.ocsp)."""
        return self._parsed

    def __repr__(self) -> str:
        return f"VerifiedChain({self.profile}, anchor={self.anchor_role}, leaf={self._parsed[0].subject_str!r})"


# -------------------------------------------------------------------------------------------------
# per-certificate checks
# -------------------------------------------------------------------------------------------------
def _fail(reason: Reason, detail: str, depth: int, pc: Optional[ParsedCert], der: Optional[bytes] = None) -> ChainValidationError:
    return ChainValidationError(reason, detail, depth=depth, subject=pc.subject_str if pc is not None else "",
                                certificate=pc.der if pc is not None else der)


def _check_validity(pc: ParsedCert, at_key: str, depth: int) -> None:
    if at_key > pc.not_after:
        raise _fail(Reason.EXPIRED, f"notAfter {_to_datetime(pc.not_after).isoformat()} is before the "
                    f"validation time {_to_datetime(at_key).isoformat()}", depth, pc)
    if at_key < pc.not_before:
        raise _fail(Reason.NOT_YET_VALID, f"notBefore {_to_datetime(pc.not_before).isoformat()} is after the "
                    f"validation time {_to_datetime(at_key).isoformat()}", depth, pc)


def _check_profile(pc: ParsedCert, cp: CompiledCert, depth: int) -> None:
    """Every static rule of one certificate profile (memoised on the parsed certificate).

    The compiled predicate answers the common case (every rule holds); otherwise, and without the
    compiled core, :func:`_profile_rules` runs the rules in order and raises for the first broken one.
    """
    memo = pc.checked
    if memo is not None and cp in memo:
        return
    if _profile_ok is None or not _profile_ok(pc, cp):
        _profile_rules(pc, cp, depth)
    if memo is None:
        pc.checked = {cp}
    else:
        memo.add(cp)


def _profile_rules(pc: ParsedCert, cp: CompiledCert, depth: int) -> None:
    """The static rules of ``cp`` in order; raises :class:`ChainValidationError` for the first broken one."""
    if len(pc.der) > cp.max_size:
        raise _fail(Reason.TOO_LARGE, f"{len(pc.der)} bytes DER exceeds the {cp.max_size}-byte limit of "
                    f"{cp.name} [V2G2-010]", depth, pc)
    if pc.version != cp.version:
        raise _fail(Reason.PROFILE, f"X.509 v{pc.version}, {cp.name} requires v{cp.version}", depth, pc)
    s = pc.serial
    if s[0] & 0x80 or not any(s):
        raise _fail(Reason.PROFILE, "serialNumber is not a positive integer", depth, pc)
    if len(s) > 20:
        raise _fail(Reason.PROFILE, f"serialNumber longer than 20 octets ({len(s)})", depth, pc)
    # algorithms
    if pc.sig_alg != pc.tbs_sig_alg:
        raise _fail(Reason.ALGORITHM, "signatureAlgorithm differs from tbsCertificate.signature", depth, pc)
    if pc.sig_alg not in cp.sig_algs:
        sa = SIG_ALGS.get(pc.sig_alg)
        raise _fail(Reason.ALGORITHM, f"signature algorithm {sa.name if sa else pc.sig_alg.hex()} not permitted "
                    f"by {cp.name} ({', '.join(cp.src.signature_algorithms)})", depth, pc)
    ka = KEY_ALGS.get(pc.key_alg)
    if pc.key_alg not in cp.key_algs or ka is None:
        raise _fail(Reason.ALGORITHM, f"public key algorithm {ka.name if ka else pc.key_alg.hex()} not permitted "
                    f"by {cp.name} ({', '.join(cp.src.key_algorithms)})", depth, pc)
    if len(pc.key_bits) != ka.key_len or (ka.curve is not None and pc.key_bits[0] != 4):
        raise _fail(Reason.ALGORITHM, f"{ka.name} public key is not an uncompressed point of {ka.key_len} bytes",
                    depth, pc)
    # basicConstraints
    if not pc.bc_present:
        raise _fail(Reason.NOT_A_CA, "basicConstraints extension is missing", depth, pc)
    if not pc.bc_critical:
        raise _fail(Reason.NOT_A_CA, "basicConstraints is not critical", depth, pc)
    if pc.ca != cp.is_ca:
        raise _fail(Reason.NOT_A_CA, ("cA=FALSE on an issuing certificate" if cp.is_ca else
                                      "cA=TRUE on a leaf certificate [V2G2-867]") + f" ({cp.name})", depth, pc)
    if pc.path_len != cp.path_len:
        raise _fail(Reason.PATH_LENGTH, f"pathLenConstraint {pc.path_len}, {cp.name} requires {cp.path_len}",
                    depth, pc)
    # keyUsage
    ku = pc.ku
    if ku < 0:
        raise _fail(Reason.KEY_USAGE, "keyUsage extension is missing", depth, pc)
    if not pc.ku_critical:
        raise _fail(Reason.KEY_USAGE, "keyUsage is not critical", depth, pc)
    if ku & cp.ku_required != cp.ku_required:
        missing = P.key_usage_names(cp.ku_required & ~ku)
        raise _fail(Reason.KEY_USAGE, f"keyUsage lacks {', '.join(sorted(missing))} ({cp.name})", depth, pc)
    if ku & ~cp.ku_permitted:
        extra = P.key_usage_names(ku & ~cp.ku_permitted)
        raise _fail(Reason.KEY_USAGE, f"keyUsage has {', '.join(sorted(extra))}, not permitted by {cp.name}",
                    depth, pc)
    # critical extensions: only BC and KU may be critical; anything else critical is unknown to the profile
    for oid, (crit, _v) in pc.extensions.items():
        if crit and oid not in cp.critical_ok:
            from ._certinfo import oid_to_str

            raise _fail(Reason.PROFILE, f"critical extension {oid_to_str(oid)} is not permitted / not understood",
                        depth, pc)
    # names
    try:
        cn, dcs = pc.names()
    except (CertParseError, UnicodeDecodeError) as exc:
        raise _fail(Reason.MALFORMED, f"subject name: {exc}", depth, pc) from None
    if cp.dcs:
        if cp.dc_required and not dcs:
            raise _fail(Reason.PROFILE, f"subject has no domainComponent, {cp.name} requires "
                        f"{'/'.join(sorted(cp.dcs))} [V2G2-925]", depth, pc)
        for dc in dcs:
            if dc not in cp.dcs:
                raise _fail(Reason.PROFILE, f"subject domainComponent {dc!r}, {cp.name} requires "
                            f"{'/'.join(sorted(cp.dcs))} [V2G2-925]", depth, pc)
    if cp.cn_kind == "emaid":
        if cn is None or not P.is_valid_emaid(cn):
            raise _fail(Reason.PROFILE, f"subject CN {cn!r} is not a valid eMAID [V2G2-108]", depth, pc)
    elif cp.cn_kind == "pcid":
        if cn is None or not P.is_valid_pcid(cn):
            raise _fail(Reason.PROFILE, f"subject CN {cn!r} is not a valid PCID [V2G2-933]", depth, pc)
    if cp.self_signed and not pc.self_issued:
        raise _fail(Reason.UNTRUSTED_ROOT, "anchor is not self-issued", depth, pc)


def _pair_table() -> Dict[Tuple[bytes, bytes], Optional[ec.ECDSA]]:
    """(signature AlgorithmIdentifier, issuer key AlgorithmIdentifier) -> ECDSA object / None (EdDSA).

    Only the pairings the profiles allow: ecdsa-with-SHA256 from P-256, ecdsa-with-SHA512 from
    P-521, Ed448 from Ed448 (a key of one kind never verifies another kind's signature).
    """
    out: Dict[Tuple[bytes, bytes], Optional[ec.ECDSA]] = {}
    for sd, sa in SIG_ALGS.items():
        for kd, ka in KEY_ALGS.items():
            if ka.name in sa.key_kind and _SIG_OF_KEY.get(ka.name, sa.name) == sa.name:
                out[(sd, kd)] = sa.ecdsa
    return out


_PAIRS = _pair_table()
_NO_PAIR = object()


def _check_signature(pc: ParsedCert, issuer: ParsedCert, depth: int) -> None:
    """Signature of ``pc`` (at ``depth``) with the key of ``issuer`` (at ``depth + 1``)."""
    algo = _PAIRS.get((pc.sig_alg, issuer.key_alg), _NO_PAIR)
    if algo is _NO_PAIR:
        sa = SIG_ALGS.get(pc.sig_alg)
        ka = KEY_ALGS.get(issuer.key_alg)
        raise _fail(Reason.ALGORITHM, f"{sa.name if sa else 'unknown'} signature cannot come from the issuer's "
                    f"{ka.name if ka else 'unknown'} key (profile pairs keys and signature algorithms)", depth, pc)
    pub = issuer.public_key
    try:
        if pub is None:
            pub = load_public_key(issuer)
        # the pair table gives None exactly for Ed448 keys, an ECDSA algorithm for EC keys
        if algo is None:
            cast("ed448.Ed448PublicKey", pub).verify(pc.signature, pc.tbs)
        else:
            cast("ec.EllipticCurvePublicKey", pub).verify(pc.signature, pc.tbs, cast("ec.ECDSA", algo))
    except InvalidSignature:
        raise _fail(Reason.BAD_SIGNATURE, f"signature does not verify with the key of {issuer.subject_str}",
                    depth, pc) from None
    except (ValueError, TypeError) as exc:
        # issuer key unusable (not a curve point ...) or garbage signature encoding
        raise _fail(Reason.MALFORMED, f"issuer public key unusable: {exc}", depth + 1, issuer) from None


# -------------------------------------------------------------------------------------------------
# path building
# -------------------------------------------------------------------------------------------------
class _Search:
    __slots__ = ("ch", "store", "at_key", "cache", "pool", "budget", "best")

    def __init__(self, ch: CompiledChain, store: TrustStore, at_key: str, cache: Optional[VerificationCache],
                 pool: Dict[bytes, List[ParsedCert]]) -> None:
        self.ch = ch
        self.store = store
        self.at_key = at_key
        self.cache = cache
        self.pool = pool
        self.budget = _SIG_BUDGET
        self.best: Optional[ChainValidationError] = None

    def note(self, err: ChainValidationError) -> None:
        """Keep the most informative failure: the one that got furthest up the path."""
        if self.best is None or err.depth > self.best.depth:
            self.best = err

    def link(self, pc: ParsedCert, issuer: ParsedCert, depth: int) -> None:
        cache = self.cache
        if depth > 0 and cache is not None:
            if cache.has_link(pc.der, issuer.spki, self.at_key):
                return
            if self.budget <= 0:
                raise _fail(Reason.UNKNOWN_ISSUER, "path search exhausted its work budget", depth, pc)
            self.budget -= 1
            _check_signature(pc, issuer, depth)
            cache.add_link(pc.der, issuer.spki, pc.not_after)
            return
        if self.budget <= 0:
            raise _fail(Reason.UNKNOWN_ISSUER, "path search exhausted its work budget", depth, pc)
        self.budget -= 1
        _check_signature(pc, issuer, depth)

    def extend(self, path: List[ParsedCert]) -> Tuple[List[ParsedCert], str]:
        cur = path[-1]
        depth = len(path) - 1
        nsub = depth  # Sub-CAs already on the path
        ch = self.ch
        for role, anchor in self.store.anchors_for_subject(cur.issuer):
            if role not in ch.anchor_roles:
                self.note(_fail(Reason.UNTRUSTED_ROOT, f"anchor of store role {role!r} may not anchor {ch.name} "
                                f"(allowed: {', '.join(sorted(ch.anchor_roles))}) [V2G2-925]", depth + 1, anchor))
                continue
            if nsub < ch.min_sub_cas:
                self.note(_fail(Reason.PATH_LENGTH, f"{ch.name} needs at least {ch.min_sub_cas} Sub-CAs",
                                depth + 1, anchor))
                continue
            try:
                _check_validity(anchor, self.at_key, depth + 1)
                _check_profile(anchor, ch.roots[role], depth + 1)
                self.link(cur, anchor, depth)
            except ChainValidationError as exc:
                self.note(exc)
                continue
            return path + [anchor], role
        for cand in self.pool.get(cur.issuer, ()):
            looped = False
            for p in path:
                if cand.der == p.der:
                    looped = True
                    break
            if looped:
                continue  # a loop (A issued by B issued by A): never revisit
            if cand.self_issued:
                self.note(_fail(Reason.UNTRUSTED_ROOT, "self-issued certificate is not a trust anchor of an "
                                f"allowed role ({', '.join(sorted(ch.anchor_roles))})", depth + 1, cand))
                continue
            if nsub >= ch.max_sub_cas:
                self.note(_fail(Reason.PATH_LENGTH, f"more than {ch.max_sub_cas} Sub-CAs in the path [V2G2-009]",
                                depth + 1, cand))
                continue
            try:
                _check_validity(cand, self.at_key, depth + 1)
                _check_profile(cand, ch.subs[nsub], depth + 1)
                self.link(cur, cand, depth)
                return self.extend(path + [cand])
            except ChainValidationError as exc:
                self.note(exc)
        if self.best is not None and self.best.depth >= depth:
            raise self.best
        raise _fail(Reason.UNKNOWN_ISSUER, "no issuer among the intermediates or the trust anchors of "
                    f"{', '.join(sorted(ch.anchor_roles))}", depth, cur)


_AT_MEMO: Dict[datetime, str] = {}


def _at_key(at: datetime) -> str:
    k = _AT_MEMO.get(at)
    if k is None:
        if not isinstance(at, datetime):
            raise TypeError("at must be a datetime (naive = UTC)")
        if len(_AT_MEMO) > 64:
            _AT_MEMO.clear()
        k = _AT_MEMO[at] = der_time_key(at)
    return k


def _from_pem(data: Union[bytes, str], what: str, depth: int) -> bytes:
    """The one certificate of a PEM input (``TrustStore`` takes PEM too); ``data`` is not DER."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if b"-----BEGIN" not in raw[:4096]:
        return raw  # neither DER nor PEM: the DER parser says what is wrong with it
    try:
        ders = pem_to_der(raw)
    except ValueError as exc:
        raise ChainValidationError(Reason.MALFORMED, f"{what}: {exc}", depth=depth) from None
    if len(ders) != 1:
        raise ChainValidationError(Reason.MALFORMED, f"{what} is PEM with {len(ders)} CERTIFICATE blocks; give one "
                                   "certificate (DER or PEM) per argument", depth=depth)
    return ders[0]


def _parse_leaf(leaf: bytes, ch: CompiledChain) -> ParsedCert:
    if isinstance(leaf, (bytearray, memoryview)):
        leaf = bytes(leaf)
    if isinstance(leaf, str) or (isinstance(leaf, bytes) and leaf[:1] != b"\x30"):  # not DER: PEM?
        leaf = _from_pem(leaf, "the leaf", 0)
    if not isinstance(leaf, bytes):
        raise ChainValidationError(Reason.MALFORMED, f"leaf must be DER or PEM bytes, not {type(leaf).__name__}",
                                   depth=0)
    if len(leaf) > MAX_PARSE_SIZE:
        raise ChainValidationError(Reason.TOO_LARGE, f"{len(leaf)} bytes DER exceeds the {ch.max_size}-byte "
                                   "limit [V2G2-010]", depth=0, certificate=leaf)
    try:
        return parse_certificate(leaf)
    except CertParseError as exc:
        raise ChainValidationError(Reason.MALFORMED, f"not a DER certificate: {exc}", depth=0,
                                   certificate=leaf) from None


def _pool(intermediates: Sequence[bytes], cache: Optional[VerificationCache]) -> Dict[bytes, List[ParsedCert]]:
    if cache is not None and type(intermediates) in (tuple, list):
        key = tuple(intermediates)
        try:
            pool = cache._pools.get(key)
        except TypeError:  # unhashable junk: let _build_pool report it
            return _build_pool(intermediates, cache)
        if pool is not None:
            return pool
        pool = _build_pool(key, cache)
        cache._pools[key] = pool
        if len(cache._pools) > cache.maxsize:
            cache._pools.pop(next(iter(cache._pools)))
        return pool
    return _build_pool(intermediates, cache)


def _build_pool(intermediates: Sequence[bytes], cache: Optional[VerificationCache]) -> Dict[bytes, List[ParsedCert]]:
    if type(intermediates) is not list and type(intermediates) is not tuple:
        if isinstance(intermediates, (bytes, bytearray)):
            raise ChainValidationError(Reason.MALFORMED, "intermediates must be a sequence of DER certificates, "
                                       "not one bytes object", depth=-1)
        try:
            intermediates = list(intermediates)
        except TypeError:
            raise ChainValidationError(Reason.MALFORMED, "intermediates must be a sequence of DER certificates",
                                       depth=-1) from None
    if len(intermediates) > MAX_INTERMEDIATES:
        raise ChainValidationError(Reason.PATH_LENGTH, f"{len(intermediates)} intermediate certificates offered, "
                                   f"at most {MAX_INTERMEDIATES} are examined", depth=-1)
    pool: Dict[bytes, List[ParsedCert]] = {}
    seen: List[bytes] = []  # at most MAX_INTERMEDIATES: a list compares cheaper than hashing whole DERs
    parse = cache.parsed if cache is not None else parse_certificate
    idx = 0
    for der in intermediates:
        if type(der) is not bytes:
            if isinstance(der, (bytearray, memoryview)):
                der = bytes(der)
            elif isinstance(der, str):
                der = _from_pem(der, f"intermediate #{idx}", 1 + idx)
            elif not isinstance(der, bytes):
                raise ChainValidationError(Reason.MALFORMED, f"intermediate #{idx} is {type(der).__name__}, not "
                                           "DER or PEM bytes", depth=1 + idx)
        if der[:1] != b"\x30":  # not DER: PEM?
            der = _from_pem(der, f"intermediate #{idx}", 1 + idx)
        if der in seen:
            idx += 1
            continue  # duplicates are harmless
        seen.append(der)
        if len(der) > MAX_PARSE_SIZE:
            raise ChainValidationError(Reason.TOO_LARGE, f"intermediate #{idx}: {len(der)} bytes DER",
                                       depth=1 + idx, certificate=der)
        try:
            pc = parse(der)
        except CertParseError as exc:
            raise ChainValidationError(Reason.MALFORMED, f"intermediate #{idx} is not a DER certificate: {exc}",
                                       depth=1 + idx, certificate=der) from None
        lst = pool.get(pc.subject)
        if lst is None:
            pool[pc.subject] = [pc]
        else:
            lst.append(pc)
        idx += 1
    return pool


def verify_chain(leaf: bytes, intermediates: Sequence[bytes] = (), *, store: TrustStore, profile: str,
                 at: datetime, cache: Optional[VerificationCache] = None) -> VerifiedChain:
    """Validate ``leaf`` up to an anchor in ``store`` under the chain profile ``profile``.

    Args:
        leaf: the end-entity certificate, DER (or PEM, one CERTIFICATE block, as ``TrustStore`` takes).
        intermediates: candidate Sub-CAs (DER or PEM, one certificate each) in any order; duplicates,
            extra and unrelated certificates are ignored (at most :data:`MAX_INTERMEDIATES`; each must parse).
        store: the trust anchors; only roots of the profile's anchor roles are accepted.
        profile: a chain profile name from :data:`pki.profiles.CHAIN_PROFILES` (``iso2-contract``...).
        at: validation time (aware, or naive meaning UTC). The engine has no clock of its own.
        cache: optional :class:`VerificationCache` shared between calls (see its doc).

    Returns:
        :class:`VerifiedChain` with the path leaf → root and the facts a session needs.

    Raises:
        ChainValidationError: with ``reason``, ``depth`` (0 = leaf) and ``subject`` of the culprit.
        UnknownProfileError: ``profile`` is not a known chain profile.
        TypeError: ``at`` is not a datetime / ``store`` is not a TrustStore.
    """
    ch = compiled_chain(profile)
    if not isinstance(store, TrustStore):
        raise TypeError("store must be a pki.TrustStore")
    at_key = _at_key(at)
    lpc = _parse_leaf(leaf, ch)
    _check_validity(lpc, at_key, 0)
    _check_profile(lpc, ch.leaf, 0)
    pkey = None
    if cache is not None and type(intermediates) in (tuple, list):
        # warm path: the CA part above this leaf's issuer name was fully validated before with the
        # same intermediates, store and profile; only the time window is re-checked here (it is
        # the intersection of every CA certificate's validity), and the leaf link is verified.
        try:
            pkey = (tuple(intermediates), lpc.issuer, store, ch.name)
            hit = cache._paths.get(pkey)
        except TypeError:  # unhashable junk in intermediates: the full path reports it
            pkey = hit = None
        if hit is not None:
            upper, role, nb, na = hit
            if nb <= at_key <= na:
                assert pkey is not None  # a hit needs the key it was looked up with
                cache._paths.move_to_end(pkey)
                _check_signature(lpc, upper[0], 0)
                cache.hits += 1
                return VerifiedChain((lpc,) + upper, ch.name, role, ch.cn_kind)
    pool = _pool(intermediates, cache)
    search = _Search(ch, store, at_key, cache, pool)
    path, role = search.extend([lpc])
    if pkey is not None:
        assert cache is not None  # pkey is only set with a cache
        upper = tuple(path[1:])
        cache._paths[pkey] = (upper, role, max([c.not_before for c in upper]), min([c.not_after for c in upper]))
        if len(cache._paths) > cache.maxsize:
            cache._paths.popitem(last=False)
    return VerifiedChain(tuple(path), ch.name, role, ch.cn_kind)


ChainItem = Union[Tuple[bytes, Sequence[bytes]], Tuple[bytes, Sequence[bytes], str]]


def verify_chains(items: Iterable[ChainItem], *, store: TrustStore, profile: Optional[str] = None, at: datetime,
                  cache: Optional[VerificationCache] = None, raise_first: bool = False
                  ) -> List[Union[VerifiedChain, ChainValidationError]]:
    """Validate many chains against one store and time, sharing one cache.

    ``items`` yields ``(leaf, intermediates)`` (with ``profile`` given) or ``(leaf, intermediates,
    profile)``. Returns one entry per item, in order: the :class:`VerifiedChain`, or the
    :class:`ChainValidationError` that rejected it (raised instead when ``raise_first``). Without a
    ``cache`` a private one lives for the batch, so shared Sub-CAs are verified once.
    """
    if cache is None:
        cache = VerificationCache()
    out: List[Union[VerifiedChain, ChainValidationError]] = []
    prof: Optional[str]
    for item in items:
        if len(item) == 3:
            leaf, inter, prof = item  # type: ignore[misc]
        else:
            leaf, inter = item  # type: ignore[misc]
            prof = profile
        if prof is None:
            raise UnknownProfileError("verify_chains: no profile given for an item")
        try:
            out.append(verify_chain(leaf, inter, store=store, profile=prof, at=at, cache=cache))
        except ChainValidationError as exc:
            if raise_first:
                raise
            out.append(exc)
    return out
