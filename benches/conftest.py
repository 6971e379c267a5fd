"""Benchmark settings: ``PLUGCHARGE_REQUIRE_INSTALLED=1`` (set by .ci/run) fails the run if the
packages were imported from the source tree instead of the installed wheel, as in ``tests/``."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("plugcharge_testdata", Path(__file__).resolve().parent.parent / "tests"
                                               / "_testdata.py")
assert _SPEC is not None and _SPEC.loader is not None
_TESTDATA = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_TESTDATA)


def pytest_configure(config: pytest.Config) -> None:
    _TESTDATA.require_installed()
