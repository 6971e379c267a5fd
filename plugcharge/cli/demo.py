"""``plugcharge demo``: one complete charging session on this machine, in the protocol the charger
offers (``--protocol iso2``, the default: ISO 15118-2 Plug & Charge; ``--protocol din``: DIN SPEC 70121,
DC with identification at the charger over plain TCP; ``--protocol iso20``: ISO 15118-20 over TLS 1.3,
run by :mod:`.demo20`).  The EV always offers every protocol it implements; the output names the one agreed.

Everything runs in one process over loopback sockets:

* a **test PKI** (:func:`pki.issue.issue_test_pki`) and an **EV wallet** holding the OEM
  provisioning credentials are created in the data directory when absent and reused afterwards;
* a **charger** (:class:`~plugcharge.ChargerSession`) listening where its protocol can run (a TLS
  server presenting the SECC chain, and/or plain TCP: DIN forbids TLS), an SDP server in loopback
  mode answering the security the EV asks for when it has it, and a
  :class:`~plugcharge.backends.simulated.SimulatedBackend` playing the certificate provisioning
  service and the e-mobility provider;
* an **EV** (:class:`~plugcharge.EVSession`) that discovers the charger over SDP (asking for TLS),
  connects as answered (over TLS checking the SECC chain against the V2G root), installs a contract
  on the first run (the wallet keeps it: later runs reuse it) where the agreed protocol has Plug &
  Charge, authorises, charges (DC: CableCheck, PreCharge and a few CurrentDemand cycles; AC:
  ChargingStatus with signed MeteringReceipts) and stops.

When Plug & Charge fails (``--fail-installation``) the EV starts a second session on the same
plug-in with ExternalPayment and the driver identifies with an RFID card at the charger.

Data directory layout (:mod:`~plugcharge.cli.datadir`, what ``plugcharge init`` creates and ``charger``,
``ev`` and ``csms`` share): ``pki/`` (certificates, keys, ``manifest.json``), ``wallet/`` (the EV's
contract wallet, owner-only), ``csms/`` with ``--csms``.  Default: ``$PLUGCHARGE_DATA_DIR`` or
``./plugcharge-demo``.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..backends.simulated import SimulatedBackend
from ..core.codec import NS_APP, resolve_codecs
from ..core.config import ChargerConfig, EVConfig
from ..core.protocol import KNOWN_PROTOCOLS, ProtocolSpec
from ..pnc.security import ChargerSecurity, EVSecurity
from ..sessions import ChargerSession, EVSession, default_registry
from ..core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationRejected,
    CertificateInstallationNeeded, ChargingStarted, ChargingStopped, ContractInstallationFailed,
    ContractInstallationStarted, ContractInstallationSucceeded, Event, MeteringReceiptReceived, MeterValues,
    NegotiationFailed, PaymentSelected, ProtocolAgreed, ProtocolError, SalesTariffVerified, SessionEnded, SessionStarted, TimerExpired,
)
from ..net.runner import run_charger, run_ev
from ._common import (
    DATA_DIR_ENV, DEFAULT_DATA_DIR, add_command, csms_url, default_data_dir, positive_int, positive_seconds, reason,
)
from ._common import data_dir as _data_dir_of
from .datadir import DataDir
from ..pnc.wallet import ContractWallet

__all__ = [
    "register", "run", "implemented_protocols",
    "DATA_DIR_ENV", "DEFAULT_DATA_DIR", "DEMO_EMAID", "DEMO_ID_TOKEN", "DEMO_STATION_ID", "DemoError", "DemoOptions",
    "DemoSummary",
    "default_data_dir", "load_pki", "ensure_pki", "ensure_wallet", "wallet_switch", "run_demo", "run_demo_async",
]

#: The eMAID the simulated eMSP assigned to the demo vehicle's PCID.
DEMO_EMAID = "DEPLGCDEMO00001"
#: The RFID card the driver holds for ExternalPayment (known to the simulated eMSP).
DEMO_ID_TOKEN = "DEMO-RFID-0001"
#: The charging station identity the demo charger uses at a CSMS (``--csms``).
DEMO_STATION_ID = "PLUGCHARGE-DEMO-1"
#: A certificate of the stored PKI expiring sooner than this is re-issued.
_PKI_MARGIN = dt.timedelta(days=1)


#: Demo runs of their own, by protocol id: ``async (opts, out) -> DemoSummary`` (each registers
#: itself: :mod:`.demo20`, which the ``cli`` package imports, runs ``iso20``).
PROTOCOL_RUNNERS: dict[str, Callable[..., Any]] = {}


class DemoError(RuntimeError):
    """The demo could not be set up (bad data directory, unsupported option, ...)."""


@dataclasses.dataclass
class DemoOptions:
    """What ``plugcharge demo`` does (see the CLI help)."""

    data_dir: Path = dataclasses.field(default_factory=default_data_dir)
    ac: bool = False
    eim: bool = False
    fail_installation: bool = False
    seed: Optional[int] = None
    #: what the charger offers (a protocol id: ``iso2``, ``din``, ``iso20``); the EV offers all it implements
    protocol: str = "iso2"
    #: ISO 15118 edition of the test PKI (None: the protocol's, -20 for ``iso20``, else -2)
    iso: Optional[int] = None
    #: ISO 15118-20 only: bidirectional power transfer (discharge, then charge)
    bpt: bool = False
    #: charge-loop requests (CurrentDemand / ChargingStatus) before the EV stops
    loops: int = 5
    #: seconds between two charge-loop requests (energy is metered in real time)
    loop_interval: float = 0.2
    #: overall time limit in seconds: the demo never hangs
    timeout: float = 60.0
    #: print every V2G message the EV sends and receives (name and EXI size)
    trace: bool = False
    #: EXI codec provider (``None`` = :func:`exi.get_codec`); tests may inject another
    codecs: Any = None
    #: ``None``: the in-process simulated backend; ``""``: a test CSMS started in this process on a
    #: loopback websocket (state in DATA_DIR/csms); a ``ws://`` URL: that running CSMS.  The charger
    #: talks OCPP 2.0.1 to it (:class:`~plugcharge.backends.ocpp.OCPPBackend`)
    csms: Optional[str] = None


@dataclasses.dataclass
class DemoSummary:
    """The outcome of one ``plugcharge demo`` run."""

    completed: bool
    reason: str
    payment: Optional[str] = None
    emaid: Optional[str] = None
    installed: bool = False
    fallback: bool = False
    sessions: int = 0
    messages: int = 0
    #: the name of the protocol agreed in the last session (``DIN SPEC 70121`` ...)
    protocol: Optional[str] = None
    energy_wh: Optional[int] = None
    duration_s: float = 0.0
    ev_events: list = dataclasses.field(default_factory=list, repr=False)
    charger_events: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def exit_code(self) -> int:
        """0 when a charging session completed (also after the ExternalPayment fallback)."""
        return 0 if self.completed else 1


# ------------------------------------------------------------------------------------------ data
def _io_reason(exc: BaseException) -> str:
    """A short reason for a failed operation, without the exception's repr."""
    if isinstance(exc, OSError):
        return (exc.strerror or type(exc).__name__).lower()
    return str(exc) or type(exc).__name__


def _make_data_dir(path: str | Path) -> Path:
    """The demo's data directory, created when missing; :class:`DemoError` saying why it cannot be."""
    data = Path(path)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create the data directory {data} ({_io_reason(exc)}): choose another with "
                        "--data-dir") from None
    return data


def load_pki(directory: Path) -> Any:
    """Load a test PKI written by :meth:`pki.issue.TestPKI.write` (manifest, DER certs, PEM keys).

    Raises :class:`DemoError` naming the file that is missing or damaged."""
    from pki.issue import TestPKI

    redo = ("restore it, or start over with a new data directory (the wallet's contracts were issued "
            "under this PKI)")
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text("utf-8"))
        files = manifest["files"]
        certs: dict[str, bytes] = {}
        keys: dict[str, Any] = {}
        serials: dict[str, int] = {}
        for f in files:
            role = f["role"]
            path = directory / f["der"]
            certs[role] = path.read_bytes()
            cert = x509.load_der_x509_certificate(certs[role])
            path = directory / f["key"]
            keys[role] = serialization.load_pem_private_key(path.read_bytes(), None)
            spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            if keys[role].public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
                raise ValueError(f"is not the key of the certificate {f['der']}")
            path = directory / "manifest.json"
            serials[role] = int(f["serial"], 16)
        return TestPKI(iso=int(manifest["iso"]), algorithm=manifest["algorithm"],
                       now=dt.datetime.fromisoformat(manifest["now"]), emaid=manifest["emaid"],
                       pcid=manifest["pcid"], seed=manifest.get("seed"), certificates=certs, keys=keys,
                       serials=serials)
    except OSError as exc:
        raise DemoError(f"test PKI file {path} cannot be read ({_io_reason(exc)}): {redo}") from None
    except (ValueError, KeyError, TypeError) as exc:
        what = "is not valid JSON" if isinstance(exc, json.JSONDecodeError) else \
            f"lacks the field {exc}" if isinstance(exc, KeyError) else \
            str(exc) if str(exc).startswith("is not the key of") else "is damaged (it does not parse)"
        raise DemoError(f"test PKI file {path} {what}: {redo}") from None


def _expires_soon(pki: Any, now: dt.datetime) -> Optional[str]:
    for role in pki.roles:
        cert = x509.load_der_x509_certificate(pki.cert(role))
        if not (cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > _PKI_MARGIN):
            return role
    return None


def _wallet_holds(wallet_dir: Optional[Path]) -> list[str]:
    """The wallet files in ``wallet_dir`` that a new PKI would orphan (contracts, OEM credentials)."""
    if wallet_dir is None or not wallet_dir.is_dir():
        return []
    return sorted(p.name for p in wallet_dir.iterdir() if p.suffix == ".json" and p.name != "settings.json")


def ensure_pki(directory: Path, *, seed: Optional[int], iso: int, now: dt.datetime,
               say: Callable[[str, str], None], wallet_dir: Optional[Path] = None) -> tuple[Any, bool]:
    """Load the test PKI from ``directory`` or issue (and write) a new one; returns ``(pki, created)``.

    A wallet in ``wallet_dir`` holds contracts and credentials issued under the existing PKI: when
    ``manifest.json`` is missing but such a wallet exists, this refuses (:class:`DemoError`) rather
    than issue a new PKI that would orphan them; when the PKI is replaced (expired, other edition)
    it says what the wallet loses."""
    from pki.issue import issue_test_pki

    held = _wallet_holds(wallet_dir)
    if (directory / "manifest.json").exists():
        pki = load_pki(directory)
        stale = _expires_soon(pki, now)
        if pki.iso == iso and stale is None:
            ignored = " (--seed ignored: the PKI already exists)" if seed is not None and seed != pki.seed else ""
            say("operator", f"test PKI loaded from {directory}{ignored}")
            return pki, False
        why = f"ISO 15118-{pki.iso}" if pki.iso != iso else f"{stale} certificate expired"
        lost = (f"; the {len(held)} file(s) of the wallet in {wallet_dir} were issued under the old one: "
                f"its contracts will be refused ('plugcharge wallet wipe' removes them)") if held else ""
        say("operator", f"test PKI in {directory} is not usable ({why}): issuing a new one{lost}")
    elif held:
        raise DemoError(f"the test PKI in {directory} is missing (no manifest.json) but the wallet in {wallet_dir} "
                        f"holds {', '.join(held)}, issued under it: a new PKI would orphan them. Restore "
                        f"{directory}, or start over with a new --data-dir (or delete {wallet_dir} too)")
    pki = issue_test_pki(iso, seed=seed, now=now)
    pki.write(directory)
    say("operator", f"test PKI issued in {directory} (V2G, MO and OEM roots, ISO 15118-{iso})")
    return pki, True


def ensure_wallet(directory: Path, pki: Any, *, say: Callable[[str, str], None]) -> tuple[ContractWallet, bool]:
    """Open the EV wallet; a new one gets the PKI's OEM provisioning credentials and P&C on."""
    wallet = ContractWallet(directory)
    oem = pki.cert("oem-provisioning-leaf")
    current = wallet.oem_provisioning
    n = len(wallet.contracts())
    # new: nothing of a wallet there yet (a wallet whose credentials file was deleted keeps its
    # contracts and its Plug & Charge setting)
    created = current is None and n == 0 and not (directory / "settings.json").exists()
    if current is None or current.leaf != oem:
        wallet.set_oem_provisioning(oem, (pki.cert("oem-sub2"), pki.cert("oem-sub1")), pki.key("oem-provisioning-leaf"))
    if created:
        wallet.set_enabled(True)
        say("ev", f"wallet created in {directory}: PCID {wallet.pcid}, Plug & Charge on, no contract yet")
    else:
        restored = "OEM provisioning credentials were missing, restored from the test PKI; " if current is None else ""
        say("ev", f"wallet opened: {restored}PCID {wallet.pcid}, Plug & Charge {wallet_switch(wallet)}, "
                  f"{n} contract{'s' if n != 1 else ''} installed")
    return wallet, created


def wallet_switch(wallet: ContractWallet) -> str:
    """``on``, or ``OFF`` with the command that switches Plug & Charge on again."""
    return "on" if wallet.enabled else "OFF ('plugcharge wallet enable' switches it on)"


# ------------------------------------------------------------------------------------------ view
class _View:
    """Turns session events into the lines a driver and an operator would see."""

    LIGHTS = {"installing": "blue, pulsing", "success": "green", "failure": "amber, blinking",
              "charging": "green, pulsing", "done": "green, steady", "waiting": "white", "off": "off"}

    REASONS = {"contract_available": "contract in the wallet", "no_contract_install": "no usable contract",
               "plug_and_charge_suppressed_after_failure": "Plug & Charge not used on this plug-in",
               "plug_and_charge_off": "Plug & Charge is switched off",
               "protocol_without_plug_and_charge": "the agreed protocol has no Plug & Charge"}

    def __init__(self, out: Callable[[str], None], started: float) -> None:
        self.out = out
        self.started = started
        self.light = "off"
        #: the last meter reading the EV learnt (-20 chargers send one only now and then): the display keeps it
        self.meter_wh: Optional[int] = None

    def line(self, who: str, text: str) -> None:
        self.out(f"{time.monotonic() - self.started:6.2f}s  {who:<8} {text}")

    def driver(self, text: str, light: Optional[str] = None) -> None:
        if light is not None:
            self.light = light
        self.line("driver", f"display: {text:<52} light: {self.LIGHTS.get(self.light, self.light)}")

    def ev_event(self, e: Event) -> None:
        if isinstance(e, ProtocolAgreed):
            self.line("ev", f"protocol agreed: {e.name} ({e.response_code})"
                      + ("" if e.plug_and_charge else ": no Plug & Charge, the contract wallet is not used"))
        elif isinstance(e, NegotiationFailed):
            self.line("ev", f"no common protocol with the charger ({e.response_code})")
        elif isinstance(e, PaymentSelected):
            what = {"Contract": "Plug & Charge", "ExternalPayment": "external payment (RFID/app)"}.get(e.option, e.option)
            why = self.REASONS.get(e.reason, e.reason.replace("_", " "))
            self.line("ev", f"payment: {what} ({why}{': ' + e.installation + ' a contract' if e.installation else ''})")
            if e.reason == "protocol_without_plug_and_charge":
                self.driver("This charger does not support Plug & Charge", "waiting")
            if e.option == "ExternalPayment":
                self.driver("Please identify at the charger (card or app)", "waiting")
        elif isinstance(e, (ContractInstallationStarted, ContractInstallationSucceeded, ContractInstallationFailed)):
            w = e.wallet_event
            self.driver(w.display_text, w.light.value)
            if isinstance(e, ContractInstallationFailed):
                self.line("ev", f"installation failed: {e.reason}")
        elif isinstance(e, AuthorizationAccepted):
            self.driver("Authorised" + (f" - contract {e.emaid}" if e.emaid else ""), "waiting")
        elif isinstance(e, AuthorizationRejected):
            self.driver(f"Not authorised ({e.response_code})", "failure")
        elif isinstance(e, SalesTariffVerified):
            self.line("ev", f"signed sales tariff {list(e.tariff_ids)} verified")
        elif isinstance(e, ChargingStarted):
            self.meter_wh = None  # a new energy transfer: its own readings
            self.driver("Charging started", "charging")
        elif isinstance(e, MeterValues):
            parts = [f"SOC {e.soc} %" if e.soc is not None else ""]
            if e.voltage is not None:
                parts.append(f"{e.voltage:.0f} V")
            if e.current is not None:
                parts.append(f"{e.current:.0f} A")
            if e.meter_wh is not None:
                self.meter_wh = e.meter_wh
            if self.meter_wh is not None:
                parts.append(f"{self.meter_wh} Wh")
            self.driver("Charging " + " ".join(p for p in parts if p))
        elif isinstance(e, ChargingStopped):
            self.driver("Charging stopped by the charger" if e.reason == "charger_request" else "Charging stopped",
                        "done")
        elif isinstance(e, (ProtocolError, TimerExpired)):
            self.line("ev", _problem_text(e))
        elif isinstance(e, SessionEnded):
            self.line("ev", f"session ended: {e.reason}" + (f" ({e.response_code})" if e.response_code else "")
                      + (f" - {e.detail}" if e.detail and e.reason != "finished" else ""))
            if e.reason == "finished":
                self.driver("Charging complete - you can unplug", "done")
            elif e.fallback:
                self.driver("Plug & Charge not possible - switching to card/app", "failure")

    def charger_event(self, e: Event) -> None:
        if isinstance(e, SessionStarted):
            self.line("charger", f"session {e.session_id.hex().upper()} started (EVCCID {e.evcc_id.hex().upper()}, "
                                 f"EVSE {e.evse_id})")
        elif isinstance(e, CertificateInstallationNeeded):
            req = "CertificateUpdateReq" if e.action == "Update" else "CertificateInstallationReq"
            self.line("charger", f"forwarding the EV's signed {req} to the backend (Get15118EVCertificate)")
        elif isinstance(e, AuthorizationNeeded):
            who = f"contract {e.emaid} ({len(e.chain)} certificates, {len(e.ocsp_data)} OCSP entries)" \
                if e.payment == "Contract" else "driver identification at the charger"
            self.line("charger", f"authorisation needed: {who}")
            if e.payment != "Contract":
                self.line("charger", f"RFID card {DEMO_ID_TOKEN} presented")
        elif isinstance(e, AuthorizationAccepted):
            self.line("charger", f"authorised ({e.payment})")
        elif isinstance(e, AuthorizationRejected):
            self.line("charger", f"authorisation refused: {e.response_code}")
        elif isinstance(e, ChargingStarted):
            self.line("charger", f"energy transfer started ({e.energy_mode}, schedule {e.sa_schedule_id})")
        elif isinstance(e, MeteringReceiptReceived):
            self.line("charger", f"signed metering receipt received: {e.meter_info.get('MeterReading')} Wh")
        elif isinstance(e, ChargingStopped):
            self.line("charger", "energy transfer stopped")
        elif isinstance(e, (ProtocolError, TimerExpired)):
            self.line("charger", _problem_text(e))
        elif isinstance(e, SessionEnded):
            self.line("charger", f"session ended: {e.reason}" + (f" ({e.response_code})" if e.response_code else ""))


def _problem_text(e: Event) -> str:
    """One sentence for a protocol error or timeout event (never the event's repr)."""
    if isinstance(e, ProtocolError):
        who = "the peer" if e.remote else "this side"
        return f"protocol error {e.response_code} ({who}): {e.hint}"
    if isinstance(e, TimerExpired):
        return f"timeout: {e.timer} expired" + (f" ({e.message})" if e.message else "")
    return type(e).__name__


class _OperatorBackend:
    """Async wrapper around the backend (simulated, or the OCPP client) that logs each OCPP call for
    the operator; other attributes (e.g. ``session_reporter``) are the backend's."""

    def __init__(self, backend: Any, view: _View) -> None:
        self.backend = backend
        self.view = view

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    async def _call(self, fn: Any, request: Any) -> Any:
        if asyncio.iscoroutinefunction(fn):
            return await fn(request)
        return await asyncio.to_thread(fn, request)

    async def get_15118_ev_certificate(self, request: Any) -> Any:
        try:
            resp = await self._call(self.backend.get_15118_ev_certificate, request)
        except Exception as exc:  # the OCPP backend: CSMS down, slow or refusing
            self.view.line("backend", f"Get15118EVCertificate({request.action}) failed: {exc}")
            raise
        issued = getattr(self.backend, "last_delivered", None)
        issued = issued.emaid if resp.status == "Accepted" and issued is not None else None
        self.view.line("backend", f"Get15118EVCertificate({request.action}) -> {resp.status}"
                                  + (f": new contract {issued} signed by the CPS" if issued else "")
                                  + (f": {resp.status_info}" if resp.status_info else ""))
        return resp

    async def authorize(self, request: Any) -> Any:
        return await self._authorize(self.backend.authorize, request)

    async def authorize_contract20(self, request: Any) -> Any:
        """A -20 contract: the backend's own check when it has one (OCPP 2.1: GetCertificateChainStatus
        before Authorize), else Authorize."""
        return await self._authorize(getattr(self.backend, "authorize_contract20", None) or self.backend.authorize,
                                     request)

    async def _authorize(self, fn: Any, request: Any) -> Any:
        try:
            resp = await self._call(fn, request)
        except Exception as exc:
            self.view.line("backend", f"Authorize {request.id_token} failed: {exc}")
            raise
        hashes = len(request.iso15118_certificate_hash_data or ())
        # the OCPP backend sends the hash data alone (the charger validated the chain)
        by_hash = hashes and not getattr(self.backend, "send_contract_certificate", True)
        what = (f"contract, {hashes} OCSP hash entries" if request.id_token_type == "eMAID" and by_hash else
                "contract chain validated" if request.certificate else f"{request.id_token_type} token")
        self.view.line("backend", f"Authorize {request.id_token} ({what}) -> {resp.id_token_status}"
                                  + (f" / {resp.certificate_status}" if resp.certificate_status else ""))
        return resp


class _TracingStream:
    """Wraps the EV's V2GTP stream and prints each EXI message (decoded name, size) in both directions."""

    def __init__(self, stream: Any, view: _View, codecs: Any, protocol: Callable[[], Optional[ProtocolSpec]]) -> None:
        self._stream = stream
        self._view = view
        self._codecs = resolve_codecs(codecs)
        self._protocol = protocol  # the session's agreed protocol (None during the handshake)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _name(self, payload: bytes) -> str:
        spec = self._protocol()
        if spec is not None:
            for ns in (spec.namespace, *spec.decode_namespaces.values()):
                try:  # a protocol of several schema sets (-20): the first that decodes the payload
                    return str(spec.unwrap(self._codecs(ns).decode(payload))[0])
                except Exception:
                    pass
        try:
            return next(iter(self._codecs(NS_APP).decode(payload)))
        except Exception:
            return "(undecodable)"

    def _show(self, direction: str, payload: bytes) -> None:
        self._view.line("v2g", f"{direction}  {self._name(payload):<30} {len(payload):5d} B EXI")

    async def read_frame(self, timeout: Optional[float] = None) -> Any:
        frame = await self._stream.read_frame(timeout)
        _, payload = frame
        self._show("ev <- charger", bytes(payload))
        return frame

    async def write_raw(self, frames: bytes) -> None:
        pos = 0
        while pos + 8 <= len(frames):  # V2GTP header: version, inverse, type (2 B), length (4 B)
            length = int.from_bytes(frames[pos + 4:pos + 8], "big")
            self._show("ev -> charger", bytes(frames[pos + 8:pos + 8 + length]))
            pos += 8 + length
        await self._stream.write_raw(frames)

    async def aclose(self) -> None:
        await self._stream.aclose()


# ------------------------------------------------------------------------------------------ run
def implemented_protocols() -> list[str]:
    """The protocol ids (of :data:`~plugcharge.core.protocol.KNOWN_PROTOCOLS`) this package runs both
    sides of: what ``--protocol`` may name (the others are known, not implemented yet)."""
    reg = default_registry()
    return [p for p in KNOWN_PROTOCOLS if reg.select([p], "ev") and reg.select([p], "charger")]


def _charger_protocol(protocol: str) -> list[ProtocolSpec]:
    """The specs the charger offers for ``protocol`` (one, or the members of a protocol family)."""
    if protocol not in KNOWN_PROTOCOLS:
        raise DemoError(f"unknown protocol {protocol!r} (known: {', '.join(KNOWN_PROTOCOLS)})")
    if protocol not in implemented_protocols():
        raise DemoError(f"{KNOWN_PROTOCOLS[protocol]} sessions are not implemented in this version of plugcharge "
                        f"(use --protocol {' or --protocol '.join(implemented_protocols())})")
    return default_registry().select([protocol], "charger")


def _codec_check(codecs: Any, specs: list[ProtocolSpec]) -> None:
    try:
        provider = resolve_codecs(codecs)
        for spec in specs:
            provider(spec.namespace)
        provider(NS_APP)
    except Exception as exc:  # ImportError (codec not built), UnknownNamespaceError ...
        raise DemoError(f"the EXI codec is not usable: {type(exc).__name__}: {exc}") from None


async def run_demo_async(opts: DemoOptions, out: Callable[[str], None] = print) -> DemoSummary:
    """Run the demo (see the module docstring); ``out`` receives every printed line."""
    from pki.ocsp import ocpp_request_data
    from pki.store import TrustStore

    from ..net.sdp import SDPRequest, Security, discover_secc, loopback_host, make_responder, start_sdp_server
    from ..net.tls import client_context, secc_leaf_check, server_context
    from ..net.transport import open_ev_connection, start_charger_server

    if opts.protocol in PROTOCOL_RUNNERS:
        return await PROTOCOL_RUNNERS[opts.protocol](opts, out)
    if opts.bpt:
        raise DemoError("--bpt needs --protocol iso20 (only ISO 15118-20 has bidirectional power transfer)")
    specs = _charger_protocol(opts.protocol)
    name = KNOWN_PROTOCOLS[opts.protocol]
    iso = opts.iso if opts.iso is not None else (20 if opts.protocol == "iso20" else 2)
    if opts.ac and opts.protocol == "din":
        raise DemoError("DIN SPEC 70121 charges DC only (leave out --ac)")
    _codec_check(opts.codecs, specs)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    view = _View(out, time.monotonic())
    now = dt.datetime.now(dt.timezone.utc)
    data = _make_data_dir(opts.data_dir)
    layout = DataDir(data)  # the layout 'plugcharge init' creates and charger, ev and csms share
    pki, _ = ensure_pki(layout.pki, seed=opts.seed, iso=iso, now=now, say=view.line, wallet_dir=layout.wallet)
    wallet, _ = ensure_wallet(layout.wallet, pki, say=view.line)

    backend: Any
    csms: Any = None
    if opts.csms is None:
        backend = SimulatedBackend(pki, codecs=opts.codecs)
        backend.register_pcid(wallet.pcid or pki.pcid, DEMO_EMAID)
        backend.register_id_token(DEMO_ID_TOKEN)
        if opts.fail_installation:
            backend.fail_installations = "demo: certificate provisioning service unavailable"
    else:
        backend, csms = await _start_ocpp(opts, pki, data, view)
    if opts.fail_installation and wallet.usable_contract(now) is not None and not opts.eim:
        view.line("operator", "note: the wallet already holds a usable contract, so no installation is "
                              "attempted (run 'plugcharge wallet wipe' first to see the fallback)")
    op_backend = _OperatorBackend(backend, view)
    store = TrustStore(pki.store_roots())
    mode = "AC_three_phase_core" if opts.ac else "DC_extended"
    charger_cfg = ChargerConfig(energy_modes=(mode,), sales_tariff=True, receipt_every=2 if opts.ac else 0,
                                protocols=(opts.protocol,))
    results: asyncio.Queue = asyncio.Queue()
    mo_root = pki.cert("mo-root")

    async def handler(stream: Any) -> None:
        # The SalesTariff is signed with the MO Sub-CA 2 key: in the field the eMSP signs it and the
        # charger only relays it; here the charger holds that test key in place of the eMSP.
        security = ChargerSecurity(trust_store=store, sales_tariff_key=pki.key("mo-sub2"),
                                   ocsp_request_data=lambda chain: ocpp_request_data([*chain, mo_root]))
        session = ChargerSession(dataclasses.replace(charger_cfg, tls=stream.tls), codecs=opts.codecs,
                                 security=security)
        events: list = []
        try:
            events = await run_charger(stream, session, op_backend, id_token=DEMO_ID_TOKEN,
                                       on_event=view.charger_event)
        finally:
            results.put_nowait(events)

    # the charger listens where its protocol can run: TLS and/or plain TCP (DIN forbids TLS)
    transports = default_registry().transports(charger_cfg.protocols, "charger")
    host = loopback_host()
    secc_chain = [pki.cert("secc-leaf"), pki.cert("cpo-sub2"), pki.cert("cpo-sub1")]
    servers = {}
    if True in transports:
        servers[True] = await start_charger_server(handler, host, 0, ssl_context=server_context(
            secc_chain, pki.key("secc-leaf"), iso=iso))
    if False in transports:
        servers[False] = await start_charger_server(handler, host, 0)
    tls_port = servers[True].port if True in servers else None
    tcp_port = servers[False].port if False in servers else None
    sdp = await start_sdp_server(make_responder(host, tls_port=tls_port, tcp_port=tcp_port), loopback=True,
                                 host=host, port=0)
    listening = " and ".join(f"[{host}]:{srv.port} with {'TLS' if tls else 'plain TCP'}"
                             for tls, srv in sorted(servers.items(), reverse=True))
    view.line("operator", f"charger {charger_cfg.evse_id} ({mode}) offers {name}, listening on {listening}; "
                          f"SDP on UDP [{host}]:{sdp.port}")
    summary = DemoSummary(completed=False, reason="not started")
    cctx = client_context(list(pki.store_roots()["v2g"]), iso=iso)
    try:
        view.driver("Cable plugged in - connecting to the charger", "waiting")
        suppressed = opts.eim
        while True:
            summary.sessions += 1
            # the EV asks for TLS (Plug & Charge needs it); the charger answers what it has
            resp = await discover_secc(SDPRequest(security=Security.TLS), loopback=True, host=host, port=sdp.port,
                                       timeout=0.25, max_requests=20)
            tls = resp.security is Security.TLS
            view.line("ev", f"SDP: charger at [{resp.host}]:{resp.port}, security {resp.security.name}")
            stream: Any = await open_ev_connection(resp.host, resp.port, ssl_context=cctx if tls else None,
                                                   verify_peer=secc_leaf_check if tls else None)
            if tls:
                leaf = x509.load_der_x509_certificate(stream.peer_certificate or b"")
                view.line("ev", f"{stream.tls_version} {stream.cipher}: charger certificate "
                                f"{leaf.subject.rfc4514_string()} verified against the V2G root")
            else:
                view.line("ev", "connected over plain TCP (no TLS): only protocols that permit it are offered")
            ev = EVSession(EVConfig(energy_mode=mode, charge_loops=opts.loops, loop_interval=opts.loop_interval,
                                    poll_interval=0.1, pnc_suppressed=suppressed, target_soc=95.0, tls=tls),
                           codecs=opts.codecs,
                           # ContractWallet is the WalletLike (its frozen records vs the Protocol's
                           # settable attributes is a mypy-only mismatch)
                           security=EVSecurity(wallet=wallet,  # type: ignore[arg-type]
                                               v2g_roots=pki.store_roots()["v2g"]))
            if opts.trace:
                stream = _TracingStream(stream, view, opts.codecs, functools.partial(getattr, ev, "protocol"))
            ev_events = await run_ev(stream, ev, on_event=view.ev_event)
            summary.ev_events += ev_events
            summary.charger_events += await asyncio.wait_for(results.get(), 10)
            summary.messages += len(ev.trace)
            end = ev_events[-1] if ev_events and isinstance(ev_events[-1], SessionEnded) else None
            if end is not None and end.fallback == "ExternalPayment" and not suppressed:
                suppressed = summary.fallback = True
                view.line("ev", "falling back to ExternalPayment on the same plug-in (new V2G session)")
                continue
            break
    finally:
        sdp.close()
        for srv in servers.values():
            srv.close()
            await srv.wait_closed()
        if opts.csms is not None:
            await backend.aclose()
            if csms is not None:
                await csms.aclose()
    _summarize(summary, loop.time() - t0)
    if opts.csms is not None and any(isinstance(e, ContractInstallationFailed)
                                     and e.response_code == "FAILED_NoCertificateAvailable" for e in summary.ev_events):
        view.line("operator", f"the eMSP knows no contract for PCID {wallet.pcid}: activate Plug & Charge with "
                              f"'plugcharge csms activate {wallet.pcid} --data-dir {data}'")
    _print_summary(summary, wallet, view)
    return summary


async def _start_ocpp(opts: DemoOptions, pki: Any, data: Path, view: _View, *, pki20: Any = None) -> tuple[Any, Any]:
    """The charger's OCPP backend (2.0.1; the 2.1 client, -20 contracts too, with ``pki20``), and the
    test CSMS when ``opts.csms`` is ``""`` (loopback websocket)."""
    try:
        from ..backends.ocpp import OCPPBackend

        backend_class: Any = OCPPBackend
        if pki20 is not None:
            from ..backends.ocpp21 import OCPP21Backend as backend_class
    except ImportError as exc:
        raise DemoError(str(exc)) from None
    from pki.store import TrustStore

    csms = None
    url = opts.csms
    if not url:
        from ..backends.csms import TestCSMS

        csms = TestCSMS(pki, DataDir(data).csms, pki20=pki20, log=lambda line: view.line("csms", line),
                        id_tokens=(DEMO_ID_TOKEN,), codecs=opts.codecs)
        if opts.fail_installation:
            csms.failures["Get15118EVCertificate"] = "InternalError"
        await csms.start("127.0.0.1", 0)
        url = csms.url(DEMO_STATION_ID)
        view.line("operator", f"test CSMS listening on {csms.url()} (eMSP state in {data / 'csms'})")
    elif url.rstrip("/").count("/") < 3:  # ws://host:port without the station identity
        url = url.rstrip("/") + "/" + DEMO_STATION_ID
    # the RFID card is on the charger's local authorisation list: EIM works with the CSMS down
    store, local = TrustStore(pki.store_roots()), {DEMO_ID_TOKEN: "Accepted"}
    extra = {} if pki20 is None else {"trust_store20": TrustStore(pki20.store_roots())}
    backend = backend_class(url, trust_store=store, local_auth_list=local, **extra)
    if await backend.start(wait=5.0):
        version = {"ocpp2.1": "OCPP 2.1", "ocpp2.0.1": "OCPP 2.0.1"}.get(backend.ocpp_version or "", "OCPP")
        view.line("charger", f"connected to the CSMS at {url} over {version} (BootNotification accepted)")
    else:
        view.line("charger", f"CSMS at {url} not reachable: Plug & Charge falls back to card/app")
    return backend, csms


def _summarize(s: DemoSummary, duration: float) -> None:
    s.duration_s = duration
    ends = [e for e in s.ev_events if isinstance(e, SessionEnded)]
    last = ends[-1] if ends else None
    s.reason = last.reason if last else "no session"
    s.completed = bool(last and last.reason == "finished")
    payments = [e for e in s.ev_events if isinstance(e, PaymentSelected)]
    s.payment = payments[-1].option if payments else None
    s.installed = any(isinstance(e, ContractInstallationSucceeded) for e in s.ev_events)
    accepted = [e for e in s.ev_events if isinstance(e, AuthorizationAccepted)]
    s.emaid = accepted[-1].emaid if accepted else None
    meters = [e.meter_wh for e in s.charger_events if isinstance(e, MeterValues) and e.meter_wh is not None]
    s.energy_wh = meters[-1] if meters else None
    agreed = [e for e in s.ev_events if isinstance(e, ProtocolAgreed)]
    s.protocol = agreed[-1].name if agreed else None


def _print_summary(s: DemoSummary, wallet: ContractWallet, view: _View) -> None:
    out = view.out
    out("")
    out("summary")
    out(f"  result      {'completed' if s.completed else 'NOT completed'} ({s.reason})")
    out(f"  protocol    {s.protocol or 'none agreed'}")
    pay = {"Contract": "Plug & Charge (Contract)", "ExternalPayment": "ExternalPayment (RFID card)"}.get(
        s.payment or "", str(s.payment))
    out(f"  payment     {pay}" + (" after the Plug & Charge fallback" if s.fallback else ""))
    out(f"  eMAID       {s.emaid or '-'}")
    contract = "installed over the cable in this session" if s.installed else (
        "reused from the wallet" if s.payment == "Contract" else "not used")
    out(f"  contract    {contract}; wallet holds {len(wallet.contracts())}")
    out(f"  sessions    {s.sessions} V2G communication session{'s' if s.sessions != 1 else ''}, "
        f"{s.messages} messages exchanged")
    out(f"  energy      {s.energy_wh if s.energy_wh is not None else '-'} Wh")
    out(f"  duration    {s.duration_s:.2f} s")


def run_demo(opts: DemoOptions, out: Callable[[str], None] = print) -> DemoSummary:
    """Synchronous entry point: :func:`run_demo_async` bounded by ``opts.timeout`` seconds."""
    async def bounded() -> DemoSummary:
        # The deadline decides, not the cancellation: asyncio.wait_for can lose a cancellation
        # that races with an inner await finishing (CPython gh-86296), and the demo would then
        # run on past its timeout. Cancel at the deadline, re-cancel while it unwinds.
        task = asyncio.ensure_future(run_demo_async(opts, out))
        done, _ = await asyncio.wait({task}, timeout=opts.timeout)
        if task in done:
            return task.result()
        for _ in range(20):
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=0.5)
            if done:
                break
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the demo is reported as timed out either way
        out(f"demo: gave up after {opts.timeout:g} s (overall timeout)")
        return DemoSummary(completed=False, reason="timeout", duration_s=opts.timeout)
    return asyncio.run(bounded())


# ------------------------------------------------------------------------------------------ command
def register(sub: Any) -> None:
    """Add the ``demo`` subcommand to the subparsers ``sub``."""
    d = add_command(sub, "demo", "run a complete charging session on loopback",
                    "Run a complete charging session on this machine in the protocol the charger offers "
                    "(--protocol; the EV offers all it implements): SDP discovery, TLS 1.2 where the protocol has "
                    "it, contract installation on the first run (reused later) where it has Plug & Charge, "
                    "authorisation, a charge loop and stop; prints the protocol agreed, what the driver and the "
                    "operator see and a summary. Exit code 0 when charging completed.")
    mode = d.add_mutually_exclusive_group()
    mode.add_argument("--dc", dest="ac", action="store_false", help="DC charging (default)")
    mode.add_argument("--ac", dest="ac", action="store_true", help="AC charging with signed metering receipts")
    d.set_defaults(ac=False, run=run)
    d.add_argument("--eim", action="store_true",
                   help="pay by ExternalPayment (RFID card at the charger) instead of Plug & Charge")
    d.add_argument("--fail-installation", action="store_true",
                   help="the backend refuses contract installation: the EV falls back to ExternalPayment "
                        "(only visible while the wallet holds no usable contract)")
    d.add_argument("--seed", type=int, default=None, metavar="N",
                   help="derive the keys and serials of the test PKI from N when it is created (default: "
                        "random); its validity dates follow the current time")
    d.add_argument("--protocol", choices=tuple(KNOWN_PROTOCOLS), default=None,
                   help="what the charger offers: " + ", ".join(f"{k} ({v})" for k, v in KNOWN_PROTOCOLS.items())
                        + f"; implemented: {', '.join(implemented_protocols())} (default iso2)")
    d.add_argument("--iso", type=int, choices=(2, 20), default=None, help=argparse.SUPPRESS)  # old spelling
    d.add_argument("--bpt", action="store_true",
                   help="ISO 15118-20: bidirectional power transfer, discharge then charge")
    d.add_argument("--loops", type=positive_int, default=5, metavar="N",
                   help="charge-loop messages before stopping (1 or more; default 5)")
    d.add_argument("--trace", action="store_true", help="also print every V2G message the EV sends and receives")
    d.add_argument("--timeout", type=positive_seconds, default=60.0, metavar="S",
                   help="overall time limit in seconds (default 60); the demo gives up when it is reached")
    d.add_argument("--csms", nargs="?", const="", type=csms_url, default=None, metavar="URL",
                   help="the charger talks OCPP to a CSMS (2.0.1; 2.1 with --protocol iso20): the test CSMS "
                        "started on a loopback websocket (no URL; state in DATA_DIR/csms, activate the car with "
                        "'plugcharge csms activate') or "
                        "a running one at URL (ws://HOST:PORT[/STATION]); without it an in-process backend")


def run(args: argparse.Namespace, out: Callable[[str], None], err: Callable[[str], None]) -> int:
    """Run ``plugcharge demo``; returns the exit code."""
    protocol = args.protocol or {None: "iso2", 2: "iso2", 20: "iso20"}[args.iso]
    opts = DemoOptions(data_dir=_data_dir_of(args), ac=bool(args.ac), eim=args.eim,
                       fail_installation=args.fail_installation, seed=args.seed, protocol=protocol, bpt=args.bpt,
                       loops=args.loops, timeout=args.timeout, trace=args.trace, csms=args.csms)
    try:
        summary = run_demo(opts, out)
    except DemoError as exc:
        err(f"{args.prog}: error: {exc}")
        return 2
    except (OSError, ValueError) as exc:  # sockets, TLS, SDP timeout, unreadable files
        err(f"{args.prog}: error: {reason(exc)}")
        return 1
    except Exception as exc:  # a bug: say so clearly, details with --verbose
        logging.getLogger("plugcharge.cli").info("demo crashed", exc_info=True)
        err(f"{args.prog}: error: internal error ({type(exc).__name__}: {exc}); run with -v for the details")
        return 1
    return summary.exit_code
