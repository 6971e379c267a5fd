"""Test-PKI issuing: profile conformance (checked independently of pki's validator), determinism,
writing files, the CLI, fresh backend issuance and the broken-chain corpus."""
from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509 import verification as xv
from cryptography.x509.oid import NameOID

from _pki_fixtures import NOW, SEED, VARIANTS, cached_broken, cached_pki, pki2, pki20, pki_any  # noqa: F401
from pki.__main__ import main as cli_main
from pki.issue import DETERMINISTIC_DER, ISSUER_OF, IssueError, TestPKI, issue_test_pki
from pki.profiles import CertProfile, chain_profile, is_valid_emaid, is_valid_pcid, key_usage_mask

_KU_ATTR = {
    "digitalSignature": "digital_signature", "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement", "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign",
}
_SIG_NAME = {"1.2.840.10045.4.3.2": "ecdsa-with-SHA256", "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
             "1.3.101.113": "ed448"}


def _key_alg(cert: x509.Certificate) -> str:
    k = cert.public_key()
    if isinstance(k, ed448.Ed448PublicKey):
        return "ed448"
    assert isinstance(k, ec.EllipticCurvePublicKey)
    return k.curve.name


def conformance_problems(der: bytes, profile: CertProfile) -> list[str]:
    """An independent (test-side) reading of the profile rules; returns what is wrong."""
    problems = []
    cert = x509.load_der_x509_certificate(der)
    if len(der) > profile.max_der_size:
        problems.append("size")
    if cert.version != x509.Version.v3:
        problems.append("version")
    if cert.serial_number <= 0:
        problems.append("serial")
    if _key_alg(cert) not in profile.key_algorithms:
        problems.append("key algorithm")
    if _SIG_NAME.get(cert.signature_algorithm_oid.dotted_string) not in profile.signature_algorithms:
        problems.append("signature algorithm")
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        if not bc.critical or bc.value.ca != profile.is_ca or bc.value.path_length != profile.path_len:
            problems.append("basicConstraints")
    except x509.ExtensionNotFound:
        problems.append("basicConstraints")
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        bits = {n for n, a in _KU_ATTR.items() if getattr(ku.value, a)}
        if not ku.critical or not profile.key_usage_required <= bits <= profile.key_usage_permitted:
            problems.append("keyUsage")
    except x509.ExtensionNotFound:
        problems.append("keyUsage")
    known = profile.required_critical_extensions | profile.noncritical_extensions
    for ext in cert.extensions:
        if ext.oid.dotted_string in profile.noncritical_extensions and ext.critical:
            problems.append(f"critical {ext.oid.dotted_string}")
        if ext.critical and ext.oid.dotted_string not in known:
            problems.append("unknown critical extension")
    dcs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)]
    if (profile.dc_required and not dcs) or any(d not in profile.domain_components for d in dcs):
        problems.append("domainComponent")
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    if profile.cn_kind == "emaid" and not is_valid_emaid(str(cn)):
        problems.append("eMAID")
    if profile.cn_kind == "pcid" and not is_valid_pcid(str(cn)):
        problems.append("PCID")
    if profile.self_signed != (cert.issuer == cert.subject):
        problems.append("self-signed")
    return problems


def test_every_certificate_conforms(pki_any: TestPKI) -> None:
    expected_roles = {r for r in ISSUER_OF if pki_any.iso == 20 or r != "vehicle-leaf"}
    assert set(pki_any.certificates) == expected_roles == set(pki_any.keys)
    for role in pki_any.roles:
        assert conformance_problems(pki_any.cert(role), pki_any.profile(role)) == [], role


def test_issuers_sign_children_and_keys_match(pki_any: TestPKI) -> None:
    for role, issuer_role in ISSUER_OF.items():
        if role not in pki_any.certificates:
            continue
        cert = x509.load_der_x509_certificate(pki_any.cert(role))
        issuer = x509.load_der_x509_certificate(pki_any.cert(issuer_role or role))
        cert.verify_directly_issued_by(issuer)
        assert cert.public_key() == pki_any.key(role).public_key()
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value if issuer_role else None
        if aki is not None:
            ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            assert aki.key_identifier == ski.digest
        assert cert.not_valid_before_utc <= NOW <= cert.not_valid_after_utc


def test_times_and_serials(pki2: TestPKI) -> None:
    serials = set()
    for role in pki2.roles:
        cert = x509.load_der_x509_certificate(pki2.cert(role))
        assert cert.not_valid_before_utc == NOW.replace(microsecond=0) - timedelta(days=1)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == pki2.profile(role).validity.default
        assert 0 < cert.serial_number < 1 << 127
        serials.add(cert.serial_number)
    assert len(serials) == len(pki2.roles)


def _verify_with_cryptography(case_leaf: bytes, intermediates: tuple[bytes, ...], root: bytes) -> list[x509.Certificate]:
    store = xv.Store([x509.load_der_x509_certificate(root)])
    ca_policy = xv.ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, xv.Criticality.CRITICAL, None).require_present(x509.KeyUsage, xv.Criticality.CRITICAL, None)
    ee_policy = xv.ExtensionPolicy.permit_all().require_present(x509.KeyUsage, xv.Criticality.CRITICAL, None)
    verifier = (xv.PolicyBuilder().store(store).time(NOW).max_chain_depth(2)
                .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy).build_client_verifier())
    result = verifier.verify(x509.load_der_x509_certificate(case_leaf),
                             [x509.load_der_x509_certificate(d) for d in intermediates])
    return result.chain


@pytest.mark.parametrize("iso", [2, 20])
def test_chains_verify_with_cryptography(iso: int) -> None:
    """A third-party path validator accepts every valid chain (ECDSA variants; it refuses Ed448)."""
    if not hasattr(xv, "ExtensionPolicy"):
        pytest.skip("cryptography < 45 has no x509.verification.ExtensionPolicy")
    pki = cached_pki(iso)
    for name, case in pki.chains().items():
        cp = chain_profile(name)
        root = case.roots[cp.anchor_roles[0]][0]
        chain = _verify_with_cryptography(case.leaf, case.intermediates, root)
        assert len(chain) == 4
        assert chain[-1].public_bytes(serialization.Encoding.DER) == root


def test_determinism() -> None:
    a = issue_test_pki(2, seed=42, now=NOW)
    b = issue_test_pki(2, seed=42, now=NOW)
    c = issue_test_pki(2, seed=43, now=NOW)
    for role in a.roles:
        assert a.key(role).private_numbers() == b.key(role).private_numbers()  # type: ignore[union-attr]
        assert a.key(role).private_numbers() != c.key(role).private_numbers()  # type: ignore[union-attr]
        ta = x509.load_der_x509_certificate(a.cert(role)).tbs_certificate_bytes
        assert ta == x509.load_der_x509_certificate(b.cert(role)).tbs_certificate_bytes
    if DETERMINISTIC_DER:
        assert a.certificates == b.certificates
    e1, e2 = issue_test_pki(20, seed=1, now=NOW, algorithm="ed448"), issue_test_pki(20, seed=1, now=NOW, algorithm="ed448")
    assert e1.certificates == e2.certificates
    r1, r2 = issue_test_pki(2, now=NOW), issue_test_pki(2, now=NOW)
    assert r1.cert("v2g-root") != r2.cert("v2g-root")  # no seed: fresh keys


def test_repr_hides_keys(pki2: TestPKI) -> None:
    text = repr(pki2)
    d = pki2.key("contract-leaf").private_numbers().private_value  # type: ignore[union-attr]
    assert format(d, "x") not in text and str(d) not in text
    assert "keys" not in text


def test_bad_arguments() -> None:
    with pytest.raises(IssueError):
        issue_test_pki(3)
    with pytest.raises(IssueError):
        issue_test_pki(2, emaid="nope")
    with pytest.raises(IssueError):
        issue_test_pki(2, pcid="short")
    with pytest.raises(IssueError):
        issue_test_pki(2, algorithm="ed448")
    with pytest.raises(IssueError):
        cached_pki(2).cert("vehicle-leaf")
    with pytest.raises(ValueError):  # IssueError is a ValueError
        cached_pki(2).chain("iso20-contract")


def test_fresh_contract_for_backend(pki2: TestPKI) -> None:
    issued = pki2.issue_contract("NL-TNM-012345678-X")
    cert = x509.load_der_x509_certificate(issued.der)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "NL-TNM-012345678-X"
    cert.verify_directly_issued_by(x509.load_der_x509_certificate(pki2.cert("mo-sub2")))
    assert cert.public_key() == issued.key.public_key()  # type: ignore[union-attr]
    assert conformance_problems(issued.der, pki2.profile("contract-leaf")) == []
    with pytest.raises(IssueError):
        pki2.issue_contract("not an emaid")
    # only a public key (e.g. from a CSR): no private key is returned
    from pki.issue import issue_contract

    k = ec.generate_private_key(ec.SECP256R1())
    only_pub = issue_contract(pki2.cert("mo-sub2"), pki2.key("mo-sub2"), "DEPLGC000000029", iso=2, now=NOW,
                              public_key=k.public_key())
    assert only_pub.key is None
    with pytest.raises(IssueError):
        issue_contract(pki2.cert("mo-sub2"), pki2.key("mo-sub2"), "DEPLGC000000029", iso=2, now=NOW,
                       public_key=ec.generate_private_key(ec.SECP384R1()).public_key())


def test_fresh_oem_provisioning_iso20(pki20: TestPKI) -> None:
    issued = pki20.issue_oem_provisioning("WMI1234567890ABCDE")
    assert conformance_problems(issued.der, pki20.profile("oem-provisioning-leaf")) == []


def test_write_files(tmp_path: os.PathLike[str], pki20: TestPKI) -> None:
    manifest_path = pki20.write(tmp_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["iso"] == 20 and manifest["algorithm"] == "secp521r1" and manifest["seed"] == SEED
    assert {f["role"] for f in manifest["files"]} == set(pki20.roles)
    for entry in manifest["files"]:
        der = (manifest_path.parent / entry["der"]).read_bytes()
        assert der == pki20.cert(entry["role"])
        pem = x509.load_pem_x509_certificate((manifest_path.parent / entry["pem"]).read_bytes())
        assert pem.public_bytes(serialization.Encoding.DER) == der
        key_file = manifest_path.parent / entry["key"]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        assert key.public_key() == pem.public_key()
        assert entry["profile"] == f"iso20-{entry['role']}" and entry["size"] == len(der)
    assert manifest["chains"]["iso20-contract"] == {
        "leaf": "contract-leaf", "intermediates": ["mo-sub2", "mo-sub1"], "anchor_role": "mo",
        "allowed_anchor_roles": ["mo", "v2g"]}
    for role, files in manifest["trust"].items():
        root = x509.load_pem_x509_certificate((manifest_path.parent / files[0]).read_bytes())
        assert root.public_bytes(serialization.Encoding.DER) == pki20.store_roots()[role][0]
    pki20.write(tmp_path)  # overwriting keeps working and keeps the key mode
    assert stat.S_IMODE((manifest_path.parent / "v2g-root.key.pem").stat().st_mode) == 0o600


def test_cli(tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    out = Path(tmp_path) / "pki"
    assert cli_main(["issue-test-pki", str(out), "--seed", "5", "--at", "2026-06-01T12:00:00Z"]) == 0
    index = json.loads((out / "manifest.json").read_text())
    assert set(index["variants"]) == {"iso2", "iso20"}
    m2 = json.loads((out / "iso2" / "manifest.json").read_text())
    assert m2["now"] == "2026-06-01T12:00:00+00:00" and len(m2["files"]) == 15
    again = Path(tmp_path) / "again"
    assert cli_main(["issue-test-pki", str(again), "--iso", "2", "--seed", "5", "--at", "2026-06-01T12:00:00"]) == 0
    assert not (again / "iso20").exists()
    a = (out / "iso2" / "contract-leaf.key.pem").read_bytes()
    assert a == (again / "iso2" / "contract-leaf.key.pem").read_bytes()
    if DETERMINISTIC_DER:
        assert (out / "iso2" / "contract-leaf.der").read_bytes() == (again / "iso2" / "contract-leaf.der").read_bytes()
    assert cli_main(["issue-test-pki", str(again), "--iso", "20", "--algorithm", "ed448", "--seed", "1"]) == 0
    assert json.loads((again / "iso20" / "manifest.json").read_text())["algorithm"] == "ed448"
    assert cli_main(["issue-test-pki", str(again), "--emaid", "x"]) == 2
    assert "eMAID" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["issue-test-pki", str(again), "--at", "yesterday"])



@pytest.mark.parametrize("args", [[], ["--algorithm", "ed448", "--oem-provisioning-algorithm", "secp521r1"]],
                         ids=["p521", "ed448"])
def test_cli_iso20_writes_every_chain_a_pnc_session_needs(tmp_path: os.PathLike[str], args: list[str]) -> None:
    """What a -20 Plug & Charge session reads from the files: the vehicle chain (mutual TLS), the OEM
    provisioning chain and key, CPS, MO/contract and SECC chains, each valid under its -20 chain profile
    against the roots in trust/<role>/."""
    from pathlib import Path

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from pki.store import TrustStore
    from pki.verify import verify_chain

    out = Path(tmp_path) / "pki"
    assert cli_main(["issue-test-pki", str(out), "--iso", "20", "--seed", "4", "--at", "2026-06-01T12:00:00Z", *args]) == 0
    d = out / "iso20"
    manifest = json.loads((d / "manifest.json").read_text())
    store = TrustStore({role: [(d / f).read_bytes() for f in files] for role, files in manifest["trust"].items()})
    want = {"iso20-vehicle", "iso20-oem-provisioning", "iso20-cps", "iso20-contract", "iso20-secc"}
    assert want <= set(manifest["chains"])
    for name in want:
        chain = manifest["chains"][name]
        leaf = (d / f"{chain['leaf']}.der").read_bytes()
        subs = [(d / f"{r}.der").read_bytes() for r in chain["intermediates"]]
        verify_chain(leaf, subs, store=store, profile=name, at=NOW)
        key = load_pem_private_key((d / f"{chain['leaf']}.key.pem").read_bytes(), None)
        kind = "ed448" if isinstance(key, ed448.Ed448PrivateKey) else key.curve.name  # type: ignore[union-attr]
        expected = "secp521r1" if not args or chain["leaf"] == "oem-provisioning-leaf" else "ed448"
        assert kind == expected, (name, kind)


# ---- the broken corpus -------------------------------------------------------------------------
REASONS = {"MALFORMED", "BAD_SIGNATURE", "EXPIRED", "NOT_YET_VALID", "UNKNOWN_ISSUER", "UNTRUSTED_ROOT",
           "NOT_A_CA", "PATH_LENGTH", "KEY_USAGE", "ALGORITHM", "PROFILE", "TOO_LARGE", "REVOKED"}
REQUIRED_CASES = {
    "bad_signature", "expired", "not_yet_valid", "unknown_issuer", "untrusted_root", "wrong_role_root",
    "sub_ca_not_ca", "path_len_violated", "missing_key_usage", "noncritical_key_usage", "wrong_key_usage_bits",
    "wrong_curve", "wrong_signature_algorithm", "wrong_domain_component", "bad_emaid_cn", "too_large",
    "v1_certificate", "negative_serial", "three_sub_cas", "unknown_critical_extension", "leaf_is_ca",
}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def test_broken_corpus_shape(variant: tuple[int, str]) -> None:
    iso, algorithm = variant
    cases = cached_broken(iso, algorithm)
    expected = REQUIRED_CASES - ({"wrong_signature_algorithm"} if algorithm == "ed448" else set())
    assert expected <= set(cases)
    valid = cached_pki(iso, algorithm)
    for name, case in cases.items():
        assert case.reason in REASONS, name
        assert case.profile.startswith(f"iso{iso}-")
        cp = chain_profile(case.profile)
        # every certificate is well-formed DER that asn1crypto parses (except the MALFORMED cases)
        if case.reason != "MALFORMED":
            for der in (case.leaf, *case.intermediates, *(r for rs in case.roots.values() for r in rs)):
                a_x509.Certificate.load(der).native  # noqa: B018
        # the case differs from the valid chain (or its store) somewhere
        ok = valid.chain(case.profile)
        assert (case.leaf, case.intermediates, dict(case.roots)) != (ok.leaf, ok.intermediates, dict(ok.roots)), name
        assert set(case.roots) <= {"v2g", "mo", "oem"} and cp.leaf.role


def _leaf(case) -> x509.Certificate:  # type: ignore[no-untyped-def]
    return x509.load_der_x509_certificate(case.leaf)


@pytest.mark.filterwarnings("ignore:Parsed a")
def test_broken_cases_break_what_they_say() -> None:
    cases = cached_broken(2)
    pki = cached_pki(2)
    profile = pki.profile("contract-leaf")
    by_problem = {name: conformance_problems(c.leaf, pki.profile(chain_profile(c.profile).leaf.role))
                  for name, c in cases.items() if c.reason != "MALFORMED"}

    assert by_problem["too_large"] == ["size"] and len(cases["too_large"].leaf) > 800
    assert by_problem["missing_key_usage"] == ["keyUsage"] == by_problem["noncritical_key_usage"]
    assert by_problem["wrong_key_usage_bits"] == ["keyUsage"] == by_problem["leaf_key_cert_sign"]
    assert by_problem["leaf_is_ca"] == ["basicConstraints"] == by_problem["leaf_missing_basic_constraints"]
    assert by_problem["wrong_curve"] == ["key algorithm"]
    assert by_problem["wrong_signature_algorithm"] == ["signature algorithm"]
    assert by_problem["wrong_domain_component"] == ["domainComponent"] == by_problem["secc_wrong_domain_component"]
    assert by_problem["bad_emaid_cn"] == ["eMAID"] and by_problem["bad_pcid_cn"] == ["PCID"]
    assert by_problem["unknown_critical_extension"] == ["unknown critical extension"]
    for name in ("bad_signature", "expired", "not_yet_valid", "unknown_issuer", "sub_ca_not_ca", "three_sub_cas"):
        assert by_problem[name] == [], name
    assert _leaf(cases["expired"]).not_valid_after_utc < NOW < _leaf(cases["not_yet_valid"]).not_valid_before_utc
    assert a_x509.Certificate.load(cases["v1_certificate"].leaf)["tbs_certificate"]["version"].native == "v1"
    assert a_x509.Certificate.load(cases["negative_serial"].leaf).serial_number < 0
    assert len(cases["three_sub_cas"].intermediates) == 3
    issuer = x509.load_der_x509_certificate(pki.cert("mo-sub2"))
    with pytest.raises(Exception):
        _leaf(cases["bad_signature"]).verify_directly_issued_by(issuer)
    _leaf(cases["wrong_curve"]).verify_directly_issued_by(issuer)  # only the curve is wrong
    tbs = a_x509.Certificate.load(cases["tbs_signature_algorithm_mismatch"].leaf)
    assert tbs["tbs_certificate"]["signature"]["algorithm"].native != tbs["signature_algorithm"]["algorithm"].native
    assert key_usage_mask(profile.key_usage_required) == profile.key_usage_required_mask


def _verify_chain_api():  # type: ignore[no-untyped-def]
    try:
        import pki as pki_pkg

        return pki_pkg.verify_chain, pki_pkg.TrustStore, pki_pkg.ChainValidationError
    except (ImportError, AttributeError):
        pass
    try:  # before the package __init__ exports them
        from pki.errors import ChainValidationError
        from pki.store import TrustStore
        from pki.verify import verify_chain

        return verify_chain, TrustStore, ChainValidationError
    except (ImportError, AttributeError):
        return None


@pytest.mark.filterwarnings("ignore:Parsed a")
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def test_validator_agrees_with_corpus(variant: tuple[int, str]) -> None:
    """When pki.verify_chain exists: every valid chain passes, every broken one fails for its reason."""
    api = _verify_chain_api()
    if api is None:
        pytest.skip("pki.verify_chain is not exported yet")
    verify_chain, TrustStore, ChainValidationError = api
    iso, algorithm = variant
    pki = cached_pki(iso, algorithm)
    for name, case in pki.chains().items():
        verify_chain(case.leaf, case.intermediates, store=TrustStore(case.roots), profile=name, at=NOW)
    wrong = {}
    for name, case in cached_broken(iso, algorithm).items():
        try:
            verify_chain(case.leaf, case.intermediates, store=TrustStore(case.roots), profile=case.profile, at=NOW)
            wrong[name] = "accepted"
        except ChainValidationError as exc:
            if exc.reason.name != case.reason:
                wrong[name] = f"{exc.reason.name} (expected {case.reason})"
    assert wrong == {}


@pytest.mark.filterwarnings("ignore:Parsed a")
def test_broken_corpus_is_reproducible() -> None:
    """Same PKI and seed → the same cases; byte-identical where RFC 6979 ECDSA is available."""
    from pki.issue import broken_chains

    a = broken_chains(2, pki=cached_pki(2), seed=SEED)
    b = broken_chains(2, pki=cached_pki(2), seed=SEED)
    assert {n: c.reason for n, c in a.items()} == {n: c.reason for n, c in b.items()}
    if DETERMINISTIC_DER:
        assert a == b
