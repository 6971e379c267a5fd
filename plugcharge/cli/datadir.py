"""The data directory the commands share (``plugcharge init`` creates it; ``demo`` uses the same)::

    D/pki/        the ISO 15118-2 test PKI (pki.issue's files: <role>.der/.pem/.key.pem, trust/, manifest.json)
    D/pki20/      the ISO 15118-20 test PKI (same files; secp521r1)
    D/wallet/     the EV's contract wallet: OEM provisioning credentials (-2 and -20, the PCID), the -20
                  vehicle certificate, installed contracts (owner-only files)
    D/charger/    the charger's TLS credentials: secc-chain.pem (SECC leaf, CPO Sub-CA 2, Sub-CA 1),
                  secc-key.pem (0600), secc20-chain.pem and secc20-key.pem for -20, v2g-roots.pem
    D/csms/       the test CSMS's eMSP registry (``plugcharge csms``)

``charger`` reads ``D/charger`` (or files given by options) and the roots of ``D/pki``; ``ev`` the wallet
and the V2G roots of ``D/pki`` (and ``D/pki20``); ``csms`` ``D/pki`` and ``D/csms``.  The test PKIs are
for testing only: their private keys lie beside their certificates.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["DataDir", "CredentialsError", "write_charger_files", "load_secc_credentials", "load_v2g_roots"]


class CredentialsError(ValueError):
    """The charger's certificate or key files are missing or unusable (the message names the file)."""


@dataclasses.dataclass(frozen=True)
class DataDir:
    """The paths of a data directory (see the module docstring)."""

    root: Path

    @property
    def pki(self) -> Path:
        """The ISO 15118-2 test PKI."""
        return self.root / "pki"

    @property
    def pki20(self) -> Path:
        """The ISO 15118-20 test PKI."""
        return self.root / "pki20"

    @property
    def wallet(self) -> Path:
        """The EV's wallet."""
        return self.root / "wallet"

    @property
    def charger(self) -> Path:
        """The charger's TLS credentials."""
        return self.root / "charger"

    @property
    def csms(self) -> Path:
        """The test CSMS's state."""
        return self.root / "csms"

    def secc_chain(self, iso: int = 2) -> Path:
        """The charger's certificate chain file (PEM, leaf first, no root)."""
        return self.charger / ("secc-chain.pem" if iso == 2 else "secc20-chain.pem")

    def secc_key(self, iso: int = 2) -> Path:
        """The charger's private key file (PKCS#8 PEM, mode 0600)."""
        return self.charger / ("secc-key.pem" if iso == 2 else "secc20-key.pem")

    @property
    def v2g_roots(self) -> Path:
        """The V2G roots the charger's chains lead to (PEM), what an EV must trust."""
        return self.charger / "v2g-roots.pem"


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_charger_files(dd: DataDir, pki: Any, pki20: Any = None) -> list[Path]:
    """Write the charger's chains, keys and the V2G roots from the test PKIs into ``dd.charger``
    (rewritten when they differ); returns the files written."""
    dd.charger.mkdir(parents=True, exist_ok=True)
    written = []
    roots = [_pem(pki.cert("v2g-root"))]
    for iso, p in ((2, pki), (20, pki20)):
        if p is None:
            continue
        if iso == 20:
            roots.append(_pem(p.cert("v2g-root")))
        chain = b"".join(_pem(p.cert(role)) for role in ("secc-leaf", "cpo-sub2", "cpo-sub1"))
        key = p.key("secc-leaf").private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
        for path, data, mode in ((dd.secc_chain(iso), chain, 0o644), (dd.secc_key(iso), key, 0o600)):
            if not path.exists() or path.read_bytes() != data:
                _write(path, data, mode)
                written.append(path)
    data = b"".join(roots)
    if not dd.v2g_roots.exists() or dd.v2g_roots.read_bytes() != data:
        _write(dd.v2g_roots, data, 0o644)
        written.append(dd.v2g_roots)
    return written


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"the {what} {path} does not exist (run 'plugcharge init', or name the file "
                               f"with an option)") from None
    except OSError as exc:
        raise CredentialsError(f"the {what} {path} cannot be read ({(exc.strerror or str(exc)).lower()})") from None


def load_secc_credentials(chain_file: Path, key_file: Path) -> tuple[list[bytes], Any]:
    """The SECC chain (DER, leaf first) and its private key from PEM files; :class:`CredentialsError`
    names the file that is missing or unusable (never its content)."""
    text = _read(chain_file, "certificate chain")
    try:
        chain = [c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(text)]
    except ValueError:
        raise CredentialsError(f"the certificate chain {chain_file} holds no PEM certificate") from None
    key_text = _read(key_file, "private key")
    try:
        key = serialization.load_pem_private_key(key_text, password=None)
    except (ValueError, TypeError):
        raise CredentialsError(f"the private key {key_file} is not an unencrypted PEM private key") from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    leaf = x509.load_der_x509_certificate(chain[0])
    if leaf.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise CredentialsError(f"the private key {key_file} is not the key of the first certificate of {chain_file}")
    return chain, key


def load_v2g_roots(files: Sequence[Path]) -> list[bytes]:
    """The certificates (DER) of PEM files (e.g. ``v2g-roots.pem``)."""
    out: list[bytes] = []
    for f in files:
        text = _read(f, "root file")
        try:
            certs = x509.load_pem_x509_certificates(text)
        except ValueError:
            raise CredentialsError(f"the root file {f} holds no PEM certificate") from None
        out += [c.public_bytes(serialization.Encoding.DER) for c in certs]
    return out


def describe(dd: DataDir, say: Callable[[str], None], pki: Any, pki20: Optional[Any], wallet: Any) -> None:
    """The lines ``plugcharge init`` prints about what the directory holds."""
    say(f"ISO 15118-2 test PKI in {dd.pki} (V2G, MO and OEM roots; keys beside the certificates: testing only)")
    if pki20 is not None:
        say(f"ISO 15118-20 test PKI in {dd.pki20} ({pki20.algorithm})")
    say(f"EV wallet in {dd.wallet}: PCID {wallet.pcid}, Plug & Charge {'on' if wallet.enabled else 'off'}, "
        f"{len(wallet.contracts())} contract(s)")
    say(f"charger credentials in {dd.charger}: {dd.secc_chain().name} + {dd.secc_key().name}"
        + (f", {dd.secc_chain(20).name} + {dd.secc_key(20).name}" if pki20 is not None else "")
        + f", {dd.v2g_roots.name}")
