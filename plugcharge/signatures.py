"""ISO 15118-2 message signatures: XMLDSig over EXI (Annex on XML signatures, security notes §4).

A signature lives in ``V2G_Message.Header.Signature``.  Each signed body element carries an ``Id``;
SignedInfo holds one ``Reference`` per element (URI ``#Id``, one canonical-EXI Transform, SHA-256
DigestMethod) whose ``DigestValue`` is SHA-256 of the element's EXI *fragment* encoding with the
full ISO-2 schema; ``SignatureValue`` is ECDSA P-256/SHA-256 over the EXI fragment encoding of
SignedInfo with the xmldsig schema alone, as raw ``r‖s`` (64 bytes, not DER).

Which elements each message signs is data (:data:`SIGNED_ELEMENTS`).  Verification requires a
Reference for every expected element, rejects References to anything else, rejects forbidden
SignedInfo content [V2G2-771], compares digests in constant time and then checks the ECDSA value.
"""
from __future__ import annotations

import hashlib
import hmac
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .errors import (
    BadSignatureError,
    DigestMismatchError,
    MissingReferenceError,
    SignatureError,
    SignatureFormatError,
    UnexpectedReferenceError,
)
from .messages import NS_ISO2, NS_XMLDSIG, CodecProvider, resolve_codecs

#: Concrete mapping types accepted (codecs return dicts; typing.Mapping checks are slow).
_MAP = (dict, MappingProxyType)

__all__ = [
    "ALG_C14N_EXI", "ALG_ECDSA_SHA256", "ALG_SHA256", "SIGNED_ELEMENTS", "MAX_REFERENCES",
    "raw_to_der", "der_to_raw", "digest_fragment", "build_signed_info", "create_signature",
    "verify_signature", "signed_elements_of", "sign_message", "verify_message", "public_key_of",
]

ALG_C14N_EXI = "http://www.w3.org/TR/canonical-exi/"
ALG_ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ALG_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
#: At most four References per signature [V2G2-909].
MAX_REFERENCES = 4
_P256_BYTES = 32

#: Body element → names of the (Id-carrying) elements its header signature covers.
#: ``AuthorizationReq`` is signed by the contract key [V2G2-475 context], ``CertificateInstallationReq``
#: by the OEM provisioning key, ``CertificateUpdateReq`` by the old contract key,
#: ``CertificateInstallationRes``/``CertificateUpdateRes`` by the CPS leaf (four References),
#: ``MeteringReceiptReq`` by the contract key, ``ChargeParameterDiscoveryRes`` signs its SalesTariffs.
SIGNED_ELEMENTS: Mapping[str, tuple[str, ...]] = {
    "AuthorizationReq": ("AuthorizationReq",),
    "CertificateInstallationReq": ("CertificateInstallationReq",),
    "CertificateUpdateReq": ("CertificateUpdateReq",),
    "MeteringReceiptReq": ("MeteringReceiptReq",),
    "CertificateInstallationRes": (
        "ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID"),
    "CertificateUpdateRes": (
        "ContractSignatureCertChain", "ContractSignatureEncryptedPrivateKey", "DHpublickey", "eMAID"),
    "ChargeParameterDiscoveryRes": ("SalesTariff",),
}

PublicKeyLike = Union[ec.EllipticCurvePublicKey, x509.Certificate, bytes]
Element = tuple[str, Mapping[str, Any]]


# ---------------------------------------------------------------- raw r‖s <-> DER
def der_to_raw(der: bytes, size: int = _P256_BYTES) -> bytes:
    """DER ECDSA-Sig-Value → ``r‖s``, each left-zero-padded to ``size`` bytes."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_to_der(raw: bytes, size: int = _P256_BYTES) -> bytes:
    """``r‖s`` (2×``size`` bytes) → DER; raises :class:`SignatureFormatError` on a wrong length."""
    if len(raw) != 2 * size:
        raise SignatureFormatError(f"SignatureValue is {len(raw)} bytes, expected {2 * size} (raw r||s)")
    r = int.from_bytes(raw[:size], "big")
    s = int.from_bytes(raw[size:], "big")
    if r == 0 or s == 0:
        raise SignatureFormatError("SignatureValue has r or s equal to zero")
    return encode_dss_signature(r, s)


def public_key_of(key: PublicKeyLike) -> ec.EllipticCurvePublicKey:
    """Accept a public key, a certificate object or certificate DER bytes."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key
    if isinstance(key, x509.Certificate):
        pub = key.public_key()
    elif isinstance(key, (bytes, bytearray)):
        try:
            pub = x509.load_der_x509_certificate(bytes(key)).public_key()
        except ValueError as exc:
            raise SignatureError(f"signer certificate is not valid DER: {exc}") from None
    else:
        raise TypeError(f"expected an EC public key or certificate, got {type(key).__name__}")
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        raise SignatureError("signer certificate does not hold an EC public key")
    return pub


# ---------------------------------------------------------------- digests and SignedInfo
def digest_fragment(name: str, element: Mapping[str, Any], *, codecs: CodecProvider | None = None) -> bytes:
    """SHA-256 of the ISO-2 full-schema EXI fragment encoding of ``<name>element</name>``."""
    codec = resolve_codecs(codecs)(NS_ISO2)
    try:
        data = codec.encode_fragment({name: dict(element)})
    except ValueError as exc:  # exi.EncodeError is a ValueError
        raise SignatureFormatError(f"cannot EXI-encode signed element {name}: {exc}") from None
    return hashlib.sha256(data).digest()


def build_signed_info(references: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """SignedInfo dict (vectors' shape) for ``(Id, sha256 digest)`` pairs."""
    if not references:
        raise MissingReferenceError("a signature needs at least one Reference")
    if len(references) > MAX_REFERENCES:
        raise SignatureFormatError(f"{len(references)} References; at most {MAX_REFERENCES} [V2G2-909]")
    return {
        "CanonicalizationMethod": {"Algorithm": ALG_C14N_EXI},
        "SignatureMethod": {"Algorithm": ALG_ECDSA_SHA256},
        "Reference": [
            {
                "URI": "#" + ident,
                "Transforms": {"Transform": [{"Algorithm": ALG_C14N_EXI}]},
                "DigestMethod": {"Algorithm": ALG_SHA256},
                "DigestValue": digest,
            }
            for ident, digest in references
        ],
    }


def _signed_info_bytes(signed_info: Mapping[str, Any], codecs: CodecProvider | None) -> bytes:
    codec = resolve_codecs(codecs)(NS_XMLDSIG)
    try:
        return codec.encode_fragment({"SignedInfo": dict(signed_info)})
    except ValueError as exc:
        raise SignatureFormatError(f"cannot EXI-encode SignedInfo: {exc}") from None


def _id_of(name: str, element: Mapping[str, Any]) -> str:
    ident = element.get("Id") if isinstance(element, _MAP) else None
    if not isinstance(ident, str) or not ident:
        raise MissingReferenceError(f"{name} has no Id attribute to sign")
    return ident


def create_signature(elements: Iterable[Element], private_key: ec.EllipticCurvePrivateKey, *,
                     codecs: CodecProvider | None = None) -> dict[str, Any]:
    """Sign ``(name, element)`` pairs; returns the header ``Signature`` dict.

    Each element must carry an ``Id``.  The private key is used only for this call."""
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != "secp256r1":
        raise SignatureError("ISO 15118-2 signatures need a secp256r1 private key")
    refs = [(_id_of(name, el), digest_fragment(name, el, codecs=codecs)) for name, el in elements]
    if len({ident for ident, _ in refs}) != len(refs):
        raise SignatureFormatError("two signed elements share one Id")
    signed_info = build_signed_info(refs)
    der = private_key.sign(_signed_info_bytes(signed_info, codecs), ec.ECDSA(hashes.SHA256()))
    return {"SignedInfo": signed_info, "SignatureValue": {"value": der_to_raw(der)}}


_SI_KEYS = {"CanonicalizationMethod", "SignatureMethod", "Reference"}
_REF_KEYS = {"URI", "Transforms", "DigestMethod", "DigestValue"}


def _check_signed_info(si: Any) -> list[Mapping[str, Any]]:
    """Structural checks of a received SignedInfo [V2G2-771]; returns its References."""
    if not isinstance(si, _MAP):
        raise SignatureFormatError("Signature has no SignedInfo")
    extra = set(si) - _SI_KEYS
    if extra:
        raise SignatureFormatError(f"SignedInfo carries forbidden content {sorted(extra)} [V2G2-771]")
    if (si.get("CanonicalizationMethod") or {}).get("Algorithm") != ALG_C14N_EXI or \
            set(si["CanonicalizationMethod"]) != {"Algorithm"}:
        raise SignatureFormatError("CanonicalizationMethod must be canonical-exi without content")
    sm = si.get("SignatureMethod") or {}
    if sm.get("Algorithm") != ALG_ECDSA_SHA256 or set(sm) != {"Algorithm"}:
        raise SignatureFormatError("SignatureMethod must be ecdsa-sha256 without HMACOutputLength")
    refs = si.get("Reference")
    if isinstance(refs, _MAP):
        refs = [refs]
    if not isinstance(refs, list) or not refs:
        raise MissingReferenceError("SignedInfo has no Reference")
    if len(refs) > MAX_REFERENCES:
        raise SignatureFormatError(f"{len(refs)} References; at most {MAX_REFERENCES} [V2G2-909]")
    for ref in refs:
        if not isinstance(ref, _MAP) or set(ref) - _REF_KEYS:
            raise SignatureFormatError("Reference carries forbidden content (Id/Type) [V2G2-771]")
        uri = ref.get("URI")
        if not isinstance(uri, str) or not uri.startswith("#") or len(uri) < 2:
            raise SignatureFormatError(f"Reference URI {uri!r} is not a same-document '#Id' reference")
        transforms = (ref.get("Transforms") or {}).get("Transform")
        if not isinstance(transforms, list) or len(transforms) != 1 or \
                transforms[0] != {"Algorithm": ALG_C14N_EXI}:
            raise SignatureFormatError(f"Reference {uri}: exactly one canonical-exi Transform is required")
        if ref.get("DigestMethod") != {"Algorithm": ALG_SHA256}:
            raise SignatureFormatError(f"Reference {uri}: DigestMethod must be sha256")
        if not isinstance(ref.get("DigestValue"), (bytes, bytearray)) or len(ref["DigestValue"]) != 32:
            raise SignatureFormatError(f"Reference {uri}: DigestValue must be 32 bytes")
    uris = [r["URI"] for r in refs]
    if len(set(uris)) != len(uris):
        raise SignatureFormatError("duplicate Reference URI")
    return refs


def verify_signature(signature: Mapping[str, Any] | None, elements: Iterable[Element],
                     public_key: PublicKeyLike, *, codecs: CodecProvider | None = None) -> None:
    """Verify a header ``Signature`` over exactly ``elements``; raises a :class:`SignatureError` subclass."""
    if not isinstance(signature, _MAP):
        raise MissingReferenceError("message is not signed (no Header.Signature)")
    extra = set(signature) - {"SignedInfo", "SignatureValue"}
    if extra:
        raise SignatureFormatError(f"Signature carries forbidden content {sorted(extra)} [V2G2-771]")
    refs = _check_signed_info(signature.get("SignedInfo"))
    by_uri = {r["URI"]: r for r in refs}
    expected: dict[str, Element] = {}
    for name, el in elements:
        expected["#" + _id_of(name, el)] = (name, el)
    for uri in by_uri:
        if uri not in expected:
            raise UnexpectedReferenceError(f"Reference {uri} does not point at an element that is signed here")
    for uri, (name, el) in expected.items():
        ref = by_uri.get(uri)
        if ref is None:
            raise MissingReferenceError(f"{name} ({uri}) is not covered by the signature")
        if not hmac.compare_digest(digest_fragment(name, el, codecs=codecs), bytes(ref["DigestValue"])):
            raise DigestMismatchError(f"digest of {name} ({uri}) does not match its Reference", uri=uri)
    sv = signature.get("SignatureValue")
    raw = sv.get("value") if isinstance(sv, _MAP) else None
    if not isinstance(raw, (bytes, bytearray)) or (isinstance(sv, _MAP) and set(sv) != {"value"}):
        raise SignatureFormatError("SignatureValue must be binary without an Id [V2G2-771]")
    der = raw_to_der(bytes(raw))
    key = public_key_of(public_key)
    try:
        key.verify(der, _signed_info_bytes(signature["SignedInfo"], codecs), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BadSignatureError("SignatureValue does not verify with the signer's public key") from None


# ---------------------------------------------------------------- whole messages
def _body(message: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    try:
        body = message["V2G_Message"]["Body"]
        (name, content), = body.items()
    except (KeyError, TypeError, ValueError):
        raise SignatureFormatError("not an ISO-2 V2G_Message with exactly one body element") from None
    return name, content


def signed_elements_of(message: Mapping[str, Any]) -> list[Element]:
    """The ``(name, element)`` pairs that :data:`SIGNED_ELEMENTS` says the message's signature covers."""
    name, content = _body(message)
    wanted = SIGNED_ELEMENTS.get(name)
    if wanted is None:
        raise SignatureFormatError(f"{name} is not a signed message")
    if wanted == (name,):
        return [(name, content)]
    if wanted == ("SalesTariff",):
        tuples = ((content.get("SAScheduleList") or {}).get("SAScheduleTuple")) or []
        return [("SalesTariff", t["SalesTariff"]) for t in tuples if "SalesTariff" in t]
    out = []
    for child in wanted:
        if child not in content:
            raise MissingReferenceError(f"{name} lacks {child}")
        out.append((child, content[child]))
    return out


def sign_message(message: dict[str, Any], private_key: ec.EllipticCurvePrivateKey, *,
                 codecs: CodecProvider | None = None) -> dict[str, Any]:
    """Put the header Signature for the message's signed elements in place; returns ``message``."""
    elements = signed_elements_of(message)
    if not elements:
        return message
    message["V2G_Message"]["Header"]["Signature"] = create_signature(elements, private_key, codecs=codecs)
    return message


def verify_message(message: Mapping[str, Any], public_key: PublicKeyLike, *,
                   codecs: CodecProvider | None = None) -> None:
    """Verify the header Signature of an ISO-2 message against :data:`SIGNED_ELEMENTS`."""
    elements = signed_elements_of(message)
    if not elements:
        raise MissingReferenceError("message has no element to verify")
    verify_signature(message["V2G_Message"]["Header"].get("Signature"), elements, public_key, codecs=codecs)

