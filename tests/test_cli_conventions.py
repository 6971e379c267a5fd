"""The three command lines (``python -m exi``, ``python -m pki``, ``plugcharge``) share conventions:
every subcommand has a help text, and every error a user can cause is one line of the form
``<command as typed>: error: <one sentence>`` (the form argparse uses for its own errors), without
exception reprs or tracebacks."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from exi.cli import build_parser as exi_parser
from pki.__main__ import build_parser as pki_parser
from plugcharge.cli import build_parser as plugcharge_parser

RAW = re.compile(r"Traceback|\w+Error\(|\[Errno|ParseError|\{ kind")


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(prog, help text in the parent's list, parser) of every subcommand, recursively."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield sub.prog, helps.get(name) or "", sub
                yield from _subcommands(sub)


@pytest.mark.parametrize("make", [exi_parser, pki_parser, plugcharge_parser], ids=["exi", "pki", "plugcharge"])
def test_every_subcommand_has_a_help_text(make) -> None:  # type: ignore[no-untyped-def]
    subs = list(_subcommands(make()))
    assert subs
    for prog, help_text, sub in subs:
        assert help_text.strip(), f"'{prog}' has no help text in its parent's command list"
        assert (sub.description or "").strip(), f"'{prog} --help' has no description"


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PLUGCHARGE_DATA_DIR")}
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("argv,prog,needle", [
    (["-m", "exi", "decode", "-n", "iso2", "80zz"], "python -m exi decode", "not a hex string"),
    (["-m", "exi", "decode", "-n", "nope", "80"], "python -m exi decode", "unknown namespace"),
    (["-m", "exi", "bogus"], "python -m exi", "invalid choice"),
    (["-m", "pki", "issue-test-pki", "{tmp}", "--iso", "2", "--algorithm", "ed448"], "python -m pki issue-test-pki",
     "ISO 15118-20 only"),
    (["-m", "pki", "issue-test-pki", "{tmp}/x", "--emaid", "bad"], "python -m pki issue-test-pki", "eMAID"),
    (["-m", "plugcharge", "wallet", "list", "--data-dir", "{tmp}/none"], "plugcharge wallet list", "no wallet"),
    (["-m", "plugcharge", "demo", "--loops", "0"], "plugcharge demo", "--loops"),
])
def test_one_error_form_across_the_command_lines(tmp_path: Path, argv: list[str], prog: str, needle: str) -> None:
    (tmp_path / "existing").mkdir()
    p = _run(*[a.replace("{tmp}", str(tmp_path)) for a in argv], cwd=tmp_path)
    assert p.returncode in (1, 2), p
    lines = [line for line in p.stderr.splitlines() if not line.startswith(("usage:", " "))]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"{prog}: error: ") and needle in lines[0], p.stderr
    assert not RAW.search(p.stderr), p.stderr
