"""Wildcards (``xs:any``): only the xmldsig schema has them (the ##other/##any content of
SignatureMethod, Transform, KeyInfo, X509Data, PGPData, SPKIData, Object, SignatureProperties),
and ISO 15118 forbids all of it in message signatures [V2G2-771]. The codec supports the declared
content of those elements, refuses wildcard content with a typed error naming the field, and the
round trip of wildcard content is a known gap (strict xfail, README "Known gaps")."""
from __future__ import annotations

from typing import Any, Callable

import pytest

import exi

NS_DSIG = "http://www.w3.org/2000/09/xmldsig#"


def test_declared_content_beside_wildcards_round_trips(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(NS_DSIG)
    for msg in ({"KeyInfo": {"Id": "k1", "KeyName": ["contract key"]}}, {"Object": {"Id": "o1"}},
                {"Transform": {"Algorithm": "http://www.w3.org/TR/canonical-exi/"}}):
        assert codec.decode_fragment(codec.encode_fragment(msg)) == msg


@pytest.mark.parametrize("msg, path", [
    ({"SignatureProperty": {"Target": "#x", "Foreign": "text"}}, "SignatureProperty.Foreign"),
    ({"KeyInfo": {"Id": "k1", "Foreign": {"a": "b"}}}, "KeyInfo.Foreign"),
])
def test_wildcard_content_is_refused_with_its_path(make_codec: Callable[[str], Any], msg: dict, path: str) -> None:
    with pytest.raises(exi.EncodeError, match=path.replace(".", r"\.")):
        make_codec(NS_DSIG).encode_fragment(msg)


@pytest.mark.xfail(strict=True, reason="xs:any wildcard content (SE(*) with a qname and the built-in "
                                       "element grammar) is not implemented; forbidden in V2G [V2G2-771]")
def test_wildcard_content_round_trips(make_codec: Callable[[str], Any]) -> None:
    codec = make_codec(NS_DSIG)
    msg = {"SignatureProperty": {"Target": "#x", "Foreign": "text"}}
    assert codec.decode_fragment(codec.encode_fragment(msg)) == msg


def test_a_second_text_run_of_mixed_content_is_a_decode_error_not_a_silent_loss(
        make_codec: Callable[[str], Any]) -> None:
    """xmldsig types are mixed: text may come before and after a child, but the dict holds one
    "value". A stream with two text runs (built from our encoding of the one-run message) must
    raise DecodeError instead of keeping only the last run."""
    codec = make_codec(NS_DSIG)
    one = codec.encode_fragment({"KeyInfo": {"KeyName": ["k"], "value": "b"}})
    bits = "".join(f"{x:08b}" for x in one)
    # header, SE(KeyInfo) (6 bits), then KeyInfo's first state: SE(KeyName) = 1 of 4 bits
    assert bits[:8] == "10000000" and bits[14:18] == "0001"
    # CH "a" (code 9 there), then SE(KeyName) in the state after text (code 0), then the rest as is
    two = bits[:14] + "1001" + "00000011" + "01100001" + "0000" + bits[18:]
    two += "0" * (-len(two) % 8)
    data = bytes(int(two[i:i + 8], 2) for i in range(0, len(two), 8))
    with pytest.raises(exi.DecodeError, match="second 'value'"):
        codec.decode_fragment(data)
