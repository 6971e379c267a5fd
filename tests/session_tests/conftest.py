"""Fixtures shared by the session tests."""
from __future__ import annotations

import pytest

from _pc_fixtures import fake_codecs, real_codec_status
from plugcharge import ChargerSession
from plugcharge.core.codec import NS_ISO2, body_of
from plugcharge.iso2.states import RESPONSE_CODES

_REAL = real_codec_status()


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.skipif(_REAL is not None, reason=str(_REAL)))])
def cp(request):
    """The codec provider a test runs on: the JSON fake, and the real EXI codec when it works."""
    if request.param == "fake":
        return fake_codecs
    import exi

    return exi.get_codec


@pytest.fixture(autouse=True)
def responses_carry_allowed_codes(monkeypatch):
    """In every session test: each ISO-2 response our charger sends carries a ResponseCode that
    response may carry (``RESPONSE_CODES``); yields the (response, code) pairs sent. Checked at
    the end of the test (an exception inside the session could be taken for an encoding problem)."""
    sent: list[tuple[str, str]] = []
    queue = ChargerSession.queue

    def recording(self, message, name, ns=None, *args, **kwargs):
        if (ns or (self.protocol.namespace if self.protocol is not None else None)) == NS_ISO2:
            _, body, _ = body_of(message)
            sent.append((name, str(body.get("ResponseCode"))))
        return queue(self, message, name, ns, *args, **kwargs)
    monkeypatch.setattr(ChargerSession, "queue", recording)
    yield sent
    wrong = [(name, code) for name, code in sent if code not in RESPONSE_CODES[name]]
    assert not wrong, f"responses with a ResponseCode they may not carry: {wrong}"
