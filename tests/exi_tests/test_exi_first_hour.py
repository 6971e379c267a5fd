"""Rough edges of ``exi`` a new user met: short namespace names in ``get_codec`` and hints when a
stream or message is a fragment (or a document) and the command line was told otherwise."""
from __future__ import annotations

import io

import pytest

import exi
from exi.cli import main

ISO2 = "urn:iso:15118:2:2013:MsgDef"
XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"
SIGNED_INFO = {"SignedInfo": {
    "CanonicalizationMethod": {"Algorithm": "http://www.w3.org/TR/canonical-exi/"},
    "SignatureMethod": {"Algorithm": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"},
    "Reference": [{"URI": "#id1", "Transforms": {"Transform": [{"Algorithm": "http://www.w3.org/TR/canonical-exi/"}]},
                   "DigestMethod": {"Algorithm": "http://www.w3.org/2001/04/xmlenc#sha256"}, "DigestValue": bytes(32)}]}}
STOP = {"V2G_Message": {"Header": {"SessionID": bytes.fromhex("0102030405060708")},
                        "Body": {"SessionStopReq": {"ChargingSession": "Terminate"}}}}


@pytest.mark.parametrize("short,uri", [
    ("iso2", ISO2), ("din", "urn:din:70121:2012:MsgDef"), ("apphand", "urn:iso:15118:2:2010:AppProtocol"),
    ("iso20", "urn:iso:std:iso:15118:-20:CommonMessages"), ("iso20-dc", "urn:iso:std:iso:15118:-20:DC"),
    ("iso20-ac", "urn:iso:std:iso:15118:-20:AC"), ("iso20-wpt", "urn:iso:std:iso:15118:-20:WPT"),
    ("iso20-acdp", "urn:iso:std:iso:15118:-20:ACDP"), ("xmldsig", XMLDSIG), ("ISO2", ISO2), (" iso20-dc ", None),
])
def test_get_codec_takes_the_short_names(short: str, uri: str | None) -> None:
    codec = exi.get_codec(short)
    assert codec is exi.get_codec(uri or codec.namespace)  # one codec per schema set, cached
    if uri:
        assert codec.namespace == uri
    assert set(exi.SHORT_NAMES.values()) <= set(exi.NAMESPACES)
    assert exi.get_codec(short, grammars="iso15118-jar").grammars == "iso15118-jar"


def test_an_unknown_name_lists_the_short_names_too() -> None:
    with pytest.raises(exi.UnknownNamespaceError) as exc:
        exi.get_codec("iso3")
    assert "'iso3'" in str(exc.value) and "iso20-dc" in str(exc.value) and ISO2 in str(exc.value)
    assert isinstance(exc.value, ValueError)


def _cli(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_decoding_a_fragment_without_fragment_hints_at_it() -> None:
    stream = exi.get_codec(XMLDSIG).encode_fragment(SIGNED_INFO).hex()
    code, out, err = _cli("decode", "-n", "xmldsig", stream)
    assert code == 1 and out == ""
    assert err.startswith("python -m exi decode: error: cannot decode as http://www.w3.org/2000/09/xmldsig#: ")
    assert err.endswith("; it is an EXI fragment (a signed element or SignedInfo): add --fragment\n")
    assert _cli("decode", "-n", "xmldsig", "--fragment", stream)[0] == 0


def test_decoding_a_document_with_fragment_hints_the_other_way() -> None:
    stream = exi.get_codec(ISO2).encode(STOP).hex()
    code, _, err = _cli("decode", "-n", "iso2", "--fragment", stream)
    assert code == 1 and err.rstrip().endswith("; it is an EXI document: leave out --fragment")


def test_no_hint_for_a_stream_that_is_neither() -> None:
    code, _, err = _cli("decode", "-n", "iso2", "80ff")
    assert code == 1 and "--fragment" not in err and err.count("\n") == 1


def test_encoding_a_fragment_element_without_fragment_hints_at_it() -> None:
    import json

    frag = {"eMAID": {"Id": "id4", "value": "DEPLGC000000011"}}  # signed in CertificateInstallationRes, not global
    code, _, err = _cli("encode", "-n", "iso2", "-", stdin=json.dumps(frag).encode())
    assert code == 1 and err.startswith("python -m exi encode: error: cannot encode as urn:iso:15118:2:2013:MsgDef: ")
    assert err.rstrip().endswith("add --fragment")
    code, out, _ = _cli("encode", "-n", "iso2", "--fragment", "-", stdin=json.dumps(frag).encode())
    assert code == 0 and out.strip()
