"""Writing a :class:`pki.issue.TestPKI` to disk with a JSON manifest (not public API).

Layout of ``directory``::

    manifest.json                 roles, files, chains, parameters (format "plugcharge-test-pki/1")
    <role>.der / <role>.pem       every certificate
    <role>.key.pem                PKCS#8 private key, file mode 0600
    trust/<store-role>/<role>.pem the trust anchors again, one folder per TrustStore role
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ._specs import ISSUER_OF, TestPKILike, private_key_pem
from .errors import PKIError
from .profiles import CHAIN_PROFILES, ROOT_OF_STORE_ROLE

MANIFEST_FORMAT = "plugcharge-test-pki/1"


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)  # O_CREAT does not change the mode of an existing file


def write_pki(pki: TestPKILike, directory: Path) -> Path:
    """Write ``pki`` into ``directory`` (created if needed); return the manifest path."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PKIError(f"cannot create {directory}: {exc}") from None
    files: list[dict[str, Any]] = []
    for role in pki.roles:
        der = pki.certificates[role]
        cert = x509.load_der_x509_certificate(der)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        _write(directory / f"{role}.der", der)
        _write(directory / f"{role}.pem", pem)
        _write(directory / f"{role}.key.pem", private_key_pem(pki.keys[role]), 0o600)
        files.append(
            {
                "role": role,
                "profile": f"iso{pki.iso}-{role}",
                "issuer_role": ISSUER_OF[role],
                "der": f"{role}.der",
                "pem": f"{role}.pem",
                "key": f"{role}.key.pem",
                "subject": cert.subject.rfc4514_string(),
                "serial": format(cert.serial_number, "X"),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "size": len(der),
            }
        )
    trust: dict[str, list[str]] = {}
    for store_role, root_role in ROOT_OF_STORE_ROLE.items():
        folder = directory / "trust" / store_role
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / f"{root_role}.pem", x509.load_der_x509_certificate(pki.certificates[root_role]).public_bytes(
            serialization.Encoding.PEM))
        trust[store_role] = [f"trust/{store_role}/{root_role}.pem"]
    chains = {
        name: {
            "leaf": cp.leaf.role,
            "intermediates": [p.role for p in cp.sub_ca_profiles],
            "anchor_role": cp.anchor_roles[0],
            "allowed_anchor_roles": list(cp.anchor_roles),
        }
        for name, cp in CHAIN_PROFILES.items()
        if cp.iso == pki.iso
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "iso": pki.iso,
        "algorithm": pki.algorithm,
        "seed": pki.seed,
        "now": pki.now.isoformat(),
        "emaid": pki.emaid,
        "pcid": pki.pcid,
        "files": files,
        "trust": trust,
        "chains": chains,
    }
    path = directory / "manifest.json"
    _write(path, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())
    return path
