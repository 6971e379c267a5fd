"""ISO 15118 certificate and chain profiles, as data.

Everything a validator or an issuer needs to know about the -2 (2014, Annex F) and -20 (2022, Annex B)
certificate profiles lives here as frozen dataclasses; no code path in this package hard-codes a
profile rule elsewhere. Sources are summarised in ``shared/notes/iso15118-security.md`` §2/§3/§7;
requirement numbers are quoted where a public source gives them.

Names used throughout:

* **role** – the position of a certificate in the PKI, e.g. ``"v2g-root"``, ``"cpo-sub2"``,
  ``"contract-leaf"`` (see :data:`ROLES`).
* **certificate profile** – ``CertProfile`` named ``"iso<2|20>-<role>"``, e.g. ``"iso2-contract-leaf"``.
* **chain profile** – ``ChainProfile`` named as in the issue, e.g. ``"iso2-contract"``, saying which
  leaf, which Sub-CAs and which trust-store roles may anchor the chain.
* **store role** – the key of a :class:`TrustStore` group: ``"v2g"``, ``"mo"``, ``"oem"``.

Key-usage bits are RFC 5280 names (``"digitalSignature"``, ``"nonRepudiation"``, ...); every profile
also exposes them as an int bit mask (bit *i* = KeyUsage bit *i* of the BIT STRING, digitalSignature = 0)
so a compiled checker can test them without string handling.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Mapping, NamedTuple

from .errors import UnknownProfileError

__all__ = [
    "KU_BITS",
    "OID_ID_EC_PUBLIC_KEY",
    "OID_ED448",
    "OID_SECP256R1",
    "OID_SECP521R1",
    "OID_ECDSA_WITH_SHA256",
    "OID_ECDSA_WITH_SHA512",
    "OID_DOMAIN_COMPONENT",
    "OID_COMMON_NAME",
    "EXT_BASIC_CONSTRAINTS",
    "EXT_KEY_USAGE",
    "EXT_SUBJECT_KEY_IDENTIFIER",
    "EXT_AUTHORITY_KEY_IDENTIFIER",
    "EXT_CRL_DISTRIBUTION_POINTS",
    "EXT_AUTHORITY_INFO_ACCESS",
    "EXT_CERTIFICATE_POLICIES",
    "EXT_EXTENDED_KEY_USAGE",
    "EXT_SUBJECT_ALT_NAME",
    "KEY_ALGORITHM_OIDS",
    "SIGNATURE_ALGORITHM_OIDS",
    "ValidityRange",
    "CertProfile",
    "ChainProfile",
    "ROLES",
    "CERT_PROFILES",
    "CHAIN_PROFILES",
    "STORE_ROLES",
    "ROOT_OF_STORE_ROLE",
    "cert_profile",
    "chain_profile",
    "key_usage_mask",
    "key_usage_names",
    "is_valid_emaid",
    "normalize_emaid",
    "is_valid_pcid",
]

# --------------------------------------------------------------------------------------------
# OIDs (dotted strings)
# --------------------------------------------------------------------------------------------
OID_ID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_SECP256R1 = "1.2.840.10045.3.1.7"
OID_SECP521R1 = "1.3.132.0.35"
OID_ED448 = "1.3.101.113"  # both the key algorithm and the signature algorithm (RFC 8410)
OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
OID_ECDSA_WITH_SHA512 = "1.2.840.10045.4.3.4"
OID_DOMAIN_COMPONENT = "0.9.2342.19200300.100.1.25"
OID_COMMON_NAME = "2.5.4.3"

EXT_SUBJECT_KEY_IDENTIFIER = "2.5.29.14"
EXT_KEY_USAGE = "2.5.29.15"
EXT_SUBJECT_ALT_NAME = "2.5.29.17"
EXT_BASIC_CONSTRAINTS = "2.5.29.19"
EXT_CRL_DISTRIBUTION_POINTS = "2.5.29.31"
EXT_CERTIFICATE_POLICIES = "2.5.29.32"
EXT_AUTHORITY_KEY_IDENTIFIER = "2.5.29.35"
EXT_EXTENDED_KEY_USAGE = "2.5.29.37"
EXT_AUTHORITY_INFO_ACCESS = "1.3.6.1.5.5.7.1.1"

#: key-algorithm name -> (algorithm OID, curve OID or None)
KEY_ALGORITHM_OIDS: Mapping[str, tuple[str, str | None]] = MappingProxyType(
    {
        "secp256r1": (OID_ID_EC_PUBLIC_KEY, OID_SECP256R1),
        "secp521r1": (OID_ID_EC_PUBLIC_KEY, OID_SECP521R1),
        "ed448": (OID_ED448, None),
    }
)
#: signature-algorithm name -> OID
SIGNATURE_ALGORITHM_OIDS: Mapping[str, str] = MappingProxyType(
    {
        "ecdsa-with-SHA256": OID_ECDSA_WITH_SHA256,
        "ecdsa-with-SHA512": OID_ECDSA_WITH_SHA512,
        "ed448": OID_ED448,
    }
)

#: RFC 5280 KeyUsage bit names in bit order (index = bit number in the BIT STRING).
KU_BITS: tuple[str, ...] = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)


def key_usage_mask(names: frozenset[str] | set[str] | tuple[str, ...]) -> int:
    """Bit mask (bit i = KeyUsage bit i) for a set of RFC 5280 key-usage names."""
    mask = 0
    for n in names:
        try:
            mask |= 1 << KU_BITS.index(n)
        except ValueError:
            raise ValueError(f"unknown keyUsage bit name {n!r}") from None
    return mask


def key_usage_names(mask: int) -> frozenset[str]:
    """Inverse of :func:`key_usage_mask`."""
    return frozenset(n for i, n in enumerate(KU_BITS) if mask >> i & 1)


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidityRange:
    """Validity period of a profile.

    ``minimum``/``maximum`` is the range the standard recommends (``None`` = owner's choice); it is
    informational (the RISE/Hubject comments quote it), a validator need not enforce it. ``default``
    is the period the test-PKI issuer uses (EcoG/RISE test values).
    """

    default: timedelta
    minimum: timedelta | None = None
    maximum: timedelta | None = None
    source: str = ""


_SIG_OF_KEY = {"secp256r1": "ecdsa-with-SHA256", "secp521r1": "ecdsa-with-SHA512", "ed448": "ed448"}


@dataclass(frozen=True)
class CertProfile:
    """The profile of one certificate role in one ISO 15118 edition.

    Attributes:
        name: ``"iso<edition>-<role>"``.
        iso: 2 or 20.
        role: role name, a member of :data:`ROLES`.
        is_ca: required value of basicConstraints cA.
        path_len: required pathLenConstraint (``None`` = absent; for leaves always ``None``).
        self_signed: the certificate is a root (subject == issuer, signed by its own key).
        key_algorithms: permitted subject key algorithms (``"secp256r1"``, ``"secp521r1"``, ``"ed448"``).
        signature_algorithms: permitted certificate signature algorithms (tbs and outer must match).
        key_usage_required: KeyUsage bits that must be set (KeyUsage must be present and critical).
        key_usage_permitted: bits that may be set (superset of the required ones); others ⇒ reject.
        domain_components: permitted subject domainComponent values (empty = no rule).
        dc_required: the subject must carry one of ``domain_components``.
        cn_kind: ``"emaid"`` (CN is the eMAID [V2G2-108]), ``"pcid"`` (CN is the PCID [V2G2-933]) or None.
        max_der_size: maximum DER length of the certificate in bytes.
        version: required X.509 version number (3 ⇒ v3, encoded as INTEGER 2).
        required_critical_extensions: extension OIDs that must be present and critical.
        noncritical_extensions: known extensions that may be present but must be non-critical.
        validity: recommended/default validity period.
        requirements: requirement ids backing this profile.
        notes: free text (what is unverified).
    """

    name: str
    iso: int
    role: str
    is_ca: bool
    path_len: int | None
    self_signed: bool
    key_algorithms: tuple[str, ...]
    signature_algorithms: tuple[str, ...]
    key_usage_required: frozenset[str]
    key_usage_permitted: frozenset[str]
    domain_components: tuple[str, ...]
    dc_required: bool
    cn_kind: str | None
    max_der_size: int
    validity: ValidityRange
    version: int = 3
    required_critical_extensions: frozenset[str] = frozenset({EXT_BASIC_CONSTRAINTS, EXT_KEY_USAGE})
    noncritical_extensions: frozenset[str] = frozenset(
        {
            EXT_SUBJECT_KEY_IDENTIFIER,
            EXT_AUTHORITY_KEY_IDENTIFIER,
            EXT_CRL_DISTRIBUTION_POINTS,
            EXT_AUTHORITY_INFO_ACCESS,
            EXT_CERTIFICATE_POLICIES,
            EXT_EXTENDED_KEY_USAGE,
            EXT_SUBJECT_ALT_NAME,
        }
    )
    requirements: tuple[str, ...] = ()
    notes: str = ""
    key_usage_required_mask: int = field(init=False, repr=False, compare=False)
    key_usage_permitted_mask: int = field(init=False, repr=False, compare=False)
    key_algorithm_oids: frozenset[tuple[str, str | None]] = field(init=False, repr=False, compare=False)
    signature_algorithm_oids: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.key_usage_required <= self.key_usage_permitted:
            raise ValueError(f"{self.name}: required keyUsage bits must be permitted")
        object.__setattr__(self, "key_usage_required_mask", key_usage_mask(self.key_usage_required))
        object.__setattr__(self, "key_usage_permitted_mask", key_usage_mask(self.key_usage_permitted))
        object.__setattr__(self, "key_algorithm_oids", frozenset(KEY_ALGORITHM_OIDS[a] for a in self.key_algorithms))
        object.__setattr__(
            self, "signature_algorithm_oids", frozenset(SIGNATURE_ALGORITHM_OIDS[a] for a in self.signature_algorithms)
        )

    @property
    def default_key_algorithm(self) -> str:
        """The key algorithm the test-PKI issuer uses by default (the first permitted one)."""
        return self.key_algorithms[0]

    @staticmethod
    def signature_algorithm_for_key(key_algorithm: str) -> str:
        """The signature algorithm a key of ``key_algorithm`` produces (its issuer's choice)."""
        return _SIG_OF_KEY[key_algorithm]


@dataclass(frozen=True)
class ChainProfile:
    """A chain to validate: leaf profile, Sub-CA profiles and the trust-store roles that may anchor it.

    ``sub_ca_profiles[0]`` is the Sub-CA directly above the leaf (Sub-CA 2, pathLen 0),
    ``sub_ca_profiles[1]`` the one above it (Sub-CA 1, pathLen 1). With one Sub-CA present it is
    Sub-CA 2 directly under the root (Sub-CA 1 is optional); a private environment may have none
    (``min_sub_cas`` = 0). At most ``max_sub_cas`` (2) Sub-CAs [V2G2-009].
    ``root_profiles`` maps each anchor role (store role) to the profile of the root of that role.
    """

    name: str
    iso: int
    leaf: CertProfile
    sub_ca_profiles: tuple[CertProfile, ...]
    anchor_roles: tuple[str, ...]
    root_profiles: Mapping[str, CertProfile]
    max_sub_cas: int = 2
    min_sub_cas: int = 0
    requirements: tuple[str, ...] = ()
    notes: str = ""

    @property
    def max_der_size(self) -> int:
        """Per-certificate DER size limit of this edition."""
        return self.leaf.max_der_size

    def sub_ca_profile(self, index_above_leaf: int, count: int) -> CertProfile:
        """Profile of the Sub-CA ``index_above_leaf`` positions above the leaf in a chain with ``count`` Sub-CAs.

        With two Sub-CAs: index 0 → Sub-CA 2, index 1 → Sub-CA 1. With one: index 0 → Sub-CA 2.
        """
        if not 0 <= index_above_leaf < count <= self.max_sub_cas:
            raise ValueError(f"{self.name}: no Sub-CA position {index_above_leaf} in a chain of {count} Sub-CAs")
        return self.sub_ca_profiles[index_above_leaf]


# --------------------------------------------------------------------------------------------
# The profile tables
# --------------------------------------------------------------------------------------------
#: store roles of a TrustStore
STORE_ROLES: tuple[str, ...] = ("v2g", "mo", "oem")

_CA_KU = frozenset({"keyCertSign", "cRLSign"})
#: CAs may additionally carry digitalSignature/nonRepudiation (MO Sub-CA 2 must: SalesTariff signing).
_CA_KU_PERMITTED = _CA_KU | {"digitalSignature", "nonRepudiation"}

_D = timedelta(days=1)
_YEAR = 365 * _D
_MONTH = 30 * _D


@dataclass(frozen=True)
class _RoleSpec:
    role: str
    is_ca: bool
    path_len: int | None
    self_signed: bool
    ku_required: frozenset[str]
    ku_permitted: frozenset[str]
    dcs: tuple[str, ...]
    dc_required: bool
    cn_kind: str | None
    validity: ValidityRange
    requirements: tuple[str, ...] = ()
    notes: str = ""
    iso: tuple[int, ...] = (2, 20)


_ROLE_SPECS: tuple[_RoleSpec, ...] = (
    _RoleSpec("v2g-root", True, None, True, _CA_KU, _CA_KU_PERMITTED, ("V2G",), True, None,
              ValidityRange(40 * _YEAR + 10 * _D, None, 40 * _YEAR + 10 * _D, "[V2G2-011] 40 years"),
              ("V2G2-011", "V2G2-878")),
    _RoleSpec("cpo-sub1", True, 1, False, _CA_KU, _CA_KU_PERMITTED, ("V2G",), True, None,
              ValidityRange(1460 * _D, None, None, "owner's choice; EcoG 1460 d")),
    _RoleSpec("cpo-sub2", True, 0, False, _CA_KU, _CA_KU_PERMITTED, ("V2G",), True, None,
              ValidityRange(365 * _D, 1 * _YEAR, 2 * _YEAR + _D, "1-2 years (RISE)")),
    _RoleSpec("secc-leaf", False, None, False, frozenset({"digitalSignature", "keyAgreement"}),
              frozenset({"digitalSignature", "keyAgreement"}), ("CPO",), True, None,
              ValidityRange(60 * _D, 2 * _MONTH, 3 * _MONTH + 2 * _D, "2-3 months (RISE)"),
              ("V2G2-925", "V2G2-867"), "-20: DC may be CPO or CSO (EVerest PR #2683)"),
    _RoleSpec("cps-sub1", True, 1, False, _CA_KU, _CA_KU_PERMITTED, ("CPS",), True, None,
              ValidityRange(1460 * _D, None, None, "owner's choice; EcoG 1460 d")),
    _RoleSpec("cps-sub2", True, 0, False, _CA_KU, _CA_KU_PERMITTED, ("CPS",), True, None,
              ValidityRange(730 * _D, 1 * _YEAR, 2 * _YEAR + _D, "1-2 years (RISE)")),
    _RoleSpec("cps-leaf", False, None, False, frozenset({"digitalSignature"}), frozenset({"digitalSignature"}),
              ("CPS",), True, None,
              ValidityRange(90 * _D, 2 * _MONTH, 3 * _MONTH + 2 * _D, "2-3 months (RISE)"), ("V2G2-925",)),
    _RoleSpec("mo-root", True, None, True, _CA_KU, _CA_KU_PERMITTED, ("MO",), True, None,
              ValidityRange(40 * _YEAR + 10 * _D, None, None, "owner's choice")),
    _RoleSpec("mo-sub1", True, 1, False, _CA_KU, _CA_KU_PERMITTED, ("MO",), True, None,
              ValidityRange(1460 * _D, None, None, "owner's choice; EcoG 1460 d")),
    _RoleSpec("mo-sub2", True, 0, False, _CA_KU | {"digitalSignature", "nonRepudiation"}, _CA_KU_PERMITTED,
              ("MO",), True, None, ValidityRange(1460 * _D, None, None, "EcoG 1460 d"),
              notes="signs SalesTariff, hence digitalSignature+nonRepudiation (RISE)"),
    _RoleSpec("contract-leaf", False, None, False, frozenset({"digitalSignature", "nonRepudiation", "keyAgreement"}),
              frozenset({"digitalSignature", "nonRepudiation", "keyEncipherment", "keyAgreement"}),
              ("MO",), False, "emaid",
              ValidityRange(730 * _D, 28 * _D, 2 * _YEAR + _D, "4 weeks-2 years (RISE)"),
              ("V2G2-108", "V2G2-822", "V2G2-867"),
              "Table F.4 marks DS, NR, KE, KA; KE is tolerated but not required (meaningless for EC keys); "
              "KA required for CertificateUpdate key delivery [V2G2-822]; DC optional (HUPE)"),
    _RoleSpec("oem-root", True, None, True, _CA_KU, _CA_KU_PERMITTED, ("OEM",), True, None,
              ValidityRange(40 * _YEAR + 10 * _D, None, None, "owner's choice")),
    _RoleSpec("oem-sub1", True, 1, False, _CA_KU, _CA_KU_PERMITTED, ("OEM",), True, None,
              ValidityRange(1460 * _D, None, None, "owner's choice; EcoG 1460 d")),
    _RoleSpec("oem-sub2", True, 0, False, _CA_KU, _CA_KU_PERMITTED, ("OEM",), True, None,
              ValidityRange(1460 * _D, None, None, "owner's choice; EcoG 1460 d")),
    _RoleSpec("oem-provisioning-leaf", False, None, False, frozenset({"digitalSignature", "keyAgreement"}),
              frozenset({"digitalSignature", "keyAgreement"}), ("OEM",), True, "pcid",
              ValidityRange(1460 * _D, None, None, "OEM's choice; EcoG 1460 d"),
              ("V2G2-822", "V2G2-933", "V2G2-867"),
              "PCID syntax (18 capital alnum) is quoted from -20; assumed for -2 (unverified)"),
    _RoleSpec("vehicle-leaf", False, None, False, frozenset({"digitalSignature"}),
              frozenset({"digitalSignature", "keyAgreement"}), ("OEM",), False, None,
              ValidityRange(1460 * _D, None, None, "OEM's choice"),
              ("V2G20-2430", "V2G20-2431", "V2G20-2432"),
              "-20 only (mutual TLS client cert, Annex B.8); issued under the OEM Sub-CAs and anchored at "
              "the OEM root (EcoG loads the OEM root as client CA); exact DC/CN rules unverified",
              iso=(20,)),
)

#: every role name, in PKI order
ROLES: tuple[str, ...] = tuple(s.role for s in _ROLE_SPECS)

class _Edition(NamedTuple):
    keys: tuple[str, ...]
    sigs: tuple[str, ...]
    size: int
    reqs: tuple[str, ...]


_EDITION = {
    2: _Edition(("secp256r1",), ("ecdsa-with-SHA256",), 800, ("V2G2-006", "V2G2-007", "V2G2-010")),
    20: _Edition(("secp521r1", "ed448"), ("ecdsa-with-SHA512", "ed448"), 1600, ("V2G20-2674", "V2G20-2319")),
}


def _for_edition(reqs: tuple[str, ...], iso: int) -> tuple[str, ...]:
    """Keep only the requirement ids of edition ``iso`` (V2G2-* for -2, V2G20-* for -20)."""
    prefix = "V2G2-" if iso == 2 else "V2G20-"
    return tuple(r for r in reqs if r.startswith(prefix))


def _build_cert_profiles() -> dict[str, CertProfile]:
    out: dict[str, CertProfile] = {}
    for iso in (2, 20):
        ed = _EDITION[iso]
        for s in _ROLE_SPECS:
            if iso not in s.iso:
                continue
            dcs = s.dcs
            if iso == 20 and s.role == "secc-leaf":
                dcs = ("CPO", "CSO")
            name = f"iso{iso}-{s.role}"
            out[name] = CertProfile(
                name=name,
                iso=iso,
                role=s.role,
                is_ca=s.is_ca,
                path_len=s.path_len,
                self_signed=s.self_signed,
                key_algorithms=ed.keys,
                signature_algorithms=ed.sigs,
                key_usage_required=frozenset(s.ku_required),
                key_usage_permitted=frozenset(s.ku_permitted),
                domain_components=dcs,
                dc_required=s.dc_required,
                cn_kind=s.cn_kind,
                max_der_size=ed.size,
                validity=s.validity,
                requirements=ed.reqs + _for_edition(s.requirements, iso),
                notes=s.notes,
            )
    return out


#: certificate profiles by name (``"iso2-v2g-root"`` ... ``"iso20-vehicle-leaf"``)
CERT_PROFILES: Mapping[str, CertProfile] = MappingProxyType(_build_cert_profiles())

# chain name suffix -> (leaf role, (sub-CA2 role, sub-CA1 role), anchor store roles, requirements)
_CHAINS: dict[str, tuple[str, tuple[str, str], tuple[str, ...], tuple[str, ...]]] = {
    "contract": ("contract-leaf", ("mo-sub2", "mo-sub1"), ("mo", "v2g"), ("V2G2-925",)),
    "secc": ("secc-leaf", ("cpo-sub2", "cpo-sub1"), ("v2g",), ("V2G2-925",)),
    "oem-provisioning": ("oem-provisioning-leaf", ("oem-sub2", "oem-sub1"), ("oem",), ()),
    "cps": ("cps-leaf", ("cps-sub2", "cps-sub1"), ("v2g",), ("V2G2-925",)),
    "vehicle": ("vehicle-leaf", ("oem-sub2", "oem-sub1"), ("oem",), ("V2G20-2432",)),
}
#: the root role of each trust-store role
ROOT_OF_STORE_ROLE: Mapping[str, str] = MappingProxyType({"v2g": "v2g-root", "mo": "mo-root", "oem": "oem-root"})


def _build_chain_profiles() -> dict[str, ChainProfile]:
    out: dict[str, ChainProfile] = {}
    for iso in (2, 20):
        for suffix, (leaf, subs, anchors, reqs) in _CHAINS.items():
            if f"iso{iso}-{leaf}" not in CERT_PROFILES:
                continue
            name = f"iso{iso}-{suffix}"
            out[name] = ChainProfile(
                name=name,
                iso=iso,
                leaf=CERT_PROFILES[f"iso{iso}-{leaf}"],
                sub_ca_profiles=tuple(CERT_PROFILES[f"iso{iso}-{r}"] for r in subs),
                anchor_roles=anchors,
                root_profiles=MappingProxyType(
                    {a: CERT_PROFILES[f"iso{iso}-{ROOT_OF_STORE_ROLE[a]}"] for a in anchors}
                ),
                requirements=_for_edition(("V2G2-009", "V2G2-885") + reqs, iso),
            )
    return out


#: chain profiles by name (``"iso2-contract"``, ``"iso2-secc"`` ... ``"iso20-vehicle"``)
CHAIN_PROFILES: Mapping[str, ChainProfile] = MappingProxyType(_build_chain_profiles())


def cert_profile(name: str) -> CertProfile:
    """Look up a certificate profile by name (``"iso2-contract-leaf"``).

    Raises :class:`pki.errors.UnknownProfileError` (a ``KeyError``) naming the known profiles."""
    try:
        return CERT_PROFILES[name]
    except KeyError:
        raise UnknownProfileError(f"unknown certificate profile {name!r}; known: {', '.join(CERT_PROFILES)}") from None


def chain_profile(name: str) -> ChainProfile:
    """Look up a chain profile by name (``"iso2-contract"``).

    Raises :class:`pki.errors.UnknownProfileError` (a ``KeyError``) naming the known ones."""
    try:
        return CHAIN_PROFILES[name]
    except KeyError:
        raise UnknownProfileError(f"unknown chain profile {name!r}; known: {', '.join(CHAIN_PROFILES)}") from None


# --------------------------------------------------------------------------------------------
# eMAID and PCID syntax
# --------------------------------------------------------------------------------------------
# eMAID [V2G2-108], ISO 15118-2 Annex H / DIN SPEC 91286: country code (2 alpha) + provider id (3 alnum)
# + eMA instance (9 alnum) [+ check digit (1 alnum)]; XSD2 eMAIDType length 14..15; may be written with
# '-' separators after the country code, the provider id and before the check digit (<= 18 chars).
_EMAID_RE = re.compile(
    r"(?P<cc>[A-Za-z]{2})(?P<s1>-?)(?P<pid>[A-Za-z0-9]{3})(?P<s2>-?)(?P<inst>[A-Za-z0-9]{9})"
    r"(?:(?P<s3>-?)(?P<chk>[A-Za-z0-9]))?"
)
# PCID: 18 capital alphanumerics (ISO 15118-20, as quoted in the AAD rule [V2G20-2492]).
_PCID_RE = re.compile(r"[A-Z0-9]{18}")


def is_valid_emaid(value: str) -> bool:
    """True when ``value`` is a syntactically valid eMAID (with or without '-' separators).

    Separators must be used consistently: either none, or after the country code and the provider id
    (and optionally before the check digit). The check digit itself is not verified.
    """
    if not isinstance(value, str) or len(value) > 18:
        return False
    m = _EMAID_RE.fullmatch(value)
    if m is None:
        return False
    if m.group("s1") != m.group("s2"):
        return False
    s3 = m.group("s3")
    if s3 and not m.group("s1"):
        return False
    return True


def normalize_emaid(value: str) -> str:
    """The eMAID in comparison form: '-' removed, upper case (EVerest compares this way)."""
    return value.replace("-", "").upper()


def is_valid_pcid(value: str) -> bool:
    """True when ``value`` is a syntactically valid PCID (18 capital letters/digits)."""
    return isinstance(value, str) and _PCID_RE.fullmatch(value) is not None
