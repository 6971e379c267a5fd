"""The wallet with ISO 15118-20 contracts (secp521r1 and Ed448) beside -2 ones: per-edition choice
(the newest valid contract of the edition wins), the -20 OEM provisioning credentials and the vehicle
certificate, and crash safety with -20 contracts (an interrupted write never loses an installed
contract or its key)."""
from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from _pc_crash import CrashingOps, SimulatedCrash
from pki.issue import TestPKI, issue_test_pki
from plugcharge.pnc.wallet import ContractWallet, WalletError, contract_id_of, edition_of_key

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


@lru_cache(maxsize=None)
def pki(iso: int, algorithm: str | None = None) -> TestPKI:
    return issue_test_pki(iso, seed=2020 + iso, now=NOW, algorithm=algorithm)


def contract(p: TestPKI, emaid: str, age_days: int = 0, key: object = None) -> tuple[bytes, tuple[bytes, ...], object]:
    """A fresh contract of ``p``'s edition, notBefore ``age_days`` + 1 days before NOW."""
    issued = p.issue_contract(emaid, now=NOW - age_days * DAY, key=key)  # type: ignore[arg-type]
    return issued.der, (p.cert("mo-sub2"), p.cert("mo-sub1")), issued.key


def test_edition_follows_the_key() -> None:
    assert edition_of_key(ec.generate_private_key(ec.SECP256R1())) == 2
    assert edition_of_key(ec.generate_private_key(ec.SECP521R1())) == 20
    assert edition_of_key(ed448.Ed448PrivateKey.generate()) == 20
    with pytest.raises(WalletError, match="secp384r1"):
        edition_of_key(ec.generate_private_key(ec.SECP384R1()))


def test_editions_side_by_side_newest_wins_per_edition(tmp_path: Path) -> None:
    w = ContractWallet(tmp_path / "w", enabled_default=True)
    old2 = contract(pki(2), "DEPLGC000000101", age_days=20)
    new2 = contract(pki(2), "DEPLGC000000102", age_days=5)
    p521 = contract(pki(20), "DEPLGC000000201", age_days=10)
    ed = contract(pki(20, "ed448"), "DEPLGC000000202", age_days=3, key=ed448.Ed448PrivateKey.generate())
    older20 = contract(pki(20), "DEPLGC000000203", age_days=30)
    for leaf, subs, key in (old2, p521, ed, new2, older20):
        w.install(leaf, subs, key)  # type: ignore[arg-type]
    assert [c.iso for c in w.contracts()].count(20) == 3 and len(w.contracts(2)) == 2
    assert [c.emaid for c in w.contracts(20)] == ["DEPLGC000000202", "DEPLGC000000201", "DEPLGC000000203"]
    assert w.usable_contract(NOW).emaid == "DEPLGC000000102"  # type: ignore[union-attr]
    got = w.usable_contract(NOW, iso=20)
    assert got is not None and got.emaid == "DEPLGC000000202" and got.iso == 20
    assert isinstance(got.private_key, ed448.Ed448PrivateKey)
    # reload: editions and keys come back from disk
    r = ContractWallet(tmp_path / "w", enabled_default=True)
    assert r.problems == [] and r.usable_contract(NOW, 20).leaf == ed[0]  # type: ignore[union-attr]
    c = r.get(contract_id_of(p521[0]))
    assert c.iso == 20 and c.private_key.public_key().public_numbers() == p521[2].public_key().public_numbers()  # type: ignore[attr-defined]
    # the newest -20 contract deleted: the next newest valid one wins; the -2 choice is untouched
    r.delete(contract_id_of(ed[0]))
    assert r.usable_contract(NOW, 20).emaid == "DEPLGC000000201"  # type: ignore[union-attr]
    assert r.usable_contract(NOW, 2).emaid == "DEPLGC000000102"  # type: ignore[union-attr]
    assert r.payment_option(NOW, iso=20) == "Contract" and not r.needs_install(NOW, iso=20)
    # past every -20 chain's end (the MO Sub-CA 2 of the test PKI lives 1460 days): -20 needs an install
    later = NOW + 1500 * DAY
    assert r.usable_contract(later, 20) is None and r.needs_install(later, iso=20)
    assert r.needs_update(NOW + 710 * DAY, iso=20) and not r.needs_update(NOW, iso=20)
    with pytest.raises(WalletError):
        r.usable_contract(NOW, iso=3)


def test_wrong_key_or_certificate_is_refused(tmp_path: Path) -> None:
    w = ContractWallet(tmp_path)
    leaf, subs, _ = contract(pki(20), "DEPLGC000000301")
    with pytest.raises(WalletError, match="does not match"):
        w.install(leaf, subs, ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(WalletError, match="does not match"):
        w.install(leaf, subs, ed448.Ed448PrivateKey.generate())
    assert w.contracts() == [] and not [f for f in os.listdir(tmp_path) if f.startswith("contract-")]


def test_oem_provisioning_20_and_vehicle_certificate_persist(tmp_path: Path) -> None:
    p2, p20 = pki(2), pki(20)
    w = ContractWallet(tmp_path)
    w.set_oem_provisioning(p2.cert("oem-provisioning-leaf"), (p2.cert("oem-sub2"),), p2.key("oem-provisioning-leaf"))
    subs = (p20.cert("oem-sub2"), p20.cert("oem-sub1"))
    w.set_oem_provisioning(p20.cert("oem-provisioning-leaf"), subs, p20.key("oem-provisioning-leaf"), iso=20)
    w.set_vehicle_certificate(p20.cert("vehicle-leaf"), subs, p20.key("vehicle-leaf"))
    r = ContractWallet(tmp_path)
    assert r.problems == []
    oem20 = r.oem_provisioning_for(20)
    assert oem20 is not None and oem20.leaf == p20.cert("oem-provisioning-leaf") and oem20.sub_cas == subs
    assert oem20.iso == 20 and oem20.pcid == p20.pcid
    assert r.oem_provisioning_for(2) is r.oem_provisioning and r.oem_provisioning.iso == 2  # type: ignore[union-attr]
    v = r.vehicle_certificate
    assert v is not None and v.tls_chain == (p20.cert("vehicle-leaf"), *subs)
    assert v.private_key.public_key().public_numbers() == p20.key("vehicle-leaf").public_key().public_numbers()  # type: ignore[union-attr]
    assert "private" not in repr(v) and "BEGIN" not in repr(oem20)
    # a -2 key is no -20 credential; a key of another certificate is no credential at all
    with pytest.raises(WalletError, match="ISO 15118-20"):
        r.set_oem_provisioning(p2.cert("oem-provisioning-leaf"), (), p2.key("oem-provisioning-leaf"), iso=20)
    with pytest.raises(WalletError, match="does not match"):
        r.set_vehicle_certificate(p20.cert("vehicle-leaf"), subs, p20.key("oem-provisioning-leaf"))
    with pytest.raises(WalletError, match="iso"):
        r.set_oem_provisioning(p20.cert("oem-provisioning-leaf"), subs, p20.key("oem-provisioning-leaf"), iso=15)
    assert ContractWallet(tmp_path).vehicle_certificate == v  # the refused writes changed nothing
    # a -20-only vehicle reports the -20 PCID
    only20 = ContractWallet(tmp_path / "only20")
    only20.set_oem_provisioning(p20.cert("oem-provisioning-leaf"), subs, p20.key("oem-provisioning-leaf"), iso=20)
    assert only20.pcid == p20.pcid and only20.oem_provisioning is None


def test_damaged_vehicle_file_is_reported_not_fatal(tmp_path: Path) -> None:
    p20 = pki(20)
    w = ContractWallet(tmp_path)
    w.set_vehicle_certificate(p20.cert("vehicle-leaf"), (), p20.key("vehicle-leaf"))
    (tmp_path / "vehicle-20.json").write_text('{"format": 1, "leaf": "AAAA"}')
    r = ContractWallet(tmp_path)
    assert r.vehicle_certificate is None and [name for name, _ in r.problems] == ["vehicle-20.json"]


# ------------------------------------------------------------------------------------------
# crash safety with -20 contracts: kill between any two file-system steps
# ------------------------------------------------------------------------------------------
def _leaves() -> list[tuple[bytes, tuple[bytes, ...], object]]:
    return [contract(pki(2), "DEPLGC000000401", age_days=9),
            contract(pki(20), "DEPLGC000000402", age_days=8),
            contract(pki(20, "ed448"), "DEPLGC000000403", age_days=7, key=ed448.Ed448PrivateKey.generate()),
            contract(pki(20), "DEPLGC000000404", age_days=6)]


def _scenario(w: ContractWallet, leaves: list, states: list[set[str]]) -> None:
    """Install both editions, set the -20 credentials, replace a -20 contract, wipe; ``states``
    records every contract set that may be on disk (before and after each operation)."""
    def snap() -> None:
        states.append({c.contract_id for c in w.contracts()})

    p20 = pki(20)
    snap()
    w.set_enabled(True)
    for leaf, subs, key in leaves[:3]:
        states.append({c.contract_id for c in w.contracts()} | {contract_id_of(leaf)})
        w.install(leaf, subs, key)  # type: ignore[arg-type]
        snap()
    w.set_oem_provisioning(p20.cert("oem-provisioning-leaf"), (p20.cert("oem-sub2"),), p20.key("oem-provisioning-leaf"), iso=20)
    w.set_vehicle_certificate(p20.cert("vehicle-leaf"), (p20.cert("oem-sub2"),), p20.key("vehicle-leaf"))
    old = contract_id_of(leaves[1][0])
    states.append({c.contract_id for c in w.contracts()} - {old})
    w.delete(old)
    snap()
    leaf, subs, key = leaves[3]
    states.append({c.contract_id for c in w.contracts()} | {contract_id_of(leaf)})
    w.install(leaf, subs, key)  # type: ignore[arg-type]
    snap()
    for c in list(w.contracts()):
        states.append({x.contract_id for x in w.contracts()} - {c.contract_id})
        w.delete(c.contract_id)
        snap()


def test_crash_between_any_two_writes_with_iso20_contracts(tmp_path: Path) -> None:
    leaves = _leaves()
    keys = {contract_id_of(leaf): key for leaf, _, key in leaves}
    counter = CrashingOps(10**9)
    _scenario(ContractWallet(tmp_path / "count", file_ops=counter), leaves, [])
    total = counter.steps
    assert total >= 40
    p20 = pki(20)
    for budget in range(total + 1):
        d = tmp_path / f"crash{budget}"
        states: list[set[str]] = []
        try:
            _scenario(ContractWallet(d, file_ops=CrashingOps(budget)), leaves, states)
            crashed = False
        except SimulatedCrash:
            crashed = True
        assert crashed == (budget < total)
        r = ContractWallet(d)  # as after a reboot
        assert r.problems == [] and not [f for f in os.listdir(d) if f.endswith(".tmp")]
        on_disk = {c.contract_id for c in r.contracts()}
        assert on_disk in states[-2:], (budget, on_disk, states[-2:])
        for c in r.iter_contracts():  # every contract on disk is whole: chain and the very same key
            want = keys[c.info.contract_id]
            assert c.private_key.public_key().public_bytes_raw() == want.public_key().public_bytes_raw() \
                if isinstance(want, ed448.Ed448PrivateKey) else \
                c.private_key.public_key().public_numbers() == want.public_key().public_numbers()  # type: ignore[union-attr]
            assert c.iso == edition_of_key(want)
        # the -20 credentials are either absent or complete and right
        oem = r.oem_provisioning_for(20)
        assert oem is None or oem.leaf == p20.cert("oem-provisioning-leaf")
        assert r.vehicle_certificate is None or r.vehicle_certificate.leaf == p20.cert("vehicle-leaf")
        # the -20 choice among what survived: the newest valid -20 contract
        survivors20 = [c for c in r.iter_contracts(20)]
        usable = ContractWallet(d, enabled_default=True).usable_contract(NOW, 20)
        assert (usable is None) == (not survivors20)
        if survivors20:
            assert usable is not None and usable.info.contract_id == survivors20[0].info.contract_id
