"""Message signatures against the ``iso15118`` PyPI package (optional test extra ``interop``).

Both directions: a Signature made by :func:`plugcharge.pnc.signatures.create_signature` is accepted by
that package's ``verify_signature``, and one made by its ``create_signature`` is accepted by ours;
a tampered element is rejected by both. The package EXI-encodes SignedInfo through whatever codec
its ``EXI()`` singleton holds: here :class:`exi.josev.JosevCodec` (no Java), so what is checked
independently is the SignedInfo content (algorithms, Reference layout, digest) and the ECDSA
signature formats (its DER, our raw r||s); the EXI bytes themselves are checked against
EXIficient by the codec's differential tests.
"""
from __future__ import annotations

import pytest

iso_security = pytest.importorskip("iso15118.shared.security", reason="iso15118 (interop extra) is not installed")

import exi  # noqa: E402
from exi._shape import from_json, to_json  # noqa: E402
from exi.josev import JosevCodec  # noqa: E402
import json  # noqa: E402

from iso15118.shared.exi_codec import EXI, CustomJSONDecoder, CustomJSONEncoder  # noqa: E402
from iso15118.shared.messages.xmldsig import Signature  # noqa: E402

from pki.issue import issue_test_pki  # noqa: E402
from plugcharge.pnc.signatures import SignatureError, create_signature, verify_signature  # noqa: E402

pytestmark = pytest.mark.interop

NS_ISO2 = "urn:iso:15118:2:2013:MsgDef"
NS_DSIG = "http://www.w3.org/2000/09/xmldsig#"


@pytest.fixture(scope="module")
def contract() -> tuple[bytes, object]:
    from iso15118.shared.settings import SettingKey, shared_settings

    for k in (SettingKey.MESSAGE_LOG_JSON, SettingKey.MESSAGE_LOG_EXI):  # as load_shared_settings() would
        shared_settings.setdefault(k, False)
    EXI().set_exi_codec(JosevCodec())
    test_pki = issue_test_pki(2, seed=7)
    return test_pki.cert("contract-leaf"), test_pki.key("contract-leaf")


def _auth_req(challenge: bytes) -> dict:
    return {"Id": "id1", "GenChallenge": challenge}


def _fragment(name: str, element: dict) -> bytes:
    return exi.get_codec(NS_ISO2).encode_fragment({name: element})


def _theirs(sig: dict) -> Signature:
    """Our Signature dict as that package's model, through its own JSON decoding (as from_exi does)."""
    js = to_json(exi.get_codec(NS_DSIG), {"Signature": sig}, fragment=True)["Signature"]
    return Signature.parse_obj(json.loads(json.dumps(js), cls=CustomJSONDecoder))


def _ours(sig: Signature) -> dict:
    """That package's Signature model as our dict, through its own JSON encoding (as to_exi does)."""
    js = json.loads(json.dumps(sig.dict(by_alias=True, exclude_none=True), cls=CustomJSONEncoder))
    return from_json(exi.get_codec(NS_DSIG), {"Signature": js}, fragment=True)["Signature"]


def test_our_signature_verifies_in_iso15118(contract: tuple[bytes, object]) -> None:
    cert, key = contract
    el = _auth_req(bytes(range(16)))
    sig = create_signature([("AuthorizationReq", el)], key)  # type: ignore[arg-type]
    assert iso_security.verify_signature(_theirs(sig), [("id1", _fragment("AuthorizationReq", el))], cert)
    tampered = _fragment("AuthorizationReq", _auth_req(bytes(16)))
    assert not iso_security.verify_signature(_theirs(sig), [("id1", tampered)], cert)


def test_iso15118_signature_verifies_in_ours(contract: tuple[bytes, object]) -> None:
    cert, key = contract
    el = _auth_req(bytes(range(16, 32)))
    theirs = iso_security.create_signature([("id1", _fragment("AuthorizationReq", el))], key)
    sig = _ours(theirs)
    verify_signature(sig, [("AuthorizationReq", el)], cert)
    with pytest.raises(SignatureError):
        verify_signature(sig, [("AuthorizationReq", _auth_req(bytes(16)))], cert)
