"""Typed errors: EncodeError names the path and rule, DecodeError the bit offset and expectation."""
from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

import exi
from exi._shape import from_json

ISO2 = "urn:iso:15118:2:2013:MsgDef"
APP = "urn:iso:15118:2:2010:AppProtocol"
CDR = "V2G_Message.Body.CurrentDemandReq"


def _vector(vectors_dir: Path, name: str) -> Dict[str, Any]:
    return json.loads((vectors_dir / name).read_text())


@pytest.fixture
def cdr(vectors_dir: Path, make_codec: Callable[[str], Any]) -> Any:
    vec = _vector(vectors_dir, "iso15118_2_CurrentDemandReq.json")
    codec = make_codec(ISO2)
    return codec, from_json(codec, vec["message"])


def _encode_error(codec: Any, msg: Dict[str, Any]) -> exi.EncodeError:
    with pytest.raises(exi.EncodeError) as info:
        codec.encode(msg)
    assert isinstance(info.value, ValueError) and isinstance(info.value, exi.EXIError)
    return info.value


@pytest.mark.parametrize(
    "mutate, path, rule",
    [
        (lambda d: d.pop("EVTargetCurrent"), f"{CDR}.EVTargetCurrent", "missing"),
        (lambda d: d.pop("EVTargetVoltage"), f"{CDR}.EVTargetVoltage", "missing"),
        (lambda d: d.update(Foo=1), f"{CDR}.Foo", "unknown"),
        (lambda d: d["EVTargetCurrent"].update(Multiplier=7), f"{CDR}.EVTargetCurrent.Multiplier", "range"),
        (lambda d: d["EVTargetCurrent"].update(Value=40000), f"{CDR}.EVTargetCurrent.Value", "range"),
        (lambda d: d["EVTargetCurrent"].update(Unit="Q"), f"{CDR}.EVTargetCurrent.Unit", "range"),
        (lambda d: d["EVTargetCurrent"].update(Value="12"), f"{CDR}.EVTargetCurrent.Value", "type"),
        (lambda d: d["DC_EVStatus"].update(EVReady=1), f"{CDR}.DC_EVStatus.EVReady", "type"),
        (lambda d: d.update(EVTargetCurrent=[d["EVTargetCurrent"]]), f"{CDR}.EVTargetCurrent", "type"),
        (lambda d: d["DC_EVStatus"].update(EVRESSSOC=101), f"{CDR}.DC_EVStatus.EVRESSSOC", "range"),
    ],
)
def test_encode_errors(cdr: Any, mutate: Callable[[Dict[str, Any]], None], path: str, rule: str) -> None:
    codec, base = cdr
    msg = copy.deepcopy(base)
    mutate(msg["V2G_Message"]["Body"]["CurrentDemandReq"])
    err = _encode_error(codec, msg)
    assert (err.path, err.rule) == (path, rule), str(err)
    assert path in str(err)


def test_encode_too_long_binary(cdr: Any) -> None:
    codec, base = cdr
    msg = copy.deepcopy(base)
    msg["V2G_Message"]["Header"]["SessionID"] = b"123456789"
    err = _encode_error(codec, msg)
    assert (err.path, err.rule) == ("V2G_Message.Header.SessionID", "length")


def test_encode_too_many_occurrences(vectors_dir: Path, make_codec: Callable[[str], Any]) -> None:
    vec = _vector(vectors_dir, "app_handshake_SupportedAppProtocolReq.json")
    codec = make_codec(APP)
    msg = copy.deepcopy(vec["message"])
    item = msg["supportedAppProtocolReq"]["AppProtocol"][0]
    msg["supportedAppProtocolReq"]["AppProtocol"] = [dict(item, SchemaID=i % 256) for i in range(20)]
    assert codec.decode(codec.encode(msg)) == msg  # the maximum count (20) is fine
    msg["supportedAppProtocolReq"]["AppProtocol"].append(item)
    err = _encode_error(codec, msg)
    assert (err.path, err.rule) == ("supportedAppProtocolReq.AppProtocol", "occurs")


def test_looped_particle_keeps_its_max_occurs(make_codec: Callable[[str, str], Any]) -> None:
    """SelectedService (maxOccurs 16): unrolled in the EXI 1.0 grammars, looped in the iso15118
    jar's; either way the encoder refuses a 17th, and only a list at exactly 16 ends differently."""
    spec, jar = make_codec(ISO2, "exi"), make_codec(ISO2, "iso15118-jar")

    def msg(n: int) -> Dict[str, Any]:
        return {"V2G_Message": {"Header": {"SessionID": b"\x01\x02"}, "Body": {"PaymentServiceSelectionReq": {
            "SelectedPaymentOption": "Contract",
            "SelectedServiceList": {"SelectedService": [{"ServiceID": i} for i in range(n)]}}}}}

    for codec in (spec, jar):
        assert codec.decode(codec.encode(msg(16))) == msg(16)
        err = _encode_error(codec, msg(17))
        assert err.path.startswith("V2G_Message.Body.PaymentServiceSelectionReq.SelectedServiceList")
        assert err.rule in ("occurs", "unknown")
    assert spec.encode(msg(15)) == jar.encode(msg(15))
    # after the 16th item: EE alone (1 bit) in the EXI 1.0 grammar, SE|EE (2 bits) in the jar's
    a, b = spec.encode(msg(16)), jar.encode(msg(16))
    assert a != b and len(a) <= len(b)
    # the jar tables carry the cap on every repeating SelectedService production (the fragment
    # grammar's single SE(SelectedService) does not repeat); the EXI 1.0 tables need none
    import importlib

    caps = {p[4] for st in importlib.import_module("exi._generated.iso2_jar").STATES for p in st[1]
            if p[1] == "SelectedService" and p[4]}
    assert caps == {16}
    assert not {p[4] for st in importlib.import_module("exi._generated.iso2").STATES for p in st[1]
                if p[1] == "SelectedService" and p[4] and p[4] is not True}


def test_encode_root_errors(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(ISO2)
    assert _encode_error(codec, {"NoSuchMessage": {}}).rule == "unknown"
    assert _encode_error(codec, {}).rule == "type"
    assert _encode_error(codec, {"V2G_Message": 3}).rule == "type"


def test_unicode_strings_roundtrip(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(APP)
    msg = {"supportedAppProtocolReq": {"AppProtocol": [{"ProtocolNamespace": "urn:ü:€:𝄞", "VersionNumberMajor": 2,
                                                        "VersionNumberMinor": 0, "SchemaID": 1, "Priority": 1}]}}
    assert codec.decode(codec.encode(msg)) == msg


# ------------------------------------------------------------------------------------------ decode
def _decode_error(codec: Any, data: bytes, fragment: bool = False) -> exi.DecodeError:
    with pytest.raises(exi.DecodeError) as info:
        (codec.decode_fragment if fragment else codec.decode)(data)
    err = info.value
    assert isinstance(err, ValueError) and isinstance(err, exi.EXIError)
    assert isinstance(err.bit_offset, int) and 0 <= err.bit_offset <= 8 * max(len(data), 1)
    assert err.expected
    return err


@pytest.mark.parametrize("name", ["iso15118_2_CurrentDemandReq.json", "iso15118_2_PaymentDetailsReq.json",
                                  "app_handshake_SupportedAppProtocolReq.json", "iso15118_20_DC_ChargeLoopReq.json"])
def test_every_truncation_is_a_decode_error(vectors_dir: Path, make_codec: Callable[[str], Any], name: str) -> None:
    vec = _vector(vectors_dir, name)
    codec = make_codec(vec["namespace"])
    data = bytes.fromhex(vec["exi_hex"])
    for n in range(len(data)):
        _decode_error(codec, data[:n])


def test_header_and_trailing(vectors_dir: Path, make_codec: Callable[[str], Any]) -> None:
    vec = _vector(vectors_dir, "iso15118_2_CurrentDemandReq.json")
    codec = make_codec(ISO2)
    data = bytes.fromhex(vec["exi_hex"])
    assert _decode_error(codec, b"\x00" + data[1:]).bit_offset == 0
    assert _decode_error(codec, b"$EXI" + data).bit_offset == 0
    err = _decode_error(codec, data + b"\x01")
    assert err.bit_offset >= 8 * (len(data) - 1) and "trailing" in str(err)
    _decode_error(codec, data + b"garbage")
    # whole zero bytes after the padding are tolerated (Tesla DIN stacks send one; EXIficient accepts)
    assert codec.decode(data + b"\x00") == codec.decode(data)


def test_invalid_event_codes(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(APP)
    # DocContent of AppProtocol: 2 bits; 0/1 = Req/Res, 2 = SE(*) (its qname must follow), 3 = escape
    err = _decode_error(codec, bytes([0x80, 0b10000000]))
    assert "truncated" in str(err) and err.bit_offset > 10
    assert "second-level" in str(_decode_error(codec, bytes([0x80, 0b11000000])))


def test_enum_index_out_of_range(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(APP)
    # supportedAppProtocolRes: SE(ResponseCode) CH, enum of 3 literals in 2 bits: index 3 is invalid
    ok = bytes([0x80, 0b01001000, 0b10000000])
    assert codec.decode(ok) == {"supportedAppProtocolRes": {"ResponseCode": "Failed_NoNegotiation"}}
    err = _decode_error(codec, bytes([0x80, 0b01001100, 0b10000000]))
    assert err.bit_offset == 12 and "enumeration" in err.expected


def test_length_past_end_does_not_allocate(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(APP)
    # supportedAppProtocolReq / AppProtocol / ProtocolNamespace CH with a string length of 2**62
    head = [0, 0, 0, 0]  # Req (2 bits 00), SE(AppProtocol) 1 bit, SE(ProtocolNamespace) 1 bit, CH 1 bit
    bits = "00" + "0" + "0" + "0"
    length = 2**62
    groups = []
    while length >= 0x80:
        groups.append((length & 0x7F) | 0x80)
        length >>= 7
    groups.append(length)
    bits += "".join(f"{g:08b}" for g in groups)
    bits += "0" * (-len(bits) % 8)
    data = bytes([0x80]) + int(bits, 2).to_bytes(len(bits) // 8, "big")
    del head
    err = _decode_error(codec, data)
    assert "past the end" in str(err)


def test_random_and_mutated_streams_only_raise_decode_error(vectors_dir: Path, make_codec: Callable[[str], Any]) -> None:
    rng = random.Random(15118)
    names = ["iso15118_2_CertificateInstallationRes.json", "iso15118_2_CurrentDemandRes.json", "din70121_CurrentDemandReq.json",
             "iso15118_20_AuthorizationReq_PnC.json", "app_handshake_SupportedAppProtocolRes.json"]
    for name in names:
        vec = _vector(vectors_dir, name)
        codec = make_codec(vec["namespace"])
        data = bytes.fromhex(vec["exi_hex"])
        for _ in range(150):
            buf = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(1, len(buf))] = rng.randrange(256)
            try:
                codec.decode(bytes(buf))
            except exi.DecodeError:
                pass
        for _ in range(100):
            rnd = bytes([0x80]) + bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
            try:
                codec.decode(rnd)
            except exi.DecodeError:
                pass


def _bits_to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def test_relaxed_fragment_nesting_is_bounded(make_codec: Callable[[str], Any]) -> None:
    """eMAID (ISO-2) uses the relaxed element-fragment grammar, which may contain itself: a stream
    nesting it thousands of times gives a DecodeError, not a stack overflow."""
    codec = make_codec(ISO2)
    t = codec._tables
    width, frag = t.STATES[t.FRAG_STATE]
    code = t.FRAG_KEYS["eMAID"]
    ef0 = frag[code][2]
    ef0_width, ef0_prods = t.STATES[ef0]
    inner = [i for i, p in enumerate(ef0_prods) if p[0] == 1 and p[1] == "eMAID"][0]
    bits = "10000000" + format(code, f"0{width}b") + format(inner, f"0{ef0_width}b") * 5000
    err = _decode_error(codec, _bits_to_bytes(bits), fragment=True)
    assert "nest" in str(err)


def test_relaxed_emaid_fragment_roundtrip(make_codec: Callable[[str], Any]) -> None:
    """The eMAID fragment digested in ISO-2 CertificateInstallationRes signatures (EXIficient/RISE-V2G bytes)."""
    codec = make_codec(ISO2)
    data = bytes.fromhex("80ec0202b4b21a40041111505090d0cc4c8cd05090cd4dbd3d00")
    msg = {"eMAID": {"Id": "id4", "value": "DEABCC123ABC56"}}
    assert codec.decode_fragment(data) == msg
    assert codec.encode_fragment(msg) == data


def test_cyclic_message_is_an_encode_error(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(ISO2)
    inner: Dict[str, Any] = {"Id": "a", "value": "DEABCC123ABC56"}
    inner["eMAID"] = inner
    with pytest.raises(exi.EncodeError):
        codec.encode_fragment({"eMAID": inner})
