"""TLS contexts for V2G communication (ISO 15118-2 and -20), built from DER certificates.

ISO 15118-2 (§7.7.3): TLS 1.2 [V2G2-067], the SECC is always the TLS server [V2G2-068],
server-only authentication, cipher suites of Table 7 [V2G2-602]:
``TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256`` and ``TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256``; keys on
secp256r1 [V2G2-006/007].  OpenSSL ≥ 1.1 dropped the static-ECDH suites, so only the ECDHE one is
offered (as in every Python stack).  ``allow_gcm=True`` adds
``TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`` for peers that want an AEAD suite (not in Table 7).

ISO 15118-20 (§7.7.3): TLS 1.3 [V2G20-1264], the SECC is the server [V2G20-2374], suites
``TLS_AES_256_GCM_SHA384`` / ``TLS_CHACHA20_POLY1305_SHA256`` [V2G20-2458], groups secp521r1
(and x448) [V2G20-1634], mutual authentication: the SECC requests the vehicle certificate
[V2G20-2400].  Python's ``ssl`` cannot restrict TLS 1.3 cipher suites, so OpenSSL's defaults
(which include both required suites) are used; the key-exchange group is pinned to secp521r1.

V2G has no host names: hostname checking is off, chain verification (``CERT_REQUIRED``) is on
and the trust anchors are exactly the roots handed in (V2G roots for the EVCC; OEM/V2G roots for
a -20 SECC).  Certificates and keys are handed in as DER/PEM bytes; the private key reaches
OpenSSL through a temporary file in a private (0700) directory that holds it *encrypted* under
a random one-time password and is deleted right after loading.
"""
from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from typing import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

__all__ = [
    "ISO2_CIPHERS",
    "ISO2_GCM_CIPHER",
    "ISO2_CURVE",
    "ISO20_CURVE",
    "TLSConfigError",
    "server_context",
    "client_context",
    "to_pem_chain",
    "PeerCheck",
    "secc_leaf_check",
]

#: OpenSSL name of TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (Table 7 of ISO 15118-2) [V2G2-602].
ISO2_CIPHERS = "ECDHE-ECDSA-AES128-SHA256"
#: The AEAD sibling, offered only with ``allow_gcm=True``.
ISO2_GCM_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
#: ECDHE group for -2 (secp256r1 [V2G2-006]).
ISO2_CURVE = "prime256v1"
#: ECDHE group for -20 (secp521r1 [V2G20-1634]).
ISO20_CURVE = "secp521r1"


class TLSConfigError(ValueError):
    """Certificates or keys handed in for a TLS context are unusable (never shows key material)."""


def _der_to_pem(cert: bytes) -> bytes:
    if cert.lstrip().startswith(b"-----BEGIN"):
        return cert if cert.endswith(b"\n") else cert + b"\n"
    try:
        return x509.load_der_x509_certificate(cert).public_bytes(serialization.Encoding.PEM)
    except ValueError as exc:
        raise TLSConfigError(f"certificate is neither PEM nor valid DER: {exc}") from None


def to_pem_chain(certs: Sequence[bytes]) -> bytes:
    """Concatenate certificates (DER or PEM) into one PEM bundle, in the given order."""
    return b"".join(_der_to_pem(c) for c in certs)


def _load_key(private_key: bytes | PrivateKeyTypes) -> PrivateKeyTypes:
    if not isinstance(private_key, (bytes, bytearray)):
        return private_key
    data = bytes(private_key)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError):
        raise TLSConfigError("private key could not be loaded (PKCS#8/SEC1 PEM or DER expected)") from None


def _load_chain(ctx: ssl.SSLContext, chain: Sequence[bytes], private_key: bytes | PrivateKeyTypes) -> None:
    if not chain:
        raise TLSConfigError("certificate chain is empty")
    key = _load_key(private_key)
    password = secrets.token_urlsafe(24).encode()
    enc_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(password))
    with tempfile.TemporaryDirectory(prefix="v2g-tls-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path = os.path.join(tmp, "chain.pem")
        key_path = os.path.join(tmp, "key.pem")
        for path, data in ((cert_path, to_pem_chain(chain)), (key_path, enc_key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        try:
            ctx.load_cert_chain(cert_path, key_path, password=password)
        except ssl.SSLError as exc:
            raise TLSConfigError(f"certificate chain and key do not load: {exc.reason or exc}") from None


def _load_trust(ctx: ssl.SSLContext, roots: Sequence[bytes]) -> None:
    if not roots:
        raise TLSConfigError("no trust anchors given")
    try:
        ctx.load_verify_locations(cadata=to_pem_chain(roots).decode("ascii"))
    except ssl.SSLError as exc:
        raise TLSConfigError(f"trust anchors do not load: {exc.reason or exc}") from None


def _base(purpose_server: bool, iso: int, allow_gcm: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose_server else ssl.PROTOCOL_TLS_CLIENT)
    if iso == 2:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ISO2_CIPHERS + (":" + ISO2_GCM_CIPHER if allow_gcm else ""))
        ctx.set_ecdh_curve(ISO2_CURVE)
    elif iso == 20:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_ecdh_curve(ISO20_CURVE)
    else:
        raise ValueError(f"iso must be 2 or 20, not {iso!r}")
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def server_context(
    chain: Sequence[bytes],
    private_key: bytes | PrivateKeyTypes,
    *,
    iso: int = 2,
    client_roots: Sequence[bytes] | None = None,
    allow_gcm: bool = False,
) -> ssl.SSLContext:
    """SECC (TLS server) context.

    ``chain``: SECC leaf first, then its Sub-CAs (DER or PEM), without the root.
    ``private_key``: the leaf key (PEM/DER bytes or a ``cryptography`` key object).
    ``iso=20`` selects TLS 1.3 and, with ``client_roots`` (OEM/V2G roots), mutual TLS: the EVCC
    must present a vehicle chain that verifies to one of them [V2G20-2400].
    """
    ctx = _base(True, iso, allow_gcm)
    _load_chain(ctx, chain, private_key)
    if client_roots:
        _load_trust(ctx, client_roots)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(
    v2g_roots: Sequence[bytes],
    *,
    iso: int = 2,
    client_chain: Sequence[bytes] | None = None,
    client_key: bytes | PrivateKeyTypes | None = None,
    allow_gcm: bool = False,
) -> ssl.SSLContext:
    """EVCC (TLS client) context trusting exactly ``v2g_roots`` (DER or PEM).

    Hostname checking is off (V2G has no host names), verification of the SECC chain is
    required.  For -20 mutual TLS pass the vehicle chain (leaf first, no root) and its key.
    """
    ctx = _base(False, iso, allow_gcm)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    _load_trust(ctx, v2g_roots)
    if client_chain:
        if client_key is None:
            raise TLSConfigError("client_chain given without client_key")
        _load_chain(ctx, client_chain, client_key)
    return ctx


#: Signature of an extra check on the peer's leaf certificate (DER) after the handshake; raise
#: to refuse the connection (e.g. the EVCC's DC=CPO check on the SECC leaf).
PeerCheck = Callable[[bytes], None]


def secc_leaf_check(leaf: bytes) -> None:
    """A :data:`PeerCheck` for the EVCC (-2): the SECC leaf must carry DC=CPO [V2G2-925 context],
    must not be a CA, and must allow digitalSignature (ECDHE-ECDSA).  Raises ``ssl.SSLError``.

    OpenSSL has already verified the chain to a V2G root; this adds the ISO profile's leaf rules
    that a generic TLS stack does not know (RISE-V2G's ``verifyLeafCertificateAttributes``).
    """
    try:
        cert = x509.load_der_x509_certificate(leaf)
    except ValueError:
        raise ssl.SSLError("SECC certificate is not valid DER") from None
    dcs = [str(a.value).upper() for a in cert.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)]
    if "CPO" not in dcs:
        raise ssl.SSLError(f"SECC certificate {cert.subject.rfc4514_string()} lacks DC=CPO")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise ssl.SSLError(f"SECC certificate lacks {exc.oid.dotted_string}") from None
    if bc.ca:
        raise ssl.SSLError("SECC certificate is a CA certificate")
    if not ku.digital_signature:
        raise ssl.SSLError("SECC certificate key usage lacks digitalSignature")
