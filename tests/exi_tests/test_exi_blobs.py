"""Binary values at every length and bit alignment: the compiled engine copies blobs 64 bits at a
time, the pure-Python twin with big integers; both must give the same bytes and read them back."""
from __future__ import annotations

import importlib
import random

import pytest

from exi._codec import NAMESPACES, Codec

ISO2 = "urn:iso:15118:2:2013:MsgDef"


def _codec(impl: str) -> Codec:
    try:
        engine = importlib.import_module("exi._cengine" if impl == "compiled" else "exi._engine")
    except ImportError:
        pytest.skip("compiled engine not built")
    return Codec(ISO2, NAMESPACES[ISO2], engine=engine)


def _message(blobs: list[bytes], session: bytes) -> dict:
    return {"V2G_Message": {"Header": {"SessionID": session}, "Body": {"PaymentDetailsReq": {
        "eMAID": "DE1234567890AB",
        "ContractSignatureCertChain": {"Certificate": blobs[0], "SubCertificates": {"Certificate": blobs[1:]}}}}}}


@pytest.mark.parametrize("length", [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 799, 800])
def test_blobs_every_alignment_both_engines(length: int) -> None:
    rng = random.Random(length)
    compiled, python = _codec("compiled"), _codec("python")
    for session_len in range(1, 9):  # shifts the bit alignment of everything after the header
        blobs = [bytes(rng.randrange(256) for _ in range(max(1, length - k))) for k in range(4)]
        msg = _message(blobs, bytes(rng.randrange(256) for _ in range(session_len)))
        data = compiled.encode(msg)
        assert python.encode(msg) == data
        assert compiled.decode(data) == msg
        assert python.decode(data) == msg
