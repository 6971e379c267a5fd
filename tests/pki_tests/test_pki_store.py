"""TrustStore: construction from DER/PEM, validation of anchors, immutability, from_directory."""
from __future__ import annotations

import pickle

import pytest
from _pki_fixtures import NOW, cached_pki, pki2  # noqa: F401 (fixture)
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.errors import PKIError, Reason, TrustStoreError
from pki.store import TrustStore, pem_to_der
from pki.verify import verify_chain


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def test_der_pem_and_str_inputs(pki2):
    v2g, mo, oem = pki2.cert("v2g-root"), pki2.cert("mo-root"), pki2.cert("oem-root")
    s = TrustStore({"v2g": [v2g], "mo": [_pem(mo)], "oem": _pem(oem).decode()})
    assert s.anchors("v2g") == (v2g,) and s.anchors("mo") == (mo,) and s.anchors("oem") == (oem,)
    assert len(s) == 3 and set(s) == {v2g, mo, oem}
    assert v2g in s and pki2.cert("mo-sub1") not in s
    assert s.role_of(mo) == ("mo",)
    assert "v2g=1" in repr(s)


def test_pem_bundle_and_duplicates(pki2):
    v2g, mo = pki2.cert("v2g-root"), pki2.cert("mo-root")
    bundle = _pem(v2g) + b"\n" + _pem(mo)
    assert pem_to_der(bundle) == [v2g, mo]
    s = TrustStore({"v2g": [bundle, v2g]})
    assert s.anchors("v2g") == (v2g, mo)
    assert s.anchors("oem") == ()


def test_store_is_immutable(pki2):
    s = TrustStore(pki2.store_roots())
    with pytest.raises(AttributeError):
        s._roles = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.roles["v2g"] = ()  # type: ignore[index]
    src = {"v2g": [pki2.cert("v2g-root")]}
    s2 = TrustStore(src)
    src["v2g"].append(pki2.cert("mo-root"))
    assert s2.anchors("v2g") == (pki2.cert("v2g-root"),)


@pytest.mark.parametrize("role", ["mo-sub1", "mo-sub2", "contract-leaf", "secc-leaf"])
def test_non_roots_are_rejected(pki2, role):
    with pytest.raises(TrustStoreError) as ei:
        TrustStore({"mo": [pki2.cert("mo-root"), pki2.cert(role)]})
    e = ei.value
    assert e.reason is Reason.UNTRUSTED_ROOT and e.role == "mo" and e.index == 1
    assert isinstance(e, PKIError) and isinstance(e, ValueError)
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.reason, e2.role, e2.index) == (e.reason, e.role, e.index)


def test_malformed_and_unknown_role(pki2):
    root = pki2.cert("v2g-root")
    for bad in (root[:-1], b"", b"garbage", root + b"\x00"):
        with pytest.raises(TrustStoreError) as ei:
            TrustStore({"v2g": [bad]})
        assert ei.value.reason is Reason.MALFORMED
    with pytest.raises(TrustStoreError) as ei:
        TrustStore({"v2g": [b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"]})
    assert ei.value.reason is Reason.MALFORMED
    with pytest.raises(TrustStoreError) as ei:
        TrustStore({"cpo": [root]})
    assert ei.value.reason is Reason.PROFILE and ei.value.role == "cpo"
    with pytest.raises(TrustStoreError):
        TrustStore({"v2g": [12345]})  # type: ignore[list-item]
    with pytest.raises(TrustStoreError):
        TrustStore([root])  # type: ignore[arg-type]


def test_self_issued_with_bad_signature_is_rejected(pki2):
    root = bytearray(pki2.cert("v2g-root"))
    root[-5] ^= 0x01  # inside the signature value
    with pytest.raises(TrustStoreError) as ei:
        TrustStore({"v2g": [bytes(root)]})
    assert ei.value.reason in (Reason.BAD_SIGNATURE, Reason.MALFORMED)


def test_from_directory_layouts(pki2, tmp_path):
    pki2.write(tmp_path / "pki")
    s = TrustStore.from_directory(tmp_path / "pki")  # manifest.json
    assert s.anchors("mo") == (pki2.cert("mo-root"),) and s.anchors("oem") == (pki2.cert("oem-root"),)
    # trust/<role>/ without manifest
    (tmp_path / "pki" / "manifest.json").unlink()
    s = TrustStore.from_directory(tmp_path / "pki")
    assert s.anchors("v2g") == (pki2.cert("v2g-root"),)
    # <role>/ directly, DER files, plus an ignored file
    d = tmp_path / "flat"
    (d / "v2g").mkdir(parents=True)
    (d / "v2g" / "root.der").write_bytes(pki2.cert("v2g-root"))
    (d / "v2g" / "README.txt").write_text("ignored")
    s = TrustStore.from_directory(d)
    assert s.anchors("v2g") == (pki2.cert("v2g-root"),) and s.anchors("mo") == ()
    c = pki2.chain("iso2-secc")
    verify_chain(c.leaf, c.intermediates, store=s, profile="iso2-secc", at=NOW)


def test_from_directory_errors(pki2, tmp_path):
    with pytest.raises(TrustStoreError):
        TrustStore.from_directory(tmp_path / "missing")
    with pytest.raises(TrustStoreError):
        TrustStore.from_directory(tmp_path)  # empty
    d = tmp_path / "bad"
    (d / "mo").mkdir(parents=True)
    (d / "mo" / "sub.der").write_bytes(pki2.cert("mo-sub1"))
    with pytest.raises(TrustStoreError) as ei:
        TrustStore.from_directory(d)
    assert ei.value.reason is Reason.UNTRUSTED_ROOT and ei.value.role == "mo"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "manifest.json").write_text("{not json")
    with pytest.raises(TrustStoreError) as ei:
        TrustStore.from_directory(tmp_path / "m")
    assert ei.value.reason is Reason.MALFORMED


def test_one_store_serves_both_editions():
    p2, p20 = cached_pki(2), cached_pki(20)
    s = TrustStore({r: p2.store_roots()[r] + p20.store_roots()[r] for r in ("v2g", "mo", "oem")})
    for p, name in ((p2, "iso2-contract"), (p20, "iso20-contract")):
        c = p.chain(name)
        v = verify_chain(c.leaf, c.intermediates, store=s, profile=name, at=NOW)
        assert v.root == p.cert("mo-root")
