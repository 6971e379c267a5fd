"""The build step that makes the EXI grammar tables (exi/codegen/_build.py, run by setup.py).

The tables are not in the repository (they come from ISO and DIN XSDs): a build generates them from
``EXI_XSD_DIR``, keeps those generated before in the checkout, or stops with a plain message.
The script is dev-only (not in the wheel): these tests run it from the checkout beside the tests.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

import exi

SRC = Path(__file__).resolve().parents[2] / "exi"
SCRIPT = SRC / "codegen" / "_build.py"
SETS = ("apphand", "din", "iso2", "iso20_ac", "iso20_acdp", "iso20_cm", "iso20_dc", "iso20_wpt", "xmldsig")

pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="exi/codegen (dev-only) is not in this checkout")


def _run(out: Path, xsd_dir: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EXI_XSD_DIR"}
    if xsd_dir is not None:
        env["EXI_XSD_DIR"] = xsd_dir
    return subprocess.run([sys.executable, str(SCRIPT), str(out)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_no_xsds_and_no_tables_stops_with_what_to_do(tmp_path: Path) -> None:
    done = _run(tmp_path, None)
    assert done.returncode == 2
    assert "EXI_XSD_DIR" in done.stderr and "not distributed" in done.stderr
    assert "missing: apphand, din, iso2," in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_one_missing_table_is_named(tmp_path: Path) -> None:
    for name in SETS:
        if name != "iso20_dc":
            (tmp_path / f"{name}.py").write_text("# generated before\n")
    done = _run(tmp_path, None)
    assert done.returncode == 2 and "(missing: iso20_dc)" in done.stderr


def test_tables_generated_before_are_kept_without_xsds(tmp_path: Path) -> None:
    for name in SETS:
        (tmp_path / f"{name}.py").write_text(f"# {name}, generated before\n")
    done = _run(tmp_path, None)
    assert done.returncode == 0, done.stderr
    assert all((tmp_path / f"{n}.py").read_text() == f"# {n}, generated before\n" for n in SETS)


def test_xsd_dir_that_is_not_a_directory(tmp_path: Path) -> None:
    done = _run(tmp_path, str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "is not a directory" in done.stderr and "Traceback" not in done.stderr


def test_xsd_dir_without_the_schemas_names_the_missing_file(tmp_path: Path) -> None:
    xsds = tmp_path / "xsds"
    xsds.mkdir()
    done = _run(tmp_path / "out", str(xsds))
    assert done.returncode == 2
    assert "could not generate the EXI grammar tables" in done.stderr and "V2G_CI_AppProtocol.xsd" in done.stderr
    assert "Traceback" not in done.stderr


def test_generated_from_the_xsds_are_the_installed_tables(tmp_path: Path, schemas_dir: Path) -> None:
    done = _run(tmp_path, str(schemas_dir))
    assert done.returncode == 0, done.stderr
    installed = Path(exi.__file__).resolve().parent / "_generated"
    made = sorted(p.name for p in tmp_path.glob("*.py"))
    assert made == sorted(p.name for p in installed.glob("*.py"))
    assert {f"{n}.py" for n in SETS} <= set(made) and "iso2_jar.py" in made
    for name in made:
        assert (tmp_path / name).read_text() == (installed / name).read_text(), name


def test_a_codec_without_its_tables_says_how_to_make_them() -> None:
    codec_module = importlib.import_module("exi._codec")
    with pytest.raises(ImportError, match=r"not generated.*python -m exi.codegen --xsd-dir DIR"):
        codec_module.Codec("urn:example:none", "no_such_set")
