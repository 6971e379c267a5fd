"""Wildcards (``xs:any``) and undeclared elements: content outside the declared content model.

Only the xmldsig schema has wildcards (the ##other/##any content of SignatureMethod, Transform,
KeyInfo, X509Data, PGPData, SPKIData, Object, SignatureProperty; forbidden in V2G signatures
[V2G2-771]); any element may carry undeclared elements (second-level SE(*)). Both are
``"{uri}local"`` keys (``"{}local"`` without a namespace), each a list, where the dict has them
among the element's children. A global element of the set keeps its declared grammar and shape;
any other element is a dict of ``"@name"`` attributes, ``"value"`` text and ``"{uri}local"``
children, written as EXIficient writes it for V2G: its built-in element grammar capped with
xsi:type="xs:anyType" (EXI Profile), then the ur-type grammar. The streams below are
EXIficient's (``tests/exi_tests/_xsd_oracle.py``, from the XML each message renders to); the
random differential test is ``test_exi_xsd_oracle_diff.py::test_xsd_oracle_undeclared_elements``.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest

import exi

NS_DSIG = "http://www.w3.org/2000/09/xmldsig#"


def test_declared_content_beside_wildcards_round_trips(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(NS_DSIG)
    for msg in ({"KeyInfo": {"Id": "k1", "KeyName": ["contract key"]}}, {"Object": {"Id": "o1"}},
                {"Transform": {"Algorithm": "http://www.w3.org/TR/canonical-exi/"}}):
        assert codec.decode_fragment(codec.encode_fragment(msg)) == msg


@pytest.mark.parametrize("msg, path", [
    # plain keys are never taken for undeclared elements: those are "{uri}local"
    ({"SignatureProperty": {"Target": "#x", "Foreign": "text"}}, "SignatureProperty.Foreign"),
    ({"KeyInfo": {"Id": "k1", "Foreign": {"a": "b"}}}, "KeyInfo.Foreign"),
    ({"KeyInfo": {"Id": "k1", "{urn:x}Foreign": {"a": "b"}}}, "KeyInfo.{urn:x}Foreign"),
    ({"KeyInfo": {"Id": "k1", "{urn:x}Foreign": ["text"]}}, "KeyInfo.{urn:x}Foreign"),
])
def test_bad_wildcard_content_is_refused_with_its_path(make_codec: Callable[[str], Any], msg: dict, path: str) -> None:
    with pytest.raises(exi.EncodeError, match=path.replace(".", r"\.").replace("{", r"\{")):
        make_codec(NS_DSIG).encode_fragment(msg)


ISO2 = "urn:iso:15118:2:2013:MsgDef"
HEADER = {"SessionID": b"\x01\x02"}


def _stop(req: dict) -> dict:
    return {"V2G_Message": {"Header": HEADER, "Body": {"SessionStopReq": req}}}


# (name, namespace, fragment, message, EXIficient's stream)
CASES = [
    ("signature-property", NS_DSIG, True, {"SignatureProperty": {"Target": "#x", "{urn:x}Foreign": [{"value": "text"}]}},
     "8079042378002bab9371d3c042337b932b4b3b72c03000c60ce8caf0e8b700"),
    ("signature-method", NS_DSIG, True, {"SignatureMethod": {"Algorithm": "a", "{urn:x}p": [{"value": "q"}]}},
     "807006c2402bab9371d3c01382c03000c606e2b700"),
    # the second p: its built-in grammar has learnt AT(xsi:type) (one more bit)
    ("object-repeated", NS_DSIG, True, {"Object": {"{urn:x}p": [{"value": "q"}, {"@k": "v"}], "{urn:y}r": [{}]}},
     "803980575726e3a78027058060018c0dc5300560180060204d606ec800aeae4dc74f204e4b00c0031370"),
    # the third p: AT(xsi:type) is learnt once, so still one more bit
    ("object-three", NS_DSIG, True, {"Object": {"{urn:x}p": [{}, {"value": "a"}, {}]}},
     "803980575726e3a780270580600188c0158060018c0d853005601800626e"),
    ("key-info", NS_DSIG, True, {"KeyInfo": {"KeyName": ["k"], "{urn:x}p": [{}]}}, "8020406d6700aeae4dc74f004e0b00c003145c"),
    ("x509-nested", NS_DSIG, True, {"X509Data": {"{urn:x}p": [{"{urn:x}p": [{"value": "in"}]}]}},
     "809680575726e3a7802705806001870056018006304696e5d700"),
    ("transform-mixed", NS_DSIG, True,
     {"Transform": {"Algorithm": "http://a", "{urn:x}p": [{"@a": "1", "value": "t", "{}q": [{}]}]}},
     "808414d0e8e8e0745e5ec2402bab9371d3c01382c03000c0409840cc581ba0409c56018006255c"),
    # a global element of the set in a wildcard position keeps its grammar (a simple type here)
    ("global-in-wildcard", NS_DSIG, True, {"Object": {f"{{{NS_DSIG}}}KeyName": ["global"], "{urn:x}p": [{}]}},
     "8039d002008676c6f62616c0015d5c9b8e9e009c1601800626e0"),
    # undeclared elements: after the content (the state stays), in the start tag (then content2)
    ("undeclared-after", ISO2, False, _stop({"ChargingSession": "Terminate", "{}extra": [{"value": "x"}]}),
     "809800804091f0841995e1d1c985300a0018c0de10"),
    ("undeclared-before", ISO2, False, _stop({"{}extra": [{"value": "x"}, {}], "ChargingSession": "Terminate"}),
     "809800804091fd10665787472614c0280063037868807a6014003100"),
    ("undeclared-attributes-children-text", ISO2, False,
     _stop({"ChargingSession": "Terminate",
            "{urn:x}e": [{"@a": "1", "@{urn:y}b": "2", "{}c": [{"value": "t"}], "value": "after"}]}),
     "809800804091f08015d5c9b8e9e00995300a00180409840cc4002bab9371d3c813101991102634c028006303746076166746572400"),
    ("in-simple-before-value", ISO2, False,
     {"V2G_Message": {"Header": HEADER, "Body": {"SessionSetupReq": {"EVCCID": {"{}z": [{}], "value": b"\x01"}}}}},
     "809800804091d68813d260140031004040"),
    ("in-simple-after-value", ISO2, False,
     {"V2G_Message": {"Header": HEADER, "Body": {"SessionSetupReq": {"EVCCID": {"value": b"\x01", "{}z": [{}]}}}}},
     "809800804091d004061027a4c028006200"),
    ("global-undeclared", ISO2, False,
     _stop({"ChargingSession": "Terminate", "{urn:iso:15118:2:2013:MsgBody}SessionStopRes": [{"ResponseCode": "OK"}]}),
     "809800804091f09803b00000"),
    ("relaxed-fragment", ISO2, True, {"eMAID": {"Id": "a", "{}u": [{}], "value": "DE1"}},
     "80ec0201b0bf8409d5300a0018bd4151114c7d3d00"),
]


@pytest.mark.parametrize("name,ns,frag,msg,hexstream", CASES, ids=[c[0] for c in CASES])
def test_wildcard_and_undeclared_both_ways(make_codec: Callable[[str], Any], name: str, ns: str, frag: bool,
                                          msg: dict, hexstream: str) -> None:
    codec = make_codec(ns)
    data = bytes.fromhex(hexstream)
    assert (codec.encode_fragment(msg) if frag else codec.encode(msg)).hex() == hexstream
    assert (codec.decode_fragment(data) if frag else codec.decode(data)) == msg
    for cut in range(1, len(data)):
        with pytest.raises(exi.DecodeError):
            codec.decode_fragment(data[:cut]) if frag else codec.decode(data[:cut])
    for bit in range(8, 8 * len(data)):
        bad = bytearray(data)
        bad[bit >> 3] ^= 0x80 >> (bit & 7)
        try:
            got = codec.decode_fragment(bytes(bad)) if frag else codec.decode(bytes(bad))
        except exi.DecodeError:
            continue
        assert isinstance(got, dict)


# (name, message, EXIficient's stream): children in an order the keyed dict alone would not give
# back, so the decoder adds "$order" (every child's key in stream order) and the encoder follows it
ORDERED = [
    # a repeated choice: KeyName again after MgmtData
    ("keyinfo-interleaved", {"KeyInfo": {"KeyName": ["a", "b"], "MgmtData": ["m"],
                                         "$order": ["KeyName", "MgmtData", "KeyName"]}},
     "8020406c2601b68006c48b80"),
    # each once, but against the grammar's order (the keyed encoder would write KeyName first)
    ("keyinfo-out-of-grammar-order", {"KeyInfo": {"MgmtData": ["m"], "KeyName": ["a"], "$order": ["MgmtData", "KeyName"]}},
     "8021c06da001b0a2e0"),
    ("x509data-out-of-grammar-order", {"X509Data": {"X509SubjectName": ["s"], "X509SKI": [b"\x01"],
                                                    "$order": ["X509SubjectName", "X509SKI"]}},
     "809500dcc40202d700"),
    ("object-p-r-p", {"Object": {"{urn:x}p": [{}, {}], "{urn:y}r": [{}], "$order": ["{urn:x}p", "{urn:y}r", "{urn:x}p"]}},
     "803980575726e3a78027058060018800aeae4dc74f204e4b00c00311802b00c0031370"),
    ("wildcard-between", {"KeyInfo": {"KeyName": ["a", "b"], "{urn:x}p": [{}], "$order": ["KeyName", "{urn:x}p", "KeyName"]}},
     "8020406c2700aeae4dc74f004e0b00c0031000d89170"),
    ("spki-wildcard-between", {"SPKIData": {"SPKISexp": [b"\x01", b"\x02"], "{urn:x}p": [{}],
                                            "$order": ["SPKISexp", "{urn:x}p", "SPKISexp"]}},
     "806001012015d5c9b8e9e009c16018006200204ae0"),
    # inside an element of no declaration (its built-in grammar)
    ("built-in-a-b-a", {"Object": {"{urn:x}p": [{"{}a": [{}, {}], "{}b": [{}], "$order": ["{}a", "{}b", "{}a"]}]}},
     "803980575726e3a7802705806001848130ac03000c410262580600188200f5806001896e"),
    # mixed content with "$order": the texts are one per gap
    ("keyinfo-mixed-text", {"KeyInfo": {"KeyName": ["a", "b"], "MgmtData": ["m"], "$order": ["KeyName", "MgmtData", "KeyName"],
                                        "value": ["t0", "t1", "", "t3"]}},
     "8022411d0c0006c29047431601b68006c490474338b8"),
]


def _without_order(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _without_order(v) for k, v in o.items() if k != "$order"}
    if isinstance(o, list):
        return [_without_order(x) for x in o]
    return o


@pytest.mark.parametrize("name,msg,hexstream", ORDERED, ids=[c[0] for c in ORDERED])
def test_order_the_keyed_dict_cannot_hold_takes_order(make_codec: Callable[[str], Any], name: str, msg: dict,
                                                      hexstream: str) -> None:
    """EXIficient's stream decodes to the dict with "$order", which encodes to that stream; the
    same dict without "$order" gives other bytes (or is refused): "$order" is there only when
    needed. Cut streams and one-bit flips give DecodeError or a dict, nothing else."""
    codec = make_codec(NS_DSIG)
    data = bytes.fromhex(hexstream)
    assert codec.decode_fragment(data) == msg
    assert codec.encode_fragment(msg) == data
    try:
        keyed = codec.encode_fragment(_without_order(msg))
    except exi.EncodeError:
        keyed = None
    assert keyed != data
    for cut in range(1, len(data)):
        with pytest.raises(exi.DecodeError):
            codec.decode_fragment(data[:cut])
    for bit in range(8, 8 * len(data)):
        bad = bytearray(data)
        bad[bit >> 3] ^= 0x80 >> (bit & 7)
        try:
            got = codec.decode_fragment(bytes(bad))
        except exi.DecodeError:
            continue
        assert isinstance(got, dict)


def test_order_is_left_out_where_the_keyed_dict_gives_the_stream_back(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(NS_DSIG)
    msg = {"KeyInfo": {"KeyName": ["a"], "MgmtData": ["m"]}}
    data = bytes.fromhex("8020406c2601b6a2e0")  # EXIficient's
    assert codec.decode_fragment(data) == msg
    assert codec.encode_fragment(msg) == data
    # the same order given explicitly gives the same bytes
    assert codec.encode_fragment({"KeyInfo": {**msg["KeyInfo"], "$order": ["KeyName", "MgmtData"]}}) == data


@pytest.mark.parametrize("content, path, rule", [
    ({"KeyName": ["a"], "$order": ["KeyName", "KeyName"]}, "KeyInfo.KeyName", "occurs"),
    ({"KeyName": ["a", "b"], "$order": ["KeyName"]}, "KeyInfo.KeyName", "occurs"),
    ({"KeyName": ["a"], "$order": ["MgmtData"]}, "KeyInfo.$order", "unknown"),
    ({"KeyName": ["a"], "$order": "KeyName"}, "KeyInfo.$order", "type"),
    ({"KeyName": ["a"], "$order": [1]}, "KeyInfo.$order", "unknown"),
    ({"Id": "i", "KeyName": ["a"], "$order": ["Id", "KeyName"]}, "KeyInfo.Id", "unknown"),
])
def test_bad_order_is_refused_with_its_path(make_codec: Callable[[str], Any], content: dict, path: str, rule: str) -> None:
    with pytest.raises(exi.EncodeError) as info:
        make_codec(NS_DSIG).encode_fragment({"KeyInfo": content})
    assert info.value.path == path and info.value.rule == rule


def test_order_follows_the_grammar_or_says_where_not(make_codec: Callable[[str], Any]) -> None:
    """Declared children out of their sequence are refused, naming the child and what was due."""
    codec = make_codec(NS_DSIG)
    msg = {"Reference": {"DigestValue": b"\x01", "DigestMethod": {"Algorithm": "a"},
                         "$order": ["DigestValue", "DigestMethod"]}}
    with pytest.raises(exi.EncodeError, match="not allowed here") as info:
        codec.encode_fragment(msg)
    assert info.value.path == "Reference.DigestValue"
    ok = {"Reference": {"DigestMethod": {"Algorithm": "a"}, "DigestValue": b"\x01", "$order": ["DigestMethod", "DigestValue"]}}
    assert codec.encode_fragment(ok) == codec.encode_fragment(_without_order(ok))


def test_text_runs_of_mixed_content_take_one_text_per_gap(make_codec: Callable[[str], Any]) -> None:
    """xmldsig types are mixed: text may come before, between and after children. One run is
    "value" where the dict has it; several (or one the dict's order cannot place: k, text, k)
    make "value" a list, one text per gap between the children. EXIficient's streams of
    a<KeyName>k</KeyName>b<KeyName>l</KeyName>c and <KeyName>k</KeyName>b<KeyName>l</KeyName>."""
    codec = make_codec(NS_DSIG)
    for msg, hexstream in [
        ({"KeyInfo": {"KeyName": ["k", "l"], "value": ["a", "b", "c"]}}, "802240d84006d690362001b6240d8e2e"),
        ({"KeyInfo": {"KeyName": ["k", "l"], "value": ["", "b", ""]}}, "8020406d690362001b622e"),
        ({"KeyInfo": {"value": "before", "KeyName": ["k"]}}, "8022421899599bdc994006d68b80"),
        ({"KeyInfo": {"KeyName": ["k"], "value": "after"}}, "8020406d690761667465728b80"),
    ]:
        assert codec.encode_fragment(msg).hex() == hexstream
        assert codec.decode_fragment(bytes.fromhex(hexstream)) == msg
    with pytest.raises(exi.EncodeError) as ei:
        codec.encode_fragment({"KeyInfo": {"KeyName": ["k", "l"], "value": ["a", "b"]}})
    assert (ei.value.path, ei.value.rule) == ("KeyInfo.value", "occurs")


def test_xml_output_of_wildcards_and_mixed_text() -> None:
    """Mixed content with its texts in place, each element in its namespace (KeyInfo and its
    children in xmldsig's, the foreign element in its own), "$order" as the children's order."""
    import xml.etree.ElementTree as ET

    from exi.cli import to_xml

    def seq(xml: str) -> list:
        root = ET.fromstring(xml.split("\n", 1)[1])
        out = [root.text or ""]
        for c in root:
            out += [(c.tag, dict(c.attrib), c.text), c.tail or ""]
        return out

    d = "{%s}" % NS_DSIG
    xml = to_xml({"KeyInfo": {"KeyName": ["k", "l"], "value": ["a", "", "c", ""], "{urn:x}p": [{"@a": "1"}]}}, NS_DSIG)
    assert seq(xml) == ["a", (d + "KeyName", {}, "k"), "", (d + "KeyName", {}, "l"), "c", ("{urn:x}p", {"a": "1"}, None), ""]

    xml = to_xml({"KeyInfo": {"KeyName": ["a", "b"], "{urn:x}p": [{}], "MgmtData": ["m"], "value": ["", "t", "", "", ""],
                              "$order": ["KeyName", "{urn:x}p", "MgmtData", "KeyName"]}}, NS_DSIG)
    assert "$order" not in xml
    assert seq(xml) == ["", (d + "KeyName", {}, "a"), "t", ("{urn:x}p", {}, None), "", (d + "MgmtData", {}, "m"), "",
                        (d + "KeyName", {}, "b"), ""]


# EXIficient with its default settings (built-in grammars that learn: AT(q), SE(q), CH and EE
# become first-level productions of that qname's grammar), from the XML of each message
LEARNING = [
    ({"Object": {"{urn:x}p": [{}, {}, {}]}}, "803980575726e3a7802700c003001b80"),
    ({"Object": {"{urn:x}p": [{"@a": "1", "value": "t"}, {"@a": "2", "value": "u"}]}},
     "803980575726e3a780270481308198f03741801033200dd4dc"),
    ({"Object": {"{urn:x}p": [{"{urn:x}q": [{}, {}], "value": ["", "t", ""]}, {"{urn:x}q": [{}]}]}},
     "803980575726e3a780270b0138981ba4c01460013700"),
    ({"Object": {"{urn:x}p": [{"value": ["a", "b"], "{urn:x}q": [{"@z": "1"}]}, {"value": "c"},
                              {"{urn:x}q": [{"value": "x"}], "value": "after"}]}},
     "803980575726e3a780270c0d86c04e29027a0331940d8a300006c71801b006c0de003b0b33a32b94dc"),
    ({"Object": {f"{{{NS_DSIG}}}KeyName": ["g"], "{urn:x}p": [{f"{{{NS_DSIG}}}KeyName": ["h"]}]}},
     "8039d002003670015d5c9b8e9e009c2a004006d03700"),
]


@pytest.mark.parametrize("msg,hexstream", LEARNING, ids=[str(i) for i in range(len(LEARNING))])
def test_learning_built_in_grammars_decode(make_codec: Callable[[str], Any], msg: dict, hexstream: str) -> None:
    """Decoding takes what a learning encoder writes; our encoder writes EXIficient's V2G form."""
    codec = make_codec(NS_DSIG)
    data = bytes.fromhex(hexstream)
    assert codec.decode_fragment(data) == msg
    assert codec.decode_fragment(codec.encode_fragment(msg)) == msg
    for cut in range(1, len(data)):
        with pytest.raises(exi.DecodeError):
            codec.decode_fragment(data[:cut])
