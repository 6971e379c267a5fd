"""verify_chain / verify_chains / VerificationCache: path building, every rejection path, facts."""
from __future__ import annotations

import os

import dataclasses
import pickle
from datetime import timedelta, timezone

import pytest
from _pki_fixtures import NOW, VARIANTS, cached_broken, cached_pki, pki2  # noqa: F401 (fixture)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki._broken import conformant_spec
from pki._builder import KeyFactory, build_certificate, make_name
from pki.errors import ChainValidationError, PKIError, Reason, UnknownProfileError
from pki.profiles import CHAIN_PROFILES
from pki.store import TrustStore
from pki.verify import MAX_INTERMEDIATES, VerificationCache, VerifiedChain, verify_chain, verify_chains


def _store(pki):
    return TrustStore(pki.store_roots())


def _reject(leaf, inter, store, profile, at=NOW, **kw) -> ChainValidationError:
    with pytest.raises(ChainValidationError) as ei:
        verify_chain(leaf, inter, store=store, profile=profile, at=at, **kw)
    return ei.value


# --------------------------------------------------------------------------------------------------
# valid chains
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def test_every_profile_valid_chain_passes(variant):
    pki = cached_pki(*variant)
    store = _store(pki)
    names = [n for n, cp in CHAIN_PROFILES.items() if cp.iso == pki.iso]
    assert names
    for name in names:
        case = pki.chain(name)
        v = verify_chain(case.leaf, case.intermediates, store=store, profile=name, at=NOW)
        assert isinstance(v, VerifiedChain)
        cp = CHAIN_PROFILES[name]
        assert v.certificates == (case.leaf, *case.intermediates, pki.cert(f"{cp.anchor_roles[0]}-root"))
        assert v.anchor_role == cp.anchor_roles[0]
        assert v.profile == name
        assert v.leaf == case.leaf and v.sub_cas == case.intermediates
        if cp.leaf.cn_kind == "emaid":
            assert v.emaid == pki.emaid and v.pcid is None
        elif cp.leaf.cn_kind == "pcid":
            assert v.pcid == pki.pcid and v.emaid is None
        else:
            assert v.emaid is None and v.pcid is None
        # chain expiry = earliest notAfter of all four certificates
        from cryptography import x509

        ends = [x509.load_der_x509_certificate(d).not_valid_after_utc for d in v.certificates]
        assert v.not_after == min(ends)
        # every non-root carries an AIA OCSP URL in the test PKI, the root none
        assert all(urls and urls[0].startswith("http://ocsp.") for urls in v.ocsp_urls[:-1])
        assert v.ocsp_urls[-1] == ()
        assert v.subjects[0].startswith("CN=") is False  # RFC 4514 order: most specific last
        assert "CN=" in v.subjects[0]


def test_any_order_duplicates_and_extra_certificates(pki2):
    store = _store(pki2)
    c = pki2.chain("iso2-contract")
    sub2, sub1 = c.intermediates
    extras = [pki2.cert("cpo-sub1"), pki2.cert("oem-sub2"), pki2.cert("secc-leaf")]
    for inter in ([sub1, sub2], [sub2, sub2, sub1, sub1], extras + [sub1] + extras[:1] + [sub2],
                  [c.leaf, sub1, sub2], [pki2.cert("mo-root"), sub1, sub2]):
        v = verify_chain(c.leaf, inter, store=store, profile="iso2-contract", at=NOW)
        assert v.certificates == (c.leaf, sub2, sub1, pki2.cert("mo-root"))


def test_naive_and_aware_times_agree(pki2):
    store = _store(pki2)
    c = pki2.chain("iso2-secc")
    naive = NOW.astimezone(timezone.utc).replace(tzinfo=None)
    other_tz = NOW.astimezone(timezone(timedelta(hours=5)))
    for at in (naive, other_tz):
        verify_chain(c.leaf, c.intermediates, store=store, profile="iso2-secc", at=at)


def test_missing_sub_ca_is_unknown_issuer(pki2):
    c = pki2.chain("iso2-contract")
    e = _reject(c.leaf, [c.intermediates[0]], _store(pki2), "iso2-contract")
    assert e.reason is Reason.UNKNOWN_ISSUER and e.depth == 1 and "MOSubCA2" in e.subject
    e = _reject(c.leaf, [], _store(pki2), "iso2-contract")
    assert e.reason is Reason.UNKNOWN_ISSUER and e.depth == 0


def test_root_only_in_intermediates_is_untrusted(pki2):
    c = pki2.chain("iso2-contract")
    store = TrustStore({"v2g": [pki2.cert("v2g-root")]})
    e = _reject(c.leaf, list(c.intermediates) + [pki2.cert("mo-root")], store, "iso2-contract")
    assert e.reason is Reason.UNTRUSTED_ROOT and e.depth == 3 and "MORootCA" in e.subject


@pytest.mark.parametrize("profile,role,wrong", [("iso2-contract", "mo", "oem"), ("iso2-secc", "v2g", "mo"),
                                                ("iso2-oem-provisioning", "oem", "v2g"), ("iso2-cps", "v2g", "oem")])
def test_wrong_role_root(pki2, profile, role, wrong):
    c = pki2.chain(profile)
    store = TrustStore({wrong: [pki2.cert(f"{role}-root")]})
    e = _reject(c.leaf, c.intermediates, store, profile)
    assert e.reason is Reason.UNTRUSTED_ROOT and e.depth == 3


def test_unknown_profile_and_bad_arguments(pki2):
    c = pki2.chain("iso2-contract")
    with pytest.raises(UnknownProfileError) as ei:
        verify_chain(c.leaf, c.intermediates, store=_store(pki2), profile="iso2-nope", at=NOW)
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, PKIError) and "iso2-contract" in str(ei.value)
    with pytest.raises(TypeError):
        verify_chain(c.leaf, c.intermediates, store=pki2.store_roots(), profile="iso2-contract", at=NOW)
    with pytest.raises(TypeError):
        verify_chain(c.leaf, c.intermediates, store=_store(pki2), profile="iso2-contract", at="2026-01-01")
    e = _reject("not bytes", c.intermediates, _store(pki2), "iso2-contract")
    assert e.reason is Reason.MALFORMED
    e = _reject(c.leaf, c.intermediates[0], _store(pki2), "iso2-contract")  # one bytes, not a sequence
    assert e.reason is Reason.MALFORMED


def test_edition_mismatch_is_algorithm(pki2):
    c = pki2.chain("iso2-contract")
    e = _reject(c.leaf, c.intermediates, _store(pki2), "iso20-contract")
    assert e.reason is Reason.ALGORITHM and e.depth == 0


# --------------------------------------------------------------------------------------------------
# malformed input
# --------------------------------------------------------------------------------------------------
def test_every_truncation_is_malformed(pki2):
    store = _store(pki2)
    c = pki2.chain("iso2-contract")
    for n in range(0, len(c.leaf)):
        e = _reject(c.leaf[:n], c.intermediates, store, "iso2-contract")
        assert e.reason is Reason.MALFORMED and e.depth == 0, n
    sub2 = c.intermediates[0]
    for n in range(0, len(sub2), 7):
        e = _reject(c.leaf, [sub2[:n], c.intermediates[1]], store, "iso2-contract")
        assert e.reason is Reason.MALFORMED and e.depth == 1 and e.certificate == sub2[:n]


def test_trailing_garbage_and_oversized(pki2):
    store = _store(pki2)
    c = pki2.chain("iso2-contract")
    e = _reject(c.leaf + b"\x00", c.intermediates, store, "iso2-contract")
    assert e.reason is Reason.MALFORMED and "trailing" in str(e)
    huge = b"\x30\x84" + (10**6).to_bytes(4, "big") + b"\x00" * 10**6
    e = _reject(huge, c.intermediates, store, "iso2-contract")
    assert e.reason is Reason.TOO_LARGE and e.depth == 0
    e = _reject(c.leaf, [huge] + list(c.intermediates), store, "iso2-contract")
    assert e.reason is Reason.TOO_LARGE and e.depth == 1


def test_too_many_intermediates_is_bounded(pki2):
    c = pki2.chain("iso2-contract")
    many = list(c.intermediates) + [bytes([i]) + b"x" for i in range(MAX_INTERMEDIATES)]
    e = _reject(c.leaf, many, _store(pki2), "iso2-contract")
    assert e.reason is Reason.PATH_LENGTH and e.depth == -1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bit_flips_only_raise_typed_errors(pki2, data):
    store = _store(pki2)
    c = pki2.chain("iso2-contract")
    which = data.draw(st.integers(0, 2))
    certs = [c.leaf, *c.intermediates]
    buf = bytearray(certs[which])
    pos = data.draw(st.integers(0, len(buf) - 1))
    buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    certs[which] = bytes(buf)
    try:
        verify_chain(certs[0], certs[1:], store=store, profile="iso2-contract", at=NOW)
    except ChainValidationError as e:
        assert isinstance(e.reason, Reason) and isinstance(e.depth, int)
    else:  # every byte is signed, or is the (strictly checked) outer structure / signature encoding
        pytest.fail(f"bit flip at {pos} in certificate {which} was accepted")


# --------------------------------------------------------------------------------------------------
# loops and hand-built paths
# --------------------------------------------------------------------------------------------------
def test_issuer_loop_terminates(pki2):
    """Sub-CA A issued by B and B issued by A (same names as the real Sub-CAs): no endless search."""
    fac = KeyFactory(99)
    spec1 = conformant_spec(pki2, "mo-sub1")
    spec2 = conformant_spec(pki2, "mo-sub2")
    k1 = fac.key("loop1", "secp256r1")
    k2 = fac.key("loop2", "secp256r1")
    # sub1' claims to be issued by sub2's name
    a = dataclasses.replace(spec1, issuer=spec2.subject, public_key=k1.public_key(), signing_key=k2, aki_key=None)
    b = dataclasses.replace(spec2, issuer=spec1.subject, public_key=k2.public_key(), signing_key=k1, aki_key=None)
    leaf_spec = dataclasses.replace(conformant_spec(pki2, "contract-leaf"), signing_key=k2, aki_key=None)
    leaf = build_certificate(leaf_spec)
    e = _reject(leaf, [build_certificate(a), build_certificate(b)], _store(pki2), "iso2-contract")
    assert e.reason in (Reason.PATH_LENGTH, Reason.UNKNOWN_ISSUER)


def test_decoy_issuer_with_same_name_is_skipped(pki2):
    """Two certificates named like Sub-CA 2; the first one offered has the wrong key."""
    fac = KeyFactory(7)
    decoy = dataclasses.replace(conformant_spec(pki2, "mo-sub2"), public_key=fac.key("d", "secp256r1").public_key())
    c = pki2.chain("iso2-contract")
    v = verify_chain(c.leaf, [build_certificate(decoy), *c.intermediates], store=_store(pki2),
                     profile="iso2-contract", at=NOW)
    assert v.certificates[1] == c.intermediates[0]


def test_single_sub_ca_under_root(pki2):
    """Sub-CA 1 is optional: Sub-CA 2 directly under the root is a valid -2 chain."""
    spec = dataclasses.replace(conformant_spec(pki2, "mo-sub2"), issuer=make_name("MORootCA", "MO"),
                               signing_key=pki2.key("mo-root"), aki_key=pki2.key("mo-root").public_key())
    sub2 = build_certificate(spec)
    c = pki2.chain("iso2-contract")
    v = verify_chain(c.leaf, [sub2], store=_store(pki2), profile="iso2-contract", at=NOW)
    assert len(v.certificates) == 3 and v.sub_cas == (sub2,)


# --------------------------------------------------------------------------------------------------
# the cache
# --------------------------------------------------------------------------------------------------
def test_cache_warm_path_and_counts(pki2):
    store = _store(pki2)
    cache = VerificationCache()
    c = pki2.chain("iso2-contract")
    verify_chain(c.leaf, c.intermediates, store=store, profile="iso2-contract", at=NOW, cache=cache)
    assert len(cache) == 2 and cache.hits == 0
    other = pki2.issue_contract("DE-PLG-C00000002")
    # same intermediates: the memoised CA path is used (one hit), the new leaf is fully checked
    v = verify_chain(other.der, c.intermediates, store=store, profile="iso2-contract", at=NOW, cache=cache)
    assert v.emaid == "DE-PLG-C00000002" and cache.hits == 1
    assert v.certificates == (other.der, *c.intermediates, pki2.cert("mo-root"))
    # other wire order: a new path search, whose two CA links come from the link cache
    v = verify_chain(other.der, c.intermediates[::-1], store=store, profile="iso2-contract", at=NOW, cache=cache)
    assert cache.hits == 3 and v.certificates[1:3] == c.intermediates
    # a leaf that breaks its profile is still rejected on the warm path
    bad = cached_broken(2)["bad_emaid_cn"]
    e = _reject(bad.leaf, c.intermediates, store, "iso2-contract", cache=cache)
    assert e.reason is Reason.PROFILE and e.depth == 0


def test_cache_never_skips_the_leaf_signature(pki2):
    store = _store(pki2)
    cache = VerificationCache()
    c = pki2.chain("iso2-contract")
    verify_chain(c.leaf, c.intermediates, store=store, profile="iso2-contract", at=NOW, cache=cache)
    bad = cached_broken(2)["bad_signature"]
    e = _reject(bad.leaf, bad.intermediates, TrustStore(bad.roots), "iso2-contract", cache=cache)
    assert e.reason is Reason.BAD_SIGNATURE and e.depth == 0


def test_cache_respects_expiry_and_store(pki2):
    store = _store(pki2)
    cache = VerificationCache()
    c = pki2.chain("iso2-contract")
    verify_chain(c.leaf, c.intermediates, store=store, profile="iso2-contract", at=NOW, cache=cache)
    from cryptography import x509

    sub2_end = x509.load_der_x509_certificate(c.intermediates[0]).not_valid_after_utc
    leaf_end = x509.load_der_x509_certificate(c.leaf).not_valid_after_utc
    later = max(sub2_end, leaf_end) + timedelta(seconds=1)
    e = _reject(c.leaf, c.intermediates, store, "iso2-contract", at=later, cache=cache)
    assert e.reason is Reason.EXPIRED
    assert not cache.has_link(c.intermediates[0], b"", "99991231235959")
    # removing the anchor from the store defeats any cached link
    e = _reject(c.leaf, c.intermediates, TrustStore({"v2g": [pki2.cert("v2g-root")]}), "iso2-contract",
                cache=cache)
    assert e.reason is Reason.UNKNOWN_ISSUER


def test_cache_is_bounded():
    cache = VerificationCache(maxsize=3)
    for i in range(10):
        cache.add_link(bytes([i]), b"k", "20990101000000")
    assert len(cache) == 3
    assert cache.has_link(bytes([9]), b"k", "20260101000000")
    assert not cache.has_link(bytes([0]), b"k", "20260101000000")
    assert not cache.has_link(bytes([9]), b"k", "21000101000000")  # expired at that time
    with pytest.raises(ValueError):
        VerificationCache(0)


# --------------------------------------------------------------------------------------------------
# batch API and errors
# --------------------------------------------------------------------------------------------------
def test_verify_chains_batch(pki2):
    store = _store(pki2)
    c = pki2.chain("iso2-contract")
    bad = cached_broken(2)["expired"]
    items = [(c.leaf, c.intermediates), (bad.leaf, bad.intermediates),
             (pki2.chain("iso2-secc").leaf, pki2.chain("iso2-secc").intermediates, "iso2-secc")]
    out = verify_chains(items, store=store, profile="iso2-contract", at=NOW)
    assert isinstance(out[0], VerifiedChain) and out[0].emaid == pki2.emaid
    assert isinstance(out[1], ChainValidationError) and out[1].reason is Reason.EXPIRED
    assert isinstance(out[2], VerifiedChain) and out[2].profile == "iso2-secc"
    with pytest.raises(ChainValidationError):
        verify_chains(items, store=store, profile="iso2-contract", at=NOW, raise_first=True)
    with pytest.raises(UnknownProfileError):
        verify_chains([(c.leaf, c.intermediates)], store=store, at=NOW)


def test_error_attributes_and_pickle(pki2):
    case = cached_broken(2)["expired_sub_ca"]
    e = _reject(case.leaf, case.intermediates, TrustStore(case.roots), case.profile)
    assert e.reason is Reason.EXPIRED and e.depth == 2 and "MOSubCA1" in e.subject
    assert e.certificate == case.intermediates[1]
    assert "depth 2" in str(e) and "EXPIRED" in str(e)
    assert e.response_code == "FAILED_CertificateExpired"
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.reason, e2.depth, e2.subject, e2.certificate) == (e.reason, e.depth, e.subject, e.certificate)
    assert isinstance(e, ValueError) and isinstance(e, PKIError)


# --------------------------------------------------------------------------------------------------
# compiled parser == pure-Python parser
# --------------------------------------------------------------------------------------------------
_PARSED_FIELDS = ("der", "tbs", "sig_alg", "tbs_sig_alg", "signature", "version", "serial", "issuer", "subject",
                  "not_before", "not_after", "spki", "key_alg", "key_bits", "extensions", "bc_present",
                  "bc_critical", "ca", "path_len", "ku", "ku_critical")


def _outcome(fn, der):
    from pki._certinfo import CertParseError

    try:
        pc = fn(der)
    except CertParseError as e:
        return ("error", e.detail, e.offset)
    names = None
    try:
        names = pc.names()
    except CertParseError as e:
        names = ("error", e.detail, e.offset)
    return tuple(getattr(pc, f) for f in _PARSED_FIELDS) + (names,)


def _fast_or_skip(name):
    try:
        import pki._fastcert as fc
    except ImportError:
        if os.environ.get("PLUGCHARGE_REQUIRE_COMPILED") == "1":
            raise
        pytest.skip("pki._fastcert not built")
    return getattr(fc, name)


def test_compiled_parser_matches_pure_python(pki2):
    from pki import _certinfo

    fast = _fast_or_skip("parse_certificate")
    assert _certinfo.COMPILED or os.environ.get("PLUGCHARGE_PKI_PURE") == "1"
    pure = _certinfo.py_parse_certificate
    ders = [pki2.cert(r) for r in pki2.roles] + [c.leaf for c in cached_broken(2).values()]
    ders += [d for c in cached_broken(20, "ed448").values() for d in (c.leaf, *c.intermediates)]
    import random

    rnd = random.Random(1)
    variants = []
    for der in ders:
        variants.append(der)
        variants.append(der[: rnd.randrange(len(der))])
        for _ in range(6):
            b = bytearray(der)
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
            variants.append(bytes(b))
    for der in variants:
        assert _outcome(fast, der) == _outcome(pure, der)


# --------------------------------------------------------------------------------------------------
# compiled profile predicate == the rule sequence of pki.verify
# --------------------------------------------------------------------------------------------------
def test_compiled_profile_predicate_matches_rules(pki2):
    """profile_ok(pc, cp) is True exactly when every rule of _profile_rules holds, for every profile."""
    from pathlib import Path

    from pki import verify as V
    from pki._certinfo import CertParseError, py_parse_certificate
    from pki._compiled import compiled_chain

    profile_ok = _fast_or_skip("profile_ok")
    fast_parse = _fast_or_skip("parse_certificate")
    corpus = Path(__file__).resolve().parent / "corpus" / "certs"
    ders = [pki2.cert(r) for r in pki2.roles] + [f.read_bytes() for f in sorted(corpus.iterdir()) if f.is_file()]
    for iso, kind in ((2, None), (20, "ed448")):
        for c in (cached_broken(iso, kind) if kind else cached_broken(iso)).values():
            ders += [c.leaf, *c.intermediates]
    import random

    rnd = random.Random(7)
    for der in list(ders[:40]):
        for _ in range(8):
            b = bytearray(der)
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
            ders.append(bytes(b))
    profiles = []
    for name in CHAIN_PROFILES:
        ch = compiled_chain(name)
        profiles += [ch.leaf, *ch.subs, *ch.roots.values()]
    seen = {True: 0, False: 0}
    for der in dict.fromkeys(ders):
        for parse in (fast_parse, py_parse_certificate):
            try:
                pc = parse(der)
            except CertParseError:
                continue
            for cp in profiles:
                try:
                    V._profile_rules(pc, cp, 0)
                    want = True
                except ChainValidationError:
                    want = False
                got = profile_ok(pc, cp)
                if parse is fast_parse:
                    assert got == want, (cp.name, pc.subject_str)
                else:  # a pure-parsed certificate carries no facts tuple: the predicate defers (False)
                    assert pc.facts is None and got is False
                seen[got] += 1
    assert seen[True] > 20 and seen[False] > 1000


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(
    st.text(alphabet="AZaz09-_é", max_size=20),
    st.from_regex(r"[A-Za-z]{2}-?[A-Za-z0-9]{3}-?[A-Za-z0-9]{9}(-?[A-Za-z0-9])?", fullmatch=True),
))
def test_compiled_emaid_check_matches_profiles(value):
    from pki.profiles import is_valid_emaid

    emaid_ok = _fast_or_skip("emaid_ok")
    assert emaid_ok(value) == is_valid_emaid(value)
