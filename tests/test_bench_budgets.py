"""The benchmark budget check (benches/budgets.py) on recorded measurements, no timing here.

``tests/data/benches/budgets_sample.json`` is the summary one bounded CI-style run printed on the
2-core CI-class VM (``python benches/budgets.py --attempts 1``). Unchanged, those measurements pass
every budget; the same measurements with one side of a ratio 1.5x slower fail it, with the numbers
in the message.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from _testdata import DATA, REPO


def _load_budgets() -> Any:
    spec = importlib.util.spec_from_file_location("plugcharge_bench_budgets", REPO / "benches" / "budgets.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


B = _load_budgets()
SAMPLE = json.loads((DATA / "benches" / "budgets_sample.json").read_text(encoding="utf-8"))


def _measured() -> Any:
    return B.Measurements.from_summary(copy.deepcopy(SAMPLE))


def _verdicts(m: Any) -> dict[str, Any]:
    return {v.budget.name: v for v in B.evaluate(m)}


def test_recorded_run_passes_every_budget() -> None:
    v = _verdicts(_measured())
    assert set(v) == {b.name for b in B.BUDGETS}
    assert all(x.ok for x in v.values()), [x.message() for x in v.values() if not x.ok]
    # the recorded ratios leave headroom under every budget (unchanged code must never fail)
    for x in v.values():
        assert x.ratio <= x.budget.limit / 1.15, x.message()


def _slow(m: Any, pred: Any, factor: float = 1.5) -> Any:
    m.timings = {k: (t * factor if pred(k) else t) for k, t in m.timings.items()}
    return m


@pytest.mark.parametrize("name,pred", [
    ("exi/encode-geomean", lambda k: k.endswith("/exi-encode")),
    ("exi/decode-geomean", lambda k: k.endswith("/exi-decode")),
    ("exi/drop-in-worst", lambda k: k.startswith("josev/") and "/josev-" in k),
    ("pki/cold-2", lambda k: k == "cold-2"),
    ("pki/warm-2", lambda k: k == "warm-2"),
    ("pki/cold-20", lambda k: k == "cold-20"),
    ("pki/warm-20", lambda k: k == "warm-20"),
])
def test_a_one_and_a_half_times_regression_fails(name: str, pred: Any) -> None:
    v = _verdicts(_slow(_measured(), pred))[name]
    assert not v.ok
    msg = v.message()
    assert msg.startswith(f"{name}: ") and f"budget {v.budget.limit}x" in msg and f"{v.ratio:.2f}x" in msg


def test_exi_worst_vector_over_one_and_a_half_fails() -> None:
    m = _measured()
    key = next(k for k in m.timings if k.endswith("/exi-decode"))
    vector = key.split("/")[1]
    m.timings[key] = m.timings[f"exi/{vector}/msgpack-unpackb"] * 1.7
    v = _verdicts(m)["exi/decode-worst"]
    assert not v.ok and v.detail["vector"] == vector and "1.70x" in v.message()


@pytest.mark.parametrize("case,op", [("reuse", "ecdsa-verify"), ("install", "ecdsa-verify"),
                                     ("iso20-reuse", "p521-verify"), ("iso20-install", "p521-verify"),
                                     ("iso20-reuse-ed448", "ed448-verify")])
def test_session_regression_fails(case: str, op: str) -> None:
    m = _measured()
    f = m.floors[case]
    f["ratio"] *= 1.5
    f["session_us"] *= 1.5
    v = _verdicts(m)[f"session/crypto-floor {case}"]
    assert not v.ok and "floor_us" in v.message() and op in v.message()


def test_missing_measurement_fails() -> None:
    m = _measured()
    del m.floors["install"]
    m.timings = {k: t for k, t in m.timings.items() if k != "warm-20"}
    v = _verdicts(m)
    assert not v["session/crypto-floor install"].ok and "not measured" in v["session/crypto-floor install"].message()
    assert not v["pki/warm-20"].ok and "warm-20" in v["pki/warm-20"].message()


def test_runs_merge_best_timings_and_keep_floor_measurements_whole(tmp_path: Path) -> None:
    def run(path: Path, cold: float, floor: dict[str, float]) -> Path:
        path.write_text(json.dumps({"benchmarks": [
            {"extra_info": {"key": "cold-2"}, "stats": {"min": cold}},
            {"extra_info": {"key": "reuse", "public_key_ops": {"ecdsa-verify": 8}, "crypto_floor": floor},
             "stats": {"min": 0.002}},
            {"extra_info": {}, "stats": {"min": 1.0}},  # a benchmark without a key is not read
        ]}))
        return path

    m = B.read_run(run(tmp_path / "a.json", 2e-4, {"ratio": 3.6, "session_us": 1900.0, "floor_us": 530.0, "rounds": 9}))
    m.merge(B.read_run(run(tmp_path / "b.json", 3e-4, {"ratio": 3.4, "session_us": 2000.0, "floor_us": 590.0, "rounds": 8})))
    assert m.timings["cold-2"] == 2e-4 and "reuse" in m.timings and len(m.timings) == 2
    assert m.floors["reuse"] == {"ratio": 3.4, "session_us": 2000.0, "floor_us": 590.0, "rounds": 8}
    assert m.ops == {"reuse": {"ecdsa-verify": 8}}
