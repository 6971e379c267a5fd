"""``plugcharge csms``: the test CSMS (OCPP 2.1 / 2.0.1 websocket server, eMSP, contract pool).

::

    plugcharge csms [--listen HOST:PORT] [--data-dir D] [--delay ACTION=SECONDS]
    plugcharge csms activate PCID [--emaid EMAID] [--data-dir D]
    plugcharge csms revoke EMAID [--data-dir D]
    plugcharge csms list [--data-dir D]

The CSMS uses the data directory's test PKI (``D/pki``, created when absent, the layout
``plugcharge demo`` uses) and keeps the eMSP registry in ``D/csms/state.json``; ``activate`` and
``revoke`` change that file under a lock and the running CSMS re-reads it on its next OCPP call
(see :mod:`plugcharge.backends.csms`).  With ``D/pki20`` (``plugcharge init``) it also provisions
ISO 15118-20 contracts.  Stations connect to ``ws://HOST:PORT/STATION-ID`` with the ``ocpp2.1``
(preferred) or ``ocpp2.0.1`` subprotocol.  One line per OCPP call goes to stdout.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ._common import add_command, data_dir, reason
from .datadir import DataDir

__all__ = ["register", "run", "DEFAULT_LISTEN", "DELAYABLE", "delay_item"]

#: The OCPP calls the test CSMS answers (2.0.1 and 2.1), those ``--delay`` can slow down
DELAYABLE = ("Authorize", "BootNotification", "Get15118EVCertificate", "GetCertificateChainStatus",
             "GetCertificateStatus", "Heartbeat", "SignCertificate", "StatusNotification", "TransactionEvent")


def delay_item(text: str) -> tuple[str, float]:
    """argparse type of ``--delay``: ``ACTION=SECONDS``, an OCPP call of :data:`DELAYABLE` and a
    number of seconds (0 or more, finite)."""
    action, eq, seconds = text.partition("=")
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if not eq or not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"wants ACTION=SECONDS (e.g. Authorize=30), not {text!r}")
    if action not in DELAYABLE:
        raise argparse.ArgumentTypeError(f"{action!r} is no OCPP call the test CSMS answers "
                                         f"({', '.join(DELAYABLE)})")
    return action, value

DEFAULT_LISTEN = "127.0.0.1:9000"


def register(sub: Any) -> None:
    """Add the ``csms`` subcommand to the subparsers ``sub``."""
    c = add_command(sub, "csms", "run the test CSMS (OCPP 2.1 and 2.0.1), activate or revoke contracts",
                    "Run a test CSMS that plays the charge point operator's backend, the e-mobility provider and "
                    "the contract certificate pool over OCPP 2.1 and 2.0.1 websockets (ISO 15118-2 and -20 "
                    "contracts), or change its eMSP registry (activate a car's PCID, revoke an eMAID) while it runs.")
    c.set_defaults(run=run)
    c.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to listen on (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    c.add_argument("--delay", action="append", type=delay_item, default=[], metavar="ACTION=SECONDS",
                   help="answer this OCPP action late (a slow CSMS), e.g. Authorize=30; repeatable")
    csub = c.add_subparsers(dest="csms_action", metavar="ACTION")
    a = add_command(csub, "activate", "the driver activates Plug & Charge for a car (its PCID)",
                    "Give the eMSP the car's PCID (see 'plugcharge pcid'): a new contract goes into the pool and "
                    "the car installs it on its next charge (newest wins).")
    a.add_argument("pcid", metavar="PCID")
    a.add_argument("--emaid", default=None, help="the eMAID to assign (default: the PCID's, or one derived from it)")
    add_command(csub, "list", "show the eMSP registry (activated PCIDs, contracts, revocations)",
                "Show the eMSP registry of the test CSMS: activated PCIDs, issued contract certificates, "
                "revocations.")
    r = add_command(csub, "revoke", "cancel a contract: OCSP answers revoked, Authorize fails",
                    "Revoke every contract certificate issued for EMAID.")
    r.add_argument("emaid", metavar="EMAID")


def _pki(data: Path, out: Callable[[str], None]) -> Any:
    from .demo import ensure_pki

    layout = DataDir(data)
    return ensure_pki(layout.pki, seed=None, iso=2, now=dt.datetime.now(dt.timezone.utc),
                      say=lambda who, text: out(f"{who}: {text}"), wallet_dir=layout.wallet)[0]


def _pki20(data: Path, out: Callable[[str], None]) -> Any:
    """The -20 test PKI of ``D/pki20`` when there is one (``plugcharge init`` creates it), else None."""
    from .demo import ensure_pki

    layout = DataDir(data)
    if not (layout.pki20 / "manifest.json").exists():
        return None
    return ensure_pki(layout.pki20, seed=None, iso=20, now=dt.datetime.now(dt.timezone.utc),
                      say=lambda who, text: out(f"{who}: {text}"))[0]


def _list(state: Any, out: Callable[[str], None]) -> int:
    pcids = state["pcids"]
    out(f"{len(pcids)} activated PCID{'s' if len(pcids) != 1 else ''}" + (":" if pcids else ""))
    for pcid, emaid in sorted(pcids.items()):
        out(f"  {pcid}  {emaid}")
    out(f"{len(state['contracts'])} contract certificate{'s' if len(state['contracts']) != 1 else ''} issued"
        + (":" if state["contracts"] else ""))
    for c in state["contracts"]:
        out(f"  {c['emaid']:<18} serial {c['serial']:<34} issued {c['issued']}  "
            f"{'pooled' if c['pooled'] else 'ISO 15118-20' if c.get('iso') == 20 else 'update'}"
            f"{'  REVOKED' if c['revoked'] else ''}")
    return 0


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen wants HOST:PORT, not {text!r}")
    return host.strip("[]"), int(port)


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge csms``; returns the exit code."""
    data = data_dir(args)
    from .demo import DEMO_ID_TOKEN, DemoError

    try:
        from ..backends import csms as C
    except ImportError as exc:
        err(f"{args.prog}: error: {exc}")
        return 2
    try:
        pki = _pki(data, out)
        if args.csms_action == "activate":
            contract = C.activate(DataDir(data).csms, pki, args.pcid, args.emaid)
            out(f"activated PCID {args.pcid}: contract {contract.emaid} (serial {contract.serial:x}) is in the "
                f"pool; the car installs it on its next charge (an ISO 15118-20 car gets a -20 contract for "
                f"{contract.emaid})")
            return 0
        if args.csms_action == "list":
            return _list(C.registry(DataDir(data).csms, pki), out)
        if args.csms_action == "revoke":
            from ..pnc.certs import normalize_emaid

            def revoked_now() -> int:
                return sum(1 for c in C.registry(DataDir(data).csms, pki)["contracts"]
                           if c["revoked"] and normalize_emaid(c["emaid"]) == normalize_emaid(args.emaid))

            before = revoked_now()
            n = C.revoke(DataDir(data).csms, pki, args.emaid)
            if n == 0:
                err(f"{args.prog}: error: no contract was issued for {args.emaid}")
                return 1
            new = revoked_now() - before
            out(f"revoked {new} contract certificate{'s' if new != 1 else ''} of {args.emaid}"
                + (f" ({before} revoked before)" if before else ""))
            return 0
        host, port = _listen(args.listen)
        pki20 = _pki20(data, out)
        delays = dict(args.delay)
    except (ValueError, DemoError, OSError) as exc:
        err(f"{args.prog}: error: {reason(exc)}")
        return 1
    started = time.monotonic()

    def line(text: str) -> None:
        out(f"{time.monotonic() - started:8.2f}s  {text}")
        sys.stdout.flush()  # one line per OCPP call, visible at once through a pipe

    async def serve() -> None:
        if not logging.getLogger().isEnabledFor(logging.INFO):
            # the ocpp package logs a traceback for every malformed call: without -v, our one line per
            # call is the log (a station sending garbage must not flood the terminal)
            logging.getLogger("ocpp").setLevel(logging.CRITICAL)
        csms = C.TestCSMS(pki, DataDir(data).csms, log=line, id_tokens=(DEMO_ID_TOKEN,), pki20=pki20)
        csms.delays.update(delays)
        await csms.start(host, port)
        out(f"CSMS listening on {csms.url()}<station-id> (OCPP 2.1, 2.0.1{'; ISO 15118-20 PKI' if pki20 else ''}); "
            f"eMSP state in {data / 'csms'}")
        if pki20 is None:
            out(f"note: no ISO 15118-20 test PKI in {DataDir(data).pki20}: ISO 15118-20 cars get no contract; "
                f"run 'plugcharge init --data-dir {data}', then start the CSMS again")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread / not POSIX
                pass
        try:
            await stop.wait()
        finally:
            await csms.aclose()
            out("CSMS stopped")

    try:
        asyncio.run(serve())
    except OSError as exc:
        err(f"{args.prog}: error: cannot listen on {args.listen} ({reason(exc)})")
        return 1
    except ValueError as exc:  # an unreadable state file
        err(f"{args.prog}: error: {exc}")
        return 1
    return 0
