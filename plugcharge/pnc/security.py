"""The security side of a session, injected by the caller: the EV's wallet and crypto, the charger's
trust store and checks.  Defaults use :mod:`pki`; the clock is the caller's (``wall_clock``).

What a session needs of the EV's wallet is a structural type (:class:`WalletLike`, with
:class:`ContractLike` and :class:`OEMProvisioningLike`): :class:`plugcharge.pnc.wallet.ContractWallet`
is one, tests use in-memory stand-ins.
"""
from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..core.errors import Refused
from .certs import common_name, utcnow

__all__ = [
    "ContractLike", "OEMProvisioningLike", "WalletLike", "EVSecurity", "ChargerSecurity", "certificate_of",
    "check_oem_provisioning",
]


class ContractLike(Protocol):
    """What the session needs of an installed contract (:class:`plugcharge.pnc.wallet.Contract`)."""

    @property
    def emaid(self) -> str: ...
    leaf: bytes
    sub_cas: Sequence[bytes]
    private_key: ec.EllipticCurvePrivateKey
    chain_not_after: datetime


class OEMProvisioningLike(Protocol):
    """The vehicle's OEM provisioning credentials (:class:`plugcharge.pnc.wallet.OEMProvisioning`)."""

    leaf: bytes
    sub_cas: Sequence[bytes]
    private_key: ec.EllipticCurvePrivateKey


class WalletLike(Protocol):
    """What the session needs of the EV's wallet (:class:`plugcharge.pnc.wallet.ContractWallet`)."""

    @property
    def enabled(self) -> bool: ...
    @property
    def pcid(self) -> Optional[str]: ...
    @property
    def oem_provisioning(self) -> Optional[OEMProvisioningLike]: ...
    def usable_contract(self, now: datetime) -> Optional[ContractLike]: ...
    def install(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: Any, *,
                provider: Optional[str] = None, emaid: Optional[str] = None) -> Any: ...


@dataclasses.dataclass
class EVSecurity:
    """Injected contract wallet and crypto (defaults use :mod:`pki`)."""

    wallet: Optional[WalletLike] = None
    #: V2G root certificates (DER): anchor the CPS chain and fill ListOfRootCertificateIDs.
    v2g_roots: Sequence[bytes] = ()
    verify_cps_chain: Optional[Callable[[bytes, Sequence[bytes], datetime], Any]] = None
    decrypt_contract_key: Optional[Callable[..., Any]] = None
    #: Renew a contract that expires within this margin (when the charger offers the service).
    update_before: timedelta = timedelta(days=30)
    wall_clock: Callable[[], datetime] = utcnow
    # ---- ISO 15118-20 Plug & Charge
    #: MO roots (DER) the EV knows: with ``v2g_roots`` they anchor the contract chains it installs
    #: and fill ListOfRootCertificateIDs of the -20 CertificateInstallationReq.
    mo_roots: Sequence[bytes] = ()
    #: How many contract chains a -20 installation fetches (MaximumContractCertificateChains, 1..255).
    maximum_contract_chains: int = 1
    #: The eMAIDs this EV prefers, highest priority first (PrioritizedEMAIDs, at most 8).
    prioritized_emaids: Sequence[str] = ()
    #: The -20 Plug & Charge implementation (:class:`plugcharge.iso20.pnc.EVPnC`); ``None``: the
    #: default one on ``wallet`` and the roots above (:class:`plugcharge.iso20.plugandcharge.EVPlugAndCharge`).
    iso20_pnc: Any = None

    def cps_verifier(self, profile: str = "iso2-cps") -> Callable[[bytes, Sequence[bytes], datetime], Any]:
        """``(leaf, subs, at)`` raising on an invalid CPS chain (default: pki, chain profile ``profile``)."""
        if self.verify_cps_chain is not None:
            return self.verify_cps_chain
        from pki.store import TrustStore
        from pki.verify import verify_chain

        store = TrustStore({"v2g": list(self.v2g_roots)})

        def _verify(leaf: bytes, subs: Sequence[bytes], at: datetime) -> Any:
            return verify_chain(leaf, list(subs), store=store, profile=profile, at=at)
        return _verify

    def decryptor(self, iso: int = 2) -> Callable[..., Any]:
        """``(ciphertext, dh_public_key, receiver_key, contract_cert_der) -> contract key`` (default: pki)."""
        if self.decrypt_contract_key is not None:
            return self.decrypt_contract_key
        from pki.keytransport import decrypt_contract_key

        return lambda ct, dh, key, cert: decrypt_contract_key(ct, dh, key, cert, iso=iso)


@dataclasses.dataclass
class ChargerSecurity:
    """Injected security functions (defaults use :mod:`pki` with ``trust_store``).

    ``verify_contract_chain(leaf, subs, at)`` returns anything (an object with ``emaid`` is used)
    or raises an exception with a ``response_code`` (pki.ChainValidationError has one)."""

    trust_store: Any = None
    verify_contract_chain: Optional[Callable[[bytes, Sequence[bytes], datetime], Any]] = None
    check_oem_certificate: Optional[Callable[[bytes, datetime], None]] = None
    ocsp_request_data: Optional[Callable[[Sequence[bytes]], Sequence[Mapping[str, Any]]]] = None
    sales_tariff_key: Optional[ec.EllipticCurvePrivateKey] = dataclasses.field(default=None, repr=False)
    wall_clock: Callable[[], datetime] = utcnow
    random_bytes: Callable[[int], bytes] = os.urandom
    # ---- ISO 15118-20 Plug & Charge
    #: A ``pki.VerificationCache`` for the contract chains (Sub-CA links verified once); None: none.
    verification_cache: Any = None
    #: The -20 Plug & Charge implementation (:class:`plugcharge.iso20.pnc.ChargerPnC`); ``None``: the
    #: default one on ``trust_store`` (:class:`plugcharge.iso20.plugandcharge.ChargerPlugAndCharge`),
    #: offered when a trust store is set.
    iso20_pnc: Any = None

    def contract_chain_verifier(self, profile: str = "iso2-contract") -> Callable[[bytes, Sequence[bytes], datetime], Any]:
        """``(leaf, subs, at)`` validating a contract chain (default: pki with ``trust_store``)."""
        if self.verify_contract_chain is not None:
            return self.verify_contract_chain
        if self.trust_store is None:
            def _no_store(leaf: bytes, subs: Sequence[bytes], at: datetime) -> Any:
                raise Refused("FAILED_NoCertificateAvailable", "charger has no MO/V2G trust store")
            return _no_store
        from pki.verify import verify_chain

        store = self.trust_store

        def _verify(leaf: bytes, subs: Sequence[bytes], at: datetime) -> Any:
            return verify_chain(leaf, list(subs), store=store, profile=profile, at=at)
        return _verify

    def oem_check(self) -> Callable[[bytes, datetime], None]:
        """``(leaf, at)`` checking an OEM provisioning certificate (default: :func:`check_oem_provisioning`)."""
        return self.check_oem_certificate or check_oem_provisioning


def certificate_of(der: bytes) -> tuple[Any, str]:
    """``(certificate, CN)``; a certificate that is not DER is refused with ``FAILED_CertChainError``."""
    try:
        return common_name(der)
    except ValueError as exc:
        raise Refused("FAILED_CertChainError", f"certificate is not valid DER: {exc}") from None


def check_oem_provisioning(der: bytes, at: datetime) -> None:
    """The OEM provisioning leaf checks a charger can make without the OEM root: validity at ``at``
    and the ``DC=OEM`` domain component.  Raises :class:`~plugcharge.core.errors.Refused`."""
    cert, _ = certificate_of(der)
    if not (cert.not_valid_before_utc <= at <= cert.not_valid_after_utc):
        raise Refused("FAILED_CertificateExpired", "OEM provisioning certificate is outside its validity")
    dcs = cert.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)
    if dcs and str(dcs[0].value).upper() != "OEM":
        raise Refused("FAILED_CertChainError", "OEM provisioning certificate does not carry DC=OEM")
