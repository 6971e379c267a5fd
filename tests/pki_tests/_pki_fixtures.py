"""Shared, session-cached test PKIs for the pki tests (import from test modules, not a conftest).

Usage::

    from _pki_fixtures import NOW, cached_pki, cached_broken, pki2, pki20, pki_any

``cached_pki(iso, algorithm)`` returns the same :class:`pki.issue.TestPKI` for the whole session
(seed :data:`SEED`, reference time :data:`NOW`; validate chains at ``NOW``). ``cached_broken`` returns
the "breaks exactly one rule" corpus of that PKI. The pytest fixtures ``pki2`` (ISO 15118-2, P-256),
``pki20`` (-20, P-521), ``pki20_ed448`` and ``pki_any`` (parametrised over all three) wrap them.
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone

import pytest

from pki._broken import broken_chains
from pki.issue import ChainCase, TestPKI, issue_test_pki

SEED = 15118
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
#: (iso, algorithm) of every variant the fixtures offer
VARIANTS = ((2, "secp256r1"), (20, "secp521r1"), (20, "ed448"))


@functools.lru_cache(maxsize=None)
def cached_pki(iso: int = 2, algorithm: str | None = None) -> TestPKI:
    """The session's test PKI for ``iso`` (and ``algorithm``; default P-256 for -2, P-521 for -20)."""
    return issue_test_pki(iso, seed=SEED, now=NOW, algorithm=algorithm)


@functools.lru_cache(maxsize=None)
def cached_broken(iso: int = 2, algorithm: str | None = None) -> dict[str, ChainCase]:
    """``pki._broken.broken_chains`` of :func:`cached_pki` (validate at :data:`NOW`)."""
    return broken_chains(iso, pki=cached_pki(iso, algorithm), seed=SEED)


@pytest.fixture(scope="session")
def pki2() -> TestPKI:
    """ISO 15118-2 test PKI (secp256r1)."""
    return cached_pki(2)


@pytest.fixture(scope="session")
def pki20() -> TestPKI:
    """ISO 15118-20 test PKI (secp521r1)."""
    return cached_pki(20)


@pytest.fixture(scope="session")
def pki20_ed448() -> TestPKI:
    """ISO 15118-20 test PKI (Ed448)."""
    return cached_pki(20, "ed448")


@pytest.fixture(scope="session", params=VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def pki_any(request: pytest.FixtureRequest) -> TestPKI:
    """Each of the three variants in turn."""
    iso, algorithm = request.param
    return cached_pki(iso, algorithm)
