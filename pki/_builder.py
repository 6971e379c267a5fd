"""Low-level certificate building for the test-PKI issuer (not public API).

* :class:`KeyFactory` derives private keys and serial numbers deterministically from a seed
  (HMAC-SHA-512 of the seed and a label; EC scalar = 1 + (128 derived bytes mod (n − 1)); Ed448 = the
  first 57 derived bytes). Without a seed a random 32-byte seed is drawn, so a PKI is still
  self-consistent.
* :func:`build_certificate` builds one X.509 v3 certificate with every knob the "breaks exactly one
  rule" corpus needs. ECDSA signatures use RFC 6979 deterministic nonces when the installed
  ``cryptography`` supports it (≥ 45), so the same seed and time give byte-identical DER; Ed448 is
  deterministic anyway.
* :func:`resign` rewrites fields ``cryptography`` refuses to emit (X.509 v1, a negative serial) through
  ``asn1crypto`` and signs the new TBSCertificate again with the issuer key.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Union

from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import NameOID, ObjectIdentifier

PrivateKey = Union[ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, ed448.Ed448PublicKey]

#: group orders of the curves the issuer can produce (secp384r1 only for the wrong-curve case)
CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "secp256r1": (ec.SECP256R1(), 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    "secp384r1": (
        ec.SECP384R1(),
        int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16),
    ),
    "secp521r1": (
        ec.SECP521R1(),
        int("01" + "FF" + "FFFFFFFF" * 7 + "FFFFFFFA" + "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16),
    ),
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_DEFAULT_HASH = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}


class KeyFactory:
    """Deterministic key and serial source (see module docstring). Holds the seed; never print it."""

    def __init__(self, seed: int | None) -> None:
        if seed is None:
            self._seed = os.urandom(32)
        else:
            self._seed = b"plugcharge-test-pki/" + int(seed).to_bytes(16, "big", signed=True)

    def _material(self, label: str, size: int) -> bytes:
        out = b""
        counter = 0
        while len(out) < size:
            out += hmac.new(self._seed, f"{label}#{counter}".encode(), hashlib.sha512).digest()
            counter += 1
        return out[:size]

    def key(self, label: str, algorithm: str) -> PrivateKey:
        """The private key for ``label`` on ``algorithm`` (``secp256r1``/``secp384r1``/``secp521r1``/``ed448``)."""
        if algorithm == "ed448":
            return ed448.Ed448PrivateKey.from_private_bytes(self._material("key/" + label, 57))
        curve, n = CURVES[algorithm]
        d = 1 + int.from_bytes(self._material("key/" + label, 128), "big") % (n - 1)
        return ec.derive_private_key(d, curve)

    def serial(self, label: str) -> int:
        """A positive serial (≤ 16 octets, top bit clear, never small) for ``label``."""
        v = int.from_bytes(self._material("serial/" + label, 16), "big")
        return (v & ((1 << 127) - 1)) | (1 << 120)


def key_algorithm(key: PrivateKey | PublicKey) -> str:
    """Profile key-algorithm name of a key."""
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "ed448"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return key.curve.name
    return type(key).__name__  # never a permitted profile algorithm


def make_name(cn: str, dc: str | None, *, organization: str = "plugcharge test", country: str = "DE") -> x509.Name:
    """Subject/issuer name in the EcoG/RISE attribute order: CN, O, C, DC."""
    attrs = [
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
    ]
    if dc is not None:
        attrs.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc))
    return x509.Name(attrs)


def key_usage_extension(bits: Iterable[str]) -> x509.KeyUsage:
    """``x509.KeyUsage`` from RFC 5280 bit names."""
    b = set(bits)
    return x509.KeyUsage(
        digital_signature="digitalSignature" in b,
        content_commitment="nonRepudiation" in b,
        key_encipherment="keyEncipherment" in b,
        data_encipherment="dataEncipherment" in b,
        key_agreement="keyAgreement" in b,
        key_cert_sign="keyCertSign" in b,
        crl_sign="cRLSign" in b,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class CertSpec:
    """Everything that goes into one certificate (mutable so the broken-corpus can tweak one field)."""

    subject: x509.Name
    issuer: x509.Name
    public_key: PublicKey
    signing_key: PrivateKey = field(repr=False)
    serial: int
    not_before: datetime
    not_after: datetime
    is_ca: bool
    path_len: int | None
    key_usage: frozenset[str] | None
    ku_critical: bool = True
    basic_constraints: bool = True
    bc_critical: bool = True
    ski: bool = True
    aki_key: PublicKey | None = None
    ocsp_url: str | None = None
    extra: tuple[tuple[x509.ExtensionType, bool], ...] = ()
    hash_name: str | None = None  # None: the signing key's profile hash


def _sign_kwargs() -> dict[str, bool]:
    try:
        import inspect

        if "ecdsa_deterministic" in inspect.signature(x509.CertificateBuilder.sign).parameters:
            return {"ecdsa_deterministic": True}
    except (TypeError, ValueError):  # pragma: no cover
        pass
    return {}


_SIGN_KWARGS = _sign_kwargs()
#: True when certificates from the same seed/time are byte-identical (RFC 6979 ECDSA available).
DETERMINISTIC_DER = bool(_SIGN_KWARGS)


def _hash_for(key: PrivateKey, hash_name: str | None) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed448.Ed448PrivateKey):
        return None
    return HASHES[hash_name or _DEFAULT_HASH[key.curve.name]]()


def build_certificate(spec: CertSpec) -> bytes:
    """Build and sign the certificate described by ``spec``; returns DER."""
    b = (
        x509.CertificateBuilder()
        .subject_name(spec.subject)
        .issuer_name(spec.issuer)
        .public_key(spec.public_key)
        .serial_number(spec.serial)
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    if spec.basic_constraints:
        b = b.add_extension(x509.BasicConstraints(ca=spec.is_ca, path_length=spec.path_len), critical=spec.bc_critical)
    if spec.key_usage is not None:
        b = b.add_extension(key_usage_extension(spec.key_usage), critical=spec.ku_critical)
    if spec.ski:
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(spec.public_key), critical=False)
    if spec.aki_key is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(spec.aki_key), critical=False)  # type: ignore[arg-type]
    if spec.ocsp_url:
        b = b.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(spec.ocsp_url))]
            ),
            critical=False,
        )
    for ext, critical in spec.extra:
        b = b.add_extension(ext, critical=critical)
    kwargs = _SIGN_KWARGS if isinstance(spec.signing_key, ec.EllipticCurvePrivateKey) else {}
    cert = b.sign(spec.signing_key, _hash_for(spec.signing_key, spec.hash_name), **kwargs)  # type: ignore[arg-type]
    return cert.public_bytes(serialization.Encoding.DER)


def unknown_extension(oid: str, value: bytes) -> x509.UnrecognizedExtension:
    """An extension ``cryptography`` does not know, with raw DER ``value`` as its extnValue."""
    return x509.UnrecognizedExtension(ObjectIdentifier(oid), value)


def _ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    """ECDSA with RFC 6979 nonces where the installed cryptography/OpenSSL offers them, else random ones."""
    try:
        return key.sign(data, ec.ECDSA(algorithm, deterministic_signing=True))
    except (TypeError, UnsupportedAlgorithm):  # pragma: no cover - cryptography < 44 / OpenSSL < 3.2
        return key.sign(data, ec.ECDSA(algorithm))


def resign(der: bytes, signing_key: PrivateKey, mutate: Callable[[a_x509.TbsCertificate], None],
           hash_name: str | None = None) -> bytes:
    """Apply ``mutate`` to the TBSCertificate of ``der`` and sign it again with ``signing_key``."""
    cert = a_x509.Certificate.load(der)
    tbs = cert["tbs_certificate"]
    mutate(tbs)
    tbs_der = tbs.dump(force=True)
    if isinstance(signing_key, ed448.Ed448PrivateKey):
        sig = signing_key.sign(tbs_der)
    else:
        sig = _ecdsa_sign(signing_key, tbs_der, _hash_for(signing_key, hash_name))  # type: ignore[arg-type]
    new = a_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": cert["signature_algorithm"], "signature_value": sig}
    )
    return new.dump(force=True)
