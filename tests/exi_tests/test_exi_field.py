"""Real-world streams from ../shared/vectors/field against EXIficient's decoding of them.

Every stream of a protocol we support (AppProtocol, DIN, ISO 15118-2, the five ISO 15118-20
namespaces, ISO-2 and xmldsig fragments): where EXIficient decoded it (``exificient_status`` OK)
our decoder must give the same JSON (normalized: EXIficient reports some absent optional
integers as 0, see ``_JAR_ZERO_DEFAULTS``); where it could not, ours must either decode it or
raise ``exi.DecodeError``, never anything else. Streams of protocols outside our schemas
(2016 drafts, AC-DER, SDP, primitives) and -20 fragments of unknown namespace are not collected.
Known disagreements are data in ``field_known_failures.json`` (strict xfail).

Per-file pass counts: ``pytest tests/exi_tests/test_exi_field.py -q -rA | python -c ...`` or see
the summary test at the end, which prints them with ``-s``.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import exi
from exi._shape import to_json

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("PLUGCHARGE_SHARED", HERE.parent.parent.parent / "shared"))
FIELD = SHARED / "vectors" / "field"

#: protocol label of the field files -> (namespace, fragment?)
PROTOCOLS: dict[str, tuple[str, bool]] = {
    "app_handshake": ("urn:iso:15118:2:2010:AppProtocol", False),
    "din70121": ("urn:din:70121:2012:MsgDef", False),
    "iso15118-2": ("urn:iso:15118:2:2013:MsgDef", False),
    "iso15118-20-common": ("urn:iso:std:iso:15118:-20:CommonMessages", False),
    "iso15118-20-ac": ("urn:iso:std:iso:15118:-20:AC", False),
    "iso15118-20-dc": ("urn:iso:std:iso:15118:-20:DC", False),
    "iso15118-20-acdp": ("urn:iso:std:iso:15118:-20:ACDP", False),
    "iso15118-20-wpt": ("urn:iso:std:iso:15118:-20:WPT", False),
    "iso15118-2-fragment": ("urn:iso:15118:2:2013:MsgDef", True),
    "xmldsig-fragment": ("http://www.w3.org/2000/09/xmldsig#", True),
}

#: Optional integer elements that EXIficient's JAXB binding reports as 0 when absent.
_JAR_ZERO_DEFAULTS = frozenset({"SchemaID", "SAScheduleTupleID"})


def _known() -> dict[tuple[str, int], str]:
    p = HERE / "field_known_failures.json"
    if not p.is_file():
        return {}
    return {(e["file"], e["index"]): e["reason"] for e in json.loads(p.read_text(encoding="utf-8"))}


def _collect() -> list[Any]:
    if not FIELD.is_dir():
        return []
    known = _known()
    out = []
    for f in sorted(FIELD.glob("*.json")):
        try:
            entries = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for i, e in enumerate(entries):
            proto = e.get("protocol")
            if proto not in PROTOCOLS or not isinstance(e.get("exi_hex"), str):
                continue
            marks = []
            reason = known.get((f.name, i))
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            out.append(pytest.param(f.name, i, e, marks=marks, id=f"{f.stem}-{i}-{proto}"))
    return out


PARAMS = _collect()
_RESULTS: Counter[tuple[str, str]] = Counter()


def normalize_jar(ours: Any, jar: Any) -> Any:
    """EXIficient's JSON with its materialized zero defaults removed where ours has no such key."""
    if isinstance(jar, dict) and isinstance(ours, dict):
        out = {}
        for k, v in jar.items():
            if k in _JAR_ZERO_DEFAULTS and k not in ours and v == 0:
                continue
            out[k] = normalize_jar(ours.get(k), v)
        return out
    if isinstance(jar, list) and isinstance(ours, list) and len(jar) == len(ours):
        return [normalize_jar(a, b) for a, b in zip(ours, jar)]
    return jar


def _decode(namespace: str, fragment: bool, data: bytes) -> Any:
    codec = exi.get_codec(namespace)
    msg = codec.decode_fragment(data) if fragment else codec.decode(data)
    return to_json(codec, msg, fragment=fragment)


@pytest.mark.skipif(not PARAMS, reason="../shared/vectors/field is not beside the checkout")
@pytest.mark.parametrize("fname,index,entry", PARAMS)
def test_field_stream(fname: str, index: int, entry: dict[str, Any]) -> None:
    namespace, fragment = PROTOCOLS[entry["protocol"]]
    data = bytes.fromhex(entry["exi_hex"])
    jar_ok = entry.get("exificient_status") == "OK" and entry.get("exificient_decoded")
    try:
        ours = _decode(namespace, fragment, data)
    except exi.DecodeError:
        _RESULTS[(fname, "DecodeError" if not jar_ok else "FAIL")] += 1
        if jar_ok:
            raise
        return
    if not jar_ok:
        _RESULTS[(fname, "decoded (EXIficient could not)")] += 1
        return
    jar = json.loads(entry["exificient_decoded"])
    assert ours == normalize_jar(ours, jar)
    _RESULTS[(fname, "equal")] += 1


@pytest.mark.skipif(not PARAMS, reason="../shared/vectors/field is not beside the checkout")
def test_field_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints per-file counts (run with -s); checks that the collection is not empty."""
    per_file = Counter(p.values[0] for p in PARAMS)
    assert sum(per_file.values()) > 3000
    with capsys.disabled():
        if _RESULTS:
            print("\nfield streams (this run):")
            for f in sorted(per_file):
                parts = ", ".join(f"{k} {v}" for (ff, k), v in sorted(_RESULTS.items()) if ff == f)
                print(f"  {f}: {per_file[f]} collected; {parts}")
