"""xsi:nil: a nil element is ``{"xsi:nil": True}`` (beside its attributes, no content).

In non-strict grammars every element may carry AT(xsi:nil) as a second-level event of its first
start tag (EXI 1.0 section 8.5.4.4.1); with the value true it continues in the empty grammar of its
type: its attributes, then EE. The streams below were written by EXIficient compiling the ISO-2
XSDs itself (``tests/exi_tests/_xsd_oracle.py``) from the XML in each comment; the random
differential test is ``test_exi_xsd_oracle_diff.py::test_xsd_oracle_nil``. xsi:nil="false" is
not written at all (EXIficient drops it too): the element is encoded as declared.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

import exi

ISO2 = "urn:iso:15118:2:2013:MsgDef"
HEADER = {"SessionID": b"\x01\x02"}
STOP = {"SessionStopReq": {"ChargingSession": "Terminate"}}

CASES = [
    # <SessionStopReq xsi:nil="true"/>: a complex element without attributes
    ("body-nil", {"V2G_Message": {"Header": HEADER, "Body": {"SessionStopReq": {"xsi:nil": True}}}},
     "809800804091fa80"),
    # <SessionStopReq><ChargingSession xsi:nil="true"/></SessionStopReq>: a simple-typed (enum) leaf
    ("leaf-nil", {"V2G_Message": {"Header": HEADER, "Body": {"SessionStopReq": {"ChargingSession": {"xsi:nil": True}}}}},
     "809800804091f540"),
    # <SessionSetupReq><EVCCID xsi:nil="true"/></SessionSetupReq>: a hexBinary leaf
    ("hex-leaf-nil", {"V2G_Message": {"Header": HEADER, "Body": {"SessionSetupReq": {"EVCCID": {"xsi:nil": True}}}}},
     "809800804091d540"),
    # <Signature xsi:nil="true"/> in the header
    ("sig-nil", {"V2G_Message": {"Header": {**HEADER, "Signature": {"xsi:nil": True}}, "Body": STOP}},
     "80980080408ca8f800"),
    # <Signature xsi:nil="true" Id="S1"/>: a nil element keeps its attributes
    ("sig-nil-id", {"V2G_Message": {"Header": {**HEADER, "Signature": {"xsi:nil": True, "Id": "S1"}}, "Body": STOP}},
     "80980080408ca02299887c00"),
]


@pytest.mark.parametrize("name,msg,hexstream", CASES, ids=[c[0] for c in CASES])
def test_nil_both_ways(make_codec: Callable[[str], Any], name: str, msg: dict, hexstream: str) -> None:
    codec = make_codec(ISO2)
    assert codec.encode(msg).hex() == hexstream
    assert codec.decode(bytes.fromhex(hexstream)) == msg


def test_nil_false_is_the_element_as_declared(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(ISO2)
    plain = {"V2G_Message": {"Header": HEADER, "Body": STOP}}
    with_false = {"V2G_Message": {"Header": HEADER, "Body": {"SessionStopReq": {"xsi:nil": False, **STOP["SessionStopReq"]}}}}
    assert codec.encode(with_false) == codec.encode(plain) == bytes.fromhex("809800804091f000")


def test_nil_errors(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(ISO2)

    def err(body: Any) -> exi.EncodeError:
        with pytest.raises(exi.EncodeError) as ei:
            codec.encode({"V2G_Message": {"Header": HEADER, "Body": body}})
        return ei.value

    e = err({"SessionStopReq": {"xsi:nil": True, "ChargingSession": "Terminate"}})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionStopReq.ChargingSession", "unknown")
    e = err({"SessionStopReq": {"xsi:nil": "yes"}})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionStopReq.xsi:nil", "type")
    e = err({"SessionStopReq": {"ChargingSession": {"xsi:nil": True, "value": "Terminate"}}})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionStopReq.ChargingSession.value", "unknown")
    e = err({"SessionStopReq": {"ChargingSession": {"value": "Terminate"}}})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionStopReq.ChargingSession", "type")
    # a nil element keeps only its attributes (declared ones, or undeclared "@name" strings)
    e = err({"SessionStopReq": {"xsi:nil": True, "@a": 1}})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionStopReq.@a", "type")


def test_nil_stream_errors(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(ISO2)
    data = bytes.fromhex("809800804091fa80")
    for cut in range(1, len(data)):
        with pytest.raises(exi.DecodeError):
            codec.decode(data[:cut])
    # after xsi:nil true only attributes and EE may come (no content): the escape there followed
    # by a second-level code other than AT(*) is refused
    bad = bytearray(data)
    bad[7] |= 0x40  # the EE of the nil SessionStopReq (1 bit, after escape, code 2, true) becomes the escape
    with pytest.raises(exi.DecodeError, match="nil element"):
        codec.decode(bytes(bad))


def test_nil_in_xml_output() -> None:
    from exi.cli import to_xml

    import re

    from exi._shape import to_json

    codec = exi.get_codec(ISO2)
    xml = to_xml(to_json(codec, CASES[4][1]), ISO2)
    assert 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' in xml
    # Signature in the xmldsig namespace, its Id unqualified
    prefix = re.search(r'xmlns:(\w+)="http://www.w3.org/2000/09/xmldsig#"', xml).group(1)  # type: ignore[union-attr]
    assert f'<{prefix}:Signature xsi:nil="true" Id="S1"/>' in xml
    assert "xmlns:xsi" not in to_xml(to_json(codec, {"V2G_Message": {"Header": HEADER, "Body": STOP}}), ISO2)
