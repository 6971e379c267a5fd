"""The committed chain-validation corpus (tests/pki_tests/corpus, see its README) and the live one."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from _pki_fixtures import NOW, VARIANTS, cached_broken

from pki.errors import ChainValidationError, Reason
from pki.store import TrustStore
from pki.verify import VerificationCache, VerifiedChain, verify_chain

CORPUS = Path(__file__).resolve().parent / "corpus"
_DOC = json.loads((CORPUS / "cases.json").read_text())
AT = datetime.fromisoformat(_DOC["at"])
CASES = _DOC["cases"]


def _load(name: str) -> bytes:
    return (CORPUS / "certs" / name).read_bytes()


def _run(case: dict, cache=None):
    store = TrustStore({role: [_load(f) for f in files] for role, files in case["roots"].items()})
    return verify_chain(_load(case["leaf"]), [_load(f) for f in case["intermediates"]], store=store,
                        profile=case["profile"], at=AT, cache=cache)


def test_corpus_is_substantial():
    expects = {c["expect"] for c in CASES}
    # every reason except REVOKED (an OCSP verdict) has at least one case
    assert expects >= {"VALID"} | {r.name for r in Reason if r is not Reason.REVOKED}
    assert len(CASES) >= 100


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_corpus_case(case):
    if case["expect"] == "VALID":
        assert isinstance(_run(case), VerifiedChain)
        return
    with pytest.raises(ChainValidationError) as ei:
        _run(case)
    assert ei.value.reason.name == case["expect"], str(ei.value)


def test_corpus_with_shared_cache_gives_same_verdicts():
    """One cache across all cases (valid and broken interleaved) must not change any verdict."""
    cache = VerificationCache(maxsize=64)
    for case in CASES * 2:
        try:
            got = "VALID" if _run(case, cache) else "?"
        except ChainValidationError as e:
            got = e.reason.name
        assert got == case["expect"], case["id"]
    assert cache.hits > 0


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def test_live_broken_chains(variant):
    """pki._broken.broken_chains as built now: each case rejected with its reason."""
    cases = cached_broken(*variant)
    assert cases
    for name, c in cases.items():
        store = TrustStore(c.roots)
        if c.reason is None:
            verify_chain(c.leaf, c.intermediates, store=store, profile=c.profile, at=NOW)
            continue
        with pytest.raises(ChainValidationError) as ei:
            verify_chain(c.leaf, c.intermediates, store=store, profile=c.profile, at=NOW)
        assert ei.value.reason.name == c.reason, f"{name}: {ei.value}"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"iso{v[0]}-{v[1]}")
def test_committed_corpus_matches_catalogue(variant):
    prefix = f"iso{variant[0]}-{variant[1]}/"
    committed = {c["id"][len(prefix):]: c["expect"] for c in CASES if c["id"].startswith(prefix)}
    live = {name: c.reason or "VALID" for name, c in cached_broken(*variant).items()}
    missing = {k: v for k, v in live.items() if committed.get(k) != v}
    assert not missing, f"regenerate the corpus (corpus/README.md): {missing}"
