"""ISO 15118-20 Plug & Charge over real loopback sockets with mutual TLS 1.3: the charger asks for the
vehicle certificate and checks it under the -20 vehicle profile, the runner forwards the EV's
CertificateInstallationReq and the contract to the simulated backend; the first session installs the
contract, the second reuses it, a revoked contract falls back to EIM in the same session, and an EV
without its vehicle certificate never gets a session."""
from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

import exi
from _pc_fixtures import first, session_pki
from _pnc20_fixtures import EMAID, charger_security, ev_security, make_backend, make_wallet20, pki20
from plugcharge import ChargerConfig, ChargerSession, EVConfig, EVSession
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationRejected, CertificateInstallationNeeded,
    ContractInstallationSucceeded, PaymentSelected, SessionEnded,
)
from plugcharge.net.runner import run_charger, run_ev
from plugcharge.net.sdp import loopback_host
from plugcharge.net.tls import client_context, handshake_failures
from plugcharge.net.tlsselect import DualServerContext, protocols_for_tls_version
from plugcharge.net.transport import open_ev_connection, start_charger_server

HOST = loopback_host()


def _dual() -> DualServerContext:
    p2, p20 = session_pki(), pki20()
    return DualServerContext(
        iso2=([p2.cert("secc-leaf"), p2.cert("cpo-sub2"), p2.cert("cpo-sub1")], p2.key("secc-leaf")),
        iso20=([p20.cert("secc-leaf"), p20.cert("cpo-sub2"), p20.cert("cpo-sub1")], p20.key("secc-leaf")),
        iso20_client_roots=[p20.cert("oem-root")])


def _ev_context(vehicle: bool = True) -> ssl.SSLContext:
    p20 = pki20()
    chain = [p20.cert("vehicle-leaf"), p20.cert("oem-sub2"), p20.cert("oem-sub1")] if vehicle else None
    return client_context([p20.cert("v2g-root")], iso=20, client_chain=chain,
                          client_key=p20.key("vehicle-leaf") if vehicle else None)


async def _sessions(wallet: Any, backend: Any, dual: DualServerContext, count: int) -> list[tuple[list, list, Any]]:
    results: asyncio.Queue = asyncio.Queue()
    security = charger_security()

    async def handler(stream: Any) -> None:
        try:
            session = ChargerSession(ChargerConfig(protocols=protocols_for_tls_version(stream.tls_version),
                                                   tls=stream.tls, receipt_every=2), codecs=exi.get_codec,
                                     security=security)
            results.put_nowait((await run_charger(stream, session, backend), stream.peer_chain))
        except BaseException as exc:  # surfaced below
            results.put_nowait((exc, None))

    out = []
    async with await start_charger_server(handler, HOST, 0, ssl_context=dual.context) as server:
        for _ in range(count):
            stream = await open_ev_connection(HOST, server.port, ssl_context=_ev_context())
            ev = EVSession(EVConfig(charge_loops=3, tls=True, protocols=("iso20",), poll_interval=0.05),
                           codecs=exi.get_codec, security=ev_security(wallet))
            ev_events = await run_ev(stream, ev)
            charger_events, peer = await asyncio.wait_for(results.get(), 20)
            if isinstance(charger_events, BaseException):
                raise charger_events
            out.append((ev_events, charger_events, peer))
    return out


def test_install_then_reuse_over_mutual_tls13(tmp_path):
    wallet = make_wallet20(tmp_path / "w")
    backend = make_backend()
    dual = _dual()
    (ev1, ch1, peer1), (ev2, ch2, _) = asyncio.run(asyncio.wait_for(_sessions(wallet, backend, dual, 2), 60))
    assert dual.selected == {"iso2": 0, "iso20": 2}
    assert peer1 and peer1[0] == pki20().cert("vehicle-leaf")  # the vehicle chain the charger checked
    assert first(ev1, ContractInstallationSucceeded).emaid == EMAID
    assert first(ch1, CertificateInstallationNeeded).maximum_contract_chains == 1
    assert first(ev1, AuthorizationAccepted) == AuthorizationAccepted("Contract", EMAID)
    assert ev1[-1] == SessionEnded("finished") and ch1[-1] == SessionEnded("finished")
    assert not any(isinstance(e, ContractInstallationSucceeded) for e in ev2)
    assert first(ev2, PaymentSelected).reason == "contract_available"
    assert first(ch2, AuthorizationNeeded).emaid == EMAID and ev2[-1] == SessionEnded("finished")
    assert [c.emaid for c in wallet.contracts(iso=20)] == [EMAID]


def test_revoked_contract_falls_back_to_eim_over_sockets(tmp_path):
    wallet = make_wallet20(tmp_path / "w")
    backend = make_backend()
    backend.register_id_token("RFID-1")
    asyncio.run(asyncio.wait_for(_sessions(wallet, backend, _dual(), 1), 60))
    backend.revoke(EMAID)
    [(ev, ch, _)] = asyncio.run(asyncio.wait_for(_sessions(wallet, backend, _dual(), 1), 60))
    assert first(ev, AuthorizationRejected).response_code == "WARNING_CertificateRevoked"
    assert [e.option for e in ev if isinstance(e, PaymentSelected)] == ["Contract", "ExternalPayment"]
    assert ev[-1] == SessionEnded("finished")


def test_ev_without_vehicle_certificate_is_refused_by_the_charger(tmp_path):
    """Mutual TLS for -20 [V2G20-2400]: an EV that presents no vehicle chain gets no session."""
    dual = _dual()
    started: list = []

    async def go() -> None:
        async def handler(stream: Any) -> None:
            started.append(stream)

        async with await start_charger_server(handler, HOST, 0, ssl_context=dual.context) as server:
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                stream = await open_ev_connection(HOST, server.port, ssl_context=_ev_context(vehicle=False))
                await stream.write_frame(0x8001, b"\x80")
                await stream.read_frame(timeout=2.0)
            await asyncio.sleep(0.1)
    asyncio.run(asyncio.wait_for(go(), 30))
    assert not started
    assert dual.iso20 is not None and any("vehicle" in r for r in handshake_failures(dual.iso20))
