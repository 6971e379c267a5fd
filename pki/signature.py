"""Signature primitives for ISO 15118 message signatures (XMLDSig over EXI).

ISO 15118 carries ECDSA signatures as the raw concatenation ``r ‖ s``, each integer big-endian and
left-zero-padded to the curve's byte length: 64 bytes for P-256 (-2, [V2G2-771] profile) and 132 bytes
for P-521 (-20, [V2G20-1000]); Ed448 signatures are 114 bytes as RFC 8032 defines them. X.509 and
OpenSSL use DER ``ECDSA-Sig-Value``; this module converts both ways (rejecting non-canonical DER) and
signs/verifies with the suite a certificate profile prescribes.

Every failure raises :class:`pki.errors.SignatureError` (a ``ValueError``); messages never contain
key material.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .errors import SignatureError
from .profiles import CertProfile, ChainProfile

__all__ = [
    "Suite",
    "SuiteInfo",
    "SignatureError",
    "PrivateKey",
    "PublicKey",
    "suite_info",
    "suite_for_key",
    "suite_for_profile",
    "raw_to_der",
    "der_to_raw",
    "sign",
    "verify",
]

PrivateKey = Union[ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey]
PublicKey = Union[ec.EllipticCurvePublicKey, ed448.Ed448PublicKey]


class Suite(enum.Enum):
    """A message-signature suite. The value is the certificate profile's signature-algorithm name."""

    #: ISO 15118-2: ECDSA on secp256r1 with SHA-256 [V2G2-006/007].
    ECDSA_P256_SHA256 = "ecdsa-with-SHA256"
    #: ISO 15118-20 default: ECDSA on secp521r1 with SHA-512 [V2G20-2674].
    ECDSA_P521_SHA512 = "ecdsa-with-SHA512"
    #: ISO 15118-20 alternative: Ed448 [V2G20-2319].
    ED448 = "ed448"


@dataclass(frozen=True)
class SuiteInfo:
    """Facts about a :class:`Suite`.

    ``raw_size`` is the signature length on the wire; ``coordinate_size`` the byte length of r and s
    (0 for Ed448); ``key_algorithm`` the profile key-algorithm name; ``signature_uri`` and
    ``digest_uri`` the XMLDSig algorithm identifiers (the Ed448 ones are RFC 9231's and unverified
    against ISO 15118-20).
    """

    suite: Suite
    key_algorithm: str
    raw_size: int
    coordinate_size: int
    signature_uri: str
    digest_uri: str


_INFO = {
    Suite.ECDSA_P256_SHA256: SuiteInfo(
        Suite.ECDSA_P256_SHA256, "secp256r1", 64, 32,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256",
    ),
    Suite.ECDSA_P521_SHA512: SuiteInfo(
        Suite.ECDSA_P521_SHA512, "secp521r1", 132, 66,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", "http://www.w3.org/2001/04/xmlenc#sha512",
    ),
    Suite.ED448: SuiteInfo(
        Suite.ED448, "ed448", 114, 0,
        "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448", "http://www.w3.org/2001/04/xmlenc#sha512",
    ),
}
_HASH = {Suite.ECDSA_P256_SHA256: hashes.SHA256, Suite.ECDSA_P521_SHA512: hashes.SHA512}
_CURVE = {"secp256r1": Suite.ECDSA_P256_SHA256, "secp521r1": Suite.ECDSA_P521_SHA512}


def suite_info(suite: Suite) -> SuiteInfo:
    """Sizes and XMLDSig URIs of ``suite``."""
    return _INFO[suite]


def suite_for_key(key: PrivateKey | PublicKey) -> Suite:
    """The suite a key signs with (P-256 → SHA-256, P-521 → SHA-512, Ed448).

    Raises :class:`SignatureError` for any other key type or curve.
    """
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return Suite.ED448
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        try:
            return _CURVE[key.curve.name]
        except KeyError:
            raise SignatureError(f"curve {key.curve.name} is not used by ISO 15118") from None
    raise SignatureError(f"key type {type(key).__name__} is not used for ISO 15118 signatures")


def suite_for_profile(profile: CertProfile | ChainProfile, key: PrivateKey | PublicKey) -> Suite:
    """The suite for ``key`` under ``profile`` (a chain profile means its leaf's profile).

    Raises :class:`SignatureError` if the profile does not permit the key's algorithm (e.g. a P-256 key
    for an ISO 15118-20 profile).
    """
    leaf = profile.leaf if isinstance(profile, ChainProfile) else profile
    suite = suite_for_key(key)
    if suite.value not in leaf.signature_algorithms:
        raise SignatureError(
            f"profile {leaf.name} does not permit {suite.value} (permitted: {', '.join(leaf.signature_algorithms)})"
        )
    return suite


def raw_to_der(raw: bytes, suite: Suite = Suite.ECDSA_P256_SHA256) -> bytes:
    """Convert a raw ``r ‖ s`` ECDSA signature of ``suite`` into DER ``ECDSA-Sig-Value``.

    Raises :class:`SignatureError` if the length is not the suite's, or r or s is zero.
    """
    info = _INFO[suite]
    if suite is Suite.ED448:
        raise SignatureError("Ed448 signatures have no DER form")
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise SignatureError(f"signature must be bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    if len(raw) != info.raw_size:
        raise SignatureError(f"raw {suite.value} signature must be {info.raw_size} bytes, got {len(raw)}")
    n = info.coordinate_size
    r = int.from_bytes(raw[:n], "big")
    s = int.from_bytes(raw[n:], "big")
    if r == 0 or s == 0:
        raise SignatureError("raw signature has r or s equal to zero")
    return encode_dss_signature(r, s)


def der_to_raw(der: bytes, suite: Suite = Suite.ECDSA_P256_SHA256) -> bytes:
    """Convert a DER ``ECDSA-Sig-Value`` into the raw ``r ‖ s`` form of ``suite`` (fixed length).

    Non-canonical DER (trailing bytes, negative or oversized integers) raises :class:`SignatureError`.
    """
    info = _INFO[suite]
    if suite is Suite.ED448:
        raise SignatureError("Ed448 signatures have no DER form")
    try:
        r, s = decode_dss_signature(bytes(der))
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"malformed DER ECDSA signature: {exc}") from None
    n = info.coordinate_size
    if not (0 < r < 1 << (8 * n)) or not (0 < s < 1 << (8 * n)):
        raise SignatureError(f"DER signature integers out of range for {suite.value}")
    if encode_dss_signature(r, s) != bytes(der):
        raise SignatureError("DER ECDSA signature is not canonical")
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def sign(
    private_key: PrivateKey,
    data: bytes,
    *,
    suite: Suite | None = None,
    profile: CertProfile | ChainProfile | None = None,
    deterministic: bool = False,
) -> bytes:
    """Sign ``data`` and return the wire-format signature (raw ``r ‖ s`` or the 114-byte Ed448 one).

    ``suite`` defaults to the key's (:func:`suite_for_key`); ``profile`` additionally checks that the
    profile permits it. ``deterministic=True`` uses RFC 6979 nonces (Ed448 is always deterministic).
    """
    actual = suite_for_profile(profile, private_key) if profile is not None else suite_for_key(private_key)
    if suite is not None and suite is not actual:
        raise SignatureError(f"key signs with {actual.value}, not {suite.value}")
    if not isinstance(private_key, (ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey)):
        raise SignatureError("a private key is required for signing")
    if actual is Suite.ED448:
        return private_key.sign(bytes(data))  # type: ignore[call-arg]
    algorithm = ec.ECDSA(_HASH[actual](), deterministic_signing=True) if deterministic else ec.ECDSA(_HASH[actual]())
    der = private_key.sign(bytes(data), algorithm)  # type: ignore[call-arg, arg-type]
    return der_to_raw(der, actual)


def verify(
    public_key: PublicKey,
    data: bytes,
    signature: bytes,
    *,
    suite: Suite | None = None,
    profile: CertProfile | ChainProfile | None = None,
) -> None:
    """Verify a wire-format signature over ``data``; raise :class:`SignatureError` if it does not verify.

    The signature length must be exactly the suite's (64 / 132 / 114 bytes).
    """
    if isinstance(public_key, (ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey)):
        public_key = public_key.public_key()
    actual = suite_for_profile(profile, public_key) if profile is not None else suite_for_key(public_key)
    if suite is not None and suite is not actual:
        raise SignatureError(f"key verifies {actual.value}, not {suite.value}")
    info = _INFO[actual]
    if not isinstance(signature, (bytes, bytearray, memoryview)):
        raise SignatureError(f"signature must be bytes, not {type(signature).__name__}")
    signature = bytes(signature)
    if len(signature) != info.raw_size:
        raise SignatureError(f"{actual.value} signature must be {info.raw_size} bytes, got {len(signature)}")
    try:
        if actual is Suite.ED448:
            public_key.verify(signature, bytes(data))  # type: ignore[call-arg]
        else:
            public_key.verify(raw_to_der(signature, actual), bytes(data), ec.ECDSA(_HASH[actual]()))  # type: ignore[call-arg]
    except InvalidSignature:
        raise SignatureError(f"{actual.value} signature does not verify") from None
