"""Signature primitives: raw r‖s ↔ DER, sign/verify per suite and profile, Ed448, typed errors."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from _pki_fixtures import cached_pki
from pki.errors import PKIError, SignatureError
from pki.profiles import cert_profile, chain_profile
from pki.signature import Suite, der_to_raw, raw_to_der, sign, suite_for_key, suite_for_profile, suite_info, verify

P256 = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
P521 = ec.derive_private_key(0xC0FFEE, ec.SECP521R1())
ED448 = ed448.Ed448PrivateKey.from_private_bytes(bytes(range(57)))
MSG = b"\x80\x81" + bytes(178)  # ~ an EXI SignedInfo


@pytest.mark.parametrize("key,suite,size", [(P256, Suite.ECDSA_P256_SHA256, 64), (P521, Suite.ECDSA_P521_SHA512, 132),
                                             (ED448, Suite.ED448, 114)])
def test_sign_verify(key, suite: Suite, size: int) -> None:  # type: ignore[no-untyped-def]
    assert suite_for_key(key) is suite and suite_info(suite).raw_size == size
    sig = sign(key, MSG)
    assert len(sig) == size
    verify(key.public_key(), MSG, sig)
    verify(key, MSG, sig, suite=suite)  # a private key is accepted for its public half
    with pytest.raises(SignatureError):
        verify(key.public_key(), MSG + b"x", sig)
    with pytest.raises(SignatureError):
        verify(key.public_key(), MSG, sig[:-1] + bytes([sig[-1] ^ 1]))
    with pytest.raises(SignatureError, match=str(size)):
        verify(key.public_key(), MSG, sig[:-1])
    with pytest.raises(SignatureError):
        verify(key.public_key(), MSG, "not bytes")  # type: ignore[arg-type]


def test_deterministic_signing() -> None:
    assert sign(P256, MSG, deterministic=True) == sign(P256, MSG, deterministic=True)
    assert sign(ED448, MSG) == sign(ED448, MSG)


def test_suite_and_profile_mismatch() -> None:
    with pytest.raises(SignatureError):
        sign(P256, MSG, suite=Suite.ECDSA_P521_SHA512)
    with pytest.raises(SignatureError, match="does not permit"):
        sign(P256, MSG, profile=chain_profile("iso20-contract"))
    with pytest.raises(SignatureError, match="does not permit"):
        sign(P521, MSG, profile=cert_profile("iso2-contract-leaf"))
    assert suite_for_profile(chain_profile("iso20-contract"), ED448) is Suite.ED448
    assert suite_for_profile(cert_profile("iso2-secc-leaf"), P256) is Suite.ECDSA_P256_SHA256
    sig = sign(P521, MSG, profile=chain_profile("iso20-contract"))
    with pytest.raises(SignatureError):
        verify(P521.public_key(), MSG, sig, profile=chain_profile("iso2-contract"))
    with pytest.raises(SignatureError, match="curve"):
        suite_for_key(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(SignatureError):
        suite_for_key(object())  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        raw_to_der(bytes(114), Suite.ED448)


def test_raw_der_padding() -> None:
    """Small r and s are left-padded to 32 bytes; DER strips sign bytes (RISE issue #19 pitfall)."""
    der = encode_dss_signature(1, (1 << 255) + 3)
    raw = der_to_raw(der)
    assert raw == (1).to_bytes(32, "big") + ((1 << 255) + 3).to_bytes(32, "big")
    assert raw_to_der(raw) == der
    assert len(der_to_raw(encode_dss_signature(5, 7), Suite.ECDSA_P521_SHA512)) == 132


@pytest.mark.parametrize("bad", [
    b"", b"\x30\x00", b"\x30\x05\x02\x01\x01\x02\x01\x01",  # wrong length byte
    encode_dss_signature(1, 1) + b"\x00",  # trailing byte
    b"\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # non-minimal INTEGER
    b"\x30\x06\x02\x01\xff\x02\x01\x01",  # negative r
    encode_dss_signature(1 << 256, 1),  # r too wide for P-256
    encode_dss_signature(0, 1),
])
def test_der_rejections(bad: bytes) -> None:
    with pytest.raises(SignatureError) as exc:
        der_to_raw(bad)
    assert isinstance(exc.value, (PKIError, ValueError))


def test_raw_rejections() -> None:
    with pytest.raises(SignatureError, match="64"):
        raw_to_der(bytes(63))
    with pytest.raises(SignatureError, match="zero"):
        raw_to_der(bytes(64))
    with pytest.raises(SignatureError):
        raw_to_der("x" * 64)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, (1 << 256) - 1), st.integers(1, (1 << 256) - 1))
def test_raw_der_roundtrip(r: int, s: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert der_to_raw(raw_to_der(raw)) == raw


def test_sign_with_test_pki_keys() -> None:
    """The contract leaf keys of every edition sign what their profile demands."""
    for iso, algorithm in ((2, None), (20, None), (20, "ed448")):
        pki = cached_pki(iso, algorithm)
        key = pki.key("contract-leaf")
        sig = sign(key, MSG, profile=chain_profile(f"iso{iso}-contract"))
        from cryptography import x509

        verify(x509.load_der_x509_certificate(pki.cert("contract-leaf")).public_key(), MSG, sig,  # type: ignore[arg-type]
               profile=chain_profile(f"iso{iso}-contract"))
