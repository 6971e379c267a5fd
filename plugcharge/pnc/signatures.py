"""ISO 15118 message signatures: XMLDSig over EXI (-2 Annex on XML signatures, -20 alike).

A signature lives in ``V2G_Message.Header.Signature``.  Each signed body element carries an ``Id``;
SignedInfo holds one ``Reference`` per element (URI ``#Id``, one canonical-EXI Transform, SHA-256
DigestMethod) whose ``DigestValue`` is SHA-256 of the element's EXI *fragment* encoding with the
full ISO-2 schema; ``SignatureValue`` is ECDSA P-256/SHA-256 over the EXI fragment encoding of
SignedInfo with the xmldsig schema alone, as raw ``r‖s`` (64 bytes, not DER).

ISO 15118-20 keeps the layout and changes the algorithms (a :class:`SignatureSuite` each, as data):
ECDSA secp521r1 with SHA-512 by default [V2G20-2674], raw ``r‖s`` of 132 bytes [V2G20-1000],
SHA-512 digests, the referenced elements encoded with the CommonMessages fragment grammar; the
alternative Ed448 [V2G20-2319] gives a 114-byte value.  The messages are the -20 roots
(``{"AuthorizationReq": {"Header": ..., ...}}``) and sign a child element (:data:`SIGNED_ELEMENTS_20`).

Which elements each message signs is data (:data:`SIGNED_ELEMENTS`).  Verification requires a
Reference for every expected element, rejects References to anything else, rejects forbidden
SignedInfo content [V2G2-771], accepts only the suite (or suites) the caller allows, compares
digests in constant time and then checks the signature value.
"""
from __future__ import annotations

import hashlib
import hmac
from types import MappingProxyType
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..core.errors import (
    BadSignatureError,
    DigestMismatchError,
    MissingReferenceError,
    SignatureError,
    SignatureFormatError,
    UnexpectedReferenceError,
)
from ..core.codec import NS_ISO2, NS_ISO20_CM, NS_XMLDSIG, CodecProvider, resolve_codecs

#: Concrete mapping types accepted (codecs return dicts; typing.Mapping checks are slow).
_MAP = (dict, MappingProxyType)

__all__ = [
    "ALG_C14N_EXI", "ALG_ECDSA_SHA256", "ALG_SHA256", "ALG_ECDSA_SHA512", "ALG_SHA512", "ALG_ED448",
    "NS_ISO20_CM", "SignatureSuite", "ISO2", "ISO20_ECDSA", "ISO20_ED448", "ISO20_SUITES", "suite_for_key",
    "SIGNED_ELEMENTS", "SIGNED_ELEMENTS_20", "MAX_REFERENCES",
    "raw_to_der", "der_to_raw", "digest_fragment", "build_signed_info", "create_signature",
    "verify_signature", "signed_elements_of", "sign_message", "verify_message", "public_key_of",
]

ALG_C14N_EXI = "http://www.w3.org/TR/canonical-exi/"
ALG_ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ALG_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
#: -20 defaults (the URIs libcbv2g's and the vectors' ISO-20 AuthorizationReq carry)
ALG_ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
ALG_SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
#: Ed448 (RFC 9231); not verified against the text of ISO 15118-20
ALG_ED448 = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448"
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

#: -20 message root → the Id-carrying child its header signature covers: the PnC authorisation
#: data with the GenChallenge [V2G20-2565], the OEM provisioning chain (OEM provisioning key), the
#: SignedInstallationData (CPS key), the SignedMeteringData, and in ScheduleExchangeRes every
#: price schedule (Absolute or PriceLevel, in each ScheduleTuple's charging and discharging
#: schedule, or in the dynamic control mode), as -2 signs its SalesTariffs.
SIGNED_ELEMENTS_20: Mapping[str, tuple[str, ...]] = {
    "AuthorizationReq": ("PnC_AReqAuthorizationMode",),
    "CertificateInstallationReq": ("OEMProvisioningCertificateChain",),
    "CertificateInstallationRes": ("SignedInstallationData",),
    "MeteringConfirmationReq": ("SignedMeteringData",),
    "ScheduleExchangeRes": ("AbsolutePriceSchedule", "PriceLevelSchedule"),
}
_PRICE_SCHEDULES = SIGNED_ELEMENTS_20["ScheduleExchangeRes"]

PublicKeyLike = Union[ec.EllipticCurvePublicKey, ed448.Ed448PublicKey, x509.Certificate, bytes]
PrivateKey = Union[ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey]
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


@dataclass(frozen=True, slots=True)
class SignatureSuite:
    """One edition's signature algorithms: what goes into SignedInfo and how the value is made."""

    name: str
    #: schema set whose fragment grammar encodes the referenced elements
    namespace: str
    signature_uri: str
    digest_uri: str
    digest: Callable[[bytes], Any]
    digest_size: int
    #: ``"secp256r1"``, ``"secp521r1"`` or ``"ed448"``
    key: str
    #: length of the raw SignatureValue
    raw_size: int

    def check_private_key(self, key: object) -> None:
        """Raise :class:`SignatureError` unless ``key`` is this suite's kind of private key."""
        if self.key == "ed448":
            ok = isinstance(key, ed448.Ed448PrivateKey)
        else:
            ok = isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == self.key
        if not ok:
            raise SignatureError(f"{self.name} needs a {self.key} private key")

    def sign(self, key: PrivateKey, data: bytes) -> bytes:
        """The raw SignatureValue of ``data`` with this suite's kind of key."""
        self.check_private_key(key)
        if isinstance(key, ed448.Ed448PrivateKey):
            return key.sign(data)
        return der_to_raw(key.sign(data, ec.ECDSA(self._hash())), self.raw_size // 2)

    def verify(self, key: Any, raw: bytes, data: bytes) -> None:
        """Raise :class:`BadSignatureError` unless ``raw`` is a valid value over ``data``."""
        try:
            if self.key == "ed448":
                if not isinstance(key, ed448.Ed448PublicKey):
                    raise SignatureError(f"{self.name} needs an Ed448 signer key")
                if len(raw) != self.raw_size:
                    raise SignatureFormatError(f"SignatureValue is {len(raw)} bytes, expected {self.raw_size}")
                key.verify(raw, data)
                return
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != self.key:
                raise SignatureError(f"{self.name} needs a {self.key} signer key")
            key.verify(raw_to_der(raw, self.raw_size // 2), data, ec.ECDSA(self._hash()))
        except InvalidSignature:
            raise BadSignatureError("SignatureValue does not verify with the signer's public key") from None

    def _hash(self) -> hashes.HashAlgorithm:
        return hashes.SHA256() if self.digest_size == 32 else hashes.SHA512()


#: ISO 15118-2: ECDSA secp256r1 / SHA-256, ISO-2 fragment grammar.
ISO2 = SignatureSuite("iso2-ecdsa-p256-sha256", NS_ISO2, ALG_ECDSA_SHA256, ALG_SHA256, hashlib.sha256, 32,
                      "secp256r1", 64)
#: ISO 15118-20 default: ECDSA secp521r1 / SHA-512 [V2G20-2674], r‖s 66+66 bytes [V2G20-1000].
ISO20_ECDSA = SignatureSuite("iso20-ecdsa-p521-sha512", NS_ISO20_CM, ALG_ECDSA_SHA512, ALG_SHA512, hashlib.sha512,
                             64, "secp521r1", 132)
#: ISO 15118-20 alternative: Ed448 [V2G20-2319] (SHA-512 digests; URIs unverified, see ALG_ED448).
ISO20_ED448 = SignatureSuite("iso20-ed448", NS_ISO20_CM, ALG_ED448, ALG_SHA512, hashlib.sha512, 64, "ed448", 114)
#: What a -20 verifier accepts (the configured suite decides which a signer uses [V2G20-2320]).
ISO20_SUITES = (ISO20_ECDSA, ISO20_ED448)
_BY_KEY_20 = {"secp521r1": ISO20_ECDSA, "ed448": ISO20_ED448}


def suite_for_key(key: PrivateKey | PublicKeyLike, *, iso: int = 2) -> SignatureSuite:
    """The suite a key signs with in edition ``iso`` (2: P-256 only; 20: P-521 or Ed448)."""
    k: Any = key if isinstance(key, (ed448.Ed448PrivateKey, ec.EllipticCurvePrivateKey)) else public_key_of(key)
    kind = "ed448" if isinstance(k, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)) else k.curve.name
    suite = ISO2 if iso == 2 and kind == "secp256r1" else _BY_KEY_20.get(kind) if iso == 20 else None
    if suite is None:
        raise SignatureError(f"a {kind} key does not sign ISO 15118-{iso} messages")
    return suite


def public_key_of(key: PublicKeyLike) -> Any:
    """Accept a public key, a certificate object or certificate DER bytes (EC or Ed448)."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ed448.Ed448PublicKey)):
        return key
    pub: Any
    if isinstance(key, x509.Certificate):
        pub = key.public_key()
    elif isinstance(key, (bytes, bytearray)):
        der = bytes(key)
        pub = _KEY_OF_DER.get(der)
        if pub is None:
            try:
                pub = x509.load_der_x509_certificate(der).public_key()
            except ValueError as exc:
                raise SignatureError(f"signer certificate is not valid DER: {exc}") from None
            if isinstance(pub, (ec.EllipticCurvePublicKey, ed448.Ed448PublicKey)):
                if len(_KEY_OF_DER) >= 128:
                    _KEY_OF_DER.clear()
                _KEY_OF_DER[der] = pub
    else:
        raise TypeError(f"expected an EC public key or certificate, got {type(key).__name__}")
    if not isinstance(pub, (ec.EllipticCurvePublicKey, ed448.Ed448PublicKey)):
        raise SignatureError("signer certificate does not hold an EC or Ed448 public key")
    return pub


#: signer public keys by the exact DER of their certificate (loading a key checks its curve point)
_KEY_OF_DER: dict[bytes, Any] = {}


# ---------------------------------------------------------------- digests and SignedInfo
def digest_fragment(name: str, element: Mapping[str, Any], *, codecs: CodecProvider | None = None,
                    suite: SignatureSuite = ISO2) -> bytes:
    """The suite's digest (SHA-256 for -2) of the full-schema EXI fragment encoding of
    ``<name>element</name>`` (the ISO-2 schema set for -2, CommonMessages for -20)."""
    codec = resolve_codecs(codecs)(suite.namespace)
    try:
        data = codec.encode_fragment({name: dict(element)})
    except ValueError as exc:  # exi.EncodeError is a ValueError
        raise SignatureFormatError(f"cannot EXI-encode signed element {name}: {exc}") from None
    return suite.digest(data).digest()


def build_signed_info(references: Sequence[tuple[str, bytes]], suite: SignatureSuite = ISO2) -> dict[str, Any]:
    """SignedInfo dict (vectors' shape) for ``(Id, digest)`` pairs under ``suite``."""
    if not references:
        raise MissingReferenceError("a signature needs at least one Reference")
    if len(references) > MAX_REFERENCES:
        raise SignatureFormatError(f"{len(references)} References; at most {MAX_REFERENCES} [V2G2-909]")
    return {
        "CanonicalizationMethod": {"Algorithm": ALG_C14N_EXI},
        "SignatureMethod": {"Algorithm": suite.signature_uri},
        "Reference": [
            {
                "URI": "#" + ident,
                "Transforms": {"Transform": [{"Algorithm": ALG_C14N_EXI}]},
                "DigestMethod": {"Algorithm": suite.digest_uri},
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


def create_signature(elements: Iterable[Element], private_key: PrivateKey, *,
                     codecs: CodecProvider | None = None, suite: SignatureSuite = ISO2) -> dict[str, Any]:
    """Sign ``(name, element)`` pairs; returns the header ``Signature`` dict.

    Each element must carry an ``Id``; the key must be the suite's (default :data:`ISO2`, a
    secp256r1 key).  The private key is used only for this call."""
    suite.check_private_key(private_key)  # before any encoding: the wrong key is the error to report
    refs = [(_id_of(name, el), digest_fragment(name, el, codecs=codecs, suite=suite)) for name, el in elements]
    if len({ident for ident, _ in refs}) != len(refs):
        raise SignatureFormatError("two signed elements share one Id")
    signed_info = build_signed_info(refs, suite)
    raw = suite.sign(private_key, _signed_info_bytes(signed_info, codecs))
    return {"SignedInfo": signed_info, "SignatureValue": {"value": raw}}


_SI_KEYS = {"CanonicalizationMethod", "SignatureMethod", "Reference"}
_REF_KEYS = {"URI", "Transforms", "DigestMethod", "DigestValue"}


def _check_signed_info(si: Any, suites: Sequence[SignatureSuite]) -> tuple[SignatureSuite, list[Mapping[str, Any]]]:
    """Structural checks of a received SignedInfo [V2G2-771]; returns its suite and References."""
    if not isinstance(si, _MAP):
        raise SignatureFormatError("Signature has no SignedInfo")
    extra = set(si) - _SI_KEYS
    if extra:
        raise SignatureFormatError(f"SignedInfo carries forbidden content {sorted(extra)} [V2G2-771]")
    if (si.get("CanonicalizationMethod") or {}).get("Algorithm") != ALG_C14N_EXI or \
            set(si["CanonicalizationMethod"]) != {"Algorithm"}:
        raise SignatureFormatError("CanonicalizationMethod must be canonical-exi without content")
    sm = si.get("SignatureMethod") or {}
    suite = next((x for x in suites if x.signature_uri == sm.get("Algorithm")), None)
    if suite is None or set(sm) != {"Algorithm"}:
        allowed = " or ".join(x.signature_uri.rsplit("#", 1)[-1] for x in suites)
        raise SignatureFormatError(f"SignatureMethod must be {allowed} without HMACOutputLength")
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
        if ref.get("DigestMethod") != {"Algorithm": suite.digest_uri}:
            raise SignatureFormatError(f"Reference {uri}: DigestMethod must be {suite.digest_uri.rsplit('#', 1)[-1]}")
        if not isinstance(ref.get("DigestValue"), (bytes, bytearray)) or len(ref["DigestValue"]) != suite.digest_size:
            raise SignatureFormatError(f"Reference {uri}: DigestValue must be {suite.digest_size} bytes")
    uris = [r["URI"] for r in refs]
    if len(set(uris)) != len(uris):
        raise SignatureFormatError("duplicate Reference URI")
    return suite, refs


def verify_signature(signature: Mapping[str, Any] | None, elements: Iterable[Element],
                     public_key: PublicKeyLike, *, codecs: CodecProvider | None = None,
                     suite: SignatureSuite | Sequence[SignatureSuite] = ISO2) -> None:
    """Verify a header ``Signature`` over exactly ``elements``; raises a :class:`SignatureError` subclass.

    ``suite`` is the suite, or the suites, accepted (SignatureMethod picks among them; the signer
    key must be that suite's): :data:`ISO2` for -2, :data:`ISO20_SUITES` for -20."""
    suites = (suite,) if isinstance(suite, SignatureSuite) else tuple(suite)
    if not isinstance(signature, _MAP):
        raise MissingReferenceError("message is not signed (no Header.Signature)")
    extra = set(signature) - {"SignedInfo", "SignatureValue"}
    if extra:
        raise SignatureFormatError(f"Signature carries forbidden content {sorted(extra)} [V2G2-771]")
    chosen, refs = _check_signed_info(signature.get("SignedInfo"), suites)
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
        if not hmac.compare_digest(digest_fragment(name, el, codecs=codecs, suite=chosen),
                                   bytes(ref["DigestValue"])):
            raise DigestMismatchError(f"digest of {name} ({uri}) does not match its Reference", uri=uri)
    sv = signature.get("SignatureValue")
    raw = sv.get("value") if isinstance(sv, _MAP) else None
    if not isinstance(raw, (bytes, bytearray)) or (isinstance(sv, _MAP) and set(sv) != {"value"}):
        raise SignatureFormatError("SignatureValue must be binary without an Id [V2G2-771]")
    key = public_key_of(public_key)
    chosen.verify(key, bytes(raw), _signed_info_bytes(signature["SignedInfo"], codecs))


# ---------------------------------------------------------------- whole messages
def _body(message: Mapping[str, Any]) -> tuple[str, Mapping[str, Any], Mapping[str, Any], int]:
    """``(name, content, header, edition)``: -2 ``V2G_Message`` or a -20 root message."""
    try:
        if "V2G_Message" in message:
            body = message["V2G_Message"]["Body"]
            (name, content), = body.items()
            return name, content, message["V2G_Message"]["Header"], 2
        (name, content), = message.items()
        return name, content, content["Header"], 20
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SignatureFormatError("not an ISO-2 V2G_Message with exactly one body element, "
                                   "nor an ISO-20 message with a Header") from None


def signed_elements_of(message: Mapping[str, Any]) -> list[Element]:
    """The ``(name, element)`` pairs that :data:`SIGNED_ELEMENTS` (-2) or :data:`SIGNED_ELEMENTS_20`
    (-20 root messages) say the message's signature covers."""
    name, content, _, iso = _body(message)
    wanted = (SIGNED_ELEMENTS if iso == 2 else SIGNED_ELEMENTS_20).get(name)
    if wanted is None:
        raise SignatureFormatError(f"{name} is not a signed message")
    if wanted == (name,):
        return [(name, content)]
    if wanted == ("SalesTariff",):
        tuples = ((content.get("SAScheduleList") or {}).get("SAScheduleTuple")) or []
        return [("SalesTariff", t["SalesTariff"]) for t in tuples if "SalesTariff" in t]
    if wanted is _PRICE_SCHEDULES:
        return _price_schedules(content)
    out = []
    for child in wanted:
        if child not in content:
            raise MissingReferenceError(f"{name} lacks {child}")
        out.append((child, content[child]))
    return out


def _price_schedules(content: Mapping[str, Any]) -> list[Element]:
    holders: list[Any] = [content.get("Dynamic_SEResControlMode")]
    for t in (content.get("Scheduled_SEResControlMode") or {}).get("ScheduleTuple") or ():
        holders += [t.get("ChargingSchedule"), t.get("DischargingSchedule")]
    return [(kind, h[kind]) for h in holders if isinstance(h, _MAP) for kind in _PRICE_SCHEDULES if kind in h]


def sign_message(message: dict[str, Any], private_key: PrivateKey, *,
                 codecs: CodecProvider | None = None, suite: SignatureSuite | None = None) -> dict[str, Any]:
    """Put the header Signature for the message's signed elements in place; returns ``message``.

    The suite defaults to the edition's for the key (:func:`suite_for_key`)."""
    elements = signed_elements_of(message)
    if not elements:
        return message
    _, _, header, iso = _body(message)
    if suite is None:
        suite = ISO2 if iso == 2 else suite_for_key(private_key, iso=20)
    header["Signature"] = create_signature(elements, private_key, codecs=codecs,  # type: ignore[index]
                                           suite=suite)
    return message


def verify_message(message: Mapping[str, Any], public_key: PublicKeyLike, *, codecs: CodecProvider | None = None,
                   suite: SignatureSuite | Sequence[SignatureSuite] | None = None) -> None:
    """Verify the header Signature of a -2 or -20 message against its signed elements.

    Accepted suites default to the edition's (:data:`ISO2`, or :data:`ISO20_SUITES`)."""
    elements = signed_elements_of(message)
    if not elements:
        raise MissingReferenceError("message has no element to verify")
    _, _, header, iso = _body(message)
    verify_signature(header.get("Signature"), elements, public_key, codecs=codecs,
                     suite=suite if suite is not None else ISO2 if iso == 2 else ISO20_SUITES)

