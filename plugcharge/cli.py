"""The ``plugcharge`` command line (also ``python -m plugcharge``).

Subcommands::

    plugcharge demo   [--data-dir DIR] [--dc|--ac] [--eim] [--fail-installation] [--seed N] [--iso 2]
    plugcharge wallet list|delete ID|wipe|enable|disable [--data-dir DIR]
    plugcharge pcid   [--data-dir DIR]

``-v`` (the library's INFO messages on stderr) and ``--data-dir`` go before or after the command.
The data directory defaults to ``$PLUGCHARGE_DATA_DIR`` or ``./plugcharge-demo``; the EV wallet
lives in its ``wallet/`` folder, the demo's test PKI in ``pki/``. Errors are one line,
``plugcharge <command>: error: ...``, as argparse writes its own.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .demo import DATA_DIR_ENV, DEFAULT_DATA_DIR, DemoError, DemoOptions, default_data_dir, run_demo

__all__ = ["main", "build_parser"]

_DATA_HELP = (f"data directory holding pki/ and wallet/ (default: ${DATA_DIR_ENV} if set, "
              f"else ./{DEFAULT_DATA_DIR} in the current directory)")


def _common_options() -> argparse.ArgumentParser:
    """The options every level takes (``plugcharge -v demo`` and ``plugcharge demo -v`` alike).

    Their defaults are SUPPRESS so that a level that does not see the option leaves what another
    level set; :func:`main` reads them with getattr."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log the library's messages (INFO and up) to stderr")
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR", help=_DATA_HELP)
    return common


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``plugcharge`` command."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="plugcharge", parents=[common],
        description="ISO 15118 Plug & Charge: demo session, EV contract wallet. Options -v and --data-dir "
                    "may come before or after the command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", parents=[common], help="run a complete Plug & Charge session on loopback",
                       description="Run a complete ISO 15118-2 Plug & Charge session on this machine: SDP "
                                   "discovery, TLS 1.2, contract installation on the first run (reused later), "
                                   "authorisation, a charge loop and stop; prints what the driver and the "
                                   "operator see and a summary. Exit code 0 when charging completed.")
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
                   help="derive the keys and serials of the test PKI from N when it is created (default: "
                        "random); its validity dates follow the current time")
    d.add_argument("--iso", type=int, default=2, choices=(2, 20), help="ISO 15118 edition (only 2 is implemented)")
    d.add_argument("--loops", type=_positive_int, default=5, metavar="N",
                   help="charge-loop messages before stopping (1 or more; default 5)")
    d.add_argument("--trace", action="store_true", help="also print every V2G message the EV sends and receives")
    d.add_argument("--timeout", type=_positive_seconds, default=60.0, metavar="S",
                   help="overall time limit in seconds (default 60); the demo gives up when it is reached")
    d.set_defaults(prog=d.prog)

    w = sub.add_parser("wallet", parents=[common], help="manage the EV's contract wallet",
                       description="Manage the EV contract wallet in DATA_DIR/wallet.")
    w.set_defaults(prog=w.prog)
    wsub = w.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (("list", "list installed contracts (eMAID, provider, validity)"),
                       ("wipe", "delete every contract (as a workshop would)"),
                       ("enable", "switch Plug & Charge on"), ("disable", "switch Plug & Charge off")):
        a = wsub.add_parser(name, parents=[common], help=text, description=text[0].upper() + text[1:] + ".")
        a.set_defaults(prog=a.prog)
    rm = wsub.add_parser("delete", parents=[common], help="delete one contract by its id (see 'wallet list')",
                         description="Delete one contract from the wallet by its id (the ID column of "
                                     "'plugcharge wallet list').")
    rm.add_argument("contract_id", metavar="ID")
    rm.set_defaults(prog=rm.prog)

    p = sub.add_parser("pcid", parents=[common], help="print the vehicle's PCID (give it to your e-mobility provider)",
                       description="Print the vehicle's provisioning certificate id (PCID), the CN of its OEM "
                                   "provisioning certificate: the e-mobility provider needs it to issue a contract.")
    p.set_defaults(prog=p.prog)
    return parser


def _data_dir(args: argparse.Namespace) -> Path:
    return getattr(args, "data_dir", None) or default_data_dir()


def _reason(exc: BaseException) -> str:
    """What went wrong, as text for one sentence: never an exception's repr."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror.lower()}{where}"
    return str(exc) or type(exc).__name__


def _open_wallet(args: argparse.Namespace, err: Callable[[str], None]):
    from .wallet import ContractWallet

    directory = _data_dir(args) / "wallet"
    if not directory.is_dir():
        err(f"{args.prog}: error: no wallet in {directory}: run 'plugcharge demo' first, or pass --data-dir")
        return None
    try:
        wallet = ContractWallet(directory)
    except OSError as exc:
        err(f"{args.prog}: error: cannot open the wallet in {directory} ({_reason(exc)})")
        return None
    for name, reason in wallet.problems:
        err(f"{args.prog}: warning: wallet file {directory / name} ignored ({reason}); delete it if it stays unreadable")
    return wallet


def _cmd_wallet(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    from .wallet import WalletError

    if args.action is None:
        err(f"{args.prog}: error: give an action: list, delete ID, wipe, enable or disable")
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
        err(f"{args.prog}: error: {_reason(exc)}")
        return 1
    return 0


def _cmd_pcid(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    wallet = _open_wallet(args, err)
    if wallet is None:
        return 1
    if wallet.pcid is None:
        err(f"{args.prog}: error: the wallet in {wallet.directory} has no OEM provisioning certificate: "
            "run 'plugcharge demo' once to create it")
        return 1
    out(wallet.pcid)
    return 0


def _cmd_demo(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    opts = DemoOptions(data_dir=_data_dir(args), ac=bool(args.ac), eim=args.eim,
                       fail_installation=args.fail_installation, seed=args.seed, iso=args.iso,
                       loops=args.loops, timeout=args.timeout, trace=args.trace)
    try:
        summary = run_demo(opts, out)
    except DemoError as exc:
        err(f"{args.prog}: error: {exc}")
        return 2
    except (OSError, ValueError) as exc:  # sockets, TLS, SDP timeout, unreadable files
        err(f"{args.prog}: error: {_reason(exc)}")
        return 1
    except Exception as exc:  # a bug: say so clearly, details with --verbose
        logging.getLogger("plugcharge.cli").info("demo crashed", exc_info=True)
        err(f"{args.prog}: error: internal error ({type(exc).__name__}: {exc}); run with -v for the details")
        return 1
    return summary.exit_code


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is at the time of the record."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_HANDLER = _Stderr()
_HANDLER.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def _setup_logging(verbose: bool) -> None:
    """``-v``: the library's INFO messages (and up) on stderr; otherwise only errors."""
    for name in ("plugcharge", "pki", "exi"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.INFO if verbose else logging.ERROR)
        if _HANDLER not in lg.handlers:
            lg.addHandler(_HANDLER)
        lg.propagate = False


class _Out:
    """``print`` that goes quiet once the reader of stdout has gone (``plugcharge demo | head -2``):
    the command runs to its end (a session is finished cleanly, the wallet stays consistent) and
    exits without a BrokenPipeError traceback."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.closed = False

    def __call__(self, text: str) -> None:
        if self.closed:
            return
        try:
            self.out(text)
        except BrokenPipeError:
            self.closed = True
            _stdout_to_devnull()

    def flush(self) -> None:
        """Flush stdout now (a reader that left shows here, not as a traceback at exit)."""
        if self.closed or self.out is not print:
            return
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            _stdout_to_devnull()


def _stdout_to_devnull() -> None:
    """The interpreter flushes stdout at exit: let that go nowhere once the reader has gone."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Optional[Sequence[str]] = None, *, out: Callable[[str], None] = print,
         err: Optional[Callable[[str], None]] = None) -> int:
    """Run the ``plugcharge`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    if err is None:
        def err(text: str) -> None:
            print(text, file=sys.stderr)
    quiet_out = _Out(out)
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(bool(getattr(args, "verbose", False)))
    try:
        if args.command == "demo":
            return _cmd_demo(args, quiet_out, err)
        if args.command == "wallet":
            return _cmd_wallet(args, quiet_out, err)
        if args.command == "pcid":
            return _cmd_pcid(args, quiet_out, err)
    except KeyboardInterrupt:
        err(f"{getattr(args, 'prog', 'plugcharge')}: error: interrupted")
        return 130
    finally:
        quiet_out.flush()
    parser.print_help()
    return 2
