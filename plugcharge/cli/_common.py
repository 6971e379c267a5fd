"""Helpers shared by the command modules: the ``--data-dir`` option and opening the EV wallet."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "default_data_dir", "data_dir_arg", "wallet_dir", "open_wallet"]

DATA_DIR_ENV = "PLUGCHARGE_DATA_DIR"
DEFAULT_DATA_DIR = "plugcharge-demo"

_DATA_HELP = (f"data directory holding pki/ and wallet/ (default: ${DATA_DIR_ENV} if set, "
              f"else ./{DEFAULT_DATA_DIR} in the current directory)")


def default_data_dir() -> Path:
    """``$PLUGCHARGE_DATA_DIR`` if set, else ``./plugcharge-demo`` (relative to the working directory)."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def data_dir_arg(p: argparse.ArgumentParser, default: object = None) -> None:
    """Add ``--data-dir DIR`` to ``p``."""
    p.add_argument("--data-dir", type=Path, default=default, metavar="DIR", help=_DATA_HELP)


def wallet_dir(args: argparse.Namespace) -> Path:
    """The wallet folder of the data directory ``args`` name."""
    return (args.data_dir or default_data_dir()) / "wallet"


def open_wallet(args: argparse.Namespace, err: Callable[[str], None]) -> Optional[Any]:
    """The EV's :class:`~plugcharge.pnc.wallet.ContractWallet`, or None (said on ``err``) when there is none."""
    from ..pnc.wallet import ContractWallet

    directory = wallet_dir(args)
    if not directory.is_dir():
        err(f"plugcharge: no wallet in {directory} (run 'plugcharge demo' first, or pass --data-dir)")
        return None
    wallet = ContractWallet(directory)
    for name, reason in wallet.problems:
        err(f"plugcharge: warning: wallet file {name} ignored ({reason})")
    return wallet
