"""Rough edges of ``pki`` a new user met: ``issue-test-pki`` options, PEM input to ``verify_chain``,
the meaning of a naive ``at``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import pki
from pki.__main__ import main as cli_main

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
P2 = pki.issue_test_pki(2, seed=7, now=NOW)


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


# ---------------------------------------------------------------- python -m pki issue-test-pki
def test_algorithm_with_iso_2_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["issue-test-pki", str(tmp_path / "a"), "--iso", "2", "--algorithm", "ed448"]) == 2
    err = capsys.readouterr().err
    assert err == ("python -m pki issue-test-pki: error: --algorithm ed448 applies to ISO 15118-20 only "
                   "(ISO 15118-2 keys are secp256r1); leave it out or use --iso 20\n")
    assert not (tmp_path / "a").exists()
    assert cli_main(["issue-test-pki", str(tmp_path / "a"), "--iso", "2", "--oem-provisioning-algorithm", "secp521r1"]) == 2
    assert "--oem-provisioning-algorithm secp521r1 applies to ISO 15118-20 only" in capsys.readouterr().err
    # without --iso both editions are written and the algorithm is the -20 one's
    assert cli_main(["issue-test-pki", str(tmp_path / "b"), "--algorithm", "ed448", "--seed", "1"]) == 0
    assert "ed448" in (tmp_path / "b" / "iso20" / "manifest.json").read_text()
    assert "secp256r1" in (tmp_path / "b" / "iso2" / "manifest.json").read_text()


def test_an_existing_pki_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pki"
    assert cli_main(["issue-test-pki", str(out), "--iso", "2"]) == 0
    key = (out / "iso2" / "v2g-root.key.pem").read_bytes()
    capsys.readouterr()
    assert cli_main(["issue-test-pki", str(out), "--iso", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m pki issue-test-pki: error: {out} already holds files (iso2, manifest.json)")
    assert "--force" in err and err.count("\n") == 1
    assert (out / "iso2" / "v2g-root.key.pem").read_bytes() == key  # the root key is still the old one
    assert cli_main(["issue-test-pki", str(out), "--iso", "2", "--force"]) == 0
    assert (out / "iso2" / "v2g-root.key.pem").read_bytes() != key
    (tmp_path / "empty").mkdir()
    assert cli_main(["issue-test-pki", str(tmp_path / "empty"), "--iso", "2"]) == 0  # an empty directory is fine


def test_seed_reproducibility_is_stated_and_holds_with_at(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["issue-test-pki", str(tmp_path / "a"), "--iso", "2", "--seed", "9"]) == 0
    err = capsys.readouterr().err
    assert "note: --seed without --at: keys and serials are reproducible" in err
    at = ["--at", "2026-06-01T12:00:00Z"]
    assert cli_main(["issue-test-pki", str(tmp_path / "b"), "--iso", "2", "--seed", "9", *at]) == 0
    assert cli_main(["issue-test-pki", str(tmp_path / "c"), "--iso", "2", "--seed", "9", *at]) == 0
    assert "note:" not in capsys.readouterr().err
    for f in sorted((tmp_path / "b" / "iso2").glob("*.key.pem")):
        assert f.read_bytes() == (tmp_path / "a" / "iso2" / f.name).read_bytes()  # keys: seed alone
    if pki.issue.DETERMINISTIC_DER:
        for f in sorted((tmp_path / "b" / "iso2").glob("*.der")):
            assert f.read_bytes() == (tmp_path / "c" / "iso2" / f.name).read_bytes()  # all: seed and --at
    help_text = " ".join(pki.__main__.build_parser()._subparsers._group_actions[0].choices[  # type: ignore[union-attr]
        "issue-test-pki"].format_help().split())
    assert "with --at too, the output is byte-identical" in help_text


# ---------------------------------------------------------------- verify_chain input
def test_verify_chain_accepts_pem_like_the_trust_store() -> None:
    store = pki.TrustStore({"mo": [_pem(P2.cert("mo-root"))], "v2g": [_pem(P2.cert("v2g-root")).decode()]})
    leaf, subs = P2.cert("contract-leaf"), [P2.cert("mo-sub2"), P2.cert("mo-sub1")]
    der_chain = pki.verify_chain(leaf, subs, store=store, profile="iso2-contract", at=NOW)
    pem_chain = pki.verify_chain(_pem(leaf), [_pem(s) for s in subs], store=store, profile="iso2-contract", at=NOW)
    str_chain = pki.verify_chain(_pem(leaf).decode(), [_pem(subs[0]).decode(), subs[1]], store=store,
                                 profile="iso2-contract", at=NOW)
    assert der_chain.certificates == pem_chain.certificates == str_chain.certificates
    assert pem_chain.certificates[0] == leaf  # the chain holds DER whatever came in
    cache = pki.VerificationCache()
    for _ in range(2):  # the cached path takes PEM too
        assert pki.verify_chain(_pem(leaf), [_pem(s) for s in subs], store=store, profile="iso2-contract", at=NOW,
                                cache=cache).emaid == P2.emaid
    out = pki.verify_chains([(_pem(leaf), [_pem(s) for s in subs])], store=store, profile="iso2-contract", at=NOW)
    assert out[0].emaid == P2.emaid  # type: ignore[union-attr]


def test_pem_with_several_certificates_per_argument_is_refused_clearly() -> None:
    store = pki.TrustStore(P2.store_roots())
    bundle = _pem(P2.cert("contract-leaf")) + _pem(P2.cert("mo-sub2"))
    with pytest.raises(pki.ChainValidationError) as exc:
        pki.verify_chain(bundle, [P2.cert("mo-sub1")], store=store, profile="iso2-contract", at=NOW)
    assert exc.value.reason is pki.Reason.MALFORMED and exc.value.depth == 0
    assert "PEM with 2 CERTIFICATE blocks; give one certificate (DER or PEM) per argument" in str(exc.value)
    with pytest.raises(pki.ChainValidationError, match="intermediate #0 is PEM with 2 CERTIFICATE blocks"):
        pki.verify_chain(P2.cert("contract-leaf"), [_pem(P2.cert("mo-sub2")) + _pem(P2.cert("mo-sub1"))],
                         store=store, profile="iso2-contract", at=NOW)
    with pytest.raises(pki.ChainValidationError, match="not a DER certificate"):
        pki.verify_chain(b"\x01\x02garbage", [], store=store, profile="iso2-contract", at=NOW)


def test_a_naive_at_means_utc() -> None:
    store = pki.TrustStore(P2.store_roots())
    leaf = x509.load_der_x509_certificate(P2.cert("contract-leaf"))
    edge = leaf.not_valid_after_utc
    args = (P2.cert("contract-leaf"), [P2.cert("mo-sub2"), P2.cert("mo-sub1")])
    naive = edge.replace(tzinfo=None)
    assert pki.verify_chain(*args, store=store, profile="iso2-contract", at=naive)  # exactly notAfter, UTC
    with pytest.raises(pki.ChainValidationError) as exc:
        pki.verify_chain(*args, store=store, profile="iso2-contract", at=naive + timedelta(seconds=1))
    assert exc.value.reason is pki.Reason.EXPIRED
    # the same instant in another zone is the same answer
    plus2 = timezone(timedelta(hours=2))
    with pytest.raises(pki.ChainValidationError):
        pki.verify_chain(*args, store=store, profile="iso2-contract", at=(edge + timedelta(seconds=1)).astimezone(plus2))
