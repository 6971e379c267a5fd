"""Fuzzing every decoder: random and mutated streams may only decode or raise ``exi.DecodeError``.

Seeds are the committed golden streams and the vectors of tests/data/vectors.
Mutations: bit flips, truncation, inserted bytes, appended garbage, overwritten header, spliced
streams of another schema set, plus purely random bytes. Every namespace's document and fragment
decoder runs on both engines (conftest ``make_codec``). Per case: the decoder must return within
``EXI_FUZZ_CASE_SECONDS`` (default 5 s; a hang guard, not a speed test) and a successful decode
must stay in proportion to its input (no output larger than a few hundred times the stream).

``EXI_FUZZ_COUNT`` (default 8) mutations per seed stream and decoder; ``EXI_FUZZ_SEED`` changes
the random sequence (default fixed, so a failure reproduces).
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import exi
from _testdata import FOUND, VECTORS

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
COUNT = int(os.environ.get("EXI_FUZZ_COUNT", "8"))
SEED = os.environ.get("EXI_FUZZ_SEED", "plugcharge-exi-fuzz")
CASE_SECONDS = float(os.environ.get("EXI_FUZZ_CASE_SECONDS", "5"))

NAMESPACES = (
    "urn:iso:15118:2:2010:AppProtocol", "urn:din:70121:2012:MsgDef", "urn:iso:15118:2:2013:MsgDef",
    "urn:iso:std:iso:15118:-20:CommonMessages", "urn:iso:std:iso:15118:-20:AC", "urn:iso:std:iso:15118:-20:DC",
    "urn:iso:std:iso:15118:-20:WPT", "urn:iso:std:iso:15118:-20:ACDP", "http://www.w3.org/2000/09/xmldsig#",
)


def _seed_streams() -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {ns: [] for ns in NAMESPACES}
    for f in sorted(GOLDEN.glob("golden_*.json")):
        doc = json.loads(f.read_text(encoding="utf-8"))
        out[doc["namespace"]].extend(bytes.fromhex(v["exi_hex"]) for v in doc["vectors"])
    for f in sorted(VECTORS.glob("*.json")) + sorted(FOUND.glob("*.json")):
        d = json.loads(f.read_text(encoding="utf-8"))
        if isinstance(d, dict) and d.get("namespace") in out and isinstance(d.get("exi_hex"), str):
            out[d["namespace"]].append(bytes.fromhex(d["exi_hex"]))
    return out


SEEDS = _seed_streams()


def _mutations(data: bytes, rng: random.Random, others: list[bytes], count: int) -> Iterator[tuple[str, bytes]]:
    n = len(data)
    for _ in range(count):
        kind = rng.randrange(7)
        b = bytearray(data)
        if kind == 0 and n:
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(n * 8)
                b[i // 8] ^= 0x80 >> (i % 8)
            yield "bitflip", bytes(b)
        elif kind == 1:
            yield "truncate", bytes(b[: rng.randrange(n + 1)])
        elif kind == 2:
            i = rng.randrange(n + 1)
            yield "insert", bytes(b[:i] + rng.randbytes(rng.randint(1, 8)) + b[i:])
        elif kind == 3:
            yield "append", bytes(b + rng.randbytes(rng.randint(1, 16)))
        elif kind == 4 and n > 1:
            i = rng.randrange(1, n)
            yield "byte-set", bytes(b[:i] + bytes([rng.choice((0x00, 0xFF, 0x7F, 0x80))]) + b[i + 1:])
        elif kind == 5 and others:
            o = rng.choice(others)
            yield "splice", bytes(b[: rng.randrange(n + 1)] + o[rng.randrange(len(o) + 1):])
        else:
            yield "header", bytes([rng.randrange(256)]) + bytes(b[1:])


def _random_streams(rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    for i in range(count):
        body = rng.randbytes(rng.choice((0, 1, 2, 3, 5, 8, 16, 40, 100)))
        yield "random", (b"\x80" + body) if i % 4 else body


def _approx_size(obj: Any, limit: int) -> int:
    """Rough size of a decoded message; stops counting past ``limit``."""
    total, stack = 0, [obj]
    while stack and total <= limit:
        x = stack.pop()
        if isinstance(x, dict):
            total += 8 * len(x)
            for k, v in x.items():
                total += len(k)
                stack.append(v)
        elif isinstance(x, list):
            total += 8 * len(x)
            stack.extend(x)
        elif isinstance(x, (str, bytes)):
            total += len(x)
        else:
            total += 8
    return total


def _check(fn: Callable[[bytes], Any], label: str, data: bytes, failures: list[str]) -> None:
    t0 = time.perf_counter()
    try:
        out = fn(data)
    except exi.DecodeError as exc:
        if not isinstance(exc.bit_offset, int) or exc.bit_offset < 0:
            failures.append(f"{label} {data.hex()}: DecodeError without a bit offset: {exc!r}")
        out = None
    except Exception as exc:  # noqa: BLE001 - the point of the test
        failures.append(f"{label} {data.hex()}: {type(exc).__name__}: {exc}")
        return
    dt = time.perf_counter() - t0
    if dt > CASE_SECONDS:
        failures.append(f"{label} {data.hex()}: took {dt:.1f} s")
    if out is not None:
        limit = 400 * len(data) + 4096
        if not isinstance(out, dict):
            failures.append(f"{label} {data.hex()}: decoded to {type(out).__name__}, not a dict")
        elif _approx_size(out, limit) > limit:
            failures.append(f"{label} {data.hex()}: decoded output out of proportion to {len(data)} input bytes")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_fuzz_decoders(make_codec: Any, exi_engine: Any, namespace: str) -> None:
    codec = make_codec(namespace)
    # The pure-Python twin runs the same logic ~10x slower: a quarter of the cases by default.
    count = COUNT if exi_engine.__name__.endswith("_cengine") else max(1, COUNT // 4)
    rng = random.Random(f"{SEED}/{namespace}/{getattr(codec, 'name', '')}")
    own = SEEDS[namespace]
    others = [s for ns, lst in SEEDS.items() if ns != namespace for s in lst[:5]]
    failures: list[str] = []
    cases = 0
    for fn, what in ((codec.decode, "document"), (codec.decode_fragment, "fragment")):
        streams = list(_random_streams(rng, 4 * count))
        for s in own:
            streams.extend(_mutations(s, rng, others, count))
        # A few whole streams of other schema sets, as a peer speaking the wrong protocol sends.
        streams.extend(("foreign", o) for o in rng.sample(others, min(len(others), 2 * count)))
        for label, data in streams:
            _check(fn, f"{what}/{label}", data, failures)
            cases += 1
    assert cases > 0
    assert not failures, f"{len(failures)} of {cases} cases broke the contract:\n" + "\n".join(failures[:15])
