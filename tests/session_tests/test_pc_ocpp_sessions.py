"""Whole ISO 15118-2 sessions (EV and charger over TLS on loopback, real EXI) with the charger's
backend being the OCPP 2.0.1 client of a test CSMS on a loopback websocket: activation by PCID,
installation through Get15118EVCertificate, reuse, revocation, newest contract wins, a CSMS that is
down or slow (clean ExternalPayment fallback in bounded time), TransactionEvents with meter values."""
from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from _ocpp_fixtures import FAST, RFID, STATION, csms_and_backend, go, make_csms, need_real_codec, plug_in
from _pc_fixtures import first, make_wallet, session_pki
from plugcharge.backends.ocpp import OCPPBackend
from plugcharge import EVConfig
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationPending, AuthorizationRejected,
    CertificateInstallationNeeded, ContractInstallationFailed, ContractInstallationSucceeded, PaymentSelected,
    SessionEnded,
)
from plugcharge.iso2.timing import TimingProfile

pytestmark = pytest.mark.usefixtures("_real_codec")


@pytest.fixture
def _real_codec() -> None:
    need_real_codec()


def _actions(csms) -> list[str]:
    return [c.action for c in csms.calls]


def _fallback(ev_events: list) -> bool:
    return ev_events[-1].reason == "failed" and ev_events[-1].fallback == "ExternalPayment"


def test_activation_install_reuse_revoke_and_eim_fallback(tmp_path: Path) -> None:
    lines: list[str] = []
    wallet = make_wallet(tmp_path / "wallet")
    pcid = session_pki().pcid

    async def main() -> None:
        async with csms_and_backend(tmp_path / "csms", lines) as (csms, backend):
            # 1. not activated: the eMSP has no contract; the EV tells the driver and charges by EIM
            ev, ch = await plug_in(backend, wallet)
            failed = first(ev, ContractInstallationFailed)
            assert failed.response_code == "FAILED_NoCertificateAvailable"
            assert "activate Plug & Charge with your provider" in failed.wallet_event.display_text
            assert _fallback(ev) and ch[-1].reason == "failed"
            ev, ch = await plug_in(backend, wallet, ev_config=EVConfig(charge_loops=2, pnc_suppressed=True))
            assert first(ev, PaymentSelected).option == "ExternalPayment" and ev[-1] == SessionEnded("finished")
            assert first(ch, AuthorizationAccepted).payment == "ExternalPayment"

            # 2. activated: installation through Get15118EVCertificate, authorisation with hash data
            contract = csms.activate(pcid)
            csms.calls.clear()
            ev, ch = await plug_in(backend, wallet)
            assert first(ev, ContractInstallationSucceeded).emaid == contract.emaid
            assert first(ch, AuthorizationAccepted).emaid == contract.emaid
            assert ev[-1] == SessionEnded("finished") and ch[-1] == SessionEnded("finished")
            assert "Get15118EVCertificate" in _actions(csms) and "Authorize" in _actions(csms)
            auth = next(c for c in csms.calls if c.action == "Authorize")
            assert auth.request["type"] == "eMAID" and auth.request["iso15118CertificateHashData"].startswith("3 entries")
            assert [c.emaid for c in wallet.contracts()] == [contract.emaid]

            # 3. the next plug-in reuses the contract: no Get15118EVCertificate
            csms.calls.clear()
            ev, ch = await plug_in(backend, wallet)
            assert first(ev, PaymentSelected).reason == "contract_available" and ev[-1] == SessionEnded("finished")
            assert "Get15118EVCertificate" not in _actions(csms) and "Authorize" in _actions(csms)

            # 4. the driver cancels the contract: Authorize fails, the EV falls back to EIM at once
            csms.revoke(contract.emaid)
            ev, ch = await plug_in(backend, wallet)
            # AuthorizationRes may carry only FAILED here; the charger's event keeps the cause
            assert first(ev, AuthorizationRejected).response_code == "FAILED"
            assert first(ch, AuthorizationRejected).cause == "FAILED_CertificateRevoked"
            assert _fallback(ev)
            ev, _ = await plug_in(backend, wallet, ev_config=EVConfig(charge_loops=1, pnc_suppressed=True))
            assert ev[-1] == SessionEnded("finished")

    go(main(), 120)
    assert any("Authorize" in ln and "iso15118CertificateHashData=" in ln for ln in lines)
    assert any("Get15118EVCertificate" in ln and "contract" in ln for ln in lines)


def test_transaction_events_carry_the_session_meter_values(tmp_path: Path) -> None:
    wallet = make_wallet(tmp_path / "wallet")

    async def main() -> None:
        async with csms_and_backend(tmp_path / "csms", meter_interval=0.0) as (csms, backend):
            contract = csms.activate(session_pki().pcid)
            ev, ch = await plug_in(backend, wallet, ev_config=EVConfig(charge_loops=3, poll_interval=0.1, loop_interval=0.2))
            assert ch[-1] == SessionEnded("finished")
            for _ in range(50):
                if not backend.outbox:
                    break
                await asyncio.sleep(0.05)
            (events,) = csms.transactions.values()
            kinds = [e["eventType"] for e in events]
            assert kinds[0] == "Started" and kinds[-1] == "Ended" and kinds.count("Started") == 1
            assert events[0]["idToken"] == {"id_token": contract.emaid, "type": "eMAID"}
            assert [e["seqNo"] for e in events] == list(range(len(events)))
            assert "Charging" in [e["chargingState"] for e in events]
            readings = [s["value"] for e in events for m in e["meterValue"] for s in m["sampled_value"]
                        if s["measurand"] == "Energy.Active.Import.Register"]
            assert readings and readings == sorted(readings) and readings[-1] > 0
            assert events[-1]["stoppedReason"] == "StoppedByEV" and not any(e["offline"] for e in events)

    go(main(), 60)


def test_newest_contract_wins_through_certificate_update(tmp_path: Path) -> None:
    wallet = make_wallet(tmp_path / "wallet")
    pcid = session_pki().pcid

    async def main() -> None:
        async with csms_and_backend(tmp_path / "csms") as (csms, backend):
            first_contract = csms.activate(pcid)
            ev, _ = await plug_in(backend, wallet)
            assert first(ev, ContractInstallationSucceeded).emaid == first_contract.emaid
            newer = csms.activate(pcid)  # a second activation: the eMSP pools a newer contract
            # the EV updates its contract (here: because it expires within update_before)
            import datetime as dt

            ev, ch = await plug_in(backend, wallet, ev_config=EVConfig(charge_loops=1, poll_interval=0.1))
            assert first(ev, PaymentSelected).installation is None  # nothing forces an update yet
            ev, ch = await plug_in(backend, wallet, ev_config=EVConfig(charge_loops=1, poll_interval=0.1),
                                   update_before=dt.timedelta(days=10000))
            assert first(ev, PaymentSelected).installation == "update"
            assert first(ch, CertificateInstallationNeeded).action == "Update"
            assert first(ev, ContractInstallationSucceeded).kind == "update"
            assert first(ch, AuthorizationAccepted).emaid == newer.emaid
            serials = {c.serial for c in (first_contract, newer)}
            from cryptography import x509

            in_wallet = {x509.load_der_x509_certificate(c.leaf).serial_number for c in wallet.iter_contracts()}
            assert serials <= in_wallet
            use = wallet.usable_contract(dt.datetime.now(dt.timezone.utc))
            assert x509.load_der_x509_certificate(use.leaf).serial_number == newer.serial  # newest wins

    go(main(), 90)


def test_csms_down_means_eim_fallback_not_a_lost_session(tmp_path: Path) -> None:
    wallet = make_wallet(tmp_path / "wallet")

    async def main() -> None:
        backend = OCPPBackend(f"ws://127.0.0.1:9/{STATION}", timeouts=FAST,  # nothing listens on port 9
                              local_auth_list={RFID: "Accepted"})
        await backend.start()
        try:
            t0 = time.monotonic()
            ev, ch = await plug_in(backend, wallet)  # installation: FAILED at once
            assert first(ev, ContractInstallationFailed).response_code == "FAILED" and _fallback(ev)
            assert time.monotonic() - t0 < 5.0
            ev, ch = await plug_in(backend, wallet, ev_config=EVConfig(charge_loops=1, pnc_suppressed=True))
            assert ev[-1] == SessionEnded("finished")  # the RFID card from the local list, offline
            assert [e["event_type"] for e in backend.outbox][0] == "Started" and backend.outbox[0]["offline"]
        finally:
            await backend.aclose()

    go(main(), 60)


def test_csms_down_with_a_contract_in_the_wallet(tmp_path: Path) -> None:
    wallet = make_wallet(tmp_path / "wallet", contract=True)

    async def main() -> None:
        backend = OCPPBackend(f"ws://127.0.0.1:9/{STATION}", timeouts=FAST, local_auth_list={RFID: "Accepted"})
        try:
            t0 = time.monotonic()
            ev, ch = await plug_in(backend, wallet)
            assert first(ch, AuthorizationNeeded).payment == "Contract"
            assert first(ev, AuthorizationRejected).response_code == "FAILED" and _fallback(ev)
            assert time.monotonic() - t0 < 2 * FAST.connect_grace + 4.0
        finally:
            await backend.aclose()

    go(main(), 60)


def test_slow_authorize_keeps_the_ev_waiting_then_fails_cleanly(tmp_path: Path) -> None:
    wallet = make_wallet(tmp_path / "wallet")

    async def main() -> None:
        async with csms_and_backend(tmp_path / "csms") as (csms, backend):
            csms.activate(session_pki().pcid)
            csms.delays["Authorize"] = 3 * FAST.authorize
            t0 = time.monotonic()
            ev, ch = await plug_in(backend, wallet)
            took = time.monotonic() - t0
            # the EV was kept at EVSEProcessing=Ongoing, then got FAILED within the OCPP deadline
            assert first(ev, AuthorizationPending) is not None
            assert first(ev, AuthorizationRejected).response_code == "FAILED" and _fallback(ev)
            assert took < FAST.authorize + 5.0
            csms.delays.clear()
            await asyncio.sleep(3 * FAST.authorize)  # the slow answer arrives late and is ignored
            ev, _ = await plug_in(backend, wallet)
            assert ev[-1] == SessionEnded("finished")

    go(main(), 90)


@pytest.mark.parametrize("who", ["ocpp-deadline", "charger-timer"])
def test_slow_certificate_installation_answers_failed_within_the_ev_timeout(tmp_path: Path, who: str) -> None:
    wallet = make_wallet(tmp_path / "wallet")
    # either the OCPP call's own deadline or the charger's backend timer (scaled down) decides
    timeouts = FAST if who == "ocpp-deadline" else dataclasses.replace(FAST, certificate=30.0)
    timing = TimingProfile() if who == "ocpp-deadline" else TimingProfile(backend_timeout=1.5)

    async def main() -> None:
        async with csms_and_backend(tmp_path / "csms", timeouts=timeouts) as (csms, backend):
            csms.activate(session_pki().pcid)
            csms.delays["Get15118EVCertificate"] = 4.0
            t0 = time.monotonic()
            ev, ch = await plug_in(backend, wallet, timing=timing)
            took = time.monotonic() - t0
            failed = first(ev, ContractInstallationFailed)
            assert failed.response_code == "FAILED" and _fallback(ev)
            assert took < 4.0  # the EV's CertificateInstallationReq timeout is 5 s [V2G2 Table 109]

    go(main(), 60)
