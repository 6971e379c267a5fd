"""Benchmark settings: ``PLUGCHARGE_REQUIRE_INSTALLED=1`` (set by .ci/run) fails the run if the
packages were imported from the source tree instead of the installed wheel, as in ``tests/``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PLUGCHARGE_REQUIRE_INSTALLED") == "1":
        import exi
        import pki
        import plugcharge

        for mod in (exi, pki, plugcharge):
            where = Path(mod.__file__).resolve()
            if REPO in where.parents:
                raise pytest.UsageError(f"{mod.__name__} imported from the source tree ({where}), not the installed wheel")
