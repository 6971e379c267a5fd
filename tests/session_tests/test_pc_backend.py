"""Backend interface (OCPP 2.0.1 shape) and the simulated CPS + eMSP."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from _pc_testcerts import FragmentFallbackCodec
from plugcharge.backends.base import (
    AsyncBackend,
    AuthorizeRequest,
    AuthorizeResponse,
    Backend,
    Get15118EVCertificateRequest,
    Get15118EVCertificateResponse,
    OCSPRequestData,
    SyncBackendAdapter,
    as_async,
    iso_response_code,
    pem_chain,
)
from plugcharge.backends.simulated import SimulatedBackend

pki_issue = pytest.importorskip("pki.issue")
exi = pytest.importorskip("exi")
from plugcharge.core.codec import body_of, v2g_message  # noqa: E402
from plugcharge.pnc.certs import cert_chain, chain_certs  # noqa: E402
from plugcharge.iso2.messages import root_ids  # noqa: E402
from plugcharge.pnc.signatures import sign_message, verify_message  # noqa: E402

NS = "urn:iso:15118:2:2013:MsgDef"
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
PCID = "PLUGCHARGEPCID0001"
EMAID = "DEPLGC000000011"
SESSION = bytes.fromhex("4A8F1E2293B05C6D")


@pytest.fixture(scope="module")
def pki() -> Any:
    return pki_issue.issue_test_pki(2, seed=7, now=NOW - dt.timedelta(days=1))


@pytest.fixture
def backend(pki: Any) -> SimulatedBackend:
    b = SimulatedBackend(pki, clock=lambda: NOW)
    b.register_pcid(PCID, EMAID)
    return b


def codec() -> Any:
    return exi.get_codec(NS)


def install_req(pki: Any, *, key: Any = None, oem: bytes | None = None) -> bytes:
    body = {"Id": "ID1", "OEMProvisioningCert": oem or pki.cert("oem-provisioning-leaf"),
            "ListOfRootCertificateIDs": root_ids([("CN=V2GRootCA", 1)])}
    msg = v2g_message(SESSION, "CertificateInstallationReq", body)
    sign_message(msg, key or pki.key("oem-provisioning-leaf"))
    return codec().encode(msg)


def accepted(res: Get15118EVCertificateResponse) -> None:
    """Assert Accepted; xfail on the EXI codec's known fragment-grammar gap (not this module's)."""
    if res.status == "Failed" and "fragment grammar" in (res.status_info or ""):
        pytest.xfail(f"exi codec cannot encode a signed fragment yet: {res.status_info}")
    assert res.status == "Accepted", res.status_info


def decode_and_check(pki: Any, exi_res: bytes, receiver_key: Any, name: str = "CertificateInstallationRes",
                     codecs: Any = None) -> tuple[bytes, list[bytes], Any, str]:
    from pki.keytransport import decrypt_contract_key

    msg = codec().decode(exi_res)
    got, body, header = body_of(msg)
    assert got == name and body["ResponseCode"] == "OK" and header["SessionID"] == SESSION
    cps_leaf, _ = chain_certs(body["SAProvisioningCertificateChain"])
    verify_message(msg, x509.load_der_x509_certificate(cps_leaf).public_key(), codecs=codecs)
    leaf, subs = chain_certs(body["ContractSignatureCertChain"])
    key = decrypt_contract_key(body["ContractSignatureEncryptedPrivateKey"]["value"], body["DHpublickey"]["value"],
                               receiver_key, leaf, iso=2)
    return leaf, subs, key, body["eMAID"]["value"]


# ------------------------------------------------------------------------------------------
def test_ocpp_shapes() -> None:
    req = Get15118EVCertificateRequest.from_exi(b"\x80\x98", "Install")
    assert req.to_ocpp() == {"iso15118SchemaVersion": NS, "action": "Install", "exiRequest": "gJg="}
    with pytest.raises(ValueError):
        Get15118EVCertificateRequest(NS, "Delete", "")
    with pytest.raises(ValueError):
        Get15118EVCertificateResponse("Maybe")
    assert Get15118EVCertificateResponse("Accepted", "gJg=").exi == b"\x80\x98"
    d = {"hashAlgorithm": "SHA256", "issuerNameHash": "aa", "issuerKeyHash": "bb", "serialNumber": "0f",
         "responderURL": "http://ocsp"}
    ocsp = OCSPRequestData.from_ocpp(d)
    assert ocsp.to_ocpp() == d and ocsp.serial_number == "0f"
    with pytest.raises(ValueError):
        OCSPRequestData.from_ocpp({"hashAlgorithm": "SHA256"})
    a = AuthorizeRequest(EMAID, "PEM", (ocsp,))
    assert a.to_ocpp()["idToken"] == {"idToken": EMAID, "type": "eMAID"}
    assert a.to_ocpp()["iso15118CertificateHashData"] == [d]
    with pytest.raises(ValueError):
        AuthorizeResponse("Fine")
    with pytest.raises(ValueError):
        AuthorizeResponse("Accepted", "Whatever")
    assert AuthorizeResponse("Accepted", "Accepted").to_ocpp() == {"idTokenInfo": {"status": "Accepted"},
                                                                   "certificateStatus": "Accepted"}


@pytest.mark.parametrize("status, code", [
    (AuthorizeResponse("Accepted", "Accepted"), "OK"), (AuthorizeResponse("Accepted"), "OK"),
    (AuthorizeResponse("Blocked", "CertificateRevoked"), "FAILED_CertificateRevoked"),
    (AuthorizeResponse("Invalid", "ContractCancelled"), "FAILED_ContractCanceled"),
    (AuthorizeResponse("Unknown"), "FAILED"),
])
def test_iso_response_code(status: AuthorizeResponse, code: str) -> None:
    assert iso_response_code(status) == code
    assert status.accepted == (code == "OK")


def test_simulated_backend_satisfies_the_protocols(backend: SimulatedBackend) -> None:
    assert isinstance(backend, Backend)
    adapted = as_async(backend)
    assert isinstance(adapted, AsyncBackend) and isinstance(adapted, SyncBackendAdapter)
    assert as_async(adapted) is adapted


def test_issue_contract_for_known_pcid_only(backend: SimulatedBackend, pki: Any) -> None:
    c = backend.issue_contract(PCID)
    cert = x509.load_der_x509_certificate(c.leaf)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == EMAID
    assert c.sub_cas == pki.chain("iso2-contract").intermediates
    assert "private" not in repr(c).lower() or "private_key" not in repr(c)
    with pytest.raises(KeyError):
        backend.issue_contract("UNKNOWNPCID0000000")
    with pytest.raises(ValueError):
        backend.register_pcid(PCID, "not-an-emaid")


def test_authorize_valid_revoked_cancelled_and_unknown(backend: SimulatedBackend, pki: Any) -> None:
    c = backend.issue_contract(PCID)
    pem = pem_chain([c.leaf, *c.sub_cas])
    assert backend.authorize(AuthorizeRequest(EMAID, pem)) == AuthorizeResponse("Accepted", "Accepted")
    # eMAID spelled with separators, lower case
    assert backend.authorize(AuthorizeRequest("de-plg-c00000001-1".upper(), pem)).accepted
    # id token does not match the certificate
    assert backend.authorize(AuthorizeRequest("DEPLGC000000099", pem)).certificate_status == "CertChainError"
    # missing Sub-CAs
    assert backend.authorize(AuthorizeRequest(EMAID, pem_chain([c.leaf]))).certificate_status == "CertChainError"
    assert backend.authorize(AuthorizeRequest(EMAID, "garbage")).certificate_status == "CertChainError"
    # revocation
    assert backend.revoke(EMAID) >= 1
    assert backend.authorize(AuthorizeRequest(EMAID, pem)) == AuthorizeResponse("Blocked", "CertificateRevoked")
    # OCSP-data-only path sees the revocation too
    ocsp = OCSPRequestData("SHA256", "00", "00", format(c.serial, "x"), "http://ocsp")
    assert backend.authorize(AuthorizeRequest(EMAID, None, (ocsp,))).certificate_status == "CertificateRevoked"
    fresh = backend.issue_contract(PCID)
    fresh_pem = pem_chain([fresh.leaf, *fresh.sub_cas])
    assert backend.authorize(AuthorizeRequest(EMAID, fresh_pem)).accepted
    backend.cancel_contract(EMAID)
    assert backend.authorize(AuthorizeRequest(EMAID, fresh_pem)) == AuthorizeResponse("Invalid", "ContractCancelled")
    # an eMAID nobody issued, with a valid chain from the same MO
    stranger = pki.issue_contract("DEPLGC000000055", now=NOW)
    r = backend.authorize(AuthorizeRequest("DEPLGC000000055", pem_chain([stranger.der, *c.sub_cas])))
    assert r.id_token_status == "Unknown" and not r.accepted


def test_authorize_expired_chain(pki: Any) -> None:
    later = SimulatedBackend(pki, clock=lambda: NOW + dt.timedelta(days=4000))
    later.register_pcid(PCID, EMAID)
    c = later.issue_contract(PCID, now=NOW)
    r = later.authorize(AuthorizeRequest(EMAID, pem_chain([c.leaf, *c.sub_cas])))
    assert r == AuthorizeResponse("Expired", "CertificateExpired")
    assert iso_response_code(r) == "FAILED_CertificateExpired"


def test_authorize_eim_tokens(backend: SimulatedBackend) -> None:
    backend.register_id_token("RFID-1234")
    assert backend.authorize(AuthorizeRequest("RFID-1234", id_token_type="ISO14443")).accepted
    assert backend.authorize(AuthorizeRequest("RFID-9999", id_token_type="ISO14443")).id_token_status == "Unknown"


def test_installation_round_trip_into_wallet(backend: SimulatedBackend, pki: Any, tmp_path: Path) -> None:
    from plugcharge.pnc.wallet import ContractWallet

    res = backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(install_req(pki)))
    accepted(res)
    leaf, subs, key, emaid = decode_and_check(pki, res.exi, pki.key("oem-provisioning-leaf"))
    assert emaid == EMAID and leaf == backend.issued[-1].leaf
    wallet = ContractWallet(tmp_path, enabled_default=True)
    info = wallet.install(leaf, subs, key, emaid=emaid)
    assert wallet.usable_contract(NOW).info == info  # type: ignore[union-attr]
    # and the installed chain authorises
    assert backend.authorize(AuthorizeRequest(emaid, pem_chain([leaf, *subs]))).accepted


def test_installation_refusals(backend: SimulatedBackend, pki: Any) -> None:
    def status(exi_bytes: bytes, action: str = "Install") -> Get15118EVCertificateResponse:
        return backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(exi_bytes, action))

    # signed with the wrong key
    r = status(install_req(pki, key=pki.key("contract-leaf")))
    assert r.status == "Failed" and "signature" in (r.status_info or "") and r.exi_response == ""
    # unknown PCID (valid OEM certificate for another vehicle)
    other = pki.issue_oem_provisioning("OTHERVEHICLEPCID01", now=NOW)
    r = status(install_req(pki, key=other.key, oem=other.der))
    assert r.status == "Failed" and "unknown PCID" in (r.status_info or "")
    # not an OEM provisioning certificate
    r = status(install_req(pki, key=pki.key("secc-leaf"), oem=pki.cert("secc-leaf")))
    assert r.status == "Failed" and "OEM provisioning certificate rejected" in (r.status_info or "")
    # garbage and wrong message
    assert status(b"\x00\x01garbage").status == "Failed"
    assert backend.get_15118_ev_certificate(Get15118EVCertificateRequest(NS, "Install", "!!!")).status == "Failed"
    assert status(install_req(pki), "Update").status == "Failed"
    assert backend.get_15118_ev_certificate(
        Get15118EVCertificateRequest("urn:iso:std:iso:15118:-20:CommonMessages", "Install",
                                     base64.b64encode(install_req(pki)).decode())).status == "Failed"
    # injected failure for the demo's fallback path
    backend.fail_installations = "CPS unreachable"
    r = status(install_req(pki))
    assert (r.status, r.status_info) == ("Failed", "CPS unreachable")
    assert len(backend.issued) == 0


def test_update_round_trip(pki: Any) -> None:
    backend = SimulatedBackend(pki, clock=lambda: NOW, codecs=FragmentFallbackCodec)  # codec gap, see helper
    backend.register_pcid(PCID, EMAID)
    old = backend.issue_contract(PCID)
    body = {"Id": "ID1", "ContractSignatureCertChain": cert_chain(old.leaf, old.sub_cas),
            "eMAID": EMAID, "ListOfRootCertificateIDs": root_ids([("CN=MORootCA", 1)])}
    msg = v2g_message(SESSION, "CertificateUpdateReq", body)
    sign_message(msg, old.private_key)
    res = backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(codec().encode(msg), "Update"))
    accepted(res)
    leaf, _, key, emaid = decode_and_check(pki, res.exi, old.private_key, "CertificateUpdateRes", FragmentFallbackCodec)
    assert emaid == EMAID and leaf != old.leaf
    # a revoked old contract cannot be renewed
    backend.revoke_serial(x509.load_der_x509_certificate(leaf).serial_number)
    new = backend.issued[-1]
    msg2 = v2g_message(SESSION, "CertificateUpdateReq", {**body, "ContractSignatureCertChain": cert_chain(new.leaf, new.sub_cas)})
    sign_message(msg2, key)
    r2 = backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(codec().encode(msg2), "Update"))
    assert r2.status == "Failed" and "revoked" in (r2.status_info or "")


def test_custom_response_builder(pki: Any) -> None:
    seen = []

    def builder(req: Any, action: str, contract: Any, receiver: Any) -> bytes:
        seen.append((action, contract.emaid))
        return b"\x80\x98custom"

    b = SimulatedBackend(pki, clock=lambda: NOW, response_builder=builder)
    b.register_pcid(PCID, EMAID)
    r = b.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(install_req(pki)))
    assert r.exi == b"\x80\x98custom" and seen == [("Install", EMAID)]


def test_async_adapter_runs_sync_backend(pki: Any) -> None:
    backend = SimulatedBackend(pki, clock=lambda: NOW, codecs=FragmentFallbackCodec)
    backend.register_pcid(PCID, EMAID)

    async def main() -> tuple[Get15118EVCertificateResponse, AuthorizeResponse, AuthorizeResponse]:
        r1 = await as_async(backend).get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(install_req(pki)))
        c = backend.issue_contract(PCID)
        req = AuthorizeRequest(EMAID, pem_chain([c.leaf, *c.sub_cas]))
        r2 = await as_async(backend, in_thread=False).authorize(req)
        r3 = await as_async(backend).authorize(req)
        return r1, r2, r3

    r1, r2, r3 = asyncio.run(main())
    assert r1.status == "Accepted" and r2.accepted and r3 == r2


def test_installation_round_trip_with_fragment_fallback(pki: Any, tmp_path: Path) -> None:
    from pki.keytransport import decrypt_contract_key

    from plugcharge.pnc.wallet import ContractWallet

    backend = SimulatedBackend(pki, clock=lambda: NOW, codecs=FragmentFallbackCodec)
    backend.register_pcid(PCID, EMAID)
    res = backend.get_15118_ev_certificate(Get15118EVCertificateRequest.from_exi(install_req(pki)))
    assert res.status == "Accepted", res.status_info
    msg = codec().decode(res.exi)
    name, body, header = body_of(msg)
    assert name == "CertificateInstallationRes" and header["SessionID"] == SESSION
    assert [r["URI"] for r in header["Signature"]["SignedInfo"]["Reference"]] == ["#id1", "#id2", "#id3", "#id4"]
    cps_leaf, cps_subs = chain_certs(body["SAProvisioningCertificateChain"])
    assert cps_leaf == pki.cert("cps-leaf")
    verify_message(msg, x509.load_der_x509_certificate(cps_leaf).public_key(), codecs=FragmentFallbackCodec)
    leaf, subs = chain_certs(body["ContractSignatureCertChain"])
    key = decrypt_contract_key(body["ContractSignatureEncryptedPrivateKey"]["value"], body["DHpublickey"]["value"],
                               pki.key("oem-provisioning-leaf"), leaf, iso=2)
    assert len(body["ContractSignatureEncryptedPrivateKey"]["value"]) == 48
    wallet = ContractWallet(tmp_path, enabled_default=True)
    info = wallet.install(leaf, subs, key, emaid=body["eMAID"]["value"])
    assert info.emaid == EMAID and wallet.usable_contract(NOW) is not None
    # tampering with the encrypted key breaks the CPS signature
    body["ContractSignatureEncryptedPrivateKey"]["value"] = bytes(48)
    from plugcharge.core.errors import SignatureError
    with pytest.raises(SignatureError):
        verify_message(msg, x509.load_der_x509_certificate(cps_leaf).public_key(), codecs=FragmentFallbackCodec)


def test_authorize_with_ocsp_request_data_from_pki(backend: SimulatedBackend, pki: Any) -> None:
    ocsp = pytest.importorskip("pki.ocsp")
    c = backend.issue_contract(PCID)
    data = tuple(OCSPRequestData.from_ocpp(d)
                 for d in ocsp.ocpp_request_data([c.leaf, *c.sub_cas, pki.cert("mo-root")]))
    assert data and data[0].serial_number == format(c.serial, "x")
    assert backend.authorize(AuthorizeRequest(EMAID, None, data)) == AuthorizeResponse("Accepted", "Accepted")
    backend.revoke(EMAID)
    assert backend.authorize(AuthorizeRequest(EMAID, None, data)) == AuthorizeResponse("Blocked", "CertificateRevoked")
    assert backend.authorize(AuthorizeRequest("DEPLGC000000077", None, data)).id_token_status == "Unknown"
