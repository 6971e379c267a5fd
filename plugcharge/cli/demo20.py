"""``plugcharge demo --protocol iso20``: a complete ISO 15118-20 session on loopback with TLS 1.3.

The charger holds an ISO 15118-2 (secp256r1) and an ISO 15118-20 (secp521r1) certificate on one TLS
port and presents the one the EV's ClientHello asks for
(:class:`~plugcharge.net.tlsselect.DualServerContext`); the -20 EV connects with TLS 1.3, offers
the -20 message set of its energy mode and runs SessionSetup to SessionStop: DC by default (cable
check, pre-charge, charge loop, welding detection), ``--ac`` for AC, ``--bpt`` to discharge into the
grid for two loop messages, then charge.  Identification is at the charger (EIM, the demo's RFID
card): Plug & Charge for -20 is not wired into the session yet, so without ``--eim`` the demo says
so and runs EIM.  The output uses the same driver display and charge-port light lines as the -2 demo.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import time
from pathlib import Path
from typing import Any, Callable

from cryptography import x509

from ..backends.simulated import SimulatedBackend
from ..core.events import Event, MeteringReceiptReceived, MeterValues, SessionEnded
from ..net.runner import run_charger, run_ev
from ..pnc.wallet import ContractWallet
from ..sessions import ChargerSession, EVSession
from ..core.config import ChargerConfig, EVConfig
from ..pnc.security import ChargerSecurity, EVSecurity
from .demo import (
    DEMO_ID_TOKEN, PROTOCOL_RUNNERS, DemoError, DemoOptions, DemoSummary, _codec_check, _OperatorBackend,
    _print_summary, _summarize, _TracingStream, _View, ensure_pki,
)

__all__ = ["run_iso20_demo"]

#: BPT: loop messages spent discharging before the EV charges.
BPT_DISCHARGE_LOOPS = 2


class _View20(_View):
    """The -2 demo's view; a negative current shows as discharging."""

    def ev_event(self, e: Event) -> None:
        if isinstance(e, MeterValues) and e.current is not None and e.current < 0:
            parts = [f"SOC {e.soc} %" if e.soc is not None else "", f"{e.voltage:.0f} V" if e.voltage else "",
                     f"{-e.current:.0f} A to the grid"]
            self.driver("Discharging " + " ".join(p for p in parts if p), "charging")
            return
        super().ev_event(e)

    def charger_event(self, e: Event) -> None:
        if isinstance(e, MeteringReceiptReceived):
            self.line("charger", f"metering confirmed by the EV: {e.meter_info.get('ChargedEnergyReadingWh')} Wh "
                                 f"charged (unsigned: identification at the charger)")
            return
        super().charger_event(e)


def _curve(der: bytes) -> str:
    key = x509.load_der_x509_certificate(der).public_key()
    curve = getattr(key, "curve", None)
    return curve.name if curve is not None else type(key).__name__.replace("PublicKey", "")


async def run_iso20_demo(opts: DemoOptions, out: Callable[[str], None] = print) -> DemoSummary:
    """Run the -20 demo (see the module docstring); ``out`` receives every printed line."""
    from ..net.sdp import SDPRequest, discover_secc, loopback_host, make_responder, start_sdp_server
    from ..net.tls import client_context
    from ..net.tlsselect import DualServerContext, protocols_for_tls_version
    from ..net.transport import open_ev_connection, start_charger_server

    if opts.csms is not None or opts.fail_installation:
        raise DemoError("--csms and --fail-installation need Plug & Charge, which ISO 15118-20 sessions do not "
                        "run yet (use --protocol iso2)")
    from ..iso20 import SPECS

    _codec_check(opts.codecs, list(SPECS))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    view = _View20(out, time.monotonic())
    now = dt.datetime.now(dt.timezone.utc)
    data = Path(opts.data_dir)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create the data directory {data}: {exc}") from None
    pki2, _ = ensure_pki(data / "pki", seed=opts.seed, iso=2, now=now, say=view.line)
    pki20, _ = ensure_pki(data / "pki20", seed=opts.seed, iso=20, now=now, say=view.line)
    if not opts.eim:
        view.line("ev", "Plug & Charge is not wired into ISO 15118-20 sessions yet: this session identifies "
                        "at the charger (EIM)")
    backend = SimulatedBackend(pki2, codecs=opts.codecs)
    backend.register_id_token(DEMO_ID_TOKEN)
    op_backend = _OperatorBackend(backend, view)
    mode = "AC_three_phase_core" if opts.ac else "DC_extended"
    charger_cfg = ChargerConfig(energy_modes=(mode,), receipt_every=3, discharge_loops=BPT_DISCHARGE_LOOPS)
    results: asyncio.Queue = asyncio.Queue()
    tls = DualServerContext(
        iso2=([pki2.cert("secc-leaf"), pki2.cert("cpo-sub2"), pki2.cert("cpo-sub1")], pki2.key("secc-leaf")),
        iso20=([pki20.cert("secc-leaf"), pki20.cert("cpo-sub2"), pki20.cert("cpo-sub1")], pki20.key("secc-leaf")))

    async def handler(stream: Any) -> None:
        events: list = []
        try:
            protocols = protocols_for_tls_version(stream.tls_version)
            view.line("charger", f"{stream.tls_version} {stream.cipher}: presenting the "
                                 f"{'ISO 15118-20' if protocols == ('iso20',) else 'ISO 15118-2'} certificate")
            session = ChargerSession(dataclasses.replace(charger_cfg, tls=stream.tls, protocols=protocols),
                                     codecs=opts.codecs, security=ChargerSecurity())
            events = await run_charger(stream, session, op_backend, id_token=DEMO_ID_TOKEN,
                                       on_event=view.charger_event)
        finally:
            results.put_nowait(events)

    host = loopback_host()
    server = await start_charger_server(handler, host, 0, ssl_context=tls.context)
    sdp = await start_sdp_server(make_responder(host, tls_port=server.port), loopback=True, host=host, port=0)
    view.line("operator", f"charger {charger_cfg.evse_id} ({mode}{', bidirectional' if opts.bpt else ''}) listening "
                          f"on [{host}]:{server.port}: TLS 1.2 with its ISO 15118-2 certificate or TLS 1.3 with "
                          f"its ISO 15118-20 certificate, as the EV asks; SDP on UDP [{host}]:{sdp.port}")
    summary = DemoSummary(completed=False, reason="not started", sessions=1)
    cctx = client_context([pki20.cert("v2g-root")], iso=20)
    try:
        async with server:
            view.driver("Cable plugged in - connecting to the charger", "waiting")
            resp = await discover_secc(SDPRequest(), loopback=True, host=host, port=sdp.port, timeout=0.25,
                                       max_requests=20)
            view.line("ev", f"SDP: charger at [{resp.host}]:{resp.port}, security {resp.security.name}")
            stream: Any = await open_ev_connection(resp.host, resp.port, ssl_context=cctx)
            leaf = stream.peer_certificate or b""
            view.line("ev", f"{stream.tls_version} {stream.cipher}: charger certificate "
                            f"{x509.load_der_x509_certificate(leaf).subject.rfc4514_string()} ({_curve(leaf)}) "
                            f"verified against the ISO 15118-20 V2G root")
            discharge = BPT_DISCHARGE_LOOPS if opts.bpt else 0
            ev = EVSession(EVConfig(energy_mode=mode, charge_loops=opts.loops + discharge, tls=True,
                                    protocols=("iso20",), bpt=opts.bpt, discharge_loops=discharge,
                                    loop_interval=opts.loop_interval, poll_interval=0.1, target_soc=95.0),
                           codecs=opts.codecs,
                           security=EVSecurity(v2g_roots=[pki20.cert("v2g-root")]))
            if opts.trace:
                stream = _TracingStream(stream, view, opts.codecs, functools.partial(getattr, ev, "protocol"))
            ev_events = await run_ev(stream, ev, on_event=view.ev_event)
            summary.ev_events += ev_events
            summary.charger_events += await asyncio.wait_for(results.get(), 10)
            summary.messages += len(ev.trace)
    finally:
        sdp.close()
    _summarize(summary, loop.time() - t0)
    ends = [e for e in summary.ev_events if isinstance(e, SessionEnded)]
    if not ends:
        summary.reason = "no session"
    _print_summary(summary, ContractWallet(data / "wallet"), view)
    return summary


PROTOCOL_RUNNERS["iso20"] = run_iso20_demo
