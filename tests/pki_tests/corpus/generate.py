"""Regenerate the chain-validation corpus in this directory (committed; test certificates only).

    PYTHONPATH=. python tests/pki_tests/corpus/generate.py

Writes ``cases.json`` and content-addressed ``certs/<sha256[:16]>.der``. Sources: the conformant
chains of every profile and ``pki._broken.broken_chains`` (one broken rule each) for the three test
PKIs (-2 P-256, -20 P-521, -20 Ed448, seed 15118, reference time 2026-06-01T12:00Z), plus
hand-made structural cases (truncated / trailing bytes / oversized DER, reordered and duplicated
intermediates, a root offered only as intermediate). Deterministic with cryptography >= 45.
"""
from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from pki._broken import broken_chains  # noqa: E402
from pki.issue import issue_test_pki  # noqa: E402

SEED = 15118
AT = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
VARIANTS = ((2, "secp256r1"), (20, "secp521r1"), (20, "ed448"))


def main() -> None:
    certs = HERE / "certs"
    certs.mkdir(exist_ok=True)
    for old in certs.glob("*.der"):
        old.unlink()

    def ref(der: bytes) -> str:
        name = hashlib.sha256(der).hexdigest()[:16] + ".der"
        (certs / name).write_bytes(der)
        return name

    cases = []

    def add(variant: str, name: str, profile: str, expect: str, leaf: bytes, inter, roots, description: str) -> None:
        cases.append({
            "id": f"{variant}/{name}",
            "profile": profile,
            "expect": expect,
            "leaf": ref(leaf),
            "intermediates": [ref(d) for d in inter],
            "roots": {role: [ref(d) for d in ders] for role, ders in roots.items()},
            "description": description,
        })

    for iso, alg in VARIANTS:
        pki = issue_test_pki(iso, seed=SEED, now=AT, algorithm=alg)
        variant = f"iso{iso}-{alg}"
        roots = pki.store_roots()
        for name, c in pki.chains().items():
            add(variant, f"valid-{name}", name, "VALID", c.leaf, c.intermediates, roots, "conformant chain")
        for name, c in sorted(broken_chains(iso, pki=pki, seed=SEED).items()):
            add(variant, name, c.profile, c.reason or "VALID", c.leaf, c.intermediates, c.roots, c.description)
        if iso != 2 and alg != "secp521r1":
            continue
        c = pki.chain(f"iso{iso}-contract")
        prof = f"iso{iso}-contract"
        sub2, sub1 = c.intermediates
        add(variant, "reordered", prof, "VALID", c.leaf, [sub1, sub2], roots, "intermediates root-side first")
        add(variant, "duplicates-and-extras", prof, "VALID", c.leaf,
            [sub1, pki.cert("cpo-sub2"), sub2, sub1, c.leaf], roots, "duplicates, an unrelated Sub-CA, the leaf")
        add(variant, "truncated-leaf", prof, "MALFORMED", c.leaf[:-1], c.intermediates, roots, "last byte cut")
        add(variant, "truncated-sub-ca", prof, "MALFORMED", c.leaf, [sub2[: len(sub2) // 2], sub1], roots,
            "Sub-CA 2 cut in half")
        add(variant, "trailing-bytes", prof, "MALFORMED", c.leaf + b"\x00\x00", c.intermediates, roots,
            "two bytes after the certificate")
        add(variant, "not-der", prof, "MALFORMED", b"-----BEGIN CERTIFICATE-----", c.intermediates, roots,
            "PEM header instead of DER")
        add(variant, "oversized-garbage", prof, "TOO_LARGE", b"\x30\x82\x40\x01" + b"\x00" * 0x4001,
            c.intermediates, roots, "16 KiB SEQUENCE (over the parse limit)")
        add(variant, "root-as-intermediate", prof, "UNTRUSTED_ROOT", c.leaf, [sub2, sub1, pki.cert("mo-root")],
            {"v2g": roots["v2g"], "oem": roots["oem"]}, "MO root offered on the wire but not in the store")
        add(variant, "no-intermediates", prof, "UNKNOWN_ISSUER", c.leaf, [], roots, "leaf alone")
    (HERE / "cases.json").write_text(json.dumps({"at": AT.isoformat(), "seed": SEED, "cases": cases}, indent=1) + "\n")
    print(f"{len(cases)} cases, {len(list(certs.glob('*.der')))} certificates")


if __name__ == "__main__":
    main()
