#!/usr/bin/env python3
"""The benchmarks' ratio budgets, checked by CI (``.ci/run``) on the installed packages.

    python benches/budgets.py [--max-time S] [--attempts N] [--json FILE] [--keep DIR]

Runs ``pytest benches --benchmark-enable`` in a bounded form (each benchmark for about ``--max-time``
seconds, the cyclic GC off), reads pytest-benchmark's JSON and computes the ratios the README states,
each from two timings of the same run, never an absolute time:

- ``exi/encode-worst``, ``exi/decode-worst``: the worst vector's encode (decode) time over msgpack's
  ``packb`` (``unpackb``) of the same dict: the README's target, each within 1.5x.
- ``exi/encode-geomean``, ``exi/decode-geomean``: the geometric mean of those ratios over all
  vectors, against today's level with headroom: a codec 1.5x slower on every message fails here
  even where its worst vector stays within 1.5x.
- ``exi/drop-in-worst``: the drop-in ``exi.josev.JosevCodec`` (the jar's JSON text in, out) over the
  native codec of the same grammar variant (dicts in, out) on the same message, the worst vector and
  direction (README target 2x).
- ``pki/cold-2``, ``pki/warm-2``, ``pki/cold-20``, ``pki/warm-20``: a contract chain validated cold
  (no cache) over three raw signature verifications, warm (Sub-CA path cached) over one.
- ``session/crypto-floor reuse`` / ``install``: a whole ISO-2 Plug & Charge session in memory over its
  public-key floor (the public-key operations the session performs, counted, and timed interleaved
  with the session in CPU time; see ``bench_session.py``).
- ``session/crypto-floor iso20-reuse`` / ``iso20-install`` / ``iso20-reuse-ed448``: the same for a whole
  ISO 15118-20 Plug & Charge session (P-521 contract reused, installed, Ed448 contract reused; see
  ``bench_session20.py``).

Ratios are of minimums (on a shared machine other work only ever adds time; the minimum of many
rounds is the stable figure). A ratio over its budget is measured again (the bench file it comes
from), up to ``--attempts`` runs in all, each timing keeping its best run; unchanged code then stays
well inside every budget, while a real regression (1.5x slower) stays over it in every run. The
budgets and the margins they leave are in :data:`BUDGETS` and the README ("Benchmarks").

Prints the summary as JSON (the CI artefact: ratios, budgets, every timing) and a table; exits 1
naming each ratio over its budget with its numbers, 2 when a benchmark run itself fails.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

HERE = Path(__file__).resolve().parent
#: public-key operation kinds of the session floor (as in bench_session.OP_KINDS)
OP_KINDS = ("ecdsa-verify", "ecdsa-sign", "ecdh", "ec-keygen")
#: those of the ISO 15118-20 session floor (as in bench_session20.OP_KINDS)
OP_KINDS20 = ("p521-verify", "p521-sign", "ed448-verify", "ed448-sign", "p521-ecdh", "p521-keygen", "ed448-keygen")



@dataclass
class Measurements:
    """What the runs measured: each timing's best run, and per session case the operation counts and
    the interleaved crypto-floor measurement of its best run (a ratio and its two minimums, kept as
    one unit, never mixed across runs)."""

    timings: Dict[str, float] = field(default_factory=dict)  # benchmark key -> minimum seconds
    ops: Dict[str, Dict[str, int]] = field(default_factory=dict)  # case -> operation kind -> count
    floors: Dict[str, Dict[str, float]] = field(default_factory=dict)  # case -> {ratio, session_us, floor_us, rounds}

    @classmethod
    def from_summary(cls, doc: Mapping[str, object]) -> "Measurements":
        """The measurements a summary JSON of :func:`main` records (to re-check a CI artefact)."""
        min_us = doc["min_us"]
        assert isinstance(min_us, dict)
        return cls({k: v / 1e6 for k, v in min_us.items()}, dict(doc.get("public_key_ops") or {}),  # type: ignore[arg-type]
                   dict(doc.get("crypto_floor") or {}))  # type: ignore[arg-type]

    def merge(self, other: "Measurements") -> None:
        for k, v in other.timings.items():
            self.timings[k] = min(v, self.timings.get(k, math.inf))
        for k, o in other.ops.items():
            self.ops.setdefault(k, o)
        for k, f in other.floors.items():
            if f["ratio"] < self.floors.get(k, {"ratio": math.inf})["ratio"]:
                self.floors[k] = f


class NotMeasured(Exception):
    """A benchmark a budget needs is missing from the run (skipped or failed)."""


def _t(t: Mapping[str, float], key: str) -> float:
    try:
        return t[key]
    except KeyError:
        raise NotMeasured(key) from None


Ratio = Callable[[Measurements], Tuple[float, dict]]


def _exi_ratios(t: Mapping[str, float], what: str) -> Dict[str, float]:
    ours, base = ("exi-encode", "msgpack-packb") if what == "encode" else ("exi-decode", "msgpack-unpackb")
    vectors = sorted({k.split("/")[1] for k in t if k.startswith("exi/")})
    if not vectors:
        raise NotMeasured("exi/*")
    return {v: _t(t, f"exi/{v}/{ours}") / _t(t, f"exi/{v}/{base}") for v in vectors}


def _exi_worst(what: str) -> Ratio:
    def ratio(m: Measurements) -> Tuple[float, dict]:
        r = _exi_ratios(m.timings, what)
        worst = max(r, key=r.__getitem__)
        return r[worst], {"vector": worst, "vectors": len(r)}
    return ratio


def _exi_geomean(what: str) -> Ratio:
    def ratio(m: Measurements) -> Tuple[float, dict]:
        r = _exi_ratios(m.timings, what)
        return math.exp(sum(math.log(x) for x in r.values()) / len(r)), {"vectors": len(r)}
    return ratio


def _dropin_worst(m: Measurements) -> Tuple[float, dict]:
    """The drop-in exi.josev.JosevCodec (the jar's JSON text) over the native codec of the same
    (jar) grammar variant (dicts), the worst vector and direction."""
    t = m.timings
    vectors = sorted({k.split("/")[1] for k in t if k.startswith("josev/")})
    if not vectors:
        raise NotMeasured("josev/*")
    r = {(v, d): _t(t, f"josev/{v}/josev-{d}") / _t(t, f"josev/{v}/jarvariant-{d}")
         for v in vectors for d in ("encode", "decode")}
    (vector, what) = max(r, key=r.__getitem__)
    return r[vector, what], {"vector": vector, "direction": what, "vectors": len(vectors)}


def _pki(kind: str, iso: int) -> Ratio:
    ours, floor = f"{kind}-{iso}", f"raw{3 if kind == 'cold' else 1}-{iso}"

    def ratio(m: Measurements) -> Tuple[float, dict]:
        t = m.timings
        return _t(t, ours) / _t(t, floor), {"ours_us": _t(t, ours) * 1e6, "raw_verifications_us": _t(t, floor) * 1e6}
    return ratio


def _session(case: str) -> Ratio:
    def ratio(m: Measurements) -> Tuple[float, dict]:
        if case not in m.floors or case not in m.ops:
            raise NotMeasured(f"crypto-floor measurement of the {case} session")
        f = m.floors[case]
        return f["ratio"], {"session_us": f["session_us"], "floor_us": f["floor_us"], "rounds": f["rounds"],
                            "public_key_ops": dict(m.ops[case])}
    return ratio


@dataclass(frozen=True)
class Budget:
    name: str
    limit: float
    file: str
    ratio: Ratio
    what: str


#: Each limit and why: measured level on the 2-core CI-class VM (bounded runs, minimums) -> limit.
#: A 1.5x regression of the measured code multiplies the ratio by about 1.5 (by less where part of
#: the ratio is raw crypto); every limit sits below 1.5x today's level and above its noise.
BUDGETS: Tuple[Budget, ...] = (
    # README target, each vector within 1.5x of msgpack (the EXI issue's: 1.0x); today's worst
    # 0.82x-0.89x encode, 0.89x-0.93x decode (bounded runs); before the encoder's key tables single
    # bounded runs of sub-microsecond vectors reached 1.3x-1.5x, hence 1.6x
    Budget("exi/encode-worst", 1.6, "bench_exi.py", _exi_worst("encode"), "worst vector: EXI encode / msgpack packb"),
    Budget("exi/decode-worst", 1.6, "bench_exi.py", _exi_worst("decode"), "worst vector: EXI decode / msgpack unpackb"),
    # today 0.62x-0.66x (encode, since the encoder's per-state key tables; before 0.79x) and
    # 0.75x-0.76x (decode) over the 23 vectors, bounded runs with rounds of at least 50 us each
    # (bench_exi.py); a 1.5x slower encoder (decoder) is 0.94x (1.13x) and more
    Budget("exi/encode-geomean", 0.9, "bench_exi.py", _exi_geomean("encode"),
           "geometric mean over the vectors: EXI encode / msgpack packb"),
    Budget("exi/decode-geomean", 1.1, "bench_exi.py", _exi_geomean("decode"),
           "geometric mean over the vectors: EXI decode / msgpack unpackb"),
    # README target 2x: the drop-in (JSON text) over the native codec (dicts), worst vector and
    # direction; today 1.86x-1.98x (PaymentDetailsReq encode: its 2,084 base64 characters), single
    # loaded runs of earlier code up to 2.64x; a 1.5x slower drop-in is 2.85x and more
    Budget("exi/drop-in-worst", 2.8, "bench_exi.py", _dropin_worst,
           "worst vector and direction: drop-in exi.josev JSON text / the native codec's dicts"),
    # README targets 1.25x cold, 1.2x warm; today 1.06x-1.18x / 1.05x-1.21x (ISO-2), 1.03x / ~1.01x
    # (ISO-20), single loaded runs up to 1.30x warm
    Budget("pki/cold-2", 1.4, "bench_pki.py", _pki("cold", 2), "ISO-2 contract chain, cold / 3 raw P-256 verifications"),
    Budget("pki/warm-2", 1.4, "bench_pki.py", _pki("warm", 2), "ISO-2 contract chain, warm / 1 raw P-256 verification"),
    Budget("pki/cold-20", 1.4, "bench_pki.py", _pki("cold", 20), "ISO-20 contract chain, cold / 3 raw P-521 verifications"),
    Budget("pki/warm-20", 1.4, "bench_pki.py", _pki("warm", 20), "ISO-20 contract chain, warm / 1 raw P-521 verification"),
    # today 2.7x-2.8x (reuse) and 2.7x-3.1x (install), bounded runs on a quiet machine (before this
    # stop's session core work 2.9x-3.0x, single noisy runs up to 3.4x / 3.7x): headroom for such
    # runs, while a 1.5x slower session (4.0x and more) fails; the target (<= 1.5x, a session core
    # at its crypto floor) is not met (README "Benchmarks")
    Budget("session/crypto-floor reuse", 3.9, "bench_session.py", _session("reuse"),
           "ISO-2 PnC session, contract reused / its public-key floor"),
    Budget("session/crypto-floor install", 3.9, "bench_session.py", _session("install"),
           "ISO-2 PnC session with contract installation / its public-key floor"),
    # ISO 15118-20 (P-521 floor, ~455 us a verification): today 1.35x-1.47x (reuse), 1.31x-1.40x
    # (install), 1.36x-1.47x (Ed448), bounded runs on a quiet machine: within the README target of
    # 1.5x; the budget leaves a loaded machine's noise above it (runs beside another benchmark:
    # up to 1.63x), while the whole session 1.5x slower (1.98x and more) fails
    Budget("session/crypto-floor iso20-reuse", 1.9, "bench_session20.py", _session("iso20-reuse"),
           "ISO-20 PnC session, P-521 contract reused / its public-key floor"),
    Budget("session/crypto-floor iso20-install", 1.9, "bench_session20.py", _session("iso20-install"),
           "ISO-20 PnC session with contract installation / its public-key floor"),
    Budget("session/crypto-floor iso20-reuse-ed448", 1.9, "bench_session20.py", _session("iso20-reuse-ed448"),
           "ISO-20 PnC session, Ed448 contract reused / its public-key floor"),
)


@dataclass
class Verdict:
    budget: Budget
    ratio: Optional[float]
    detail: dict

    @property
    def ok(self) -> bool:
        return self.ratio is not None and self.ratio <= self.budget.limit

    def message(self) -> str:
        if self.ratio is None:
            return f"{self.budget.name}: not measured ({self.detail.get('missing')}); budget {self.budget.limit}x"
        extra = ", ".join(f"{k} {_fmt(v)}" for k, v in self.detail.items())
        return (f"{self.budget.name}: {self.ratio:.2f}x, budget {self.budget.limit}x "
                f"({self.budget.what}{'; ' + extra if extra else ''})")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {n}" for k, n in v.items() if n) + "}"
    return str(v)


def evaluate(m: Measurements, budgets: Tuple[Budget, ...] = BUDGETS) -> List[Verdict]:
    """The verdict of every budget on these measurements."""
    out = []
    for b in budgets:
        try:
            ratio, detail = b.ratio(m)
            out.append(Verdict(b, ratio, detail))
        except NotMeasured as exc:
            out.append(Verdict(b, None, {"missing": str(exc)}))
    return out


def read_run(path: Path) -> Measurements:
    """The measurements of one pytest-benchmark JSON (benchmarks carry their key in ``extra_info``)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    m = Measurements()
    for b in doc.get("benchmarks", []):
        extra = b.get("extra_info", {})
        key = extra.get("key")
        if not key or b.get("stats") is None:
            continue
        m.merge(Measurements({key: b["stats"]["min"]},
                             {key: dict(extra["public_key_ops"])} if "public_key_ops" in extra else {},
                             {key: dict(extra["crypto_floor"])} if "crypto_floor" in extra else {}))
    return m


#: the timer of each bench file: wall time for the microsecond-scale codec calls (they fit in a
#: scheduler slice), the process's CPU time for the millisecond-scale chains and sessions, which on
#: a loaded 2-core machine are preempted in every round (their wall-time minimum would then measure
#: the load, not the code); both sides of every ratio come from the same file, hence the same timer
TIMERS = {"bench_exi.py": "time.perf_counter", "bench_pki.py": "time.process_time",
          "bench_session.py": "time.process_time", "bench_session20.py": "time.process_time",
          "bench_session_din.py": "time.process_time"}


def run_benchmarks(file: str, out: Path, max_time: float) -> None:
    """One bounded pytest-benchmark run of ``file`` (a name in benches/), JSON to ``out``."""
    cmd = [sys.executable, "-m", "pytest", str(HERE / file), "--benchmark-enable",
           f"--benchmark-timer={TIMERS.get(file, 'time.perf_counter')}",
           "--benchmark-disable-gc", f"--benchmark-max-time={max_time}", "--benchmark-min-rounds=5",
           f"--benchmark-json={out}", "--benchmark-columns=min,median,rounds", "-p", "no:cacheprovider", "-q"]
    # cwd benches/: `python -m pytest` puts the working directory first on sys.path, and the
    # repository root there would shadow the installed packages with the source tree
    proc = subprocess.run(cmd, cwd=HERE, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark run failed (exit {proc.returncode}): {' '.join(cmd)}")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-time", type=float, default=0.25, help="seconds per benchmark (pytest-benchmark max-time)")
    ap.add_argument("--attempts", type=int, default=3, help="runs in all for a ratio over its budget")
    ap.add_argument("--json", type=Path, help="also write the summary JSON here")
    ap.add_argument("--keep", type=Path, help="keep pytest-benchmark's JSON of every run in this directory")
    ap.add_argument("--only", nargs="*", help="check only these budgets (names or prefixes, e.g. exi/ session/)")
    args = ap.parse_args(argv)
    budgets = tuple(b for b in BUDGETS if not args.only or any(b.name.startswith(o) for o in args.only))
    keep = args.keep or Path(tempfile.mkdtemp(prefix="plugcharge-bench-"))
    keep.mkdir(parents=True, exist_ok=True)

    m = Measurements()
    # the first run takes every bench file (every benchmark runs once in CI); re-runs only those of a
    # ratio over its budget
    files = sorted({b.file for b in budgets} | ({p.name for p in HERE.glob("bench_*.py")} if not args.only else set()))
    runs: List[dict] = []
    verdicts: List[Verdict] = []
    for attempt in range(1, max(1, args.attempts) + 1):
        for file in files:
            out = keep / f"run{attempt}-{Path(file).stem}.json"
            print(f"== benchmarks, run {attempt}: {file} ({TIMERS.get(file)})", flush=True)
            try:
                run_benchmarks(file, out, args.max_time)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            m.merge(read_run(out))
        runs.append({"run": attempt, "files": files})
        verdicts = evaluate(m, budgets)
        over = [v for v in verdicts if not v.ok]
        if not over:
            break
        files = sorted({v.budget.file for v in over})
        print("over budget after run %d (measuring again): %s" % (attempt, "; ".join(v.message() for v in over)),
              flush=True)

    summary = {
        "format": "plugcharge-bench-budgets/1",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cryptography": _version("cryptography"),
        "max_time_s": args.max_time,
        "runs": runs,
        "budgets": [{"name": v.budget.name, "ratio": None if v.ratio is None else round(v.ratio, 4),
                     "limit": v.budget.limit, "ok": v.ok, "what": v.budget.what, "detail": v.detail}
                    for v in verdicts],
        "public_key_ops": m.ops,
        "crypto_floor": m.floors,
        "min_us": {k: round(v * 1e6, 3) for k, v in sorted(m.timings.items())},
    }
    text = json.dumps(summary, indent=1, sort_keys=False)
    print("== benchmark budgets (JSON)")
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print("== benchmark budgets")
    for v in verdicts:
        if v.budget.name.startswith("session/crypto-floor") and v.ratio is not None:
            print(f"{v.budget.name}: {v.ratio:.2f}x")
        print(("ok   " if v.ok else "OVER ") + v.message())
    over = [v for v in verdicts if not v.ok]
    if over:
        print(f"error: {len(over)} benchmark ratio(s) over budget after {len(runs)} run(s): "
              + "; ".join(v.message() for v in over), file=sys.stderr)
        return 1
    return 0


def _version(dist: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - informational only
        return None


if __name__ == "__main__":
    sys.exit(main())
