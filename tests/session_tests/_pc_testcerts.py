"""Small ISO 15118-2-shaped certificate chains for the transport/wallet/backend tests.

Built directly with ``cryptography`` so these tests do not depend on ``pki.issue``; profile
details (key usage bits, DC, pathLen) follow the -2 profile closely enough for OpenSSL and for
the wallet's parsing.  Not a conformance fixture.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def _name(cn: str, dc: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, dc),
    ])


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def issue(cn: str, dc: str, issuer: Issued | None, *, ca: bool, path_len: int | None = None,
          not_before: dt.datetime = NOW - dt.timedelta(days=30), days: int = 365,
          curve: ec.EllipticCurve | None = None) -> Issued:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    subject = _name(cn, dc)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_before + dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True))
    if ca:
        ku = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                           data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                           encipher_only=False, decipher_only=False)
    else:
        ku = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                           data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                           encipher_only=False, decipher_only=False)
    b = b.add_extension(ku, critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    alg = hashes.SHA512() if isinstance(curve, ec.SECP521R1) else hashes.SHA256()
    return Issued(b.sign(signer_key, alg), key)


@dataclass
class Chain:
    root: Issued
    sub1: Issued
    sub2: Issued
    leaf: Issued
    extra: dict = field(default_factory=dict)

    @property
    def sub_cas(self) -> list[bytes]:
        return [self.sub2.der, self.sub1.der]

    @property
    def tls_chain(self) -> list[bytes]:
        return [self.leaf.der, self.sub2.der, self.sub1.der]


def make_chain(leaf_cn: str, leaf_dc: str, root_dc: str = "V2G", *, root: Issued | None = None,
               not_before: dt.datetime = NOW - dt.timedelta(days=30), days: int = 365,
               curve: ec.EllipticCurve | None = None) -> Chain:
    root = root or issue(f"{root_dc} Root CA", root_dc, None, ca=True, days=3650,
                         not_before=NOW - dt.timedelta(days=400), curve=curve)
    sub1 = issue(f"{leaf_dc} Sub-CA 1", leaf_dc, root, ca=True, path_len=1, days=2000,
                 not_before=NOW - dt.timedelta(days=300), curve=curve)
    sub2 = issue(f"{leaf_dc} Sub-CA 2", leaf_dc, sub1, ca=True, path_len=0, days=1500,
                 not_before=NOW - dt.timedelta(days=200), curve=curve)
    leaf = issue(leaf_cn, leaf_dc, sub2, ca=False, not_before=not_before, days=days, curve=curve)
    return Chain(root, sub1, sub2, leaf)


class FragmentFallbackCodec:
    """Codec provider (``FragmentFallbackCodec(ns)``): the real ``exi`` codec, except that an EXI
    *fragment* the codec cannot encode yet (the ISO-2 ``eMAID`` element with two declared types)
    is digested from a stable stand-in encoding, the same on signer and verifier.  Lets the
    installation path run end to end while that codec gap is open; messages themselves are real
    EXI."""

    def __init__(self, ns: str) -> None:
        import exi

        self.real = exi.get_codec(ns)

    def encode(self, message: dict) -> bytes:
        return self.real.encode(message)

    def decode(self, data: bytes) -> dict:
        return self.real.decode(data)

    def encode_fragment(self, message: dict) -> bytes:
        try:
            return self.real.encode_fragment(message)
        except ValueError:
            return repr(sorted(message.items())).encode()

    def decode_fragment(self, data: bytes) -> dict:
        return self.real.decode_fragment(data)
