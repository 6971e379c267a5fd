"""Suite-wide settings.

``PLUGCHARGE_REQUIRE_INSTALLED=1`` (set by .ci/run) fails the run if the packages were imported
from the source tree instead of the installed wheel. The test data is in the repository
(``tests/_testdata.py``: vectors, field corpus, oracle driver); only the XSDs are not, and the few
tests that read them (fixture ``schemas_dir``) skip unless ``EXI_XSD_DIR`` names their directory.
``PLUGCHARGE_REQUIRE_INTEROP=1`` (the interop leg of .ci/run) turns every skip of an interop test
(package or java missing, no network namespaces for the peer's link) into a failure, so that leg
cannot pass vacuously.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from _testdata import VECTORS, no_schemas_reason, require_installed
from _testdata import schemas_dir as _schemas_dir


def pytest_configure(config: pytest.Config) -> None:
    require_installed()


_REQUIRE_INTEROP = os.environ.get("PLUGCHARGE_REQUIRE_INTEROP") == "1"
_INTEROP_FILES = ("_interop_", "_interop.py", "test_exi_josev.py")


def _is_interop(nodeid: str, keywords: object = ()) -> bool:
    return "interop" in keywords or any(part in nodeid for part in _INTEROP_FILES)  # type: ignore[operator]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    if _REQUIRE_INTEROP and rep.skipped and _is_interop(collector.nodeid):
        rep.outcome = "failed"
        rep.longrepr = f"PLUGCHARGE_REQUIRE_INTEROP=1 but {collector.nodeid} was skipped: {rep.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    if _REQUIRE_INTEROP and rep.skipped and not hasattr(rep, "wasxfail") and item.get_closest_marker("interop"):
        rep.outcome = "failed"
        rep.longrepr = f"PLUGCHARGE_REQUIRE_INTEROP=1 but this interop test was skipped: {rep.longrepr}"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """``tests/data/vectors``: the golden streams (``found/``, ``field/`` below it)."""
    return VECTORS


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    """The V2G XSD directory (``EXI_XSD_DIR``); the test skips without it."""
    path = _schemas_dir()
    if path is None:
        pytest.skip(no_schemas_reason())
    return path
