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
SHARED = Path(os.environ.get("PLUGCHARGE_SHARED", HERE.parent.parent.parent / "shared"))
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


def test_josev_codec_shared_vectors(shared_dir: Path) -> None:
    codec = JosevCodec()
    n = 0
    for f in sorted((shared_dir / "vectors").glob("*.json")):
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
def test_interop_shared_vectors_through_package(josev_exi: Any, shared_dir: Path) -> None:
    """from_exi(vector) gives the package's pydantic message; to_exi of it gives the same bytes."""
    done = 0
    for f in sorted((shared_dir / "vectors").glob("*.json")):
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
    # The shared vector iso15118_2_Fragment_AuthorizationReq carries exactly this fragment.
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


# -- the jar's JSON shape in its corners (each case as the jar gave it when probed; the
# differential test test_exi_josev_jar_diff.py checks random messages against the jar itself) --
_SIG = {"SignedInfo": {"CanonicalizationMethod": {"Algorithm": "a"}, "SignatureMethod": {"Algorithm": "b"},
                       "Reference": [{"URI": "#x", "DigestMethod": {"Algorithm": "d"}, "DigestValue": "AAAA"}]},
        "SignatureValue": {"value": "AAAA"}}


def _with_sig(**parts: Any) -> dict[str, Any]:
    import copy

    sig = copy.deepcopy(_SIG)
    for k, v in parts.items():
        if k == "SignatureMethod":
            sig["SignedInfo"]["SignatureMethod"].update(v)
        else:
            sig[k] = v
    return {"V2G_Message": {"Header": {"SessionID": "0102", "Signature": sig},
                            "Body": {"SessionStopReq": {"ChargingSession": "Terminate"}}}}


def _native_sig(msg: dict[str, Any]) -> Any:
    from exi._shape import to_json

    codec = exi.get_codec(ISO2, grammars="iso15118-jar")
    return codec, to_json(codec, codec.decode(JosevCodec().encode(json.dumps(msg), ISO2)))["V2G_Message"]["Header"]["Signature"]


@pytest.mark.parametrize("jar_json,native", [
    # mixed content: every child a list in the jar's JSON
    ({"SignatureMethod": {"HMACOutputLength": [209]}}, {"SignatureMethod": {"HMACOutputLength": 209}}),
    ({"KeyInfo": {"KeyValue": [{"RSAKeyValue": [{"Modulus": "AAAA", "Exponent": "AQAB"}]}]}},
     {"KeyInfo": {"KeyValue": [{"RSAKeyValue": {"Modulus": "AAAA", "Exponent": "AQAB"}}]}}),
    ({"KeyInfo": {"KeyValue": [{"DSAKeyValue": [{"P": "AAAA", "Q": "AAAA", "G": "AAAA", "Y": "AAAA"}]}]}},
     {"KeyInfo": {"KeyValue": [{"DSAKeyValue": {"P": "AAAA", "Q": "AAAA", "G": "AAAA", "Y": "AAAA"}}]}}),
    # repeated choices: the jar writes the children in the JSON's key order
    ({"KeyInfo": {"MgmtData": ["m"], "KeyName": ["a", "b"]}},
     {"KeyInfo": {"MgmtData": ["m"], "KeyName": ["a", "b"], "$order": ["MgmtData", "KeyName", "KeyName"]}}),
    ({"KeyInfo": {"X509Data": [{"X509SubjectName": ["s", "t"], "X509IssuerSerial": [{"X509IssuerName": "n", "X509SerialNumber": 5}]}]}},
     {"KeyInfo": {"X509Data": [{"X509SubjectName": ["s", "t"], "X509IssuerSerial": [{"X509IssuerName": "n", "X509SerialNumber": 5}],
                                "$order": ["X509SubjectName", "X509SubjectName", "X509IssuerSerial"]}]}}),
    ({"KeyInfo": {"RetrievalMethod": [{"URI": "u", "Type": "t", "Transforms": {"Transform": [{"Algorithm": "x", "XPath": ["p"]}]}}]}},
     {"KeyInfo": {"RetrievalMethod": [{"URI": "u", "Type": "t", "Transforms": {"Transform": [{"Algorithm": "x", "XPath": ["p"]}]}}]}}),
])
def test_josev_jar_shape_both_ways(jar_json: dict[str, Any], native: dict[str, Any]) -> None:
    msg = _with_sig(**jar_json)
    codec, sig = _native_sig(msg)
    for k, v in native.items():
        got = sig["SignedInfo"]["SignatureMethod"] if k == "SignatureMethod" else sig[k]
        assert {kk: got[kk] for kk in v} == v
    text = JosevCodec().decode(JosevCodec().encode(json.dumps(msg), ISO2), ISO2)
    back = json.loads(text)["V2G_Message"]["Header"]["Signature"]
    for k, v in jar_json.items():
        got = back["SignedInfo"]["SignatureMethod"] if k == "SignatureMethod" else back[k]
        assert {kk: got[kk] for kk in v} == v  # (key order aside, as the jar's JSON)


def test_josev_single_or_list_in_mixed_content() -> None:
    """The jar accepts a mixed-content child as a list or a single value; so does the drop-in."""
    one = JosevCodec().encode(json.dumps(_with_sig(SignatureMethod={"HMACOutputLength": 209})), ISO2)
    assert JosevCodec().encode(json.dumps(_with_sig(SignatureMethod={"HMACOutputLength": [209]})), ISO2) == one


def test_josev_text_of_mixed_content() -> None:
    """Text runs of mixed content, as the jar's JSON has them: a list under "value"
    (SignatureMethod, KeyValue), or among the string child's items in content order
    (KeyInfo: MgmtData, Transform: XPath); a "value" list encodes as one text where the key is."""
    cases = [
        (_with_sig(SignatureMethod={"HMACOutputLength": 5, "value": ["x", "y"]}),
         lambda s: s["SignedInfo"]["SignatureMethod"], {"Algorithm": "b", "HMACOutputLength": [5], "value": ["x", "y"]}),
        (_with_sig(KeyInfo={"KeyName": ["a", "b"], "value": ["t0", "t1", "t2"]}),
         lambda s: s["KeyInfo"], {"MgmtData": ["t0", "t1", "t2"], "KeyName": ["a", "b"]}),
    ]
    for msg, pick, jar in cases:
        native = json.loads(json.dumps(msg))
        codec = exi.get_codec(ISO2, grammars="iso15118-jar")
        from exi._shape import from_json
        data = codec.encode(from_json(codec, native))
        assert pick(json.loads(JosevCodec().decode(data, ISO2))["V2G_Message"]["Header"]["Signature"]) == jar
    msg = _with_sig(SignatureMethod={"value": ["x", "y"], "HMACOutputLength": [5]})
    _, sig = _native_sig(msg)
    assert sig["SignedInfo"]["SignatureMethod"] == {"Algorithm": "b", "value": "xy", "HMACOutputLength": 5}
    transform = {"Transforms": {"Transform": [{"Algorithm": "x", "XPath": ["p", "q"], "value": ["1", "2", "3"]}]}}
    msg = _with_sig()
    msg["V2G_Message"]["Header"]["Signature"]["SignedInfo"]["Reference"][0].update(transform)
    codec = exi.get_codec(ISO2, grammars="iso15118-jar")
    from exi._shape import from_json
    got = json.loads(JosevCodec().decode(codec.encode(from_json(codec, msg)), ISO2))
    assert got["V2G_Message"]["Header"]["Signature"]["SignedInfo"]["Reference"][0]["Transforms"]["Transform"][0]["XPath"] == \
        ["1", "p", "2", "q", "3"]


def test_josev_zero_defaults() -> None:
    """The jar's JSON carries 0 for four absent optional elements (primitive fields of its
    binding); only the drop-in's JSON does, the native dict stays as the stream."""
    sap = "urn:iso:15118:2:2010:AppProtocol"
    res = {"supportedAppProtocolRes": {"ResponseCode": "Failed_NoNegotiation"}}
    data = exi.get_codec(sap).encode(res)
    assert exi.get_codec(sap).decode(data) == res
    assert json.loads(JosevCodec().decode(data, sap)) == {"supportedAppProtocolRes": {
        "ResponseCode": "Failed_NoNegotiation", "SchemaID": 0}}
    assert JosevCodec().encode(json.dumps(res), sap) == data  # written as the JSON says
    tariff = {"Id": "t1", "SalesTariffID": 1, "SalesTariffEntry": [
        {"RelativeTimeInterval": {"start": 0}, "ConsumptionCost": [{"startValue": {"Multiplier": 0, "Value": 1, "Unit": "W"},
                                                                     "Cost": [{"costKind": "relativePricePercentage", "amount": 3}]}]}]}
    frag = JosevCodec().encode(json.dumps({"SalesTariff": tariff}), ISO2)
    got = exi.get_codec(ISO2).decode_fragment(frag)["SalesTariff"]
    assert "NumEPriceLevels" not in got and "EPriceLevel" not in got["SalesTariffEntry"][0]
    receipt = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"MeteringReceiptReq": {
        "SessionID": "0102", "SAScheduleTupleID": 0, "MeterInfo": {"MeterID": "m"}}}}}
    # the jar's 0 for an absent SAScheduleTupleID is no valid value (1..255): left out
    data = JosevCodec().encode(json.dumps(receipt), ISO2)
    native = exi.get_codec(ISO2, grammars="iso15118-jar").decode(data)
    assert "SAScheduleTupleID" not in native["V2G_Message"]["Body"]["MeteringReceiptReq"]
    assert json.loads(JosevCodec().decode(data, ISO2))["V2G_Message"]["Body"]["MeteringReceiptReq"]["SAScheduleTupleID"] == 0
