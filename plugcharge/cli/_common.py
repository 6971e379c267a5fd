"""Helpers shared by the command modules: the options every level takes, checked option types,
one-sentence error texts and opening the EV wallet.

Errors and warnings of every command are one line, ``<command>: error: <sentence>`` (the form
argparse uses for its own), where ``<command>`` is ``args.prog`` (``plugcharge wallet list``):
each subparser sets ``prog`` with :func:`add_command`."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "default_data_dir", "common_options", "add_command", "data_dir",
           "wallet_dir", "open_wallet", "positive_int", "positive_seconds", "csms_url", "reason"]

DATA_DIR_ENV = "PLUGCHARGE_DATA_DIR"
DEFAULT_DATA_DIR = "plugcharge-demo"

_DATA_HELP = (f"data directory holding pki/ and wallet/ (default: ${DATA_DIR_ENV} if set, "
              f"else ./{DEFAULT_DATA_DIR} in the current directory)")


def default_data_dir() -> Path:
    """``$PLUGCHARGE_DATA_DIR`` if set, else ``./plugcharge-demo`` (relative to the working directory)."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def common_options() -> argparse.ArgumentParser:
    """The options every level takes (``plugcharge -v demo`` and ``plugcharge demo -v`` alike), as a
    parent parser. Their defaults are SUPPRESS so that a level that does not see an option leaves what
    another level set; read them with :func:`data_dir` and ``getattr(args, "verbose", False)``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log the library's messages (INFO and up) to stderr")
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR", help=_DATA_HELP)
    return common


def add_command(sub: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A subcommand parser with the common options, a help text, a description and ``prog`` set."""
    p = sub.add_parser(name, parents=[common_options()], help=help, description=description)
    p.set_defaults(prog=p.prog)
    return p


def data_dir(args: argparse.Namespace) -> Path:
    """The data directory the command line names (``--data-dir`` at any level), else the default."""
    return getattr(args, "data_dir", None) or default_data_dir()


def wallet_dir(args: argparse.Namespace) -> Path:
    """The wallet folder of the data directory ``args`` name."""
    return data_dir(args) / "wallet"


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (never clamped)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def positive_seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds (never clamped)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def csms_url(text: str) -> str:
    """argparse type: an OCPP websocket URL, ``ws://HOST:PORT[/STATION]`` or ``wss://...`` (``""``, the
    demo's bare ``--csms``, passes: the in-process test CSMS)."""
    import urllib.parse

    if text == "":
        return text
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a port that is no number)
    except ValueError:
        parts = None  # type: ignore[assignment]
    if parts is None or parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"wants a websocket URL, ws://HOST:PORT[/STATION] or wss://..., not {text!r}")
    return text


def reason(exc: BaseException) -> str:
    """What went wrong, as text for one sentence: never an exception's repr."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror.lower()}{where}"
    return str(exc) or type(exc).__name__


def open_wallet(args: argparse.Namespace, err: Callable[[str], None]) -> Optional[Any]:
    """The EV's :class:`~plugcharge.pnc.wallet.ContractWallet`, or None (said on ``err``) when there is none."""
    from ..pnc.wallet import ContractWallet

    directory = wallet_dir(args)
    if not directory.is_dir():
        err(f"{args.prog}: error: no wallet in {directory}: run 'plugcharge demo' first, or pass --data-dir")
        return None
    try:
        wallet = ContractWallet(directory)
    except OSError as exc:
        err(f"{args.prog}: error: cannot open the wallet in {directory} ({reason(exc)})")
        return None
    for name, why in wallet.problems:
        err(f"{args.prog}: warning: wallet file {directory / name} ignored ({why}); delete it if it stays unreadable")
    return wallet
