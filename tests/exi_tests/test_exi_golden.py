"""Our codec against the committed golden vectors (EXIficient's bytes for generated messages).

The vectors live in ``golden/`` (see its README): they need neither ../shared nor Java, so this
proves byte-exactness on a bare checkout. Both directions, on every engine (conftest's
``make_codec``): encode(message) must give EXIficient's bytes, decode(bytes) must give the message
back. The JSON shape is converted to the codec's ``bytes`` shape with the binary element names
recorded in each golden file (independent of the codec's own shape helpers); a second check runs
the codec's own ``exi._shape`` conversion. Known failures of the codec are data in
``golden/known_failures.json`` (strict xfail), never blanket skips.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _exi_msggen import bytes_to_json_shape, json_to_bytes_shape

GOLDEN = Path(__file__).resolve().parent / "golden"


def _known_failures() -> dict[tuple[str, str], str]:
    p = GOLDEN / "known_failures.json"
    if not p.is_file():
        return {}
    return {(e["seed"], e["direction"]): e["reason"] for e in json.loads(p.read_text(encoding="utf-8"))}


def _load() -> list[Any]:
    known = _known_failures()
    params = []
    for f in sorted(GOLDEN.glob("golden_*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        hexn, b64n = set(doc["hex_names"]), set(doc["base64_names"])
        counts: dict[str, int] = {}
        for v in doc["vectors"]:
            n = counts[v["message_type"]] = counts.get(v["message_type"], 0) + 1
            for direction in ("encode", "decode"):
                marks = []
                reason = known.get((v["seed"], direction))
                if reason:
                    marks.append(pytest.mark.xfail(strict=True, reason=reason))
                params.append(pytest.param((doc["namespace"], doc.get("grammars", "iso15118-jar")), v, hexn, b64n,
                                           direction, marks=marks,
                                           id=f"{doc['schema_set']}-{v['kind']}-{v['message_type']}-{n}-{direction}"))
    return params


PARAMS = _load()


def test_golden_files_present() -> None:
    """The committed set covers every schema set: the jar's (its precompiled grammars) and, from
    EXIficient compiling the XSDs, WPT and ACDP, lists at maxOccurs and the signed fragments."""
    docs = [json.loads(f.read_text(encoding="utf-8")) for f in GOLDEN.glob("golden_*.json")]
    jar = {d["schema_set"] for d in docs if d.get("grammars", "iso15118-jar") == "iso15118-jar"}
    xsd = {d["schema_set"] for d in docs if d.get("grammars") == "exi"}
    assert {"apphand", "din", "iso2", "iso20-common", "iso20-ac", "iso20-dc", "xmldsig"} <= jar
    assert {"iso2", "iso20-common", "iso20-ac", "iso20-dc", "iso20-wpt", "iso20-acdp"} <= xsd
    total = sum(f.stat().st_size for f in GOLDEN.iterdir())
    assert total < 3_300_000, "golden vectors grew past the size budget"  # value_hits.json: 93 KB


def _is_fragment(v: dict[str, Any]) -> bool:
    return v["kind"] != "document"


@pytest.mark.parametrize("namespace,vector,hexn,b64n,direction", PARAMS)
def test_golden(make_codec: Any, namespace: tuple[str, str], vector: dict[str, Any], hexn: set[str], b64n: set[str],
                direction: str) -> None:
    codec = make_codec(*namespace)  # (namespace, grammar variant of the encoder that made the file)
    frag = _is_fragment(vector)
    expected = bytes.fromhex(vector["exi_hex"])
    native = json_to_bytes_shape(vector["message"], hexn, b64n)
    if direction == "encode":
        got = codec.encode_fragment(native) if frag else codec.encode(native)
        assert got.hex() == expected.hex()
    else:
        got = codec.decode_fragment(expected) if frag else codec.decode(expected)
        assert got == native
        assert bytes_to_json_shape(got, hexn) == vector["message"]


@pytest.mark.parametrize("namespace,vector,hexn,b64n,direction",
                         [p for p in PARAMS if p.values[4] == "decode" and not p.marks])
def test_golden_shape_helpers(namespace: tuple[str, str], vector: dict[str, Any], hexn: set[str], b64n: set[str],
                              direction: str) -> None:
    """exi._shape (used by the CLI and JosevCodec) converts exactly like the schema-derived names."""
    import exi
    from exi._shape import from_json, to_json

    codec = exi.get_codec(namespace[0])
    frag = _is_fragment(vector)
    native = json_to_bytes_shape(vector["message"], hexn, b64n)
    assert from_json(codec, vector["message"], fragment=frag) == native
    assert to_json(codec, native, fragment=frag) == vector["message"]
