"""``plugcharge charger``: a charger on a network interface, until SIGTERM or SIGINT.

::

    plugcharge charger --interface IF [--data-dir D] [--csms URL [--station-id ID]] [--protocol P ...]
                       [--cert-chain PEM --key PEM] [--trust-dir DIR] [--rfid TOKEN | --no-rfid] [--json]
                       [--max-connections N] [--max-per-peer N] [--stop-timeout S]

SDP on ``ff02::1`` UDP 15118 on IF (answering only requests that arrive there), the V2G servers on IF's
link-local address: TLS 1.2 with the SECC chain of ``D/charger`` (or ``--cert-chain``/``--key``; else
the test PKI's in ``D/pki``) where the protocols have TLS, plain TCP where they run without it (DIN SPEC
70121 forbids TLS).  Contract chains are validated against ``D/pki``'s trust anchors (or ``--trust-dir``).
The backend is the OCPP 2.1 / 2.0.1 client of a CSMS at ``--csms`` (``plugcharge csms``, or any CSMS), else
the simulated backend with ``D/pki`` (it knows the PCID of the wallet in ``D`` and the RFID card).
Identification at the charger (EIM) presents ``--rfid`` (default: the demo's card) as a card reader would.

One line per session event on stdout (``--json``: one JSON object per line).  SIGTERM/SIGINT: SDP and the
listeners close, every session in flight is asked to stop (EVSENotification StopCharging, the EV leaves
with SessionStop) and awaited up to ``--stop-timeout`` seconds; exit code 0.  Exit codes: 0 after a
clean stop, 1 when the charger cannot start (no such interface, no link-local address, port taken), 2 for
a setup error (data directory, certificates, options).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ._common import add_command, data_dir, csms_url, positive_int, positive_seconds

__all__ = ["register", "run", "DEFAULT_STATION_ID", "DEFAULT_PROTOCOLS"]

#: The charging station identity used at the CSMS when the URL names none.
DEFAULT_STATION_ID = "PLUGCHARGE-CHARGER-1"
#: What the charger offers unless told otherwise: ISO 15118-2 and DIN (``--protocol`` replaces them;
#: ``--protocol iso20 --protocol iso2 --protocol din`` adds ISO 15118-20)
DEFAULT_PROTOCOLS = ("iso2", "din")


def register(sub: Any) -> None:
    """Add the ``charger`` subcommand to the subparsers ``sub``."""
    from ..core.protocol import KNOWN_PROTOCOLS
    from ..net.transport import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PER_PEER

    c = add_command(sub, "charger", "run a charger on a network interface until SIGTERM/SIGINT",
                    "Run a charger (SECC) on a network interface: SDP on ff02::1 port 15118, the V2G servers (TLS "
                    "and/or TCP) on the interface's link-local address, sessions until SIGTERM or SIGINT, then a "
                    "clean stop. One line per session event on stdout.")
    c.set_defaults(run=run)
    c.add_argument("--interface", "-i", required=True, metavar="IF",
                   help="the network interface (e.g. the PLC modem's)")
    c.add_argument("--csms", type=csms_url, default=None, metavar="URL",
                   help="OCPP CSMS websocket (ws://HOST:PORT[/STATION]; OCPP 2.0.1, and 2.1 with --protocol iso20: "
                        "see --ocpp-version); default: the simulated backend")
    c.add_argument("--station-id", default=DEFAULT_STATION_ID, metavar="ID",
                   help=f"charging station identity when the URL names none (default {DEFAULT_STATION_ID})")
    c.add_argument("--protocol", action="append", choices=tuple(KNOWN_PROTOCOLS), default=None, metavar="P",
                   help="a protocol to offer, repeatable (" + ", ".join(KNOWN_PROTOCOLS)
                        + "); default: " + " and ".join(DEFAULT_PROTOCOLS) + ", which the option replaces (iso20: "
                        "TLS 1.3 with the -20 certificate, beside TLS 1.2 when iso2 is given too, chosen by the "
                        "EV's ClientHello)")
    c.add_argument("--evse-id", default=None, metavar="ID", help="the EVSEID announced (default DE*PNC*E12345*1)")
    c.add_argument("--cert-chain", type=Path, default=None, metavar="PEM",
                   help="the SECC certificate chain, leaf first (default D/charger/secc-chain.pem)")
    c.add_argument("--key", type=Path, default=None, metavar="PEM",
                   help="its private key (default D/charger/secc-key.pem)")
    c.add_argument("--cert-chain20", type=Path, default=None, metavar="PEM",
                   help="the ISO 15118-20 SECC chain (default D/charger/secc20-chain.pem)")
    c.add_argument("--key20", type=Path, default=None, metavar="PEM",
                   help="its private key (default D/charger/secc20-key.pem)")
    c.add_argument("--trust-dir", type=Path, default=None, metavar="DIR",
                   help="trust anchors for contract chains (a pki manifest directory; default D/pki)")
    c.add_argument("--rfid", default=None, metavar="TOKEN",
                   help="the card the reader presents for identification at the charger (default: the demo's)")
    c.add_argument("--no-rfid", action="store_true", help="no card reader: identification at the charger is accepted")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c.add_argument("--max-connections", type=positive_int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                   help=f"connections held at once (default {DEFAULT_MAX_CONNECTIONS})")
    c.add_argument("--max-per-peer", type=positive_int, default=DEFAULT_MAX_PER_PEER, metavar="N",
                   help=f"connections held at once from one address (default {DEFAULT_MAX_PER_PEER})")
    c.add_argument("--stop-timeout", type=positive_seconds, default=10.0, metavar="S",
                   help="on SIGTERM/SIGINT, how long sessions in flight get to stop (default 10)")
    c.add_argument("--authorize-timeout", type=positive_seconds, default=None, metavar="S",
                   help="how long an OCPP Authorize may take before the EV is refused (default 20)")
    c.add_argument("--ocpp-version", choices=("auto", "2.1", "2.0.1"), default="auto",
                   help="OCPP version(s) offered to the CSMS: auto (2.1, else 2.0.1; default), 2.1 or 2.0.1; "
                        "-20 Plug & Charge needs 2.1 for GetCertificateChainStatus and the -20 fields")
    c.add_argument("--sdp-port", type=int, default=None, help=argparse.SUPPRESS)  # tests


class SetupError(RuntimeError):
    """The charger cannot be set up (exit code 2): the message says what to do."""


class StartError(RuntimeError):
    """The charger cannot start on its interface (exit code 1)."""


class _Printer:
    """Writes one line per event (text or JSON) and flushes it at once (a pipe sees each line)."""

    def __init__(self, out: Callable[[str], None], as_json: bool, rfid: Optional[str]) -> None:
        self.out = out
        self.json = as_json
        self.started = time.monotonic()
        self.rfid = rfid
        from .demo import _View

        class _Capture(_View):
            sink: Callable[[str, str], None] = staticmethod(lambda who, text: None)  # type: ignore[assignment]

            def line(self, who: str, text: str) -> None:
                self.sink(who, text)

        self._view = _Capture(lambda text: None, 0.0)

    def _emit(self, line: str) -> None:
        self.out(line)
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass

    def _t(self) -> float:
        return time.monotonic() - self.started

    def note(self, kind: str, text: str, **fields: Any) -> None:
        """A line of the charger itself (not a session event)."""
        if self.json:
            self._emit(json.dumps({"t": round(self._t(), 3), "time": _now(), "event": kind, **fields, "text": text}))
        else:
            self._emit(f"{self._t():8.2f}s  {text}")

    def connection(self, conn: Any) -> None:
        from cryptography import x509

        how = conn.tls_version or "plain TCP"
        chain = conn.stream.peer_chain if conn.stream is not None else ()
        vehicle = x509.load_der_x509_certificate(chain[0]).subject.rfc4514_string() if chain else None
        if vehicle:  # -20 mutual TLS: the vehicle chain passed the -20 vehicle profile in the handshake
            how += f", vehicle certificate {vehicle} verified"
        self.note("Connection", f"#{conn.number} connection from [{conn.peer}] ({how})", connection=conn.number,
                  peer=conn.peer, tls=conn.tls_version, vehicle=vehicle)

    def _describe(self, event: Any, line: Callable[[str, str], None]) -> None:
        from ..core.events import AuthorizationNeeded, MeterValues, NegotiationFailed, ProtocolAgreed

        if isinstance(event, AuthorizationNeeded) and event.payment != "Contract":
            line("charger", "authorisation needed: identification at the charger"
                 + (f", card {self.rfid} presented" if self.rfid else " (no card reader: accepted)"))
            return
        if isinstance(event, ProtocolAgreed):
            line("charger", f"protocol agreed: {event.name} ({event.response_code})"
                 + ("" if event.plug_and_charge else ", no Plug & Charge"))
            return
        if isinstance(event, NegotiationFailed):
            line("charger", f"no common protocol ({event.response_code}): the EV offers "
                 f"{', '.join(event.offered) or 'nothing'}")
            return
        if isinstance(event, MeterValues):
            parts = [f"{event.meter_wh} Wh" if event.meter_wh is not None else "",
                     f"{event.voltage:.0f} V" if event.voltage is not None else "",
                     f"{event.current:.0f} A" if event.current is not None else "",
                     f"SOC {event.soc} %" if event.soc is not None else ""]
            line("charger", "meter: " + " ".join(p for p in parts if p))
            return
        self._view.sink = line  # type: ignore[assignment]
        self._view.charger_event(event)

    def event(self, conn: Any, event: Any) -> None:
        from ._events import event_json, event_text

        if self.json:
            self._emit(event_json(event, t=round(self._t(), 3), time=_now(), connection=conn.number, peer=conn.peer))
        else:
            self._emit(f"{self._t():8.2f}s  #{conn.number} {event_text(event, self._describe)}")


def preload_codecs(protocol_ids: Any, role: str) -> None:
    """Load the EXI grammars of the protocols a side may agree on before the first EV arrives: building
    a schema set's tables takes up to a second on a busy machine, and the first session's SessionSetup
    must not spend its 2 s timer on that."""
    from ..core.codec import NS_APP, resolve_codecs
    from ..sessions import default_registry

    provider = resolve_codecs(None)
    provider(NS_APP)
    for spec in default_registry().select(tuple(protocol_ids), role):
        for ns in dict.fromkeys((spec.namespace, *spec.decode_namespaces.values())):
            provider(ns)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _anchor_for(chain: Any, store: Any) -> list[bytes]:
    """``chain`` (DER, leaf first, no root) with the trust anchor that issued its last certificate."""
    from cryptography import x509

    last = x509.load_der_x509_certificate(chain[-1])
    for role in ("mo", "v2g"):
        for der in store.anchors(role):
            if x509.load_der_x509_certificate(der).subject == last.issuer:
                return [*chain, der]
    return list(chain)


def _setup(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the charger needs from the data directory and the options (SetupError otherwise)."""
    from pki.errors import PKIError
    from pki.store import TrustStore

    from ..core.config import ChargerConfig
    from ..sessions import default_registry
    from .datadir import CredentialsError, DataDir, load_secc_credentials
    from .demo import DEMO_ID_TOKEN, DemoError, _charger_protocol, load_pki

    dd = DataDir(data_dir(args))
    if not (dd.pki / "manifest.json").exists():
        raise SetupError(f"no test PKI in {dd.pki}: run 'plugcharge init --data-dir {dd.root}' first")
    try:
        pki = load_pki(dd.pki)
        protocols = tuple(dict.fromkeys(args.protocol or DEFAULT_PROTOCOLS))
        for p in protocols:
            _charger_protocol(p)  # known and implemented, or a DemoError saying so
    except DemoError as exc:
        raise SetupError(str(exc)) from None
    credentials: dict[int, tuple[list[bytes], Any]] = {}
    try:
        for iso, chain_opt, key_opt, pki_dir in ((2, args.cert_chain, args.key, dd.pki),
                                                 (20, args.cert_chain20, args.key20, dd.pki20)):
            if iso == 20 and "iso20" not in protocols:
                continue
            chain_file, key_file = chain_opt or dd.secc_chain(iso), key_opt or dd.secc_key(iso)
            if chain_opt or key_opt or chain_file.exists():
                credentials[iso] = load_secc_credentials(chain_file, key_file)
            elif (pki_dir / "manifest.json").exists():  # a directory the demo made: the test PKI's own
                p = pki if iso == 2 else load_pki(pki_dir)
                credentials[iso] = ([p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1")], p.key("secc-leaf"))
            else:
                raise SetupError(f"no ISO 15118-{iso} certificate in {dd.charger} or {pki_dir}: run 'plugcharge init "
                                 f"--data-dir {dd.root}', or name the files with --cert-chain{'' if iso == 2 else '20'}")
        store = TrustStore.from_directory(args.trust_dir or dd.pki)
        # ISO 15118-20: contract chains to the -20 MO roots, the vehicle certificate to the -20 OEM root
        pki20 = load_pki(dd.pki20) if "iso20" in protocols and (dd.pki20 / "manifest.json").exists() else None
        store20 = TrustStore.from_directory(dd.pki20) if pki20 is not None else None
    except (CredentialsError, PKIError, OSError, ValueError, DemoError) as exc:
        raise SetupError(str(exc)) from None
    config = ChargerConfig(protocols=protocols, **({"evse_id": args.evse_id} if args.evse_id else {}))
    transports = default_registry().transports(protocols, "charger")
    rfid = None if args.no_rfid else (args.rfid or DEMO_ID_TOKEN)
    return dict(dd=dd, pki=pki, pki20=pki20, credentials=credentials, store=store, store20=store20, config=config,
                transports=transports, rfid=rfid)


async def _backend(args: argparse.Namespace, setup: dict[str, Any], printer: _Printer) -> tuple[Any, str]:
    """The OCPP backend (``--csms``) or the simulated one; and what to say about it."""
    if args.csms:
        try:
            from ..backends.ocpp import OCPPTimeouts
            from ..backends.ocpp21 import OCPP21Backend
        except ImportError as exc:
            raise SetupError(str(exc)) from None
        url = args.csms.rstrip("/")
        if url.count("/") < 3:  # ws://host:port without the station identity
            url = f"{url}/{args.station_id}"
        timeouts = OCPPTimeouts() if args.authorize_timeout is None else \
            dataclasses.replace(OCPPTimeouts(), authorize=args.authorize_timeout)
        local = {setup["rfid"]: "Accepted"} if setup["rfid"] else {}
        backend = OCPP21Backend(url, ocpp_version=args.ocpp_version, trust_store=setup["store"],
                                trust_store20=setup["store20"], local_auth_list=local, timeouts=timeouts,
                                evse_id=1, serial_number=setup["config"].evse_id)
        connected = await backend.start(wait=5.0)
        state = "connected, BootNotification accepted" if connected else \
            "not reachable yet: Plug & Charge falls back to identification at the charger until it is"
        version = {"ocpp2.1": "OCPP 2.1", "ocpp2.0.1": "OCPP 2.0.1"}.get(backend.ocpp_version or "", "OCPP")
        return backend, f"{version} CSMS at {url} ({state})"
    from ..backends.simulated import SimulatedBackend
    from ..pnc.wallet import ContractWallet
    from .demo import DEMO_EMAID

    simulated = SimulatedBackend(setup["pki"], pki20=setup["pki20"])
    if setup["rfid"]:
        simulated.register_id_token(setup["rfid"])
    dd = setup["dd"]
    known = ""
    if dd.wallet.is_dir():  # the PCIDs of the wallet in D (-2 and -20 OEM provisioning certificates)
        wallet = ContractWallet(dd.wallet)
        pcids = [o.pcid for o in (wallet.oem_provisioning_for(2), wallet.oem_provisioning_for(20)) if o is not None]
        for pcid in dict.fromkeys(pcids):
            simulated.register_pcid(pcid, DEMO_EMAID)
        if pcids:
            known = f", knows PCID {' and '.join(dict.fromkeys(pcids))} ({DEMO_EMAID})"
    return simulated, f"simulated backend with the test PKIs of {dd.root}{known}"


async def _serve(args: argparse.Namespace, printer: _Printer) -> int:
    from pki.ocsp import ocpp_request_data

    from ..net.sdp import SDP_PORT
    from ..net.service import ChargerService
    from ..net.tls import server_context
    from ..net.tlsselect import DualServerContext, protocols_for_tls_version
    from ..net.transport import ConnectionLimits
    from ..pnc.security import ChargerSecurity
    from ..sessions import ChargerSession

    setup = _setup(args)
    printer.rfid = setup["rfid"]
    preload_codecs(setup["config"].protocols, "charger")
    store, config = setup["store"], setup["config"]
    security = ChargerSecurity(trust_store=store,
                               ocsp_request_data=lambda chain: ocpp_request_data(_anchor_for(chain, store)))
    store20 = setup["store20"]
    security20 = ChargerSecurity(trust_store=store20) if store20 is not None else security

    def session_for(stream: Any) -> Any:
        # TLS 1.3 carries ISO 15118-20, TLS 1.2 ISO 15118-2, plain TCP ISO 15118-2 and DIN
        fits = tuple(p for p in config.protocols if p in protocols_for_tls_version(stream.tls_version))
        return ChargerSession(dataclasses.replace(config, tls=stream.tls, protocols=fits or config.protocols),
                              security=security20 if fits == ("iso20",) else security)

    creds = setup["credentials"]
    tls_context = None
    if True in setup["transports"]:
        if 20 in creds:  # one port: the ClientHello picks the -2 (TLS 1.2) or the -20 (TLS 1.3) certificate
            # mutual TLS for -20: the EV's vehicle certificate, checked to the -20 OEM roots [V2G20-2400]
            oem = list(store20.anchors("oem")) if store20 is not None else None
            tls_context = DualServerContext(iso2=creds.get(2) if "iso2" in config.protocols else None,
                                            iso20=creds[20], iso20_client_roots=oem or None).context
        else:
            tls_context = server_context(*creds[2])
    backend, about = await _backend(args, setup, printer)
    service = ChargerService(interface=args.interface, session_factory=session_for, backend=backend,
                             tls_context=tls_context, tcp=False in setup["transports"],
                             limits=ConnectionLimits(args.max_connections, args.max_per_peer), id_token=setup["rfid"],
                             on_event=printer.event, on_connection=printer.connection,
                             sdp_port=args.sdp_port or SDP_PORT)
    try:
        try:
            await service.start()
        except OSError as exc:
            raise StartError(f"cannot start on {args.interface}: {exc.strerror or exc}") from None
        listening = ", ".join(f"{'TLS' if tls else 'TCP'} [{service.address}%{args.interface}]:{srv.port}"
                              for tls, srv in sorted(service.servers.items(), reverse=True))
        printer.note("Listening", f"charger {config.evse_id} on {args.interface} offers "
                                  f"{', '.join(config.protocols)}: {listening}; SDP on UDP "
                                  f"[ff02::1%{args.interface}]:{service.sdp.port if service.sdp else '-'}; "
                                  f"backend: {about}",
                     interface=args.interface, address=service.address,
                     tls_port=service.servers[True].port if True in service.servers else None,
                     tcp_port=service.servers[False].port if False in service.servers else None,
                     protocols=list(config.protocols), evse_id=config.evse_id, backend=about)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        received: list[str] = []

        def on_signal(sig: int) -> None:
            received.append(signal.Signals(sig).name)
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread / not POSIX
                pass
        await stop.wait()
        running = [c.number for c in service.active.values() if c.session is not None and not c.session.ended]
        printer.note("Stopping", f"{received[0] if received else 'stop'}: no new sessions; asking {len(running)} "
                                 f"session{'s' if len(running) != 1 else ''} in flight to stop (at most "
                                 f"{args.stop_timeout:g} s)", sessions=len(running))
        await service.stop(args.stop_timeout)
        cut = [c for c in service.finished if c.number in running and (c.ended is None or c.ended.reason != "finished")]
        cut += [c for c in service.active.values() if c.number in running]
        printer.note("Stopped", f"charger stopped after {service.accepted} connection"
                                f"{'s' if service.accepted != 1 else ''}"
                                + (f"; {len(cut)} session(s) did not end with SessionStop" if cut else ""),
                     connections=service.accepted, unfinished=len(cut))
        return 0
    finally:
        if service.sdp is not None or service.servers:
            await service.stop(0.0)
        aclose = getattr(backend, "aclose", None)
        if aclose is not None:
            await aclose()


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge charger``; returns the exit code."""
    printer = _Printer(out, args.json, None)
    try:
        return asyncio.run(_serve(args, printer))
    except SetupError as exc:
        err(f"{args.prog}: error: {exc}")
        return 2
    except StartError as exc:
        err(f"{args.prog}: error: {exc}")
        return 1
