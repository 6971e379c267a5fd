"""``plugcharge pcid``: print the vehicle's PCID (to give to an e-mobility provider)."""
from __future__ import annotations

import argparse
from typing import Any, Callable

from ._common import add_command, open_wallet

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``pcid`` subcommand to the subparsers ``sub``."""
    p = add_command(sub, "pcid", "print the vehicle's PCID (give it to your e-mobility provider)",
                    "Print the vehicle's provisioning certificate id (PCID), the CN of its OEM provisioning "
                    "certificate: the e-mobility provider needs it to issue a contract.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge pcid``; returns the exit code."""
    wallet = open_wallet(args, err)
    if wallet is None:
        return 1
    if wallet.pcid is None:
        err(f"{args.prog}: error: the wallet in {wallet.directory} has no OEM provisioning certificate: "
            "run 'plugcharge demo' once to create it")
        return 1
    out(wallet.pcid)
    return 0
