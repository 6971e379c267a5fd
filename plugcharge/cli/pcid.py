"""``plugcharge pcid``: print the vehicle's PCID (to give to an e-mobility provider)."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from ._common import data_dir_arg, open_wallet

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``pcid`` subcommand to the subparsers ``sub``."""
    p = sub.add_parser("pcid", help="print the vehicle's PCID (give it to your e-mobility provider)")
    data_dir_arg(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge pcid``; returns the exit code."""
    wallet = open_wallet(args, err)
    if wallet is None:
        return 1
    if wallet.pcid is None:
        err(f"plugcharge: the wallet in {wallet.directory} has no OEM provisioning certificate")
        return 1
    out(wallet.pcid)
    return 0
