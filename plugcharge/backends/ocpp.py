"""The charger's backend as an OCPP 2.0.1 charging-station client (``ocpp`` package, ``websockets``).

:class:`OCPPBackend` is a drop-in :class:`~plugcharge.backends.base.AsyncBackend` for
:func:`plugcharge.net.runner.run_charger`: it keeps one websocket to the CSMS (subprotocol
``ocpp2.0.1``), sends BootNotification on every connection and reconnects with back-off, and maps
the charger's requests onto OCPP calls:

=================================  ===============================================================
charger                            OCPP 2.0.1 (charging station → CSMS)
=================================  ===============================================================
``get_15118_ev_certificate``       Get15118EVCertificate (``iso15118SchemaVersion``, Install/Update,
                                   ``exiRequest`` base64 of the EV's EXI; ``exiResponse`` back)
``authorize``                      Authorize (``idToken`` type eMAID with
                                   ``iso15118CertificateHashData`` of the contract chain; EIM
                                   tokens as ISO14443 & co.)
``get_certificate_status``         GetCertificateStatus (OCSP response for one certificate)
``renew_secc_certificate``         SignCertificate (V2GCertificate, CSR) … CertificateSigned from
                                   the CSMS, checked with :mod:`pki` before it is accepted
``session_reporter``               TransactionEvent Started / Updated / Ended with meter values
=================================  ===============================================================

Time bounds (:class:`OCPPTimeouts`).  Every call has a deadline and never hangs: a CSMS that is not
connected fails at once (after a short grace for a connection in progress), one that does not
answer in time raises :class:`CSMSUnavailable`, a CALLERROR or a malformed answer raises
:class:`CSMSCallError`.  The runner turns both into the standard's answers: a failed
Get15118EVCertificate into CertificateInstallationRes/UpdateRes ``FAILED`` within the charger's
backend timer (below the EV's 5 s), a failed Authorize into AuthorizationRes ``FAILED`` (while it
is pending the charger answers EVSEProcessing=Ongoing [V2G2-710..713]).  The EV then ends the
session and starts a new one with ExternalPayment on the same plug-in: a CSMS that is down or slow
means EIM, never a lost session.  EIM tokens are authorised offline from the local authorisation
list, the authorisation cache (tokens the CSMS accepted before) or, with
``offline_accept_unknown`` (OCPP ``OfflineTxForUnknownIdEnabled``), any token.  TransactionEvents
are queued and sent when the CSMS is reachable (``offline=true`` for events that happened while it
was not).

OCPP 2.1.  Requests are built from :attr:`OCPPBackend.CALLS` (``ocpp.v201.call``) over the
subprotocols of :attr:`OCPPBackend.SUBPROTOCOLS` (``ocpp2.0.1``); :mod:`plugcharge.backends.ocpp21`
subclasses it to offer ``ocpp2.1`` first and add ISO 15118-20's calls and fields.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any, Callable, Deque, Mapping, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .base import (
    AuthorizeRequest, AuthorizeResponse, Get15118EVCertificateRequest, Get15118EVCertificateResponse,
    OCSPRequestData,
)
from ..core.errors import PlugChargeError
from ..core.events import (
    AuthorizationAccepted, ChargingStarted, ChargingStopped, MeterValues, SessionEnded,
)
from .capabilities import GetCertificateStatusResponse, SECCCertificate, SessionReporter

try:  # the optional 'ocpp' extra
    import websockets
    from ocpp.exceptions import OCPPError
    from ocpp.routing import on
    from ocpp.v201 import ChargePoint as _ChargePoint
    from ocpp.v201 import call
    from websockets.asyncio.client import connect as _ws_connect
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"plugcharge.backends.ocpp needs the 'ocpp' extra: pip install 'plugcharge[ocpp]' ({_exc})") \
        from None

__all__ = [
    "OCPPBackend",
    "OCPPTimeouts",
    "OCPPBackendError",
    "CSMSUnavailable",
    "CSMSCallError",
    "CertificateRejected",
    "SUBPROTOCOL",
]

_log = logging.getLogger("plugcharge.ocpp")

#: The websocket subprotocol of OCPP 2.0.1 (OCPP-J).
SUBPROTOCOL = "ocpp2.0.1"
#: OCPP 2.0.1 caps iso15118CertificateHashData at 4 entries.
_MAX_HASH_DATA = 4
#: OCPP 2.0.1 IdTokenType.idToken is at most 36 characters.
_MAX_ID_TOKEN = 36


def _checked_certificate_response(res: Any) -> tuple[str, str]:
    """A Get15118EVCertificate response's ``(status, exiResponse)`` (OCPP 2.0.1 and 2.1 alike), after
    the checks the station owes its EV: Accepted carries a non-empty base64 ``exiResponse``, the status
    is Accepted or Failed; else :class:`CSMSCallError`."""
    status = str(res.status)
    exi = str(res.exi_response or "")
    if status == "Accepted":
        try:
            base64.b64decode(exi, validate=True)
        except ValueError:
            raise CSMSCallError("Get15118EVCertificate", "FormatViolation", "exiResponse is not base64") from None
        if not exi:
            raise CSMSCallError("Get15118EVCertificate", "FormatViolation", "Accepted without exiResponse")
    elif status != "Failed":
        raise CSMSCallError("Get15118EVCertificate", "PropertyConstraintViolation", f"status {status!r}")
    return status, exi


class OCPPBackendError(PlugChargeError):
    """Root of the OCPP backend's errors."""


class CSMSUnavailable(OCPPBackendError, ConnectionError):
    """The CSMS is not connected or did not answer within the call's deadline."""


class CSMSCallError(OCPPBackendError, ValueError):
    """The CSMS answered with a CALLERROR, or with a payload that breaks the OCPP schema."""

    def __init__(self, action: str, code: str, description: str) -> None:
        super().__init__(f"{action}: CSMS answered {code}: {description}")
        self.action, self.code, self.description = action, code, description


class CertificateRejected(OCPPBackendError, ValueError):
    """A SECC certificate from CertificateSigned failed the charger's checks (``reason`` is log-safe)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class OCPPTimeouts:
    """Deadlines in seconds of the OCPP backend (all bounded; tests shrink them)."""

    #: opening the websocket (TCP + HTTP upgrade)
    connect: float = 5.0
    #: BootNotification answer
    boot: float = 10.0
    #: a call waits this long for a connection that is being (re)established, then fails
    connect_grace: float = 1.0
    #: Get15118EVCertificate: below the charger's backend timer (4.5 s) so the EV gets its
    #: CertificateInstallationRes within its 5 s [V2G2 Table 109]
    certificate: float = 4.0
    #: Authorize: the EV polls with EVSEProcessing=Ongoing meanwhile; well below the SECC's 55 s
    authorize: float = 20.0
    #: every other call (GetCertificateStatus, SignCertificate, TransactionEvent, Heartbeat)
    call: float = 10.0
    #: how long renew_secc_certificate waits for CertificateSigned after SignCertificate
    certificate_signed: float = 60.0
    #: reconnect back-off: first delay, doubled up to the maximum
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0


def _now_iso() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _reason(info: Any) -> Optional[str]:
    """The text of an OCPP statusInfo: additionalInfo, else reasonCode."""
    if isinstance(info, Mapping):
        return str(info.get("additional_info") or info.get("reason_code") or "") or None
    return None


class _Station(_ChargePoint):  # type: ignore[misc]
    """The ``ocpp`` ChargePoint of one websocket connection; routes the CSMS's calls to the backend."""

    def __init__(self, station_id: str, connection: Any, backend: "OCPPBackend") -> None:
        super().__init__(station_id, connection, response_timeout=3600)
        self._backend = backend

    @on("CertificateSigned")  # type: ignore[misc]
    async def on_certificate_signed(self, certificate_chain: str, certificate_type: Optional[str] = None,
                                    **_: Any) -> Any:
        from ocpp.v201 import call_result

        status, reason = self._backend._on_certificate_signed(certificate_chain, certificate_type)
        info = {"reason_code": reason} if reason else None
        return call_result.CertificateSigned(status=status, status_info=info)


class OCPPBackend:
    """An OCPP 2.0.1 charging-station client as the charger's backend.

    Args:
        url: the CSMS's websocket endpoint *including* the station identity as last path segment
            (``ws://csms.example:9000/CP001``), as OCPP-J wants it; ``station_id`` overrides the
            identity used in logs.
        timeouts: the deadlines (:class:`OCPPTimeouts`).
        vendor, model, serial_number, firmware_version: the BootNotification's chargingStation.
        evse_id, connector_id: the EVSE reported in TransactionEvent.
        trust_store: :class:`pki.store.TrustStore` holding the V2G root: a renewed SECC chain must
            validate against it (profile ``iso2-secc``) before CertificateSigned is accepted.
        secc_subject: the subject of the CSR (default: CN=station id, O=plugcharge, DC=CPO).
        on_secc_certificate: called with the accepted :class:`SECCCertificate` (store it, swap the
            TLS server context).
        local_auth_list: EIM tokens (``{token: status}``) valid offline (OCPP local list).
        offline_accept_unknown: accept any EIM token while the CSMS is unreachable
            (``OfflineTxForUnknownIdEnabled``).
        send_contract_certificate: also send the contract chain as PEM in Authorize even when
            ``iso15118CertificateHashData`` is there (default: hash data only, the charger has
            validated the chain itself).
        meter_interval: minimum seconds between two periodic meter-value TransactionEvents.
        ssl: an :class:`ssl.SSLContext` for ``wss://`` (OCPP security profiles 2/3).
        extra_headers: added to the websocket upgrade (e.g. Basic authorisation, profile 1/2).
        outbox_limit: TransactionEvents kept while offline (oldest dropped beyond it, logged once).
    """

    #: the websocket subprotocol and the ``ocpp`` module of request classes (the OCPP 2.1 seam:
    #: a subclass sets ``"ocpp2.1"`` and ``ocpp.v21.call`` and adds the -20 fields and calls)
    SUBPROTOCOL = SUBPROTOCOL
    #: the subprotocols offered in the websocket upgrade, preferred first
    SUBPROTOCOLS: tuple[str, ...] = (SUBPROTOCOL,)
    CALLS: Any = call

    def __init__(self, url: str, *, station_id: Optional[str] = None, timeouts: OCPPTimeouts = OCPPTimeouts(),
                 vendor: str = "plugcharge", model: str = "plugcharge-charger",
                 serial_number: Optional[str] = None, firmware_version: Optional[str] = None,
                 evse_id: int = 1, connector_id: int = 1, trust_store: Any = None,
                 secc_subject: Optional[x509.Name] = None,
                 on_secc_certificate: Optional[Callable[[SECCCertificate], Any]] = None,
                 local_auth_list: Optional[Mapping[str, str]] = None, offline_accept_unknown: bool = False,
                 send_contract_certificate: bool = False, meter_interval: float = 30.0, ssl: Any = None,
                 extra_headers: Optional[Mapping[str, str]] = None, outbox_limit: int = 1000,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> None:
        self.url = url
        self.station_id = station_id or url.rstrip("/").rsplit("/", 1)[-1]
        self.timeouts = timeouts
        self.vendor, self.model = vendor, model
        self.serial_number, self.firmware_version = serial_number, firmware_version
        self.evse_id, self.connector_id = evse_id, connector_id
        self.trust_store = trust_store
        self.secc_subject = secc_subject
        self.on_secc_certificate = on_secc_certificate
        self.local_auth_list = dict(local_auth_list or {})
        self.offline_accept_unknown = offline_accept_unknown
        self.send_contract_certificate = send_contract_certificate
        self.meter_interval = meter_interval
        self.ssl = ssl
        self.extra_headers = dict(extra_headers or {})
        self.clock = clock
        #: EIM tokens the CSMS accepted (OCPP authorisation cache), used while offline
        self.auth_cache: dict[str, str] = {}
        #: the last BootNotification status (``Accepted``, ``Pending``, ``Rejected``) or None
        self.boot_status: Optional[str] = None
        self._station: Optional[_Station] = None
        self._ready: Optional[asyncio.Event] = None
        self._attempted = asyncio.Event()
        self._task: Optional[asyncio.Task] = None
        self._sender: Optional[asyncio.Task] = None
        self._closing = False
        self._outbox: Deque[tuple[str, dict[str, Any]]] = collections.deque(maxlen=max(1, outbox_limit))
        self._outbox_event: Optional[asyncio.Event] = None
        self._dropped = 0
        self._pending_csr: Optional[tuple[Any, asyncio.Future]] = None
        self._ws: Any = None
        #: the subprotocol of the current (or last) connection, e.g. ``ocpp2.0.1``
        self.ocpp_version: Optional[str] = None

    def __repr__(self) -> str:
        return f"OCPPBackend({self.url!r}, connected={self.connected})"

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        """True while a websocket is open and BootNotification was accepted."""
        return self._ready is not None and self._ready.is_set()

    async def start(self, *, wait: Optional[float] = None) -> bool:
        """Start the connection task; with ``wait`` seconds, wait (bounded) until booted.

        Returns whether the backend is connected.  Never raises for an unreachable CSMS: the
        task keeps retrying and calls fail fast meanwhile."""
        if self._task is None or self._task.done():
            self._closing = False
            self._ready = asyncio.Event()
            self._attempted = asyncio.Event()
            self._outbox_event = asyncio.Event()
            self._task = asyncio.ensure_future(self._run())
            self._sender = asyncio.ensure_future(self._drain())
        if wait:  # until booted, or the first connection attempt failed
            waiters = [asyncio.ensure_future(self._ready.wait()),  # type: ignore[union-attr]
                       asyncio.ensure_future(self._attempted.wait())]
            try:
                await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        return self.connected

    async def aclose(self, *, flush: Optional[float] = None) -> None:
        """Deliver queued TransactionEvents (for at most ``flush`` seconds, default the call
        timeout, only while connected), then close the websocket and stop reconnecting; what could
        not be delivered stays in :attr:`outbox`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeouts.call if flush is None else flush)
        while self._outbox and self.connected and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self._closing = True
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), 2.0)
            except (asyncio.TimeoutError, Exception):
                pass
        for task in (self._sender, self._task):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._sender, self._task):
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._task = self._sender = None
        if self._ready is not None:
            self._ready.clear()

    async def __aenter__(self) -> "OCPPBackend":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def _run(self) -> None:
        delay = self.timeouts.reconnect_min
        while not self._closing:
            try:
                await self._connection()
                delay = self.timeouts.reconnect_min
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # OSError, handshake errors, timeouts, closed connections ...
                _log.info("ocpp: %s: CSMS connection failed: %s: %s", self.station_id, type(exc).__name__, exc)
            finally:
                self._station = None
                if self._ready is not None:
                    self._ready.clear()
                self._attempted.set()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.timeouts.reconnect_max)

    async def _connection(self) -> None:
        offered = list(self.SUBPROTOCOLS)
        kwargs: dict[str, Any] = {"subprotocols": offered, "open_timeout": self.timeouts.connect, "proxy": None}
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
        if self.extra_headers:
            kwargs["additional_headers"] = self.extra_headers
        async with _ws_connect(self.url, **kwargs) as ws:
            if ws.subprotocol not in offered:
                raise OCPPBackendError(f"CSMS did not agree to subprotocol {' or '.join(offered)} "
                                       f"(got {ws.subprotocol!r})")
            self.ocpp_version = str(ws.subprotocol)
            station = self._make_station(ws)
            reader = asyncio.ensure_future(station.start())
            self._ws = ws
            try:
                await self._boot(station, reader)
                await reader  # until the connection closes
            finally:
                self._ws = None
                reader.cancel()
                try:
                    await reader
                except (asyncio.CancelledError, Exception):
                    pass

    def _make_station(self, ws: Any) -> Any:
        """The ``ocpp`` ChargePoint for a connection (a subclass picks one per negotiated subprotocol)."""
        return _Station(self.station_id, ws, self)

    async def _boot(self, station: _Station, reader: asyncio.Task) -> None:
        cs: dict[str, Any] = {"model": self.model, "vendor_name": self.vendor}
        if self.serial_number:
            cs["serial_number"] = self.serial_number
        if self.firmware_version:
            cs["firmware_version"] = self.firmware_version
        while not reader.done():
            res = await asyncio.wait_for(station.call(self.CALLS.BootNotification(charging_station=cs, reason="PowerUp"),
                                                      suppress=False), self.timeouts.boot)
            self.boot_status = str(res.status)
            _log.info("ocpp: %s: BootNotification -> %s (interval %s s)", self.station_id, res.status, res.interval)
            if res.status == "Accepted":
                self._station = station
                self._ready.set()  # type: ignore[union-attr]
                if self._outbox_event is not None and self._outbox:
                    self._outbox_event.set()
                return
            # Pending / Rejected: no other call until accepted; retry after the interval [OCPP B02/B03]
            await asyncio.sleep(max(1, int(res.interval or 10)))

    async def _wait_station(self, action: str, deadline: float) -> _Station:
        if self._task is None:
            await self.start()
        loop = asyncio.get_running_loop()
        if not self.connected:
            grace = min(self.timeouts.connect_grace, max(0.0, deadline - loop.time()))
            try:
                await asyncio.wait_for(self._ready.wait(), grace)  # type: ignore[union-attr]
            except asyncio.TimeoutError:
                pass
        station = self._station
        if station is None or not self.connected:
            raise CSMSUnavailable(f"{action}: CSMS not connected ({self.url})")
        return station

    async def _call(self, payload: Any, timeout: float) -> Any:
        action = type(payload).__name__
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        station = await self._wait_station(action, deadline)
        try:
            return await asyncio.wait_for(station.call(payload, suppress=False), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise CSMSUnavailable(f"{action}: no answer from the CSMS within {timeout:g} s") from None
        except OCPPError as exc:  # CALLERROR, or a request/answer that breaks the schema
            raise CSMSCallError(action, getattr(exc, "code", type(exc).__name__),
                                str(getattr(exc, "description", exc))) from None
        except websockets.ConnectionClosed as exc:
            raise CSMSUnavailable(f"{action}: connection to the CSMS closed ({exc})") from None
        except (TypeError, KeyError) as exc:  # an answer the ocpp dataclasses cannot take
            raise CSMSCallError(action, "FormatViolation", f"unusable answer: {exc}") from None

    # ------------------------------------------------------------------ Get15118EVCertificate
    async def get_15118_ev_certificate(self, request: Get15118EVCertificateRequest) -> Get15118EVCertificateResponse:
        """OCPP Get15118EVCertificate; raises :class:`CSMSUnavailable` / :class:`CSMSCallError`."""
        res = await self._call(self.CALLS.Get15118EVCertificate(
            iso15118_schema_version=request.iso15118_schema_version, action=request.action,
            exi_request=request.exi_request), self.timeouts.certificate)
        status, exi = _checked_certificate_response(res)
        _log.info("ocpp: %s: Get15118EVCertificate(%s) -> %s", self.station_id, request.action, status)
        return Get15118EVCertificateResponse(status, exi if status == "Accepted" else "", _reason(res.status_info))

    # ------------------------------------------------------------------ Authorize
    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResponse:
        """OCPP Authorize.  eMAID: ``iso15118CertificateHashData`` (the chain as PEM too only when there
        is no hash data or ``send_contract_certificate``).  Raises :class:`CSMSUnavailable` /
        :class:`CSMSCallError`, except for EIM tokens the offline policy accepts."""
        if len(request.id_token) > _MAX_ID_TOKEN:
            raise OCPPBackendError(f"idToken longer than {_MAX_ID_TOKEN} characters")
        hash_data = [self._hash_data(d) for d in (request.iso15118_certificate_hash_data or ())][:_MAX_HASH_DATA]
        certificate = request.certificate if (not hash_data or self.send_contract_certificate) else None
        payload = self._authorize_payload({"id_token": request.id_token, "type": request.id_token_type},
                                          certificate, hash_data or None)
        try:
            res = await self._call(payload, self.timeouts.authorize)
        except CSMSUnavailable:
            offline = self._offline_status(request)
            if offline is None:
                raise
            _log.info("ocpp: %s: Authorize %s offline -> %s", self.station_id, request.id_token_type, offline)
            return AuthorizeResponse(offline)
        info = res.id_token_info if isinstance(res.id_token_info, Mapping) else {}
        try:
            out = AuthorizeResponse(str(info.get("status")), res.certificate_status)
        except ValueError as exc:
            raise CSMSCallError("Authorize", "PropertyConstraintViolation", str(exc)) from None
        if request.id_token_type != "eMAID":
            if out.id_token_status == "Accepted":
                self.auth_cache[request.id_token] = "Accepted"
            else:
                self.auth_cache.pop(request.id_token, None)
        _log.info("ocpp: %s: Authorize %s (%d hash entries) -> %s/%s", self.station_id, request.id_token_type,
                  len(hash_data), out.id_token_status, out.certificate_status)
        return out

    def _authorize_payload(self, id_token: dict[str, str], certificate: Optional[str],
                           hash_data: Optional[list[dict[str, str]]]) -> Any:
        """The Authorize request object of this OCPP version."""
        return self.CALLS.Authorize(id_token=id_token, certificate=certificate,
                                    iso15118_certificate_hash_data=hash_data)

    @staticmethod
    def _hash_data(d: OCSPRequestData) -> dict[str, str]:
        return {"hash_algorithm": d.hash_algorithm, "issuer_name_hash": d.issuer_name_hash,
                "issuer_key_hash": d.issuer_key_hash, "serial_number": d.serial_number,
                "responder_url": d.responder_url}

    def _offline_status(self, request: AuthorizeRequest) -> Optional[str]:
        """OCPP offline authorisation of an EIM token (never of a contract: that falls back to EIM)."""
        if request.id_token_type == "eMAID":
            return None
        for table in (self.local_auth_list, self.auth_cache):
            if request.id_token in table:
                return table[request.id_token]
        return "Accepted" if self.offline_accept_unknown else None

    # ------------------------------------------------------------------ GetCertificateStatus
    async def get_certificate_status(self, request: OCSPRequestData) -> GetCertificateStatusResponse:
        """OCPP GetCertificateStatus: the CSMS's OCSP response for one certificate."""
        res = await self._call(self.CALLS.GetCertificateStatus(ocsp_request_data=self._hash_data(request)),
                               self.timeouts.call)
        status = str(res.status)
        if status not in ("Accepted", "Failed"):
            raise CSMSCallError("GetCertificateStatus", "PropertyConstraintViolation", f"status {status!r}")
        ocsp = str(res.ocsp_result or "") if status == "Accepted" else ""
        try:
            base64.b64decode(ocsp, validate=True)
        except ValueError:
            raise CSMSCallError("GetCertificateStatus", "FormatViolation", "ocspResult is not base64") from None
        _log.info("ocpp: %s: GetCertificateStatus(serial %s) -> %s", self.station_id, request.serial_number, status)
        return GetCertificateStatusResponse(status, ocsp, _reason(res.status_info))

    async def check_certificate_status(self, chain: Sequence[bytes]) -> list[Any]:
        """OCSP status of every certificate of ``chain`` (DER, leaf first, up to and including the
        root) through GetCertificateStatus, each answer checked with
        :func:`pki.ocsp.check_ocsp_response` (signature by the issuer or its delegate, CertID,
        freshness): a list of :class:`pki.ocsp.OCSPResult`, leaf first (e.g. the charger's own SECC
        chain, OCPP use case M06).  Raises :class:`CSMSUnavailable` / :class:`CSMSCallError`, or
        :class:`pki.OCSPError` for a response that does not check out."""
        from pki.ocsp import check_ocsp_response, ocpp_request_data

        results = []
        ders = [bytes(d) for d in chain]
        for i, data in enumerate(ocpp_request_data(ders, skip_without_url=False)):
            res = await self.get_certificate_status(OCSPRequestData.from_ocpp(data))
            if res.status != "Accepted":
                raise CSMSCallError("GetCertificateStatus", "Failed", res.status_info or "no OCSP response")
            results.append(check_ocsp_response(res.der, ders[i], ders[i + 1], at=self.clock()))
        return results

    # ------------------------------------------------------------------ SignCertificate / CertificateSigned
    #: SignCertificate's certificateType and the chain profile a renewed SECC chain must pass (-2)
    _certificate_type = "V2GCertificate"
    _secc_profile = "iso2-secc"

    def _new_key(self) -> Any:
        """A fresh key for the renewed SECC certificate (-2: P-256)."""
        return ec.generate_private_key(ec.SECP256R1())

    def _csr(self, key: Any) -> str:
        subject = self.secc_subject or x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, self.station_id[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.vendor[:64]),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "CPO"),
        ])
        digest = None if not isinstance(key, ec.EllipticCurvePrivateKey) else \
            hashes.SHA512() if key.curve.key_size > 384 else hashes.SHA256()
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, digest)
        return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")

    async def renew_secc_certificate(self, *, private_key: Any = None) -> SECCCertificate:
        """SignCertificate (V2GCertificate) with a CSR for ``private_key`` (a new P-256 key by
        default), then wait for the CSMS's CertificateSigned and return the chain it accepted.

        Raises :class:`CSMSUnavailable`, :class:`CSMSCallError` (SignCertificate refused) or
        :class:`CertificateRejected` (the certificate that came failed the checks; the CSMS was
        answered Rejected)."""
        if self._pending_csr is not None and not self._pending_csr[1].done():
            raise OCPPBackendError("a SECC certificate renewal is already in progress")
        key = private_key or self._new_key()
        waiter: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending_csr = (key, waiter)
        try:
            res = await self._call(self.CALLS.SignCertificate(csr=self._csr(key), certificate_type=self._certificate_type),
                                   self.timeouts.call)
            if str(res.status) != "Accepted":
                raise CSMSCallError("SignCertificate", str(res.status), _reason(res.status_info) or "refused")
            try:
                result = await asyncio.wait_for(asyncio.shield(waiter), self.timeouts.certificate_signed)
            except asyncio.TimeoutError:
                raise CSMSUnavailable(f"no CertificateSigned within {self.timeouts.certificate_signed:g} s") from None
        finally:
            self._pending_csr = None
        if isinstance(result, CertificateRejected):
            raise result
        return result  # type: ignore[no-any-return]

    def _on_certificate_signed(self, chain_pem: str, certificate_type: Optional[str]) -> tuple[str, Optional[str]]:
        """Check a CertificateSigned from the CSMS; returns (status, reasonCode) for the answer."""
        pending = self._pending_csr
        if certificate_type not in (None, self._certificate_type):
            return "Rejected", "UnsupportedType"
        if pending is None or pending[1].done():
            return "Rejected", "NoPendingRequest"
        key, waiter = pending
        try:
            result = self._check_secc_chain(chain_pem, key)
        except CertificateRejected as exc:
            _log.warning("ocpp: %s: CertificateSigned rejected: %s", self.station_id, exc.reason)
            waiter.set_result(exc)
            return "Rejected", "InvalidCertificate"
        if self.on_secc_certificate is not None:
            try:
                self.on_secc_certificate(result)
            except Exception as exc:  # the caller could not store it: do not claim success
                waiter.set_result(CertificateRejected(f"new certificate could not be stored: {exc}"))
                return "Rejected", "InternalError"
        waiter.set_result(result)
        _log.info("ocpp: %s: CertificateSigned accepted (%s)", self.station_id,
                  x509.load_der_x509_certificate(result.leaf).subject.rfc4514_string())
        return "Accepted", None

    def _check_secc_chain(self, chain_pem: str, key: Any) -> SECCCertificate:
        """[V2G2-925]-like checks of a new SECC chain: PEM, leaf certifies our key, profile
        ``iso2-secc`` (DC=CPO, key usage, validity, Sub-CAs) up to the V2G root."""
        from pki.errors import PKIError
        from pki.verify import verify_chain

        try:
            certs = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
        except (ValueError, UnicodeError) as exc:
            raise CertificateRejected(f"certificateChain is not PEM: {exc}") from None
        if not certs:
            raise CertificateRejected("certificateChain is empty")
        ders = tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)
        mine = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        theirs = certs[0].public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        if mine != theirs:
            raise CertificateRejected("the certificate does not certify the key of our CSR")
        if self.trust_store is None:
            raise CertificateRejected("no V2G trust store to check the SECC chain against")
        try:
            verify_chain(ders[0], list(ders[1:]), store=self.trust_store, profile=self._secc_profile, at=self.clock())
        except PKIError as exc:
            raise CertificateRejected(f"SECC chain rejected: {exc}") from None
        return SECCCertificate(ders, key)

    # ------------------------------------------------------------------ TransactionEvent
    def session_reporter(self, *, id_token: Optional[str] = None) -> SessionReporter:
        """A reporter turning one charger session's events into TransactionEvents (queued)."""
        return _TransactionReporter(self, id_token)

    def _enqueue(self, payload: dict[str, Any]) -> None:
        if len(self._outbox) == self._outbox.maxlen:
            self._dropped += 1
            if self._dropped == 1:
                _log.warning("ocpp: %s: TransactionEvent outbox full: dropping the oldest", self.station_id)
        self._outbox.append(("TransactionEvent", payload))
        if self._outbox_event is not None:
            self._outbox_event.set()

    @property
    def outbox(self) -> tuple[dict[str, Any], ...]:
        """TransactionEvent payloads not yet delivered (oldest first)."""
        return tuple(p for _, p in self._outbox)

    async def _drain(self) -> None:
        while True:
            assert self._outbox_event is not None and self._ready is not None
            await self._outbox_event.wait()
            self._outbox_event.clear()
            while self._outbox:
                if not self.connected:
                    await self._ready.wait()
                _, payload = self._outbox[0]
                try:
                    await self._call(self.CALLS.TransactionEvent(**payload), self.timeouts.call)
                except CSMSUnavailable:
                    await asyncio.sleep(self.timeouts.reconnect_min)
                    continue
                except CSMSCallError as exc:  # the CSMS will not take it: do not retry forever
                    _log.warning("ocpp: %s: TransactionEvent dropped: %s", self.station_id, exc)
                if self._outbox and self._outbox[0][1] is payload:
                    self._outbox.popleft()


_STOP_REASONS = {"finished": ("StoppedByEV", "StopAuthorized"), "paused": ("StoppedByEV", "StopAuthorized"),
                 "timeout": ("Timeout", "EVCommunicationLost"),
                 "connection_closed": ("EVDisconnected", "EVCommunicationLost")}


class _TransactionReporter:
    """One charger session → OCPP TransactionEvents: Started when authorised (TxStartPoint
    Authorized), Updated when energy starts/stops and for meter values (at most one per
    ``meter_interval``), Ended with the last meter value when the session ends."""

    def __init__(self, backend: OCPPBackend, id_token: Optional[str]) -> None:
        self.backend = backend
        self.eim_token = id_token
        self.transaction_id: Optional[str] = None
        self.seq = 0
        self.meter: Optional[MeterValues] = None
        self._last_meter_sent: Optional[float] = None
        self.ended = False

    def __call__(self, event: Any) -> None:
        try:
            self._feed(event)
        except Exception as exc:  # reporting must never break the session
            _log.warning("ocpp: TransactionEvent for %s not queued: %s", type(event).__name__, exc)

    def _feed(self, e: Any) -> None:
        if self.ended:
            return
        if isinstance(e, AuthorizationAccepted) and self.transaction_id is None:
            self.transaction_id = str(uuid.uuid4())
            token = ({"id_token": e.emaid, "type": "eMAID"} if e.emaid else
                     {"id_token": self.eim_token, "type": "ISO14443"} if self.eim_token else
                     {"id_token": "", "type": "NoAuthorization"})
            self._send("Started", "Authorized", "EVConnected", id_token=token)
        elif self.transaction_id is None:
            return
        elif isinstance(e, ChargingStarted):
            self._send("Updated", "ChargingStateChanged", "Charging")
        elif isinstance(e, MeterValues):
            self.meter = e
            now = asyncio.get_running_loop().time()
            if self._last_meter_sent is None or now - self._last_meter_sent >= self.backend.meter_interval:
                self._last_meter_sent = now
                self._send("Updated", "MeterValuePeriodic", "Charging", meter=True)
        elif isinstance(e, ChargingStopped):
            self._send("Updated", "ChargingStateChanged", "EVConnected", meter=True)
        elif isinstance(e, SessionEnded):
            reason, trigger = _STOP_REASONS.get(e.reason, ("Other", "AbnormalCondition"))
            self._send("Ended", trigger, "Idle", meter=True, stopped=reason)
            self.ended = True

    def _meter_value(self) -> Optional[list[dict[str, Any]]]:
        m = self.meter
        if m is None:
            return None
        sampled: list[dict[str, Any]] = []
        if m.meter_wh is not None:
            sampled.append({"value": float(m.meter_wh), "measurand": "Energy.Active.Import.Register",
                            "unit_of_measure": {"unit": "Wh"}})
        if m.voltage is not None:
            sampled.append({"value": float(m.voltage), "measurand": "Voltage", "unit_of_measure": {"unit": "V"}})
        if m.current is not None:
            sampled.append({"value": float(m.current), "measurand": "Current.Import",
                            "unit_of_measure": {"unit": "A"}})
        if m.soc is not None:
            sampled.append({"value": float(m.soc), "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}})
        return [{"timestamp": _now_iso(), "sampled_value": sampled}] if sampled else None

    def _send(self, event_type: str, trigger: str, state: str, *, meter: bool = False,
              stopped: Optional[str] = None, id_token: Optional[dict[str, Any]] = None) -> None:
        info: dict[str, Any] = {"transaction_id": self.transaction_id, "charging_state": state}
        if stopped:
            info["stopped_reason"] = stopped
        payload: dict[str, Any] = {
            "event_type": event_type, "timestamp": _now_iso(), "trigger_reason": trigger, "seq_no": self.seq,
            "transaction_info": info, "evse": {"id": self.backend.evse_id, "connector_id": self.backend.connector_id},
        }
        if not self.backend.connected:
            payload["offline"] = True
        if id_token is not None:
            payload["id_token"] = id_token
        values = self._meter_value() if meter else None
        if values:
            payload["meter_value"] = values
        self.seq += 1
        self.backend._enqueue(payload)
