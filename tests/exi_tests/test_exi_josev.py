"""``exi.josev.JosevCodec``: the IEXICodec drop-in for the ``iso15118`` package.

Without that package: the JSON-text interface against the committed golden vectors (both ways,
documents and the fragments the package signs), error types, and that importing exi.josev does
not pull iso15118 in. With it (marker ``interop``, skipped when ``iso15118`` is not importable;
it pins cryptography 44, so run it from a separate venv): the package's own ``EXI().to_exi`` /
``from_exi`` and ``create_signature`` / ``verify_signature`` on its pydantic messages, with
``EXI().set_exi_codec(JosevCodec())`` and no Java.
"""
from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import tempfile
import sys
from pathlib import Path
from typing import Any

import pytest

import exi
from exi.josev import JosevCodec, is_fragment_root

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
ISO2 = "urn:iso:15118:2:2013:MsgDef"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"


def _golden_params() -> list[Any]:
    out = []
    known = set()
    kf = GOLDEN / "known_failures.json"
    if kf.is_file():
        known = {e["seed"] for e in json.loads(kf.read_text(encoding="utf-8"))}
    for f in sorted(GOLDEN.glob("golden_*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        n = 0
        for v in doc["vectors"]:
            if v["seed"] in known:
                continue  # the codec's known failures are tracked by test_exi_golden
            root = next(iter(v["message"]))
            if v["kind"] == "exiFragment" and not is_fragment_root(doc["namespace"], root, exi.get_codec(doc["namespace"])):
                continue  # the package routes this root as a document (ISO-20 message roots)
            # Routing by root element as the package does: ISO-2 fragments are JSON roots
            # other than V2G_Message; every xmldsig root is a fragment.
            n += 1
            if n > 6:
                break
            out.append(pytest.param(doc["namespace"], v, doc.get("grammars", "iso15118-jar"),
                                    id=f"{f.stem}-{v['kind']}-{v['message_type']}-{n}"))
    return out


def test_josev_codec_runs_the_jar_grammars() -> None:
    """The drop-in writes what the jar writes: a list at its maxOccurs ends as the jar ends it."""
    msg = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"PaymentServiceSelectionReq": {
        "SelectedPaymentOption": "Contract",
        "SelectedServiceList": {"SelectedService": [{"ServiceID": i} for i in range(16)]}}}}}
    text = json.dumps(msg)
    jar = exi.get_codec(ISO2, grammars="iso15118-jar")
    spec = exi.get_codec(ISO2)
    native = json.loads(text)
    native["V2G_Message"]["Header"]["SessionID"] = b"\x01\x02"
    assert JosevCodec().encode(text, ISO2) == jar.encode(native) != spec.encode(native)
    assert JosevCodec(grammars="exi").encode(text, ISO2) == spec.encode(native)
    assert "iso15118-jar" in JosevCodec().get_version()
    with pytest.raises(ValueError, match="unknown grammars"):
        JosevCodec(grammars="strict")
    with pytest.raises(ValueError, match="unknown grammars"):
        exi.get_codec(ISO2, grammars="strict")


@pytest.mark.parametrize("namespace,vector,grammars", _golden_params())
def test_josev_codec_golden_both_ways(namespace: str, vector: dict[str, Any], grammars: str) -> None:
    codec = JosevCodec() if grammars == "iso15118-jar" else JosevCodec(grammars=grammars)
    root = next(iter(vector["message"]))
    if vector["kind"] == "exiFragment":
        assert root != "V2G_Message"
    data = codec.encode(json.dumps(vector["message"]), namespace)
    assert isinstance(data, bytes)
    assert data.hex() == vector["exi_hex"]
    if vector["kind"] != "exiFragment":  # the package never decodes ISO-2 fragments
        text = codec.decode(bytes.fromhex(vector["exi_hex"]), namespace)
        assert isinstance(text, str)
        assert json.loads(text) == vector["message"]


def test_josev_codec_shared_vectors(vectors_dir: Path) -> None:
    codec = JosevCodec()
    n = 0
    for f in sorted(vectors_dir.glob("*.json")):
        v = json.loads(f.read_text(encoding="utf-8"))
        if v["namespace"] == ISO2 and v["kind"].startswith("EXI fragment") and "SignedInfo" in v["message"]:
            continue  # the full ISO-2 fragment grammar for SignedInfo: the package uses xmldsig
        assert codec.encode(json.dumps(v["message"]), v["namespace"]).hex() == v["exi_hex"], f.name
        if v["kind"].startswith("EXI document") or v["namespace"] == XMLDSIG:
            assert json.loads(codec.decode(bytes.fromhex(v["exi_hex"]), v["namespace"])) == v["message"], f.name
        n += 1
    assert n >= 20


def test_josev_codec_errors() -> None:
    codec = JosevCodec()
    with pytest.raises(ValueError):
        codec.encode("{not json", ISO2)
    with pytest.raises(exi.EncodeError):
        codec.encode("[1, 2]", ISO2)
    with pytest.raises(exi.EncodeError):
        codec.encode(json.dumps({"V2G_Message": {"Header": {"SessionID": "zz"}, "Body": {}}}), ISO2)
    with pytest.raises(exi.DecodeError):
        codec.decode(b"\x80\xff\xff", ISO2)
    with pytest.raises(ValueError):
        codec.encode("{}", "urn:no:such:namespace")
    assert exi.IMPLEMENTATION in codec.get_version()


def test_josev_import_does_not_need_iso15118() -> None:
    code = ("import sys; sys.modules['iso15118'] = None\n"
            "import exi.josev\n"
            "assert 'iso15118.shared' not in sys.modules\n"
            "c = exi.josev.JosevCodec(); print(c.get_version())")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(exi.__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                       cwd=tempfile.gettempdir())  # not the checkout: the package under test only
    assert r.returncode == 0, r.stderr
    assert "plugcharge-exi" in r.stdout


# -- against the real package -----------------------------------------------------------------
@pytest.fixture(scope="module")
def josev_exi() -> Any:
    pytest.importorskip("iso15118", reason="the iso15118 package is not installed (interop extra)")
    from iso15118.shared.exi_codec import EXI
    from iso15118.shared.settings import SettingKey, shared_settings

    # What the package's load_shared_settings() would set, without reading a .env file.
    for key in (SettingKey.MESSAGE_LOG_JSON, SettingKey.MESSAGE_LOG_EXI):
        shared_settings.setdefault(key, False)
    e = EXI()
    old = e.exi_codec
    e.set_exi_codec(JosevCodec())
    yield e
    e.exi_codec = old


@pytest.mark.interop
def test_interop_shared_vectors_through_package(josev_exi: Any, vectors_dir: Path) -> None:
    """from_exi(vector) gives the package's pydantic message; to_exi of it gives the same bytes."""
    done = 0
    for f in sorted(vectors_dir.glob("*.json")):
        v = json.loads(f.read_text(encoding="utf-8"))
        if not v["kind"].startswith("EXI document"):
            continue
        data = bytes.fromhex(v["exi_hex"])
        msg = josev_exi.from_exi(data, v["namespace"])
        assert josev_exi.to_exi(msg, v["namespace"]) == data, f.name
        done += 1
    assert done >= 20


@pytest.mark.interop
def test_interop_pydantic_messages_round_trip(josev_exi: Any) -> None:
    from iso15118.shared.messages.app_protocol import AppProtocol, SupportedAppProtocolReq
    from iso15118.shared.messages.enums import Namespace
    from iso15118.shared.messages.iso15118_2.body import Body, SessionSetupReq
    from iso15118.shared.messages.iso15118_2.header import MessageHeader
    from iso15118.shared.messages.iso15118_2.msgdef import V2GMessage
    from iso15118.shared.messages.iso15118_20.common_messages import SessionSetupReq as SessionSetupReq20
    from iso15118.shared.messages.iso15118_20.common_types import MessageHeader as Header20

    sap = SupportedAppProtocolReq(app_protocol=[
        AppProtocol(protocol_ns=Namespace.ISO_V2_MSG_DEF.value, major_version=2, minor_version=0, schema_id=1, priority=1),
        AppProtocol(protocol_ns=Namespace.DIN_MSG_DEF.value, major_version=2, minor_version=0, schema_id=2, priority=2),
    ])
    v2 = V2GMessage(header=MessageHeader(session_id="00"), body=Body(session_setup_req=SessionSetupReq(evcc_id="0A1B2C3D4E5F")))
    v20 = SessionSetupReq20(header=Header20(session_id="5A2CDE53F701D4AC", timestamp=1718607534), evcc_id="WMIV1234567890ABCDEX")
    for msg, ns in ((sap, Namespace.SAP), (v2, Namespace.ISO_V2_MSG_DEF), (v20, Namespace.ISO_V20_COMMON_MSG)):
        data = josev_exi.to_exi(msg, ns)
        assert data[0] == 0x80
        assert exi.get_codec(ns.value).decode(data)  # our own decoder agrees it is a document
        back = josev_exi.from_exi(data, ns.value)
        assert back == msg


@pytest.mark.interop
def test_interop_signature_create_and_verify(josev_exi: Any) -> None:
    """The package signs an ISO-2 AuthorizationReq fragment with SignedInfo in the xmldsig grammar,
    both encoded by us, and verifies it again."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from iso15118.shared.messages.enums import Namespace
    from iso15118.shared.messages.iso15118_2.body import AuthorizationReq
    from iso15118.shared.security import create_signature, verify_signature

    challenge = base64.b64decode("IJCZ3bDEcrB4QvN42Q8eTA==")
    auth = AuthorizationReq(id="ID1", gen_challenge=challenge)
    frag = josev_exi.to_exi(auth, Namespace.ISO_V2_MSG_DEF)
    # The vector iso15118_2_Fragment_AuthorizationReq carries exactly this fragment.
    assert frag.hex() == "80040152510c40810484ceed86239583c2179bc6c878f261e8"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-contract")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    sig = create_signature([("ID1", frag)], key)
    assert verify_signature(sig, [("ID1", frag)], der)
    assert not verify_signature(sig, [("ID1", frag[:-1] + bytes([frag[-1] ^ 1]))], der)


def test_josev_codec_accepts_str_enum_namespaces() -> None:
    """The package passes members of its ``Namespace(str, Enum)``, whose str() is not the URI."""
    from enum import Enum

    class Namespace(str, Enum):
        SAP = "urn:iso:15118:2:2010:AppProtocol"

    assert str(Namespace.SAP) != Namespace.SAP.value or sys.version_info >= (3, 12)
    msg = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}
    data = JosevCodec().encode(json.dumps(msg), Namespace.SAP)
    assert data == exi.get_codec(Namespace.SAP.value).encode(msg)
    assert json.loads(JosevCodec().decode(data, Namespace.SAP)) == msg
