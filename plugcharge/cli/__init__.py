"""The ``plugcharge`` command line (also ``python -m plugcharge``).

Subcommands::

    plugcharge demo   [--data-dir DIR] [--dc|--ac] [--eim] [--fail-installation] [--seed N] [--protocol iso2|din|iso20] [--bpt] [--csms [URL]]
    plugcharge wallet list|delete ID|wipe|enable|disable [--data-dir DIR]
    plugcharge pcid   [--data-dir DIR]
    plugcharge csms   [--listen HOST:PORT] [--data-dir DIR] | activate PCID | revoke EMAID | list
    plugcharge init   [--data-dir DIR] [--seed N] [--no-iso20]
    plugcharge charger --interface IF [--data-dir DIR] [--csms URL] [--protocol P ...] [--json] ...
    plugcharge ev     --interface IF [--data-dir DIR] [--protocol P ...] [--eim] [--json] ...

``-v`` (the library's INFO messages on stderr) and ``--data-dir`` go before or after the command.
The data directory defaults to ``$PLUGCHARGE_DATA_DIR`` or ``./plugcharge-demo``; the EV wallet
lives in its ``wallet/`` folder, the test PKIs in ``pki/`` and ``pki20/``, the charger's TLS files in
``charger/`` (:mod:`~plugcharge.cli.datadir`).  Errors are one line, ``plugcharge <command>: error: ...``,
as argparse writes its own.  Each command is a module of this package
(:mod:`~plugcharge.cli.demo`, :mod:`~plugcharge.cli.wallet`, :mod:`~plugcharge.cli.pcid`,
:mod:`~plugcharge.cli.csms`, :mod:`~plugcharge.cli.init`, :mod:`~plugcharge.cli.charger`, :mod:`~plugcharge.cli.ev`)
with ``register(subparsers)`` and ``run(args, out, err)``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable, Optional, Sequence

from . import charger, csms, demo, demo20, ev, init, pcid, wallet  # noqa: F401 - demo20 registers the -20 demo run
from ._common import common_options

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``plugcharge`` command (one module of this package per command)."""
    parser = argparse.ArgumentParser(
        prog="plugcharge", parents=[common_options()],
        description="ISO 15118 Plug & Charge: demo session, a charger and an EV on a network interface, EV "
                    "contract wallet, test CSMS. Options -v and --data-dir may come before or after the command.")
    parser.set_defaults(prog="plugcharge")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (demo, init, charger, ev, wallet, pcid, csms):
        command.register(sub)
    return parser


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
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    level = logging.INFO if verbose else logging.ERROR
    _HANDLER.setLevel(level)
    root.setLevel(level)


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
        if getattr(args, "run", None) is not None:
            return int(args.run(args, quiet_out, err))
    except KeyboardInterrupt:
        err(f"{args.prog}: error: interrupted")
        return 130
    finally:
        quiet_out.flush()
    parser.print_help()
    return 2
