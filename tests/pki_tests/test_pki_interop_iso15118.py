"""Interoperability with the ``iso15118`` PyPI package (EcoG-io, optional test extra ``interop``).

Runs only where ``iso15118`` is importable (it pins cryptography 44, so it lives in its own venv):

    /path/to/interop-venv/bin/python -m pytest tests/pki_tests/test_pki_interop_iso15118.py -m interop

Cross-checks the -2 contract-key transport both ways (our encrypt → their ``decrypt_priv_key``, their
``encrypt_priv_key`` → our decrypt with the [V2G2-823] check) and that their ``verify_certs`` accepts
our test PKI's -2 chains (and, lacking profile checks, also chains ours rejects).
"""
from __future__ import annotations

import pytest

iso_security = pytest.importorskip("iso15118.shared.security", reason="iso15118 (interop extra) is not installed")

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from _pki_fixtures import cached_pki  # noqa: E402
from pki.keytransport import decrypt_contract_key, encrypt_contract_key  # noqa: E402

pytestmark = pytest.mark.interop


def test_our_encryption_their_decryption() -> None:
    pki = cached_pki(2)
    for i in range(5):
        issued = pki.issue_contract(f"DEPLGC00000010{i}")
        for receiver in ("oem-provisioning-leaf", "contract-leaf"):
            ct, dh = encrypt_contract_key(issued.key, pki.key(receiver).public_key())  # type: ignore[arg-type]
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh)
            d = iso_security.decrypt_priv_key(ct, pki.key(receiver), peer)
            assert d == issued.key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]


def test_their_encryption_our_decryption() -> None:
    pki = cached_pki(2)
    for i in range(5):
        issued = pki.issue_contract(f"DEPLGC00000020{i}")
        dh, ct = iso_security.encrypt_priv_key(pki.cert("oem-provisioning-leaf"), issued.key)
        assert len(ct) == 48 and len(dh) == 65
        got = decrypt_contract_key(ct, dh, pki.key("oem-provisioning-leaf"), issued.der)
        assert got.private_numbers().private_value == issued.key.private_numbers().private_value  # type: ignore[union-attr]


def _pki_valid_now():  # type: ignore[no-untyped-def]
    """verify_certs checks validity against the wall clock, so issue at the current time."""
    from datetime import datetime, timezone

    from pki.issue import issue_test_pki

    return issue_test_pki(2, seed=2, now=datetime.now(timezone.utc))


@pytest.mark.filterwarnings("ignore:Properties that return a na")
def test_their_chain_check_accepts_our_iso2_chains() -> None:
    pki = _pki_valid_now()
    for name, case in pki.chains().items():
        anchor = name.split("-", 1)[1]
        root = case.roots[{"contract": "mo", "oem-provisioning": "oem"}.get(anchor, "v2g")][0]
        iso_security.verify_certs(case.leaf, list(case.intermediates), root)
    assert iso_security.get_cert_cn(pki.cert("contract-leaf")) == pki.emaid


@pytest.mark.filterwarnings("ignore:Parsed a")
@pytest.mark.filterwarnings("ignore:Properties that return a na")
def test_their_chain_check_skips_profile_rules() -> None:
    """Documented difference: iso15118's verify_certs has no KU/DC/CN/size checks; ours rejects these."""
    from pki._broken import broken_chains

    cases = broken_chains(2, pki=_pki_valid_now())
    accepted = []
    for name in ("wrong_domain_component", "bad_emaid_cn", "wrong_key_usage_bits", "too_large", "missing_key_usage"):
        case = cases[name]
        try:
            iso_security.verify_certs(case.leaf, list(case.intermediates), case.roots["mo"][0])
            accepted.append(name)
        except Exception:  # noqa: BLE001 - their error types vary
            pass
    assert {"wrong_domain_component", "bad_emaid_cn"} <= set(accepted)
