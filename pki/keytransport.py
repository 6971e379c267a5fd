"""Contract private-key delivery (CertificateInstallationRes / CertificateUpdateRes).

Backend side (MO/CPS, party U): :func:`encrypt_contract_key` with an ephemeral key; EV side (party V):
:func:`decrypt_contract_key` with the static key of the OEM provisioning certificate (installation) or
of the old contract certificate (update) [V2G2-820/821], which also checks that the decrypted private
key belongs to the new contract certificate [V2G2-823] / [V2G20-2507/2510].

ISO 15118-2 (``iso=2``) [V2G2-815..823]::

    Z   = ECDH(P-256) x-coordinate (32 B)
    K   = ConcatKDF-SHA-256(Z, 128 bit, OtherInfo = 01 55 56)
    out = IV(16) ‖ AES-128-CBC_K(d as 32 B big-endian, no padding)        48 B
    DHpublickey = 04 ‖ X ‖ Y of the ephemeral key                          65 B

ISO 15118-20 (``iso=20``, text 7.9.2.5 as quoted in public copies; unverified against the standard)::

    SECP521: Z = ECDH(P-521) x (66 B); K = ConcatKDF-SHA-512(Z, 256 bit, 01 55 56) [V2G20-2535]
             out = IV(12) ‖ AES-256-GCM_K(d as 66 B, top 7 bits 0 [V2G20-2678]) ‖ tag(16)   94 B
             DHPublicKey = 04 ‖ X ‖ Y (133 B)
             an Ed448 contract key (RFC 8032 private key, 57 B) travels as 9 zero bytes ‖ key (66 B)
    X448:    Z = X448 (56 B); same KDF; out = IV(12) ‖ CT(56) ‖ tag(16) = 84 B; DHPublicKey = 56 B raw
    AAD = PCID (18 ASCII) ‖ SKI of the contract certificate as upper-case hex ASCII [V2G20-2492]

The X448 variant transports a 56-byte X448 private key; how the standard relates it to an Ed448
contract certificate is not settled in the public sources, so the match check requires the contract
certificate to carry that X448 public key.  An Ed448 contract (the -20 alternative signature
suite [V2G20-2319]) has a 57-byte private key, which the 56-byte X448 field cannot hold, and the
-20 schema fixes DHPublicKey at 133 bytes (an X448 public key has 56): so this module carries an
Ed448 contract key through the SECP521 variant, right-aligned in the 66-byte field with nine zero
bytes in front.  That placement is this package's reading, not text of the standard; the match
check then derives the Ed448 public key and compares it with the certificate's.

Every failure raises :class:`pki.errors.KeyTransportError` (``ValueError``) without key material.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Union

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import KeyTransportError
from .profiles import is_valid_pcid

__all__ = [
    "KeyTransportError",
    "EncryptedContractKey",
    "OTHER_INFO",
    "encrypt_contract_key",
    "decrypt_contract_key",
    "concat_kdf",
]

#: ConcatKDF OtherInfo: AlgorithmID 0x01, PartyUInfo 'U' 0x55, PartyVInfo 'V' 0x56 [V2G2-818]
OTHER_INFO = b"\x01\x55\x56"

ContractPrivateKey = Union[ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey, x448.X448PrivateKey]
#: an Ed448 private key (57 B) in the 66-byte SECP521 plaintext: this many zero bytes in front
_ED448_PAD = 66 - 57
ReceiverPublicKey = Union[ec.EllipticCurvePublicKey, x448.X448PublicKey]
ReceiverPrivateKey = Union[ec.EllipticCurvePrivateKey, x448.X448PrivateKey]

_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P521_N = int("01" + "FF" + "FFFFFFFF" * 7 + "FFFFFFFA" + "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16)


class EncryptedContractKey(NamedTuple):
    """What the backend puts into the response: ``ciphertext`` (ContractSignatureEncryptedPrivateKey /
    SECP521_/X448_EncryptedPrivateKey) and ``dh_public_key`` (DHpublickey)."""

    ciphertext: bytes
    dh_public_key: bytes


def concat_kdf(z: bytes, *, iso: int) -> bytes:
    """NIST SP 800-56A ConcatKDF with OtherInfo 01 55 56: 16 bytes/SHA-256 for -2, 32 bytes/SHA-512 for -20."""
    if iso == 2:
        return ConcatKDFHash(hashes.SHA256(), 16, OTHER_INFO).derive(z)
    if iso == 20:
        return ConcatKDFHash(hashes.SHA512(), 32, OTHER_INFO).derive(z)
    raise KeyTransportError(f"iso must be 2 or 20, not {iso!r}")


def _check_iso(iso: int) -> None:
    if iso not in (2, 20):
        raise KeyTransportError(f"iso must be 2 or 20, not {iso!r}")


def _curve_name(key: object) -> str:
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return key.curve.name
    if isinstance(key, (x448.X448PrivateKey, x448.X448PublicKey)):
        return "x448"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "ed448"
    return type(key).__name__


def _aad(pcid: str | None, contract_certificate: x509.Certificate) -> bytes:
    """AAD = PCID ‖ SKI (upper-case hex) [V2G20-2492]."""
    if pcid is None or not is_valid_pcid(pcid):
        raise KeyTransportError("ISO 15118-20 key transport needs the PCID (18 capital alphanumerics) for the AAD")
    try:
        ski = contract_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        raise KeyTransportError("contract certificate has no subjectKeyIdentifier (needed for the AAD)") from None
    return pcid.encode("ascii") + ski.hex().upper().encode("ascii")


def _load_cert(cert: bytes | x509.Certificate) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    try:
        return x509.load_der_x509_certificate(bytes(cert))
    except (ValueError, TypeError) as exc:
        raise KeyTransportError(f"contract certificate is not valid DER: {exc}") from None


def encrypt_contract_key(
    contract_key: ContractPrivateKey,
    receiver_public_key: ReceiverPublicKey,
    *,
    iso: int = 2,
    contract_certificate: bytes | x509.Certificate | None = None,
    pcid: str | None = None,
    ephemeral_key: ReceiverPrivateKey | None = None,
    iv: bytes | None = None,
) -> EncryptedContractKey:
    """Backend side: encrypt the contract private key for the EV.

    Args:
        contract_key: the new contract certificate's private key (P-256 for -2; P-521, Ed448 (in the
            SECP521 variant, see the module docstring) or X448 for -20).
        receiver_public_key: the OEM provisioning certificate's key (installation) or the old contract
            certificate's key (update); its type selects the -20 variant (P-521 → SECP521, X448 → X448).
        iso: 2 or 20.
        contract_certificate: -20 only: the new contract certificate (its SKI goes into the AAD).
        pcid: -20 only: the PCID of the EV (goes into the AAD).
        ephemeral_key, iv: for test vectors only; default fresh random values (never reuse an IV).

    Returns:
        ``EncryptedContractKey(ciphertext, dh_public_key)``.
    """
    _check_iso(iso)
    if iso == 2:
        if not isinstance(receiver_public_key, ec.EllipticCurvePublicKey) or receiver_public_key.curve.name != "secp256r1":
            raise KeyTransportError(f"-2 key transport needs a secp256r1 receiver key, got {_curve_name(receiver_public_key)}")
        if not isinstance(contract_key, ec.EllipticCurvePrivateKey) or contract_key.curve.name != "secp256r1":
            raise KeyTransportError(f"-2 contract key must be secp256r1, got {_curve_name(contract_key)}")
        eph = ephemeral_key if ephemeral_key is not None else ec.generate_private_key(ec.SECP256R1())
        if not isinstance(eph, ec.EllipticCurvePrivateKey) or eph.curve.name != "secp256r1":
            raise KeyTransportError("ephemeral key must be secp256r1")
        key = concat_kdf(eph.exchange(ec.ECDH(), receiver_public_key), iso=2)
        iv = os.urandom(16) if iv is None else bytes(iv)
        if len(iv) != 16:
            raise KeyTransportError(f"IV must be 16 bytes, got {len(iv)}")
        d = contract_key.private_numbers().private_value.to_bytes(32, "big")  # [V2G2-816]
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ct = iv + enc.update(d) + enc.finalize()
        dh = eph.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return EncryptedContractKey(ct, dh)

    if contract_certificate is None:
        raise KeyTransportError("ISO 15118-20 key transport needs the contract certificate (its SKI is in the AAD)")
    aad = _aad(pcid, _load_cert(contract_certificate))
    iv = os.urandom(12) if iv is None else bytes(iv)
    if len(iv) != 12:
        raise KeyTransportError(f"IV must be 12 bytes, got {len(iv)}")
    if isinstance(receiver_public_key, ec.EllipticCurvePublicKey) and receiver_public_key.curve.name == "secp521r1":
        if isinstance(contract_key, ed448.Ed448PrivateKey):
            plain = bytes(_ED448_PAD) + contract_key.private_bytes_raw()
        elif isinstance(contract_key, ec.EllipticCurvePrivateKey) and contract_key.curve.name == "secp521r1":
            plain = contract_key.private_numbers().private_value.to_bytes(66, "big")  # [V2G20-2678]
        else:
            raise KeyTransportError(f"SECP521 variant needs a secp521r1 or Ed448 contract key, got {_curve_name(contract_key)}")
        eph = ephemeral_key if ephemeral_key is not None else ec.generate_private_key(ec.SECP521R1())
        if not isinstance(eph, ec.EllipticCurvePrivateKey) or eph.curve.name != "secp521r1":
            raise KeyTransportError("ephemeral key must be secp521r1")
        z = eph.exchange(ec.ECDH(), receiver_public_key)
        dh = eph.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    elif isinstance(receiver_public_key, x448.X448PublicKey):
        if not isinstance(contract_key, x448.X448PrivateKey):
            raise KeyTransportError(f"X448 variant transports an X448 private key, got {_curve_name(contract_key)}")
        eph = ephemeral_key if ephemeral_key is not None else x448.X448PrivateKey.generate()
        if not isinstance(eph, x448.X448PrivateKey):
            raise KeyTransportError("ephemeral key must be X448")
        z = eph.exchange(receiver_public_key)
        plain = contract_key.private_bytes_raw()
        dh = eph.public_key().public_bytes_raw()
    else:
        raise KeyTransportError(f"-20 key transport needs a secp521r1 or X448 receiver key, got {_curve_name(receiver_public_key)}")
    key = concat_kdf(z, iso=20)
    ct = AESGCM(key).encrypt(iv, plain, aad)
    return EncryptedContractKey(iv + ct, dh)


def decrypt_contract_key(
    ciphertext: bytes,
    dh_public_key: bytes,
    receiver_private_key: ReceiverPrivateKey,
    contract_certificate: bytes | x509.Certificate,
    *,
    iso: int = 2,
    pcid: str | None = None,
) -> ContractPrivateKey:
    """EV side: decrypt the contract private key and check it belongs to ``contract_certificate``.

    Args:
        ciphertext: the encrypted private key field (48 B for -2; 94 B SECP521 / 84 B X448 for -20).
        dh_public_key: the backend's ephemeral public key (65 B / 133 B uncompressed point, 56 B X448).
        receiver_private_key: the OEM provisioning key (installation) or the old contract key (update).
        contract_certificate: the new contract certificate (DER or parsed).
        iso: 2 or 20.
        pcid: -20 only: the EV's PCID (AAD).

    Returns:
        the contract private key (``EllipticCurvePrivateKey``; ``Ed448PrivateKey`` when the contract
        certificate holds an Ed448 key; ``X448PrivateKey`` for the X448 variant).

    Raises:
        KeyTransportError: wrong lengths, an invalid DH point, a failed GCM tag, a scalar out of range
            or a key that does not match the certificate's public key [V2G2-823]/[V2G20-2507].
    """
    _check_iso(iso)
    cert = _load_cert(contract_certificate)
    ciphertext = bytes(ciphertext)
    dh_public_key = bytes(dh_public_key)
    if iso == 2:
        if not isinstance(receiver_private_key, ec.EllipticCurvePrivateKey) or receiver_private_key.curve.name != "secp256r1":
            raise KeyTransportError(f"-2 key transport needs a secp256r1 receiver key, got {_curve_name(receiver_private_key)}")
        if len(ciphertext) != 48:
            raise KeyTransportError(f"ContractSignatureEncryptedPrivateKey must be 48 bytes, got {len(ciphertext)}")
        if len(dh_public_key) != 65 or dh_public_key[0] != 4:
            raise KeyTransportError("DHpublickey must be a 65-byte uncompressed secp256r1 point (04 ‖ X ‖ Y)")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh_public_key)
        except ValueError:
            raise KeyTransportError("DHpublickey is not a point on secp256r1") from None
        key = concat_kdf(receiver_private_key.exchange(ec.ECDH(), peer), iso=2)
        dec = Cipher(algorithms.AES(key), modes.CBC(ciphertext[:16])).decryptor()
        d = int.from_bytes(dec.update(ciphertext[16:]) + dec.finalize(), "big")
        return _ec_key_matching(d, _P256_N, ec.SECP256R1(), cert)

    aad = _aad(pcid, cert)
    if isinstance(receiver_private_key, ec.EllipticCurvePrivateKey) and receiver_private_key.curve.name == "secp521r1":
        if len(ciphertext) != 94:
            raise KeyTransportError(f"SECP521_EncryptedPrivateKey must be 94 bytes, got {len(ciphertext)}")
        if len(dh_public_key) != 133 or dh_public_key[0] != 4:
            raise KeyTransportError("DHPublicKey must be a 133-byte uncompressed secp521r1 point (04 ‖ X ‖ Y)")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), dh_public_key)
        except ValueError:
            raise KeyTransportError("DHPublicKey is not a point on secp521r1") from None
        plain = _gcm_open(concat_kdf(receiver_private_key.exchange(ec.ECDH(), peer), iso=20), ciphertext, aad)
        if plain[0] & 0xFE:
            raise KeyTransportError("decrypted key has non-zero padding bits [V2G20-2678]")
        if isinstance(cert.public_key(), ed448.Ed448PublicKey):
            return _ed448_key_matching(plain, cert)
        return _ec_key_matching(int.from_bytes(plain, "big"), _P521_N, ec.SECP521R1(), cert)
    if isinstance(receiver_private_key, x448.X448PrivateKey):
        if len(ciphertext) != 84:
            raise KeyTransportError(f"X448_EncryptedPrivateKey must be 84 bytes, got {len(ciphertext)}")
        if len(dh_public_key) != 56:
            raise KeyTransportError(f"X448 DHPublicKey must be 56 bytes, got {len(dh_public_key)}")
        try:
            z = receiver_private_key.exchange(x448.X448PublicKey.from_public_bytes(dh_public_key))
        except ValueError:
            raise KeyTransportError("X448 DHPublicKey gives no shared secret (low-order point)") from None
        plain = _gcm_open(concat_kdf(z, iso=20), ciphertext, aad)
        priv = x448.X448PrivateKey.from_private_bytes(plain)
        cert_key = cert.public_key()
        if not isinstance(cert_key, x448.X448PublicKey) or cert_key.public_bytes_raw() != priv.public_key().public_bytes_raw():
            raise KeyTransportError("decrypted X448 key does not match the contract certificate's public key")
        return priv
    raise KeyTransportError(f"-20 key transport needs a secp521r1 or X448 receiver key, got {_curve_name(receiver_private_key)}")


def _gcm_open(key: bytes, field: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(field[:12], field[12:], aad)
    except InvalidTag:
        raise KeyTransportError("AES-GCM authentication failed (wrong key, PCID, certificate or tampered data) [V2G20-2504]") from None


def _ec_key_matching(d: int, n: int, curve: ec.EllipticCurve, cert: x509.Certificate) -> ec.EllipticCurvePrivateKey:
    """[V2G2-823]: 1 ≤ d < n and d·G equals the contract certificate's public key."""
    if not 1 <= d < n:
        raise KeyTransportError("decrypted private scalar is out of range (wrong key or tampered ciphertext)")
    priv = ec.derive_private_key(d, curve)
    cert_key = cert.public_key()
    if not isinstance(cert_key, ec.EllipticCurvePublicKey) or cert_key.curve.name != curve.name:
        raise KeyTransportError(f"contract certificate key is not on {curve.name}")
    if cert_key.public_numbers() != priv.public_key().public_numbers():
        raise KeyTransportError("decrypted private key does not match the contract certificate's public key [V2G2-823]")
    return priv


def _ed448_key_matching(plain: bytes, cert: x509.Certificate) -> ed448.Ed448PrivateKey:
    """An Ed448 contract key from the 66-byte SECP521 plaintext; it must give the certificate's key."""
    if any(plain[:_ED448_PAD]):
        raise KeyTransportError(f"an Ed448 contract key fills the last 57 bytes; the first {_ED448_PAD} must be zero")
    priv = ed448.Ed448PrivateKey.from_private_bytes(plain[_ED448_PAD:])
    cert_key = cert.public_key()
    assert isinstance(cert_key, ed448.Ed448PublicKey)  # the caller dispatched on it
    if cert_key.public_bytes_raw() != priv.public_key().public_bytes_raw():
        raise KeyTransportError("decrypted Ed448 key does not match the contract certificate's public key [V2G20-2507]")
    return priv
