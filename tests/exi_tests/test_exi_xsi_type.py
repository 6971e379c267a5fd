"""xsi:type and undeclared attributes (AT(*)): second-level events with qnames.

xsi:type is ``"xsi:type": "{uri}TypeName"`` in the element's dict (a bare local name is accepted
on encoding where it names one type of the set); the element's content then follows that type's
grammar (EXI 1.0 section 8.5.4.4.1), and a simple-typed element becomes a dict with ``"value"``.
An undeclared attribute is ``"@name"`` or ``"@{uri}name"`` with a str value (AT(*) [untyped
value]); EXIficient merges them with the declared attributes in qname order, and so do we. Both
carry qnames through the stream's string table (URI and local-name partitions, section 7.3,
initialised from the schema as in appendix D, growing with every literal).

The streams below were written by EXIficient compiling the XSDs itself
(``tests/exi_tests/_xsd_oracle.py``); the random differential test over every schema set is
``test_exi_xsd_oracle_diff.py::test_xsd_oracle_xsi_type``.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

import pytest

import exi
from exi.cli import to_xml

ISO2 = "urn:iso:15118:2:2013:MsgDef"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
APP = "urn:iso:15118:2:2010:AppProtocol"
DT = "urn:iso:15118:2:2013:MsgDataTypes"
HDR = "urn:iso:15118:2:2013:MsgHeader"
XS = "http://www.w3.org/2001/XMLSchema"
HEADER = {"SessionID": b"\x01\x02"}
REF = {"DigestMethod": {"Algorithm": "http://x"}, "DigestValue": b"\x01\x02"}


def _pv(v: int) -> dict[str, Any]:
    return {"Multiplier": 0, "Unit": "V", "Value": v}


def _setup(evccid: Any, header: Any = HEADER) -> dict[str, Any]:
    return {"V2G_Message": {"Header": header, "Body": {"SessionSetupReq": {"EVCCID": evccid}}}}


# (name, namespace, fragment, message, EXIficient's stream)
CASES = [
    ("header-own-type", ISO2, False, _setup(b"\x01\x02", {"xsi:type": f"{{{HDR}}}MessageHeaderType", **HEADER}),
     "80989900002010247402010200"),
    ("hex-leaf-named-type", ISO2, False, _setup({"xsi:type": f"{{{DT}}}evccIDType", "value": b"\x01\x02"}),
     "809800804091d4b804f808040800"),
    ("hex-leaf-builtin", ISO2, False, _setup({"xsi:type": f"{{{XS}}}hexBinary", "value": b"\x01\x02"}),
     "809800804091d4a00380201020"),
    ("ac-charge-parameter", ISO2, False,
     {"V2G_Message": {"Header": HEADER, "Body": {"ChargeParameterDiscoveryReq": {
         "RequestedEnergyTransferMode": "AC_three_phase_core",
         "AC_EVChargeParameter": {"xsi:type": f"{{{DT}}}AC_EVChargeParameterType", "DepartureTime": 3600,
                                  "EAmount": _pv(20), "EVMaxVoltage": _pv(400), "EVMaxCurrent": _pv(32),
                                  "EVMinCurrent": _pv(6)}}}}},
     "80980080409094445c0004480e03100500c40900303100800c400600"),
    ("attribute-no-namespace", ISO2, False, _setup(b"\x01\x02", {"@foo": "x", **HEADER}),
     "8098b104666f6f037800804091d008040800"),
    # a new URI joins the table: the second attribute of urn:x hits it
    ("attributes-new-uri", ISO2, False,
     {"V2G_Message": {"Header": {"@foo": "x", "@{urn:x}bar": "y", "@{urn:x}zz": "yy", **HEADER},
                      "Body": {"SessionSetupReq": {"@{urn:x}bar": "q", "EVCCID": {"@Id": "a", "value": b"\x01\x02"}}}}},
     "8098b00575726e3a78046261720379b104666f6f0378ba037a7a04797900804091dba0001b8ac40101b080804080"),
    ("type-and-attributes", ISO2, False,
     _setup({"xsi:type": f"{{{DT}}}evccIDType", "@{urn:x}b": "c", "value": b"\x01\x02"},
            {"xsi:type": f"{{{HDR}}}MessageHeaderType", "@foo": "x", **HEADER}),
     "809899002c41199bdbc0de00201024752e013f600aeae4dc74f004c406c602010200"),
    # undeclared attributes sort among the declared ones (A < Id < M < URI < Z)
    ("attributes-merged", DSIG, True, {"Reference": {"@A": "1", "Id": "x", "@M": "2", "URI": "#a", "@Z": "3", **REF}},
     "805ab20482066200de212049a06644108d862409680ccd05343a3a381d1797bc2010081170"),
    ("attribute-after-declared", DSIG, True, {"Reference": {"Id": "i", "@Z": "1", **REF}},
     "805801b4c2409680cc5829a1d1d1c0e8bcbde10080408b80"),
    ("type-then-nil", DSIG, True, {"Reference": {"xsi:type": f"{{{DSIG}}}ReferenceType", "xsi:nil": True, "Id": "i"}},
     "805a9a008ea80369ae"),
    # after xsi:nil the empty grammar: AT(*) at its second level, before and after a declared attribute
    ("nil-attribute-after", DSIG, True, {"Reference": {"xsi:nil": True, "Id": "i", "@Z": "1"}}, "805aa80369c204b406635c"),
    ("nil-attribute-before", DSIG, True, {"Reference": {"xsi:nil": True, "@A": "1", "Id": "i"}}, "805aac4409040cc401b4d700"),
    ("builtin-string", DSIG, True, {"DigestValue": {"xsi:type": f"{{{XS}}}string", "value": "abc"}}, "800e6004e056162635c0"),
    ("builtin-empty-string", DSIG, True, {"DigestValue": {"xsi:type": f"{{{XS}}}string", "value": ""}}, "800e6004f170"),
    ("builtin-int", DSIG, True, {"DigestValue": {"xsi:type": f"{{{XS}}}int", "value": -5}}, "800e6003a822e0"),
    ("builtin-int-nil", DSIG, True, {"DigestValue": {"xsi:type": f"{{{XS}}}int", "xsi:nil": True}}, "800e6003b55c"),
    ("empty-binary-attribute", DSIG, True, {"DigestValue": {"@a": "x", "value": b""}}, "800ec813081bc45c"),
    ("apphand-empty-partition", APP, False,
     {"supportedAppProtocolReq": {"AppProtocol": [{"ProtocolNamespace": {"@Id": "a", "value": "G"},
                                                   "VersionNumberMajor": 874, "VersionNumberMinor": 324,
                                                   "SchemaID": 246, "Priority": 18}]}},
     "800b20692c806c203471d40c310087b08880"),
    # the relaxed fragment grammar (ISO-2 eMAID, declared with two types): AT(*) is first-level there
    ("relaxed-nil", ISO2, True, {"eMAID": {"xsi:nil": True, "Id": "a"}}, "80ec809a01b0dfa0"),
    ("relaxed-nil-attribute", ISO2, True, {"eMAID": {"xsi:nil": True, "@zz": "q", "Id": "a"}}, "80ec809a01b0d081bd3d01b8dfa0"),
    ("relaxed-attribute", ISO2, True, {"eMAID": {"@zz": "q", "Id": "a", "value": "DE1234"}},
     "80ec0201b082840de9e80dc60010888a62646669e9e8"),
]


@pytest.mark.parametrize("name,ns,frag,msg,hexstream", CASES, ids=[c[0] for c in CASES])
def test_second_level_both_ways(make_codec: Callable[[str], Any], name: str, ns: str, frag: bool,
                                msg: dict[str, Any], hexstream: str) -> None:
    codec = make_codec(ns)
    data = bytes.fromhex(hexstream)
    assert (codec.encode_fragment(msg) if frag else codec.encode(msg)).hex() == hexstream
    assert (codec.decode_fragment(data) if frag else codec.decode(data)) == msg
    # every cut of the stream is a DecodeError, never another exception
    for cut in range(1, len(data)):
        with pytest.raises(exi.DecodeError):
            codec.decode_fragment(data[:cut]) if frag else codec.decode(data[:cut])
    # every one-bit flip decodes to a dict or raises DecodeError (string-table ids, literals)
    for bit in range(8, 8 * len(data)):
        bad = bytearray(data)
        bad[bit >> 3] ^= 0x80 >> (bit & 7)
        try:
            got = codec.decode_fragment(bytes(bad)) if frag else codec.decode(bytes(bad))
        except exi.DecodeError:
            continue
        assert isinstance(got, dict)


def test_bare_type_name(make_codec: Callable[[str], Any]) -> None:
    """A bare local name is accepted where it names one type; decoding gives the qualified name."""
    codec = make_codec(ISO2)
    bare = _setup({"xsi:type": "evccIDType", "value": b"\x01\x02"})
    full = _setup({"xsi:type": f"{{{DT}}}evccIDType", "value": b"\x01\x02"})
    assert codec.encode(bare) == codec.encode(full)
    assert codec.decode(codec.encode(bare)) == full


def test_xsi_type_errors(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(ISO2)

    def err(evccid: Any) -> exi.EncodeError:
        with pytest.raises(exi.EncodeError) as ei:
            codec.encode(_setup(evccid))
        return ei.value

    e = err({"xsi:type": "{urn:x}nothing", "value": b"\x01"})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionSetupReq.EVCCID.xsi:type", "unknown")
    e = err({"xsi:type": 7, "value": b"\x01"})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionSetupReq.EVCCID.xsi:type", "type")
    # the named type's grammar decides the content: a string type takes no bytes
    e = err({"xsi:type": f"{{{XS}}}string", "value": b"\x01"})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionSetupReq.EVCCID.value", "type")
    e = err({"@{urn:x": "1", "value": b"\x01"})
    assert e.rule == "type" and e.path.endswith("EVCCID.@{urn:x")
    e = err({"@a": 1, "value": b"\x01"})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionSetupReq.EVCCID.@a", "type")
    # a simple-typed element given as a dict needs a second-level key
    e = err({"value": b"\x01"})
    assert (e.path, e.rule) == ("V2G_Message.Body.SessionSetupReq.EVCCID", "type")
    # a local name that names types in two namespaces is ambiguous
    ambiguous = [n for n, c in _local_counts(codec).items() if c > 1]
    if ambiguous:
        e = err({"xsi:type": ambiguous[0], "value": b"\x01"})
        assert e.rule == "type" and "several types" in str(e)


def _local_counts(codec: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _uri, local in codec._tables.XSI_TYPES:
        counts[local] = counts.get(local, 0) + 1
    return counts


def _qname_position(ns: str, data: bytes) -> int:
    """Bit offset of the first qname in a stream, found with the pure-Python engine."""
    import exi._engine as eng

    seen: list[int] = []
    orig = eng._read_qname

    def spy(r: Any) -> Any:
        seen.append(r.pos)
        return orig(r)

    eng._read_qname = spy
    try:
        exi.Codec(ns, exi.NAMESPACES[ns], engine=eng).decode(data)
    finally:
        eng._read_qname = orig
    return seen[0]


def test_qname_stream_errors(make_codec: Callable[[str], Any]) -> None:
    """URI and local-name ids past the string table, and a literal that is already in it."""
    codec = make_codec(ISO2)
    good = bytes.fromhex("809800804091d4b804f808040800")  # EVCCID xsi:type="{MsgDataTypes}evccIDType"
    n_uris = len(codec._tables.STRING_TABLE[0])
    width = n_uris.bit_length()
    at = _qname_position(ISO2, good)
    bits = bin(int(good.hex(), 16))[2:].zfill(8 * len(good))
    uri = codec._tables.STRING_TABLE[0].index(DT)
    assert int(bits[at:at + width], 2) == uri + 1

    def with_bits(pos: int, value: str) -> bytes:
        b = bits[:pos] + value + bits[pos + len(value):]
        return int(b, 2).to_bytes(len(good), "big")

    for v in range(n_uris + 1, 1 << width):
        with pytest.raises(exi.DecodeError, match="URI id"):
            codec.decode(with_bits(at, format(v, f"0{width}b")))
    # local-name hit (0) then its compact id: past the partition's end is refused
    names = codec._tables.STRING_TABLE[1][uri]
    lw = (len(names) - 1).bit_length()
    assert bits[at + width:at + width + 8] == "00000000"
    if len(names) < (1 << lw):
        with pytest.raises(exi.DecodeError, match="local-name id"):
            codec.decode(with_bits(at + width + 8, format((1 << lw) - 1, f"0{lw}b")))
    # URI miss (0) with a literal that is already in the table: "" (length 0)
    with pytest.raises(exi.DecodeError, match="already in the string table"):
        codec.decode(with_bits(at, "0" * width + "00000000"))


def test_unknown_type_in_stream(make_codec: Callable[[str], Any]) -> None:
    """A stream whose xsi:type names no type the decoder knows is a DecodeError, not a guess."""
    codec = make_codec(DSIG)
    data = codec.encode_fragment({"DigestValue": {"xsi:type": f"{{{XS}}}int", "value": -5}})
    t = codec._tables
    known = {k: v for k, v in t.XSI_TYPES.items() if k != (XS, "int")}
    grammar = type(codec._frag)(t.STATES, t.FRAG_STATE, t.FRAG_KEYS, True, t.STRING_TABLE, known)
    with pytest.raises(exi.DecodeError, match="xsi:type names"):
        grammar.decode(data)
    with pytest.raises(exi.EncodeError):
        codec.encode_fragment({"DigestValue": {"xsi:type": "{urn:x}T", "value": -5}})


def test_xml_output() -> None:
    msg = _setup({"xsi:type": f"{{{DT}}}evccIDType", "@{urn:x}b": "c", "@a": "d", "value": "0102"})
    xml = to_xml(msg, ISO2)
    assert 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' in xml
    import re

    pre = {u: p for p, u in re.findall(r'xmlns:(\w+)="([^"]*)"', xml)}
    assert f'xsi:type="{pre[DT]}:evccIDType"' in xml  # the type's namespace declared, its prefix in the value
    assert f'{pre["urn:x"]}:b="c"' in xml and ' a="d"' in xml


# The XML Schema built-ins the V2G schemas never use, named by xsi:type on an undeclared element
# (<x:p xsi:type="xs:T">value</x:p> in xmldsig's Object): EXI's Float (mantissa and exponent,
# trailing zeros moved into the exponent), Decimal (sign, integral part, reversed fraction
# digits), Date-Time (year offset from 2000, month*32+day, time, reversed fraction, time zone)
# and List datatypes; duration and the like are strings. decimal.Decimal, float, str, list.
BUILTINS = [
    ('float', 1.5, '803980575726e3a7802705806002c07c00dc'),
    ('float', 100.0, '803980575726e3a7802705806002c00808dc'),
    ('float', 0.0, '803980575726e3a7802705806002c00000dc'),
    ('double', 1.2345678901234567e+20, '803980575726e3a7802705806002843cbd6f5e2c57b8a810dc'),
    ('double', float('-inf'), '803980575726e3a78027058060028807fdfcdc'),
    ('double', -3.25e-300, '803980575726e3a78027058060028e2016b408dc'),
    ('decimal', Decimal('0.05'), '803980575726e3a7802705806002600191b8'),
    ('decimal', Decimal('-7.5'), '803980575726e3a7802705806002683829b8'),
    ('decimal', Decimal('100'), '803980575726e3a7802705806002632001b8'),
    ('dateTime', '2026-12-02T10:20:30.123-05:30', '803980575726e3a780270580600240d6094a3dc102a22370'),
    ('dateTime', '1999-01-31T00:00:00', '803980575726e3a78027058060024800fc00001b80'),
    ('date', '2026-02-28+14:00', '803980575726e3a780270580600220d173c00dc0'),
    ('time', '10:20:30.5Z', '803980575726e3a78027058060050528f416e00dc0'),
    ('gYear', '-0044', '803980575726e3a78027058060034fd878dc'),
    ('gYearMonth', '2026-12', '803980575726e3a780270580600360d6006e'),
    ('gMonthDay', '--12-25', '803980575726e3a78027058060032cc8dc'),
    ('gDay', '---01Z', '803980575726e3a7802705806002e00dc01b80'),
    ('gMonth', '--11', '803980575726e3a78027058060030b00dc'),
    ('NMTOKENS', ['a', 'b1'], '803980575726e3a7802705806000e020361046231370'),
    ('ENTITIES', [], '803980575726e3a780270580600010dc'),
    ('duration', 'P1Y2M', '803980575726e3a7802705806002a07503159324d370'),
]


@pytest.mark.parametrize("tname,value,hexstream", BUILTINS, ids=[f"{b[0]}-{i}" for i, b in enumerate(BUILTINS)])
def test_xml_schema_builtins(make_codec: Callable[[str], Any], tname: str, value: Any, hexstream: str) -> None:
    codec = make_codec(DSIG)
    msg = {"Object": {"{urn:x}p": [{"xsi:type": f"{{{XS}}}{tname}", "value": value}]}}
    data = bytes.fromhex(hexstream)
    assert codec.encode_fragment(msg).hex() == hexstream
    got = codec.decode_fragment(data)
    assert got == msg and type(got["Object"]["{urn:x}p"][0]["value"]) is type(value)
    for cut in range(1, len(data)):
        with pytest.raises(exi.DecodeError):
            codec.decode_fragment(data[:cut])


@pytest.mark.parametrize("tname,value,rule", [
    ("decimal", 1.5, "type"), ("decimal", Decimal("NaN"), "range"), ("float", "1.5", "type"),
    ("dateTime", "2026-12-02", "type"), ("date", "2026-13-01", "range"), ("time", "25:00:00", "range"),
    ("NMTOKENS", "a b", "type"),
])
def test_builtin_value_errors(make_codec: Callable[[str], Any], tname: str, value: Any, rule: str) -> None:
    codec = make_codec(DSIG)
    with pytest.raises(exi.EncodeError) as ei:
        codec.encode_fragment({"Object": {"{urn:x}p": [{"xsi:type": f"{{{XS}}}{tname}", "value": value}]}})
    assert ei.value.rule == rule
