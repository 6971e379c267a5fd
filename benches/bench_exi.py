"""EXI codec speed beside msgpack on the same dicts, per vector (pytest-benchmark).

Run::

    pytest benches/bench_exi.py --benchmark-enable -p no:cacheprovider --benchmark-json=/tmp/bench_exi.json
    python tools/bench_exi_table.py /tmp/bench_exi.json      # README table of ratios

One pytest-benchmark group per vector of tests/data/vectors (documents and fragments); in each:
``exi-encode`` (message dict -> bytes), ``exi-decode`` (bytes -> dict), ``msgpack-packb`` and
``msgpack-unpackb`` of the very same dict (the speed of walking a Python dict in C, the target:
ours within 1.5x), and, when the ``iso15118`` package and Java are available,
``exificient-encode``/``-decode`` through its py4j ``ExificientEXICodec`` (JSON text in/out, as
that stack uses it). ``josev-encode``/``josev-decode`` time the drop-in ``exi.josev.JosevCodec``
(the jar's JSON text in/out) on the same message beside ``exi-encode``/``exi-decode`` of the jar
grammar variant's native codec: the drop-in's cost over the native codec is their ratio (target
≤ 2x, ``tools/bench_exi_table.py``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgpack
import pytest

import exi

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent / "tests" / "data" / "vectors"


def _native(codec: Any, msg: dict[str, Any], fragment: bool) -> dict[str, Any]:
    from exi._shape import from_json

    return from_json(codec, msg, fragment=fragment)


def _vectors() -> list[Any]:
    out = []
    for f in sorted(VECTORS.glob("*.json")):
        v = json.loads(f.read_text(encoding="utf-8"))
        frag = not v["kind"].startswith("EXI document")
        out.append(pytest.param(f.stem, v["namespace"], v["message"], v["exi_hex"], frag, id=f.stem))
    assert out, f"no vectors in {VECTORS}"
    return out


PARAMS = _vectors()

#: Every round runs the call repeatedly for at least 50 µs (pytest-benchmark's own minimum of 5 µs
#: sizes the rounds from the first, cold call: one slow first call left some sub-microsecond calls at
#: one call per round, timer included, and their neighbours at ten): the per-call times of both sides
#: of each ratio are then of warm calls, the timer's own cost spread over the round.
pytestmark = pytest.mark.benchmark(min_time=5e-5)


def _exificient() -> Any:
    if os.environ.get("EXI_BENCH_EXIFICIENT", "1") == "0":
        return None
    try:
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    except Exception:  # noqa: BLE001 - optional
        return None
    try:
        return ExificientEXICodec()
    except Exception:  # noqa: BLE001 - no java
        return None


@pytest.fixture(scope="session")
def exificient() -> Any:
    codec = _exificient()
    if codec is None:
        pytest.skip("iso15118 package (with Java) not available")
    return codec


@pytest.mark.parametrize("name,namespace,message,exi_hex,fragment", PARAMS)
@pytest.mark.parametrize("impl", ["exi-encode", "exi-decode", "msgpack-packb", "msgpack-unpackb"])
def test_exi_speed(benchmark: Any, impl: str, name: str, namespace: str, message: dict[str, Any],
                   exi_hex: str, fragment: bool) -> None:
    codec = exi.get_codec(namespace)
    native = _native(codec, message, fragment)
    data = bytes.fromhex(exi_hex)
    benchmark.group = f"{name} ({len(data)} B)"
    benchmark.extra_info["exi_bytes"] = len(data)
    benchmark.extra_info["key"] = f"exi/{name}/{impl}"  # what benches/budgets.py reads
    if impl == "exi-encode":
        fn = codec.encode_fragment if fragment else codec.encode
        assert benchmark(fn, native) == data
    elif impl == "exi-decode":
        fn = codec.decode_fragment if fragment else codec.decode
        assert benchmark(fn, data) == native
    elif impl == "msgpack-packb":
        benchmark(msgpack.packb, native)
    else:
        packed = msgpack.packb(native)
        assert benchmark(msgpack.unpackb, packed) == native


#: the messages the drop-in takes as they are (documents, and the xmldsig fragment, which it decodes)
JOSEV_VECTORS = [p for p in PARAMS if not p.values[4] or p.values[1].endswith("xmldsig#")]


@pytest.mark.parametrize("name,namespace,message,exi_hex,fragment", JOSEV_VECTORS)
@pytest.mark.parametrize("impl", ["josev-encode", "josev-decode", "jarvariant-encode", "jarvariant-decode"])
def test_josev_speed(benchmark: Any, impl: str, name: str, namespace: str, message: dict[str, Any],
                     exi_hex: str, fragment: bool) -> None:
    """The drop-in (JSON text) beside the native codec of the same (jar) grammar variant."""
    from exi.josev import JosevCodec

    drop_in = JosevCodec()
    codec = exi.get_codec(namespace, grammars="iso15118-jar")
    data = bytes.fromhex(exi_hex)
    text = json.dumps(message, separators=(",", ":"))
    benchmark.group = f"{name} ({len(data)} B)"
    benchmark.extra_info["key"] = f"josev/{name}/{impl}"  # what benches/budgets.py reads
    # the drop-in's first call per namespace builds its tables (once per codec): made before the
    # timing, as the native codec's are at get_codec, so that rounds are sized from a warm call
    assert drop_in.encode(text, namespace) == data and drop_in.decode(data, namespace)
    if impl == "josev-encode":
        assert benchmark(drop_in.encode, text, namespace) == data
    elif impl == "josev-decode":
        assert json.loads(benchmark(drop_in.decode, data, namespace)) == message
    elif impl == "jarvariant-encode":
        native = _native(codec, message, fragment)
        assert benchmark(codec.encode_fragment if fragment else codec.encode, native) == data
    else:
        assert benchmark(codec.decode_fragment if fragment else codec.decode, data)


@pytest.mark.parametrize("name,namespace,message,exi_hex,fragment", JOSEV_VECTORS)
@pytest.mark.parametrize("impl", ["exificient-encode", "exificient-decode"])
def test_exificient_speed(benchmark: Any, exificient: Any, impl: str, name: str, namespace: str,
                          message: dict[str, Any], exi_hex: str, fragment: bool) -> None:
    data = bytes.fromhex(exi_hex)
    benchmark.group = f"{name} ({len(data)} B)"
    if impl == "exificient-encode":
        text = json.dumps(message)
        benchmark(exificient.encode, text, namespace)
    else:
        benchmark(exificient.decode, data, namespace)
