"""Chains that break exactly one profile rule each, built from a :class:`pki.issue.TestPKI` (not public API).

:func:`broken_chains` returns ``{case name: ChainCase}``; every case reuses the conformant PKI and
rebuilds only the certificate(s) needed to break its one rule (a renamed Sub-CA also gets its child
re-issued so name chaining still holds). ``ChainCase.reason`` is the name of the ``pki.Reason``
member a validator must report (``"BAD_SIGNATURE"``, ``"PROFILE"`` ...).
"""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Callable

from asn1crypto import algos as a_algos
from cryptography import x509
from cryptography.x509.oid import NameOID

from ._builder import CertSpec, KeyFactory, PrivateKey, build_certificate, make_name, resign, unknown_extension
from ._specs import ISSUER_OF, ChainCase, TestPKILike, _spec

__all__ = ["broken_chains", "conformant_spec"]

_UNKNOWN_OID = "1.3.6.1.4.1.55555.1.1"  # private arc: an extension no validator knows


def conformant_spec(pki: TestPKILike, role: str) -> CertSpec:
    """The exact :class:`CertSpec` ``role`` was issued from in ``pki`` (same key, serial, names, times)."""
    cert = x509.load_der_x509_certificate(pki.cert(role))
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    issuer_role = ISSUER_OF[role]
    issuer_name = None if issuer_role is None else x509.load_der_x509_certificate(pki.cert(issuer_role)).subject
    issuer_key = pki.key(role if issuer_role is None else issuer_role)
    return _spec(pki.profile(role), cn=str(cn), public_key=pki.key(role).public_key(), issuer_name=issuer_name,
                 issuer_key=issuer_key, serial=pki.serials[role], now=pki.now)


def _subject_with(spec: CertSpec, *, cn: str | None = None, dc: str | None = None) -> x509.Name:
    old_cn = spec.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    old_dc = spec.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)
    return make_name(cn or str(old_cn), dc or (str(old_dc[0].value) if old_dc else None))


def broken_chains(iso: int = 2, *, pki: TestPKILike, seed: int = 15118) -> dict[str, ChainCase]:
    """Chains that each break exactly one rule, keyed by rule name.

    ``pki`` is the conformant PKI the cases are derived from (:func:`pki.issue.broken_chains` issues
    one at a fixed time when none is given); validate every case at ``pki.now``. Most cases break the contract chain (``iso<N>-contract``); the DC/PCID/KU cases of the
    other leaves use their own chain profiles.
    """
    iso = pki.iso
    now = pki.now
    roots = pki.store_roots()
    factory = KeyFactory(seed + 1)
    alt_key = factory.key("alt", pki.algorithm)
    ed = pki.algorithm == "ed448"
    cases: dict[str, ChainCase] = {}

    def chain_of(leaf_role: str) -> tuple[str, tuple[str, str], str]:
        profile = {"contract-leaf": "contract", "secc-leaf": "secc", "cps-leaf": "cps",
                   "oem-provisioning-leaf": "oem-provisioning", "vehicle-leaf": "vehicle"}[leaf_role]
        name = f"iso{iso}-{profile}"
        from .profiles import chain_profile

        cp = chain_profile(name)
        return name, (cp.sub_ca_profiles[0].role, cp.sub_ca_profiles[1].role), leaf_role

    def add(name: str, reason: str, description: str, *, leaf_role: str = "contract-leaf",
            replace: dict[str, bytes] | None = None, extra_intermediates: tuple[bytes, ...] = (),
            store: dict[str, tuple[bytes, ...]] | None = None, intermediates: tuple[bytes, ...] | None = None) -> None:
        profile, (sub2, sub1), leaf = chain_of(leaf_role)
        certs = {r: pki.cert(r) for r in (leaf, sub2, sub1)}
        certs.update(replace or {})
        inter = intermediates if intermediates is not None else (certs[sub2], certs[sub1]) + extra_intermediates
        cases[name] = ChainCase(certs[leaf], inter, store or roots, profile, reason, description)

    def rebuilt(role: str, change: Callable[[CertSpec], None]) -> bytes:
        spec = conformant_spec(pki, role)
        change(spec)
        return build_certificate(spec)

    def set_(**fields: object) -> Callable[[CertSpec], None]:
        def change(spec: CertSpec) -> None:
            for k, v in fields.items():
                setattr(spec, k, v)

        return change

    leaf_issuer_key = pki.key("mo-sub2")

    # --- signatures, issuers, anchors -----------------------------------------------------------
    add("bad_signature", "BAD_SIGNATURE", "leaf signed by a key other than its issuer's",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(signing_key=alt_key))})
    add("bad_signature_sub_ca", "BAD_SIGNATURE", "Sub-CA 2 signed by a key other than Sub-CA 1's",
        replace={"mo-sub2": rebuilt("mo-sub2", set_(signing_key=alt_key))})
    foreign_issuer = make_name("MOSubCA2Foreign", "MO")
    add("unknown_issuer", "UNKNOWN_ISSUER", "leaf issued by a Sub-CA that is neither given nor in the store",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(issuer=foreign_issuer, signing_key=alt_key,
                                                                aki_key=alt_key.public_key()))})
    foreign = _foreign_hierarchy(pki, factory)
    add("untrusted_root", "UNTRUSTED_ROOT",
        "complete chain up to a self-signed MO root (other name and key) that is not in the store",
        replace={r: foreign[r] for r in ("contract-leaf", "mo-sub2", "mo-sub1")},
        extra_intermediates=(foreign["mo-root"],))
    add("wrong_role_root", "UNTRUSTED_ROOT", "the MO root is in the store only under the 'oem' role",
        store={"oem": (pki.cert("mo-root"),), "v2g": (pki.cert("v2g-root"),)})
    add("secc_anchored_at_mo_root", "UNTRUSTED_ROOT",
        "SECC chain whose V2G root is in the store only under the 'mo' role (SECC: v2g only)",
        leaf_role="secc-leaf", store={"mo": (pki.cert("v2g-root"),), "oem": (pki.cert("oem-root"),)})

    # --- validity ---------------------------------------------------------------------------------
    add("expired", "EXPIRED", "leaf notAfter is one second before the validation time",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(not_before=now - timedelta(days=400),
                                                                not_after=now - timedelta(seconds=1)))})
    add("expired_sub_ca", "EXPIRED", "Sub-CA 1 notAfter is one second before the validation time",
        replace={"mo-sub1": rebuilt("mo-sub1", set_(not_after=now - timedelta(seconds=1)))})
    add("not_yet_valid", "NOT_YET_VALID", "leaf notBefore is one hour after the validation time",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(not_before=now + timedelta(hours=1),
                                                                not_after=now + timedelta(days=700)))})

    # --- basicConstraints / path length ------------------------------------------------------------
    add("sub_ca_not_ca", "NOT_A_CA", "Sub-CA 2 has basicConstraints cA=FALSE",
        replace={"mo-sub2": rebuilt("mo-sub2", set_(is_ca=False, path_len=None))})
    add("sub_ca_basic_constraints_noncritical", "NOT_A_CA", "Sub-CA 2 basicConstraints is not critical",
        replace={"mo-sub2": rebuilt("mo-sub2", set_(bc_critical=False))})
    add("leaf_missing_basic_constraints", "NOT_A_CA", "leaf has no basicConstraints",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(basic_constraints=False))})
    add("leaf_is_ca", "NOT_A_CA", "leaf has basicConstraints cA=TRUE",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(is_ca=True))})
    add("path_len_violated", "PATH_LENGTH", "Sub-CA 1 has pathLenConstraint 0 but another CA below it",
        replace={"mo-sub1": rebuilt("mo-sub1", set_(path_len=0))})
    add("sub_ca2_wrong_path_len", "PATH_LENGTH", "Sub-CA 2 has pathLenConstraint 1 instead of 0",
        replace={"mo-sub2": rebuilt("mo-sub2", set_(path_len=1))})
    sub0_key = factory.key("sub0", pki.algorithm)
    sub0 = conformant_spec(pki, "mo-sub1")
    sub0 = dataclasses.replace(sub0, subject=make_name("MOSubCA0", "MO"), public_key=sub0_key.public_key(),
                               path_len=2, serial=factory.serial("sub0"))
    sub1_under_sub0 = rebuilt("mo-sub1", set_(issuer=sub0.subject, signing_key=sub0_key,
                                              aki_key=sub0_key.public_key()))
    add("three_sub_cas", "PATH_LENGTH", "three Sub-CAs between leaf and root (max 2 [V2G2-009])",
        replace={"mo-sub1": sub1_under_sub0}, extra_intermediates=(build_certificate(sub0),))

    # --- keyUsage ---------------------------------------------------------------------------------
    add("missing_key_usage", "KEY_USAGE", "leaf has no keyUsage",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(key_usage=None))})
    add("noncritical_key_usage", "KEY_USAGE", "leaf keyUsage is not critical",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(ku_critical=False))})
    add("wrong_key_usage_bits", "KEY_USAGE", "contract leaf keyUsage is digitalSignature only",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(key_usage=frozenset({"digitalSignature"})))})
    add("leaf_key_cert_sign", "KEY_USAGE", "contract leaf keyUsage additionally asserts keyCertSign",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(
            key_usage=pki.profile("contract-leaf").key_usage_required | {"keyCertSign"}))})
    add("sub_ca_without_key_cert_sign", "KEY_USAGE", "Sub-CA 1 keyUsage lacks keyCertSign",
        replace={"mo-sub1": rebuilt("mo-sub1", set_(key_usage=frozenset({"cRLSign"})))})
    add("secc_missing_key_agreement", "KEY_USAGE", "SECC leaf keyUsage lacks keyAgreement",
        leaf_role="secc-leaf",
        replace={"secc-leaf": rebuilt("secc-leaf", set_(key_usage=frozenset({"digitalSignature"})))})

    # --- algorithms -------------------------------------------------------------------------------
    wrong_curve = {"secp256r1": "secp384r1", "secp521r1": "secp256r1", "ed448": "secp256r1"}[pki.algorithm]
    add("wrong_curve", "ALGORITHM", f"leaf key is on {wrong_curve}",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(
            public_key=factory.key("wrong-curve", wrong_curve).public_key()))})
    if not ed:
        wrong_hash = "sha384" if pki.algorithm == "secp256r1" else "sha256"
        add("wrong_signature_algorithm", "ALGORITHM", f"leaf signed with ecdsa-with-{wrong_hash.upper()}",
            replace={"contract-leaf": rebuilt("contract-leaf", set_(hash_name=wrong_hash))})
        tbs_alg = "sha384_ecdsa" if pki.algorithm == "secp256r1" else "sha256_ecdsa"

        def tbs_mismatch(tbs: object) -> None:
            tbs["signature"] = a_algos.SignedDigestAlgorithm({"algorithm": tbs_alg})  # type: ignore[index]

        add("tbs_signature_algorithm_mismatch", "ALGORITHM",
            "TBS signature algorithm differs from the outer one (the signature itself is valid)",
            replace={"contract-leaf": resign(pki.cert("contract-leaf"), leaf_issuer_key, tbs_mismatch)})

    # --- naming / other profile rules ------------------------------------------------------------
    add("wrong_domain_component", "PROFILE", "contract leaf carries DC=CPO",
        replace={"contract-leaf": rebuilt("contract-leaf", lambda s: setattr(s, "subject", _subject_with(s, dc="CPO")))})
    add("secc_wrong_domain_component", "PROFILE", "SECC leaf carries DC=MO instead of CPO [V2G2-925]",
        leaf_role="secc-leaf",
        replace={"secc-leaf": rebuilt("secc-leaf", lambda s: setattr(s, "subject", _subject_with(s, dc="MO")))})
    renamed_sub2 = conformant_spec(pki, "mo-sub2")
    renamed_sub2.subject = _subject_with(renamed_sub2, dc="OEM")
    add("sub_ca_wrong_domain_component", "PROFILE", "MO Sub-CA 2 carries DC=OEM (leaf re-issued under the new name)",
        replace={"mo-sub2": build_certificate(renamed_sub2),
                 "contract-leaf": rebuilt("contract-leaf", set_(issuer=renamed_sub2.subject))})
    add("bad_emaid_cn", "PROFILE", "contract leaf CN is not an eMAID",
        replace={"contract-leaf": rebuilt("contract-leaf", lambda s: setattr(s, "subject", _subject_with(s, cn="NOT_AN_EMAID")))})
    add("bad_pcid_cn", "PROFILE", "OEM provisioning leaf CN is not a PCID",
        leaf_role="oem-provisioning-leaf",
        replace={"oem-provisioning-leaf": rebuilt("oem-provisioning-leaf", lambda s: setattr(
            s, "subject", _subject_with(s, cn="OEMProvCert")))})
    add("unknown_critical_extension", "PROFILE", "leaf has an unknown critical extension",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(extra=((unknown_extension(_UNKNOWN_OID, b"\x05\x00"), True),)))})

    def v1(tbs: object) -> None:
        tbs["version"] = "v1"  # type: ignore[index]

    def negative_serial(tbs: object) -> None:
        tbs["serial_number"] = -tbs["serial_number"].native  # type: ignore[index]

    add("v1_certificate", "PROFILE", "leaf is an X.509 v1 certificate (extensions kept)",
        replace={"contract-leaf": resign(pki.cert("contract-leaf"), leaf_issuer_key, v1)})
    add("negative_serial", "PROFILE", "leaf serial number is negative",
        replace={"contract-leaf": resign(pki.cert("contract-leaf"), leaf_issuer_key, negative_serial)})

    # --- size -------------------------------------------------------------------------------------
    base = len(pki.cert("contract-leaf"))
    limit = pki.profile("contract-leaf").max_der_size
    pad = limit - base + 8  # the extension adds >= 12 bytes of headers on top of the padding
    add("too_large", "TOO_LARGE", f"leaf DER exceeds {limit} bytes through a non-critical unknown extension",
        replace={"contract-leaf": rebuilt("contract-leaf", set_(
            extra=((unknown_extension(_UNKNOWN_OID, b"\x04" + _der_len(pad) + b"\x00" * pad), False),)))})
    return cases


def _foreign_hierarchy(pki: TestPKILike, factory: KeyFactory) -> dict[str, bytes]:
    """The MO chain re-issued under a look-alike root with different names ("...Foreign") and keys."""
    out: dict[str, bytes] = {}
    prev: tuple[x509.Name, PrivateKey] | None = None
    for role in ("mo-root", "mo-sub1", "mo-sub2", "contract-leaf"):
        spec = conformant_spec(pki, role)
        key = factory.key("foreign/" + role, pki.algorithm)
        if role != "contract-leaf":
            spec.subject = _subject_with(spec, cn=f"{role.replace('-', '').upper()}Foreign")
        spec.public_key = key.public_key()
        spec.serial = factory.serial("foreign/" + role)
        if prev is None:
            spec.issuer, spec.signing_key, spec.aki_key = spec.subject, key, None
        else:
            spec.issuer, spec.signing_key, spec.aki_key = prev[0], prev[1], prev[1].public_key()
        out[role] = build_certificate(spec)
        prev = (spec.subject, key)
    return out


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body
