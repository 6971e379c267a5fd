"""Contract private-key transport: -2 byte layout (known answer), -20 SECP521/X448, and every rejection."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, x448
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from _pki_fixtures import NOW, cached_pki, pki2, pki20, pki20_ed448  # noqa: F401
from pki.errors import KeyTransportError, PKIError
from pki.issue import TestPKI, issue_test_pki
from pki.keytransport import OTHER_INFO, concat_kdf, decrypt_contract_key, encrypt_contract_key


def _d(key: ec.EllipticCurvePrivateKey) -> int:
    return key.private_numbers().private_value


def test_iso2_known_answer(pki2: TestPKI) -> None:
    """Recompute the -2 envelope by hand (SHA-256 ConcatKDF round 1 ‖ Z ‖ 01 55 56, AES-128-CBC)."""
    contract, oem = pki2.key("contract-leaf"), pki2.key("oem-provisioning-leaf")
    eph = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1())
    iv = bytes(range(16))
    ct, dh = encrypt_contract_key(contract, oem.public_key(), ephemeral_key=eph, iv=iv)
    assert len(ct) == 48 and len(dh) == 65 and dh[0] == 4 and ct[:16] == iv
    z = eph.exchange(ec.ECDH(), oem.public_key())
    k = hashlib.sha256(b"\x00\x00\x00\x01" + z + b"\x01\x55\x56").digest()[:16]
    assert OTHER_INFO == b"\x01\x55\x56" and concat_kdf(z, iso=2) == k
    dec = Cipher(algorithms.AES(k), modes.CBC(iv)).decryptor()
    assert dec.update(ct[16:]) + dec.finalize() == _d(contract).to_bytes(32, "big")  # type: ignore[arg-type]
    assert dh == eph.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def test_iso2_kdf_sha512_for_iso20() -> None:
    z = bytes(66)
    assert concat_kdf(z, iso=20) == hashlib.sha512(b"\x00\x00\x00\x01" + z + b"\x01\x55\x56").digest()[:32]
    with pytest.raises(KeyTransportError):
        concat_kdf(z, iso=15)


@pytest.mark.parametrize("receiver", ["oem-provisioning-leaf", "contract-leaf"])
def test_iso2_roundtrip(pki2: TestPKI, receiver: str) -> None:
    """Installation (OEM provisioning key) and update (old contract key) [V2G2-820/821]."""
    new = pki2.issue_contract("DEPLGC000000037")
    ct, dh = encrypt_contract_key(new.key, pki2.key(receiver).public_key())  # type: ignore[arg-type]
    got = decrypt_contract_key(ct, dh, pki2.key(receiver), new.der)
    assert _d(got) == _d(new.key)  # type: ignore[arg-type]
    ct2, dh2 = encrypt_contract_key(new.key, pki2.key(receiver).public_key())  # type: ignore[arg-type]
    assert ct2[:16] != ct[:16] and dh2 != dh  # fresh IV and ephemeral key each time


def test_iso2_small_scalar_is_left_padded(pki2: TestPKI) -> None:
    key = ec.derive_private_key(5, ec.SECP256R1())
    issued = pki2.issue_contract("DEPLGC000000045", key=key)
    ct, dh = encrypt_contract_key(key, pki2.key("oem-provisioning-leaf").public_key())
    assert _d(decrypt_contract_key(ct, dh, pki2.key("oem-provisioning-leaf"), issued.der)) == 5


def _iso2_envelope(pki: TestPKI) -> tuple[bytes, bytes]:
    return encrypt_contract_key(pki.key("contract-leaf"), pki.key("oem-provisioning-leaf").public_key())  # type: ignore[arg-type, return-value]


def test_iso2_rejections(pki2: TestPKI) -> None:
    ct, dh = _iso2_envelope(pki2)
    oem = pki2.key("oem-provisioning-leaf")
    cert = pki2.cert("contract-leaf")
    other_contract = pki2.issue_contract("DEPLGC000000052").der
    cases = {
        "wrong certificate": (ct, dh, oem, other_contract),
        "wrong receiver key": (ct, dh, pki2.key("secc-leaf"), cert),
        "tampered ciphertext": (ct[:20] + bytes([ct[20] ^ 1]) + ct[21:], dh, oem, cert),
        "tampered IV": (bytes([ct[0] ^ 0x80]) + ct[1:], dh, oem, cert),
        "short ciphertext": (ct[:47], dh, oem, cert),
        "long ciphertext": (ct + b"\x00" * 16, dh, oem, cert),
        "compressed point": (ct, b"\x02" + dh[1:33], oem, cert),
        "point not on curve": (ct, dh[:-1] + bytes([dh[-1] ^ 1]), oem, cert),
        "P-521 receiver key": (ct, dh, cached_pki(20).key("oem-provisioning-leaf"), cert),
        "certificate not DER": (ct, dh, oem, b"\x30\x03\x02\x01\x01"),
    }
    secret = format(_d(pki2.key("contract-leaf")), "x")  # type: ignore[arg-type]
    for name, (c, d, k, crt) in cases.items():
        with pytest.raises(KeyTransportError) as exc:
            decrypt_contract_key(c, d, k, crt)  # type: ignore[arg-type]
        assert isinstance(exc.value, (PKIError, ValueError)), name
        assert secret not in str(exc.value), name


def test_iso2_scalar_out_of_range(pki2: TestPKI) -> None:
    """A ciphertext that decrypts to d >= n (here: all 0xFF) is rejected before the d·G check [V2G2-823]."""
    oem = pki2.key("oem-provisioning-leaf")
    eph = ec.generate_private_key(ec.SECP256R1())
    k = concat_kdf(eph.exchange(ec.ECDH(), oem.public_key()), iso=2)
    iv = bytes(16)
    enc = Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()
    ct = iv + enc.update(b"\xff" * 32) + enc.finalize()
    dh = eph.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    with pytest.raises(KeyTransportError, match="out of range"):
        decrypt_contract_key(ct, dh, oem, pki2.cert("contract-leaf"))


def test_iso2_encrypt_rejections(pki2: TestPKI) -> None:
    p521 = ec.generate_private_key(ec.SECP521R1())
    with pytest.raises(KeyTransportError):
        encrypt_contract_key(p521, pki2.key("oem-provisioning-leaf").public_key())
    with pytest.raises(KeyTransportError):
        encrypt_contract_key(pki2.key("contract-leaf"), p521.public_key())  # type: ignore[arg-type]
    with pytest.raises(KeyTransportError):
        encrypt_contract_key(pki2.key("contract-leaf"), pki2.key("oem-provisioning-leaf").public_key(), iv=b"short")  # type: ignore[arg-type]
    with pytest.raises(KeyTransportError):
        encrypt_contract_key(pki2.key("contract-leaf"), pki2.key("oem-provisioning-leaf").public_key(), iso=3)  # type: ignore[arg-type]


def test_iso20_secp521_roundtrip_and_layout(pki20: TestPKI) -> None:
    oem = pki20.key("oem-provisioning-leaf")
    ct, dh = encrypt_contract_key(pki20.key("contract-leaf"), oem.public_key(), iso=20,  # type: ignore[arg-type]
                                  contract_certificate=pki20.cert("contract-leaf"), pcid=pki20.pcid)
    assert len(ct) == 94 and len(dh) == 133 and dh[0] == 4
    got = decrypt_contract_key(ct, dh, oem, pki20.cert("contract-leaf"), iso=20, pcid=pki20.pcid)
    assert _d(got) == _d(pki20.key("contract-leaf"))  # type: ignore[arg-type]
    # AAD binds the PCID and the certificate's SKI [V2G20-2492]
    with pytest.raises(KeyTransportError, match="authentication"):
        decrypt_contract_key(ct, dh, oem, pki20.cert("contract-leaf"), iso=20, pcid="WMI1234567890ABCDE")
    other = pki20.issue_contract("DEPLGC000000060")
    with pytest.raises(KeyTransportError, match="authentication"):
        decrypt_contract_key(ct, dh, oem, other.der, iso=20, pcid=pki20.pcid)
    with pytest.raises(KeyTransportError, match="authentication"):
        decrypt_contract_key(ct[:-1] + bytes([ct[-1] ^ 1]), dh, oem, pki20.cert("contract-leaf"), iso=20, pcid=pki20.pcid)
    with pytest.raises(KeyTransportError, match="PCID"):
        decrypt_contract_key(ct, dh, oem, pki20.cert("contract-leaf"), iso=20)
    with pytest.raises(KeyTransportError, match="94"):
        decrypt_contract_key(ct[:93], dh, oem, pki20.cert("contract-leaf"), iso=20, pcid=pki20.pcid)
    with pytest.raises(KeyTransportError, match="133"):
        decrypt_contract_key(ct, dh[:65], oem, pki20.cert("contract-leaf"), iso=20, pcid=pki20.pcid)


def test_iso20_key_mismatch_detected(pki20: TestPKI) -> None:
    """A correctly encrypted key for the wrong certificate passes GCM but fails d·G [V2G20-2507]."""
    oem = pki20.key("oem-provisioning-leaf")
    cert = pki20.cert("contract-leaf")
    wrong = ec.generate_private_key(ec.SECP521R1())
    ct, dh = encrypt_contract_key(wrong, oem.public_key(), iso=20, contract_certificate=cert, pcid=pki20.pcid)  # type: ignore[arg-type]
    with pytest.raises(KeyTransportError, match="does not match"):
        decrypt_contract_key(ct, dh, oem, cert, iso=20, pcid=pki20.pcid)


def _x448_contract_cert(pki: TestPKI, key: x448.X448PrivateKey) -> bytes:
    sub2 = x509.load_der_x509_certificate(pki.cert("mo-sub2"))
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, pki.emaid)]))
         .issuer_name(sub2.subject).public_key(key.public_key()).serial_number(7)
         .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return b.sign(pki.key("mo-sub2"), None).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


def test_iso20_x448_roundtrip(pki20_ed448: TestPKI) -> None:
    receiver = x448.X448PrivateKey.generate()  # the OEM certificate's alternate (X448) key
    contract = x448.X448PrivateKey.generate()
    assert isinstance(pki20_ed448.key("mo-sub2"), ed448.Ed448PrivateKey)
    cert = _x448_contract_cert(pki20_ed448, contract)
    ct, dh = encrypt_contract_key(contract, receiver.public_key(), iso=20, contract_certificate=cert, pcid=pki20_ed448.pcid)
    assert len(ct) == 84 and len(dh) == 56
    got = decrypt_contract_key(ct, dh, receiver, cert, iso=20, pcid=pki20_ed448.pcid)
    assert got.private_bytes_raw() == contract.private_bytes_raw()  # type: ignore[union-attr]
    other_cert = _x448_contract_cert(pki20_ed448, x448.X448PrivateKey.generate())
    ct2, dh2 = encrypt_contract_key(contract, receiver.public_key(), iso=20, contract_certificate=other_cert,
                                    pcid=pki20_ed448.pcid)
    with pytest.raises(KeyTransportError, match="does not match"):
        decrypt_contract_key(ct2, dh2, receiver, other_cert, iso=20, pcid=pki20_ed448.pcid)
    with pytest.raises(KeyTransportError, match="56"):
        decrypt_contract_key(ct, dh + b"\x00", receiver, cert, iso=20, pcid=pki20_ed448.pcid)
    with pytest.raises(KeyTransportError):
        decrypt_contract_key(ct, bytes(56), receiver, cert, iso=20, pcid=pki20_ed448.pcid)  # low-order point


def test_iso20_encrypt_rejections(pki20: TestPKI, pki2: TestPKI) -> None:
    oem = pki20.key("oem-provisioning-leaf").public_key()
    with pytest.raises(KeyTransportError, match="contract certificate"):
        encrypt_contract_key(pki20.key("contract-leaf"), oem, iso=20, pcid=pki20.pcid)  # type: ignore[arg-type]
    with pytest.raises(KeyTransportError, match="secp521r1 or X448"):
        encrypt_contract_key(pki20.key("contract-leaf"), pki2.key("oem-provisioning-leaf").public_key(), iso=20,  # type: ignore[arg-type]
                             contract_certificate=pki20.cert("contract-leaf"), pcid=pki20.pcid)
    with pytest.raises(KeyTransportError, match="secp521r1 or Ed448 contract key"):
        encrypt_contract_key(pki2.key("contract-leaf"), oem, iso=20,  # type: ignore[arg-type]
                             contract_certificate=pki20.cert("contract-leaf"), pcid=pki20.pcid)
    with pytest.raises(KeyTransportError, match="subjectKeyIdentifier"):
        cert = x509.load_der_x509_certificate(pki20.cert("contract-leaf"))
        no_ski = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
                  .public_key(cert.public_key()).serial_number(1).not_valid_before(NOW).not_valid_after(NOW + timedelta(1))
                  .sign(pki20.key("mo-sub2"), hashes.SHA512()))  # type: ignore[arg-type]
        encrypt_contract_key(pki20.key("contract-leaf"), oem, iso=20, contract_certificate=no_ski, pcid=pki20.pcid)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(ct=st.binary(min_size=0, max_size=120), dh=st.binary(min_size=0, max_size=140), iso=st.sampled_from([2, 20]))
def test_garbage_always_gives_typed_error(ct: bytes, dh: bytes, iso: int) -> None:
    pki = cached_pki(iso)
    if iso == 2 and len(dh) == 65:
        dh = b"\x04" + dh[1:]  # reach the point decoding and the KDF more often
    with pytest.raises(KeyTransportError):
        decrypt_contract_key(ct, dh, pki.key("oem-provisioning-leaf"), pki.cert("contract-leaf"),  # type: ignore[arg-type]
                             iso=iso, pcid=pki.pcid)


@settings(max_examples=60, deadline=None)
@given(ct=st.binary(min_size=48, max_size=48))
def test_garbage_ciphertext_with_valid_point(ct: bytes) -> None:
    """A valid DH point with random ciphertext decrypts to junk that the [V2G2-823] check rejects."""
    pki = cached_pki(2)
    dh = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    with pytest.raises(KeyTransportError):
        decrypt_contract_key(ct, dh, pki.key("oem-provisioning-leaf"), pki.cert("contract-leaf"))  # type: ignore[arg-type]


@pytest.mark.parametrize("iso", [2, 20])
@pytest.mark.parametrize("receiver", ["oem-provisioning-leaf", "contract-leaf"])
def test_backend_bundle_decrypts_on_the_ev(iso: int, receiver: str) -> None:
    """TestPKI.contract_bundle (simulated backend) → decrypt_contract_key (EV) for installation and update."""
    pki = cached_pki(iso)
    bundle = pki.contract_bundle("DE-PLG-C00000077-1", pki.cert(receiver), pcid=pki.pcid)
    assert bundle.sub_cas == (pki.cert("mo-sub2"), pki.cert("mo-sub1"))
    got = decrypt_contract_key(bundle.encrypted_private_key, bundle.dh_public_key, pki.key(receiver),
                               bundle.contract, iso=iso, pcid=pki.pcid)
    assert _d(got) == _d(bundle.key)  # type: ignore[arg-type]
    assert x509.load_der_x509_certificate(bundle.contract).subject.rfc4514_string().find("DE-PLG-C00000077-1") >= 0
    assert "private_value" not in repr(bundle) and str(_d(bundle.key)) not in repr(bundle)  # type: ignore[arg-type]


def test_backend_bundle_takes_pcid_from_oem_certificate(pki20: TestPKI) -> None:
    oem = pki20.issue_oem_provisioning("WMI1234567890ABCDE")
    bundle = pki20.contract_bundle(pki20.emaid, oem.der)
    got = decrypt_contract_key(bundle.encrypted_private_key, bundle.dh_public_key, oem.key, bundle.contract,  # type: ignore[arg-type]
                               iso=20, pcid="WMI1234567890ABCDE")
    assert _d(got) == _d(bundle.key)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        pki20.contract_bundle(pki20.emaid, b"junk")
    with pytest.raises(ValueError):
        cached_pki(20, "ed448").contract_bundle(pki20.emaid, cached_pki(20, "ed448").cert("oem-provisioning-leaf"))


def _ed448_contract(pki: TestPKI, emaid: str = "DEPLGC000000086") -> tuple[bytes, ed448.Ed448PrivateKey]:
    key = ed448.Ed448PrivateKey.generate()
    return pki.issue_contract(emaid, key=key).der, key


def test_iso20_ed448_contract_travels_in_the_secp521_variant(pki20_ed448: TestPKI) -> None:
    """An Ed448 contract key (57 B) right-aligned in the 66-byte SECP521 plaintext, recomputed here
    with cryptography's primitives: ECDH P-521, ConcatKDF SHA-512 (01 55 56), AES-256-GCM with the
    PCID ‖ SKI (upper-case hex) AAD [V2G20-2492]."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    receiver = ec.generate_private_key(ec.SECP521R1())  # a key-agreement-capable OEM provisioning key
    cert, key = _ed448_contract(pki20_ed448)
    ct, dh = encrypt_contract_key(key, receiver.public_key(), iso=20, contract_certificate=cert, pcid=pki20_ed448.pcid)
    assert len(ct) == 94 and len(dh) == 133 and dh[0] == 4
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), dh)
    z = receiver.exchange(ec.ECDH(), peer)
    k = hashlib.sha512(b"\x00\x00\x00\x01" + z + b"\x01\x55\x56").digest()[:32]
    ski = x509.load_der_x509_certificate(cert).extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    plain = AESGCM(k).decrypt(ct[:12], ct[12:], pki20_ed448.pcid.encode() + ski.hex().upper().encode())
    assert plain == bytes(9) + key.private_bytes_raw()
    got = decrypt_contract_key(ct, dh, receiver, cert, iso=20, pcid=pki20_ed448.pcid)
    assert isinstance(got, ed448.Ed448PrivateKey) and got.private_bytes_raw() == key.private_bytes_raw()
    # the key of another Ed448 certificate passes GCM (same certificate in the AAD) but not the match check
    other_key = ed448.Ed448PrivateKey.generate()
    ct2, dh2 = encrypt_contract_key(other_key, receiver.public_key(), iso=20, contract_certificate=cert,
                                    pcid=pki20_ed448.pcid)
    with pytest.raises(KeyTransportError, match="does not match"):
        decrypt_contract_key(ct2, dh2, receiver, cert, iso=20, pcid=pki20_ed448.pcid)
    # a plaintext whose nine leading bytes are not zero is refused (the encryption is valid)
    iv = bytes(12)
    bad = AESGCM(k).encrypt(iv, b"\x00" + b"\x01" + bytes(7) + key.private_bytes_raw(),
                            pki20_ed448.pcid.encode() + ski.hex().upper().encode())
    with pytest.raises(KeyTransportError, match="must be zero"):
        decrypt_contract_key(iv + bad, dh, receiver, cert, iso=20, pcid=pki20_ed448.pcid)
    # a P-521 contract certificate does not take an Ed448 plaintext: the scalar check catches it
    p521_cert = cached_pki(20).cert("contract-leaf")
    ct3, dh3 = encrypt_contract_key(key, receiver.public_key(), iso=20, contract_certificate=p521_cert,
                                    pcid=pki20_ed448.pcid)
    with pytest.raises(KeyTransportError, match="does not match"):
        decrypt_contract_key(ct3, dh3, receiver, p521_cert, iso=20, pcid=pki20_ed448.pcid)


def test_ed448_pki_with_a_p521_oem_provisioning_key_installs() -> None:
    """``oem_provisioning_algorithm``: an Ed448 PKI whose OEM provisioning leaf agrees keys on P-521;
    the backend's bundle carries the Ed448 contract key to it."""
    from pki.store import TrustStore
    from pki.verify import verify_chain

    p = issue_test_pki(20, seed=3, now=NOW, algorithm="ed448", oem_provisioning_algorithm="secp521r1")
    oem_key = p.key("oem-provisioning-leaf")
    assert isinstance(oem_key, ec.EllipticCurvePrivateKey) and oem_key.curve.name == "secp521r1"
    assert isinstance(p.key("oem-sub2"), ed448.Ed448PrivateKey) and isinstance(p.key("contract-leaf"), ed448.Ed448PrivateKey)
    case = p.chain("iso20-oem-provisioning")
    verify_chain(case.leaf, case.intermediates, store=TrustStore(case.roots), profile=case.profile, at=NOW)
    bundle = p.contract_bundle(p.emaid, p.cert("oem-provisioning-leaf"))
    got = decrypt_contract_key(bundle.encrypted_private_key, bundle.dh_public_key, oem_key, bundle.contract,
                               iso=20, pcid=p.pcid)
    assert isinstance(got, ed448.Ed448PrivateKey)
    assert got.public_key().public_bytes_raw() == bundle.key.public_key().public_bytes_raw()  # type: ignore[union-attr]
    with pytest.raises(PKIError):
        issue_test_pki(2, oem_provisioning_algorithm="ed448")
