"""Command line of the certificate engine: ``python -m pki issue-test-pki DIR [--iso 2|20] [--seed N] [--at T]``.

Writes a complete, profile-conformant test PKI (see :mod:`pki.issue`) into ``DIR/iso2`` and/or
``DIR/iso20`` (each with its own ``manifest.json``) plus ``DIR/manifest.json`` listing the variants.
Exit status 0 on success, 2 on bad arguments or when the directory cannot be written.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from .errors import PKIError
from .issue import DEFAULT_EMAID, DEFAULT_PCID, issue_test_pki


def _parse_time(value: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date/time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="python -m pki", description="ISO 15118 certificate engine tools")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("issue-test-pki", help="write a complete ISO 15118 test PKI (certificates, keys, manifest)")
    p.add_argument("directory", type=Path, help="output directory (created if missing)")
    p.add_argument("--iso", type=int, choices=(2, 20), help="edition (default: both)")
    p.add_argument("--algorithm", choices=("secp521r1", "ed448"), help="-20 key algorithm (default secp521r1)")
    p.add_argument("--oem-provisioning-algorithm", choices=("secp521r1", "ed448"),
                   help="-20 key algorithm of the OEM provisioning leaf only (default: --algorithm); an Ed448 PKI "
                        "that installs contracts needs secp521r1 here (the contract-key transport agrees keys on it)")
    p.add_argument("--seed", type=int, help="derive keys and serials from this seed (reproducible output)")
    p.add_argument("--at", type=_parse_time, help="reference time (ISO 8601, default now); certificates start 1 day earlier")
    p.add_argument("--emaid", default=DEFAULT_EMAID, help=f"contract certificate CN (default {DEFAULT_EMAID})")
    p.add_argument("--pcid", default=DEFAULT_PCID, help=f"OEM provisioning certificate CN (default {DEFAULT_PCID})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    now = args.at or datetime.now(timezone.utc)
    variants = [args.iso] if args.iso else [2, 20]
    index = {}
    try:
        for iso in variants:
            algorithm = args.algorithm if iso == 20 else None
            oem_algorithm = args.oem_provisioning_algorithm if iso == 20 else None
            pki = issue_test_pki(iso, seed=args.seed, now=now, emaid=args.emaid, pcid=args.pcid, algorithm=algorithm,
                                 oem_provisioning_algorithm=oem_algorithm)
            manifest = pki.write(args.directory / f"iso{iso}")
            index[f"iso{iso}"] = str(manifest.relative_to(args.directory))
            print(f"ISO 15118-{iso} ({pki.algorithm}): {len(pki.certificates)} certificates -> {manifest.parent}")
        (args.directory / "manifest.json").write_text(json.dumps({"format": "plugcharge-test-pki-index/1",
                                                                  "variants": index}, indent=2) + "\n")
    except (PKIError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
