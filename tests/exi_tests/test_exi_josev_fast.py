"""The drop-in's compiled path (JSON text <-> EXI bits, ``jar_encode`` / ``jar_decode`` of the
engine) against its general path (dicts, exi._jarshape): wherever the compiled path answers, it
answers as the general path does; and it does answer for the usual messages. Both engines."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import exi
from exi._jarshape import JAR_ZERO_DEFAULTS, from_jar, to_jar
from exi._shape import from_json, to_json
from exi.josev import is_fragment_root
from _testdata import FIELD

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
SETS = {"app_handshake": "urn:iso:15118:2:2010:AppProtocol", "din70121": "urn:din:70121:2012:MsgDef",
        "iso15118-2": "urn:iso:15118:2:2013:MsgDef", "iso15118-20-common": "urn:iso:std:iso:15118:-20:CommonMessages",
        "iso15118-20-ac": "urn:iso:std:iso:15118:-20:AC", "iso15118-20-dc": "urn:iso:std:iso:15118:-20:DC"}


def _messages() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted(GOLDEN.glob("golden_*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        if doc.get("grammars", "iso15118-jar") != "iso15118-jar":
            continue
        out += [(doc["namespace"], v["message"]) for v in doc["vectors"]]
    return out


MESSAGES = _messages()


def _general_encode(codec: Any, msg: dict[str, Any]) -> bytes:
    frag = is_fragment_root(codec.namespace, next(iter(msg)), codec)
    native = from_json(codec, from_jar(codec, msg, fragment=frag), fragment=frag)
    return codec.encode_fragment(native) if frag else codec.encode(native)


def _general_decode(codec: Any, data: bytes) -> Any:
    frag = codec.namespace == "http://www.w3.org/2000/09/xmldsig#"
    native = codec.decode_fragment(data) if frag else codec.decode(data)
    return to_jar(codec, to_json(codec, native, fragment=frag), fragment=frag)


def _paths(exi_engine: Any, ns: str) -> tuple[Any, dict[str, Any], Any]:
    from exi._codec import NAMESPACES, Codec

    codec = Codec(ns, NAMESPACES[ns], engine=exi_engine, grammars="iso15118-jar")
    roots = {k: (codec._frag if is_fragment_root(ns, k, codec) else codec._doc)
             for k in list(codec._tables.DOC_KEYS) + list(codec._tables.FRAG_KEYS)}
    dec = codec._frag if ns.endswith("xmldsig#") else codec._doc
    if ns in JAR_ZERO_DEFAULTS:
        exi_engine.jar_defaults(dec, JAR_ZERO_DEFAULTS[ns])
    return codec, roots, dec


def test_compiled_path_equals_the_general_path(exi_engine: Any) -> None:
    cache: dict[str, Any] = {}
    fast_enc = fast_dec = 0
    for ns, msg in MESSAGES:
        if ns not in cache:
            cache[ns] = _paths(exi_engine, ns)
        codec, roots, dec = cache[ns]
        try:
            ref = _general_encode(codec, msg)
        except exi.EncodeError:
            assert exi_engine.jar_encode(roots, json.dumps(msg)) is None
            continue
        got = exi_engine.jar_encode(roots, json.dumps(msg))
        if got is not None:
            fast_enc += 1
            assert got == ref, msg
        if is_fragment_root(ns, next(iter(msg)), codec) and not ns.endswith("xmldsig#"):
            continue
        text = exi_engine.jar_decode(dec, ref)
        if text is not None:
            fast_dec += 1
            assert json.loads(text) == _general_decode(codec, ref)
    # (the generated strings often hold quotes, backslashes or non-ASCII: the general path)
    assert fast_enc > 0.5 * len(MESSAGES) and fast_dec > 0.5 * len(MESSAGES)


def test_compiled_decoder_on_field_streams(exi_engine: Any) -> None:
    cache: dict[str, Any] = {}
    total = fast = 0
    for f in sorted(FIELD.glob("*.json")):
        for e in json.loads(f.read_text(encoding="utf-8")):
            ns = SETS.get(e.get("protocol"))
            if ns is None or not isinstance(e.get("exi_hex"), str):
                continue
            if ns not in cache:
                cache[ns] = _paths(exi_engine, ns)
            codec, roots, dec = cache[ns]
            data = bytes.fromhex(e["exi_hex"])
            try:
                ref = _general_decode(codec, data)
            except exi.DecodeError:
                assert exi_engine.jar_decode(dec, data) is None
                continue
            total += 1
            text = exi_engine.jar_decode(dec, data)
            if text is not None:
                fast += 1
                assert json.loads(text) == ref, f"{f.name}"
                again = exi_engine.jar_encode(roots, text)
                assert again is None or again == _general_encode(codec, ref)
    assert fast > 0.9 * total


@pytest.mark.parametrize("text", [
    '{"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"SessionStopReq": {"ChargingSession": "Terminat\\u0065"}}}}',
    '{"V2G_Message": {"Header": {"SessionID": "01 02"}, "Body": {}}}',
    '{"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"SessionStopReq": {"ChargingSession": 5}}}}',
    '{"V2G_Message": {"Body": {}, "Header": {"SessionID": "0102"}}}',
    '{"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"SessionStopReq": {"ChargingSession": "Terminate"}}}} x',
    '{"V2G_Message": [1]}', '{"Nope": {}}', "[]", '{"V2G_Message": {"Header": {"SessionID": "0102", "SessionID": "03"}}}',
    # an enumeration literal one letter off (same length), integers outside their facets
    '{"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"SessionStopReq": {"ChargingSession": "Terminatf"}}}}',
    '{"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"PowerDeliveryReq": {"ChargeProgress": "Start", "SAScheduleTupleID": 0}}}}',
    '{"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"PowerDeliveryReq": {"ChargeProgress": "Start", "SAScheduleTupleID": 256}}}}',
    '{"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"PowerDeliveryReq": {"ChargeProgress": "Start", "SAScheduleTupleID": -1}}}}',
])
def test_compiled_path_falls_back(exi_engine: Any, text: str) -> None:
    """Escapes, bad values, keys out of order, trailing garbage ...: no answer from the compiled
    path (the general path decides, and names the error)."""
    _codec, roots, _dec = _paths(exi_engine, "urn:iso:15118:2:2013:MsgDef")
    assert exi_engine.jar_encode(roots, text) is None


def _pdr(cert: str, sub: str) -> dict[str, Any]:
    return {"V2G_Message": {"Header": {"SessionID": "0102030405060708"}, "Body": {"PaymentDetailsReq": {
        "eMAID": "DEABCC123456789", "ContractSignatureCertChain": {
            "Certificate": cert, "SubCertificates": {"Certificate": [sub, cert]}}}}}}


def test_base64_every_length_and_alignment(exi_engine: Any) -> None:
    """base64Binary values of every length up to 70 bytes (every tail the block loops leave), at the
    bit positions three certificate slots put them, each way as the general path does."""
    import base64

    codec, roots, dec = _paths(exi_engine, "urn:iso:15118:2:2013:MsgDef")
    for n in range(71):
        raw = bytes((37 * i + n) & 255 for i in range(n))
        sub = bytes((91 * i + 7) & 255 for i in range(71 - n))
        msg = _pdr(base64.b64encode(raw).decode(), base64.b64encode(sub).decode())
        ref = _general_encode(codec, msg)
        assert exi_engine.jar_encode(roots, json.dumps(msg)) == ref, n
        text = exi_engine.jar_decode(dec, ref)
        if n == 0 and text is None:
            continue  # (an empty value: the general path's)
        assert text is not None and json.loads(text) == msg == _general_decode(codec, ref), n


@pytest.mark.parametrize("bad", ["A", "AB=", "A===", "AA=A", "=AAA", "AAA=AAAA", "AA!A", "AAAAAAAA AAA",
                                 "AAAAAAAAAAAAAAAAAAAAAAA-", "AAAAAAAA\\nAAA", "AAAAAAAAAAA\\u0041"])
def test_base64_the_compiled_path_refuses(exi_engine: Any, bad: str) -> None:
    """Text that is no strict base64 (as base64.b64decode(validate=True) reads it) gets no answer
    from the compiled path, wherever the bad character sits; the drop-in then names the error."""
    from exi.josev import JosevCodec

    _codec, roots, _dec = _paths(exi_engine, "urn:iso:15118:2:2013:MsgDef")
    text = json.dumps(_pdr("AAAA", "AAAA")).replace('"Certificate": "AAAA"', f'"Certificate": "{bad}"', 1)
    assert bad in text
    assert exi_engine.jar_encode(roots, text) is None
    if "\\u" not in bad:
        with pytest.raises(exi.EncodeError):
            JosevCodec().encode(text, "urn:iso:15118:2:2013:MsgDef")


def test_root_element_of_the_previous_message(exi_engine: Any) -> None:
    """The compiled path remembers the previous message's root element: messages alternating
    between roots of one length (supportedAppProtocolReq / ...Res), between namespaces, with blanks
    before the key or an escape in it, each give the general path's bytes (or no answer)."""
    app = "urn:iso:15118:2:2010:AppProtocol"
    iso2 = "urn:iso:15118:2:2013:MsgDef"
    req = {"supportedAppProtocolReq": {"AppProtocol": [{"ProtocolNamespace": iso2, "VersionNumberMajor": 2,
                                                        "VersionNumberMinor": 0, "SchemaID": 1, "Priority": 1}]}}
    res = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}
    stop = {"V2G_Message": {"Header": {"SessionID": "0102"}, "Body": {"SessionStopReq": {"ChargingSession": "Terminate"}}}}
    paths = {ns: _paths(exi_engine, ns) for ns in (app, iso2)}
    seq = [(app, req), (app, res), (app, res), (app, req), (iso2, stop), (app, res), (iso2, stop), (iso2, stop)]
    for ns, msg in seq:
        codec, roots, _dec = paths[ns]
        ref = _general_encode(codec, msg)
        for text in (json.dumps(msg), "{ \n" + json.dumps(msg)[1:]):
            assert exi_engine.jar_encode(roots, text) == ref, (ns, text)
    # a root key of the previous one's length that no schema set has, and one with an escape
    _codec, roots, _dec = paths[app]
    assert exi_engine.jar_encode(roots, json.dumps(res)) is not None
    assert exi_engine.jar_encode(roots, json.dumps({"supportedAppProtocolRex": res["supportedAppProtocolRes"]})) is None
    assert exi_engine.jar_encode(roots, json.dumps(res).replace("Res", "Re\\u0073", 1)) is None
    # the roots of the other namespace do not answer for this root
    assert exi_engine.jar_encode(paths[iso2][1], json.dumps(res)) is None
