"""TLS contexts for V2G communication (ISO 15118-2 and -20), built from DER certificates.

ISO 15118-2 (§7.7.3): TLS 1.2 [V2G2-067], the SECC is always the TLS server [V2G2-068],
server-only authentication, cipher suites of Table 7 [V2G2-602]:
``TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256`` and ``TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256``; keys on
secp256r1 [V2G2-006/007].  OpenSSL ≥ 1.1 dropped the static-ECDH suites, so only the ECDHE one is
offered (as in every Python stack).  ``allow_gcm=True`` adds
``TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`` for peers that want an AEAD suite (not in Table 7).

ISO 15118-20 (§7.7.3): TLS 1.3 [V2G20-1264], the SECC is the server [V2G20-2374], suites
``TLS_AES_256_GCM_SHA384`` then ``TLS_CHACHA20_POLY1305_SHA256`` [V2G20-2458], groups secp521r1
or x448 [V2G20-1634], mutual authentication: the SECC requests the vehicle certificate chain
[V2G20-2400], which the EVCC sends without the root [V2G20-2430/2431], and validates it
[V2G20-2432].  What Python's ``ssl`` cannot set is checked after the handshake instead:

* TLS 1.3 cipher suites cannot be restricted from Python (no ``SSL_CTX_set_ciphersuites``).
  OpenSSL offers ``TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256``,
  the two of the standard first and in its order, and the server prefers its own order; a
  handshake that still lands on ``TLS_AES_128_GCM_SHA256`` (a peer offering nothing else) is
  refused right after it completes.
* ``set_ecdh_curve`` sets one group per context: secp521r1 by default, ``group="X448"`` for x448;
  both together cannot be offered.
* OpenSSL verifies the peer chain to the given roots but knows nothing of the ISO profiles: the
  -20 contexts check the chain the peer sent with :mod:`pki` once the handshake completes (the
  vehicle chain under ``iso20-vehicle`` on the SECC, the SECC chain under ``iso20-secc`` on the
  EVCC), and refuse the connection with :class:`TLSPeerError` otherwise.  These checks run in
  ``SSLObject.do_handshake`` (``SSLContext.sslobject_class``), i.e. for asyncio and ``wrap_bio``
  users such as :mod:`plugcharge.net.transport`, not for blocking ``wrap_socket`` sockets.

Both editions: session tickets are off (``OP_NO_TICKET``, no TLS 1.3 tickets) and so is
renegotiation (``OP_NO_RENEGOTIATION``, TLS 1.2).  Every refused handshake of a context is kept,
bounded, in :func:`handshake_failures` (the peer sees only the TLS alert or a closed connection).

V2G has no host names: hostname checking is off, chain verification (``CERT_REQUIRED``) is on
and the trust anchors are exactly the roots handed in (V2G roots for the EVCC; OEM/V2G roots for
a -20 SECC).  Certificates and keys are handed in as DER/PEM bytes; the private key reaches
OpenSSL through a temporary file in a private (0700) directory that holds it *encrypted* under
a random one-time password and is deleted right after loading.
"""
from __future__ import annotations

import collections
import logging
import os
import secrets
import ssl
import tempfile
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

__all__ = [
    "ISO2_CIPHERS",
    "ISO2_GCM_CIPHER",
    "ISO2_CURVE",
    "ISO20_CURVE",
    "ISO20_CIPHERSUITES",
    "ISO20_GROUPS",
    "TLSConfigError",
    "TLSPeerError",
    "ChainCheck",
    "vehicle_chain_check",
    "secc_chain_check",
    "peer_chain",
    "handshake_failures",
    "V2GSSLObject",
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
#: The -20 TLS 1.3 cipher suites in the standard's order [V2G20-2458].
ISO20_CIPHERSUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
#: The -20 key-exchange groups (OpenSSL names); a context takes one of them [V2G20-1634].
ISO20_GROUPS = ("secp521r1", "X448")
#: refused handshakes remembered per context
_MAX_FAILURES = 32

logger = logging.getLogger(__name__)


class TLSConfigError(ValueError):
    """Certificates or keys handed in for a TLS context are unusable (never shows key material)."""


class TLSPeerError(ssl.SSLError):
    """The peer's certificate chain or the negotiated parameters break the ISO 15118 rules; the
    connection is refused.  The message names the rule (and the certificate), never key material."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "TLS peer refused"


#: A check of the chain the peer sent (DER, leaf first) after the handshake; returns what it
#: learnt (e.g. a ``pki.VerifiedChain``) or raises :class:`TLSPeerError` to refuse.
ChainCheck = Callable[[Sequence[bytes]], Any]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _chain_check(roots: Any, role: str, profile: str, what: str, clock: Callable[[], datetime], cache: Any,
                 revocation: Optional[Callable[[Any], None]], requirement: str) -> ChainCheck:
    from pki.errors import PKIError
    from pki.store import TrustStore
    from pki.verify import verify_chain

    store = roots if isinstance(roots, TrustStore) else TrustStore({role: list(roots)})

    def check(chain: Sequence[bytes]) -> Any:
        if not chain:
            raise TLSPeerError(f"the peer sent no {what} certificate {requirement}")
        try:
            verified = verify_chain(chain[0], list(chain[1:]), store=store, profile=profile, at=clock(), cache=cache)
        except PKIError as exc:
            raise TLSPeerError(f"{what} chain refused {requirement}: {exc}") from None
        if revocation is not None:
            try:
                revocation(verified)
            except PKIError as exc:
                raise TLSPeerError(f"{what} chain refused (revocation) {requirement}: {exc}") from None
        return verified
    return check


def vehicle_chain_check(oem_roots: Any, *, clock: Callable[[], datetime] = _utcnow, cache: Any = None,
                        revocation: Optional[Callable[[Any], None]] = None) -> ChainCheck:
    """The SECC's check of the vehicle chain of -20 mutual TLS [V2G20-2432]: the -20 vehicle profile
    (``iso20-vehicle``) to one of ``oem_roots`` (DER/PEM roots or a ``pki.TrustStore``) at
    ``clock()``; ``revocation(verified_chain)`` may raise a ``pki.PKIError`` (e.g. an OCSP
    ``CertificateRevokedError``) to refuse.  Returns the ``pki.VerifiedChain``."""
    return _chain_check(oem_roots, "oem", "iso20-vehicle", "vehicle", clock, cache, revocation, "[V2G20-2432]")


def secc_chain_check(v2g_roots: Any, *, clock: Callable[[], datetime] = _utcnow, cache: Any = None) -> ChainCheck:
    """The EVCC's check of the SECC chain in -20: the -20 SECC profile (``iso20-secc``: DC CPO or
    CSO, key usage, at most two Sub-CAs) to one of ``v2g_roots`` at ``clock()``."""
    return _chain_check(v2g_roots, "v2g", "iso20-secc", "SECC", clock, cache, None, "(ISO 15118-20 SECC profile)")


def peer_chain(ssl_object: Any) -> tuple[bytes, ...]:
    """The certificate chain the peer sent (DER, leaf first, as on the wire), from an
    ``ssl.SSLObject``/``SSLSocket`` after the handshake; empty when the peer sent none."""
    get = getattr(ssl_object, "get_unverified_chain", None)  # public from Python 3.13
    if get is None:
        get = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if get is None:  # pragma: no cover - every supported Python has one of the two
        leaf = ssl_object.getpeercert(binary_form=True)
        return (leaf,) if leaf else ()
    import _ssl

    # a server that asked for a certificate (CERT_OPTIONAL) and got none may get [None] from CPython
    return tuple(c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in (get() or ())
                 if c is not None)


def handshake_failures(ctx: ssl.SSLContext) -> list[str]:
    """The reasons of the last refused handshakes of a context made here (oldest first, bounded)."""
    return list(getattr(ctx, "v2g_failures", ()))


class _Policy:
    """What a -20 context checks once OpenSSL completed a handshake."""

    __slots__ = ("suites", "chain_check")

    def __init__(self, suites: Sequence[str], chain_check: Optional[ChainCheck]) -> None:
        self.suites = tuple(suites)
        self.chain_check = chain_check

    def after_handshake(self, obj: ssl.SSLObject) -> Any:
        cipher = obj.cipher()
        name = cipher[0] if cipher else None
        if name not in self.suites:
            raise TLSPeerError(f"cipher suite {name} is not one of {', '.join(self.suites)} [V2G20-2458]")
        if self.chain_check is None:
            return None
        return self.chain_check(peer_chain(obj))


class V2GSSLObject(ssl.SSLObject):
    """``SSLObject`` of the -20 contexts: runs the context's post-handshake checks and records every
    refused handshake on the context.  ``peer_verified`` holds what the chain check returned (the
    vehicle or SECC ``pki.VerifiedChain``)."""

    peer_verified: Any = None

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            _record(self.context, exc)
            raise
        policy = getattr(self.context, "v2g_policy", None)
        if policy is not None:
            try:
                self.peer_verified = policy.after_handshake(self)
            except ssl.SSLError as exc:
                _record(self.context, exc)
                raise


def _record(ctx: ssl.SSLContext, exc: BaseException) -> None:
    failures = getattr(ctx, "v2g_failures", None)
    if failures is None:
        return
    reason = str(exc)
    first = reason not in failures
    failures.append(reason)
    # one log line per distinct reason among the remembered ones: a peer retrying cannot flood the log
    if first:
        logger.warning("TLS handshake refused: %s", reason)


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


def _base(purpose_server: bool, iso: int, allow_gcm: bool, group: Optional[str] = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if purpose_server else ssl.PROTOCOL_TLS_CLIENT)
    if iso == 2:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ISO2_CIPHERS + (":" + ISO2_GCM_CIPHER if allow_gcm else ""))
        ctx.set_ecdh_curve(group or ISO2_CURVE)
    elif iso == 20:
        if group is not None and group not in ISO20_GROUPS:
            raise TLSConfigError(f"ISO 15118-20 groups are {', '.join(ISO20_GROUPS)}, not {group!r} [V2G20-1634]")
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_ecdh_curve(group or ISO20_CURVE)
        ctx.sslobject_class = V2GSSLObject
        ctx.v2g_failures = collections.deque(maxlen=_MAX_FAILURES)  # type: ignore[attr-defined]
    else:
        raise ValueError(f"iso must be 2 or 20, not {iso!r}")
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET | ssl.OP_NO_RENEGOTIATION
    if purpose_server:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        if iso == 20:
            ctx.num_tickets = 0
    return ctx


def server_context(
    chain: Sequence[bytes],
    private_key: bytes | PrivateKeyTypes,
    *,
    iso: int = 2,
    client_roots: Sequence[bytes] | None = None,
    allow_gcm: bool = False,
    group: Optional[str] = None,
    verify_client: Optional[ChainCheck] = None,
) -> ssl.SSLContext:
    """SECC (TLS server) context.

    ``chain``: SECC leaf first, then its Sub-CAs (DER or PEM), without the root.
    ``private_key``: the leaf key (PEM/DER bytes or a ``cryptography`` key object).
    ``iso=20`` selects TLS 1.3 with the -20 cipher suites (checked after the handshake) and
    ``group`` (:data:`ISO20_GROUPS`, default secp521r1); with ``client_roots`` (the OEM roots),
    mutual TLS: the EVCC must present a vehicle chain that OpenSSL verifies to one of them
    [V2G20-2400], and ``verify_client`` (default :func:`vehicle_chain_check` of ``client_roots``)
    then checks it with the -20 vehicle profile [V2G20-2432].
    """
    ctx = _base(True, iso, allow_gcm, group)
    _load_chain(ctx, chain, private_key)
    if client_roots:
        _load_trust(ctx, client_roots)
        ctx.verify_mode = ssl.CERT_REQUIRED
    if iso == 20:
        check = verify_client
        if check is None and client_roots:
            check = vehicle_chain_check(client_roots)
        ctx.v2g_policy = _Policy(ISO20_CIPHERSUITES, check)  # type: ignore[attr-defined]
    return ctx


def client_context(
    v2g_roots: Sequence[bytes],
    *,
    iso: int = 2,
    client_chain: Sequence[bytes] | None = None,
    client_key: bytes | PrivateKeyTypes | None = None,
    allow_gcm: bool = False,
    group: Optional[str] = None,
    verify_server: Optional[ChainCheck] = None,
) -> ssl.SSLContext:
    """EVCC (TLS client) context trusting exactly ``v2g_roots`` (DER or PEM).

    Hostname checking is off (V2G has no host names), verification of the SECC chain is
    required.  For -20 mutual TLS pass the vehicle chain (leaf, Sub-CA 2, Sub-CA 1, no root
    [V2G20-2431]) and its key; the -20 cipher suites are checked after the handshake and so is the
    SECC chain, by ``verify_server`` (default :func:`secc_chain_check` of ``v2g_roots``).
    """
    ctx = _base(False, iso, allow_gcm, group)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    _load_trust(ctx, v2g_roots)
    if client_chain:
        if client_key is None:
            raise TLSConfigError("client_chain given without client_key")
        _load_chain(ctx, client_chain, client_key)
    if iso == 20:
        ctx.v2g_policy = _Policy(ISO20_CIPHERSUITES, verify_server or secc_chain_check(v2g_roots))  # type: ignore[attr-defined]
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
