"""Profile data: every role and chain profile of issue 3, and the eMAID/PCID syntax checkers."""
from __future__ import annotations

import dataclasses

import pytest

from pki.errors import PKIError, UnknownProfileError
from pki.profiles import (
    CERT_PROFILES,
    CHAIN_PROFILES,
    EXT_BASIC_CONSTRAINTS,
    EXT_KEY_USAGE,
    KU_BITS,
    ROLES,
    cert_profile,
    chain_profile,
    is_valid_emaid,
    is_valid_pcid,
    key_usage_mask,
    key_usage_names,
    normalize_emaid,
)

CHAIN_NAMES = [
    "iso2-contract", "iso2-secc", "iso2-oem-provisioning", "iso2-cps",
    "iso20-contract", "iso20-secc", "iso20-oem-provisioning", "iso20-cps", "iso20-vehicle",
]


def test_chain_profile_names_are_exactly_the_issue_list() -> None:
    assert sorted(CHAIN_PROFILES) == sorted(CHAIN_NAMES)


@pytest.mark.parametrize("name,anchors", [
    ("iso2-contract", ("mo", "v2g")), ("iso20-contract", ("mo", "v2g")),
    ("iso2-secc", ("v2g",)), ("iso2-cps", ("v2g",)), ("iso20-secc", ("v2g",)), ("iso20-cps", ("v2g",)),
    ("iso2-oem-provisioning", ("oem",)), ("iso20-oem-provisioning", ("oem",)), ("iso20-vehicle", ("oem",)),
])
def test_anchor_roles(name: str, anchors: tuple[str, ...]) -> None:
    cp = chain_profile(name)
    assert cp.anchor_roles == anchors
    assert set(cp.root_profiles) == set(anchors)
    for role, root in cp.root_profiles.items():
        assert root.self_signed and root.is_ca and root.path_len is None
        assert root.role == f"{role}-root"


@pytest.mark.parametrize("name", CHAIN_NAMES)
def test_chain_structure(name: str) -> None:
    cp = chain_profile(name)
    assert cp.max_sub_cas == 2 and cp.min_sub_cas == 0
    assert not cp.leaf.is_ca and cp.leaf.path_len is None
    sub2, sub1 = cp.sub_ca_profiles
    assert (sub2.is_ca, sub2.path_len, sub1.is_ca, sub1.path_len) == (True, 0, True, 1)
    assert cp.sub_ca_profile(0, 2) is sub2 and cp.sub_ca_profile(1, 2) is sub1
    assert cp.sub_ca_profile(0, 1) is sub2  # Sub-CA 1 is optional
    with pytest.raises(ValueError):
        cp.sub_ca_profile(2, 3)
    assert {p.iso for p in (cp.leaf, sub1, sub2, *cp.root_profiles.values())} == {cp.iso}


def test_every_role_in_both_editions() -> None:
    for role in ROLES:
        assert f"iso20-{role}" in CERT_PROFILES
        assert (f"iso2-{role}" in CERT_PROFILES) == (role != "vehicle-leaf")


@pytest.mark.parametrize("name", sorted(CERT_PROFILES))
def test_common_rules(name: str) -> None:
    p = cert_profile(name)
    assert p.version == 3
    assert p.required_critical_extensions == {EXT_BASIC_CONSTRAINTS, EXT_KEY_USAGE}
    assert p.key_usage_required <= p.key_usage_permitted
    if p.iso == 2:
        assert (p.key_algorithms, p.signature_algorithms, p.max_der_size) == (("secp256r1",), ("ecdsa-with-SHA256",), 800)
        assert all(r.startswith("V2G2-") for r in p.requirements)
    else:
        assert p.key_algorithms == ("secp521r1", "ed448")
        assert p.signature_algorithms == ("ecdsa-with-SHA512", "ed448")
        assert all(r.startswith("V2G20-") for r in p.requirements)
    if p.is_ca:
        assert {"keyCertSign", "cRLSign"} <= p.key_usage_required
    else:
        assert not {"keyCertSign", "cRLSign"} & p.key_usage_permitted
    assert p.validity.default > p.validity.default * 0
    if p.validity.minimum is not None and p.validity.maximum is not None:
        assert p.validity.minimum <= p.validity.default <= p.validity.maximum


@pytest.mark.parametrize("iso", [2, 20])
def test_leaf_specifics(iso: int) -> None:
    secc, contract, oem, cps = (cert_profile(f"iso{iso}-{r}") for r in
                                ("secc-leaf", "contract-leaf", "oem-provisioning-leaf", "cps-leaf"))
    assert secc.key_usage_required == {"digitalSignature", "keyAgreement"}
    assert oem.key_usage_required == {"digitalSignature", "keyAgreement"}
    assert {"digitalSignature", "nonRepudiation", "keyAgreement"} <= contract.key_usage_required
    assert cps.key_usage_required == {"digitalSignature"}
    assert secc.dc_required and "CPO" in secc.domain_components
    assert cps.domain_components == ("CPS",) and cps.dc_required
    assert contract.cn_kind == "emaid" and oem.cn_kind == "pcid"
    assert oem.domain_components == ("OEM",)
    assert cert_profile(f"iso{iso}-mo-sub2").key_usage_required >= {"digitalSignature", "nonRepudiation"}
    assert cert_profile(f"iso{iso}-v2g-root").domain_components == ("V2G",)
    assert cert_profile(f"iso{iso}-cpo-sub2").domain_components == ("V2G",)


def test_iso20_secc_accepts_cso() -> None:
    assert cert_profile("iso20-secc-leaf").domain_components == ("CPO", "CSO")
    assert cert_profile("iso2-secc-leaf").domain_components == ("CPO",)


def test_oids_follow_names() -> None:
    p2, p20 = cert_profile("iso2-secc-leaf"), cert_profile("iso20-secc-leaf")
    assert p2.key_algorithm_oids == {("1.2.840.10045.2.1", "1.2.840.10045.3.1.7")}
    assert p2.signature_algorithm_oids == {"1.2.840.10045.4.3.2"}
    assert p20.key_algorithm_oids == {("1.2.840.10045.2.1", "1.3.132.0.35"), ("1.3.101.113", None)}
    assert p20.signature_algorithm_oids == {"1.2.840.10045.4.3.4", "1.3.101.113"}


def test_key_usage_masks() -> None:
    assert key_usage_mask({"digitalSignature"}) == 1
    assert key_usage_mask({"keyCertSign", "cRLSign"}) == 0b1100000
    for i, name in enumerate(KU_BITS):
        assert key_usage_names(1 << i) == {name}
    p = cert_profile("iso2-contract-leaf")
    assert key_usage_names(p.key_usage_required_mask) == p.key_usage_required
    assert key_usage_names(p.key_usage_permitted_mask) == p.key_usage_permitted
    with pytest.raises(ValueError):
        key_usage_mask({"keySign"})


def test_unknown_profile_is_typed() -> None:
    with pytest.raises(UnknownProfileError) as exc:
        chain_profile("iso2-nope")
    assert isinstance(exc.value, (KeyError, PKIError))
    assert "iso2-contract" in str(exc.value)
    with pytest.raises(UnknownProfileError):
        cert_profile("iso2-vehicle-leaf")  # the vehicle certificate is -20 only


def test_profiles_are_immutable() -> None:
    p = cert_profile("iso2-contract-leaf")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.is_ca = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        CHAIN_PROFILES["x"] = CHAIN_PROFILES["iso2-secc"]  # type: ignore[index]


@pytest.mark.parametrize("value", [
    "DEPLGC000000011", "DE8AAC000000001", "DE-8AA-C00000001", "DE-8AA-C00000001-2", "de8aac00000000",
    "NL-TNM-012345678-X", "FR0123456789AB",
])
def test_valid_emaids(value: str) -> None:
    assert is_valid_emaid(value)


@pytest.mark.parametrize("value", [
    "", "DE", "DE8AAC0000000", "DE8AAC00000000112", "1E8AAC000000001", "DE-8AAC00000001",
    "DE8AA-C00000001", "DE8AAC00000000-1", "DE-8AA-C0000000$", "DE_8AA_C00000001", "DE-8AA-C00000001-23",
    "DE 8AA C00000001",
])
def test_invalid_emaids(value: str) -> None:
    assert not is_valid_emaid(value)


def test_emaid_normalisation() -> None:
    assert normalize_emaid("de-8aa-c00000001-2") == "DE8AAC000000012"
    assert normalize_emaid("DE8AAC000000012") == normalize_emaid("de-8aa-c00000001-2")


@pytest.mark.parametrize("value,ok", [
    ("PLUGCHARGEPCID0001", True), ("WMI1234567890ABCDE", True), ("PLUGCHARGEPCID001", False),
    ("PLUGCHARGEPCID00011", False), ("plugchargepcid0001", False), ("PLUGCHARGE-PCID001", False), ("", False),
])
def test_pcid(value: str, ok: bool) -> None:
    assert is_valid_pcid(value) is ok
    assert not is_valid_pcid(123)  # type: ignore[arg-type]
