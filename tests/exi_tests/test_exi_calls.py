"""The per-call machinery of the encoder: the Codec entry points run in the engine, the writer kept
between calls never leaks bytes from one message into the next (also on errors and on a nested
call), and the C shortcuts for ASCII strings and 64-bit integers give the same bytes as the
pure-Python twin."""
from __future__ import annotations

import copy
import importlib
import json
import types
from pathlib import Path
from typing import Any, Callable

import pytest

import exi
from exi._codec import NAMESPACES, Codec
from exi._shape import from_json

APP = "urn:iso:15118:2:2010:AppProtocol"
ISO2 = "urn:iso:15118:2:2013:MsgDef"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"

RES = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}}


def _req(namespaces: list[str]) -> dict:
    return {"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": ns, "VersionNumberMajor": 2, "VersionNumberMinor": 0, "SchemaID": i + 1, "Priority": i + 1}
        for i, ns in enumerate(namespaces)]}}


def _engines() -> list[Any]:
    out = [importlib.import_module("exi._engine")]
    try:
        out.append(importlib.import_module("exi._cengine"))
    except ImportError:
        pass
    return out


def test_codec_methods_are_the_engines() -> None:
    """No Python-level wrapper between Codec.encode and the engine (compiled build)."""
    for name in ("encode", "decode", "encode_fragment", "decode_fragment"):
        assert getattr(Codec, name) is getattr(exi._codec._eng.CodecCore, name)
        if exi.IMPLEMENTATION == "compiled":
            assert not isinstance(getattr(Codec, name), types.FunctionType)
    codec = exi.get_codec(APP)
    assert codec.encode(message=RES) == codec.encode(RES)  # the keyword still works
    assert codec.decode(data=codec.encode(RES)) == RES
    assert not hasattr(codec, "__dict__") or exi.IMPLEMENTATION == "python"


def test_writer_reuse_big_then_small(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(XMLDSIG)
    small = {"KeyName": "k"}
    expected = codec.encode(small)
    fresh = Codec(XMLDSIG, NAMESPACES[XMLDSIG], engine=importlib.import_module(type(codec._doc).__module__))
    assert fresh.encode(small) == expected
    for n in (300, 5000, 200_000, 3):  # 200 000 grows the buffer past what is kept between calls
        big = {"KeyName": "n" * n}
        data = codec.encode(big)
        assert data == fresh.encode(big) and codec.decode(data) == big
        assert codec.encode(small) == expected


def test_writer_reuse_after_errors(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(APP)
    good = codec.encode(RES)
    bad_fast = {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 999}}
    bad_root = {"nope": {}}
    for bad in (bad_fast, bad_root, {}, []):
        with pytest.raises(exi.EncodeError):
            codec.encode(bad)
        assert codec.encode(RES) == good
    # keys out of schema order: the fast path gives up half-way, the checked encoder restarts
    reordered = {"supportedAppProtocolRes": {"SchemaID": 1, "ResponseCode": "OK_SuccessfulNegotiation"}}
    assert codec.encode(reordered) == good


def test_nested_call_gets_its_own_writer(make_codec: Callable[[str], Any]) -> None:
    """A key whose __hash__ encodes another message mid-way: both results stay intact."""
    codec = make_codec(APP)
    inner_msg = _req(["urn:inner:" + "i" * 40])
    inner_expected = codec.encode(inner_msg)
    expected = codec.encode(RES)
    seen: list[bytes] = []

    class Key(str):
        def __hash__(self) -> int:
            seen.append(codec.encode(inner_msg))
            return str.__hash__(self)

    msg = {"supportedAppProtocolRes": {Key("ResponseCode"): "OK_SuccessfulNegotiation", "SchemaID": 1}}
    assert codec.encode(msg) == expected
    assert seen and all(s == inner_expected for s in seen)


@pytest.mark.parametrize("text", ["urn:plain:ascii", "", "Grüße-ÿ", "x" * 100, "ab\x7f", "\x80", "€uro", "𝄞"])
def test_string_paths_match_the_twin(text: str) -> None:
    msg = _req([text]) if text else _req(["a"])
    outs = {e.__name__: Codec(APP, NAMESPACES[APP], engine=e).encode(msg) for e in _engines()}
    assert len(set(outs.values())) == 1, outs
    for e in _engines():
        assert Codec(APP, NAMESPACES[APP], engine=e).decode(next(iter(outs.values()))) == msg


@pytest.mark.parametrize("reading", [0, 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1])
def test_unsigned_long_paths_match_the_twin(vectors_dir: Path, reading: int) -> None:
    v = json.loads((vectors_dir / "iso15118_2_CurrentDemandRes.json").read_text(encoding="utf-8"))
    outs = set()
    for e in _engines():
        codec = Codec(ISO2, NAMESPACES[ISO2], engine=e)
        msg = copy.deepcopy(from_json(codec, v["message"]))
        msg["V2G_Message"]["Body"]["CurrentDemandRes"]["MeterInfo"]["MeterReading"] = reading
        data = codec.encode(msg)
        assert codec.decode(data) == msg
        outs.add(data)
    assert len(outs) == 1
    if reading == 2**64 - 1:
        msg["V2G_Message"]["Body"]["CurrentDemandRes"]["MeterInfo"]["MeterReading"] = 2**64
        for e in _engines():
            with pytest.raises(exi.EncodeError) as info:
                Codec(ISO2, NAMESPACES[ISO2], engine=e).encode(msg)
            assert info.value.rule == "range"
            assert info.value.path.endswith("MeterInfo.MeterReading")


def test_subclasses_of_the_plain_types_encode_like_them(make_codec: Callable[[str], Any]) -> None:
    """OrderedDict, list/bytes subclasses, str- and int-valued enums (what typed application code
    passes) give the bytes of the plain message on both engines, never a bare TypeError."""
    import collections
    import enum

    class Progress(str, enum.Enum):
        START = "Start"

    class Text(str):
        pass

    class Blob(bytes):
        pass

    class Items(list):
        pass

    class Num(enum.IntEnum):
        ONE = 1

    plain = {"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": ISO2, "VersionNumberMajor": 2, "VersionNumberMinor": 0, "SchemaID": 1, "Priority": 1}]}}
    typed = {"supportedAppProtocolReq": collections.OrderedDict(AppProtocol=Items([collections.OrderedDict(
        ProtocolNamespace=Text(ISO2), VersionNumberMajor=2, VersionNumberMinor=0, SchemaID=Num.ONE, Priority=1)]))}
    app = make_codec(APP)
    assert app.encode(typed) == app.encode(plain)
    iso2 = make_codec(ISO2)
    head = {"SessionID": bytes(range(8))}
    plain2 = {"V2G_Message": {"Header": head, "Body": {"PowerDeliveryReq": {"ChargeProgress": "Start", "SAScheduleTupleID": 1}}}}
    typed2 = {"V2G_Message": collections.OrderedDict(
        Header={"SessionID": Blob(bytes(range(8)))},
        Body={"PowerDeliveryReq": {"ChargeProgress": Progress.START, "SAScheduleTupleID": Num.ONE}})}
    assert iso2.encode(typed2) == iso2.encode(plain2)
    assert iso2.decode(iso2.encode(typed2)) == plain2


def _rekey(x: Any, key: Callable[[str], str], text: Callable[[str], str]) -> Any:
    """The same message with every key (and every str value) replaced by ``key(k)`` (``text(s)``)."""
    if isinstance(x, dict):
        return {key(k): _rekey(v, key, text) for k, v in x.items()}
    if isinstance(x, list):
        return [_rekey(v, key, text) for v in x]
    return text(x) if isinstance(x, str) else x


class _Sub(str):
    pass


@pytest.mark.parametrize("how", ["fresh", "subclass"])
def test_key_lookup_by_copies_and_subclasses(vectors_dir: Path, how: str) -> None:
    """The compiled encoder finds a child's production and an enumeration's literal by a table of
    the keys' hashes and bytes (not a dict probe): keys and literals that are equal but not the
    grammar's own str objects (fresh copies, str subclasses) give the bytes of the vector on
    both engines; a key or literal one letter off is still refused, naming the field."""
    v = json.loads((vectors_dir / "iso15118_2_CurrentDemandRes.json").read_text(encoding="utf-8"))
    fresh: Callable[[str], str] = (lambda s: "".join(list(s))) if how == "fresh" else _Sub
    for e in _engines():
        codec = Codec(ISO2, NAMESPACES[ISO2], engine=e)
        msg = _rekey(from_json(codec, v["message"]), fresh, fresh)
        assert codec.encode(msg) == bytes.fromhex(v["exi_hex"])
        body = msg["V2G_Message"]["Body"]["CurrentDemandRes"]
        bad = dict(body)
        bad[fresh("EVSEPresentVoltagf")] = bad.pop("EVSEPresentVoltage")
        with pytest.raises(exi.EncodeError) as info:
            codec.encode({"V2G_Message": {"Header": msg["V2G_Message"]["Header"], "Body": {"CurrentDemandRes": bad}}})
        assert "EVSEPresentVoltag" in str(info.value)
        bad = dict(body, DC_EVSEStatus=dict(body["DC_EVSEStatus"], EVSEIsolationStatus=fresh("Valie")))
        with pytest.raises(exi.EncodeError) as info:
            codec.encode({"V2G_Message": {"Header": msg["V2G_Message"]["Header"], "Body": {"CurrentDemandRes": bad}}})
        assert info.value.rule == "range" and info.value.path.endswith("DC_EVSEStatus.EVSEIsolationStatus")
