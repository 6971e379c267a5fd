"""Profiles of :mod:`pki.profiles` compiled to the byte/int forms the validator compares against.

The dataclasses in ``profiles.py`` are the single source of truth; this module only turns their
dotted OIDs and key-usage names into DER content octets and bit masks once per process, so the
per-certificate checks in :mod:`pki.verify` are set lookups and integer tests.
"""
from __future__ import annotations

from typing import Callable, Dict, FrozenSet, Optional, Tuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from . import profiles as P
from ._certinfo import oid_to_der
from .errors import UnknownProfileError

__all__ = ["CompiledCert", "CompiledChain", "compiled_chain", "SIG_ALGS", "KEY_ALGS"]


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + content


def _alg_id(oid: str, param_oid: Optional[str] = None) -> bytes:
    body = _tlv(0x06, oid_to_der(oid))
    if param_oid is not None:
        body += _tlv(0x06, oid_to_der(param_oid))
    return _tlv(0x30, body)


class SigAlg:
    """A certificate signature algorithm: its name, the key kind it needs, and how to verify."""

    __slots__ = ("name", "key_kind", "ecdsa")

    def __init__(self, name: str, key_kind: Tuple[str, ...], ecdsa: Optional[ec.ECDSA]) -> None:
        self.name = name
        self.key_kind = key_kind
        self.ecdsa = ecdsa


class KeyAlg:
    """A subject public key algorithm: name, curve object (EC) and encoded key length."""

    __slots__ = ("name", "curve", "key_len")

    def __init__(self, name: str, curve: Optional[ec.EllipticCurve], key_len: int) -> None:
        self.name = name
        self.curve = curve
        self.key_len = key_len


#: AlgorithmIdentifier DER of a certificate signature -> SigAlg (RFC 5758: ECDSA without parameters)
SIG_ALGS: Dict[bytes, SigAlg] = {
    _alg_id(P.OID_ECDSA_WITH_SHA256): SigAlg("ecdsa-with-SHA256", ("secp256r1", "secp384r1", "secp521r1"), ec.ECDSA(hashes.SHA256())),
    _alg_id(P.OID_ECDSA_WITH_SHA512): SigAlg("ecdsa-with-SHA512", ("secp256r1", "secp384r1", "secp521r1"), ec.ECDSA(hashes.SHA512())),
    _alg_id("1.2.840.10045.4.3.3"): SigAlg("ecdsa-with-SHA384", ("secp256r1", "secp384r1", "secp521r1"), ec.ECDSA(hashes.SHA384())),
    _alg_id(P.OID_ED448): SigAlg("ed448", ("ed448",), None),
}

#: SubjectPublicKeyInfo AlgorithmIdentifier DER -> KeyAlg (uncompressed points only)
KEY_ALGS: Dict[bytes, KeyAlg] = {
    _alg_id(P.OID_ID_EC_PUBLIC_KEY, P.OID_SECP256R1): KeyAlg("secp256r1", ec.SECP256R1(), 65),
    _alg_id(P.OID_ID_EC_PUBLIC_KEY, P.OID_SECP521R1): KeyAlg("secp521r1", ec.SECP521R1(), 133),
    _alg_id(P.OID_ID_EC_PUBLIC_KEY, "1.3.132.0.34"): KeyAlg("secp384r1", ec.SECP384R1(), 97),
    _alg_id(P.OID_ED448): KeyAlg("ed448", None, 57),
}


class CompiledCert:
    """One :class:`pki.profiles.CertProfile` in compare-ready form (``src`` is the original)."""

    __slots__ = ("src", "name", "is_ca", "path_len", "ku_required", "ku_permitted", "dcs", "dc_required",
                 "cn_kind", "max_size", "version", "sig_algs", "key_algs", "critical_ok", "self_signed",
                 "key_table", "cn_check", "fast")

    def __init__(self, cp: P.CertProfile) -> None:
        self.src = cp
        self.name = cp.name
        self.is_ca = cp.is_ca
        self.path_len = cp.path_len
        self.ku_required = cp.key_usage_required_mask
        self.ku_permitted = cp.key_usage_permitted_mask
        self.dcs: FrozenSet[str] = frozenset(cp.domain_components)
        self.dc_required = cp.dc_required
        self.cn_kind = cp.cn_kind
        self.max_size = cp.max_der_size
        self.version = cp.version
        self.self_signed = cp.self_signed
        self.sig_algs: FrozenSet[bytes] = frozenset(
            _alg_id(P.SIGNATURE_ALGORITHM_OIDS[a]) for a in cp.signature_algorithms)
        self.key_algs: FrozenSet[bytes] = frozenset(
            _alg_id(*P.KEY_ALGORITHM_OIDS[a]) for a in cp.key_algorithms)
        #: extensions that may be critical: exactly the required-critical ones (BC, KU)
        self.critical_ok: FrozenSet[bytes] = frozenset(oid_to_der(o) for o in cp.required_critical_extensions)
        #: permitted SPKI AlgorithmIdentifier DER -> (encoded key length, uncompressed EC point expected)
        self.key_table: Dict[bytes, Tuple[int, bool]] = {
            k: (KEY_ALGS[k].key_len, KEY_ALGS[k].curve is not None) for k in self.key_algs if k in KEY_ALGS}
        #: syntax check of the subject CN (eMAID / PCID), or None
        self.cn_check: Optional[Callable[[str], bool]] = {"emaid": P.is_valid_emaid, "pcid": P.is_valid_pcid}.get(
            cp.cn_kind or "")
        #: the fields pki._fastcert.profile_ok compares, in its order (one attribute read per check)
        self.fast = (self.max_size, self.version, self.sig_algs, self.key_table, self.is_ca, self.path_len,
                     self.ku_required, self.ku_permitted, self.critical_ok, self.dcs, self.dc_required, self.cn_kind,
                     self.cn_check, self.self_signed)


class CompiledChain:
    """One :class:`pki.profiles.ChainProfile` in compare-ready form."""

    __slots__ = ("src", "name", "leaf", "subs", "anchor_roles", "roots", "max_sub_cas", "min_sub_cas",
                 "max_size", "cn_kind")

    def __init__(self, ch: P.ChainProfile) -> None:
        self.src = ch
        self.name = ch.name
        self.leaf = CompiledCert(ch.leaf)
        self.subs = tuple(CompiledCert(s) for s in ch.sub_ca_profiles)
        self.anchor_roles: FrozenSet[str] = frozenset(ch.anchor_roles)
        self.roots: Dict[str, CompiledCert] = {r: CompiledCert(p) for r, p in ch.root_profiles.items()}
        self.max_sub_cas = ch.max_sub_cas
        self.min_sub_cas = ch.min_sub_cas
        self.max_size = ch.max_der_size
        self.cn_kind = ch.leaf.cn_kind


_COMPILED: Dict[str, CompiledChain] = {}


def compiled_chain(name: str) -> CompiledChain:
    """The compiled chain profile ``name``; :class:`UnknownProfileError` for unknown names."""
    c = _COMPILED.get(name)
    if c is None:
        try:
            ch = P.CHAIN_PROFILES[name]
        except (KeyError, TypeError):
            raise UnknownProfileError(
                f"unknown chain profile {name!r}; known: {', '.join(P.CHAIN_PROFILES)}") from None
        c = _COMPILED[name] = CompiledChain(ch)
    return c
