"""OCPP 2.1 for ISO 15118-20: the charger's OCPP21Backend against the test CSMS on loopback (each -20
call, the fallbacks), whole -20 sessions through the CSMS (``plugcharge demo --protocol iso20 --csms``:
activation, installation, reuse, revocation refused by GetCertificateChainStatus, CSMS down), and
the CSMS against a station made of the ``ocpp`` package's own v21 classes."""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path
from typing import AsyncIterator

import pytest

pytest.importorskip("ocpp.v21", reason="the 'ocpp' extra (ocpp>=2.1) is not installed")

from _ocpp_fixtures import FAST, RFID, STATION, go, make_csms  # noqa: E402
from _pnc20_fixtures import pki20  # noqa: E402
from _pc_fixtures import session_pki, trust_store  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

import exi  # noqa: E402
from pki.ocsp import ocpp_request_data  # noqa: E402
from pki.store import TrustStore  # noqa: E402
from pki.verify import verify_chain  # noqa: E402
from plugcharge.backends.base import AuthorizeRequest, Get15118EVCertificateRequest, OCSPRequestData  # noqa: E402
from plugcharge.backends.capabilities import CertificateChainStatusBackend, CertificateStatusRequestInfo  # noqa: E402
from plugcharge.backends.ocpp import CSMSUnavailable  # noqa: E402
from plugcharge.backends.ocpp21 import OCPP21Backend, OCPP21Required  # noqa: E402
from plugcharge.cli.demo import DemoOptions, run_demo  # noqa: E402
from plugcharge.core.events import ContractInstallationFailed  # noqa: E402

PCID = "PLUGCHARGEPCID0001"  # the -20 test PKI's (seeded) PCID


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _csms20(state_dir: Path, lines: list, **kw):
    return make_csms(state_dir, lines, pki20=pki20(), **kw)


async def _backend(csms, **kw) -> OCPP21Backend:
    b = OCPP21Backend(csms.url(STATION), timeouts=FAST, trust_store=trust_store(),
                      trust_store20=TrustStore(pki20().store_roots()), **kw)
    assert await b.start(wait=5.0)
    return b


@contextlib.asynccontextmanager
async def _station(csms, **kw) -> AsyncIterator[OCPP21Backend]:
    """The test CSMS listening on loopback and a station connected to it (:func:`_backend`); both
    closed afterwards."""
    await csms.start("127.0.0.1", 0)
    try:
        backend = await _backend(csms, **kw)
        try:
            yield backend
        finally:
            await backend.aclose()
    finally:
        await csms.aclose()


async def _station_answered(csms, action: str) -> None:
    """Wait (at most 10 s) until the CSMS has recorded the station's answer to ``action``: the
    station answers a CSMS-initiated call after the call that triggered it returned."""
    for _ in range(200):
        if any(c.action == action for c in csms.calls):
            return
        await asyncio.sleep(0.05)


def _contract20(csms, emaid: str = "DEPLGC0000020X1"):
    """A -20 contract the CSMS's eMSP issued (through its -20 provisioning)."""
    with csms.store.transaction() as b:
        b.register_pcid(PCID, emaid)
        return b.iso20._issue(b, emaid, PCID)


def _requests(contract) -> list[CertificateStatusRequestInfo]:
    p = pki20()
    data = ocpp_request_data([contract.leaf, *contract.sub_cas, p.cert("mo-root")])
    return [CertificateStatusRequestInfo.from_ocsp_request_data(OCSPRequestData.from_ocpp(d)) for d in data]


def test_ocpp21_is_agreed_and_2_0_1_still_works(tmp_path: Path) -> None:
    lines: list[str] = []

    async def main() -> None:
        csms = _csms20(tmp_path, lines)
        await csms.start("127.0.0.1", 0)
        try:
            b21 = await _backend(csms)
            assert b21.ocpp_version == "ocpp2.1" and b21.is_21 and isinstance(b21, CertificateChainStatusBackend)
            await b21.aclose()
            b201 = OCPP21Backend(csms.url("CP-OLD"), timeouts=FAST, ocpp_version="2.0.1")
            assert await b201.start(wait=5.0) and b201.ocpp_version == "ocpp2.0.1"
            assert not b201.chain_status_available
            with pytest.raises(OCPP21Required):
                await b201.get_certificate_chain_status(_requests(_contract20(csms)))
            with pytest.raises(OCPP21Required):
                await b201.renew_secc_certificate(iso=20)
            await b201.aclose()
            # a CSMS that speaks 2.0.1 only: the 2.1 backend falls back to it
            old = make_csms(tmp_path / "old", lines, subprotocols=("ocpp2.0.1",))
            await old.start("127.0.0.1", 0)
            fallback = OCPP21Backend(old.url("CP-FALLBACK"), timeouts=FAST)
            try:
                assert await fallback.start(wait=5.0) and fallback.ocpp_version == "ocpp2.0.1"
            finally:
                await fallback.aclose()
                await old.aclose()
        finally:
            await csms.aclose()

    go(main())
    assert any("connected (ocpp2.1)" in ln for ln in lines) and any("connected (ocpp2.0.1)" in ln for ln in lines)
    with pytest.raises(ValueError):
        OCPP21Backend("ws://127.0.0.1:9/x", ocpp_version="1.6")


def test_get_certificate_chain_status_good_then_revoked(tmp_path: Path) -> None:
    lines: list[str] = []

    async def main() -> None:
        csms = _csms20(tmp_path, lines)
        async with _station(csms) as backend:
            contract = _contract20(csms)
            reqs = _requests(contract)
            assert [s.status for s in await backend.get_certificate_chain_status(reqs)] == ["Good", "Good", "Good"]
            hash_data = tuple(r.ocsp_request_data for r in reqs)
            ok = await backend.authorize_contract20(AuthorizeRequest(contract.emaid, None, hash_data))
            assert ok.accepted
            assert csms.revoke(contract.emaid) >= 1
            statuses = await backend.get_certificate_chain_status(reqs)
            assert [s.status for s in statuses] == ["Revoked", "Good", "Good"]
            assert all(s.next_update > _now() for s in statuses)
            n_authorize = sum(c.action == "Authorize" for c in csms.calls)
            refused = await backend.authorize_contract20(AuthorizeRequest(contract.emaid, None, hash_data))
            assert (refused.id_token_status, refused.certificate_status) == ("Blocked", "CertificateRevoked")
            # refused by GetCertificateChainStatus: no Authorize was sent
            assert sum(c.action == "Authorize" for c in csms.calls) == n_authorize
            # Authorize alone refuses it too
            plain = await backend.authorize(AuthorizeRequest(contract.emaid, None, hash_data))
            assert plain.certificate_status == "CertificateRevoked"
            with pytest.raises(ValueError):
                await backend.get_certificate_chain_status([])

    go(main())
    assert any("GetCertificateChainStatus" in ln and "Revoked, Good, Good" in ln for ln in lines)


def test_get_15118_ev_certificate_carries_the_20_fields(tmp_path: Path) -> None:
    """The -20 fields reach the CSMS on the wire (prioritizedEMAIDs despite the ocpp package's naming)."""
    lines: list[str] = []

    async def main() -> None:
        csms = _csms20(tmp_path, lines)
        async with _station(csms) as backend:
            req = Get15118EVCertificateRequest.from_exi(b"\x80\x00", "Install", "urn:iso:std:iso:15118:-20:CommonMessages",
                                                        maximum_contract_certificate_chains=2,
                                                        prioritized_emaids=["DEPLGC0000020X1", "DEPLGC0000020X2"])
            res = await backend.get_15118_ev_certificate(req)
            # not a decodable CertificateInstallationReq: refused, but in time and typed
            assert res.status in ("Accepted", "Failed")

    go(main())
    [call] = [c for c in csms_calls(lines) if "Get15118EVCertificate" in c]
    assert "maximumContractCertificateChains=2" in call and "prioritizedEMAIDs=DEPLGC0000020X1,DEPLGC0000020X2" in call
    assert "iso15118SchemaVersion=urn:iso:std:iso:15118:-20:CommonMessages" in call


def csms_calls(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ": " in ln]


def test_sign_certificate_v2g20_renews_the_20_secc_certificate(tmp_path: Path) -> None:
    lines: list[str] = []
    stored: list = []

    async def main() -> None:
        csms = _csms20(tmp_path, lines)
        async with _station(csms, on_secc_certificate=stored.append) as backend:
            renewed = await backend.renew_secc_certificate(iso=20)
            p = pki20()
            verify_chain(renewed.leaf, list(renewed.chain[1:]), store=TrustStore(p.store_roots()),
                         profile="iso20-secc", at=_now())
            assert isinstance(renewed.private_key, ec.EllipticCurvePrivateKey)
            assert renewed.private_key.curve.name == "secp521r1"
            assert renewed.chain[1:] == (p.cert("cpo-sub2"), p.cert("cpo-sub1")) and stored == [renewed]
            assert backend._certificate_type == "V2GCertificate"  # the -2 renewal is unchanged afterwards
            await _station_answered(csms, "CertificateSigned")
            assert [c.result for c in csms.calls if c.action == "CertificateSigned"] == ["Accepted"]

    go(main())
    assert any("SignCertificate" in ln and "V2G20Certificate" in ln and "Accepted" in ln for ln in lines)


def test_a_20_chain_signed_under_the_2_pki_is_rejected(tmp_path: Path) -> None:
    """Profile check before accepting: a V2G20Certificate from the -2 CPO Sub-CA fails iso20-secc."""
    from plugcharge.backends.csms21 import Station21Handlers  # noqa: F401 - the handler under test
    from plugcharge.backends.ocpp import CertificateRejected

    lines: list[str] = []

    async def main() -> None:
        csms = _csms20(tmp_path, lines)
        csms.pki20 = session_pki()  # the CSMS signs "V2G20Certificate" with the -2 CPO Sub-CA: wrong profile
        async with _station(csms) as backend:
            with pytest.raises(CertificateRejected):
                await backend.renew_secc_certificate(iso=20, private_key=ec.generate_private_key(ec.SECP521R1()))
            await _station_answered(csms, "CertificateSigned")

    go(main())
    assert any("CertificateSigned" in ln and "Rejected" in ln for ln in lines)


def test_csms_down_fails_fast_with_typed_errors(tmp_path: Path) -> None:
    async def main() -> None:
        backend = OCPP21Backend("ws://127.0.0.1:9/CP", timeouts=FAST)
        await backend.start(wait=1.0)
        try:
            req = Get15118EVCertificateRequest.from_exi(b"\x80", "Install", "urn:iso:std:iso:15118:-20:CommonMessages")
            with pytest.raises(CSMSUnavailable):
                await backend.get_15118_ev_certificate(req)
            with pytest.raises(CSMSUnavailable):
                await backend.authorize_contract20(AuthorizeRequest("DEPLGC0000020X1"))
        finally:
            await backend.aclose()

    go(main(), 20)


def test_the_csms_with_a_station_of_ocpp_v21_classes(tmp_path: Path) -> None:
    """A charging station built from the ``ocpp`` package's own v21 ChargePoint and classes."""
    import websockets
    from ocpp.routing import on
    from ocpp.v21 import ChargePoint, call, call_result

    lines: list[str] = []
    signed: list[str] = []

    class Station(ChargePoint):  # type: ignore[misc]
        @on("CertificateSigned")  # type: ignore[misc]
        async def on_signed(self, certificate_chain: str, certificate_type: str = "", **_):
            signed.append(certificate_type)
            return call_result.CertificateSigned(status="Accepted")

    async def main() -> None:
        csms = _csms20(tmp_path, lines)
        await csms.start("127.0.0.1", 0)
        contract = _contract20(csms)
        try:
            async with websockets.connect(csms.url("CP-V21"), subprotocols=["ocpp2.1"], proxy=None) as ws:
                assert ws.subprotocol == "ocpp2.1"
                cp = Station("CP-V21", ws)
                reader = asyncio.ensure_future(cp.start())
                try:
                    boot = await cp.call(call.BootNotification(
                        charging_station={"model": "m", "vendor_name": "v"}, reason="PowerUp"))
                    assert boot.status == "Accepted"
                    hashes = [{"certificate_hash_data": {"hash_algorithm": r.hash_algorithm.upper(),
                                                         "issuer_name_hash": r.issuer_name_hash,
                                                         "issuer_key_hash": r.issuer_key_hash,
                                                         "serial_number": r.serial_number},
                               "source": "OCSP", "urls": list(r.urls)} for r in _requests(contract)]
                    res = await cp.call(call.GetCertificateChainStatus(certificate_status_requests=hashes))
                    assert [s["status"] for s in res.certificate_status] == ["Good", "Good", "Good"]
                    auth = await cp.call(call.Authorize(
                        id_token={"id_token": contract.emaid, "type": "eMAID"},
                        iso_15118_certificate_hash_data=[h["certificate_hash_data"] | {"responder_url": h["urls"][0]}
                                                         for h in hashes]))
                    assert auth.id_token_info["status"] == "Accepted"
                    from cryptography.hazmat.primitives import hashes as H, serialization

                    key = ec.generate_private_key(ec.SECP521R1())
                    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
                        x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "CP-V21"),
                        x509.NameAttribute(x509.oid.NameOID.DOMAIN_COMPONENT, "CPO")])).sign(key, H.SHA512())
                    sign = await cp.call(call.SignCertificate(
                        csr=csr.public_bytes(serialization.Encoding.PEM).decode(), certificate_type="V2G20Certificate"))
                    assert sign.status == "Accepted"
                    for _ in range(100):
                        if signed:
                            break
                        await asyncio.sleep(0.05)
                finally:
                    reader.cancel()
        finally:
            await csms.aclose()

    go(main())
    assert signed == ["V2G20Certificate"]
    assert any("GetCertificateChainStatus" in ln and "Good, Good, Good" in ln for ln in lines)


# ------------------------------------------------------------------ whole -20 sessions through OCPP 2.1
def _demo(tmp_path: Path, **kw):
    lines: list[str] = []
    opts = {"loops": 2, "loop_interval": 0.05, "timeout": 30.0, "protocol": "iso20", "seed": 20, "csms": "", **kw}
    summary = run_demo(DemoOptions(data_dir=tmp_path / "data", codecs=exi.get_codec, **opts), lines.append)
    return summary, "\n".join(lines)


def test_iso20_demo_through_the_csms_activation_install_reuse_revoke(tmp_path: Path) -> None:
    from _pc_fixtures import real_codec_status

    if real_codec_status() is not None:
        pytest.skip(f"needs the compiled EXI codec: {real_codec_status()}")
    from plugcharge.backends.csms import activate
    from plugcharge.cli.demo import ensure_pki

    # not activated yet: no contract for the PCID, the EV charges by EIM in the same session
    s, text = _demo(tmp_path)
    assert s.completed and s.payment == "ExternalPayment" and not s.installed, text
    assert "connected (ocpp2.1)" in text and "over OCPP 2.1" in text
    assert any(isinstance(e, ContractInstallationFailed) and e.response_code == "WARNING_NoContractMatchingPCIDFound"
               for e in s.ev_events), text
    assert f"plugcharge csms activate {PCID}" in text
    # the driver activates Plug & Charge: the next charge installs a -20 contract through the CSMS
    data = tmp_path / "data"
    pki2, _ = ensure_pki(data / "pki", seed=20, iso=2, now=_now(), say=lambda *a: None)
    activate(data / "csms", pki2, PCID)
    s, text = _demo(tmp_path)
    assert s.completed and s.installed and s.payment == "Contract", text
    assert "Get15118EVCertificate action=Install iso15118SchemaVersion=urn:iso:std:iso:15118:-20:CommonMessages" in text
    assert "maximumContractCertificateChains=" in text
    assert "GetCertificateChainStatus" in text and "-> Good, Good, Good" in text
    assert "Authorize idToken=" in text and "iso15118CertificateHashData=3 entries" in text
    assert f"Authorize {s.emaid} (contract, 3 OCSP hash entries) -> Accepted" in text  # the operator's line
    emaid = s.emaid
    # the car's wallet and the eMSP's registry show the -20 contract
    code, out = _cli("wallet", "list", "--data-dir", str(data))
    assert code == 0 and emaid in out and " -20 " in out and "in use" in out, out
    code, out = _cli("csms", "list", "--data-dir", str(data))
    assert code == 0 and "ISO 15118-20" in out and emaid in out, out
    # second run: the contract is reused
    s, text = _demo(tmp_path)
    assert s.completed and not s.installed and s.payment == "Contract" and s.emaid == emaid, text
    assert "Get15118EVCertificate" not in text
    # revoked: GetCertificateChainStatus says so before Authorize, the EV falls back to EIM
    from plugcharge.backends.csms import revoke

    assert revoke(data / "csms", pki2, emaid) >= 1
    s, text = _demo(tmp_path)
    assert s.completed and s.payment == "ExternalPayment", text
    assert "GetCertificateChainStatus" in text and "-> Revoked" in text
    assert f"Authorize idToken={emaid}" not in text
    assert "WARNING_CertificateRevoked" in text or "refused" in text


def _cli(*argv: str) -> tuple[int, str]:
    from plugcharge.cli import main

    out: list[str] = []
    code = main(list(argv), out=out.append, err=out.append)
    return code, "\n".join(out)


def test_iso20_newest_activation_wins(tmp_path: Path) -> None:
    """A second activation with another eMAID: the car's next installation gets the newest contract."""
    from _pc_fixtures import real_codec_status

    if real_codec_status() is not None:
        pytest.skip(f"needs the compiled EXI codec: {real_codec_status()}")
    from plugcharge.backends.csms import activate
    from plugcharge.cli.demo import ensure_pki
    from plugcharge.pnc.wallet import ContractWallet

    data = tmp_path / "data"
    pki2, _ = ensure_pki(data / "pki", seed=20, iso=2, now=_now(), say=lambda *a: None)
    activate(data / "csms", pki2, PCID, "DEPLGC0000020A1")
    s, text = _demo(tmp_path)
    assert s.installed and s.emaid == "DEPLGC0000020A1", text
    activate(data / "csms", pki2, PCID, "DEPLGC0000020B2")
    ContractWallet(data / "wallet").wipe()  # the car installs again (e.g. a new owner's account)
    s, text = _demo(tmp_path)
    assert s.installed and s.payment == "Contract" and s.emaid == "DEPLGC0000020B2", text


def test_iso20_demo_with_the_csms_down_falls_back_to_eim(tmp_path: Path) -> None:
    from _pc_fixtures import real_codec_status

    if real_codec_status() is not None:
        pytest.skip(f"needs the compiled EXI codec: {real_codec_status()}")
    s, text = _demo(tmp_path, csms="ws://127.0.0.1:9/")
    assert s.completed and s.exit_code == 0 and s.payment == "ExternalPayment", text
    assert "not reachable" in text
    assert any(isinstance(e, ContractInstallationFailed) and e.response_code == "WARNING_NoCertificateAvailable"
               for e in s.ev_events), text
    assert s.sessions == 1  # EIM within the same -20 session


def test_iso20_demo_with_a_failing_csms_falls_back_to_eim(tmp_path: Path) -> None:
    from _pc_fixtures import real_codec_status

    if real_codec_status() is not None:
        pytest.skip(f"needs the compiled EXI codec: {real_codec_status()}")
    s, text = _demo(tmp_path, fail_installation=True)
    assert s.completed and s.payment == "ExternalPayment", text
    assert "CALLERROR InternalError" in text
    assert RFID not in text  # the demo's own card, not the fixtures'


def test_charger_ocpp_version_option() -> None:
    from plugcharge.cli import build_parser

    p = build_parser()
    assert p.parse_args(["charger", "--interface", "eth1"]).ocpp_version == "auto"
    assert p.parse_args(["charger", "--interface", "eth1", "--ocpp-version", "2.0.1"]).ocpp_version == "2.0.1"
    with pytest.raises(SystemExit):
        p.parse_args(["charger", "--interface", "eth1", "--ocpp-version", "1.6"])
