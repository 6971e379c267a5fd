"""``plugcharge demo --protocol iso20``: a complete ISO 15118-20 Plug & Charge session on loopback with
mutual TLS 1.3.

The charger holds an ISO 15118-2 (secp256r1) and an ISO 15118-20 (secp521r1) certificate on one TLS
port and presents the one the EV's ClientHello asks for
(:class:`~plugcharge.net.tlsselect.DualServerContext`); for -20 it asks for the EV's vehicle
certificate and checks the chain under the -20 vehicle profile to the OEM root (mutual TLS
[V2G20-2400, V2G20-2432]).  The -20 EV connects with TLS 1.3 and its vehicle certificate, offers the
-20 message set of its energy mode and runs SessionSetup to SessionStop: DC by default (cable check,
pre-charge, charge loop, welding detection), ``--ac`` for AC, ``--bpt`` to discharge into the grid
for two loop messages, then charge.

Payment is Plug & Charge: the first run installs a contract (the EV's CertificateInstallationReq
signed with its -20 OEM provisioning key, forwarded by the charger to the simulated backend, the
contract chain and the encrypted key checked and stored in the wallet), later runs reuse it; the
EV signs the charger's GenChallenge and the metering confirmations with the contract key.
``--csms`` runs the backend through the test CSMS (OCPP 2.1 over a loopback websocket, the eMSP
state in ``DATA_DIR/csms``: activate the car's PCID first with ``plugcharge csms activate``) or a
running CSMS at a ``ws://`` URL, instead of the in-process one.  ``--eim`` identifies at the charger instead; ``--fail-installation`` makes the backend fail the
installation: the charger answers FAILED, the session ends and the EV starts a second one on the
same plug-in with identification at the charger.  The output uses the same driver display and
charge-port light lines as the -2 demo.
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
from ..core.config import ChargerConfig, EVConfig
from ..core.events import AuthorizationAccepted, ContractInstallationFailed, Event, MeteringReceiptReceived, MeterValues, SessionEnded
from ..net.runner import run_charger, run_ev
from ..pnc.security import ChargerSecurity, EVSecurity
from ..pnc.wallet import ContractWallet
from ..sessions import ChargerSession, EVSession
from .demo import (
    DEMO_EMAID, DEMO_ID_TOKEN, PROTOCOL_RUNNERS, DemoOptions, DemoSummary, _codec_check,
    _make_data_dir, _start_ocpp, _OperatorBackend, _print_summary, _summarize, _TracingStream, _View, ensure_pki,
    wallet_switch,
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

    #: whether the session's metering confirmations are signed (Plug & Charge)
    signed = False

    def charger_event(self, e: Event) -> None:
        if isinstance(e, AuthorizationAccepted):  # a refused contract may give way to EIM in the session
            self.signed = e.payment == "Contract"
        if isinstance(e, MeteringReceiptReceived):
            how = "signed with the contract key, verified" if self.signed else "unsigned: identification at the charger"
            self.line("charger", f"metering confirmed by the EV: {e.meter_info.get('ChargedEnergyReadingWh')} Wh "
                                 f"charged ({how})")
            return
        super().charger_event(e)


def _curve(der: bytes) -> str:
    key = x509.load_der_x509_certificate(der).public_key()
    curve = getattr(key, "curve", None)
    return curve.name if curve is not None else type(key).__name__.replace("PublicKey", "")


def ensure_wallet20(directory: Path, pki20: Any, *, say: Callable[[str, str], None]) -> ContractWallet:
    """Open the EV wallet with the -20 OEM provisioning credentials and vehicle certificate of
    ``pki20`` (the factory's steps); a new wallet gets Plug & Charge switched on."""
    wallet = ContractWallet(directory)
    created = wallet.oem_provisioning is None and wallet.oem_provisioning_for(20) is None
    oem, subs = pki20.cert("oem-provisioning-leaf"), (pki20.cert("oem-sub2"), pki20.cert("oem-sub1"))
    current = wallet.oem_provisioning_for(20)
    if current is None or current.leaf != oem:
        wallet.set_oem_provisioning(oem, subs, pki20.key("oem-provisioning-leaf"), iso=20)
    vehicle = wallet.vehicle_certificate
    if vehicle is None or vehicle.leaf != pki20.cert("vehicle-leaf"):
        wallet.set_vehicle_certificate(pki20.cert("vehicle-leaf"), subs, pki20.key("vehicle-leaf"))
    pcid = wallet.oem_provisioning_for(20).pcid  # type: ignore[union-attr]
    if created:
        wallet.set_enabled(True)
        say("ev", f"wallet created in {directory}: PCID {pcid} (ISO 15118-20), Plug & Charge on, no contract yet")
    else:
        n = len(wallet.contracts(iso=20))
        say("ev", f"wallet opened: PCID {pcid} (ISO 15118-20), Plug & Charge {wallet_switch(wallet)}, "
                  f"{n} ISO 15118-20 contract{'s' if n != 1 else ''} installed")
    return wallet


async def run_iso20_demo(opts: DemoOptions, out: Callable[[str], None] = print) -> DemoSummary:
    """Run the -20 demo (see the module docstring); ``out`` receives every printed line."""
    from pki.store import TrustStore

    from ..net.sdp import SDPRequest, discover_secc, loopback_host, make_responder, start_sdp_server
    from ..net.tls import client_context
    from ..net.tlsselect import DualServerContext, protocols_for_tls_version
    from ..net.transport import open_ev_connection, start_charger_server

    from ..iso20 import SPECS

    _codec_check(opts.codecs, list(SPECS))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    view = _View20(out, time.monotonic())
    now = dt.datetime.now(dt.timezone.utc)
    data = _make_data_dir(opts.data_dir)
    pki2, _ = ensure_pki(data / "pki", seed=opts.seed, iso=2, now=now, say=view.line)
    pki20, _ = ensure_pki(data / "pki20", seed=opts.seed, iso=20, now=now, say=view.line)
    wallet = ensure_wallet20(data / "wallet", pki20, say=view.line)
    backend: Any
    csms: Any = None
    if opts.csms is None:
        backend = SimulatedBackend(pki2, pki20=pki20, codecs=opts.codecs)
        backend.register_pcid(pki20.pcid, DEMO_EMAID)
        backend.register_id_token(DEMO_ID_TOKEN)
        if opts.fail_installation:
            backend.fail_installations = "demo: --fail-installation (the certificate provisioning service fails)"
    else:
        backend, csms = await _start_ocpp(opts, pki2, data, view, pki20=pki20)
    if opts.fail_installation and wallet.usable_contract(now, iso=20) is not None and not opts.eim:
        view.line("operator", "note: the wallet already holds a usable ISO 15118-20 contract, so no installation "
                              "is attempted (run 'plugcharge wallet wipe' first to see the fallback)")
    op_backend = _OperatorBackend(backend, view)
    mode = "AC_three_phase_core" if opts.ac else "DC_extended"
    charger_cfg = ChargerConfig(energy_modes=(mode,), receipt_every=3, discharge_loops=BPT_DISCHARGE_LOOPS)
    charger_security = ChargerSecurity(trust_store=TrustStore(pki20.store_roots()))
    results: asyncio.Queue = asyncio.Queue()
    oem_root = pki20.cert("oem-root")
    tls = DualServerContext(
        iso2=([pki2.cert("secc-leaf"), pki2.cert("cpo-sub2"), pki2.cert("cpo-sub1")], pki2.key("secc-leaf")),
        iso20=([pki20.cert("secc-leaf"), pki20.cert("cpo-sub2"), pki20.cert("cpo-sub1")], pki20.key("secc-leaf")),
        iso20_client_roots=[oem_root])

    async def handler(stream: Any) -> None:
        events: list = []
        try:
            protocols = protocols_for_tls_version(stream.tls_version)
            iso20 = protocols == ("iso20",)
            view.line("charger", f"{stream.tls_version} {stream.cipher}: presenting the "
                                 f"{'ISO 15118-20' if iso20 else 'ISO 15118-2'} certificate")
            if iso20 and stream.peer_chain:
                vehicle = x509.load_der_x509_certificate(stream.peer_chain[0])
                view.line("charger", f"TLS 1.3 (mutual): vehicle certificate {vehicle.subject.rfc4514_string()} "
                                     f"({_curve(stream.peer_chain[0])}) verified under the ISO 15118-20 vehicle "
                                     f"profile to the OEM root")
            session = ChargerSession(dataclasses.replace(charger_cfg, tls=stream.tls, protocols=protocols),
                                     codecs=opts.codecs, security=charger_security)
            events = await run_charger(stream, session, op_backend, id_token=DEMO_ID_TOKEN,
                                       on_event=view.charger_event)
        finally:
            results.put_nowait(events)

    host = loopback_host()
    server = await start_charger_server(handler, host, 0, ssl_context=tls.context)
    sdp = await start_sdp_server(make_responder(host, tls_port=server.port), loopback=True, host=host, port=0)
    view.line("operator", f"charger {charger_cfg.evse_id} ({mode}{', bidirectional' if opts.bpt else ''}) listening "
                          f"on [{host}]:{server.port}: TLS 1.2 with its ISO 15118-2 certificate or TLS 1.3 with "
                          f"its ISO 15118-20 certificate and the EV's vehicle certificate (mutual), as the EV asks; "
                          f"SDP on UDP [{host}]:{sdp.port}")
    summary = DemoSummary(completed=False, reason="not started")
    vehicle = wallet.vehicle_certificate
    assert vehicle is not None
    cctx = client_context([pki20.cert("v2g-root")], iso=20, client_chain=vehicle.tls_chain,
                          client_key=vehicle.private_key)
    ev_security = EVSecurity(wallet=wallet, v2g_roots=[pki20.cert("v2g-root")],  # type: ignore[arg-type]
                             mo_roots=[pki20.cert("mo-root")])
    try:
        async with server:
            view.driver("Cable plugged in - connecting to the charger", "waiting")
            suppressed = opts.eim
            while True:
                summary.sessions += 1
                resp = await discover_secc(SDPRequest(), loopback=True, host=host, port=sdp.port, timeout=0.25,
                                           max_requests=20)
                view.line("ev", f"SDP: charger at [{resp.host}]:{resp.port}, security {resp.security.name}")
                stream: Any = await open_ev_connection(resp.host, resp.port, ssl_context=cctx)
                leaf = stream.peer_certificate or b""
                view.line("ev", f"{stream.tls_version} {stream.cipher}: charger certificate "
                                f"{x509.load_der_x509_certificate(leaf).subject.rfc4514_string()} ({_curve(leaf)}) "
                                f"verified against the ISO 15118-20 V2G root; vehicle certificate presented "
                                f"(mutual TLS)")
                discharge = BPT_DISCHARGE_LOOPS if opts.bpt else 0
                ev = EVSession(EVConfig(energy_mode=mode, charge_loops=opts.loops + discharge, tls=True,
                                        protocols=("iso20",), bpt=opts.bpt, discharge_loops=discharge,
                                        loop_interval=opts.loop_interval, poll_interval=0.1, target_soc=95.0,
                                        pnc_suppressed=suppressed),
                               codecs=opts.codecs, security=ev_security)
                view.signed = not suppressed
                if opts.trace:
                    stream = _TracingStream(stream, view, opts.codecs, functools.partial(getattr, ev, "protocol"))
                ev_events = await run_ev(stream, ev, on_event=view.ev_event)
                summary.ev_events += ev_events
                summary.charger_events += await asyncio.wait_for(results.get(), 10)
                summary.messages += len(ev.trace)
                if getattr(ev.handler, "contract_expires_soon", False):
                    view.line("ev", "the charger says the contract ends within 14 days: a new one is installed at "
                                    "the next charge")
                end = ev_events[-1] if ev_events and isinstance(ev_events[-1], SessionEnded) else None
                if end is not None and end.fallback == "ExternalPayment" and not suppressed:
                    suppressed = summary.fallback = True
                    view.line("ev", "falling back to identification at the charger on the same plug-in "
                                    "(new V2G session)")
                    continue
                break
    finally:
        sdp.close()
        if opts.csms is not None:
            await backend.aclose()
            if csms is not None:
                await csms.aclose()
    _summarize(summary, loop.time() - t0)
    if opts.csms is not None and any(isinstance(e, ContractInstallationFailed) and e.response_code ==
                                     "WARNING_NoContractMatchingPCIDFound" for e in summary.ev_events):
        view.line("operator", f"the eMSP knows no contract for PCID {pki20.pcid}: activate Plug & Charge with "
                              f"'plugcharge csms activate {pki20.pcid} --data-dir {data}'")
    if not any(isinstance(e, SessionEnded) for e in summary.ev_events):
        summary.reason = "no session"
    summary.fallback = summary.fallback or _fell_back(summary.ev_events)
    _print_summary(summary, wallet, view)
    return summary


def _fell_back(events: list) -> bool:
    """Plug & Charge gave way to EIM inside a session (refused contract or installation)."""
    from ..core.events import PaymentSelected

    options = [e.option for e in events if isinstance(e, PaymentSelected)]
    return "Contract" in options and options[-1] == "ExternalPayment"


PROTOCOL_RUNNERS["iso20"] = run_iso20_demo
