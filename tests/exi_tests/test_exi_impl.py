"""Engine selection: compiled by default, pure Python only on request, never a silent fallback."""
from __future__ import annotations

import os
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

import exi

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "EXI_IMPL"}
    full_env.update(env)
    here = str(Path(exi.__file__).resolve().parent.parent)
    full_env["PYTHONPATH"] = here + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120,
                          cwd=tempfile.gettempdir())  # not the checkout: import the installed package


def test_require_compiled() -> None:
    """PLUGCHARGE_REQUIRE_COMPILED=1 (set for wheels) means the compiled engine is in use."""
    if os.environ.get("PLUGCHARGE_REQUIRE_COMPILED") != "1":
        pytest.skip("PLUGCHARGE_REQUIRE_COMPILED is not set")
    assert exi.IMPLEMENTATION == "compiled"
    assert type(exi.get_codec("urn:din:70121:2012:MsgDef")._doc).__module__ == "exi._cengine"


def test_implementation_value() -> None:
    assert exi.IMPLEMENTATION in ("compiled", "python")
    expected = "python" if os.environ.get("EXI_IMPL", "").lower() == "python" else "compiled"
    assert exi.IMPLEMENTATION == expected


def test_env_forces_python() -> None:
    res = _run("import exi; print(exi.IMPLEMENTATION, type(exi.get_codec('urn:din:70121:2012:MsgDef')._doc).__module__)", EXI_IMPL="python")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["python", "exi._engine"]


def test_missing_compiled_engine_is_an_import_error() -> None:
    """Without the compiled module (simulated by a blocking import hook) importing exi fails plainly."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'exi._cengine':\n"
        "            raise ImportError('blocked for the test')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n"
        "    import exi\n"
        "except ImportError as e:\n"
        "    print('IMPORTERROR', e)\n"
        "else:\n"
        "    print('IMPORTED', exi.IMPLEMENTATION)\n"
    )
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("IMPORTERROR"), res.stdout
    assert "compiled EXI engine" in res.stdout and "not built" in res.stdout


def test_get_codec_namespaces() -> None:
    for ns in exi.NAMESPACES:
        codec = exi.get_codec(ns)
        assert codec.namespace == ns
        assert exi.get_codec(ns) is codec
    with pytest.raises(exi.UnknownNamespaceError) as info:
        exi.get_codec("urn:example:nothing")
    assert isinstance(info.value, exi.EXIError) and isinstance(info.value, ValueError)
