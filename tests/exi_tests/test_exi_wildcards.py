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
