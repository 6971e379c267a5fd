"""``python -m exi`` as a user runs it: a subprocess, stdin/stdout/stderr and exit codes.

Uses the committed golden vectors.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import sys
from pathlib import Path
from typing import Any

import pytest

# run outside the checkout, so that -m exi imports the installed package, not the source tree
_OUTSIDE = tempfile.gettempdir()
GOLDEN = Path(__file__).resolve().parent / "golden"
ISO2 = "urn:iso:15118:2:2013:MsgDef"


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ)
    import exi  # the package under test (installed wheel in CI, the checkout in development)

    env["PYTHONPATH"] = str(Path(exi.__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "exi", *args], input=stdin, capture_output=True, cwd=_OUTSIDE,
                          timeout=60, env=env)


def _golden(schema_set: str, kind: str = "document") -> dict[str, Any]:
    doc = json.loads((GOLDEN / f"golden_{schema_set}.json").read_text(encoding="utf-8"))
    for v in doc["vectors"]:
        if v["kind"] == kind:
            return v
    raise LookupError(schema_set)


@pytest.fixture(scope="module")
def iso2_vec() -> dict[str, Any]:
    return _golden("iso2")


def test_decode_hex_argument_prints_vector_json(iso2_vec: dict[str, Any]) -> None:
    r = _run("decode", "--namespace", "iso2", iso2_vec["exi_hex"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == iso2_vec["message"]
    assert r.stderr == b""


def test_decode_full_namespace_and_stdin(iso2_vec: dict[str, Any]) -> None:
    r = _run("decode", "-n", ISO2, "-", stdin=(iso2_vec["exi_hex"].upper() + "\n").encode())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == iso2_vec["message"]


def test_decode_raw_bytes_on_stdin(iso2_vec: dict[str, Any]) -> None:
    r = _run("decode", "-n", "iso2", "--compact", "-", stdin=bytes.fromhex(iso2_vec["exi_hex"]))
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1
    assert json.loads(r.stdout) == iso2_vec["message"]


@pytest.mark.parametrize("short,schema_set", [
    ("apphand", "apphand"), ("din", "din"), ("iso2", "iso2"), ("iso20", "iso20-common"),
    ("iso20-common", "iso20-common"), ("iso20-ac", "iso20-ac"), ("iso20-dc", "iso20-dc"),
])
def test_short_names_round_trip(tmp_path: Path, short: str, schema_set: str) -> None:
    v = _golden(schema_set)
    f = tmp_path / "msg.json"
    f.write_text(json.dumps(v["message"]), encoding="utf-8")
    enc = _run("encode", "--namespace", short, str(f))
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout.decode().strip() == v["exi_hex"]
    dec = _run("decode", "--namespace", short, v["exi_hex"])
    assert dec.returncode == 0, dec.stderr
    assert json.loads(dec.stdout) == v["message"]


def test_xmldsig_fragment_both_ways() -> None:
    v = _golden("xmldsig", "xmldsigFragment")
    enc = _run("encode", "-n", "xmldsig", "--fragment", "-", stdin=json.dumps(v["message"]).encode())
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout.decode().strip() == v["exi_hex"]
    dec = _run("decode", "-n", "xmldsig", "--fragment", v["exi_hex"])
    assert json.loads(dec.stdout) == v["message"]


def test_iso2_fragment_encode() -> None:
    v = _golden("iso2", "exiFragment")
    enc = _run("encode", "-n", "iso2", "--fragment", "-", stdin=json.dumps(v["message"]).encode())
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout.decode().strip() == v["exi_hex"]


def test_encode_accepts_a_vector_file(tmp_path: Path, iso2_vec: dict[str, Any]) -> None:
    f = tmp_path / "vec.json"
    f.write_text(json.dumps(iso2_vec), encoding="utf-8")
    r = _run("encode", "-n", "iso2", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == iso2_vec["exi_hex"]


def test_v2gtp_header_is_validated_and_stripped(iso2_vec: dict[str, Any]) -> None:
    payload = bytes.fromhex(iso2_vec["exi_hex"])
    framed = bytes([0x01, 0xFE, 0x80, 0x01]) + len(payload).to_bytes(4, "big") + payload
    r = _run("decode", "-n", "iso2", framed.hex())
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == iso2_vec["message"]
    err = r.stderr.decode()
    assert "stripped V2GTP header" in err and "0x8001" in err and f"length {len(payload)}" in err


def test_encode_with_v2gtp_header_round_trips(tmp_path: Path, iso2_vec: dict[str, Any]) -> None:
    f = tmp_path / "m.json"
    f.write_text(json.dumps(iso2_vec["message"]), encoding="utf-8")
    r = _run("encode", "-n", "iso2", "--v2gtp", str(f))
    out = bytes.fromhex(r.stdout.decode().strip())
    assert out[:4] == bytes([0x01, 0xFE, 0x80, 0x01])
    assert int.from_bytes(out[4:8], "big") == len(out) - 8
    assert out[8:].hex() == iso2_vec["exi_hex"]


@pytest.mark.parametrize("prefix,with_payload,needle", [
    ("01fe8001000000ff", True, "payload length field says 255"),
    ("01fe9000", False, "truncated"),
    ("01fe900000000001", False, "SDP request"),
    ("01ff800100000001", False, "inverse version 0xFF"),
    ("01fe123400000001", False, "unknown payload type 0x1234"),
])
def test_bad_v2gtp_header_exit_1(iso2_vec: dict[str, Any], prefix: str, with_payload: bool, needle: str) -> None:
    data = prefix + (iso2_vec["exi_hex"] if with_payload else "80")
    r = _run("decode", "-n", "iso2", data)
    assert r.returncode == 1
    assert needle in r.stderr.decode()
    assert r.stdout == b""


@pytest.mark.parametrize("args,stdin,needle", [
    (("decode", "-n", "iso2", "80zz"), None, "not a hex string"),
    (("decode", "-n", "iso2", "809"), None, "odd number of digits"),
    (("decode", "-n", "iso2", "80ff"), None, "cannot decode"),
    (("decode", "-n", "iso2", "-"), b"", "empty input"),
    (("encode", "-n", "iso2", "-"), b"{not json", "invalid JSON"),
    (("encode", "-n", "iso2", "-"), b"[1, 2]", "exactly one root element"),
    (("encode", "-n", "iso2", "-"), b'{"V2G_Message": {"Header": {}}}', "cannot encode"),
    (("encode", "-n", "iso2", "/nonexistent/file.json"), None, "cannot read"),
])
def test_bad_input_exit_1(args: tuple[str, ...], stdin: bytes | None, needle: str) -> None:
    r = _run(*args, stdin=stdin)
    assert r.returncode == 1, (r.stdout, r.stderr)
    err = r.stderr.decode()
    assert needle in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [
    ("decode", "-n", "nosuch", "80"),
    ("decode", "80"),
    ("frobnicate",),
    (),
])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    r = _run(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr.decode()


def test_xml_output(iso2_vec: dict[str, Any]) -> None:
    r = _run("decode", "-n", "iso2", "--xml", iso2_vec["exi_hex"])
    assert r.returncode == 0, r.stderr
    import xml.etree.ElementTree as ET

    root = ET.fromstring(r.stdout)
    assert root.tag == "{%s}V2G_Message" % ISO2
    body = root.find(f"{{{ISO2}}}Body")
    assert body is not None and len(body) == 1
    assert body[0].tag.endswith(next(iter(iso2_vec["message"]["V2G_Message"]["Body"])))


def test_namespaces_listing() -> None:
    r = _run("namespaces")
    assert r.returncode == 0
    assert b"iso20-dc" in r.stdout and b"urn:iso:std:iso:15118:-20:DC" in r.stdout
