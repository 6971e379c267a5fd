"""All golden streams of tests/data/vectors (and its found/) both ways, on both engine implementations."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

from _testdata import VECTORS
from exi._shape import from_json, to_json

XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"


def _vector_files() -> List[Path]:
    return sorted(VECTORS.glob("*.json")) + sorted((VECTORS / "found").glob("*.json"))


def _names() -> List[str]:
    files = _vector_files()
    return [str(p.relative_to(VECTORS)) for p in files]


def _load(vectors_dir: Path, name: str) -> Tuple[Dict[str, Any], str, bool]:
    vec = json.loads((vectors_dir / name).read_text())
    kind = vec.get("kind", "EXI document")
    if "xmldsig-core-schema.xsd only" in kind:
        return vec, XMLDSIG, True
    return vec, vec["namespace"], "fragment" in kind.lower()


def test_vector_count(vectors_dir: Path) -> None:
    assert len(_names()) == 33


@pytest.mark.parametrize("name", _names())
def test_encode_vector(vectors_dir: Path, name: str, make_codec: Callable[[str], Any]) -> None:
    vec, ns, frag = _load(vectors_dir, name)
    codec = make_codec(ns)
    msg = from_json(codec, vec["message"], frag)
    got = codec.encode_fragment(msg) if frag else codec.encode(msg)
    assert got.hex() == vec["exi_hex"]


@pytest.mark.parametrize("name", _names())
def test_decode_vector(vectors_dir: Path, name: str, make_codec: Callable[[str], Any]) -> None:
    vec, ns, frag = _load(vectors_dir, name)
    codec = make_codec(ns)
    data = bytes.fromhex(vec["exi_hex"])
    got = codec.decode_fragment(data) if frag else codec.decode(data)
    assert got == from_json(codec, vec["message"], frag)
    assert to_json(codec, got, frag) == vec["message"]


def test_binary_is_bytes(vectors_dir: Path, make_codec: Callable[[str], Any]) -> None:
    vec, ns, _frag = _load(vectors_dir, "iso15118_2_CurrentDemandReq.json")
    msg = make_codec(ns).decode(bytes.fromhex(vec["exi_hex"]))
    assert msg["V2G_Message"]["Header"]["SessionID"] == bytes.fromhex("4A8F1E2293B05C6D")
    assert msg["V2G_Message"]["Body"]["CurrentDemandReq"]["EVTargetVoltage"] == {"Multiplier": -1, "Unit": "V", "Value": 4000}


def test_engines_agree_on_roundtrip(vectors_dir: Path) -> None:
    """The public get_codec path (engine chosen at import) also reproduces every vector."""
    import exi

    for name in _names():
        vec, ns, frag = _load(vectors_dir, name)
        codec = exi.get_codec(ns)
        msg = from_json(codec, vec["message"], frag)
        data = codec.encode_fragment(msg) if frag else codec.encode(msg)
        assert data.hex() == vec["exi_hex"], name
