"""The default ISO 15118-20 Plug & Charge of both sides: the EV's wallet and the charger's trust store.

These are the implementations of the seam in :mod:`plugcharge.iso20.pnc` that a session uses when
its security object names none (``EVSecurity.iso20_pnc`` / ``ChargerSecurity.iso20_pnc`` is None):

* :class:`EVPlugAndCharge` on ``EVSecurity.wallet`` (a :class:`plugcharge.pnc.wallet.ContractWallet`
  or anything of :class:`Wallet20Like`'s shape), ``v2g_roots`` and ``mo_roots``: it chooses Plug &
  Charge when the wallet holds a usable -20 contract (the newest valid one wins) or can install one
  (the -20 OEM provisioning credentials and the charger's CertificateInstallationService), renews a
  contract that ends within ``update_before`` by a new installation (-20 has no CertificateUpdate),
  signs CertificateInstallationReq with the OEM provisioning key
  (:mod:`plugcharge.pnc.install20`), checks every signature and chain of the response and decrypts
  the contract key before the wallet stores it, and signs ``PnC_AReqAuthorizationMode`` and
  ``SignedMeteringData`` with the contract key (:mod:`plugcharge.pnc.auth20`; ecdsa-sha512 on
  secp521r1 or Ed448, as the key is).
* :class:`ChargerPlugAndCharge` on ``ChargerSecurity.trust_store`` (the MO/V2G roots that anchor
  contracts; PnC is offered only with one): the contract chain under the -20 contract profile, the
  signature over the GenChallenge, the OCSP request data and the 14-day expiry flag
  (:func:`plugcharge.pnc.auth20.validate_pnc_authorization`), the OEM provisioning leaf's validity
  before a CertificateInstallationReq goes to the backend, and the EV's signature over
  ``SignedMeteringData``.

Failures are :class:`~plugcharge.core.errors.Refused` with the -20 ResponseCode
(:mod:`plugcharge.pnc.codes20`): a ``WARNING_`` code keeps the session (the EV may use EIM), a
``FAILED`` code ends it.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Mapping, Optional, Protocol, Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..core.errors import Refused, SignatureError
from ..pnc.auth20 import pnc_authorization_mode, validate_pnc_authorization
from ..pnc.certs import root_certificate_ids
from ..pnc.codes20 import (
    FAILED, WARNING_CERTIFICATE_EXPIRED, WARNING_CERTIFICATE_NOT_YET_VALID, WARNING_CERTIFICATE_VALIDATION_ERROR,
    Credentials20Like, PnC20Error,
)
from ..pnc.install20 import MAX_ROOT_CERTIFICATE_IDS, certificate_installation_req_body, verify_certificate_installation_res
from ..pnc.signatures import ISO20_SUITES, sign_message, verify_message
from .pnc import ContractIdentity, Signer

__all__ = ["Wallet20Like", "Installed", "EVPlugAndCharge", "ChargerPlugAndCharge", "ev_pnc", "charger_pnc"]

_EDITION = 20


class Wallet20Like(Protocol):
    """What the EV's -20 Plug & Charge needs of its wallet (:class:`plugcharge.pnc.wallet.ContractWallet`)."""

    @property
    def enabled(self) -> bool: ...
    def oem_provisioning_for(self, iso: int) -> Optional[Credentials20Like]: ...
    def usable_contract(self, now: datetime, iso: int = 2) -> Any: ...
    def install(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: Any, *,
                provider: Optional[str] = None, emaid: Optional[str] = None) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Installed:
    """One contract chain the EV accepted and stored: its eMAID and how many more chains the backend
    has for this EV (RemainingContractCertificateChains)."""

    emaid: str
    remaining: int


def _signer(key: Any, codecs: Any) -> Signer:
    def sign(message: dict) -> None:
        sign_message(message, key, codecs=codecs)
    return sign


class EVPlugAndCharge:
    """The EV's -20 Plug & Charge on its wallet (see the module docstring).  Stateless per session:
    what one session chose lives on its handler (``handler.contract``)."""

    def __init__(self, security: Any) -> None:
        self.security = security
        self._store: Any = None

    def _wallet(self) -> Optional[Wallet20Like]:
        wallet = self.security.wallet
        return wallet if wallet is not None and getattr(wallet, "enabled", False) else None

    def _oem(self) -> Optional[Credentials20Like]:
        wallet = self._wallet()
        get = getattr(wallet, "oem_provisioning_for", None)
        return get(_EDITION) if callable(get) else None

    def store(self) -> Any:
        """The EV's trust store: the V2G roots (CPS chains, contracts) and the MO roots (contracts)."""
        if self._store is None:
            from pki.store import TrustStore

            self._store = TrustStore({"v2g": list(self.security.v2g_roots), "mo": list(self.security.mo_roots)})
        return self._store

    def contract(self, at: datetime) -> Any:
        """The newest -20 contract of the wallet valid at ``at`` (None when there is none or PnC is off)."""
        wallet = self._wallet()
        return wallet.usable_contract(at, iso=_EDITION) if wallet is not None else None

    # -- the seam
    def choose(self, handler: Any, services: Sequence[str], installation_offered: bool) -> tuple[Optional[str], str]:
        """``("use" | "install" | None, reason)`` for this session (the reasons of ``PaymentSelected``)."""
        if self.security.wallet is None:
            return None, "no_wallet"
        if self._wallet() is None:
            return None, "plug_and_charge_off"
        if handler.config.pnc_suppressed:
            return None, "plug_and_charge_suppressed_after_failure"
        at = self.security.wall_clock()
        contract = self.contract(at)
        can_install = installation_offered and self._oem() is not None
        if contract is not None:
            if can_install and contract.chain_not_after - at < self.security.update_before:
                return "install", "contract_expires_soon"
            return "use", "contract_available"
        if can_install:
            return "install", "no_contract_install"
        return None, "no_contract_and_no_certificate_service" if not installation_offered else "no_contract"

    def installation_request(self, handler: Any) -> tuple[dict, Optional[Signer]]:
        """The CertificateInstallationReq content and its signer (the OEM provisioning key)."""
        oem = self._oem()
        if oem is None:
            raise PnC20Error(FAILED, "the wallet holds no ISO 15118-20 OEM provisioning credentials")
        roots = [*self.security.v2g_roots, *self.security.mo_roots][:MAX_ROOT_CERTIFICATE_IDS]
        ids = root_certificate_ids(roots) if roots else [("CN=unknown", 0)]  # the schema needs one entry
        body = certificate_installation_req_body(
            oem, root_certificate_ids=ids, maximum_contract_chains=self.security.maximum_contract_chains,
            prioritized_emaids=self.security.prioritized_emaids)
        return body, _signer(oem.private_key, handler._codecs)

    def installation_response(self, handler: Any, body: dict, header: dict, msg: dict) -> Installed:
        """Check a finished CertificateInstallationRes (CPS chain and signature, contract chain, the
        key decrypted and matched) and store the contract; raises :class:`PnC20Error`."""
        oem, wallet = self._oem(), self._wallet()
        if oem is None or wallet is None:
            raise PnC20Error(FAILED, "the wallet can no longer take a contract (Plug & Charge off, no credentials)")
        installed = verify_certificate_installation_res(msg, oem=oem, store=self.store(),
                                                        at=self.security.wall_clock(), codecs=handler._codecs)
        try:
            wallet.install(installed.leaf, installed.sub_cas, installed.private_key, emaid=installed.emaid)
        except Exception as exc:  # WalletError (key/eMAID mismatch), disk full: nothing was stored
            raise PnC20Error(FAILED, f"the wallet refused the contract: {type(exc).__name__}: {exc}") from None
        return Installed(installed.emaid, installed.remaining_contract_chains)

    def authorization_request(self, handler: Any, challenge: bytes) -> tuple[dict, Optional[Signer]]:
        """``PnC_AReqAuthorizationMode`` with the newest usable contract (kept as ``handler.contract``)
        and its signer."""
        contract = self.contract(self.security.wall_clock())
        if contract is None:
            raise PnC20Error(FAILED, "no usable ISO 15118-20 contract in the wallet")
        handler.contract = contract
        return pnc_authorization_mode(contract, challenge), _signer(contract.private_key, handler._codecs)

    def metering_signer(self, handler: Any) -> Optional[Signer]:
        """Signs SignedMeteringData with the contract key of this session."""
        contract = getattr(handler, "contract", None)
        return _signer(contract.private_key, handler._codecs) if contract is not None else None


class ChargerPlugAndCharge:
    """The charger's -20 Plug & Charge on its trust store (see the module docstring)."""

    def __init__(self, security: Any) -> None:
        self.security = security

    def offered(self, handler: Any) -> bool:
        """PnC is offered with a trust store to validate contracts against."""
        return self.security.trust_store is not None

    def installation_offered(self, handler: Any) -> bool:
        """CertificateInstallationService (``ChargerConfig.certificate_service`` is checked by the handler)."""
        return True

    def verify_authorization(self, handler: Any, body: dict, header: dict, msg: dict) -> ContractIdentity:
        """Validate the PnC AuthorizationReq [V2G20-2565]: chain, signature, OCSP data, expiry flag."""
        security = self.security
        try:
            auth = validate_pnc_authorization(msg, gen_challenge=handler._challenge or b"", store=security.trust_store,
                                              at=security.wall_clock(), codecs=handler._codecs,
                                              cache=security.verification_cache,
                                              ocsp=security.ocsp_request_data is None)
        except PnC20Error as exc:
            raise Refused(exc.response_code, exc.hint) from None
        ocsp: Sequence[Mapping[str, Any]] = auth.ocsp_request_data
        if security.ocsp_request_data is not None:
            ocsp = security.ocsp_request_data(auth.certificates)
        return ContractIdentity(auth.emaid, auth.certificates, tuple(ocsp), auth.response_code)

    def check_installation_request(self, handler: Any, body: dict, header: dict, msg: dict) -> None:
        """What the charger checks before it forwards: the OEM provisioning leaf is DER, valid now and
        carries DC=OEM (the backend validates the chain and the signature)."""
        try:
            leaf = bytes(body["OEMProvisioningCertificateChain"]["Certificate"])
            cert = x509.load_der_x509_certificate(leaf)
        except (KeyError, TypeError, ValueError):
            raise Refused(FAILED, "OEMProvisioningCertificateChain holds no DER certificate") from None
        at = self.security.wall_clock()
        if at < cert.not_valid_before_utc:
            raise Refused(WARNING_CERTIFICATE_NOT_YET_VALID, "the OEM provisioning certificate is not valid yet")
        if at > cert.not_valid_after_utc:
            raise Refused(WARNING_CERTIFICATE_EXPIRED, "the OEM provisioning certificate has expired")
        dcs = [str(a.value).upper() for a in cert.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)]
        if dcs and "OEM" not in dcs:
            raise Refused(WARNING_CERTIFICATE_VALIDATION_ERROR, "the OEM provisioning certificate lacks DC=OEM")

    def verify_metering(self, handler: Any, body: dict, header: dict, msg: dict) -> None:
        """The EV's signature over SignedMeteringData with the contract leaf's key (raises SignatureError)."""
        contract = getattr(handler, "_contract", None)
        if contract is None or not contract.chain:
            raise SignatureError("no contract to check the metering signature against")
        try:
            verify_message(msg, bytes(contract.chain[0]), codecs=handler._codecs, suite=ISO20_SUITES)
        except ValueError as exc:  # SignatureError, or a contract certificate that does not load
            raise SignatureError(f"SignedMeteringData: {exc}") from None


def ev_pnc(security: Any) -> Any:
    """The EV's -20 Plug & Charge of ``security``: its ``iso20_pnc``, else the default one on its
    wallet (made once per security object), else None (no wallet: EIM only)."""
    return _resolve(security, "wallet", EVPlugAndCharge)


def charger_pnc(security: Any) -> Any:
    """The charger's -20 Plug & Charge of ``security``: its ``iso20_pnc``, else the default one on its
    trust store (None without one: PnC is not offered)."""
    return _resolve(security, "trust_store", ChargerPlugAndCharge)


def _resolve(security: Any, needs: str, kind: Any) -> Any:
    chosen = getattr(security, "iso20_pnc", None)
    if chosen is not None or getattr(security, needs, None) is None:
        return chosen
    cached = getattr(security, "_iso20_default", None)
    if cached is None:
        cached = kind(security)
        try:
            security._iso20_default = cached
        except AttributeError:  # a slotted stand-in: made again per session
            pass
    return cached
