"""The XML view: ``python -m exi decode --xml`` writes each element and attribute in the namespace
its schema gives it (exi/_xml.py), the text validates against the XSDs, and ``encode`` reads it
back to the same stream.

Validation needs the V2G XSDs (not part of the repository): the directory named by
``EXI_XSD_DIR``, else ``$PLUGCHARGE_SHARED/schemas`` when that is set; without either the
validation test skips (the round trips run everywhere).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

import exi
from exi._shape import from_json, to_json
from exi._xml import from_xml, to_xml

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"


def _schema_dir() -> Path | None:
    d = os.environ.get("EXI_XSD_DIR")
    if not d and os.environ.get("PLUGCHARGE_SHARED"):
        d = str(Path(os.environ["PLUGCHARGE_SHARED"]) / "schemas")
    return Path(d) if d and Path(d).is_dir() else None


def _vectors() -> list[Any]:
    out = []
    for f in sorted(GOLDEN.glob("golden_*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        grammars = doc.get("grammars", "iso15118-jar")
        seen: dict[str, int] = {}
        for v in doc["vectors"]:
            n = seen[v["message_type"]] = seen.get(v["message_type"], 0) + 1
            if n > 2:
                continue
            out.append(pytest.param(doc["namespace"], grammars, v, id=f"{f.stem}-{v['kind']}-{v['message_type']}-{n}"))
    return out


VECTORS = _vectors()


def _codec(ns: str, grammars: str) -> Any:
    return exi.get_codec(ns, grammars=grammars)


@pytest.mark.parametrize("namespace,grammars,vector", VECTORS)
def test_xml_round_trip(namespace: str, grammars: str, vector: dict[str, Any]) -> None:
    """EXIficient's stream -> dict -> XML -> dict -> our encoding: the same bytes."""
    codec = _codec(namespace, grammars)
    frag = vector["kind"] != "document"
    data = bytes.fromhex(vector["exi_hex"])
    js = to_json(codec, codec.decode_fragment(data) if frag else codec.decode(data), fragment=frag)
    xml = to_xml(codec, js, fragment=frag)
    back = from_xml(codec, xml, fragment=frag)
    native = from_json(codec, back, fragment=frag)
    assert (codec.encode_fragment(native) if frag else codec.encode(native)) == data


def test_elements_in_their_own_namespaces() -> None:
    iso2 = "urn:iso:15118:2:2013:MsgDef"
    codec = exi.get_codec(iso2)
    msg = {"V2G_Message": {"Header": {"SessionID": "0102", "Signature": {
        "SignedInfo": {"CanonicalizationMethod": {"Algorithm": "a"}, "SignatureMethod": {"Algorithm": "b"},
                       "Reference": [{"URI": "#id1", "DigestMethod": {"Algorithm": "d"}, "DigestValue": "AAAA"}]},
        "SignatureValue": {"value": "AAAA"}}},
        "Body": {"AuthorizationReq": {"Id": "id1", "GenChallenge": "AAECAwQFBgcICQoLDA0ODw=="}}}}
    import xml.etree.ElementTree as ET

    root = ET.fromstring(to_xml(codec, msg).split("\n", 1)[1])
    assert root.tag == "{urn:iso:15118:2:2013:MsgDef}V2G_Message"
    header = root.find("{urn:iso:15118:2:2013:MsgDef}Header")
    assert header is not None
    assert header.find("{urn:iso:15118:2:2013:MsgHeader}SessionID") is not None
    sig = header.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert sig is not None
    ref = sig.find("{http://www.w3.org/2000/09/xmldsig#}SignedInfo/{http://www.w3.org/2000/09/xmldsig#}Reference")
    assert ref is not None and ref.attrib == {"URI": "#id1"}  # xmldsig attributes are unqualified
    auth = root.find("{urn:iso:15118:2:2013:MsgDef}Body/{urn:iso:15118:2:2013:MsgBody}AuthorizationReq")
    assert auth is not None and auth.attrib == {"{urn:iso:15118:2:2013:MsgBody}Id": "id1"}  # ISO-2's are qualified


def test_xml_with_other_prefixes_and_layout() -> None:
    """Any prefixes (or default namespaces) and indentation read the same."""
    codec = exi.get_codec("urn:iso:15118:2:2013:MsgDef")
    xml = ('<m:V2G_Message xmlns:m="urn:iso:15118:2:2013:MsgDef">\n  <m:Header>\n'
           '    <SessionID xmlns="urn:iso:15118:2:2013:MsgHeader">0102</SessionID>\n  </m:Header>\n'
           '  <m:Body><SessionStopReq xmlns="urn:iso:15118:2:2013:MsgBody">'
           '<ChargingSession>Terminate</ChargingSession></SessionStopReq></m:Body>\n</m:V2G_Message>')
    native = from_json(codec, from_xml(codec, xml))
    assert native == {"V2G_Message": {"Header": {"SessionID": b"\x01\x02"},
                                      "Body": {"SessionStopReq": {"ChargingSession": "Terminate"}}}}


def test_xml_errors() -> None:
    codec = exi.get_codec("urn:iso:15118:2:2013:MsgDef")
    with pytest.raises(exi.EncodeError, match="well-formed"):
        from_xml(codec, "<a><b></a>")
    with pytest.raises(exi.EncodeError, match="DOCTYPE"):
        from_xml(codec, '<!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>')
    with pytest.raises(exi.EncodeError, match="not a valid value"):
        from_xml(codec, '<V2G_Message xmlns="urn:iso:15118:2:2013:MsgDef"><Header><SessionID '
                        'xmlns="urn:iso:15118:2:2013:MsgHeader">01</SessionID></Header><Body><ServiceDetailReq '
                        'xmlns="urn:iso:15118:2:2013:MsgBody"><ServiceID>five</ServiceID></ServiceDetailReq></Body>'
                        '</V2G_Message>')


@pytest.mark.skipif(_schema_dir() is None, reason="no XSD directory (EXI_XSD_DIR or PLUGCHARGE_SHARED)")
def test_xml_validates_against_the_xsds() -> None:
    """decode --xml output of golden vectors of every schema set validates against its XSD."""
    xmlschema = pytest.importorskip("xmlschema")
    sys_path = str(HERE)
    import sys

    if sys_path not in sys.path:
        sys.path.insert(0, sys_path)
    from _exi_msggen import SCHEMA_SETS

    by_ns = {s.namespace: s for s in SCHEMA_SETS.values()}
    schemas: dict[str, Any] = {}
    checked = 0
    for p in VECTORS:
        namespace, grammars, vector = p.values
        if vector["kind"] != "document":
            continue
        s = by_ns[namespace]
        if namespace not in schemas:
            schemas[namespace] = xmlschema.XMLSchema(str(_schema_dir() / s.xsd))
        codec = _codec(namespace, grammars)
        data = bytes.fromhex(vector["exi_hex"])
        xml = to_xml(codec, to_json(codec, codec.decode(data)))
        errors = list(schemas[namespace].iter_errors(io.StringIO(xml)))
        # ID uniqueness is the XML's, not the codec's: the generator's random Ids may repeat
        errors = [e for e in errors if "Duplicated" not in str(e) and "duplicate" not in str(e).lower()]
        assert not errors, f"{vector['message_type']}: {errors[0]}"
        checked += 1
    assert checked > 50


def test_cli_decode_xml_then_encode(tmp_path: Path) -> None:
    from exi.cli import main

    v = next(p.values[2] for p in VECTORS if p.values[0] == "urn:iso:15118:2:2013:MsgDef"
             and p.values[2]["kind"] == "document" and p.values[1] == "exi")
    out, err = io.StringIO(), io.StringIO()
    assert main(["decode", "-n", "iso2", "--xml", v["exi_hex"]], io.BytesIO(), out, err) == 0
    f = tmp_path / "m.xml"
    f.write_text(out.getvalue(), encoding="utf-8")
    out2 = io.StringIO()
    assert main(["encode", "-n", "iso2", str(f)], io.BytesIO(), out2, err) == 0
    assert out2.getvalue().strip() == v["exi_hex"]
    bad = tmp_path / "bad.xml"
    bad.write_text("<V2G_Message", encoding="utf-8")
    assert main(["encode", "-n", "iso2", str(bad)], io.BytesIO(), io.StringIO(), err) == 1
    assert "well-formed" in err.getvalue()
