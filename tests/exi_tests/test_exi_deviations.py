"""Content outside the declared model that EXIficient writes in non-strict EXI (EXI 1.0 section
8.5.4.4.1): text where the schema declares none, undeclared elements and text around a simple
value, the content after an untyped value (Element_i,content2), undeclared root elements.

Every stream below is EXIficient's, from the XML beside it (``_xsd_oracle.py``: EXIficient
compiling the XSDs of ``EXI_XSD_DIR``, the jar's factory settings); the oracle test remakes
each one and checks that EXIficient reads our encoding back to the same XML (text runs included).
The shape: text in element-only or empty content is "value" as in mixed content (one run where
the dict has it, else one text per gap between the children); a simple value with undeclared
elements around it makes the element a dict, "value" a list of one text per gap with the typed
value in its own; an undeclared root is a "{uri}local" key, a list as everywhere.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any, Callable, Iterator, Optional

import pytest

import exi
from _exi_msggen import SCHEMA_SETS

_PRE = ('<V2G_Message xmlns="urn:iso:15118:2:2013:MsgDef"><Header><SessionID xmlns="urn:iso:15118:2:2013:MsgHeader">'
        '01</SessionID></Header><Body xmlns:b="urn:iso:15118:2:2013:MsgBody">')


def _iso2(body: str) -> str:
    return _PRE + body + "</Body></V2G_Message>"


def _body(body: dict) -> dict:
    return {"V2G_Message": {"Header": {"SessionID": b"\x01"}, "Body": body}}


# (name, schema set, fragment, XML given to EXIficient, our decoding, EXIficient's stream, the
# EncodeError rule our encoder refuses the dict with, or None: it gives the stream back)
CASES = [
    ('untyped-value-then-element', 'iso2', False,
     _iso2('<b:SessionStopReq><b:ChargingSession>bogus<x xmlns=""/></b:ChargingSession></b:SessionStopReq>'),
     _body({'SessionStopReq': {'ChargingSession': {'value': 'bogus', '{}x': [{}]}}}),
     '8098004051f703b137b3bab9d102784c0280062800', 'range'),
    ('untyped-value-element-typed-text', 'iso2', False,
     _iso2('<b:SessionStopReq><b:ChargingSession>bogus<x xmlns=""/>Terminate</b:ChargingSession></b:SessionStopReq>'),
     _body({'SessionStopReq': {'ChargingSession': {'value': ['bogus', 'Terminate'], '{}x': [{}]}}}),
     '8098004051f703b137b3bab9d102784c0280062000', 'range'),
    ('value-element-text', 'iso2', False,
     _iso2('<b:SessionStopReq><b:ChargingSession>Terminate<x xmlns=""/>more</b:ChargingSession></b:SessionStopReq>'),
     _body({'SessionStopReq': {'ChargingSession': {'value': ['Terminate', 'more'], '{}x': [{}]}}}),
     '8098004051f10813c26014003160cdadee4ca0', None),
    ('element-value-element-text', 'iso2', False,
     _iso2('<b:SessionStopReq><b:ChargingSession><y xmlns=""/>Terminate<x xmlns=""/>more</b:ChargingSession></b:SessionStopReq>'),
     _body({'SessionStopReq': {'ChargingSession': {'{}y': [{}], 'value': ['', 'Terminate', 'more'], '{}x': [{}]}}}),
     '8098004051f68813ca6014003110813c26014003160cdadee4ca00', None),
    ('int-value-element-text', 'iso2', False,
     _iso2('<b:ServiceDetailReq><b:ServiceID>5<x xmlns=""/>6</b:ServiceID></b:ServiceDetailReq>'),
     _body({'ServiceDetailReq': {'ServiceID': {'value': [5, '6'], '{}x': [{}]}}}),
     '80980040519016102784c0280062c0cd80', None),
    ('element-int-element-text', 'iso2', False,
     _iso2('<b:ServiceDetailReq><b:ServiceID><x xmlns=""/>5<y xmlns=""/>t</b:ServiceID></b:ServiceDetailReq>'),
     _body({'ServiceDetailReq': {'ServiceID': {'{}x': [{}], 'value': ['', 5, 't'], '{}y': [{}]}}}),
     '8098004051968813c260140031016102794c0280062c0dd000', None),
    ('text-in-element-only-content', 'iso2', False,
     _iso2('<b:SessionStopReq>hello<b:ChargingSession>Terminate</b:ChargingSession></b:SessionStopReq>'),
     _body({'SessionStopReq': {'value': 'hello', 'ChargingSession': 'Terminate'}}),
     '8098004051fe0768656c6c6f00', None),
    ('text-after-last-child', 'iso2', False,
     _iso2('<b:SessionStopReq><b:ChargingSession>Terminate</b:ChargingSession>tail</b:SessionStopReq>'),
     _body({'SessionStopReq': {'ChargingSession': 'Terminate', 'value': 'tail'}}),
     '8098004051f0c19d185a5b00', None),
    ('text-before-and-after', 'iso2', False,
     _iso2('<b:SessionStopReq>hello<b:ChargingSession>Terminate</b:ChargingSession>tail</b:SessionStopReq>'),
     _body({'SessionStopReq': {'value': ['hello', 'tail'], 'ChargingSession': 'Terminate'}}),
     '8098004051fe0768656c6c6f0c19d185a5b000', None),
    ('text-in-body', 'iso2', False,
     _iso2('b<b:SessionStopReq><b:ChargingSession>Terminate</b:ChargingSession></b:SessionStopReq>'),
     _body({'value': 'b', 'SessionStopReq': {'ChargingSession': 'Terminate'}}),
     '80980040524a06c4f800', None),
    ('text-and-element-in-header', 'iso2', False,
     '<V2G_Message xmlns="urn:iso:15118:2:2013:MsgDef"><Header>h1<SessionID xmlns="urn:iso:15118:2:2013:MsgHeader">01</SessionID>h2<q xmlns=""/>h3</Header><Body><SessionStopReq xmlns="urn:iso:15118:2:2013:MsgBody"><ChargingSession>Pause</ChargingSession></SessionStopReq></Body></V2G_Message>',
     {'V2G_Message': {'Header': {'value': ['h1', 'h2', 'h3'], 'SessionID': b'\x01', '{}q': [{}]}, 'Body': {'SessionStopReq': {'ChargingSession': 'Pause'}}}},
     '8098e04683100405c11a0cb08138a6014003170468338f90', None),
    ('text-before-a-header-child', 'iso2', False,
     '<V2G_Message xmlns="urn:iso:15118:2:2013:MsgDef"><Header>x<SessionID xmlns="urn:iso:15118:2:2013:MsgHeader">01</SessionID></Header><Body xmlns:b="urn:iso:15118:2:2013:MsgBody"><b:SessionSetupRes><b:ResponseCode>OK</b:ResponseCode><b:EVSEID>DE*ABC*E1</b:EVSEID></b:SessionSetupRes></Body></V2G_Message>',
     {'V2G_Message': {'Header': {'value': 'x', 'SessionID': b'\x01'}, 'Body': {'SessionSetupRes': {'ResponseCode': 'OK', 'EVSEID': 'DE*ABC*E1'}}}},
     '8098e0378004051e0002d1114a905090ca914c48', None),
    ('undeclared-root', 'iso2', False,
     '<foo xmlns="urn:x" a="1"><a>t</a>x<b/></foo>',
     {'{urn:x}foo': [{'@a': '1', '{urn:x}a': [{'value': 't'}], 'value': 'x', '{urn:x}b': [{}]}]},
     '80a000aeae4dc74f008ccdede9805000c0204c20662680985300a0018c0dd180de0a02624c02800624', None),
    ('undeclared-root-fragment', 'iso2', True,
     '<foo xmlns="urn:x"><a>t</a></foo>',
     {'{urn:x}foo': [{'{urn:x}a': [{'value': 't'}]}]},
     '80f300575726e3a7804666f6f4c0280061a02614c028006303745f40', None),
    ('undeclared-root-holding-a-global', 'iso2', False,
     '<foo xmlns="urn:x"><SessionStopRes xmlns="urn:iso:15118:2:2013:MsgBody"><ResponseCode>OK</ResponseCode></SessionStopRes></foo>',
     {'{urn:x}foo': [{'{urn:iso:15118:2:2013:MsgBody}SessionStopRes': [{'ResponseCode': 'OK'}]}]},
     '80a000aeae4dc74f008ccdede9805000c2c01d8008', None),
    ('xmldsig-undeclared-root', 'xmldsig', False,
     '<r xmlns=""><KeyName xmlns="http://www.w3.org/2000/09/xmldsig#">k</KeyName></r>',
     {'{}r': [{'{http://www.w3.org/2000/09/xmldsig#}KeyName': ['k']}]},
     '80c10272580600186801001b59', None),
    ('din-text-in-element-content', 'din', False,
     '<V2G_Message xmlns="urn:din:70121:2012:MsgDef"><Header><SessionID xmlns="urn:din:70121:2012:MsgHeader">01</SessionID></Header><Body>t<SessionStopReq xmlns="urn:din:70121:2012:MsgBody"/></Body></V2G_Message>',
     {'V2G_Message': {'Header': {'SessionID': b'\x01'}, 'Body': {'value': 't', 'SessionStopReq': {}}}},
     '809a0040524a06e8f8', None),
    ('din-text-in-empty-content', 'din', False,
     '<V2G_Message xmlns="urn:din:70121:2012:MsgDef"><Header><SessionID xmlns="urn:din:70121:2012:MsgHeader">01</SessionID></Header><Body><SessionStopReq xmlns="urn:din:70121:2012:MsgBody">t</SessionStopReq></Body></V2G_Message>',
     {'V2G_Message': {'Header': {'SessionID': b'\x01'}, 'Body': {'SessionStopReq': {'value': 't'}}}},
     '809a004051fd037400', None),
    ('iso20-text-in-header', 'iso20-common', False,
     '<SessionStopReq xmlns="urn:iso:std:iso:15118:-20:CommonMessages"><Header xmlns="urn:iso:std:iso:15118:-20:CommonTypes">h<SessionID>0102030405060708</SessionID><TimeStamp>7</TimeStamp><z xmlns=""/></Header><ChargingSession>Terminate</ChargingSession></SessionStopReq>',
     {'SessionStopReq': {'Header': {'value': 'h', 'SessionID': b'\x01\x02\x03\x04\x05\x06\x07\x08', 'TimeStamp': 7, '{}z': [{}]}, 'ChargingSession': 'Terminate'}},
     '8095c06d00400810182028303840074204f4b00c00312280', None),
    ('xmldsig-text-in-signedinfo', 'xmldsig', True,
     '<SignedInfo xmlns="http://www.w3.org/2000/09/xmldsig#">s<CanonicalizationMethod Algorithm="c"/><SignatureMethod Algorithm="m"/><Reference URI="#i"><DigestMethod Algorithm="d"/><DigestValue>AQ==</DigestValue></Reference>e</SignedInfo>',
     {'SignedInfo': {'value': ['s', '', '', 'e'], 'CanonicalizationMethod': {'Algorithm': 'c'}, 'SignatureMethod': {'Algorithm': 'm'}, 'Reference': [{'URI': '#i', 'DigestMethod': {'Algorithm': 'd'}, 'DigestValue': b'\x01'}]}},
     '8082c06e601b1a01b6a2042369406c880202503656e0', None),
]


def _codec(make_codec: Callable[[str], Any], set_name: str) -> Any:
    return make_codec(SCHEMA_SETS[set_name].namespace)


@pytest.mark.parametrize("name,set_name,fragment,xml,msg,hexstream,refused", CASES, ids=[c[0] for c in CASES])
def test_exificient_streams_both_ways(make_codec: Callable[[str], Any], name: str, set_name: str, fragment: bool,
                                      xml: str, msg: dict, hexstream: str, refused: Optional[str]) -> None:
    codec = _codec(make_codec, set_name)
    data = bytes.fromhex(hexstream)
    decode = codec.decode_fragment if fragment else codec.decode
    encode = codec.encode_fragment if fragment else codec.encode
    assert decode(data) == msg
    if refused is None:
        assert encode(msg) == data
    else:  # an out-of-range value EXIficient wrote untyped: our encoder still refuses it
        with pytest.raises(exi.EncodeError) as ei:
            encode(msg)
        assert ei.value.rule == refused
    for cut in range(1, len(data)):
        try:
            decode(data[:cut])
        except exi.DecodeError:
            pass  # (a cut that ends in padding may still be a whole, shorter message)


def test_text_where_the_schema_has_none_is_refused_where_it_cannot_go(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec("urn:iso:15118:2:2013:MsgDef")
    with pytest.raises(exi.EncodeError) as ei:  # one text per gap: 2 gaps around one child
        codec.encode(_body({"SessionStopReq": {"value": ["a", "b", "c"], "ChargingSession": "Terminate"}}))
    assert (ei.value.path, ei.value.rule) == ("V2G_Message.Body.SessionStopReq.value", "occurs")
    with pytest.raises(exi.EncodeError) as ei:
        codec.encode(_body({"SessionStopReq": {"value": 5, "ChargingSession": "Terminate"}}))
    assert ei.value.rule == "type"
    with pytest.raises(exi.EncodeError) as ei:  # text beside a simple value goes after an undeclared element
        codec.encode(_body({"ServiceDetailReq": {"ServiceID": {"value": [5, 6], "{}x": [{}]}}}))
    assert (ei.value.path, ei.value.rule) == ("V2G_Message.Body.ServiceDetailReq.ServiceID.value", "type")


def test_undeclared_roots(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec("urn:iso:15118:2:2013:MsgDef")
    for bad, rule in (({"{urn:x}foo": {}}, "type"), ({"{urn:x}foo": [{}, {}]}, "type"), ({"foo": [{}]}, "unknown"),
                      ({"{urn:x}foo": [{}], "{urn:x}bar": [{}]}, "type")):
        with pytest.raises(exi.EncodeError) as ei:
            codec.encode(bad)
        assert ei.value.rule == rule, bad
    # a fragment may hold several root elements, declared and undeclared, in the dict's order
    msg = {"ChargingSession": "Terminate", "{urn:x}foo": [{}, {"value": "t"}], "eMAID": {"Id": "e", "value": "DE1"}}
    data = codec.encode_fragment(msg)
    assert codec.decode_fragment(data) == msg
    assert list(codec.decode_fragment(data)) == list(msg)
    # a declared root twice (the dict holds one), an undeclared one again after another root
    # (one list per name): refused, never regrouped
    two = codec.encode_fragment({"ChargingSession": "Terminate", "eMAID": {"Id": "e", "value": "DE1"}, "{urn:x}foo": [{}]})
    assert codec.decode_fragment(two) == {"ChargingSession": "Terminate", "eMAID": {"Id": "e", "value": "DE1"}, "{urn:x}foo": [{}]}
    pause = {"ChargingSession": "Pause"}
    cut = _roots_end(codec, {"ChargingSession": "Terminate"}, {"eMAID": {"Id": "e", "value": "DE1"}})
    twice = _bits(codec.encode_fragment({"ChargingSession": "Terminate"}))[:cut] + _bits(codec.encode_fragment(pause))[8:]
    # foo, eMAID, foo: eMAID's bits put between the two foos of one stream (whose second qname is
    # a string table hit)
    foo = {"{urn:x}foo": [{}]}
    emaid = {"eMAID": {"Id": "e", "value": "DE1"}}
    two = _bits(codec.encode_fragment({"{urn:x}foo": [{}, {}]}))
    c1 = _roots_end(codec, foo, pause)
    split = two[:c1] + _bits(codec.encode_fragment(emaid))[8:_roots_end(codec, emaid, pause)] + two[c1:]
    for bits in (twice, split):
        with pytest.raises(exi.DecodeError, match="again"):
            codec.decode_fragment(_pack(bits))


def _bits(data: bytes) -> str:
    return "".join(f"{x:08b}" for x in data)


def _pack(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def _roots_end(codec: Any, first: dict, other: dict) -> int:
    """The bit offset where the root elements of ``first``'s fragment end (its ED next): the cut
    after which ``other``'s root elements give the fragment of both."""
    a, b, both = _bits(codec.encode_fragment(first)), _bits(codec.encode_fragment(other)), codec.encode_fragment({**first, **other})
    for cut in range(len(a), 8, -1):
        if _pack(a[:cut] + b[8:])[:len(both)] == both:  # (b's padding may add a zero byte)
            return cut
    raise AssertionError("no cut found")


def _infoset(xml: str) -> Any:
    """The element tree with every text run (the element's text and each child's tail)."""
    def walk(e: ET.Element) -> Any:
        attrs = tuple(sorted((k, v) for k, v in e.attrib.items() if not k.startswith("{http://www.w3.org/2001/XMLSchema-instance}")))
        return (e.tag, attrs, e.text or "", tuple((walk(c), c.tail or "") for c in e))
    return walk(ET.fromstring(xml))


@pytest.fixture(scope="module")
def xsd_oracle() -> Iterator[Any]:
    from test_exi_oracle_diff import SCHEMAS, _jar_unavailable

    why = _jar_unavailable()
    if why:
        pytest.skip(why)
    from _xsd_oracle import XsdOracle

    o = XsdOracle(os.environ["EXI_ORACLE_JAR"], SCHEMAS)
    try:
        yield o
    finally:
        o.close()


@pytest.mark.oracle
def test_the_streams_are_exificients(xsd_oracle: Any) -> None:
    """EXIficient encodes each XML to the stream of the table, and decodes our encoding of each
    dict (where we encode it) back to the same XML, every text run in its place."""
    for name, set_name, fragment, xml, msg, hexstream, refused in CASES:
        doc = '<?xml version="1.0" encoding="UTF-8"?>' + xml
        assert xsd_oracle.encode(set_name, doc, fragment=fragment).hex() == hexstream, name
        if refused is None:
            codec = exi.get_codec(SCHEMA_SETS[set_name].namespace)
            ours = codec.encode_fragment(msg) if fragment else codec.encode(msg)
            assert _infoset(xsd_oracle.decode(set_name, ours, fragment=fragment)) == _infoset(xml), name
