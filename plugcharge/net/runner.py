"""Async glue: run a sans-IO session object over a :class:`plugcharge.net.transport.V2GTPStream`.

``run_ev(stream, session)`` and ``run_charger(stream, session, backend)`` move frames between the
stream and the session, drive its timers with the event loop's clock, and answer the charger's
:class:`~plugcharge.core.events.BackendRequest` events by calling the backend (OCPP-shaped, sync or
async, see :mod:`plugcharge.backends.base`; the one import of this room outside :mod:`plugcharge.core`):

* ``CertificateInstallationNeeded`` → ``Get15118EVCertificate`` (awaited; the charger's own
  backend timer bounds it; for -20 with OCPP 2.1's ``maximumContractCertificateChains`` and
  ``prioritizedEMAIDs``), answered with ``CertificateInstallationResponse`` (with the refusal's
  ResponseCode when the backend names one);
* ``AuthorizationNeeded`` → ``Authorize`` (eMAID, PEM chain, OCSP data) in a background task; the
  session answers EVSEProcessing=Ongoing until the result is in (a refused contract: the -2 FAILED
  code, or the -20 WARNING code of ``backends.base.iso20_response_code``).  ExternalPayment uses
  ``id_token`` (e.g. an RFID card) when given, else it is accepted locally;
* a backend with ``session_reporter(id_token=...)`` (e.g. OCPP TransactionEvent, see
  :mod:`plugcharge.backends.capabilities`) is fed every charger event, and a ``SessionEnded`` when
  the link ends the session; it must not block and must ignore events after the first end.

Both return the list of session events; ``on_event`` sees each event as it happens, and a
:class:`~plugcharge.core.events.Command` it returns (e.g. ``PauseCharging`` on ``ChargingStarted``) is
sent at once, its bytes written.  The stream is closed when the session ends or the peer
disconnects; nothing escapes except cancellation.
"""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from typing import Any, Awaitable, Callable, Optional, Union

from ..core.session import ChargerSessionBase, EVSessionBase
from ..core.events import (
    AuthorizationNeeded, AuthorizationResult, CertificateInstallationNeeded, Command, Event, ProtocolError,
    SessionEnded, StartSession,
)
from ..core.codec import frame
from .logs import RateLimitedLog

__all__ = ["run_ev", "run_charger", "EventCallback"]

_log = logging.getLogger("plugcharge.runner")
#: what peers make the runner log, a few lines a second at most
_peer_log = RateLimitedLog(_log)
EventCallback = Callable[[Event], Any]


def _log_event(side: str, e: Event) -> None:
    """One INFO line per session event (``plugcharge -v``): its type and its short scalar fields
    (bytes, certificates and nested data are left out: nothing secret, nothing long)."""
    if not _log.isEnabledFor(logging.INFO):
        return
    fields = []
    for name in getattr(e, "__dataclass_fields__", {}):
        value = getattr(e, name, None)
        if isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and not 0 < len(value) <= 120):
            fields.append(f"{name}={value}")
    _log.info("%s: %s%s", side, type(e).__name__, f" ({', '.join(fields)})" if fields else "")


def _clock() -> Callable[[], float]:
    return asyncio.get_running_loop().time


async def _write(stream: Any, session: Any, data: bytes, clock: Callable[[], float]) -> None:
    """Write ``data`` and tell the session when it left: a request's message timer runs from there
    (:meth:`~plugcharge.core.session.SessionCore.transmitted`)."""
    if data:
        await stream.write_raw(data)
        session.transmitted(clock())


async def _flush(stream: Any, session: Any, clock: Callable[[], float]) -> None:
    await _write(stream, session, session.data_to_send(), clock)


async def _command(stream: Any, session: Union[EVSessionBase, ChargerSessionBase], command: Any,
                   handle: Callable[[list[Event]], Awaitable[None]], clock: Callable[[], float]) -> None:
    """Send a Command the event callback returned; its bytes go out before anything else."""
    if not isinstance(command, Command) or session.ended:
        return
    res = session.send(command, clock())
    await _write(stream, session, res.data, clock)
    await handle(list(res.events))


async def _drive(stream: Any, session: Union[EVSessionBase, ChargerSessionBase], events: list[Event],
                 handle: Callable[[list[Event]], Awaitable[None]], clock: Callable[[], float]) -> None:
    from ..core.v2gtp import V2GTPError
    from .transport import TransportClosed

    while not session.ended:
        await _flush(stream, session, clock)
        deadline = session.get_timer()
        timeout = None if deadline is None else max(0.0, deadline - clock())
        try:
            ptype, payload = await stream.read_frame(timeout=timeout)
        except TimeoutError:
            await handle(session.handle_timer(clock()))
            continue
        except (TransportClosed, ConnectionError, OSError) as exc:
            if not session.ended:
                _peer_log.info("connection closed", "connection closed by the peer: %s", exc)
                events.append(SessionEnded("connection_closed", detail=str(exc)))
            return
        except V2GTPError as exc:
            events.append(ProtocolError("FAILED", f"V2GTP: {exc}", True))
            events.append(SessionEnded("protocol_error", "FAILED", str(exc)))
            return
        await handle(session.receive_data(frame(payload, ptype), clock()))
    await _flush(stream, session, clock)


async def run_ev(stream: Any, session: EVSessionBase, *, on_event: Optional[EventCallback] = None) -> list[Event]:
    """Run ``session`` (not yet started) over ``stream`` until it ends; returns its events."""
    clock = _clock()
    events: list[Event] = []

    async def handle(new: list[Event]) -> None:
        for e in new:
            events.append(e)
            _log_event("EV", e)
            if on_event is not None:
                await _command(stream, session, on_event(e), handle, clock)

    try:
        res = session.send(StartSession(), clock())
        await _write(stream, session, res.data, clock)
        await handle(list(res.events))
        await _drive(stream, session, events, handle, clock)
    finally:
        await stream.aclose()
    return events


async def run_charger(stream: Any, session: ChargerSessionBase, backend: Any = None, *,
                      id_token: Optional[str] = None, on_event: Optional[EventCallback] = None) -> list[Event]:
    """Run ``session`` over an accepted ``stream``, calling ``backend`` for its requests."""
    from ..backends.base import (
        as_async, authorization_result_command, authorize_request_for, certificate_request_for,
        certificate_response_command,
    )

    clock = _clock()
    events: list[Event] = []
    abackend = as_async(backend) if backend is not None else None
    tasks: set[asyncio.Task] = set()
    # a backend that reports sessions (OCPP TransactionEvent) sees every event; it never blocks
    reporter_factory = getattr(backend, "session_reporter", None)
    reporter = reporter_factory(id_token=id_token) if callable(reporter_factory) else None

    def iso20() -> bool:
        return getattr(session.protocol, "family", None) == "iso20"

    async def authorize(need: AuthorizationNeeded) -> AuthorizationResult:
        req = authorize_request_for(need, id_token) if abackend is not None else None
        call = abackend.authorize if abackend is not None else None
        if iso20() and req is not None and req.id_token_type == "eMAID":
            # a backend with the -20 contract check (OCPP 2.1: GetCertificateChainStatus, then Authorize)
            call = getattr(abackend, "authorize_contract20", None) or call
        resp = await call(req) if call is not None and req is not None else None
        # -20 has WARNING codes for a refused contract (the EV may then use EIM); -2 FAILED ones
        return authorization_result_command(resp, iso20=iso20(), payment=need.payment)

    def deliver(need: AuthorizationNeeded, task: asyncio.Task) -> None:
        tasks.discard(task)
        if session.ended or task.cancelled():
            return
        exc = task.exception()
        # a CSMS that is down or broken: -2 answers FAILED (the EV starts over with EIM), -20 a
        # WARNING after which the EV may use EIM in the same session [V2G20-2227]
        failed = "WARNING_GeneralPnCAuthorizationError" if iso20() else "FAILED"
        result = AuthorizationResult(False, failed, payment=need.payment) if exc is not None else task.result()
        if exc is not None:
            _log.warning("backend authorisation failed: %s", exc)
        session.send(result, clock())

    async def handle(new: list[Event]) -> None:
        for e in new:
            events.append(e)
            _log_event("charger", e)
            if on_event is not None:
                await _command(stream, session, on_event(e), handle, clock)
            if reporter is not None:
                reporter(e)
            if isinstance(e, CertificateInstallationNeeded):
                await certificate(e)
            elif isinstance(e, AuthorizationNeeded):
                t = asyncio.ensure_future(authorize(e))
                tasks.add(t)
                t.add_done_callback(functools.partial(deliver, e))

    async def certificate(need: CertificateInstallationNeeded) -> None:
        deadline = session.get_timer()
        wait = None if deadline is None else max(0.0, deadline - clock())
        resp = None
        failure = "no backend"
        if abackend is not None:
            try:
                resp = await asyncio.wait_for(abackend.get_15118_ev_certificate(certificate_request_for(need)), wait)
            except asyncio.TimeoutError:
                await handle(session.handle_timer(clock()))  # the charger answers FAILED itself
                return
            except Exception as exc:  # a broken backend must not break the session loop
                _log.warning("backend certificate request failed: %s", exc)
                failure = f"backend unavailable: {type(exc).__name__}"
        if session.ended:
            return
        cmd = certificate_response_command(resp, failure=failure)
        if iso20() and not cmd.accepted and cmd.response_code is None:
            # no contract from the CSMS (down, or Failed without a -20 code): the session goes on
            # and the EV may use EIM [V2G20 CertificateInstallationRes WARNING_NoCertificateAvailable]
            cmd = dataclasses.replace(cmd, response_code="WARNING_NoCertificateAvailable")
        out = session.send(cmd, clock())
        await stream.write_raw(out.data)
        await handle(list(out.events))

    try:
        session.connection_made(clock())
        await _drive(stream, session, events, handle, clock)
    finally:
        for t in list(tasks):
            t.cancel()
        if reporter is not None:  # the end the link reported (or our own stop) ends the transaction too
            end = next((e for e in reversed(events) if isinstance(e, SessionEnded)), None)
            reporter(end or SessionEnded("connection_closed", detail="charger stopped"))
        await stream.aclose()
    return events

