"""Fixtures shared by the session tests."""
from __future__ import annotations

import pytest

from _pc_fixtures import fake_codecs, real_codec_status

_REAL = real_codec_status()


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.skipif(_REAL is not None, reason=str(_REAL)))])
def cp(request):
    """The codec provider a test runs on: the JSON fake, and the real EXI codec when it works."""
    if request.param == "fake":
        return fake_codecs
    import exi

    return exi.get_codec
