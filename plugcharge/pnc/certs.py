"""Certificate helpers of Plug & Charge, one copy each: eMAID comparison, names, chain dicts, the clock.

* :func:`normalize_emaid` — eMAIDs compare without ``-`` separators and case-insensitively
  (ISO 15118-2 Annex H; the one implementation is :func:`pki.profiles.normalize_emaid`);
* :func:`common_name` — the subject CN of a DER certificate;
* :func:`cert_chain` / :func:`chain_certs` — ``CertificateChainType`` dicts (leaf ``Certificate``
  plus ``SubCertificates``, the same shape in ISO 15118-2 and -20) from and to DER;
* :func:`root_certificate_ids` — ``(issuer, serial)`` of root certificates for ListOfRootCertificateIDs;
* :func:`utcnow` — the default wall clock (aware UTC) of the certificate checks; callers inject their own.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID
from pki.profiles import normalize_emaid

__all__ = ["normalize_emaid", "common_name", "cert_chain", "chain_certs", "root_certificate_ids", "utcnow"]


def utcnow() -> datetime:
    """The current time, aware UTC (the default ``wall_clock`` of the security settings)."""
    return datetime.now(timezone.utc)


def common_name(der: bytes) -> tuple[x509.Certificate, str]:
    """``(certificate, subject CN)`` of a DER certificate (CN ``""`` when it has none).

    Raises ``ValueError`` when ``der`` is not a DER X.509 certificate."""
    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return cert, (str(cns[0].value) if cns else "")


def cert_chain(leaf: bytes, subs: Sequence[bytes] = (), ident: Optional[str] = None) -> dict[str, Any]:
    """CertificateChainType: leaf ``Certificate`` plus ``SubCertificates`` (Sub-CA2, Sub-CA1)."""
    out: dict[str, Any] = {"Certificate": bytes(leaf)}
    if ident is not None:
        out["Id"] = ident
    if subs:
        out["SubCertificates"] = {"Certificate": [bytes(c) for c in subs]}
    return out


def chain_certs(chain: Mapping[str, Any]) -> tuple[bytes, list[bytes]]:
    """``(leaf, [sub certificates])`` of a CertificateChainType dict."""
    subs = (chain.get("SubCertificates") or {}).get("Certificate") or []
    if isinstance(subs, (bytes, bytearray)):
        subs = [subs]
    return bytes(chain["Certificate"]), [bytes(c) for c in subs]


def root_certificate_ids(roots: Sequence[bytes]) -> list[tuple[str, int]]:
    """``(issuer RFC 4514 name, serial)`` of V2G root certificates for ListOfRootCertificateIDs."""
    out = []
    for der in roots:
        cert = x509.load_der_x509_certificate(der)
        out.append((cert.issuer.rfc4514_string(), cert.serial_number))
    return out
