"""Command line of the certificate engine: ``python -m pki issue-test-pki DIR [--iso 2|20] [--seed N] [--at T]``.

Writes a complete, profile-conformant test PKI (see :mod:`pki.issue`) into ``DIR/iso2`` and/or
``DIR/iso20`` (each with its own ``manifest.json``) plus ``DIR/manifest.json`` listing the variants.
It refuses to write into a directory that already holds files unless ``--force`` is given.
``--seed`` makes keys and serials reproducible; the certificates' validity starts one day before
``--at`` (default: now), so byte-identical output needs ``--at`` as well.
Exit status 0 on success, 2 on bad arguments or when the directory cannot be written; errors are
one line, ``python -m pki issue-test-pki: error: ...``, as argparse writes its own.
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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("issue-test-pki", help="write a complete ISO 15118 test PKI (certificates, keys, manifest)",
                       description="Write a complete, profile-conformant ISO 15118 test PKI (V2G, MO and OEM "
                                   "roots, Sub-CAs, leaves, private keys, manifest.json) into DIR/iso2 and/or "
                                   "DIR/iso20. Test keys only: never use them in production.")
    p.add_argument("directory", type=Path, help="output directory (created if missing; must be empty unless --force)")
    p.add_argument("--iso", type=int, choices=(2, 20), help="edition (default: both)")
    p.add_argument("--algorithm", choices=("secp521r1", "ed448"),
                   help="ISO 15118-20 key algorithm (default secp521r1; ISO 15118-2 is always secp256r1)")
    p.add_argument("--oem-provisioning-algorithm", choices=("secp521r1", "ed448"),
                   help="-20 key algorithm of the OEM provisioning leaf only (default: --algorithm); an Ed448 PKI "
                        "that installs contracts needs secp521r1 here (the contract-key transport agrees keys on it)")
    p.add_argument("--seed", type=int, help="derive keys and serials from this seed; with --at too, the output is "
                                            "byte-identical from run to run")
    p.add_argument("--at", type=_parse_time, help="reference time (ISO 8601, default now; without a zone: UTC); "
                                                  "certificates start 1 day earlier")
    p.add_argument("--force", action="store_true", help="write into DIR even if it already holds files (overwrites them)")
    p.set_defaults(prog=p.prog)
    p.add_argument("--emaid", default=DEFAULT_EMAID, help=f"contract certificate CN (default {DEFAULT_EMAID})")
    p.add_argument("--pcid", default=DEFAULT_PCID, help=f"OEM provisioning certificate CN (default {DEFAULT_PCID})")
    return parser


def _existing(directory: Path) -> str:
    """The first entries of ``directory`` as text ("" when it does not exist or is empty)."""
    try:
        names = sorted(p.name for p in directory.iterdir())
    except OSError:
        return ""
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = args.prog

    def error(text: str) -> int:
        print(f"{prog}: error: {text}", file=sys.stderr)
        return 2

    for option, value in (("--algorithm", args.algorithm), ("--oem-provisioning-algorithm", args.oem_provisioning_algorithm)):
        if value and args.iso == 2:
            return error(f"{option} {value} applies to ISO 15118-20 only (ISO 15118-2 keys are secp256r1); "
                         "leave it out or use --iso 20")
    if args.directory.exists() and not args.directory.is_dir():
        return error(f"{args.directory} exists and is not a directory")
    existing = _existing(args.directory)
    if existing and not args.force:
        return error(f"{args.directory} already holds files ({existing}): choose a new or empty "
                     "directory, or pass --force to overwrite")
    if args.seed is not None and args.at is None:
        print(f"{prog}: note: --seed without --at: keys and serials are reproducible, the validity dates (and so "
              "the certificates' bytes) follow the current time", file=sys.stderr)
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
    except PKIError as exc:
        return error(str(exc))
    except OSError as exc:
        return error(f"cannot write {exc.filename or args.directory}: {exc.strerror or exc}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
