"""Fixtures of the EXI tests: both engine implementations over the same tables."""
from __future__ import annotations

import importlib
import os
from typing import Any, List

import pytest


def _engines() -> List[Any]:
    out = [pytest.param("python", id="python")]
    out.append(pytest.param("compiled", id="compiled"))
    return out


@pytest.fixture(params=_engines())
def exi_engine(request: pytest.FixtureRequest) -> Any:
    """The engine module (exi._engine or exi._cengine); the compiled one skips when it is not built,
    unless PLUGCHARGE_REQUIRE_COMPILED=1, where its absence fails."""
    if request.param == "python":
        return importlib.import_module("exi._engine")
    try:
        return importlib.import_module("exi._cengine")
    except ImportError:
        if os.environ.get("PLUGCHARGE_REQUIRE_COMPILED") == "1":
            raise
        pytest.skip("compiled engine exi._cengine is not built")


@pytest.fixture
def make_codec(exi_engine: Any) -> Any:
    """make_codec(namespace, grammars="exi") -> exi.Codec running on the parametrized engine."""
    from exi._codec import NAMESPACES, Codec

    cache = {}

    def make(namespace: str, grammars: str = "exi") -> Codec:
        if (namespace, grammars) not in cache:
            cache[namespace, grammars] = Codec(namespace, NAMESPACES[namespace], engine=exi_engine, grammars=grammars)
        return cache[namespace, grammars]

    return make
