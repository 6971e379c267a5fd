"""The ``plugcharge`` command line (also ``python -m plugcharge``).

Subcommands::

    plugcharge demo   [--data-dir DIR] [--dc|--ac] [--eim] [--fail-installation] [--seed N] [--iso 2]
    plugcharge wallet list|delete ID|wipe|enable|disable [--data-dir DIR]
    plugcharge pcid   [--data-dir DIR]

The data directory defaults to ``$PLUGCHARGE_DATA_DIR`` or ``./plugcharge-demo``; the EV wallet
lives in its ``wallet/`` folder, the demo's test PKI in ``pki/``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from .demo import DATA_DIR_ENV, DEFAULT_DATA_DIR, DemoError, DemoOptions, default_data_dir, run_demo

__all__ = ["main", "build_parser"]

_DATA_HELP = (f"data directory holding pki/ and wallet/ (default: ${DATA_DIR_ENV} if set, "
              f"else ./{DEFAULT_DATA_DIR} in the current directory)")


def _data_dir_arg(p: argparse.ArgumentParser, default: object = None) -> None:
    p.add_argument("--data-dir", type=Path, default=default, metavar="DIR", help=_DATA_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``plugcharge`` command."""
    parser = argparse.ArgumentParser(
        prog="plugcharge", description="ISO 15118 Plug & Charge: demo session, EV contract wallet.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log library messages (INFO) to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="run a complete Plug & Charge session on loopback",
                       description="Run a complete ISO 15118-2 Plug & Charge session on this machine: SDP "
                                   "discovery, TLS 1.2, contract installation on the first run (reused later), "
                                   "authorisation, a charge loop and stop; prints what the driver and the "
                                   "operator see and a summary. Exit code 0 when charging completed.")
    _data_dir_arg(d)
    mode = d.add_mutually_exclusive_group()
    mode.add_argument("--dc", dest="ac", action="store_false", help="DC charging (default)")
    mode.add_argument("--ac", dest="ac", action="store_true", help="AC charging with signed metering receipts")
    d.set_defaults(ac=False)
    d.add_argument("--eim", action="store_true",
                   help="pay by ExternalPayment (RFID card at the charger) instead of Plug & Charge")
    d.add_argument("--fail-installation", action="store_true",
                   help="the backend refuses contract installation: the EV falls back to ExternalPayment "
                        "(only visible while the wallet holds no usable contract)")
    d.add_argument("--seed", type=int, default=None, metavar="N",
                   help="derive the test PKI's keys from N when it is created (default: random)")
    d.add_argument("--iso", type=int, default=2, choices=(2, 20), help="ISO 15118 edition (only 2 is implemented)")
    d.add_argument("--loops", type=int, default=5, metavar="N", help="charge-loop messages before stopping (5)")
    d.add_argument("--trace", action="store_true", help="also print every V2G message the EV sends and receives")
    d.add_argument("--timeout", type=float, default=60.0, metavar="S", help="overall time limit in seconds (60)")

    w = sub.add_parser("wallet", help="manage the EV's contract wallet",
                       description="Manage the EV contract wallet in DATA_DIR/wallet.")
    _data_dir_arg(w)
    wsub = w.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (("list", "list installed contracts (eMAID, provider, validity)"),
                       ("wipe", "delete every contract (as a workshop would)"),
                       ("enable", "switch Plug & Charge on"), ("disable", "switch Plug & Charge off")):
        _data_dir_arg(wsub.add_parser(name, help=text, description=text), argparse.SUPPRESS)
    rm = wsub.add_parser("delete", help="delete one contract by its id (see 'wallet list')")
    rm.add_argument("contract_id", metavar="ID")
    _data_dir_arg(rm, argparse.SUPPRESS)

    p = sub.add_parser("pcid", help="print the vehicle's PCID (give it to your e-mobility provider)")
    _data_dir_arg(p)
    return parser


def _wallet_dir(args: argparse.Namespace) -> Path:
    return (args.data_dir or default_data_dir()) / "wallet"


def _open_wallet(args: argparse.Namespace, err: Callable[[str], None]):
    from ..pnc.wallet import ContractWallet

    directory = _wallet_dir(args)
    if not directory.is_dir():
        err(f"plugcharge: no wallet in {directory} (run 'plugcharge demo' first, or pass --data-dir)")
        return None
    wallet = ContractWallet(directory)
    for name, reason in wallet.problems:
        err(f"plugcharge: warning: wallet file {name} ignored ({reason})")
    return wallet


def _cmd_wallet(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    from ..pnc.wallet import WalletError

    if args.action is None:
        err("plugcharge wallet: give an action: list, delete ID, wipe, enable, disable")
        return 2
    wallet = _open_wallet(args, err)
    if wallet is None:
        return 1
    now = dt.datetime.now(dt.timezone.utc)
    if args.action == "list":
        usable = wallet.usable_contract(now)
        out(f"Plug & Charge: {'on' if wallet.enabled else 'off'}   PCID: {wallet.pcid or '-'}")
        infos = wallet.contracts()
        if not infos:
            out("no contracts installed")
            return 0
        out(f"{'ID':<18} {'eMAID':<18} {'provider':<9} {'valid from':<17} {'valid until':<17} status")
        for c in infos:
            status = ("in use" if usable is not None and usable.info.contract_id == c.contract_id else
                      "expired" if c.not_after < now else "not yet valid" if c.not_before > now else "valid")
            out(f"{c.contract_id:<18} {c.emaid:<18} {c.provider:<9} {c.not_before:%Y-%m-%d %H:%M} "
                f"{c.not_after:%Y-%m-%d %H:%M} {status}")
        return 0
    try:
        if args.action == "delete":
            info = next((c for c in wallet.contracts() if c.contract_id == args.contract_id), None)
            wallet.delete(args.contract_id)
            out(f"deleted contract {args.contract_id}" + (f" ({info.emaid})" if info else ""))
        elif args.action == "wipe":
            n = len(wallet.contracts())
            wallet.wipe()
            out(f"wiped {n} contract{'s' if n != 1 else ''}")
        elif args.action in ("enable", "disable"):
            wallet.set_enabled(args.action == "enable")
            out(f"Plug & Charge {'on' if wallet.enabled else 'off'}")
    except (WalletError, OSError) as exc:
        err(f"plugcharge wallet {args.action}: {exc}")
        return 1
    return 0


def _cmd_pcid(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    wallet = _open_wallet(args, err)
    if wallet is None:
        return 1
    if wallet.pcid is None:
        err(f"plugcharge: the wallet in {wallet.directory} has no OEM provisioning certificate")
        return 1
    out(wallet.pcid)
    return 0


def _cmd_demo(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    opts = DemoOptions(data_dir=args.data_dir or default_data_dir(), ac=bool(args.ac), eim=args.eim,
                       fail_installation=args.fail_installation, seed=args.seed, iso=args.iso,
                       loops=max(1, args.loops), timeout=max(1.0, args.timeout), trace=args.trace)
    try:
        summary = run_demo(opts, out)
    except DemoError as exc:
        err(f"plugcharge demo: {exc}")
        return 2
    except (OSError, ValueError) as exc:  # sockets, TLS, SDP timeout, unreadable files
        err(f"plugcharge demo: failed: {type(exc).__name__}: {exc}")
        return 1
    except Exception as exc:  # a bug: say so clearly, details with --verbose
        logging.getLogger("plugcharge.cli").info("demo crashed", exc_info=True)
        err(f"plugcharge demo: internal error: {type(exc).__name__}: {exc} (run with -v for details)")
        return 1
    return summary.exit_code


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
        if args.command == "demo":
            return _cmd_demo(args, out, err)
        if args.command == "wallet":
            return _cmd_wallet(args, out, err)
        if args.command == "pcid":
            return _cmd_pcid(args, out, err)
    except KeyboardInterrupt:
        err("plugcharge: interrupted")
        return 130
    parser.print_help()
    return 2
