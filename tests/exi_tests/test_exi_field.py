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

#: Optional xs:unsignedByte elements that EXIficient's JAXB binding (primitive ``short`` fields)
#: reports as 0 when absent: a quirk of the oracle, not of the streams. (NumEPriceLevels: the jar
#: decodes our encoding of a SalesTariff without it back with "NumEPriceLevels": 0.)
_JAR_ZERO_DEFAULTS = frozenset({"SchemaID", "SAScheduleTupleID", "EPriceLevel", "NumEPriceLevels"})


def _known() -> dict[tuple[str, int], str]:
    p = HERE / "field_known_failures.json"
    if not p.is_file():
        return {}
    return {(e["file"], e["index"]): e["reason"] for e in json.loads(p.read_text(encoding="utf-8"))}


def _collect() -> tuple[dict[str, list[tuple[int, dict[str, Any]]]], list[Any]]:
    """(file -> [(index, entry)] of streams expected to pass, xfail params of known failures)."""
    files: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    known_params: list[Any] = []
    if not FIELD.is_dir():
        return files, known_params
    known = _known()
    for f in sorted(FIELD.glob("*.json")):
        try:
            entries = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for i, e in enumerate(entries):
            proto = e.get("protocol")
            if proto not in PROTOCOLS or not isinstance(e.get("exi_hex"), str):
                continue
            reason = known.get((f.name, i))
            if reason:
                known_params.append(pytest.param(f.name, i, e, id=f"{f.stem}-{i}-{proto}",
                                                 marks=pytest.mark.xfail(strict=True, reason=reason)))
            else:
                files.setdefault(f.name, []).append((i, e))
    return files, known_params


FILES, KNOWN_PARAMS = _collect()
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


def check_stream(fname: str, entry: dict[str, Any]) -> str:
    """Check one stream; returns its outcome label or raises AssertionError / DecodeError."""
    namespace, fragment = PROTOCOLS[entry["protocol"]]
    data = bytes.fromhex(entry["exi_hex"])
    jar_ok = entry.get("exificient_status") == "OK" and entry.get("exificient_decoded")
    try:
        ours = _decode(namespace, fragment, data)
    except exi.DecodeError:
        if jar_ok:
            raise
        return "DecodeError where EXIficient failed too"
    if not jar_ok:
        return "decoded where EXIficient failed"
    jar = json.loads(entry["exificient_decoded"])
    assert ours == normalize_jar(ours, jar)
    return "equal to EXIficient"


@pytest.mark.skipif(not FILES, reason="../shared/vectors/field is not beside the checkout")
@pytest.mark.parametrize("fname", sorted(FILES))
def test_field_file(fname: str) -> None:
    """Every supported stream of one field file (known failures excluded, see below)."""
    bad: list[str] = []
    for i, entry in FILES[fname]:
        try:
            _RESULTS[(fname, check_stream(fname, entry))] += 1
        except (AssertionError, exi.DecodeError) as exc:
            _RESULTS[(fname, "FAILED")] += 1
            bad.append(f"#{i} {entry.get('protocol')} {entry.get('message', '')}: {type(exc).__name__}: {str(exc)[:300]}")
        except Exception as exc:  # noqa: BLE001 - anything else is a codec bug to report
            _RESULTS[(fname, "FAILED")] += 1
            bad.append(f"#{i} {entry.get('protocol')}: unexpected {type(exc).__name__}: {exc}")
    assert not bad, f"{len(bad)} of {len(FILES[fname])} streams failed:\n" + "\n".join(bad[:20])


if KNOWN_PARAMS:  # none at present: every field stream of our schemas passes
    @pytest.mark.parametrize("fname,index,entry", KNOWN_PARAMS)
    def test_field_known_failure(fname: str, index: int, entry: dict[str, Any]) -> None:
        """Streams listed in field_known_failures.json: strict xfail, so a fix is noticed."""
        check_stream(fname, entry)


@pytest.mark.skipif(not FILES, reason="../shared/vectors/field is not beside the checkout")
def test_field_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints per-file counts (visible with -s); checks that the collection is not empty."""
    total = sum(len(v) for v in FILES.values()) + len(KNOWN_PARAMS)
    assert total > 3000
    with capsys.disabled():
        if _RESULTS:
            print("\nfield streams (this run):")
            for f in sorted(FILES):
                parts = ", ".join(f"{k} {v}" for (ff, k), v in sorted(_RESULTS.items()) if ff == f)
                print(f"  {f}: {len(FILES[f])} checked; {parts}")


@pytest.mark.skipif(not FILES, reason="../shared/vectors/field is not beside the checkout")
def test_field_streams_through_the_drop_in() -> None:
    """``exi.josev.JosevCodec`` gives EXIficient's JSON of every document stream it decoded,
    exactly: the jar's zero defaults included (``SchemaID``, ``SAScheduleTupleID``, ``EPriceLevel``,
    ``NumEPriceLevels`` of streams that lack them), which the native dict does not carry."""
    from exi.josev import JosevCodec

    codec = JosevCodec()
    checked = with_defaults = 0
    bad: list[str] = []
    for fname, entries in FILES.items():
        for i, e in entries:
            namespace, fragment = PROTOCOLS[e["protocol"]]
            if fragment or e.get("exificient_status") != "OK" or not e.get("exificient_decoded"):
                continue
            jar = json.loads(e["exificient_decoded"])
            data = bytes.fromhex(e["exi_hex"])
            got = json.loads(codec.decode(data, namespace))
            checked += 1
            if got != jar:
                bad.append(f"{fname} #{i}")
            elif _decode(namespace, False, data) != jar:
                with_defaults += 1
    assert not bad, f"{len(bad)} streams differ: {bad[:10]}"
    assert checked > 3000
    assert with_defaults >= 7  # the streams whose JSON carries the jar's zero defaults
