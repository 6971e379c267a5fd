"""Suite-wide settings.

``PLUGCHARGE_REQUIRE_INSTALLED=1`` (set by .ci/run) fails the run if the packages were imported
from the source tree instead of the installed wheel. ``SHARED`` points at ../shared (vectors,
schemas, oracle), which CI always has beside the clone; tests that need it skip when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PLUGCHARGE_SHARED", REPO.parent / "shared"))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PLUGCHARGE_REQUIRE_INSTALLED") == "1":
        import exi
        import pki
        import plugcharge

        for mod in (exi, pki, plugcharge):
            where = Path(mod.__file__).resolve()
            if REPO in where.parents:
                raise pytest.UsageError(f"{mod.__name__} imported from the source tree ({where}), not the installed wheel")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED
