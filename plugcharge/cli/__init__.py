"""The ``plugcharge`` command line (also ``python -m plugcharge``).

Subcommands::

    plugcharge demo   [--data-dir DIR] [--dc|--ac] [--eim] [--fail-installation] [--seed N] [--protocol iso2|din|iso20] [--bpt] [--csms [URL]]
    plugcharge wallet list|delete ID|wipe|enable|disable [--data-dir DIR]
    plugcharge pcid   [--data-dir DIR]
    plugcharge csms   [--listen HOST:PORT] [--data-dir DIR] | activate PCID | revoke EMAID | list
    plugcharge init   [--data-dir DIR] [--seed N] [--no-iso20]
    plugcharge charger --interface IF [--data-dir DIR] [--csms URL] [--protocol P ...] [--json] ...
    plugcharge ev     --interface IF [--data-dir DIR] [--protocol P ...] [--eim] [--json] ...

The data directory defaults to ``$PLUGCHARGE_DATA_DIR`` or ``./plugcharge-demo``; the EV wallet
lives in its ``wallet/`` folder, the test PKIs in ``pki/`` and ``pki20/``, the charger's TLS files in
``charger/`` (:mod:`~plugcharge.cli.datadir`).  Each command is a module of this package
(:mod:`~plugcharge.cli.demo`, :mod:`~plugcharge.cli.wallet`, :mod:`~plugcharge.cli.pcid`,
:mod:`~plugcharge.cli.csms`, :mod:`~plugcharge.cli.init`, :mod:`~plugcharge.cli.charger`, :mod:`~plugcharge.cli.ev`)
with ``register(subparsers)`` and ``run(args, out, err)``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Optional, Sequence

from . import charger, csms, demo, demo20, ev, init, pcid, wallet  # noqa: F401 - demo20 registers the -20 demo run

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``plugcharge`` command (one module of this package per command)."""
    parser = argparse.ArgumentParser(
        prog="plugcharge", description="ISO 15118 Plug & Charge: demo session, a charger and an EV on a network "
                                       "interface, EV contract wallet, test CSMS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log library messages (INFO) to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (demo, init, charger, ev, wallet, pcid, csms):
        command.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None, *, out: Callable[[str], None] = print,
         err: Optional[Callable[[str], None]] = None) -> int:
    """Run the ``plugcharge`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    if err is None:
        def err(text: str) -> None:
            print(text, file=sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if getattr(args, "run", None) is not None:
            return int(args.run(args, out, err))
    except KeyboardInterrupt:
        err("plugcharge: interrupted")
        return 130
    parser.print_help()
    return 2
