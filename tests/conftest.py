"""Suite-wide settings.

``PLUGCHARGE_REQUIRE_INSTALLED=1`` (set by .ci/run) fails the run if the packages were imported
from the source tree instead of the installed wheel. ``SHARED`` points at ../shared (vectors,
schemas, oracle), which CI always has beside the clone; tests that need it skip when it is absent.
``PLUGCHARGE_REQUIRE_INTEROP=1`` (the interop leg of .ci/run) turns every skip of an interop test
(package or java missing, no network namespaces for the peer's link) into a failure, so that leg
cannot pass vacuously.
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
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout")
    return SHARED
