"""The test-PKI hierarchy as data and the conformant certificate spec of each role (not public API).

Shared by the issuer (:mod:`pki.issue`), the manifest writer (:mod:`pki._manifest`) and the broken-chain
corpus (:mod:`pki._broken`), which all sit above this module: none of them imports another's caller.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Mapping, NamedTuple, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ._builder import CertSpec, PrivateKey, PublicKey, make_name
from .profiles import CertProfile

__all__ = ["ISSUER_OF", "ROLE_CN", "ChainCase", "TestPKILike", "private_key_pem"]

#: issuer role of every role (None = self-signed root)
ISSUER_OF: Mapping[str, str | None] = {
    "v2g-root": None, "cpo-sub1": "v2g-root", "cpo-sub2": "cpo-sub1", "secc-leaf": "cpo-sub2",
    "cps-sub1": "v2g-root", "cps-sub2": "cps-sub1", "cps-leaf": "cps-sub2",
    "mo-root": None, "mo-sub1": "mo-root", "mo-sub2": "mo-sub1", "contract-leaf": "mo-sub2",
    "oem-root": None, "oem-sub1": "oem-root", "oem-sub2": "oem-sub1", "oem-provisioning-leaf": "oem-sub2",
    "vehicle-leaf": "oem-sub2",
}
#: CN of every role that has a fixed one (contract and OEM provisioning leaves take the eMAID / PCID)
ROLE_CN: Mapping[str, str] = {
    "v2g-root": "V2GRootCA", "cpo-sub1": "CPOSubCA1", "cpo-sub2": "CPOSubCA2", "secc-leaf": "SECCCert",
    "cps-sub1": "CPSSubCA1", "cps-sub2": "CPSSubCA2", "cps-leaf": "CPSLeafCert",
    "mo-root": "MORootCA", "mo-sub1": "MOSubCA1", "mo-sub2": "MOSubCA2",
    "oem-root": "OEMRootCA", "oem-sub1": "OEMSubCA1", "oem-sub2": "OEMSubCA2", "vehicle-leaf": "VehicleCert",
}


class ChainCase(NamedTuple):
    """Inputs for ``verify_chain``: leaf DER, intermediates (leaf-adjacent first), store roots by role,
    chain-profile name and, for broken cases, the expected ``pki.Reason`` name (``None`` = valid)."""

    leaf: bytes
    intermediates: tuple[bytes, ...]
    roots: Mapping[str, tuple[bytes, ...]]
    profile: str
    reason: str | None = None
    description: str = ""


class TestPKILike(Protocol):
    """What the manifest writer and the broken-chain corpus read of a :class:`pki.issue.TestPKI`."""

    iso: int
    algorithm: str
    now: datetime
    emaid: str
    pcid: str
    seed: int | None
    certificates: Mapping[str, bytes]
    keys: Mapping[str, PrivateKey]
    serials: Mapping[str, int]

    @property
    def roles(self) -> tuple[str, ...]: ...
    def cert(self, role: str) -> bytes: ...
    def key(self, role: str) -> PrivateKey: ...
    def profile(self, role: str) -> CertProfile: ...
    def store_roots(self) -> dict[str, tuple[bytes, ...]]: ...


def _ocsp_url(role: str) -> str | None:
    if ISSUER_OF.get(role) is None:
        return None
    group = {"cpo": "v2g", "secc": "v2g", "cps": "v2g", "mo": "mo", "contract": "mo"}.get(role.split("-")[0], "oem")
    return f"http://ocsp.{group}.plugcharge.test/"


def _spec(
    profile: CertProfile,
    *,
    cn: str,
    public_key: PublicKey,
    issuer_name: x509.Name | None,
    issuer_key: PrivateKey,
    serial: int,
    now: datetime,
    validity: timedelta | None = None,
) -> CertSpec:
    """The conformant :class:`CertSpec` for ``profile`` (self-signed when ``issuer_name`` is None)."""
    subject = make_name(cn, profile.domain_components[0] if profile.domain_components else None)
    not_before = now - timedelta(days=1)
    return CertSpec(
        subject=subject,
        issuer=subject if issuer_name is None else issuer_name,
        public_key=public_key,
        signing_key=issuer_key,
        serial=serial,
        not_before=not_before,
        not_after=not_before + (validity or profile.validity.default),
        is_ca=profile.is_ca,
        path_len=profile.path_len,
        key_usage=profile.key_usage_required,
        aki_key=None if issuer_name is None else issuer_key.public_key(),
        ocsp_url=_ocsp_url(profile.role),
    )


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM (unencrypted) of ``key``."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
