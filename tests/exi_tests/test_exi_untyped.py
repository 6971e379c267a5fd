"""CH [untyped value] (EXI 1.0 section 8.5.4.4.1), as EXIficient writes it (RISE-V2G sends an
enumeration as an untyped string): after it the grammar is Element_i,content2, whose EE is a
second-level event, so the element ends with escape + EE. Streams built bit by bit from a valid
encoding; the field corpus holds the real RISE-V2G stream (issue_reported_streams.json #17)."""
from __future__ import annotations

import importlib
from typing import Any, Callable

import pytest

import exi

APP = "urn:iso:15118:2:2010:AppProtocol"
RES = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}


def _bits(data: bytes) -> str:
    return "".join(f"{b:08b}" for b in data)


def _bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def _uint(n: int) -> str:
    out = ""
    while True:
        low, n = n & 0x7F, n >> 7
        out += f"{(0x80 if n else 0) | low:08b}"
        if not n:
            return out


def _value_offset() -> int:
    """Bit offset of the ResponseCode enumeration value in the plain encoding (pure engine trace)."""
    eng = importlib.import_module("exi._engine")
    from exi._codec import NAMESPACES, Codec

    codec = Codec(APP, NAMESPACES[APP], engine=eng)
    data = codec.encode(RES)
    seen = []
    orig = eng._dec_value
    eng._dec_value = lambda r, dt, qn: (seen.append(r.pos), orig(r, dt, qn))[1]
    try:
        codec.decode(data)
    finally:
        eng._dec_value = orig
    return seen[0]


def _untyped(after: str, text: str = "OK_SuccessfulNegotiation") -> bytes:
    plain = _bits(exi.get_codec(APP).encode(RES))
    pos = _value_offset()
    assert plain[pos - 1] == "0"  # the first-level CH of the enumeration's simple type
    # escape (1 bit), second-level CH [untyped] = 6 of 7 (3 bits), the string literal, then `after`
    literal = _uint(len(text) + 2) + "".join(_uint(ord(c)) for c in text)
    return _bytes(plain[:pos - 1] + "1" + "110" + literal + after + plain[pos + 2 + 1:])


def test_untyped_value_then_undeclared_ee(make_codec: Callable[[str], Any]) -> None:
    msg = make_codec(APP).decode(_untyped("1" + "00"))
    assert msg == RES  # the text of an enumeration value: the same dict as the typed encoding


def test_after_an_untyped_value_the_element_goes_on_in_content2(make_codec: Callable[[str], Any]) -> None:
    """Element_i,content2 after CH [untyped value]: {CH} at the first level, {EE, SE(*), CH
    [untyped]} at the second (EXIficient's streams of such content: test_exi_deviations.py)."""
    codec = make_codec(APP)
    # a typed CH right after: the two character events are one text
    msg = codec.decode(_untyped("0" + "0"))  # enumeration index 0, then the rest of the stream
    assert msg["supportedAppProtocolRes"]["ResponseCode"] == "OK_SuccessfulNegotiation" * 2
    # SE(*) and CH [untyped] read on: here the bits after them are no qname or string literal
    for after in ("1" + "01", "1" + "10"):
        with pytest.raises(exi.DecodeError):
            codec.decode(_untyped(after))


def test_untyped_text_is_read_back_as_the_schema_type(exi_engine: Any) -> None:
    dt = exi_engine._DT
    # raw datatypes as in the tables: (T_NBIT, nbits, min, max), (T_UINT, min, max), (T_INT, ...),
    # (T_BOOL,), (T_HEX | T_B64, min_len, max_len)
    cases = [((0, 8, 1, 255), " 0 ", 0), ((1, 0, None), "70000", 70000), ((2, None, None), "-5", -5),
             ((3,), "true", True), ((3,), "0", False), ((6, 0, None), "0aFF", b"\x0a\xff"),
             ((7, 0, None), "AAE=", b"\x00\x01"), ((3,), "maybe", "maybe"), ((6, 0, None), "xyz", "xyz"),
             ((1, 0, None), "1.5", "1.5")]
    for raw, text, want in cases:
        got = exi_engine._from_text(dt(raw), text)
        assert got == want and type(got) is type(want), (raw, text, got)
