"""ISO 15118-20 CertificateInstallation, for each party, as pure functions.

EV: :func:`build_certificate_installation_req` signs ``OEMProvisioningCertificateChain`` (the OEM
provisioning leaf and its Sub-CAs) with the OEM provisioning key and lists the EV's root
certificates, how many contract chains it takes (``MaximumContractCertificateChains``) and its
preferred eMAIDs (``PrioritizedEMAIDs``, at most 8).  :func:`verify_certificate_installation_res`
checks the answer: the CPS chain under the -20 CPS profile to a V2G root, the CPS signature over
``SignedInstallationData``, the contract chain under the -20 contract profile, then decrypts the
contract key with the OEM provisioning key by the -20 key transport (ECDH P-521, ConcatKDF SHA-512,
AES-256-GCM with the PCID ‖ SKI AAD [V2G20-2492]; a failed decryption rejects the response
[V2G20-2504]) and checks that the key belongs to the contract certificate [V2G20-2507/2510].  What
it returns (:class:`InstalledContract`) is what the wallet stores.

Backend (CPS/eMSP; the charger only forwards): :func:`check_certificate_installation_req` validates
the OEM provisioning chain under the -20 profile and the EV's signature and returns what the backend
needs to choose and encrypt contracts (:class:`InstallationRequest`);
:func:`build_certificate_installation_res` builds the signed response for one contract;
:func:`certificate_installation_refusal` is the (unsigned) response carrying a refusal code, with
schema-valid placeholders where the schema demands content.

Only the SECP521 key transport is built and accepted: an Ed448 contract key travels in it (see
:mod:`pki.keytransport`).  The X448 variant is refused with a clear error: the -20 schema fixes
``DHPublicKey`` at 133 bytes (an X448 public key has 56) and an Ed448 OEM provisioning key cannot
agree keys.  Every failure is a :class:`~plugcharge.pnc.codes20.PnC20Error` with the -20 code.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Mapping, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from ..core.codec import CodecProvider
from ..core.errors import SignatureError
from .certs import cert_chain, chain_certs, common_name
from .codes20 import (
    FAILED, FAILED_SIGNATURE_ERROR, MAX_SUB_CERTIFICATES, OK, WARNING_NO_CERTIFICATE_AVAILABLE,
    Credentials20Like, PnC20Error, leaf_key, chain_error,
)
from .signatures import ISO20_SUITES, sign_message, suite_for_key, verify_message

__all__ = [
    "MAX_ROOT_CERTIFICATE_IDS", "MAX_PRIORITIZED_EMAIDS", "MAX_SUB_CERTIFICATES", "DH_PUBLIC_KEY_SIZE",
    "SECP521_ENCRYPTED_KEY_SIZE", "OEMProvisioning20Like", "InstallationRequest", "InstalledContract",
    "certificate_installation_req_body", "build_certificate_installation_req", "check_certificate_installation_req",
    "build_certificate_installation_res", "certificate_installation_refusal", "installation_pending",
    "verify_certificate_installation_res", "same_root",
]

#: ListOfRootCertificateIDs holds 1 to 20 X509IssuerSerial entries (ListOfRootCertificateIDsType)
MAX_ROOT_CERTIFICATE_IDS = 20
#: PrioritizedEMAIDs holds at most 8 eMAIDs (EMAIDListType)
MAX_PRIORITIZED_EMAIDS = 8
#: dhPublicKeyType: 04 ‖ X ‖ Y of a P-521 point
DH_PUBLIC_KEY_SIZE = 133
#: secp521_EncryptedPrivateKeyType: IV(12) ‖ CT(66) ‖ tag(16)
SECP521_ENCRYPTED_KEY_SIZE = 94
_MAX_IDENTIFIER = 255  # identifierType (an eMAID of PrioritizedEMAIDs)
_EDITION = 20


#: The EV's -20 OEM provisioning credentials (:class:`plugcharge.pnc.wallet.OEMProvisioning`).
OEMProvisioning20Like = Credentials20Like


def _check_subs(subs: Sequence[bytes], what: str, minimum: int = 0) -> tuple[bytes, ...]:
    out = tuple(bytes(s) for s in subs)
    if not minimum <= len(out) <= MAX_SUB_CERTIFICATES:
        raise PnC20Error(FAILED, f"{what} needs {minimum} to {MAX_SUB_CERTIFICATES} Sub-CAs, got {len(out)}")
    return out


def _signing_key_suite(key: Any, what: str) -> str:
    try:
        return suite_for_key(key, iso=_EDITION).name
    except (SignatureError, AttributeError, TypeError) as exc:
        raise PnC20Error(FAILED_SIGNATURE_ERROR, f"the {what} key cannot sign an ISO 15118-20 message: {exc}") from None


# ================================================================ EV: the request
def certificate_installation_req_body(
    oem: OEMProvisioning20Like,
    *,
    root_certificate_ids: Sequence[tuple[str, int]],
    maximum_contract_chains: int = 1,
    prioritized_emaids: Sequence[str] = (),
    ident: str = "id1",
) -> dict[str, Any]:
    """The content of a -20 ``CertificateInstallationReq`` without its Header: what
    :func:`build_certificate_installation_req` signs (a session adds its own header, then signs
    ``OEMProvisioningCertificateChain`` with the OEM provisioning key).  Checks and raises as
    :func:`build_certificate_installation_req`."""
    ids = list(root_certificate_ids)
    if not 1 <= len(ids) <= MAX_ROOT_CERTIFICATE_IDS:
        raise PnC20Error(FAILED, f"ListOfRootCertificateIDs needs 1 to {MAX_ROOT_CERTIFICATE_IDS} roots, got {len(ids)}")
    if not 0 <= int(maximum_contract_chains) <= 255:
        raise PnC20Error(FAILED, f"MaximumContractCertificateChains must be 0..255, got {maximum_contract_chains}")
    emaids = [str(e) for e in prioritized_emaids]
    if len(emaids) > MAX_PRIORITIZED_EMAIDS or any(not 0 < len(e) <= _MAX_IDENTIFIER for e in emaids):
        raise PnC20Error(FAILED, f"PrioritizedEMAIDs holds at most {MAX_PRIORITIZED_EMAIDS} eMAIDs of 1..255 characters")
    subs = _check_subs(oem.sub_cas, "OEMProvisioningCertificateChain")
    _signing_key_suite(oem.private_key, "OEM provisioning")
    body: dict[str, Any] = {
        "OEMProvisioningCertificateChain": cert_chain(oem.leaf, subs, ident=ident),
        "ListOfRootCertificateIDs": {"RootCertificateID": [
            {"X509IssuerName": str(name), "X509SerialNumber": int(serial)} for name, serial in ids]},
        "MaximumContractCertificateChains": int(maximum_contract_chains),
    }
    if emaids:
        body["PrioritizedEMAIDs"] = {"EMAID": emaids}
    return body


def build_certificate_installation_req(
    oem: OEMProvisioning20Like,
    *,
    session_id: bytes,
    timestamp: int,
    root_certificate_ids: Sequence[tuple[str, int]],
    maximum_contract_chains: int = 1,
    prioritized_emaids: Sequence[str] = (),
    ident: str = "id1",
    codecs: Optional[CodecProvider] = None,
) -> dict[str, Any]:
    """The signed -20 ``CertificateInstallationReq`` root message.

    Args:
        oem: the -20 OEM provisioning credentials (leaf, Sub-CAs, P-521 or Ed448 key).
        session_id, timestamp: the message header.
        root_certificate_ids: ``(issuer name, serial)`` of the roots the EV trusts, 1 to 20
            (:func:`plugcharge.pnc.certs.root_certificate_ids` makes them from DER roots).
        maximum_contract_chains: how many contract chains the EV takes (0..255).
        prioritized_emaids: the eMAIDs the EV prefers, highest priority first (at most 8).
        ident: the ``Id`` of OEMProvisioningCertificateChain (the signed element).

    Raises:
        PnC20Error: ``FAILED`` for values the schema cannot carry, ``FAILED_SignatureError`` for a
            key that signs no -20 suite.
    """
    body = certificate_installation_req_body(oem, root_certificate_ids=root_certificate_ids,
                                             maximum_contract_chains=maximum_contract_chains,
                                             prioritized_emaids=prioritized_emaids, ident=ident)
    message = {"CertificateInstallationReq": {
        "Header": {"SessionID": bytes(session_id), "TimeStamp": int(timestamp)}, **body}}
    return sign_message(message, oem.private_key, codecs=codecs)


# ================================================================ backend: check the request
@dataclasses.dataclass(frozen=True, slots=True)
class InstallationRequest:
    """A -20 CertificateInstallationReq that passed the backend's checks.

    Attributes:
        pcid: the PCID (OEM provisioning leaf CN).
        oem_certificate, oem_sub_cas: the chain as the EV sent it.
        oem_chain: the validated path (``pki.VerifiedChain``) to the OEM root.
        root_certificate_ids: ``(X509IssuerName, X509SerialNumber)`` of the EV's roots.
        maximum_contract_chains: MaximumContractCertificateChains.
        prioritized_emaids: PrioritizedEMAIDs, highest priority first (may be empty).
        session_id: the header's SessionID (the EV repeats the request per contract chain).
        suite: the signature suite the EV used.
    """

    pcid: str
    oem_certificate: bytes
    oem_sub_cas: tuple[bytes, ...]
    oem_chain: Any = dataclasses.field(repr=False, compare=False)
    root_certificate_ids: tuple[tuple[str, int], ...] = ()
    maximum_contract_chains: int = 1
    prioritized_emaids: tuple[str, ...] = ()
    session_id: bytes = b""
    suite: str = ""

    @property
    def receiver_public_key(self) -> Any:
        """The OEM provisioning leaf's public key: the ECDH partner of the key transport."""
        return leaf_key(self.oem_chain)

    def trusts_root(self, certificate: bytes) -> bool:
        """Whether the root ``certificate`` (DER) is among the EV's ListOfRootCertificateIDs."""
        cert = x509.load_der_x509_certificate(certificate)
        return any(same_root(name, serial, cert) for name, serial in self.root_certificate_ids)


def same_root(issuer_name: str, serial: int, certificate: x509.Certificate) -> bool:
    """An X509IssuerSerial entry names ``certificate``: equal serials and equal issuer names
    (parsed from RFC 4514 when possible, so spacing and case of attribute types do not matter)."""
    if serial != certificate.serial_number:
        return False
    try:
        return x509.Name.from_rfc4514_string(issuer_name) == certificate.issuer
    except ValueError:
        return issuer_name.strip() == certificate.issuer.rfc4514_string()


def _root_ids(value: Any) -> tuple[tuple[str, int], ...]:
    entries = value.get("RootCertificateID") if isinstance(value, Mapping) else None
    if isinstance(entries, Mapping):
        entries = [entries]
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ROOT_CERTIFICATE_IDS:
        raise PnC20Error(FAILED, f"ListOfRootCertificateIDs must hold 1 to {MAX_ROOT_CERTIFICATE_IDS} RootCertificateID")
    out = []
    for i, e in enumerate(entries):
        name = e.get("X509IssuerName") if isinstance(e, Mapping) else None
        serial = e.get("X509SerialNumber") if isinstance(e, Mapping) else None
        if not isinstance(name, str) or not isinstance(serial, int) or isinstance(serial, bool):
            raise PnC20Error(FAILED, f"RootCertificateID #{i} lacks X509IssuerName or X509SerialNumber")
        out.append((name, serial))
    return tuple(out)


def _emaids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.get("EMAID") if isinstance(value, Mapping) else None
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or len(items) > MAX_PRIORITIZED_EMAIDS or not all(isinstance(e, str) for e in items):
        raise PnC20Error(FAILED, f"PrioritizedEMAIDs must hold 1 to {MAX_PRIORITIZED_EMAIDS} eMAID strings")
    return tuple(items)


def check_certificate_installation_req(message: Mapping[str, Any], *, store: Any, at: datetime,
                                       codecs: Optional[CodecProvider] = None, cache: Any = None) -> InstallationRequest:
    """Backend side: validate a decoded -20 ``CertificateInstallationReq`` root message.

    The OEM provisioning chain (leaf and the Sub-CAs the EV sends) must validate under the -20
    OEM provisioning profile to an OEM root of ``store`` (a ``pki.TrustStore``) at ``at``; the
    header signature must cover ``OEMProvisioningCertificateChain`` and verify with the leaf's key
    (ecdsa-sha512/secp521r1 or Ed448).

    Raises:
        PnC20Error: ``FAILED`` (malformed), a chain code (``WARNING_CertificateExpired``,
            ``..NotYetValid``, ``..Revoked``, ``WARNING_CertificateValidationError``) or
            ``FAILED_SignatureError``.
    """
    from pki.verify import verify_chain

    body = message.get("CertificateInstallationReq") if isinstance(message, Mapping) else None
    if not isinstance(body, Mapping) or not isinstance(body.get("Header"), Mapping):
        raise PnC20Error(FAILED, "not an ISO 15118-20 CertificateInstallationReq")
    try:
        leaf, subs = chain_certs(body["OEMProvisioningCertificateChain"])
    except (KeyError, TypeError, AttributeError):
        raise PnC20Error(FAILED, "OEMProvisioningCertificateChain lacks its Certificate") from None
    ids = _root_ids(body.get("ListOfRootCertificateIDs"))
    maximum = body.get("MaximumContractCertificateChains")
    if not isinstance(maximum, int) or isinstance(maximum, bool) or not 0 <= maximum <= 255:
        raise PnC20Error(FAILED, "MaximumContractCertificateChains must be an unsignedByte")
    emaids = _emaids(body.get("PrioritizedEMAIDs"))
    try:
        chain = verify_chain(leaf, subs, store=store, profile="iso20-oem-provisioning", at=at, cache=cache)
    except ValueError as exc:  # pki.ChainValidationError
        raise chain_error(exc, "OEM provisioning chain") from None
    try:
        verify_message(message, leaf_key(chain), codecs=codecs, suite=ISO20_SUITES)
    except SignatureError as exc:
        raise PnC20Error(FAILED_SIGNATURE_ERROR, f"signature over OEMProvisioningCertificateChain: {exc}") from None
    sid = body["Header"].get("SessionID")
    return InstallationRequest(
        pcid=chain.pcid or "", oem_certificate=leaf, oem_sub_cas=tuple(subs), oem_chain=chain,
        root_certificate_ids=ids, maximum_contract_chains=maximum, prioritized_emaids=emaids,
        session_id=bytes(sid) if isinstance(sid, (bytes, bytearray)) else b"",
        suite=suite_for_key(leaf_key(chain), iso=_EDITION).name)


# ================================================================ backend: the response
def build_certificate_installation_res(
    *,
    session_id: bytes,
    timestamp: int,
    cps_certificate: bytes,
    cps_sub_cas: Sequence[bytes],
    cps_key: Any,
    contract_certificate: bytes,
    contract_sub_cas: Sequence[bytes],
    contract_key: Any,
    receiver_public_key: Any,
    pcid: str,
    remaining_contract_chains: int = 0,
    ident: str = "id1",
    codecs: Optional[CodecProvider] = None,
    ephemeral_key: Any = None,
    iv: Optional[bytes] = None,
) -> dict[str, Any]:
    """The signed -20 ``CertificateInstallationRes`` root message for one contract.

    ``SignedInstallationData`` (Id ``ident``) carries the contract chain, ``ECDHCurve`` SECP521, the
    ephemeral ``DHPublicKey`` and ``SECP521_EncryptedPrivateKey`` (the contract key, P-521 or
    Ed448, encrypted for ``receiver_public_key``, the OEM provisioning key, with the PCID in the
    AAD); the CPS leaf key signs it (its suite follows the key).  ``remaining_contract_chains``
    tells the EV how many more chains a repeated request fetches.  ``ephemeral_key``/``iv``: for
    test vectors only.

    Raises:
        PnC20Error: ``FAILED`` for a receiver key other than secp521r1 (X448, see the module
            docstring), a key-transport error or values the schema cannot carry;
            ``FAILED_SignatureError`` for a CPS key that signs no -20 suite.
    """
    from pki.errors import KeyTransportError
    from pki.keytransport import encrypt_contract_key

    if not isinstance(receiver_public_key, ec.EllipticCurvePublicKey) or receiver_public_key.curve.name != "secp521r1":
        kind = getattr(getattr(receiver_public_key, "curve", None), "name", type(receiver_public_key).__name__)
        raise PnC20Error(FAILED, f"the OEM provisioning key is {kind}: only the SECP521 key transport can be sent "
                                 "(the schema fixes DHPublicKey at 133 bytes, an X448 key has 56)")
    if not 0 <= int(remaining_contract_chains) <= 255:
        raise PnC20Error(FAILED, f"RemainingContractCertificateChains must be 0..255, got {remaining_contract_chains}")
    contract_subs = _check_subs(contract_sub_cas, "ContractCertificateChain", minimum=1)
    cps_subs = _check_subs(cps_sub_cas, "CPSCertificateChain")
    _signing_key_suite(cps_key, "CPS")
    try:
        enc = encrypt_contract_key(contract_key, receiver_public_key, iso=_EDITION, contract_certificate=contract_certificate,
                                   pcid=pcid, ephemeral_key=ephemeral_key, iv=iv)
    except KeyTransportError as exc:
        raise PnC20Error(FAILED, f"contract key cannot be encrypted for the EV: {exc}") from None
    message = {"CertificateInstallationRes": {
        "Header": {"SessionID": bytes(session_id), "TimeStamp": int(timestamp)},
        "ResponseCode": OK,
        "EVSEProcessing": "Finished",
        "CPSCertificateChain": cert_chain(cps_certificate, cps_subs),
        "SignedInstallationData": {
            "Id": ident,
            "ContractCertificateChain": cert_chain(contract_certificate, contract_subs),
            "ECDHCurve": "SECP521",
            "DHPublicKey": enc.dh_public_key,
            "SECP521_EncryptedPrivateKey": enc.ciphertext,
        },
        "RemainingContractCertificateChains": int(remaining_contract_chains),
    }}
    return sign_message(message, cps_key, codecs=codecs)


def certificate_installation_refusal(response_code: str, *, session_id: bytes, timestamp: int,
                                     evse_processing: str = "Finished") -> dict[str, Any]:
    """An unsigned -20 ``CertificateInstallationRes`` carrying ``response_code`` (a WARNING or FAILED
    code; ``evse_processing="Ongoing"`` with ``OK`` while the backend has not answered yet).  The
    schema demands a CPS chain and SignedInstallationData: they are one-byte / zero placeholders
    that an EV reading the code never uses."""
    return {"CertificateInstallationRes": {
        "Header": {"SessionID": bytes(session_id), "TimeStamp": int(timestamp)},
        "ResponseCode": response_code,
        "EVSEProcessing": evse_processing,
        "CPSCertificateChain": {"Certificate": b"\x00"},
        "SignedInstallationData": {
            "Id": "id0",
            "ContractCertificateChain": {"Certificate": b"\x00", "SubCertificates": {"Certificate": [b"\x00"]}},
            "ECDHCurve": "SECP521",
            "DHPublicKey": bytes(DH_PUBLIC_KEY_SIZE),
            "SECP521_EncryptedPrivateKey": bytes(SECP521_ENCRYPTED_KEY_SIZE),
        },
        "RemainingContractCertificateChains": 0,
    }}


# ================================================================ EV: the response
@dataclasses.dataclass(frozen=True)
class InstalledContract:
    """A -20 contract the EV accepted: what the wallet stores (:meth:`install_into`).

    ``remaining_contract_chains``: how many more chains the backend has for this EV (repeat the
    request while it is > 0).  The private key never appears in ``repr``.
    """

    emaid: str
    leaf: bytes
    sub_cas: tuple[bytes, ...]
    private_key: Any = dataclasses.field(repr=False, compare=False)
    remaining_contract_chains: int = 0
    contract_chain: Any = dataclasses.field(default=None, repr=False, compare=False)
    cps_chain: Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def not_after(self) -> datetime:
        """End of the contract chain's validity (UTC)."""
        return self.contract_chain.not_after  # type: ignore[no-any-return]

    def install_into(self, wallet: Any) -> Any:
        """Store the contract in ``wallet`` (a :class:`plugcharge.pnc.wallet.ContractWallet`);
        returns its ``ContractInfo``."""
        return wallet.install(self.leaf, self.sub_cas, self.private_key, emaid=self.emaid)


def _res_body(message: Mapping[str, Any]) -> Mapping[str, Any]:
    body = message.get("CertificateInstallationRes") if isinstance(message, Mapping) else None
    if not isinstance(body, Mapping):
        raise PnC20Error(FAILED, "not an ISO 15118-20 CertificateInstallationRes")
    return body


def installation_pending(message: Mapping[str, Any]) -> bool:
    """True when the response says the charger is still waiting for the backend
    (``EVSEProcessing`` is not ``Finished``): the EV repeats its request."""
    return _res_body(message).get("EVSEProcessing") != "Finished"


def verify_certificate_installation_res(message: Mapping[str, Any], *, oem: OEMProvisioning20Like, store: Any,
                                        at: datetime, codecs: Optional[CodecProvider] = None,
                                        cache: Any = None) -> InstalledContract:
    """EV side: check a decoded, finished -20 ``CertificateInstallationRes`` and recover the contract.

    Args:
        oem: the OEM provisioning credentials the request was signed with (their key decrypts).
        store: a ``pki.TrustStore`` with the V2G roots (CPS chain; contract chains anchored there)
            and the MO roots the EV knows (contract chains).
        at: validation time (aware UTC).

    Raises:
        PnC20Error: the response's own code when it is not ``OK``; ``FAILED`` when it is still
            Ongoing, malformed or uses the X448 transport; a chain code for the CPS or contract
            chain; ``FAILED_SignatureError`` for the CPS signature; ``FAILED`` when the key does not
            decrypt [V2G20-2504] or does not belong to the contract certificate [V2G20-2507].
    """
    from pki.errors import KeyTransportError
    from pki.keytransport import decrypt_contract_key
    from pki.verify import verify_chain

    body = _res_body(message)
    code = body.get("ResponseCode")
    if code != OK:
        raise PnC20Error(str(code), "the charger answered CertificateInstallationReq without a contract")
    if installation_pending(message):
        raise PnC20Error(FAILED, "EVSEProcessing is not Finished: repeat the request, this response carries no contract")
    try:
        cps_leaf, cps_subs = chain_certs(body["CPSCertificateChain"])
        data = body["SignedInstallationData"]
        leaf, subs = chain_certs(data["ContractCertificateChain"])
        curve, dh = data["ECDHCurve"], bytes(data["DHPublicKey"])
        remaining = int(body["RemainingContractCertificateChains"])
    except (KeyError, TypeError, AttributeError, ValueError):
        raise PnC20Error(FAILED, "CertificateInstallationRes lacks a mandatory element") from None
    try:
        cps = verify_chain(cps_leaf, cps_subs, store=store, profile="iso20-cps", at=at, cache=cache)
    except ValueError as exc:
        raise chain_error(exc, "CPS chain", unknown_anchor=WARNING_NO_CERTIFICATE_AVAILABLE) from None
    try:
        verify_message(message, leaf_key(cps), codecs=codecs, suite=ISO20_SUITES)
    except SignatureError as exc:
        raise PnC20Error(FAILED_SIGNATURE_ERROR, f"CPS signature over SignedInstallationData: {exc}") from None
    if curve != "SECP521" or "SECP521_EncryptedPrivateKey" not in data:
        raise PnC20Error(FAILED, f"ECDHCurve {curve!r}: only the SECP521 key transport is supported")
    try:
        contract = verify_chain(leaf, subs, store=store, profile="iso20-contract", at=at, cache=cache)
    except ValueError as exc:
        raise chain_error(exc, "contract chain", unknown_anchor=WARNING_NO_CERTIFICATE_AVAILABLE) from None
    try:
        _, pcid = common_name(bytes(oem.leaf))
        key = decrypt_contract_key(bytes(data["SECP521_EncryptedPrivateKey"]), dh, oem.private_key, leaf,  # type: ignore[arg-type]
                                   iso=_EDITION, pcid=pcid)
    except (KeyTransportError, ValueError) as exc:
        raise PnC20Error(FAILED, f"contract key rejected [V2G20-2504]: {exc}") from None
    return InstalledContract(emaid=contract.emaid or "", leaf=leaf, sub_cas=tuple(subs), private_key=key,
                             remaining_contract_chains=remaining, contract_chain=contract, cps_chain=cps)
