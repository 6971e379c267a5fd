"""``plugcharge ev``: an EV on a network interface finds a charger over SDP and charges once.

::

    plugcharge ev --interface IF [--data-dir D] [--protocol P ...] [--dc|--ac] [--eim] [--no-tls]
                  [--loops N] [--timeout S] [--json]

SDP requests go to ``ff02::1`` UDP 15118 on IF (asking for TLS unless ``--no-tls``); the EV connects
to the address and port answered (TLS 1.2 checking the SECC chain against the V2G roots of ``D/pki``,
or plain TCP when that is what the charger has), offers the protocols it implements (``--protocol``
narrows them) and runs one charging session with the wallet in ``D/wallet``: it installs a contract
where it has none and the charger offers installation, authorises with it, charges ``--loops``
charge-loop messages and stops.  When Plug & Charge fails (installation or authorisation refused,
CSMS unreachable) it starts a second session on the same plug-in with identification at the charger,
as the demo does.  Prints what the driver sees (``--json``: one JSON object per session event).

Exit codes: 0 when charging completed (also after the fallback to identification at the charger); 1
when it did not (the reason is the last line on stderr); 2 for a setup error (no wallet, unknown
interface, options); 3 when no charger answered SDP or the connection to it failed.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ._common import add_command, data_dir, positive_int, positive_seconds

__all__ = ["register", "run", "fitting_protocols", "EXIT_COMPLETED", "EXIT_NOT_COMPLETED", "EXIT_SETUP", "EXIT_NO_CHARGER"]

EXIT_COMPLETED, EXIT_NOT_COMPLETED, EXIT_SETUP, EXIT_NO_CHARGER = 0, 1, 2, 3
#: What the EV offers unless told otherwise (``--protocol iso20`` adds ISO 15118-20 over TLS 1.3)
DEFAULT_PROTOCOLS = ("iso2", "din")


def register(sub: Any) -> None:
    """Add the ``ev`` subcommand to the subparsers ``sub``."""
    from ..core.protocol import KNOWN_PROTOCOLS

    e = add_command(sub, "ev", "find a charger on a network interface and charge once",
                    "Run an EV (EVCC) on a network interface: discover a charger over SDP, connect, run one charging "
                    "session with the wallet of the data directory (Plug & Charge, else identification at the "
                    "charger) and print what the driver sees. Exit code 0 when charging completed, 1 when not, 2 for "
                    "a setup error, 3 when no charger answered.")
    e.set_defaults(run=run, ac=False)
    e.add_argument("--interface", "-i", required=True, metavar="IF", help="the network interface")
    e.add_argument("--protocol", action="append", choices=tuple(KNOWN_PROTOCOLS), default=None, metavar="P",
                   help="a protocol to offer, repeatable, most preferred first; default: iso2 and din (iso20: "
                        "mutual TLS 1.3 with the wallet's vehicle certificate, -20 Plug & Charge with the wallet's "
                        "-20 contracts; din alone: SDP asks for a charger without TLS)")
    mode = e.add_mutually_exclusive_group()
    mode.add_argument("--dc", dest="ac", action="store_false", help="DC charging (default)")
    mode.add_argument("--ac", dest="ac", action="store_true", help="AC charging")
    e.add_argument("--eim", action="store_true", help="identify at the charger instead of Plug & Charge")
    e.add_argument("--no-tls", action="store_true", help="ask SDP for a charger without TLS (no Plug & Charge)")
    e.add_argument("--loops", type=positive_int, default=5, metavar="N",
                   help="charge-loop messages before stopping (1 or more; default 5)")
    e.add_argument("--loop-interval", type=float, default=0.2, metavar="S", help=argparse.SUPPRESS)
    e.add_argument("--timeout", type=positive_seconds, default=120.0, metavar="S",
                   help="overall time limit in seconds (default 120)")
    e.add_argument("--sdp-requests", type=positive_int, default=50, metavar="N",
                   help="SDP requests (250 ms each) before giving up (default 50, the standard's)")
    e.add_argument("--v2g-roots", type=Path, action="append", default=None, metavar="PEM",
                   help="V2G root certificates to trust (PEM; repeatable; default the roots of D/pki and D/pki20)")
    e.add_argument("--json", action="store_true", help="one JSON object per session event")
    e.add_argument("--sdp-port", type=int, default=None, help=argparse.SUPPRESS)  # tests


async def _connect(resp: Any, tls: bool, protocols: tuple[str, ...], roots: list[bytes], wallet: Any,
                   view: Any) -> tuple[Any, tuple[str, ...]]:
    """Connect as SDP answered; returns the stream and the protocols to offer on it.  Over TLS an EV
    configured for ISO 15118-20 tries TLS 1.3 with its vehicle certificate first and ISO 15118-2 over
    TLS 1.2 after (in the order of ``protocols``): the charger's ClientHello-driven choice of
    certificate decides which one completes."""
    from ..net.tls import client_context, secc_leaf_check
    from ..net.transport import open_ev_connection

    attempts: list[tuple[Any, Any, tuple[str, ...]]] = []
    fitting = fitting_protocols(protocols, tls)
    if not tls:
        attempts.append((None, None, fitting))
    else:
        for pid in fitting:
            if pid == "iso20" and not any(a[2] == ("iso20",) for a in attempts):
                vehicle = wallet.vehicle_certificate
                ctx = client_context(roots, iso=20, client_chain=vehicle.tls_chain if vehicle else None,
                                     client_key=vehicle.private_key if vehicle else None)
                attempts.append((ctx, None, ("iso20",)))
            elif pid != "iso20" and not any(a[2] != ("iso20",) for a in attempts):
                attempts.append((client_context(roots), secc_leaf_check, tuple(p for p in fitting if p != "iso20")))
    if not attempts:
        raise _Fail(EXIT_NO_CHARGER, f"the charger at [{resp.host}]:{resp.port} answered SDP with "
                                     f"{'TLS' if tls else 'no TLS'}: {', '.join(protocols)} cannot run "
                                     f"{'over TLS' if tls else 'without TLS'}")
    why: list[str] = []
    for ctx, check, offered in attempts:
        try:
            stream = await open_ev_connection(resp.host, resp.port, ssl_context=ctx, verify_peer=check)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError: an untrusted charger, no TLS 1.3
            why.append(_connect_failure(exc, ctx is not None, offered))
            continue
        if ctx is not None:
            view.line("ev", f"{stream.tls_version} {stream.cipher}: charger certificate verified against the V2G root")
        else:
            view.line("ev", "connected over plain TCP (no TLS): only protocols that permit it are offered")
        return stream, offered
    raise _Fail(EXIT_NO_CHARGER, f"connection to the charger at [{resp.host}]:{resp.port} failed: {'; '.join(why)}")


def fitting_protocols(protocols: tuple[str, ...], tls: bool) -> tuple[str, ...]:
    """The ids of ``protocols`` (in their order) that may run over TLS (``tls``) or plain TCP: DIN SPEC
    70121 forbids TLS, ISO 15118-20 requires it."""
    from ..sessions import default_registry

    registry = default_registry()
    return tuple(p for p in protocols if registry.select((p,), "ev", tls=tls))


def _connect_failure(exc: BaseException, tls: bool, offered: tuple[str, ...]) -> str:
    """One clause saying why one connection attempt failed (some carry no text of their own, e.g. the
    ConnectionResetError of a charger that drops a TLS handshake it cannot serve)."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        text = (f"the charger's certificate does not verify against the V2G roots of the data directory "
                f"({exc.verify_message or exc.reason}; --v2g-roots names others)")
    else:
        text = str(getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc)
    dropped = not text or isinstance(exc, ConnectionResetError)
    if not text:
        known: dict[type, str] = {ConnectionResetError: "the charger reset the connection",
                                  ConnectionRefusedError: "the charger refused the connection",
                                  TimeoutError: "no answer in time"}
        text = known.get(type(exc), type(exc).__name__)
    if not tls:
        return text
    if offered == ("iso20",):
        return f"TLS 1.3 for ISO 15118-20: {text}" + (
            " (a charger without ISO 15118-20 has no TLS 1.3; offer iso2 too: --protocol iso20 --protocol iso2)"
            if dropped else "")
    return f"TLS 1.2 for {', '.join(offered)}: {text}" + (
        " (an ISO 15118-20-only charger has no TLS 1.2: --protocol iso20)" if dropped else "")


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


async def _charge(args: argparse.Namespace, out: Callable[[str], None]) -> tuple[int, str]:
    from ..core.config import EVConfig
    from ..core.events import (
        AuthorizationAccepted, ChargingStarted, ChargingStopped, MeterValues, PaymentSelected, ProtocolAgreed,
        SessionEnded, StopCharging,
    )
    from ..net.runner import run_ev
    from ..net.sdp import SDP_PORT, SDPRequest, SDPTimeoutError, Security, check_interface, discover_secc
    from ..pnc.security import EVSecurity
    from ..pnc.wallet import ContractWallet
    from ..sessions import EVSession, default_registry
    from ._events import event_json
    from .charger import preload_codecs
    from .datadir import CredentialsError, DataDir, load_v2g_roots
    from .demo import DemoError, _View, implemented_protocols, load_pki

    dd = DataDir(data_dir(args))
    if not dd.wallet.is_dir() or not (args.v2g_roots or (dd.pki / "manifest.json").exists()):
        raise _Fail(EXIT_SETUP, f"no wallet or test PKI in {dd.root}: run 'plugcharge init --data-dir {dd.root}' first")
    mo_roots20: list[bytes] = []  # -20 Plug & Charge checks the installed contract to them
    try:
        if args.v2g_roots:
            roots = load_v2g_roots(args.v2g_roots)
        else:
            roots = [load_pki(dd.pki).cert("v2g-root")]
        if (dd.pki20 / "manifest.json").exists():
            pki20 = load_pki(dd.pki20)
            mo_roots20 = [pki20.cert("mo-root")]
            if not args.v2g_roots:
                roots.append(pki20.cert("v2g-root"))
    except (DemoError, CredentialsError) as exc:
        raise _Fail(EXIT_SETUP, str(exc)) from None
    wallet = ContractWallet(dd.wallet)
    protocols = tuple(dict.fromkeys(args.protocol or DEFAULT_PROTOCOLS))
    if not default_registry().select(protocols, "ev"):
        raise _Fail(EXIT_SETUP, f"none of {', '.join(protocols)} is implemented for the EV here "
                                f"(implemented: {', '.join(implemented_protocols())})")
    if args.loops < 1 or args.sdp_requests < 1:
        raise _Fail(EXIT_SETUP, "--loops and --sdp-requests must be 1 or more")
    # SDP asks for the security the offered protocols can run over: TLS unless --no-tls or none of
    # them permits TLS (DIN SPEC 70121 alone); ISO 15118-20 alone needs TLS
    over_tls, over_tcp = fitting_protocols(protocols, True), fitting_protocols(protocols, False)
    if args.no_tls and not over_tcp:
        raise _Fail(EXIT_SETUP, f"{', '.join(protocols)} cannot run without TLS (ISO 15118-20 requires it): "
                                "leave out --no-tls, or offer iso2 or din")
    ask_tls = bool(over_tls) and not args.no_tls
    try:
        check_interface(args.interface)
    except OSError as exc:
        raise _Fail(EXIT_SETUP, f"cannot send SDP on {args.interface}: {exc.strerror or exc}") from None
    preload_codecs(protocols, "ev")
    started = time.monotonic()

    def emit(line: str) -> None:
        out(line)
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass

    view = _View(emit if not args.json else (lambda line: None), started)

    # Ctrl-C while charging stops the charge as a driver would (PowerDelivery, WeldingDetection,
    # SessionStop), not by cutting the connection; before charging, or a second time, it aborts
    interrupt = {"charging": False, "asked": False, "sent": False}

    def on_interrupt() -> None:
        if interrupt["charging"] and not interrupt["asked"]:
            interrupt["asked"] = True
            view.line("ev", "Ctrl-C: stopping the charge (Ctrl-C again to abort at once)")
            return
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # KeyboardInterrupt: "interrupted", exit 130

    def on_event(e: Any) -> Any:
        if args.json:
            emit(event_json(e, t=round(time.monotonic() - started, 3),
                            time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")))
        else:
            view.ev_event(e)
        if isinstance(e, ChargingStarted):
            interrupt["charging"] = True
        elif isinstance(e, ChargingStopped):
            interrupt["charging"] = False
        if interrupt["asked"] and not interrupt["sent"] and isinstance(e, MeterValues):
            interrupt["sent"] = True
            return StopCharging()
        return None

    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_interrupt)
    except (NotImplementedError, RuntimeError, ValueError):  # not POSIX, or not the main thread
        pass

    mode = "AC_three_phase_core" if args.ac else "DC_extended"
    view.line("ev", f"wallet {dd.wallet}: PCID {wallet.pcid or '-'}, Plug & Charge "
                    f"{'on' if wallet.enabled else 'off'}, {len(wallet.contracts())} contract(s); offering "
                    f"{', '.join(protocols)} on {args.interface}")
    view.driver("Cable plugged in - looking for the charger", "waiting")
    suppressed = args.eim
    all_events: list = []
    sessions = 0
    while True:
        sessions += 1
        asked = Security.TLS if ask_tls else Security.NO_TLS
        try:
            resp = await discover_secc(SDPRequest(security=asked), interface=args.interface,
                                       port=args.sdp_port or SDP_PORT, max_requests=args.sdp_requests)
        except SDPTimeoutError as exc:
            raise _Fail(EXIT_NO_CHARGER, f"no charger answered SDP on {args.interface}: {exc}") from None
        except OSError as exc:
            raise _Fail(EXIT_SETUP, f"cannot send SDP on {args.interface}: {exc.strerror or exc}") from None
        tls = resp.security is Security.TLS
        view.line("ev", f"SDP: charger at [{resp.host}]:{resp.port}, security {resp.security.name}")
        stream, offered = await _connect(resp, tls, protocols, roots, wallet, view)
        ev = EVSession(EVConfig(energy_mode=mode, charge_loops=args.loops, loop_interval=args.loop_interval,
                                poll_interval=0.1, pnc_suppressed=suppressed, target_soc=95.0, tls=tls,
                                protocols=offered),
                       security=EVSecurity(wallet=wallet, v2g_roots=roots,  # type: ignore[arg-type]
                                           mo_roots=mo_roots20 if offered == ("iso20",) else []))
        events = await run_ev(stream, ev, on_event=on_event)
        all_events += events
        end = events[-1] if events and isinstance(events[-1], SessionEnded) else None
        if end is not None and end.fallback == "ExternalPayment" and not suppressed:
            suppressed = True
            view.line("ev", "falling back to identification at the charger on the same plug-in (new V2G session)")
            continue
        break
    charged = any(isinstance(e, ChargingStarted) for e in all_events)
    last = next((e for e in reversed(all_events) if isinstance(e, SessionEnded)), None)
    agreed = [e for e in all_events if isinstance(e, ProtocolAgreed)]
    pay = [e for e in all_events if isinstance(e, PaymentSelected)]
    auth = [e for e in all_events if isinstance(e, AuthorizationAccepted)]
    completed = bool(charged and last is not None and last.reason == "finished")
    summary = {"completed": completed, "reason": last.reason if last else "no session", "sessions": sessions,
               "protocol": agreed[-1].name if agreed else None, "payment": pay[-1].option if pay else None,
               "fallback": sessions > 1, "emaid": auth[-1].emaid if auth else None}
    if args.json:
        emit(json.dumps({"event": "Summary", **summary}))
    else:
        emit("")
        by_charger = any(isinstance(e, ChargingStopped) and e.reason == "charger_request" for e in all_events)
        done = ("charging stopped by the driver (Ctrl-C)" if interrupt["sent"] else
                "charging stopped by the charger" if by_charger else "charging completed")
        emit(f"result: {done if completed else 'NOT charged'} ({summary['reason']}"
             + (f", {last.response_code}" if last is not None and last.response_code else "") + ")"
             + f"; protocol {summary['protocol'] or '-'}; payment {summary['payment'] or '-'}"
             + (" after the Plug & Charge fallback" if summary["fallback"] else "")
             + (f"; contract {summary['emaid']}" if summary["emaid"] else ""))
    if completed:
        return EXIT_COMPLETED, ""
    why = (f"{last.reason}" + (f" ({last.response_code})" if last.response_code else "")
           + (f": {last.detail}" if last.detail else "")) if last is not None else "no session"
    if last is not None and last.reason == "finished" and not charged:
        why = "the session ended before charging started"
    return EXIT_NOT_COMPLETED, why


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge ev``; returns the exit code."""
    async def bounded() -> tuple[int, str]:
        try:
            return await asyncio.wait_for(_charge(args, out), args.timeout)
        except asyncio.TimeoutError:
            return EXIT_NOT_COMPLETED, f"gave up after {args.timeout:g} s (--timeout)"

    try:
        code, why = asyncio.run(bounded())
    except _Fail as exc:
        err(f"{args.prog}: error: {exc}")
        return exc.code
    if code:
        err(f"{args.prog}: error: not charged: {why}")
    return code
