"""Every ```python block of README.md runs as written, in order, in one fresh interpreter.

The blocks share one namespace (as if pasted into one interpreter session, top to bottom) and make
their own data (the test-PKI issuer, temporary directories). The interpreter is a new process with
the working directory in a temporary folder, so it imports the installed packages (in CI: the wheel)
and never the source tree. A failure shows the traceback with README.md line numbers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _testdata import REPO

README = REPO / "README.md"

_RUNNER = r"""
import json, sys
blocks = json.load(sys.stdin)
ns = {"__name__": "__main__"}
for line, code in blocks:
    # pad with newlines so that tracebacks give README.md line numbers
    exec(compile("\n" * (line - 1) + code, "README.md", "exec"), ns)
import exi, pki, plugcharge
print("\n" + json.dumps({m.__name__: m.__file__ for m in (exi, pki, plugcharge)}))
"""


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number of the code, code) of each ```python fenced block, in order."""
    out: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            assert j < len(lines), f"README.md:{i + 1}: unterminated ```python block"
            out.append((start + 1, "\n".join(lines[start:j]) + "\n"))
            i = j
        i += 1
    return out


def test_block_parser() -> None:
    text = "x\n```python\na = 1\n```\n```sh\nls\n```\n```python\nb = a\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "b = a\n")]


def test_readme_python_blocks_run(tmp_path: Path) -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    codes = [code for _, code in blocks]
    assert len(blocks) >= 4
    assert any("pki.verify_chain" in c for c in codes), "the certificate example is missing"
    assert any("EVSession" in c and "ChargerSession" in c and ".data" in c for c in codes), \
        "the in-memory session example is missing"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TMPDIR"] = str(tmp_path)  # whatever the examples write stays in the test's directory
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(blocks), capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, f"a README example failed:\n{proc.stderr[-4000:]}"
    where = json.loads(proc.stdout.strip().splitlines()[-1])
    if os.environ.get("PLUGCHARGE_REQUIRE_INSTALLED") == "1":
        for mod, path in where.items():
            assert REPO not in Path(path).resolve().parents, f"{mod} came from the source tree ({path})"
