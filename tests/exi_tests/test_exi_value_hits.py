"""Value-table hits (EXI 1.0 section 7.3.3) in streams EXIficient writes with its default options.

``golden/value_hits.json`` (made by tools/make_value_hits.py, provenance inside): messages with
repeated strings (Signature Algorithm URIs, Id attributes, eMAIDs, names; signed vectors and
generated messages of every schema set) that EXIficient, compiling the XSDs, encoded twice: with
its default value partitions (``exi_hex``: every repeat a local or global hit) and with
valuePartitionCapacity 0, the V2G setting (``literal_hex``). Both engines decode both streams to
the message; our encoder writes the literal stream.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import exi
from exi._shape import from_json, to_json

GOLDEN = Path(__file__).resolve().parent / "golden" / "value_hits.json"
VECTORS = json.loads(GOLDEN.read_text(encoding="utf-8"))["vectors"]
APPHAND = "urn:iso:15118:2:2010:AppProtocol"


def _decode(codec: Any, v: dict[str, Any], data: bytes) -> Any:
    frag = v["kind"] != "document"
    return to_json(codec, codec.decode_fragment(data) if frag else codec.decode(data), fragment=frag)


@pytest.mark.parametrize("v", VECTORS, ids=[f"{v['schema_set']}-{v['message_type']}-{i}" for i, v in enumerate(VECTORS)])
def test_exificient_value_hits_decode(make_codec: Any, v: dict[str, Any]) -> None:
    codec = make_codec(v["namespace"])
    hits, literal = bytes.fromhex(v["exi_hex"]), bytes.fromhex(v["literal_hex"])
    assert len(hits) < len(literal)  # the stream does use the table
    assert _decode(codec, v, hits) == v["message"]
    assert _decode(codec, v, literal) == v["message"]
    frag = v["kind"] != "document"
    native = from_json(codec, v["message"], fragment=frag)
    # the encoder keeps to valuePartitionCapacity 0: literals, EXIficient's V2G bytes
    assert (codec.encode_fragment(native) if frag else codec.encode(native)) == literal


def test_golden_covers_every_kind_of_hit() -> None:
    sets = {v["schema_set"] for v in VECTORS}
    assert {"apphand", "din", "iso2", "iso20-common", "iso20-dc", "xmldsig"} <= sets
    assert any(v["kind"] == "exiFragment" for v in VECTORS)
    assert any(v["source"].startswith("vector") for v in VECTORS)


def _bits(data: bytes) -> str:
    return "".join(f"{b:08b}" for b in data)


def _bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def _patched(codec: Any, msg: dict[str, Any], text: str, hit: str) -> bytes:
    """The stream of ``msg`` with the literal of ``text`` (its only occurrence) replaced by ``hit``."""
    bits = _bits(codec.encode(msg))
    lit = f"{len(text) + 2:08b}" + "".join(f"{ord(c):08b}" for c in text)
    at = bits.find(lit)
    assert at > 0 and bits.find(lit, at + 1) < 0
    return _bytes(bits[:at] + hit + bits[at + len(lit):])


def _sap(*names: str) -> dict[str, Any]:
    return {"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": n, "VersionNumberMajor": 2, "VersionNumberMinor": 0, "SchemaID": i, "Priority": i + 1}
        for i, n in enumerate(names)]}}


def test_hits_decode_by_hand(make_codec: Any) -> None:
    """A local hit (0, then a 1-bit id among two values of ProtocolNamespace) and a global hit
    (1, then a 2-bit id among three values), written into our literal stream by hand."""
    codec = make_codec(APPHAND)
    data = _patched(codec, _sap("urn:a", "urn:b", "QQQ"), "QQQ", "00000000" + "1")
    assert codec.decode(data) == _sap("urn:a", "urn:b", "urn:b")
    data = _patched(codec, _sap("urn:a", "urn:b", "urn:c", "QQQ"), "QQQ", "00000001" + "00")
    assert codec.decode(data) == _sap("urn:a", "urn:b", "urn:c", "urn:a")


@pytest.mark.parametrize("hit,why", [
    ("00000000", "local value-table hit, but .*ProtocolNamespace has no value"),
    ("00000001", "global value-table hit, but the table is empty"),
])
def test_hit_into_an_empty_table(make_codec: Any, hit: str, why: str) -> None:
    codec = make_codec(APPHAND)
    with pytest.raises(exi.DecodeError, match=why):
        codec.decode(_patched(codec, _sap("QQQ"), "QQQ", hit))


def test_hit_past_the_table(make_codec: Any) -> None:
    codec = make_codec(APPHAND)
    data = _patched(codec, _sap("urn:a", "urn:b", "urn:c", "QQQ"), "QQQ", "00000001" + "11")
    with pytest.raises(exi.DecodeError, match="global value id 3 is not in the table"):
        codec.decode(data)


def test_no_table_without_a_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder keeps value partitions only for a stream that has a hit (it decodes that one
    again): streams of V2G peers, which never hit, pay nothing for them."""
    from exi import _engine
    from exi._codec import NAMESPACES, Codec

    made: list[int] = []

    class Counting(_engine._Values):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            made.append(1)
            super().__init__()

    monkeypatch.setattr(_engine, "_Values", Counting)
    v = next(v for v in VECTORS if v["source"].startswith("vector") and v["schema_set"] == "iso2")
    codec = Codec(v["namespace"], NAMESPACES[v["namespace"]], engine=_engine)
    assert _decode(codec, v, bytes.fromhex(v["literal_hex"])) == v["message"]
    assert made == []
    assert _decode(codec, v, bytes.fromhex(v["exi_hex"])) == v["message"]
    assert made == [1]
