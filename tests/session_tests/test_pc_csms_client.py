"""The test CSMS against an independent OCPP 2.0.1 client: the ``ocpp`` package's own ChargePoint
class (v201) on a plain ``websockets`` connection, sending the calls a charging station sends, so
the CSMS is not only checked against our own OCPPBackend."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest

from _ocpp_fixtures import RFID, go, make_csms, need_real_codec
from _pc_fixtures import session_pki, trust_store

from ocpp.exceptions import OCPPError  # noqa: E402
from ocpp.routing import on  # noqa: E402
from ocpp.v201 import ChargePoint, call, call_result  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402


class Station(ChargePoint):
    """A bare charging station made only of the ocpp package; records CertificateSigned."""

    signed: "asyncio.Queue[str]"

    @on("CertificateSigned")
    async def on_certificate_signed(self, certificate_chain: str, certificate_type: str = "", **_: Any) -> Any:
        self.signed.put_nowait(certificate_chain)
        return call_result.CertificateSigned(status="Accepted")


async def _with_station(tmp_path: Path, body: Any, lines: list | None = None) -> Any:
    csms = make_csms(tmp_path, lines)
    await csms.start("127.0.0.1", 0)
    try:
        async with connect(csms.url("INDEP-1"), subprotocols=["ocpp2.0.1"], proxy=None) as ws:
            station = Station("INDEP-1", ws)
            station.signed = asyncio.Queue()
            reader = asyncio.ensure_future(station.start())
            try:
                return await body(csms, station)
            finally:
                reader.cancel()
    finally:
        await csms.aclose()


def _hash_data(contract: Any) -> list[dict[str, str]]:
    from pki.ocsp import ocpp_request_data

    return ocpp_request_data([contract.leaf, *contract.sub_cas, session_pki().cert("mo-root")])


def test_boot_heartbeat_status_and_authorize(tmp_path: Path) -> None:
    lines: list[str] = []

    async def body(csms: Any, station: Station) -> None:
        boot = await station.call(call.BootNotification(charging_station={"model": "M", "vendor_name": "V"},
                                                        reason="PowerUp"), suppress=False)
        assert boot.status == "Accepted" and boot.interval > 0
        dt.datetime.fromisoformat(boot.current_time.replace("Z", "+00:00"))
        assert (await station.call(call.Heartbeat(), suppress=False)).current_time
        await station.call(call.StatusNotification(timestamp="2026-01-01T00:00:00Z", connector_status="Available",
                                                   evse_id=1, connector_id=1), suppress=False)
        contract = csms.activate(session_pki().pcid)
        res = await station.call(call.Authorize(id_token={"id_token": contract.emaid, "type": "eMAID"},
                                                iso15118_certificate_hash_data=[
                                                    {"hash_algorithm": d["hashAlgorithm"],
                                                     "issuer_name_hash": d["issuerNameHash"],
                                                     "issuer_key_hash": d["issuerKeyHash"],
                                                     "serial_number": d["serialNumber"],
                                                     "responder_url": d["responderURL"]}
                                                    for d in _hash_data(contract)]), suppress=False)
        assert res.id_token_info["status"] == "Accepted" and res.certificate_status == "Accepted"
        res = await station.call(call.Authorize(id_token={"id_token": RFID, "type": "ISO14443"}), suppress=False)
        assert res.id_token_info["status"] == "Accepted" and res.certificate_status is None
        res = await station.call(call.Authorize(id_token={"id_token": "nobody", "type": "ISO14443"}), suppress=False)
        assert res.id_token_info["status"] == "Unknown"
        # the contract chain as PEM instead of hash data: the CSMS validates it itself
        from plugcharge.backends.base import pem_chain

        res = await station.call(call.Authorize(id_token={"id_token": contract.emaid, "type": "eMAID"},
                                                certificate=pem_chain([contract.leaf, *contract.sub_cas])),
                                 suppress=False)
        assert res.certificate_status == "Accepted"
        res = await station.call(call.Authorize(id_token={"id_token": contract.emaid, "type": "eMAID"},
                                                certificate=pem_chain([session_pki().cert("secc-leaf")])),
                                 suppress=False)
        assert res.certificate_status == "CertChainError"

    go(_with_station(tmp_path, body, lines))
    assert sum(1 for ln in lines if "Authorize" in ln) == 5
    assert any("iso15118CertificateHashData=" in ln for ln in lines)


def test_get_15118_ev_certificate_gives_a_contract_the_ev_can_use(tmp_path: Path) -> None:
    need_real_codec()
    import exi
    from test_pc_backend import install_req

    from pki.keytransport import decrypt_contract_key
    from plugcharge.core.codec import body_of
    from plugcharge.pnc.certs import chain_certs
    from plugcharge.pnc.signatures import verify_message

    p = session_pki()

    async def body(csms: Any, station: Station) -> None:
        csms.activate(p.pcid)
        exi_req = base64.b64encode(install_req(p)).decode()
        res = await station.call(call.Get15118EVCertificate(iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                                                            action="Install", exi_request=exi_req), suppress=False)
        assert res.status == "Accepted"
        msg = exi.get_codec("urn:iso:15118:2:2013:MsgDef").decode(base64.b64decode(res.exi_response))
        name, b, _ = body_of(msg)
        assert name == "CertificateInstallationRes" and b["ResponseCode"] == "OK"
        cps_leaf, _ = chain_certs(b["SAProvisioningCertificateChain"])
        verify_message(msg, cps_leaf)  # signed by the CPS
        leaf, subs = chain_certs(b["ContractSignatureCertChain"])
        from pki.verify import verify_chain

        verified = verify_chain(leaf, subs, store=trust_store(), profile="iso2-contract",
                                at=dt.datetime.now(dt.timezone.utc))
        key = decrypt_contract_key(bytes(b["ContractSignatureEncryptedPrivateKey"]["value"]),
                                   bytes(b["DHpublickey"]["value"]), p.key("oem-provisioning-leaf"), leaf, iso=2)
        from cryptography.hazmat.primitives import serialization
        from cryptography import x509

        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == \
            x509.load_der_x509_certificate(leaf).public_key().public_bytes(serialization.Encoding.DER, spki)
        assert verified.emaid == str(b["eMAID"]["value"])
        # an unsupported schema is a clean Failed
        res = await station.call(call.Get15118EVCertificate(iso15118_schema_version="urn:iso:std:iso:15118:-20:CommonMessages",
                                                            action="Install", exi_request=exi_req), suppress=False)
        assert res.status == "Failed" and res.exi_response == ""

    go(_with_station(tmp_path, body))


def test_certificate_status_sign_certificate_and_transactions(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pki.ocsp import check_ocsp_response
    from pki.verify import verify_chain

    async def body(csms: Any, station: Station) -> None:
        contract = csms.activate(session_pki().pcid)
        d = _hash_data(contract)[0]
        data = {"hash_algorithm": d["hashAlgorithm"], "issuer_name_hash": d["issuerNameHash"],
                "issuer_key_hash": d["issuerKeyHash"], "serial_number": d["serialNumber"],
                "responder_url": d["responderURL"]}
        csms.revoke(contract.emaid)
        res = await station.call(call.GetCertificateStatus(ocsp_request_data=data), suppress=False)
        assert res.status == "Accepted"
        result = check_ocsp_response(base64.b64decode(res.ocsp_result), contract.leaf, contract.sub_cas[0],
                                     at=dt.datetime.now(dt.timezone.utc))
        assert not result.good and result.status.value == "revoked"

        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
            x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "INDEP-1"),
            x509.NameAttribute(x509.oid.NameOID.DOMAIN_COMPONENT, "CPO")])).sign(key, hashes.SHA256())
        res = await station.call(call.SignCertificate(csr=csr.public_bytes(serialization.Encoding.PEM).decode(),
                                                      certificate_type="V2GCertificate"), suppress=False)
        assert res.status == "Accepted"
        chain = x509.load_pem_x509_certificates((await asyncio.wait_for(station.signed.get(), 10)).encode())
        ders = [c.public_bytes(serialization.Encoding.DER) for c in chain]
        verify_chain(ders[0], ders[1:], store=trust_store(), profile="iso2-secc", at=dt.datetime.now(dt.timezone.utc))
        assert chain[0].subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == "INDEP-1"
        res = await station.call(call.SignCertificate(csr="not a CSR", certificate_type="V2GCertificate"),
                                 suppress=False)
        assert res.status == "Rejected"

        tx = str(uuid.uuid4())
        for seq, (kind, state) in enumerate([("Started", "EVConnected"), ("Ended", "Idle")]):
            await station.call(call.TransactionEvent(
                event_type=kind, timestamp="2026-01-01T00:00:00Z", trigger_reason="Authorized", seq_no=seq,
                transaction_info={"transaction_id": tx, "charging_state": state},
                id_token={"id_token": RFID, "type": "ISO14443"},
                meter_value=[{"timestamp": "2026-01-01T00:00:00Z",
                              "sampled_value": [{"value": 1.5 * seq, "measurand": "Energy.Active.Import.Register"}]}]),
                suppress=False)
        assert [e["eventType"] for e in csms.transactions[tx]] == ["Started", "Ended"]

    go(_with_station(tmp_path, body))


def test_malformed_calls_get_callerrors_and_the_connection_survives(tmp_path: Path) -> None:
    async def body(csms: Any, station: Station) -> None:
        # schema violations are answered with CALLERRORs by the CSMS, not a crash or a close
        await station._send('[2,"u1","Authorize",{"idToken":{"idToken":"X"}}]')  # type missing
        await station._send('[2,"u2","NoSuchAction",{}]')
        await station._send('[2,"u3","Get15118EVCertificate",{"iso15118SchemaVersion":"x","action":"Explode",'
                            '"exiRequest":"AA=="}]')
        errors = []
        for _ in range(3):
            msg = await asyncio.wait_for(station._response_queue.get(), 5)
            errors.append((msg.unique_id, msg.error_code))
        assert {u for u, _ in errors} == {"u1", "u2", "u3"}
        assert all(code in ("FormationViolation", "FormatViolation", "OccurrenceConstraintViolation",
                            "PropertyConstraintViolation", "TypeConstraintViolation", "NotImplemented",
                            "NotSupported", "ProtocolError") for _, code in errors)
        res = await station.call(call.Heartbeat(), suppress=False)
        assert res.current_time
        csms.failures["Heartbeat"] = "InternalError"
        with pytest.raises(OCPPError):
            await station.call(call.Heartbeat(), suppress=False)

    go(_with_station(tmp_path, body))
