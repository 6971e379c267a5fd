"""The OCPP 2.0.1 backend (charging-station client) against the test CSMS on a real websocket on
loopback: every call, each failure mapping, a CSMS that is down or slow, in bounded time."""
from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from pathlib import Path

import pytest

from _ocpp_fixtures import FAST, RFID, STATION, csms_and_backend, go, make_csms, need_real_codec  # noqa: F401
from _pc_fixtures import session_pki, trust_store
from plugcharge.backends.base import AuthorizeRequest, Get15118EVCertificateRequest, OCSPRequestData
from plugcharge.backends.capabilities import (
    CertificateStatusBackend, SECCRenewalBackend, SessionReportingBackend,
)
from plugcharge.backends.ocpp import (
    CertificateRejected, CSMSCallError, CSMSUnavailable, OCPPBackend, OCPPTimeouts,
)
from plugcharge.core.events import (
    AuthorizationAccepted, ChargingStarted, ChargingStopped, MeterValues, SessionEnded,
)

from pki.ocsp import CertStatus, check_ocsp_response, ocpp_request_data
from pki.verify import verify_chain


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _hash_data(contract) -> tuple[OCSPRequestData, ...]:
    chain = [contract.leaf, *contract.sub_cas, session_pki().cert("mo-root")]
    return tuple(OCSPRequestData.from_ocpp(d) for d in ocpp_request_data(chain))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backend_has_every_capability(tmp_path: Path) -> None:
    b = OCPPBackend("ws://127.0.0.1:1/CP")
    assert isinstance(b, CertificateStatusBackend) and isinstance(b, SECCRenewalBackend)
    assert isinstance(b, SessionReportingBackend)
    assert b.station_id == "CP"


def test_boot_and_authorize_emaid_with_hash_data_then_revoked(tmp_path: Path) -> None:
    lines: list[str] = []

    async def main() -> None:
        async with csms_and_backend(tmp_path, lines) as (csms, backend):
            assert backend.boot_status == "Accepted"
            contract = csms.activate(session_pki().pcid)
            data = _hash_data(contract)
            res = await backend.authorize(AuthorizeRequest(contract.emaid, "PEM-not-sent", data))
            assert (res.id_token_status, res.certificate_status) == ("Accepted", "Accepted")
            call = [c for c in csms.calls if c.action == "Authorize"][-1]
            # hash data only (the charger validated the chain itself); the serials of leaf, Sub-CA 2, Sub-CA 1
            assert call.request["certificate"] is None and call.request["type"] == "eMAID"
            assert call.request["iso15118CertificateHashData"] == \
                "3 entries (serials " + ", ".join(d.serial_number[:8] for d in data) + ")"
            assert len(data) == 3
            assert csms.revoke(contract.emaid) == 1
            res = await backend.authorize(AuthorizeRequest(contract.emaid, None, data))
            assert (res.id_token_status, res.certificate_status) == ("Blocked", "CertificateRevoked")
            res = await backend.authorize(AuthorizeRequest("DEPLGC00000009X", None, data))
            assert res.id_token_status == "Unknown" and not res.accepted

    go(main())
    assert any("BootNotification" in ln and "Accepted" in ln for ln in lines)
    assert any("Authorize" in ln and "iso15118CertificateHashData=" in ln for ln in lines)


def test_send_contract_certificate_sends_the_chain(tmp_path: Path) -> None:
    from plugcharge.backends.base import pem_chain

    async def main() -> None:
        async with csms_and_backend(tmp_path, send_contract_certificate=True) as (csms, backend):
            contract = csms.activate(session_pki().pcid)
            pem = pem_chain([contract.leaf, *contract.sub_cas])
            res = await backend.authorize(AuthorizeRequest(contract.emaid, pem, _hash_data(contract)))
            assert res.accepted and csms.calls[-1].request["certificate"] == "PEM chain"

    go(main())


def test_eim_tokens_online_cache_and_offline_policy(tmp_path: Path) -> None:
    async def main() -> None:
        async with csms_and_backend(tmp_path, local_auth_list={"LOCAL-1": "Accepted"}) as (csms, backend):
            ok = await backend.authorize(AuthorizeRequest(RFID, id_token_type="ISO14443"))
            bad = await backend.authorize(AuthorizeRequest("NOT-A-CARD", id_token_type="ISO14443"))
            assert ok.accepted and bad.id_token_status == "Unknown"
            assert backend.auth_cache == {RFID: "Accepted"}
            await csms.aclose()  # the CSMS goes down
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            assert (await backend.authorize(AuthorizeRequest(RFID, id_token_type="ISO14443"))).accepted  # cache
            assert (await backend.authorize(AuthorizeRequest("LOCAL-1", id_token_type="ISO14443"))).accepted
            with pytest.raises(CSMSUnavailable):
                await backend.authorize(AuthorizeRequest("NOT-A-CARD", id_token_type="ISO14443"))
            with pytest.raises(CSMSUnavailable):  # a contract never authorises offline: EIM fallback
                await backend.authorize(AuthorizeRequest("DEPLGC000000011"))
            backend.offline_accept_unknown = True
            assert (await backend.authorize(AuthorizeRequest("ANY", id_token_type="ISO14443"))).accepted
            assert time.monotonic() - t0 < 3.0  # fails fast while offline

    go(main())


def test_get_15118_ev_certificate_unknown_pcid_then_activated(tmp_path: Path) -> None:
    need_real_codec()
    from test_pc_backend import install_req

    from plugcharge.core.codec import body_of

    import exi

    p = session_pki()
    exi_req = install_req(p)
    req = Get15118EVCertificateRequest.from_exi(exi_req, "Install")

    async def main() -> None:
        async with csms_and_backend(tmp_path) as (csms, backend):
            res = await backend.get_15118_ev_certificate(req)
            # OCPP Accepted: the EXI answer carries the eMSP's refusal for the EV
            assert res.status == "Accepted" and "unknown PCID" in (res.status_info or "")
            name, body, _ = body_of(exi.get_codec(req.iso15118_schema_version).decode(res.exi))
            assert (name, body["ResponseCode"]) == ("CertificateInstallationRes", "FAILED_NoCertificateAvailable")
            first = csms.activate(p.pcid)
            second = csms.activate(p.pcid)  # a second activation: the newer contract wins
            assert second.issued_at > first.issued_at and second.emaid == first.emaid
            res = await backend.get_15118_ev_certificate(req)
            name, body, _ = body_of(exi.get_codec(req.iso15118_schema_version).decode(res.exi))
            assert res.status == "Accepted" and body["ResponseCode"] == "OK"
            assert bytes(body["ContractSignatureCertChain"]["Certificate"]) == second.leaf
            res = await backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(b"\x80junk", "Install"))
            assert res.status == "Failed" and res.exi_response == ""
            assert "does not decode" in (res.status_info or "")

    go(main())


def test_get_certificate_status_good_revoked_unknown(tmp_path: Path) -> None:
    p = session_pki()

    async def main() -> None:
        async with csms_and_backend(tmp_path) as (csms, backend):
            contract = csms.activate(p.pcid)
            leaf_data = _hash_data(contract)[0]
            res = await backend.get_certificate_status(leaf_data)
            result = check_ocsp_response(res.der, contract.leaf, contract.sub_cas[0], at=_now())
            assert res.status == "Accepted" and result.status is CertStatus.GOOD and result.responder == "issuer"
            # the SECC's own chain (what a charger staples): Sub-CA 2 answered by Sub-CA 1
            secc = ocpp_request_data([p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1"), p.cert("v2g-root")])
            res = await backend.get_certificate_status(OCSPRequestData.from_ocpp(secc[1]))
            assert check_ocsp_response(res.der, p.cert("cpo-sub2"), p.cert("cpo-sub1"), at=_now()).good
            csms.revoke(contract.emaid)
            res = await backend.get_certificate_status(leaf_data)
            result = check_ocsp_response(res.der, contract.leaf, contract.sub_cas[0], at=_now())
            assert result.status is CertStatus.REVOKED and result.revocation_time is not None
            unknown = OCSPRequestData(leaf_data.hash_algorithm, leaf_data.issuer_name_hash, leaf_data.issuer_key_hash,
                                      "1234abcd", leaf_data.responder_url)
            res = await backend.get_certificate_status(unknown)
            assert res.status == "Failed" and res.der == b""

    go(main())


def test_sign_certificate_renews_the_secc_certificate(tmp_path: Path) -> None:
    lines: list[str] = []
    stored: list = []

    async def main() -> None:
        async with csms_and_backend(tmp_path, lines, on_secc_certificate=stored.append) as (csms, backend):
            renewed = await backend.renew_secc_certificate()
            p = session_pki()
            verified = verify_chain(renewed.leaf, list(renewed.chain[1:]), store=trust_store(), profile="iso2-secc",
                                    at=_now())
            assert verified is not None and stored == [renewed]
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization

            leaf = x509.load_der_x509_certificate(renewed.leaf)
            spki = serialization.PublicFormat.SubjectPublicKeyInfo
            assert leaf.public_key().public_bytes(serialization.Encoding.DER, spki) == \
                renewed.private_key.public_key().public_bytes(serialization.Encoding.DER, spki)
            assert renewed.chain[1:] == (p.cert("cpo-sub2"), p.cert("cpo-sub1"))
            await asyncio.sleep(0.1)
            assert [c.result for c in csms.calls if c.action == "CertificateSigned"] == ["Accepted"]

    go(main())
    assert any("SignCertificate" in ln and "V2GCertificate" in ln for ln in lines)


def _bad_signer(kind: str):
    """A CSMS signer that returns a certificate the charger must refuse."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pki.issue import issue_leaf

    p = session_pki()

    def pem(ders):
        return "".join(x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM).decode() for d in ders)

    def signer(csr):
        now = _now()
        if kind == "not-cpo":  # an OEM provisioning certificate: no DC=CPO, wrong chain
            issued = issue_leaf("oem-provisioning-leaf", iso=2, issuer_certificate=p.cert("oem-sub2"),
                                issuer_key=p.key("oem-sub2"), cn="PLUGCHARGEPCID0042", now=now,
                                public_key=csr.public_key())
            return pem([issued.der, p.cert("oem-sub2"), p.cert("oem-sub1")])
        if kind == "other-key":  # a valid SECC certificate, but for another key than the CSR's
            issued = issue_leaf("secc-leaf", iso=2, issuer_certificate=p.cert("cpo-sub2"), issuer_key=p.key("cpo-sub2"),
                                cn="SECCCert", now=now, public_key=ec.generate_private_key(ec.SECP256R1()).public_key())
            return pem([issued.der, p.cert("cpo-sub2"), p.cert("cpo-sub1")])
        if kind == "expired":
            issued = issue_leaf("secc-leaf", iso=2, issuer_certificate=p.cert("cpo-sub2"), issuer_key=p.key("cpo-sub2"),
                                cn="SECCCert", now=now - dt.timedelta(days=800), public_key=csr.public_key(),
                                validity=dt.timedelta(days=2))
            return pem([issued.der, p.cert("cpo-sub2"), p.cert("cpo-sub1")])
        return "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"

    return signer


@pytest.mark.parametrize("kind,why", [("not-cpo", "SECC chain rejected"), ("other-key", "key of our CSR"),
                                      ("expired", "SECC chain rejected"), ("garbage", "not PEM")])
def test_certificate_signed_is_checked_before_it_is_accepted(tmp_path: Path, kind: str, why: str) -> None:
    stored: list = []

    async def main() -> None:
        async with csms_and_backend(tmp_path, csms_kw={"secc_signer": _bad_signer(kind)},
                                    on_secc_certificate=stored.append) as (csms, backend):
            with pytest.raises(CertificateRejected, match=why):
                await backend.renew_secc_certificate()
            await asyncio.sleep(0.1)
            assert [c.result.split(":")[0] for c in csms.calls if c.action == "CertificateSigned"] == ["Rejected"]

    go(main())
    assert stored == []


def test_unsolicited_certificate_signed_is_rejected(tmp_path: Path) -> None:
    from ocpp.v201 import call

    async def main() -> None:
        async with csms_and_backend(tmp_path) as (csms, backend):
            pem = csms._sign_secc  # a perfectly valid chain, but nobody asked for it
            from cryptography import x509
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec

            key = ec.generate_private_key(ec.SECP256R1())
            csr = x509.CertificateSigningRequestBuilder().subject_name(
                x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "X")])).sign(key, hashes.SHA256())
            res = await csms.call_station(STATION, call.CertificateSigned(certificate_chain=pem(csr),
                                                                          certificate_type="V2GCertificate"))
            assert res.status == "Rejected"
            res = await csms.call_station(STATION, call.CertificateSigned(certificate_chain=pem(csr),
                                                                          certificate_type="ChargingStationCertificate"))
            assert res.status == "Rejected"

    go(main())


def test_csms_errors_map_to_typed_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with csms_and_backend(tmp_path) as (csms, backend):
            csms.failures["Authorize"] = "InternalError"
            with pytest.raises(CSMSCallError) as info:
                await backend.authorize(AuthorizeRequest("DEPLGC000000011"))
            assert info.value.code == "InternalError" and info.value.action == "Authorize"
            csms.failures["Get15118EVCertificate"] = "InternalError"
            with pytest.raises(CSMSCallError):
                await backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(b"x", "Install"))
            csms.failures["SignCertificate"] = "InternalError"
            with pytest.raises(CSMSCallError):
                await backend.renew_secc_certificate()
            csms.failures.clear()
            # the connection survives CALLERRORs
            assert (await backend.authorize(AuthorizeRequest(RFID, id_token_type="ISO14443"))).accepted

    go(main())


@pytest.mark.parametrize("action", ["Authorize", "Get15118EVCertificate", "GetCertificateStatus"])
def test_slow_csms_times_out_in_bounded_time(tmp_path: Path, action: str) -> None:
    async def main() -> None:
        async with csms_and_backend(tmp_path) as (csms, backend):
            csms.delays[action] = 3.0
            t0 = time.monotonic()
            with pytest.raises(CSMSUnavailable, match="no answer"):
                if action == "Authorize":
                    await backend.authorize(AuthorizeRequest("DEPLGC000000011"))
                elif action == "Get15118EVCertificate":
                    await backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(b"x", "Install"))
                else:
                    await backend.get_certificate_status(OCSPRequestData("SHA256", "00", "00", "01", "http://x"))
            took = time.monotonic() - t0
            limit = FAST.authorize if action == "Authorize" else FAST.certificate if action.startswith("Get15") \
                else FAST.call
            assert limit - 0.05 <= took < limit + 0.8

    go(main())


def test_csms_down_fails_fast_and_reconnects_when_it_is_back(tmp_path: Path) -> None:
    port = _free_port()

    async def main() -> None:
        backend = OCPPBackend(f"ws://127.0.0.1:{port}/{STATION}", timeouts=FAST)
        try:
            assert not await backend.start(wait=0.5)
            t0 = time.monotonic()
            with pytest.raises(CSMSUnavailable, match="not connected"):
                await backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(b"x", "Install"))
            with pytest.raises(CSMSUnavailable):
                await backend.authorize(AuthorizeRequest("DEPLGC000000011"))
            assert time.monotonic() - t0 < 2 * FAST.connect_grace + 0.5
            csms = make_csms(tmp_path)
            await csms.start("127.0.0.1", port)
            try:
                for _ in range(50):
                    if backend.connected:
                        break
                    await asyncio.sleep(0.1)
                assert backend.connected and backend.boot_status == "Accepted"
                assert (await backend.authorize(AuthorizeRequest(RFID, id_token_type="ISO14443"))).accepted
            finally:
                await csms.aclose()
            for _ in range(30):  # the CSMS went away: the backend notices
                if not backend.connected:
                    break
                await asyncio.sleep(0.1)
            assert not backend.connected
        finally:
            await backend.aclose()

    go(main())


def test_transaction_events_with_meter_values_and_offline_queue(tmp_path: Path) -> None:
    port = _free_port()

    async def main() -> None:
        backend = OCPPBackend(f"ws://127.0.0.1:{port}/{STATION}", timeouts=FAST, meter_interval=0.0)
        await backend.start(wait=0.3)
        try:
            report = backend.session_reporter(id_token=RFID)
            report(MeterValues(400.0, 10.0, 5))  # before authorisation: no transaction yet
            report(AuthorizationAccepted("ExternalPayment"))
            report(ChargingStarted("DC_extended", 1))
            report(MeterValues(400.0, 100.0, 120, 50))
            report(ChargingStopped())
            report(SessionEnded("finished"))
            report(SessionEnded("timeout"))  # ignored: the transaction has ended
            assert [e["event_type"] for e in backend.outbox] == ["Started", "Updated", "Updated", "Updated", "Ended"]
            assert all(e.get("offline") for e in backend.outbox)  # happened while the CSMS was down
            csms = make_csms(tmp_path)
            await csms.start("127.0.0.1", port)
            try:
                for _ in range(60):
                    if not backend.outbox and csms.transactions:
                        break
                    await asyncio.sleep(0.1)
                (events,) = csms.transactions.values()
                assert [e["eventType"] for e in events] == ["Started", "Updated", "Updated", "Updated", "Ended"]
                assert [e["seqNo"] for e in events] == [0, 1, 2, 3, 4] and all(e["offline"] for e in events)
                assert events[0]["idToken"] == {"id_token": RFID, "type": "ISO14443"}
                assert events[-1]["stoppedReason"] == "StoppedByEV"
                energy = [s["value"] for s in events[-1]["meterValue"][0]["sampled_value"]
                          if s["measurand"] == "Energy.Active.Import.Register"]
                assert energy == [120]
            finally:
                await csms.aclose()
        finally:
            await backend.aclose()

    go(main())


def test_subprotocol_and_station_identity_are_required(tmp_path: Path) -> None:
    import websockets
    from websockets.asyncio.client import connect

    async def main() -> None:
        csms = make_csms(tmp_path)
        await csms.start("127.0.0.1", 0)
        try:
            with pytest.raises(websockets.InvalidStatus, match="400"):  # no subprotocol offered
                async with connect(csms.url("CP9"), proxy=None):
                    pass
            async with connect(csms.url(""), subprotocols=["ocpp2.0.1"], proxy=None) as ws:  # no identity
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1008
            # a station speaking another OCPP version gets no connection
            backend = OCPPBackend(csms.url("CP8"), timeouts=FAST)
            backend.SUBPROTOCOLS = ("ocpp1.6",)
            try:
                assert not await backend.start(wait=1.0)
            finally:
                await backend.aclose()
        finally:
            await csms.aclose()

    go(main())


def test_long_id_token_is_refused_locally(tmp_path: Path) -> None:
    from plugcharge.backends.ocpp import OCPPBackendError

    async def main() -> None:
        backend = OCPPBackend("ws://127.0.0.1:1/CP", timeouts=FAST)
        with pytest.raises(OCPPBackendError, match="36"):
            await backend.authorize(AuthorizeRequest("X" * 37, id_token_type="ISO14443"))
        await backend.aclose()

    go(main())


def test_activation_before_the_csms_ever_ran_keeps_its_tokens(tmp_path: Path) -> None:
    from plugcharge.backends.csms import activate, revoke

    p = session_pki()
    contract = activate(tmp_path, p, p.pcid)  # no CSMS yet: the state file is created by the command
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600
    assert revoke(tmp_path, p, "DEPLGC00000000X") == 0

    async def main() -> None:
        async with csms_and_backend(tmp_path) as (csms, backend):
            assert (await backend.authorize(AuthorizeRequest(RFID, id_token_type="ISO14443"))).accepted
            assert (await backend.authorize(AuthorizeRequest(contract.emaid, None, _hash_data(contract)))).accepted
            assert revoke(tmp_path, p, contract.emaid) == 1  # the running CSMS sees it at its next call
            res = await backend.authorize(AuthorizeRequest(contract.emaid, None, _hash_data(contract)))
            assert res.certificate_status == "CertificateRevoked"

    go(main())


def test_unreadable_state_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        make_csms(tmp_path)


def test_check_certificate_status_of_a_whole_chain(tmp_path: Path) -> None:
    from pki.errors import OCSPError

    p = session_pki()
    secc = [p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1"), p.cert("v2g-root")]

    async def main() -> None:
        async with csms_and_backend(tmp_path) as (csms, backend):
            results = await backend.check_certificate_status(secc)
            assert [r.status for r in results] == [CertStatus.GOOD] * 3
            contract = csms.activate(p.pcid)
            csms.revoke(contract.emaid)
            results = await backend.check_certificate_status([contract.leaf, *contract.sub_cas, p.cert("mo-root")])
            assert [r.status for r in results] == [CertStatus.REVOKED, CertStatus.GOOD, CertStatus.GOOD]

            # a CSMS whose OCSP answer is for another certificate: pki refuses it
            real = csms.store.backend.certificate_status
            csms.store.backend.certificate_status = lambda d: real(_hash_data(contract)[1])  # type: ignore[method-assign]
            with pytest.raises(OCSPError):
                await backend.check_certificate_status(secc)

    go(main())
