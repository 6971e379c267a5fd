"""Helpers for the OCPP tests: a test CSMS on loopback, an OCPP backend for it, and one charging
session (EV and charger over TLS on loopback) through the runner with that backend."""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator, Optional

import pytest

pytest.importorskip("ocpp", reason="the 'ocpp' extra is not installed")
pytest.importorskip("websockets", reason="the 'ocpp' extra is not installed")

from _pc_fixtures import pin_protocols, real_codec_status, session_pki, trust_store, v2g_roots  # noqa: E402
from plugcharge.backends.csms import TestCSMS  # noqa: E402
from plugcharge.backends.ocpp import OCPPBackend, OCPPTimeouts  # noqa: E402
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession  # noqa: E402
from plugcharge.net.runner import run_charger, run_ev  # noqa: E402
from plugcharge.net.sdp import loopback_host  # noqa: E402
from plugcharge.iso2.timing import DEFAULT_TIMING, TimingProfile  # noqa: E402
from plugcharge.net.tls import client_context, secc_leaf_check, server_context  # noqa: E402
from plugcharge.net.transport import open_ev_connection, start_charger_server  # noqa: E402

RFID = "RFID-CARD-0042"
STATION = "CP-TEST-1"
#: short deadlines so every failure test ends in a few seconds
FAST = OCPPTimeouts(connect=1.0, boot=2.0, connect_grace=0.3, certificate=1.0, authorize=1.0, call=2.0,
                    certificate_signed=3.0, reconnect_min=0.1, reconnect_max=0.5)


def go(coro: Any, limit: float = 60.0) -> Any:
    """Run ``coro`` with a hard time bound."""
    return asyncio.run(asyncio.wait_for(coro, limit))


def need_real_codec() -> None:
    status = real_codec_status()
    if status is not None:
        pytest.skip(f"needs the compiled EXI codec: {status}")


def make_csms(state_dir: Path, lines: Optional[list] = None, **kw: Any) -> TestCSMS:
    return TestCSMS(session_pki(), state_dir, log=(lines.append if lines is not None else None),
                    id_tokens=(RFID,), **kw)


@contextlib.asynccontextmanager
async def csms_and_backend(state_dir: Path, lines: Optional[list] = None, *, timeouts: OCPPTimeouts = FAST,
                           csms_kw: Optional[dict] = None, **backend_kw: Any) -> AsyncIterator[tuple[TestCSMS, OCPPBackend]]:
    csms = make_csms(state_dir, lines, **(csms_kw or {}))
    await csms.start("127.0.0.1", 0)
    backend = OCPPBackend(csms.url(STATION), timeouts=timeouts, trust_store=trust_store(), **backend_kw)
    try:
        assert await backend.start(wait=5.0), "the backend did not boot at the test CSMS"
        yield csms, backend
    finally:
        await backend.aclose()
        await csms.aclose()


async def plug_in(backend: Any, wallet: Any, *, id_token: Optional[str] = RFID, timing: TimingProfile = DEFAULT_TIMING,
                  ev_config: Optional[EVConfig] = None, update_before: Optional[Any] = None) -> tuple[list, list]:
    """One V2G session (TLS, ISO 15118-2, real EXI) between an EV with ``wallet`` and a charger whose
    backend is ``backend``; returns (EV events, charger events)."""
    from pki.ocsp import ocpp_request_data

    import exi

    p = session_pki()
    mo_root = p.cert("mo-root")
    host = loopback_host()
    done: asyncio.Future = asyncio.get_running_loop().create_future()

    async def handler(stream: Any) -> None:
        security = ChargerSecurity(trust_store=trust_store(),
                                   ocsp_request_data=lambda chain: ocpp_request_data([*chain, mo_root]))
        charger = ChargerSession(ChargerConfig(protocols=("iso2",)), codecs=exi.get_codec, security=security, timing=timing)
        try:
            done.set_result(await run_charger(stream, charger, backend, id_token=id_token))
        except BaseException as exc:  # surfaced by the caller's await
            done.set_exception(exc)

    server = await start_charger_server(handler, host, 0, ssl_context=server_context(
        [p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1")], p.key("secc-leaf")))
    async with server:
        stream = await open_ev_connection(host, server.port, ssl_context=client_context(list(v2g_roots())),
                                          verify_peer=secc_leaf_check)
        ev = EVSession(pin_protocols(ev_config or EVConfig(charge_loops=2, poll_interval=0.1)), codecs=exi.get_codec,
                       security=EVSecurity(wallet=wallet, v2g_roots=v2g_roots(),
                                           **({"update_before": update_before} if update_before else {})))
        ev_events = await run_ev(stream, ev)
        charger_events = await asyncio.wait_for(done, 15)
    return ev_events, charger_events
