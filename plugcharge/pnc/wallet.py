"""The EV's contract wallet: Plug & Charge settings, OEM provisioning credentials, contracts.

What the driver sees (DEVELOPERS.md): Plug & Charge is switched on or off in the car's settings;
the car has a PCID (the CN of its OEM provisioning certificate) to give to an e-mobility
provider; on the next charge the contract is installed over the cable; installed contracts are
listed (eMAID, provider, validity) and can be deleted; the newest contract always wins; a
workshop may wipe them all; switching Plug & Charge off stops their use.

Persistence (one directory, owner-only: 0700 directory, 0600 files)::

    settings.json                  {"enabled": bool}
    oem-provisioning.json          OEM provisioning leaf + Sub-CAs (base64 DER) + key (PKCS#8 PEM)
    contract-<id>.json             one file per contract: leaf, Sub-CAs, key, eMAID, provider

Every file is replaced atomically (temp file in the same directory, ``fsync``, ``os.replace``,
``fsync`` of the directory), and each contract lives in exactly one file, so a crash at any
point leaves every previously installed contract intact and each file either old or new, never
half-written.  Leftover temp files are removed when the wallet is opened; a file that cannot be
parsed (e.g. damaged by hand) is skipped and reported in :attr:`ContractWallet.problems`.

Private keys never appear in ``repr``, logs or error messages.  The wallet has no clock: callers
pass ``now`` (aware UTC datetimes).

Status events for the driver display and the charge-port light (:class:`WalletEvent`) are
emitted by the session layer while it installs a contract; they are defined in
:mod:`plugcharge.core.events` and re-exported here.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from ..core.events import ChargePortLight, InstallationFailed, InstallationStarted, InstallationSucceeded, WalletEvent
from .certs import normalize_emaid

__all__ = [
    "WalletError",
    "ContractInfo",
    "Contract",
    "OEMProvisioning",
    "ContractWallet",
    "FileOps",
    "ChargePortLight",
    "WalletEvent",
    "InstallationStarted",
    "InstallationSucceeded",
    "InstallationFailed",
    "DEFAULT_UPDATE_MARGIN",
    "normalize_emaid",
    "contract_id_of",
]

logger = logging.getLogger(__name__)

_FORMAT = 1
_SETTINGS = "settings.json"
_OEM = "oem-provisioning.json"
_CONTRACT_RE = re.compile(r"^contract-([0-9a-f]{16})\.json$")
_TMP_SUFFIX = ".tmp"
#: Update a contract when it expires within this margin (the -20 expiry warning uses 14 days
#: [V2G20-2218]; -2 leaves the choice to the EV).
DEFAULT_UPDATE_MARGIN = dt.timedelta(days=14)


class WalletError(ValueError):
    """The wallet refused an operation or input (bad certificate, key mismatch, unknown id...)."""


# ---------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class ContractInfo:
    """What the driver sees of a contract (no key material)."""

    emaid: str
    provider: str
    not_before: dt.datetime
    not_after: dt.datetime
    contract_id: str


@dataclasses.dataclass(frozen=True)
class Contract:
    """An installed contract: certificate chain and key for PaymentDetails/Authorization."""

    info: ContractInfo
    leaf: bytes
    sub_cas: tuple[bytes, ...]
    private_key: ec.EllipticCurvePrivateKey = dataclasses.field(repr=False, compare=False)
    #: validity of the whole chain (leaf and Sub-CAs intersected)
    chain_not_before: dt.datetime = dataclasses.field(default=dt.datetime.min.replace(tzinfo=dt.timezone.utc))
    chain_not_after: dt.datetime = dataclasses.field(default=dt.datetime.max.replace(tzinfo=dt.timezone.utc))

    @property
    def emaid(self) -> str:
        """The contract's eMAID (leaf CN)."""
        return self.info.emaid

    def valid_at(self, now: dt.datetime) -> bool:
        """Whether every certificate of the chain is valid at ``now``."""
        return self.chain_not_before <= now <= self.chain_not_after


@dataclasses.dataclass(frozen=True)
class OEMProvisioning:
    """The vehicle's OEM provisioning credentials (used for CertificateInstallationReq)."""

    leaf: bytes
    sub_cas: tuple[bytes, ...]
    private_key: ec.EllipticCurvePrivateKey = dataclasses.field(repr=False, compare=False)

    @property
    def pcid(self) -> str:
        """The PCID: CN of the OEM provisioning certificate."""
        return _cn(_load_cert(self.leaf, "OEM provisioning certificate"))


# ---------------------------------------------------------------------------------------------
# file operations (injectable for crash tests)
# ---------------------------------------------------------------------------------------------
class FileOps:
    """The file-system primitives the wallet uses, one method per step, so that tests can
    simulate a crash between any two of them."""

    def open_temp(self, path: Path) -> int:
        """Create ``path`` exclusively with mode 0600 and return the descriptor."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)

    def write(self, fd: int, data: bytes) -> None:
        """Write all of ``data``."""
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def fsync(self, fd: int) -> None:
        """Flush the file to stable storage."""
        os.fsync(fd)

    def close(self, fd: int) -> None:
        """Close the descriptor."""
        os.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        """Atomically rename ``src`` over ``dst``."""
        os.replace(src, dst)

    def unlink(self, path: Path) -> None:
        """Remove ``path``."""
        os.unlink(path)

    def fsync_dir(self, directory: Path) -> None:
        """Make renames/unlinks in ``directory`` durable (no-op where unsupported)."""
        try:
            fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _load_cert(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(bytes(der))
    except (ValueError, TypeError) as exc:
        raise WalletError(f"{what} is not a DER X.509 certificate: {exc}") from None


def _cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        raise WalletError(f"certificate {cert.subject.rfc4514_string()} must have exactly one CN")
    return str(attrs[0].value)


def _load_private_key(data: bytes | PrivateKeyTypes) -> ec.EllipticCurvePrivateKey:
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
        try:
            key: Any = (serialization.load_pem_private_key(raw, password=None) if raw.lstrip().startswith(b"-----")
                        else serialization.load_der_private_key(raw, password=None))
        except (ValueError, TypeError):
            raise WalletError("private key could not be loaded (PKCS#8/SEC1 PEM or DER expected)") from None
    else:
        key = data
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise WalletError("private key must be an EC key")
    return key


def _key_matches(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*fmt) == cert.public_key().public_bytes(*fmt)


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: Any) -> bytes:
    if not isinstance(s, str):
        raise WalletError("expected a base64 string")
    try:
        return base64.b64decode(s, validate=True)
    except ValueError:
        raise WalletError("invalid base64") from None


def _provider_of(emaid: str) -> str:
    e = normalize_emaid(emaid)
    return f"{e[:2]}-{e[2:5]}" if len(e) >= 5 else e


def contract_id_of(leaf: bytes) -> str:
    """Stable id of a contract: first 16 hex digits of SHA-256 over the leaf DER."""
    return hashlib.sha256(leaf).hexdigest()[:16]


def _build_contract(leaf: bytes, sub_cas: Sequence[bytes], key: ec.EllipticCurvePrivateKey,
                    provider: Optional[str], emaid_hint: Optional[str]) -> Contract:
    cert = _load_cert(leaf, "contract certificate")
    subs = [_load_cert(s, f"contract Sub-CA #{i}") for i, s in enumerate(sub_cas)]
    emaid = _cn(cert)
    if emaid_hint is not None and normalize_emaid(emaid_hint) != normalize_emaid(emaid):
        raise WalletError(f"eMAID {emaid_hint!r} does not match the contract certificate CN {emaid!r}")
    if not _key_matches(key, cert):  # [V2G2-823]
        raise WalletError("private key does not match the contract certificate's public key")
    for sub in subs:
        if sub.subject == cert.subject:
            raise WalletError("a Sub-CA equals the leaf")
    nb = max([cert.not_valid_before_utc] + [s.not_valid_before_utc for s in subs])
    na = min([cert.not_valid_after_utc] + [s.not_valid_after_utc for s in subs])
    info = ContractInfo(emaid=emaid, provider=provider or _provider_of(emaid),
                        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                        contract_id=contract_id_of(bytes(leaf)))
    return Contract(info, bytes(leaf), tuple(bytes(s) for s in sub_cas), key, nb, na)


def _newest_key(c: Contract) -> tuple[dt.datetime, dt.datetime, str]:
    return (c.info.not_before, c.info.not_after, c.info.contract_id)


# ---------------------------------------------------------------------------------------------
# the wallet
# ---------------------------------------------------------------------------------------------
class ContractWallet:
    """The EV's persistent contract wallet (see the module docstring).

    ``ContractWallet(directory)`` creates the directory (0700) if needed and loads its state.
    Until :meth:`set_enabled` has saved the driver's choice, Plug & Charge is
    ``enabled_default`` (off unless told otherwise).
    """

    def __init__(self, directory: str | os.PathLike[str], *, enabled_default: bool = False,
                 file_ops: FileOps | None = None) -> None:
        self.directory = Path(directory)
        self._ops = file_ops or FileOps()
        #: files that could not be loaded: (file name, reason)
        self.problems: list[tuple[str, str]] = []
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (self.directory.stat().st_mode & 0o777) != 0o700:
            os.chmod(self.directory, 0o700)
        self._enabled = enabled_default
        self._oem: OEMProvisioning | None = None
        self._contracts: dict[str, Contract] = {}
        self._load()

    def __repr__(self) -> str:
        return (f"ContractWallet({str(self.directory)!r}, enabled={self._enabled}, "
                f"pcid={self.pcid!r}, contracts={len(self._contracts)})")

    # -- loading -------------------------------------------------------------------------
    def _read_json(self, name: str) -> Any:
        path = self.directory / name
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise WalletError("unknown file format")
        return data

    def _load(self) -> None:
        for entry in sorted(os.listdir(self.directory)):
            if entry.endswith(_TMP_SUFFIX):  # debris of an interrupted write
                try:
                    os.unlink(self.directory / entry)
                except OSError:
                    pass
        if (self.directory / _SETTINGS).exists():
            try:
                self._enabled = bool(self._read_json(_SETTINGS)["enabled"])
            except (OSError, ValueError, KeyError) as exc:
                self._problem(_SETTINGS, exc)
        if (self.directory / _OEM).exists():
            try:
                d = self._read_json(_OEM)
                key = _load_private_key(d["private_key"].encode("ascii"))
                leaf = _unb64(d["leaf"])
                if not _key_matches(key, _load_cert(leaf, "OEM provisioning certificate")):
                    raise WalletError("OEM provisioning key does not match its certificate")
                self._oem = OEMProvisioning(leaf, tuple(_unb64(s) for s in d["sub_cas"]), key)
            except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
                self._problem(_OEM, exc)
        for entry in sorted(os.listdir(self.directory)):
            m = _CONTRACT_RE.match(entry)
            if not m:
                continue
            try:
                d = self._read_json(entry)
                c = _build_contract(_unb64(d["leaf"]), [_unb64(s) for s in d["sub_cas"]],
                                    _load_private_key(d["private_key"].encode("ascii")), d.get("provider"), d.get("emaid"))
                if c.info.contract_id != m.group(1):
                    raise WalletError("file name does not match the contract id")
                self._contracts[c.info.contract_id] = c
            except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
                self._problem(entry, exc)

    def _problem(self, name: str, exc: BaseException) -> None:
        reason = exc.args[0] if isinstance(exc, WalletError) and exc.args else type(exc).__name__
        self.problems.append((name, str(reason)))
        logger.warning("wallet: ignoring unreadable file %s (%s)", name, reason)

    # -- atomic file writes ---------------------------------------------------------------
    def _write_atomic(self, name: str, obj: dict) -> None:
        data = json.dumps({"format": _FORMAT, **obj}, sort_keys=True).encode("utf-8")
        final = self.directory / name
        tmp = self.directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}{_TMP_SUFFIX}"
        fd = self._ops.open_temp(tmp)
        try:
            self._ops.write(fd, data)
            self._ops.fsync(fd)
        finally:
            self._ops.close(fd)
        self._ops.replace(tmp, final)
        self._ops.fsync_dir(self.directory)

    def _remove(self, name: str) -> None:
        self._ops.unlink(self.directory / name)
        self._ops.fsync_dir(self.directory)

    # -- settings ------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether Plug & Charge is switched on."""
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Switch Plug & Charge on or off (persisted)."""
        self._write_atomic(_SETTINGS, {"enabled": bool(enabled)})
        self._enabled = bool(enabled)

    # -- OEM provisioning ----------------------------------------------------------------
    @property
    def oem_provisioning(self) -> OEMProvisioning | None:
        """The OEM provisioning credentials, or ``None`` if the vehicle has none."""
        return self._oem

    @property
    def pcid(self) -> str | None:
        """The PCID (CN of the OEM provisioning certificate), or ``None``."""
        return self._oem.pcid if self._oem else None

    def set_oem_provisioning(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: bytes | PrivateKeyTypes) -> None:
        """Store the OEM provisioning certificate (DER), its Sub-CAs (DER) and key (factory step)."""
        cert = _load_cert(leaf, "OEM provisioning certificate")
        for i, s in enumerate(sub_cas):
            _load_cert(s, f"OEM Sub-CA #{i}")
        key = _load_private_key(private_key)
        if not _key_matches(key, cert):
            raise WalletError("private key does not match the OEM provisioning certificate")
        _cn(cert)
        self._write_atomic(_OEM, {"leaf": _b64(bytes(leaf)), "sub_cas": [_b64(bytes(s)) for s in sub_cas],
                                  "private_key": _pem(key)})
        self._oem = OEMProvisioning(bytes(leaf), tuple(bytes(s) for s in sub_cas), key)

    # -- contracts -----------------------------------------------------------------------
    def contracts(self) -> list[ContractInfo]:
        """All installed contracts, newest first (latest notBefore, then latest notAfter)."""
        return [c.info for c in sorted(self._contracts.values(), key=_newest_key, reverse=True)]

    def get(self, contract_id: str) -> Contract:
        """The installed contract with this id (raises :class:`WalletError` if unknown)."""
        try:
            return self._contracts[contract_id]
        except KeyError:
            raise WalletError(f"no contract with id {contract_id!r}") from None

    def usable_contract(self, now: dt.datetime) -> Contract | None:
        """The contract to use at ``now``: the newest one whose whole chain is valid.

        ``None`` when Plug & Charge is off or no contract is valid (the car then uses
        ExternalPayment).  "Newest" = latest notBefore of the leaf, then latest notAfter.
        """
        if not self._enabled:
            return None
        valid = [c for c in self._contracts.values() if c.valid_at(now)]
        return max(valid, key=_newest_key) if valid else None

    def needs_install(self, now: dt.datetime) -> bool:
        """Plug & Charge is on and no contract is usable: install one over the cable."""
        return self._enabled and self.usable_contract(now) is None

    def needs_update(self, now: dt.datetime, margin: dt.timedelta = DEFAULT_UPDATE_MARGIN) -> bool:
        """The usable contract's chain expires within ``margin``: update it over the cable."""
        c = self.usable_contract(now)
        return c is not None and c.chain_not_after - now <= margin

    def payment_option(self, now: dt.datetime) -> str:
        """``"Contract"`` when a contract is usable at ``now``, else ``"ExternalPayment"``."""
        return "Contract" if self.usable_contract(now) is not None else "ExternalPayment"

    def install(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: bytes | PrivateKeyTypes, *,
                provider: str | None = None, emaid: str | None = None) -> ContractInfo:
        """Store a contract (leaf DER, Sub-CA DERs leaf-side first, private key).

        Checks that the key matches the certificate [V2G2-823] and, if ``emaid`` is given, that
        it equals the certificate CN.  Installing the same certificate again is a no-op.  Older
        contracts are kept; :meth:`usable_contract` prefers the newest.  The contract is durable
        on disk when this returns.
        """
        c = _build_contract(leaf, sub_cas, _load_private_key(private_key), provider, emaid)
        cid = c.info.contract_id
        if cid in self._contracts:
            return self._contracts[cid].info
        self._write_atomic(f"contract-{cid}.json", {
            "emaid": c.info.emaid, "provider": c.info.provider, "leaf": _b64(c.leaf),
            "sub_cas": [_b64(s) for s in c.sub_cas], "private_key": _pem(c.private_key)})
        self._contracts[cid] = c
        logger.info("wallet: installed contract %s (%s)", c.info.emaid, cid)
        return c.info

    def delete(self, contract_id: str) -> None:
        """Remove one contract (raises :class:`WalletError` if unknown)."""
        if contract_id not in self._contracts:
            raise WalletError(f"no contract with id {contract_id!r}")
        self._remove(f"contract-{contract_id}.json")
        del self._contracts[contract_id]

    def wipe(self) -> None:
        """Remove every contract (as a workshop would); settings and OEM credentials stay."""
        for cid in list(self._contracts):
            self.delete(cid)

    def iter_contracts(self) -> Iterable[Contract]:
        """Full contract records, newest first."""
        return sorted(self._contracts.values(), key=_newest_key, reverse=True)
