"""Trust anchors per role: the immutable :class:`TrustStore`.

A store holds self-signed root certificates grouped by *store role* — ``"v2g"`` (V2G root CA),
``"mo"`` (mobility operator roots) and ``"oem"`` (OEM roots), see :data:`pki.profiles.STORE_ROLES`.
Each chain profile names the roles that may anchor it (contract: mo or v2g; secc, cps: v2g;
oem-provisioning, vehicle: oem) [V2G2-925]. Only the roots listed here are anchors: a Sub-CA can
never be put into a store (it is rejected at construction), which closes the "any store member is
an anchor" hole of generic verifiers.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Mapping, Tuple, Union, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from ._certinfo import CertParseError, ParsedCert, parse_certificate
from ._compiled import KEY_ALGS, SIG_ALGS
from .errors import Reason, TrustStoreError
from .profiles import STORE_ROLES

if TYPE_CHECKING:
    from ._certinfo import PublicKey

__all__ = ["TrustStore", "pem_to_der", "load_public_key"]

_PEM_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
_MAX_ANCHOR_SIZE = 64 * 1024


def pem_to_der(data: bytes) -> List[bytes]:
    """All certificates of a PEM blob as DER (empty list when it holds no CERTIFICATE block)."""
    import base64
    import binascii

    out = []
    for m in _PEM_RE.finditer(data):
        try:
            out.append(base64.b64decode(b"".join(m.group(1).split()), validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("PEM CERTIFICATE block is not valid base64") from None
    return out


#: public key objects by (SPKI AlgorithmIdentifier DER, key BIT STRING content): exact bytes, so a
#: key object is only ever reused for the very same key (loading one checks the curve point, which
#: for P-521 costs more than parsing the whole certificate); bounded, oldest dropped first
_KEYS: Dict[Tuple[bytes, bytes], "PublicKey"] = {}
_KEYS_MAX = 256


def load_public_key(pc: ParsedCert) -> PublicKey:
    """The cryptography public key object of a parsed certificate (cached on it, and by its exact
    key bytes across certificates).

    Raises ``ValueError`` for unsupported algorithms or keys that are not valid curve points.
    """
    pub = pc.public_key
    if pub is None:
        k = (pc.key_alg, pc.key_bits)
        pub = _KEYS.get(k)
        if pub is None:
            ka = KEY_ALGS.get(pc.key_alg)
            if ka is None:
                raise ValueError("unsupported public key algorithm")
            if len(pc.key_bits) != ka.key_len:
                raise ValueError(f"{ka.name} public key must be {ka.key_len} bytes (uncompressed), "
                                 f"got {len(pc.key_bits)}")
            if ka.curve is not None:
                pub = ec.EllipticCurvePublicKey.from_encoded_point(ka.curve, pc.key_bits)
            else:
                pub = ed448.Ed448PublicKey.from_public_bytes(pc.key_bits)
            if len(_KEYS) >= _KEYS_MAX:
                try:
                    del _KEYS[next(iter(_KEYS))]
                except (KeyError, RuntimeError, StopIteration):  # another thread trimmed it first
                    pass
            _KEYS[k] = pub
        pc.public_key = pub
    return pub


def verify_signed_by(pc: ParsedCert, issuer: ParsedCert) -> None:
    """Verify ``pc``'s signature with ``issuer``'s key; raises ``InvalidSignature`` or ``ValueError``."""
    alg = SIG_ALGS.get(pc.sig_alg)
    if alg is None:
        raise ValueError("unsupported signature algorithm")
    pub = load_public_key(issuer)
    # the key object was built from KEY_ALGS[issuer.key_alg], so its type follows from the curve field
    is_ec = KEY_ALGS[issuer.key_alg].curve is not None
    if alg.ecdsa is not None:
        if not is_ec:
            raise ValueError(f"{alg.name} signature but the issuer key is not an EC key")
        cast("ec.EllipticCurvePublicKey", pub).verify(pc.signature, pc.tbs, alg.ecdsa)
    else:
        if is_ec:
            raise ValueError("ed448 signature but the issuer key is not an Ed448 key")
        cast("ed448.Ed448PublicKey", pub).verify(pc.signature, pc.tbs)


AnchorInput = Union[bytes, bytearray, memoryview, str]


class TrustStore:
    """Immutable set of trust anchors (self-signed roots) per store role.

    ``TrustStore({"v2g": [der_or_pem, ...], "mo": [...], "oem": [...]})``: each entry is DER bytes or
    PEM (bytes or str; one PEM blob may hold several certificates). Missing roles are empty.
    Every anchor must parse, be self-issued (subject == issuer), verify with its own key and carry
    basicConstraints cA=TRUE; otherwise :class:`pki.TrustStoreError` names the role and index.
    Profile rules of the root (curve, DC, keyUsage ...) are checked per chain profile at
    validation time, since one store serves -2 and -20 chains.
    """

    __slots__ = ("_roles", "_by_subject", "_parsed", "_memo", "__weakref__")

    def __init__(self, anchors: Mapping[str, Iterable[AnchorInput]]) -> None:
        if not isinstance(anchors, Mapping):
            raise TrustStoreError(Reason.PROFILE, "expected a mapping of store role -> certificates")
        roles: Dict[str, Tuple[bytes, ...]] = {}
        by_subject: Dict[bytes, List[Tuple[str, ParsedCert]]] = {}
        parsed: Dict[Tuple[str, bytes], ParsedCert] = {}
        for role, certs in anchors.items():
            if role not in STORE_ROLES:
                raise TrustStoreError(Reason.PROFILE, f"unknown store role; known: {', '.join(STORE_ROLES)}",
                                      role=str(role))
            if isinstance(certs, (bytes, bytearray, str)):
                certs = [certs]
            ders: List[bytes] = []
            for item in certs:
                ders.extend(_to_ders(item, role, len(ders)))
            out: List[bytes] = []
            for idx, der in enumerate(ders):
                if der in out:
                    continue  # the same root twice in one role
                pc = _check_anchor(der, role, idx)
                out.append(der)
                parsed[(role, der)] = pc
                by_subject.setdefault(pc.subject, []).append((role, pc))
            roles[role] = tuple(out)
        for r in STORE_ROLES:
            roles.setdefault(r, ())
        self._roles = MappingProxyType(roles)
        self._by_subject = MappingProxyType({k: tuple(v) for k, v in by_subject.items()})
        self._parsed = parsed
        self._memo: Dict[Tuple[int, str], bool] = {}

    # --- construction helpers -------------------------------------------------------------
    @classmethod
    def from_directory(cls, path: Union[str, os.PathLike]) -> "TrustStore":
        """Load a store from a directory.

        Layouts, tried in this order:

        1. ``manifest.json`` as written by ``python -m pki issue-test-pki DIR``: its ``"trust"``
           object maps each store role to certificate paths relative to ``DIR``;
        2. ``trust/<store-role>/`` subdirectories (also written by ``issue-test-pki``);
        3. ``<store-role>/`` subdirectories (``v2g/``, ``mo/``, ``oem/``) directly in ``DIR``.

        In 2 and 3 every ``*.der``, ``*.cer``, ``*.crt`` and ``*.pem`` file is read (other files are
        ignored; a PEM file may hold several certificates).
        """
        base = Path(path)
        if not base.is_dir():
            raise TrustStoreError(Reason.PROFILE, f"{base} is not a directory", source=str(base))
        manifest = base / "manifest.json"
        if manifest.is_file():
            return cls(_manifest_roots(base, manifest))
        for root in (base / "trust", base):
            if any((root / r).is_dir() for r in STORE_ROLES):
                return cls(_dir_roots(root))
        raise TrustStoreError(Reason.PROFILE, f"no manifest.json and no {'/'.join(STORE_ROLES)} subdirectory",
                              source=str(base))

    # --- queries ---------------------------------------------------------------------------
    @property
    def roles(self) -> Mapping[str, Tuple[bytes, ...]]:
        """Read-only mapping store role -> anchors (DER), in the order given."""
        return self._roles

    def anchors(self, role: str) -> Tuple[bytes, ...]:
        """DER of the anchors of one role (empty tuple for a role without anchors)."""
        return self._roles.get(role, ())

    def anchors_for_subject(self, subject_der: bytes) -> Tuple[Tuple[str, ParsedCert], ...]:
        """(role, parsed anchor) pairs whose subject DER equals ``subject_der`` (internal use)."""
        return self._by_subject.get(subject_der, ())

    def role_of(self, der: bytes) -> Tuple[str, ...]:
        """The roles in which ``der`` is an anchor."""
        return tuple(r for r, ds in self._roles.items() if der in ds)

    def __contains__(self, der: object) -> bool:
        return any(der in ds for ds in self._roles.values())

    def __iter__(self) -> Iterator[bytes]:
        for ds in self._roles.values():
            yield from ds

    def __len__(self) -> int:
        return sum(len(ds) for ds in self._roles.values())

    def __repr__(self) -> str:
        return "TrustStore(" + ", ".join(f"{r}={len(d)}" for r, d in self._roles.items()) + ")"

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_memo"):
            raise AttributeError("TrustStore is immutable")
        object.__setattr__(self, name, value)


def _to_ders(item: AnchorInput, role: str, index: int) -> List[bytes]:
    if isinstance(item, str):
        item = item.encode("ascii", "replace")
    if isinstance(item, (bytearray, memoryview)):
        item = bytes(item)
    if not isinstance(item, bytes):
        raise TrustStoreError(Reason.MALFORMED, f"expected DER or PEM bytes, got {type(item).__name__}",
                              role=role, index=index)
    if b"-----BEGIN" in item[:4096]:
        try:
            ders = pem_to_der(item)
        except ValueError as exc:
            raise TrustStoreError(Reason.MALFORMED, str(exc), role=role, index=index) from None
        if not ders:
            raise TrustStoreError(Reason.MALFORMED, "PEM data without a CERTIFICATE block", role=role, index=index)
        return ders
    return [item]


def _check_anchor(der: bytes, role: str, index: int) -> ParsedCert:
    if len(der) > _MAX_ANCHOR_SIZE:
        raise TrustStoreError(Reason.TOO_LARGE, f"{len(der)} bytes", role=role, index=index)
    try:
        pc = parse_certificate(der)
    except CertParseError as exc:
        raise TrustStoreError(Reason.MALFORMED, f"not a DER certificate: {exc}", role=role, index=index) from None
    if not pc.self_issued:
        raise TrustStoreError(Reason.UNTRUSTED_ROOT,
                              f"not self-issued ({pc.subject_str}); only roots may be trust anchors",
                              role=role, index=index)
    if not (pc.bc_present and pc.ca):
        raise TrustStoreError(Reason.NOT_A_CA, f"{pc.subject_str} is not a CA (basicConstraints cA)",
                              role=role, index=index)
    try:
        verify_signed_by(pc, pc)
    except InvalidSignature:
        raise TrustStoreError(Reason.BAD_SIGNATURE, f"self-signature of {pc.subject_str} does not verify",
                              role=role, index=index) from None
    except (ValueError, TypeError) as exc:
        raise TrustStoreError(Reason.ALGORITHM, f"{pc.subject_str}: {exc}", role=role, index=index) from None
    return pc


def _dir_roots(root: Path) -> Dict[str, List[bytes]]:
    anchors: Dict[str, List[bytes]] = {}
    for role in STORE_ROLES:
        d = root / role
        if not d.is_dir():
            continue
        items: List[bytes] = []
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in (".der", ".cer", ".crt", ".pem"):
                try:
                    items.extend(_to_ders(f.read_bytes(), role, len(items)))
                except TrustStoreError as exc:
                    raise TrustStoreError(exc.reason, exc.detail, role=role, index=len(items),
                                          source=str(f)) from None
        anchors[role] = items
    return anchors


def _manifest_roots(base: Path, manifest: Path) -> Dict[str, List[bytes]]:
    """Roots named by the ``"trust"`` object of an ``issue-test-pki`` manifest."""
    try:
        doc = json.loads(manifest.read_text("utf-8"))
        trust = doc["trust"]
        if not isinstance(trust, dict):
            raise ValueError("'trust' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrustStoreError(Reason.MALFORMED, f"unusable manifest: {exc!r}", source=str(manifest)) from None
    out: Dict[str, List[bytes]] = {}
    for role, paths in trust.items():
        if isinstance(paths, str):
            paths = [paths]
        items: List[bytes] = []
        for p in paths:
            f = base / str(p)
            try:
                data = f.read_bytes()
            except OSError as exc:
                raise TrustStoreError(Reason.MALFORMED, f"cannot read: {exc.strerror}", role=str(role),
                                      source=str(f)) from None
            try:
                items.extend(_to_ders(data, str(role), len(items)))
            except TrustStoreError as exc:
                raise TrustStoreError(exc.reason, exc.detail, role=str(role), index=len(items),
                                      source=str(f)) from None
        out[str(role)] = items
    return out
