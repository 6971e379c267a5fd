"""``plugcharge init``: create the data directory that ``charger``, ``ev``, ``csms`` and ``demo`` share.

::

    plugcharge init [--data-dir D] [--seed N] [--no-iso20]

Creates (or completes; what exists is kept) the ISO 15118-2 test PKI in ``D/pki``, the ISO 15118-20
one in ``D/pki20`` (unless ``--no-iso20``), the EV wallet in ``D/wallet`` with the OEM provisioning
credentials (its PCID) and the -20 vehicle certificate, and the charger's TLS files in ``D/charger``
(see :mod:`plugcharge.cli.datadir`).  Prints what is there and the next steps.
"""
from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, Callable

from ._common import add_command, data_dir
from .datadir import DataDir, describe, write_charger_files

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    """Add the ``init`` subcommand to the subparsers ``sub``."""
    p = add_command(sub, "init", "create the test PKI, the EV wallet and the charger's certificates",
                    "Create (or complete) a data directory: the ISO 15118-2 and -20 test PKIs, the EV's wallet with "
                    "its OEM provisioning credentials (PCID) and the charger's TLS certificate files, shared by "
                    "'plugcharge charger', 'ev', 'csms' and 'demo'. What exists is kept.")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="derive the keys of new test PKIs from N (default: random)")
    p.add_argument("--no-iso20", dest="iso20", action="store_false", help="no ISO 15118-20 test PKI")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge init``; returns the exit code."""
    from ..pnc.wallet import WalletError
    from .demo import DemoError, ensure_pki, ensure_wallet
    from .demo20 import ensure_wallet20

    dd = DataDir(data_dir(args))
    now = dt.datetime.now(dt.timezone.utc)
    said: list[str] = []

    def say(who: str, text: str) -> None:
        said.append(text)

    try:
        dd.root.mkdir(parents=True, exist_ok=True)
        pki, _ = ensure_pki(dd.pki, seed=args.seed, iso=2, now=now, say=say, wallet_dir=dd.wallet)
        pki20 = ensure_pki(dd.pki20, seed=args.seed, iso=20, now=now, say=say)[0] if args.iso20 else None
        wallet, _ = ensure_wallet(dd.wallet, pki, say=say)
        if pki20 is not None:  # the -20 OEM provisioning credentials and vehicle certificate beside the -2 ones
            wallet = ensure_wallet20(dd.wallet, pki20, say=say)
        written = write_charger_files(dd, pki, pki20)
    except (DemoError, WalletError, OSError, ValueError) as exc:
        err(f"{args.prog}: error: {exc}")
        return 1
    for line in said:
        if "not usable" in line:  # a PKI replaced (expired): say so, and what it costs the wallet
            out(line)
    describe(dd, out, pki, pki20, wallet)
    if written:
        out(f"wrote {', '.join(p.name for p in written)}")
    out(f"next: plugcharge csms --data-dir {dd.root} &  ;  plugcharge csms activate {wallet.pcid} --data-dir {dd.root}")
    out(f"      plugcharge charger --interface IF --data-dir {dd.root} [--csms ws://HOST:PORT]  ;  "
        f"plugcharge ev --interface IF --data-dir {dd.root}")
    return 0
