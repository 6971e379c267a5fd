"""The EV's contract wallet: Plug & Charge settings, OEM provisioning credentials, contracts.

What the driver sees: Plug & Charge is switched on or off in the car's settings;
the car has a PCID (the CN of its OEM provisioning certificate) to give to an e-mobility
provider; on the next charge the contract is installed over the cable; installed contracts are
listed (eMAID, provider, validity) and can be deleted; the newest contract always wins; a
workshop may wipe them all; switching Plug & Charge off stops their use.

Contracts of both editions live side by side: a contract's edition follows from its key
(secp256r1: ISO 15118-2; secp521r1 or Ed448: ISO 15118-20 [V2G20-2674, V2G20-2319]), and every
"which contract" question (:meth:`ContractWallet.usable_contract`, ``needs_install``,
``needs_update``, ``payment_option``) is asked per edition (``iso=2`` by default, ``iso=20``): the
newest valid contract of that edition wins.  A -20 vehicle also holds its -20 OEM provisioning
credentials (for the -20 CertificateInstallationReq) and its vehicle certificate (the TLS client
certificate of -20's mutual authentication [V2G20-2430]).

Persistence (one directory, owner-only: 0700 directory, 0600 files)::

    settings.json                  {"enabled": bool}
    oem-provisioning.json          -2 OEM provisioning leaf + Sub-CAs (base64 DER) + key (PKCS#8 PEM)
    oem-provisioning-20.json       the same for ISO 15118-20 (P-521 or Ed448)
    vehicle-20.json                -20 vehicle certificate (TLS client) + Sub-CAs + key
    contract-<id>.json             one file per contract (either edition): leaf, Sub-CAs, key, eMAID, provider

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
import errno
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

from ..core.events import ChargePortLight, InstallationFailed, InstallationStarted, InstallationSucceeded, WalletEvent
from .certs import normalize_emaid

__all__ = [
    "WalletError",
    "ContractInfo",
    "Contract",
    "OEMProvisioning",
    "VehicleCertificate",
    "ContractWallet",
    "ContractKey",
    "edition_of_key",
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
_OEM20 = "oem-provisioning-20.json"
_VEHICLE = "vehicle-20.json"
_CONTRACT_RE = re.compile(r"^contract-([0-9a-f]{16})\.json$")
_TMP_SUFFIX = ".tmp"
#: Update a contract when it expires within this margin (the -20 expiry warning uses 14 days
#: [V2G20-2218]; -2 leaves the choice to the EV).
DEFAULT_UPDATE_MARGIN = dt.timedelta(days=14)


class WalletError(ValueError):
    """The wallet refused an operation or input (bad certificate, key mismatch, unknown id...)."""


#: A contract's private key: secp256r1 (ISO 15118-2), secp521r1 or Ed448 (ISO 15118-20).
ContractKey = Union[ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey]
_EDITION_OF_CURVE = {"secp256r1": 2, "secp521r1": 20}


def edition_of_key(key: object) -> int:
    """The ISO 15118 edition a private key belongs to: 2 for secp256r1 [V2G2-006], 20 for secp521r1
    [V2G20-2674] and Ed448 [V2G20-2319]; :class:`WalletError` for any other key."""
    if isinstance(key, ed448.Ed448PrivateKey):
        return 20
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EDITION_OF_CURVE:
        return _EDITION_OF_CURVE[key.curve.name]
    kind = key.curve.name if isinstance(key, ec.EllipticCurvePrivateKey) else type(key).__name__
    raise WalletError(f"a {kind} key belongs to no ISO 15118 edition (secp256r1, secp521r1 or Ed448)")


def _check_iso(iso: int) -> int:
    if iso not in (2, 20):
        raise WalletError(f"iso must be 2 or 20, not {iso!r}")
    return iso


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
    #: ISO 15118 edition of the contract (2 or 20), from its key
    iso: int = 2


@dataclasses.dataclass(frozen=True)
class Contract:
    """An installed contract: certificate chain and key for PaymentDetails/Authorization."""

    info: ContractInfo
    leaf: bytes
    sub_cas: tuple[bytes, ...]
    private_key: ContractKey = dataclasses.field(repr=False, compare=False)
    #: validity of the whole chain (leaf and Sub-CAs intersected)
    chain_not_before: dt.datetime = dataclasses.field(default=dt.datetime.min.replace(tzinfo=dt.timezone.utc))
    chain_not_after: dt.datetime = dataclasses.field(default=dt.datetime.max.replace(tzinfo=dt.timezone.utc))

    @property
    def emaid(self) -> str:
        """The contract's eMAID (leaf CN)."""
        return self.info.emaid

    @property
    def iso(self) -> int:
        """ISO 15118 edition of the contract (2 or 20)."""
        return self.info.iso

    def valid_at(self, now: dt.datetime) -> bool:
        """Whether every certificate of the chain is valid at ``now``."""
        return self.chain_not_before <= now <= self.chain_not_after


@dataclasses.dataclass(frozen=True)
class OEMProvisioning:
    """The vehicle's OEM provisioning credentials (used for CertificateInstallationReq): the leaf,
    its Sub-CAs (Sub-CA 2 first; -20 sends them in OEMProvisioningCertificateChain) and the key."""

    leaf: bytes
    sub_cas: tuple[bytes, ...]
    private_key: ContractKey = dataclasses.field(repr=False, compare=False)

    @property
    def pcid(self) -> str:
        """The PCID: CN of the OEM provisioning certificate."""
        return _cn(_load_cert(self.leaf, "OEM provisioning certificate"))

    @property
    def iso(self) -> int:
        """ISO 15118 edition of the key (2 or 20)."""
        return edition_of_key(self.private_key)


@dataclasses.dataclass(frozen=True)
class VehicleCertificate:
    """The ISO 15118-20 vehicle certificate: the TLS client certificate of mutual authentication,
    sent with its Sub-CAs and without the root [V2G20-2430/2431]."""

    leaf: bytes
    sub_cas: tuple[bytes, ...]
    private_key: ContractKey = dataclasses.field(repr=False, compare=False)

    @property
    def tls_chain(self) -> tuple[bytes, ...]:
        """What the EV presents in the TLS handshake: leaf, then Sub-CA 2, Sub-CA 1 (no root)."""
        return (self.leaf, *self.sub_cas)


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
    except (ValueError, TypeError):  # the parser's own text (a Rust debug repr) says nothing more
        raise WalletError(f"{what} is not a DER X.509 certificate (it does not parse)") from None


def _cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        raise WalletError(f"certificate {cert.subject.rfc4514_string()} must have exactly one CN")
    return str(attrs[0].value)


def _load_private_key(data: bytes | PrivateKeyTypes) -> ContractKey:
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
        try:
            key: Any = (serialization.load_pem_private_key(raw, password=None) if raw.lstrip().startswith(b"-----")
                        else serialization.load_der_private_key(raw, password=None))
        except (ValueError, TypeError):
            raise WalletError("private key could not be loaded (PKCS#8/SEC1 PEM or DER expected)") from None
    else:
        key = data
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ed448.Ed448PrivateKey)):
        raise WalletError("private key must be an EC or Ed448 key")
    return key


def _key_matches(key: ContractKey, cert: x509.Certificate) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key.public_key().public_bytes(*fmt) == cert.public_key().public_bytes(*fmt)


def _pem(key: ContractKey) -> str:
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


def _build_contract(leaf: bytes, sub_cas: Sequence[bytes], key: ContractKey,
                    provider: Optional[str], emaid_hint: Optional[str]) -> Contract:
    cert = _load_cert(leaf, "contract certificate")
    subs = [_load_cert(s, f"contract Sub-CA #{i}") for i, s in enumerate(sub_cas)]
    emaid = _cn(cert)
    if emaid_hint is not None and normalize_emaid(emaid_hint) != normalize_emaid(emaid):
        raise WalletError(f"eMAID {emaid_hint!r} does not match the contract certificate CN {emaid!r}")
    iso = edition_of_key(key)
    if not _key_matches(key, cert):  # [V2G2-823] / [V2G20-2507]
        raise WalletError("private key does not match the contract certificate's public key")
    for sub in subs:
        if sub.subject == cert.subject:
            raise WalletError("a Sub-CA equals the leaf")
    nb = max([cert.not_valid_before_utc] + [s.not_valid_before_utc for s in subs])
    na = min([cert.not_valid_after_utc] + [s.not_valid_after_utc for s in subs])
    info = ContractInfo(emaid=emaid, provider=provider or _provider_of(emaid),
                        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                        contract_id=contract_id_of(bytes(leaf)), iso=iso)
    return Contract(info, bytes(leaf), tuple(bytes(s) for s in sub_cas), key, nb, na)


def _check_credentials(leaf: bytes, sub_cas: Sequence[bytes], private_key: bytes | PrivateKeyTypes, what: str,
                       iso: Optional[int]) -> tuple[bytes, tuple[bytes, ...], ContractKey]:
    """Leaf, Sub-CAs and key of a credential (OEM provisioning, vehicle), checked: DER, the key
    matches the leaf, and (``iso`` given) the key belongs to that edition."""
    cert = _load_cert(leaf, f"{what} certificate")
    for i, sub in enumerate(sub_cas):
        _load_cert(sub, f"{what} Sub-CA #{i}")
    key = _load_private_key(private_key)
    if iso is not None and edition_of_key(key) != iso:
        raise WalletError(f"the {what} key is not an ISO 15118-{iso} key (secp521r1 or Ed448 for -20)")
    if not _key_matches(key, cert):
        raise WalletError(f"private key does not match the {what} certificate")
    return bytes(leaf), tuple(bytes(s) for s in sub_cas), key


def _credentials_json(leaf: bytes, sub_cas: Sequence[bytes], key: ContractKey) -> dict[str, Any]:
    return {"leaf": _b64(leaf), "sub_cas": [_b64(s) for s in sub_cas], "private_key": _pem(key)}


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
        self._oem20: OEMProvisioning | None = None
        self._vehicle: VehicleCertificate | None = None
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
        self._oem = self._load_credentials(_OEM, "OEM provisioning", OEMProvisioning, None)
        self._oem20 = self._load_credentials(_OEM20, "OEM provisioning", OEMProvisioning, 20)
        self._vehicle = self._load_credentials(_VEHICLE, "vehicle", VehicleCertificate, 20)
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

    def _load_credentials(self, name: str, what: str, kind: Any, iso: Optional[int]) -> Any:
        """A credentials file (leaf, Sub-CAs, key) or None; a damaged one is skipped and reported."""
        if not (self.directory / name).exists():
            return None
        try:
            d = self._read_json(name)
            return kind(*_check_credentials(_unb64(d["leaf"]), [_unb64(s) for s in d["sub_cas"]],
                                            d["private_key"].encode("ascii"), what, iso))
        except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
            self._problem(name, exc)
            return None

    def _problem(self, name: str, exc: BaseException) -> None:
        if isinstance(exc, WalletError) and exc.args:
            reason = exc.args[0]
        elif isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
            reason = "not valid JSON"
        elif isinstance(exc, KeyError):
            reason = f"the field {exc} is missing"
        elif isinstance(exc, OSError):
            reason = (exc.strerror or type(exc).__name__).lower()
        else:
            reason = "damaged (a value does not parse)"
        self.problems.append((name, str(reason)))
        logger.warning("wallet: ignoring unreadable file %s (%s)", name, reason)

    # -- atomic file writes ---------------------------------------------------------------
    def _write_atomic(self, name: str, obj: dict) -> None:
        data = json.dumps({"format": _FORMAT, **obj}, sort_keys=True).encode("utf-8")
        final = self.directory / name
        tmp = self.directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}{_TMP_SUFFIX}"
        try:
            fd = self._ops.open_temp(tmp)
            try:
                self._ops.write(fd, data)
                self._ops.fsync(fd)
            finally:
                self._ops.close(fd)
            self._ops.replace(tmp, final)
        except OSError as exc:  # the old file (if any) is untouched; the temporary one goes
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise WalletError(self._io_problem(f"save {final}", exc)) from exc
        self._ops.fsync_dir(self.directory)

    def _remove(self, name: str) -> None:
        try:
            self._ops.unlink(self.directory / name)
        except OSError as exc:
            raise WalletError(self._io_problem(f"delete {self.directory / name}", exc)) from exc
        self._ops.fsync_dir(self.directory)

    def _io_problem(self, action: str, exc: OSError) -> str:
        """One sentence for a failed file operation: what, why, and what to do (no raw exception)."""
        why = (exc.strerror or type(exc).__name__).lower()
        if exc.errno in (errno.EACCES, errno.EPERM):
            todo = f"check that {self.directory} is writable by this user"
        elif exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            todo = "free some disk space and try again"
        elif exc.errno == errno.EROFS:
            todo = f"{self.directory} is on a read-only file system"
        else:
            todo = f"check {self.directory}"
        return f"cannot {action} ({why}): {todo}"

    # -- settings ------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether Plug & Charge is switched on."""
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Switch Plug & Charge on or off (persisted)."""
        self._write_atomic(_SETTINGS, {"enabled": bool(enabled)})
        self._enabled = bool(enabled)

    # -- OEM provisioning and vehicle certificate ----------------------------------------
    @property
    def oem_provisioning(self) -> OEMProvisioning | None:
        """The ISO 15118-2 OEM provisioning credentials, or ``None`` if the vehicle has none."""
        return self._oem

    def oem_provisioning_for(self, iso: int) -> OEMProvisioning | None:
        """The OEM provisioning credentials of edition ``iso`` (2 or 20), or ``None``."""
        return self._oem if _check_iso(iso) == 2 else self._oem20

    @property
    def pcid(self) -> str | None:
        """The PCID (CN of the OEM provisioning certificate, -2 first, else -20), or ``None``."""
        oem = self._oem or self._oem20
        return oem.pcid if oem else None

    def set_oem_provisioning(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: bytes | PrivateKeyTypes, *,
                             iso: int = 2) -> None:
        """Store the OEM provisioning certificate (DER), its Sub-CAs (DER, Sub-CA 2 first) and key
        (factory step) for edition ``iso``; a -20 key must be secp521r1 or Ed448."""
        cred = _check_credentials(leaf, sub_cas, private_key, "OEM provisioning", 20 if _check_iso(iso) == 20 else None)
        _cn(_load_cert(leaf, "OEM provisioning certificate"))
        self._write_atomic(_OEM if iso == 2 else _OEM20, _credentials_json(*cred))
        if iso == 2:
            self._oem = OEMProvisioning(*cred)
        else:
            self._oem20 = OEMProvisioning(*cred)

    @property
    def vehicle_certificate(self) -> VehicleCertificate | None:
        """The ISO 15118-20 vehicle certificate (mutual TLS client certificate), or ``None``."""
        return self._vehicle

    def set_vehicle_certificate(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: bytes | PrivateKeyTypes) -> None:
        """Store the -20 vehicle certificate, its Sub-CAs (Sub-CA 2 first, no root) and key (factory
        step) [V2G20-2430/2431]; the key must be secp521r1 or Ed448."""
        cred = _check_credentials(leaf, sub_cas, private_key, "vehicle", 20)
        self._write_atomic(_VEHICLE, _credentials_json(*cred))
        self._vehicle = VehicleCertificate(*cred)

    # -- contracts -----------------------------------------------------------------------
    def contracts(self, iso: int | None = None) -> list[ContractInfo]:
        """All installed contracts (of edition ``iso`` when given), newest first (latest notBefore,
        then latest notAfter)."""
        return [c.info for c in self.iter_contracts(iso)]

    def get(self, contract_id: str) -> Contract:
        """The installed contract with this id (raises :class:`WalletError` if unknown)."""
        try:
            return self._contracts[contract_id]
        except KeyError:
            raise WalletError(f"no contract with id {contract_id!r}") from None

    def usable_contract(self, now: dt.datetime, iso: int = 2) -> Contract | None:
        """The contract of edition ``iso`` to use at ``now``: the newest one whose whole chain is valid.

        ``None`` when Plug & Charge is off or no contract of that edition is valid (the car then
        uses ExternalPayment / EIM).  "Newest" = latest notBefore of the leaf, then latest notAfter.
        """
        _check_iso(iso)
        if not self._enabled:
            return None
        valid = [c for c in self._contracts.values() if c.info.iso == iso and c.valid_at(now)]
        return max(valid, key=_newest_key) if valid else None

    def needs_install(self, now: dt.datetime, iso: int = 2) -> bool:
        """Plug & Charge is on and no contract of edition ``iso`` is usable: install one over the cable."""
        return self._enabled and self.usable_contract(now, iso) is None

    def needs_update(self, now: dt.datetime, margin: dt.timedelta = DEFAULT_UPDATE_MARGIN, iso: int = 2) -> bool:
        """The usable contract's chain expires within ``margin``: update it over the cable."""
        c = self.usable_contract(now, iso)
        return c is not None and c.chain_not_after - now <= margin

    def payment_option(self, now: dt.datetime, iso: int = 2) -> str:
        """``"Contract"`` when a contract of edition ``iso`` is usable at ``now``, else ``"ExternalPayment"``."""
        return "Contract" if self.usable_contract(now, iso) is not None else "ExternalPayment"

    def install(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: bytes | PrivateKeyTypes, *,
                provider: str | None = None, emaid: str | None = None) -> ContractInfo:
        """Store a contract (leaf DER, Sub-CA DERs leaf-side first, private key).

        The key's kind gives the contract's edition (:func:`edition_of_key`).  Checks that the key
        matches the certificate [V2G2-823] / [V2G20-2507] and, if ``emaid`` is given, that it
        equals the certificate CN.  Installing the same certificate again is a no-op.  Older
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

    def iter_contracts(self, iso: int | None = None) -> Iterable[Contract]:
        """Full contract records (of edition ``iso`` when given), newest first."""
        chosen = self._contracts.values() if iso is None else [c for c in self._contracts.values()
                                                                  if c.info.iso == _check_iso(iso)]
        return sorted(chosen, key=_newest_key, reverse=True)
