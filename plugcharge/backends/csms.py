"""A test CSMS on the ``ocpp`` package: OCPP 2.1 and 2.0.1 over a real websocket server.

:class:`TestCSMS` plays the charge point operator's CSMS, the e-mobility provider (eMSP) and the
contract certificate pool of the Plug & Charge ecosystem with a ``pki`` test PKI.  The eMSP and
pool logic is :class:`plugcharge.backends.simulated.SimulatedBackend` (one copy, shared with the in-process
demo backend); this module adds the OCPP transport, the persistence and the CPO's SECC signing.

Activation and revocation (acting on a running CSMS).  The eMSP's registry lives in
``STATE_DIR/state.json`` (a private file: it holds the pooled contracts' keys), guarded by an
exclusive ``fcntl`` lock on ``STATE_DIR/state.lock``.  :func:`activate` and :func:`revoke` (the
``plugcharge csms activate|revoke`` commands) change that file under the lock; the running CSMS
takes the lock for every OCPP call, re-reads the file when it changed and writes back what the call
changed (e.g. a contract issued by CertificateUpdate).  So no control channel is needed and
nothing is lost when the CSMS restarts.

OCPP 2.1.  Stations may connect with ``ocpp2.1`` (preferred) or ``ocpp2.0.1``; over 2.1 the
ISO 15118-20 additions of :mod:`plugcharge.backends.csms21` answer too (with ``pki20``: -20
contracts, GetCertificateChainStatus, V2G20Certificate signing).

Answers.  BootNotification (Accepted), Heartbeat, StatusNotification, Authorize (eMAID with
``iso15118CertificateHashData`` or the chain; EIM tokens), Get15118EVCertificate (the newest pooled
contract of the PCID encrypted for the EV and signed by the CPS; an unknown PCID gets ``Accepted``
with an EXI CertificateInstallationRes ``FAILED_NoCertificateAvailable``, so the EV can tell the
driver to activate Plug & Charge first), GetCertificateStatus (a real OCSP response signed by the
certificate's issuer: good, or revoked after :func:`revoke`), SignCertificate (V2GCertificate: the
CSR's key certified by the CPO Sub-CA 2, delivered by a CertificateSigned call to the station) and
TransactionEvent (recorded).  Every call is logged as one line (``log``); no key material ever is.

Faults for tests: ``delays[action] = seconds`` answers late, ``failures[action] = "InternalError"``
answers with that CALLERROR.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .base import AuthorizeRequest, Get15118EVCertificateRequest, OCSPRequestData
from .csms21 import SUBPROTOCOL_21, Station21Handlers
from .simulated import IssuedContract, SimulatedBackend

try:  # the optional 'ocpp' extra
    from ocpp.exceptions import InternalError, OCPPError
    from ocpp.routing import after, on
    from ocpp.v201 import ChargePoint as _ChargePoint
    from ocpp.v201 import call, call_result
    from websockets.asyncio.server import serve as _ws_serve
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"plugcharge.backends.csms needs the 'ocpp' extra: pip install 'plugcharge[ocpp]' ({_exc})") \
        from None

__all__ = ["TestCSMS", "CSMSStore", "CSMSCall", "activate", "revoke", "registry", "SUBPROTOCOL", "SUBPROTOCOLS",
           "STATE_FILE"]

_log = logging.getLogger("plugcharge.csms")

SUBPROTOCOL = "ocpp2.0.1"
#: what the CSMS accepts, preferred first (the websocket server picks the first the station offers)
SUBPROTOCOLS = (SUBPROTOCOL_21, SUBPROTOCOL)
STATE_FILE = "state.json"
_LOCK_FILE = "state.lock"
#: longest OCPP-J charging station identity we accept in the URL path
_MAX_STATION_ID = 48


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# persistence of the eMSP registry
# ---------------------------------------------------------------------------------------------
class CSMSStore:
    """The eMSP registry of a :class:`SimulatedBackend` kept in ``directory/state.json``.

    :meth:`transaction` locks the file (threads of this process and other processes), loads it
    into the backend when it changed on disk, yields the backend and writes it back atomically
    (mode 0600) when the registry changed."""

    def __init__(self, directory: Path, backend: SimulatedBackend) -> None:
        self.directory = Path(directory)
        self.backend = backend
        self.path = self.directory / STATE_FILE
        self._thread_lock = threading.Lock()
        self._stamp: Optional[tuple[int, int]] = None
        self._saved: Optional[str] = None

    def _file_stamp(self) -> Optional[tuple[int, int]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: in-process lock only
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SimulatedBackend]:
        """Exclusive access to the up-to-date registry; saved when changed."""
        with self._thread_lock, self._file_lock():
            stamp = self._file_stamp()
            if stamp is not None and stamp != self._stamp:
                try:
                    text = self.path.read_text("utf-8")
                    self.backend.import_state(json.loads(text))
                except (OSError, ValueError) as exc:
                    raise ValueError(f"CSMS state {self.path} is unreadable ({exc}); "
                                     f"delete it to start with an empty registry") from None
                self._stamp, self._saved = stamp, json.dumps(self.backend.export_state(), sort_keys=True)
            yield self.backend
            text = json.dumps(self.backend.export_state(), sort_keys=True)
            if text != self._saved:
                tmp = self.path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
                self._stamp, self._saved = self._file_stamp(), text


def _store(state_dir: Path, pki: Any, codecs: Any = None, clock: Callable[[], dt.datetime] = _utcnow,
           pki20: Any = None) -> CSMSStore:
    backend = SimulatedBackend(pki, codecs=codecs, clock=clock, pki20=pki20)
    backend.exi_refusals = True
    return CSMSStore(state_dir, backend)


def activate(state_dir: Path, pki: Any, pcid: str, emaid: Optional[str] = None, *, pki20: Any = None) -> IssuedContract:
    """The driver gives the eMSP the car's PCID: a new contract goes into the pool (newest wins; an
    ISO 15118-20 car gets a fresh -20 contract for the PCID's eMAID at each installation).
    Works with or without a running CSMS on ``state_dir``; raises ValueError for a bad PCID/eMAID."""
    with _store(state_dir, pki, pki20=pki20).transaction() as backend:
        return backend.activate(pcid, emaid)


def revoke(state_dir: Path, pki: Any, emaid: str, *, pki20: Any = None) -> int:
    """The driver cancels the contract: every certificate issued for ``emaid`` (-2 and -20) is revoked
    (OCSP and GetCertificateChainStatus answer revoked, Authorize fails).  Returns how many."""
    with _store(state_dir, pki, pki20=pki20).transaction() as backend:
        return backend.revoke(emaid)


def registry(state_dir: Path, pki: Any, *, pki20: Any = None) -> dict[str, Any]:
    """What the eMSP knows, without keys: ``pcids`` (PCID → eMAID) and ``contracts`` (eMAID,
    PCID, serial, issuing time, pooled, revoked, ``iso``: 2, or 20 for a -20 contract)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    def iso(leaf: bytes) -> int:
        key = x509.load_der_x509_certificate(leaf).public_key()
        return 2 if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1" else 20

    with _store(state_dir, pki, pki20=pki20).transaction() as backend:
        revoked = set(backend.export_state()["revoked"])
        pooled = {id(c) for cs in backend.pool.values() for c in cs}
        return {"pcids": dict(backend.export_state()["pcids"]),
                "contracts": [{"emaid": c.emaid, "pcid": c.pcid, "serial": format(c.serial, "x"),
                               "issued": c.issued_at.strftime("%Y-%m-%d %H:%M:%S"), "pooled": id(c) in pooled,
                               "revoked": format(c.serial, "x") in revoked, "iso": iso(c.leaf)}
                              for c in backend.issued]}


# ---------------------------------------------------------------------------------------------
# the OCPP server
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CSMSCall:
    """One OCPP call the CSMS handled (for tests and the log)."""

    station: str
    action: str
    request: Mapping[str, Any]
    result: str


def _status_info(code: str, detail: Optional[str]) -> Optional[dict[str, str]]:
    """OCPP StatusInfoType: ``reasonCode`` (at most 20 characters) and ``additionalInfo`` (512)."""
    return {"reason_code": code[:20], "additional_info": detail[:512]} if detail else None


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


class _Station(_ChargePoint):  # type: ignore[misc]
    """One charging station's websocket, handled with the ``ocpp`` package's routing."""

    def __init__(self, station_id: str, connection: Any, csms: "TestCSMS") -> None:
        super().__init__(station_id, connection, response_timeout=30)
        self.csms = csms
        self._csr: Optional[x509.CertificateSigningRequest] = None

    async def _enter(self, action: str) -> None:
        delay = self.csms.delays.get(action)
        if delay:
            await asyncio.sleep(delay)
        code = self.csms.failures.get(action)
        if code:
            self.csms._record(self.id, action, {}, f"CALLERROR {code}")
            raise InternalError(description=f"test CSMS configured to fail {action}")

    @on("BootNotification")  # type: ignore[misc]
    async def on_boot(self, charging_station: Mapping[str, Any], reason: str, **_: Any) -> Any:
        await self._enter("BootNotification")
        self.csms._record(self.id, "BootNotification", {"vendor": charging_station.get("vendor_name"),
                                                         "model": charging_station.get("model"), "reason": reason},
                          "Accepted")
        return call_result.BootNotification(current_time=_iso(self.csms.clock()),
                                            interval=self.csms.heartbeat_interval, status="Accepted")

    @on("Heartbeat")  # type: ignore[misc]
    async def on_heartbeat(self, **_: Any) -> Any:
        await self._enter("Heartbeat")
        self.csms._record(self.id, "Heartbeat", {}, "ok")
        return call_result.Heartbeat(current_time=_iso(self.csms.clock()))

    @on("StatusNotification")  # type: ignore[misc]
    async def on_status(self, connector_status: str, evse_id: int, connector_id: int, **_: Any) -> Any:
        await self._enter("StatusNotification")
        self.csms._record(self.id, "StatusNotification", {"evse": evse_id, "status": connector_status}, "ok")
        return call_result.StatusNotification()

    @on("Authorize")  # type: ignore[misc]
    async def on_authorize(self, id_token: Mapping[str, Any], certificate: Optional[str] = None,
                           iso15118_certificate_hash_data: Optional[list] = None, **_: Any) -> Any:
        await self._enter("Authorize")
        hash_data = tuple(OCSPRequestData.from_ocpp(d) for d in iso15118_certificate_hash_data or ())
        req = AuthorizeRequest(str(id_token["id_token"]), certificate, hash_data or None, str(id_token["type"]))
        res = await asyncio.to_thread(self.csms._with_backend, lambda b: b.authorize(req))
        self.csms._record(self.id, "Authorize", {
            "idToken": req.id_token, "type": req.id_token_type, "certificate": "PEM chain" if certificate else None,
            "iso15118CertificateHashData": (f"{len(hash_data)} entries (serials "
                                            + ", ".join(d.serial_number[:8] for d in hash_data) + ")")
            if hash_data else None},
            f"{res.id_token_status}" + (f" / certificateStatus {res.certificate_status}"
                                        if res.certificate_status else ""))
        return call_result.Authorize(id_token_info={"status": res.id_token_status},
                                     certificate_status=res.certificate_status)

    async def _certificate(self, req: Get15118EVCertificateRequest) -> tuple[Any, str]:
        """The backend's answer to ``req`` (run off the event loop), and what the operator log says of
        it: the contract delivered, or why not (OCPP 2.0.1 and 2.1 handlers both ask through here)."""

        def work(b: SimulatedBackend) -> Any:
            b.last_delivered = None
            return b.get_15118_ev_certificate(req), b.last_delivered

        res, delivered = await asyncio.to_thread(self.csms._with_backend, work)
        what = (f": contract {delivered.emaid} (serial {delivered.serial:x}) for PCID {delivered.pcid}"
                if res.status == "Accepted" and delivered is not None and not res.status_info else
                f": {res.status_info}" if res.status_info else "")
        return res, what

    @on("Get15118EVCertificate")  # type: ignore[misc]
    async def on_get_15118_ev_certificate(self, iso15118_schema_version: str, action: str, exi_request: str,
                                          **_: Any) -> Any:
        await self._enter("Get15118EVCertificate")
        req = Get15118EVCertificateRequest(iso15118_schema_version, action, exi_request)
        res, what = await self._certificate(req)
        self.csms._record(self.id, "Get15118EVCertificate", {
            "action": action, "iso15118SchemaVersion": iso15118_schema_version,
            "exiRequest": f"{len(exi_request)} base64 chars"},
            f"{res.status}{what}")
        info = _status_info("Refused" if res.status == "Failed" else "Info", res.status_info)
        return call_result.Get15118EVCertificate(status=res.status, exi_response=res.exi_response,
                                                 status_info=info)

    @on("GetCertificateStatus")  # type: ignore[misc]
    async def on_get_certificate_status(self, ocsp_request_data: Mapping[str, Any], **_: Any) -> Any:
        await self._enter("GetCertificateStatus")
        data = OCSPRequestData.from_ocpp(ocsp_request_data)
        status, der, reason = await asyncio.to_thread(self.csms._with_backend, lambda b: b.certificate_status(data))
        revoked = ""
        if der:
            from cryptography.x509 import ocsp

            revoked = " (" + ocsp.load_der_ocsp_response(der).certificate_status.name.lower() + ")"
        self.csms._record(self.id, "GetCertificateStatus", {"serialNumber": data.serial_number},
                          f"{status}{revoked}" + (f": {reason}" if reason else ""))
        import base64

        return call_result.GetCertificateStatus(status=status, ocsp_result=base64.b64encode(der).decode() or None,
                                                status_info=_status_info("Failed", reason))

    @on("SignCertificate")  # type: ignore[misc]
    async def on_sign_certificate(self, csr: str, certificate_type: Optional[str] = None, **_: Any) -> Any:
        await self._enter("SignCertificate")
        reason = None
        try:
            request = x509.load_pem_x509_csr(csr.encode("ascii"))
            if not request.is_signature_valid:
                reason = "CSR signature invalid"
        except (ValueError, UnicodeError):
            request, reason = None, "CSR is not PEM"
        if certificate_type not in (None, "V2GCertificate"):
            reason = f"certificateType {certificate_type} not handled by this CSMS"
        status = "Rejected" if reason else "Accepted"
        self.csms._record(self.id, "SignCertificate", {"certificateType": certificate_type,
                                                        "subject": request.subject.rfc4514_string() if request else ""},
                          status + (f": {reason}" if reason else ""))
        self._csr = request if status == "Accepted" else None
        return call_result.SignCertificate(status=status, status_info=_status_info("InvalidCSR", reason))

    @after("SignCertificate")  # type: ignore[misc]
    async def after_sign_certificate(self, **_: Any) -> None:
        request = getattr(self, "_csr", None)
        self._csr = None
        if request is None:
            return
        try:
            chain = await asyncio.to_thread(self.csms.secc_signer, request)
            res = await asyncio.wait_for(self.call(call.CertificateSigned(certificate_chain=chain,
                                                                          certificate_type="V2GCertificate"),
                                                   suppress=False), 30)
            self.csms._record(self.id, "CertificateSigned", {"certificateType": "V2GCertificate"},
                              str(res.status) + (f": {res.status_info}" if res.status_info else ""))
        except (OCPPError, asyncio.TimeoutError, OSError, ValueError) as exc:
            self.csms._record(self.id, "CertificateSigned", {}, f"failed: {type(exc).__name__}: {exc}")

    @on("TransactionEvent")  # type: ignore[misc]
    async def on_transaction_event(self, event_type: str, timestamp: str, trigger_reason: str, seq_no: int,
                                   transaction_info: Mapping[str, Any], id_token: Optional[Mapping[str, Any]] = None,
                                   meter_value: Optional[list] = None, offline: Optional[bool] = None,
                                   **_: Any) -> Any:
        await self._enter("TransactionEvent")
        tx = str(transaction_info.get("transaction_id"))
        record = {"eventType": event_type, "triggerReason": trigger_reason, "seqNo": seq_no,
                  "chargingState": transaction_info.get("charging_state"),
                  "stoppedReason": transaction_info.get("stopped_reason"), "offline": bool(offline),
                  "idToken": dict(id_token) if id_token else None, "meterValue": meter_value or []}
        self.csms.transactions.setdefault(tx, []).append(record)
        energy = [s.get("value") for m in meter_value or () for s in m.get("sampled_value", ())
                  if s.get("measurand") == "Energy.Active.Import.Register"]
        status = None
        if id_token:
            token = AuthorizeRequest(str(id_token.get("id_token")), id_token_type=str(id_token.get("type")))
            if token.id_token_type == "eMAID":
                status = "Accepted" if await asyncio.to_thread(
                    self.csms._with_backend, lambda b: b.knows_emaid(token.id_token)) else "Unknown"
            else:
                status = (await asyncio.to_thread(self.csms._with_backend, lambda b: b.authorize(token))).id_token_status
        self.csms._record(self.id, "TransactionEvent", {
            "eventType": event_type, "chargingState": record["chargingState"],
            "idToken": f"{id_token.get('id_token')} ({id_token.get('type')})" if id_token else None},
                          f"{event_type} tx {tx[:8]} seq {seq_no} {trigger_reason}"
                          + (f" {energy[-1]:g} Wh" if energy else "") + (" (offline)" if offline else ""))
        return call_result.TransactionEvent(id_token_info={"status": status} if status else None)


class _Station21(Station21Handlers, _Station):
    """A station connected over ``ocpp2.1``: 2.0.1's handlers with 2.1's additions
    (:mod:`plugcharge.backends.csms21`)."""


class TestCSMS:
    """An OCPP 2.1 / 2.0.1 CSMS + eMSP + contract pool on a websocket server (see the module docstring).

    Args:
        pki: the ``pki`` test PKI (MO: contracts, CPS: signed responses, CPO: SECC certificates).
        state_dir: where the eMSP registry lives (shared with :func:`activate` / :func:`revoke`).
        pki20: the ISO 15118-20 test PKI: -20 contracts, GetCertificateChainStatus of -20 chains,
            V2G20Certificate signing (OCPP 2.1; see :mod:`plugcharge.backends.csms21`).
        subprotocols: the websocket subprotocols accepted, preferred first (default 2.1, 2.0.1).
        log: receives one line per OCPP call (default: the ``plugcharge.csms`` logger at INFO).
        id_tokens: EIM tokens (RFID cards) the eMSP accepts.
        secc_signer: ``csr -> PEM chain`` for SignCertificate (default: the CPO Sub-CA 2 issues an
            SECC certificate for the CSR's key); tests pass a faulty one.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, pki: Any, state_dir: Path, *, log: Optional[Callable[[str], None]] = None,
                 id_tokens: tuple[str, ...] = (), codecs: Any = None,
                 clock: Callable[[], dt.datetime] = _utcnow,
                 secc_signer: Optional[Callable[[x509.CertificateSigningRequest], str]] = None,
                 heartbeat_interval: int = 300, pki20: Any = None,
                 subprotocols: tuple[str, ...] = SUBPROTOCOLS) -> None:
        self.pki = pki
        self.pki20 = pki20
        self.clock = clock
        self.subprotocols = tuple(subprotocols)
        self.store = _store(Path(state_dir), pki, codecs, clock, pki20)
        self.log = log or (lambda line: _log.info("%s", line))
        self.secc_signer = secc_signer or self._sign_secc
        self.heartbeat_interval = heartbeat_interval
        #: action → seconds to wait before answering (a slow CSMS)
        self.delays: dict[str, float] = {}
        #: action → answer with a CALLERROR instead
        self.failures: dict[str, str] = {}
        #: every call handled, in order
        self.calls: list[CSMSCall] = []
        #: TransactionEvents by transactionId
        self.transactions: dict[str, list[dict[str, Any]]] = {}
        #: the connected stations by identity
        self.stations: dict[str, _Station] = {}
        self._server: Any = None
        self.host = "127.0.0.1"
        self.port = 0
        # load (or create) the registry now, failing early when it is unreadable, and add the tokens
        # to what is there (an activation may have created the file before the CSMS ever ran)
        with self.store.transaction() as backend:
            for token in id_tokens:
                backend.register_id_token(token)

    def __repr__(self) -> str:
        return f"TestCSMS(ws://{self.host}:{self.port}, stations={sorted(self.stations)})"

    # -- server ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "TestCSMS":
        """Listen on ``host:port`` (0: a free port, see :attr:`port`)."""
        self._server = await _ws_serve(self._handler, host, port, subprotocols=list(self.subprotocols),  # type: ignore[arg-type]
                                       max_size=256 * 1024)
        sock = next(iter(self._server.sockets))
        self.host, self.port = host, int(sock.getsockname()[1])
        return self

    def url(self, station_id: str = "") -> str:
        """The websocket URL a station connects to (``…/STATION``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/{station_id}"

    async def aclose(self) -> None:
        """Stop listening and close every station's connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "TestCSMS":
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        await self._server.serve_forever()

    async def _handler(self, connection: Any) -> None:
        station_id = connection.request.path.strip("/").rsplit("/", 1)[-1]
        if connection.subprotocol not in self.subprotocols:
            wanted = " or ".join(self.subprotocols)
            self.log(f"{station_id or '-'}: refused: no '{wanted}' subprotocol offered")
            await connection.close(1002, f"subprotocol {wanted} required")
            return
        if not station_id or len(station_id) > _MAX_STATION_ID or not station_id.isprintable():
            self.log("refused a connection without a valid station identity in the URL path")
            await connection.close(1008, "station identity missing or invalid")
            return
        kind = _Station21 if connection.subprotocol == SUBPROTOCOL_21 else _Station
        station = kind(station_id, connection, self)
        self.stations[station_id] = station
        self.log(f"{station_id}: connected ({connection.subprotocol})")
        try:
            await station.start()
        except Exception as exc:  # ConnectionClosed and friends: the station went away
            self.log(f"{station_id}: disconnected ({type(exc).__name__})")
        finally:
            if self.stations.get(station_id) is station:
                del self.stations[station_id]

    def _record(self, station: str, action: str, request: Mapping[str, Any], result: str) -> None:
        self.calls.append(CSMSCall(station, action, dict(request), result))
        shown = " ".join(f"{k}={v}" for k, v in request.items() if v not in (None, "", [], {}))
        self.log(f"{station}: {action} {shown} -> {result}")

    def _with_backend(self, fn: Callable[[SimulatedBackend], Any]) -> Any:
        with self.store.transaction() as backend:
            return fn(backend)

    # -- eMSP / CPO ---------------------------------------------------------------------
    def activate(self, pcid: str, emaid: Optional[str] = None) -> IssuedContract:
        """See :func:`activate`."""
        return self._with_backend(lambda b: b.activate(pcid, emaid))  # type: ignore[no-any-return]

    def revoke(self, emaid: str) -> int:
        """See :func:`revoke`."""
        return self._with_backend(lambda b: b.revoke(emaid))  # type: ignore[no-any-return]

    def _sign_secc(self, csr: x509.CertificateSigningRequest) -> str:
        from pki.issue import issue_secc

        issued = issue_secc(self.pki.cert("cpo-sub2"), self.pki.key("cpo-sub2"), iso=self.pki.iso, now=self.clock(),
                            cn=_cn(csr.subject) or "SECCCert", public_key=csr.public_key())
        chain = [issued.der, self.pki.cert("cpo-sub2"), self.pki.cert("cpo-sub1")]
        return "".join(x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM).decode("ascii")
                       for d in chain)

    async def call_station(self, station_id: str, payload: Any, timeout: float = 10.0) -> Any:
        """Send a CSMS-initiated call (e.g. ``call.CertificateSigned``) to a connected station."""
        station = self.stations.get(station_id)
        if station is None:
            raise KeyError(f"station {station_id!r} is not connected")
        return await asyncio.wait_for(station.call(payload, suppress=False), timeout)
