"""Issuing a complete, profile-conformant ISO 15118 test PKI (both editions).

:func:`issue_test_pki` builds every root, Sub-CA and leaf of :data:`pki.profiles.ROLES` for ISO 15118-2
(secp256r1/ecdsa-with-SHA256, ≤ 800 B per certificate) or -20 (secp521r1/ecdsa-with-SHA512, or Ed448),
following :mod:`pki.profiles` to the letter (critical basicConstraints/keyUsage, pathLen 1/0, the
subject domainComponent, CN = eMAID / PCID, SKI/AKI, an AIA OCSP URL on every non-root).

Determinism: with ``seed`` every key and serial is derived from it and every time from ``now``; with a
``cryptography`` that offers RFC 6979 ECDSA (≥ 45) the DER is byte-identical between runs
(:data:`DETERMINISTIC_DER`), otherwise only the ECDSA signature bytes differ.

For a simulated backend, :func:`issue_leaf` / :func:`issue_contract` / ... issue one fresh leaf under a
given Sub-CA. :mod:`pki._broken` builds the "breaks exactly one rule" corpus from a :class:`TestPKI`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping, NamedTuple

from cryptography import x509

from ._builder import DETERMINISTIC_DER, KeyFactory, PrivateKey, PublicKey, build_certificate, key_algorithm
from ._specs import ISSUER_OF, ROLE_CN, ChainCase, _spec, private_key_pem
from .errors import PKIError
from .profiles import (
    CHAIN_PROFILES, ROLES, ROOT_OF_STORE_ROLE, CertProfile, cert_profile, chain_profile, is_valid_emaid,
    is_valid_pcid,
)

__all__ = [
    "DETERMINISTIC_DER",
    "DEFAULT_EMAID",
    "DEFAULT_PCID",
    "IssueError",
    "IssuedCertificate",
    "ChainCase",
    "ContractBundle",
    "TestPKI",
    "issue_test_pki",
    "issue_leaf",
    "issue_contract",
    "issue_secc",
    "issue_cps",
    "issue_oem_provisioning",
    "issue_vehicle",
    "ISSUER_OF",
    "broken_chains",
    "private_key_pem",
]

DEFAULT_EMAID = "DEPLGC000000011"
DEFAULT_PCID = "PLUGCHARGEPCID0001"

class IssueError(PKIError, ValueError):
    """Bad input to the test-PKI issuer (unknown role, invalid eMAID/PCID, wrong key type, ...)."""


class IssuedCertificate(NamedTuple):
    """A freshly issued certificate (DER) and its private key (``None`` if the caller supplied only a public key)."""

    der: bytes
    key: PrivateKey | None


class ContractBundle(NamedTuple):
    """What a simulated MO/CPS backend returns for CertificateInstallation/UpdateRes.

    ``contract`` (DER, CN = ``emaid``) with its ``sub_cas`` (MO Sub-CA 2, Sub-CA 1: the
    ContractSignatureCertChain), the encrypted private key and the ephemeral DH public key for the
    EV (:func:`pki.keytransport.encrypt_contract_key`), and the private ``key`` itself for test
    assertions (the object's repr shows no key material).
    """

    contract: bytes
    sub_cas: tuple[bytes, ...]
    emaid: str
    encrypted_private_key: bytes
    dh_public_key: bytes
    key: PrivateKey


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc).replace(microsecond=0)


def issue_leaf(
    role: str,
    *,
    iso: int,
    issuer_certificate: bytes,
    issuer_key: PrivateKey,
    cn: str,
    now: datetime,
    key: PrivateKey | None = None,
    public_key: PublicKey | None = None,
    serial: int | None = None,
    validity: timedelta | None = None,
) -> IssuedCertificate:
    """Issue one certificate of ``role`` under ``issuer_certificate`` (as a backend or OEM would).

    A fresh key on the profile's default algorithm is generated unless ``key`` (or only ``public_key``,
    e.g. from a CSR) is given. ``now`` fixes notBefore = now − 1 day; the validity defaults to the
    profile's. Raises :class:`IssueError` on a role/edition mismatch or a key the profile forbids.
    """
    try:
        profile = cert_profile(f"iso{iso}-{role}")
    except KeyError as exc:
        raise IssueError(str(exc)) from None
    if profile.self_signed:
        raise IssueError(f"{role} is a root; use issue_test_pki")
    if key is None and public_key is None:
        algorithm = key_algorithm(issuer_key) if key_algorithm(issuer_key) in profile.key_algorithms else profile.default_key_algorithm
        key = KeyFactory(None).key("fresh", algorithm)
    pub = public_key if public_key is not None else key.public_key()  # type: ignore[union-attr]
    if key_algorithm(pub) not in profile.key_algorithms:
        raise IssueError(f"{profile.name} does not permit a {key_algorithm(pub)} key")
    try:
        issuer = x509.load_der_x509_certificate(issuer_certificate)
    except ValueError as exc:
        raise IssueError(f"issuer certificate is not DER: {exc}") from None
    spec = _spec(profile, cn=cn, public_key=pub, issuer_name=issuer.subject, issuer_key=issuer_key,
                 serial=serial if serial is not None else KeyFactory(None).serial("fresh"), now=_utc(now),
                 validity=validity)
    return IssuedCertificate(build_certificate(spec), key)


def issue_contract(issuer_certificate: bytes, issuer_key: PrivateKey, emaid: str, *, iso: int, now: datetime,
                   **kw: object) -> IssuedCertificate:
    """Issue a contract certificate (CN = ``emaid`` [V2G2-108]) under an MO Sub-CA 2."""
    if not is_valid_emaid(emaid):
        raise IssueError(f"not a valid eMAID: {emaid!r}")
    return issue_leaf("contract-leaf", iso=iso, issuer_certificate=issuer_certificate, issuer_key=issuer_key,
                      cn=emaid, now=now, **kw)  # type: ignore[arg-type]


def issue_secc(issuer_certificate: bytes, issuer_key: PrivateKey, *, iso: int, now: datetime, cn: str = "SECCCert",
               **kw: object) -> IssuedCertificate:
    """Issue an SECC certificate (DC=CPO [V2G2-925]) under a CPO Sub-CA 2."""
    return issue_leaf("secc-leaf", iso=iso, issuer_certificate=issuer_certificate, issuer_key=issuer_key, cn=cn,
                      now=now, **kw)  # type: ignore[arg-type]


def issue_cps(issuer_certificate: bytes, issuer_key: PrivateKey, *, iso: int, now: datetime, cn: str = "CPSLeafCert",
              **kw: object) -> IssuedCertificate:
    """Issue a CPS leaf (signs the contract bundle) under a CPS Sub-CA 2."""
    return issue_leaf("cps-leaf", iso=iso, issuer_certificate=issuer_certificate, issuer_key=issuer_key, cn=cn,
                      now=now, **kw)  # type: ignore[arg-type]


def issue_oem_provisioning(issuer_certificate: bytes, issuer_key: PrivateKey, pcid: str, *, iso: int, now: datetime,
                           **kw: object) -> IssuedCertificate:
    """Issue an OEM provisioning certificate (CN = ``pcid``) under an OEM Sub-CA 2."""
    if not is_valid_pcid(pcid):
        raise IssueError(f"not a valid PCID: {pcid!r}")
    return issue_leaf("oem-provisioning-leaf", iso=iso, issuer_certificate=issuer_certificate, issuer_key=issuer_key,
                      cn=pcid, now=now, **kw)  # type: ignore[arg-type]


def issue_vehicle(issuer_certificate: bytes, issuer_key: PrivateKey, *, now: datetime, cn: str = "VehicleCert",
                  **kw: object) -> IssuedCertificate:
    """Issue an ISO 15118-20 vehicle (TLS client) certificate under an OEM Sub-CA 2."""
    return issue_leaf("vehicle-leaf", iso=20, issuer_certificate=issuer_certificate, issuer_key=issuer_key, cn=cn,
                      now=now, **kw)  # type: ignore[arg-type]


@dataclass
class TestPKI:
    """A complete test PKI of one edition: certificates (DER) and private keys by role.

    ``certificates``/``keys`` map every role of the edition (see :data:`pki.profiles.ROLES`; the
    vehicle certificate only for -20) to DER / private key. Keys never appear in ``repr``.
    """

    __test__ = False  # not a pytest test class

    iso: int
    algorithm: str
    now: datetime
    emaid: str
    pcid: str
    seed: int | None
    certificates: Mapping[str, bytes] = field(repr=False)
    keys: Mapping[str, PrivateKey] = field(repr=False)
    serials: Mapping[str, int] = field(repr=False, default_factory=dict)

    @property
    def roles(self) -> tuple[str, ...]:
        """Roles present in this PKI, in PKI order."""
        return tuple(r for r in ROLES if r in self.certificates)

    def cert(self, role: str) -> bytes:
        """DER of the certificate of ``role``."""
        try:
            return self.certificates[role]
        except KeyError:
            raise IssueError(f"no {role!r} certificate in this ISO 15118-{self.iso} PKI") from None

    def key(self, role: str) -> PrivateKey:
        """Private key of ``role``."""
        try:
            return self.keys[role]
        except KeyError:
            raise IssueError(f"no {role!r} key in this ISO 15118-{self.iso} PKI") from None

    def profile(self, role: str) -> CertProfile:
        """Certificate profile of ``role`` in this edition."""
        return cert_profile(f"iso{self.iso}-{role}")

    def store_roots(self) -> dict[str, tuple[bytes, ...]]:
        """Trust-store content by store role: ``{"v2g": (...,), "mo": (...,), "oem": (...,)}``."""
        return {store: (self.certificates[root],) for store, root in ROOT_OF_STORE_ROLE.items()}

    def chain(self, profile: str, *, anchor: str | None = None) -> ChainCase:
        """The valid chain for chain profile ``profile`` (e.g. ``"iso2-contract"``) with both Sub-CAs.

        ``anchor`` picks the store role the Sub-CAs hang off; only the default (the profile's first
        anchor role) is issued here — the contract chain is issued under the MO root.
        """
        cp = chain_profile(profile)
        if cp.iso != self.iso:
            raise IssueError(f"{profile} is not an ISO 15118-{self.iso} profile")
        if anchor not in (None, cp.anchor_roles[0]):
            raise IssueError(f"this PKI anchors {profile} at {cp.anchor_roles[0]!r} only")
        return ChainCase(
            self.certificates[cp.leaf.role],
            tuple(self.certificates[p.role] for p in cp.sub_ca_profiles),
            self.store_roots(),
            profile,
        )

    def chains(self) -> dict[str, ChainCase]:
        """Valid chains for every chain profile of this edition."""
        return {name: self.chain(name) for name, cp in CHAIN_PROFILES.items() if cp.iso == self.iso}

    # ---- backend helpers -------------------------------------------------------------------------
    def issue_contract(self, emaid: str, *, key: PrivateKey | None = None, now: datetime | None = None,
                       serial: int | None = None) -> IssuedCertificate:
        """Issue a fresh contract certificate for ``emaid`` under this PKI's MO Sub-CA 2."""
        return issue_contract(self.cert("mo-sub2"), self.key("mo-sub2"), emaid, iso=self.iso, now=now or self.now,
                              key=key, serial=serial)

    def contract_bundle(self, emaid: str, receiver_certificate: bytes, *, pcid: str | None = None,
                        now: datetime | None = None) -> ContractBundle:
        """Act as the backend: issue a fresh contract for ``emaid`` and encrypt its key for the EV.

        ``receiver_certificate`` is the EV's OEM provisioning certificate (installation) or its old
        contract certificate (update) [V2G2-820/821]; its public key is the ECDH peer. For -20 the
        AAD needs the PCID: ``pcid`` if given, else the receiver's CN when it is a PCID, else this
        PKI's PCID.
        """
        from cryptography.hazmat.primitives.asymmetric import ec as _ec

        from .keytransport import encrypt_contract_key

        try:
            receiver = x509.load_der_x509_certificate(receiver_certificate)
        except ValueError as exc:
            raise IssueError(f"receiver certificate is not DER: {exc}") from None
        peer = receiver.public_key()
        if not isinstance(peer, _ec.EllipticCurvePublicKey):
            raise IssueError("the receiver certificate must carry an EC key (Ed448 needs an X448 alternate key)")
        issued = self.issue_contract(emaid, now=now)
        assert issued.key is not None
        if pcid is None:
            cns = receiver.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
            cn = str(cns[0].value) if cns else ""
            pcid = cn if is_valid_pcid(cn) else self.pcid
        ct, dh = encrypt_contract_key(issued.key, peer, iso=self.iso, contract_certificate=issued.der,  # type: ignore[arg-type]
                                      pcid=pcid)
        return ContractBundle(issued.der, (self.cert("mo-sub2"), self.cert("mo-sub1")), emaid, ct, dh, issued.key)

    def issue_oem_provisioning(self, pcid: str, *, key: PrivateKey | None = None,
                               now: datetime | None = None) -> IssuedCertificate:
        """Issue a fresh OEM provisioning certificate for ``pcid`` under this PKI's OEM Sub-CA 2."""
        return issue_oem_provisioning(self.cert("oem-sub2"), self.key("oem-sub2"), pcid, iso=self.iso,
                                      now=now or self.now, key=key)

    def write(self, directory: str | os.PathLike[str]) -> Path:
        """Write DER + PEM certificates, PKCS#8 PEM keys (mode 0600) and ``manifest.json``; return the manifest path.

        Files: ``<role>.der``, ``<role>.pem``, ``<role>.key.pem``, and the anchors again as
        ``trust/<store-role>/<role>.pem`` for ``TrustStore.from_directory``.
        """
        from ._manifest import write_pki

        return write_pki(self, Path(directory))


def issue_test_pki(
    iso: int = 2,
    *,
    seed: int | None = None,
    now: datetime | None = None,
    emaid: str = DEFAULT_EMAID,
    pcid: str = DEFAULT_PCID,
    algorithm: str | None = None,
    oem_provisioning_algorithm: str | None = None,
) -> TestPKI:
    """Issue a complete test PKI for ISO 15118-``iso`` (2 or 20).

    Args:
        iso: 2 (secp256r1) or 20 (secp521r1 by default, ``algorithm="ed448"`` for Ed448).
        seed: makes keys and serials deterministic (see module docstring); ``None`` = random.
        now: the reference time (default: the current time; pass it for reproducible output); every
            certificate is valid from ``now - 1 day``.
        emaid: contract CN (must be a valid eMAID); pcid: OEM provisioning CN (valid PCID).
        oem_provisioning_algorithm: key algorithm of the OEM provisioning leaf only (default: ``algorithm``).
            An Ed448 key signs but cannot agree keys, and the -20 schema has no room for the X448
            variant of the contract-key transport (DHPublicKey is fixed at 133 bytes), so an
            Ed448 PKI that installs contracts gives the OEM provisioning leaf a ``"secp521r1"`` key
            (it is still issued and signed by the Ed448 OEM Sub-CA 2; see :mod:`pki.keytransport`).
    """
    if iso not in (2, 20):
        raise IssueError(f"iso must be 2 or 20, not {iso!r}")
    if not is_valid_emaid(emaid):
        raise IssueError(f"not a valid eMAID: {emaid!r}")
    if not is_valid_pcid(pcid):
        raise IssueError(f"not a valid PCID: {pcid!r}")
    algo = algorithm or ("secp256r1" if iso == 2 else "secp521r1")
    role_algo = {"oem-provisioning-leaf": oem_provisioning_algorithm or algo}
    now = _utc(now or datetime.now(timezone.utc))
    factory = KeyFactory(seed)
    certs: dict[str, bytes] = {}
    keys: dict[str, PrivateKey] = {}
    serials: dict[str, int] = {}
    names: dict[str, x509.Name] = {}
    for role in ROLES:
        try:
            profile = cert_profile(f"iso{iso}-{role}")
        except KeyError:
            continue  # e.g. vehicle-leaf in -2
        key_algo = role_algo.get(role, algo)
        if key_algo not in profile.key_algorithms:
            raise IssueError(f"{profile.name} does not permit {key_algo}")
        key = factory.key(f"iso{iso}/{key_algo}/{role}", key_algo)
        serial = factory.serial(f"iso{iso}/{role}")
        issuer_role = ISSUER_OF[role]
        cn = {"contract-leaf": emaid, "oem-provisioning-leaf": pcid}.get(role, ROLE_CN.get(role, role))
        spec = _spec(profile, cn=cn, public_key=key.public_key(),
                     issuer_name=None if issuer_role is None else names[issuer_role],
                     issuer_key=key if issuer_role is None else keys[issuer_role], serial=serial, now=now)
        names[role] = spec.subject
        certs[role] = build_certificate(spec)
        keys[role] = key
        serials[role] = serial
        if len(certs[role]) > profile.max_der_size:  # pragma: no cover - guards the profile data
            raise IssueError(f"{profile.name}: issued {len(certs[role])} B > {profile.max_der_size} B")
    return TestPKI(iso=iso, algorithm=algo, now=now, emaid=emaid, pcid=pcid, seed=seed, certificates=certs,
                   keys=keys, serials=serials)


def broken_chains(iso: int = 2, *, pki: TestPKI | None = None, seed: int = 15118) -> dict[str, ChainCase]:
    """Chains that each break exactly one profile rule, keyed by rule name (see :mod:`pki._broken`).

    Each value is a :class:`ChainCase` whose ``reason`` is the expected ``pki.Reason`` member name;
    validate at ``pki.now`` (default PKI: ``issue_test_pki(iso, seed=seed)`` at 2026-06-01T00:00Z).
    """
    from ._broken import broken_chains as _broken_chains

    if pki is None:
        pki = issue_test_pki(iso, seed=seed, now=datetime(2026, 6, 1, tzinfo=timezone.utc))
    return _broken_chains(iso, pki=pki, seed=seed)
