"""The EV contract wallet: driver-visible behaviour, persistence, permissions, crash safety."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from _pc_crash import CrashingOps, SimulatedCrash
from _pc_testcerts import NOW, Chain, Issued, issue, make_chain
from plugcharge.pnc.wallet import (
    ChargePortLight,
    ContractWallet,
    InstallationFailed,
    InstallationStarted,
    InstallationSucceeded,
    WalletError,
    WalletEvent,
)

DAY = dt.timedelta(days=1)
EMAID = "DEABCC123456789"
PCID = "WMIVEHICLE12345678"


@pytest.fixture(scope="module")
def mo() -> Chain:
    return make_chain(EMAID, "MO", root_dc="MO")


@pytest.fixture(scope="module")
def oem() -> Chain:
    return make_chain(PCID, "OEM", root_dc="OEM")


def contract(mo: Chain, cn: str = EMAID, *, start: dt.datetime = NOW - 10 * DAY, days: int = 365) -> Issued:
    return issue(cn, "MO", mo.sub2, ca=False, not_before=start, days=days)


def install(w: ContractWallet, mo: Chain, leaf: Issued, **kw: object) -> str:
    return w.install(leaf.der, mo.sub_cas, leaf.key_pem, **kw).contract_id  # type: ignore[arg-type]


def test_fresh_wallet_is_off_and_has_nothing(tmp_path: Path) -> None:
    w = ContractWallet(tmp_path / "w")
    assert not w.enabled and w.pcid is None and w.contracts() == []
    assert w.usable_contract(NOW) is None and not w.needs_install(NOW)
    assert w.payment_option(NOW) == "ExternalPayment"
    assert stat.S_IMODE(os.stat(tmp_path / "w").st_mode) == 0o700


def test_pcid_and_enable_persist(tmp_path: Path, oem: Chain) -> None:
    w = ContractWallet(tmp_path)
    w.set_oem_provisioning(oem.leaf.der, oem.sub_cas, oem.leaf.key)
    w.set_enabled(True)
    assert w.pcid == PCID and w.needs_install(NOW)
    w2 = ContractWallet(tmp_path)
    assert w2.enabled and w2.pcid == PCID
    assert w2.oem_provisioning is not None and w2.oem_provisioning.leaf == oem.leaf.der
    assert w2.oem_provisioning.private_key.private_numbers() == oem.leaf.key.private_numbers()
    for f in tmp_path.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_install_list_use_and_reload(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    leaf = contract(mo)
    cid = install(w, mo, leaf, provider="DE-ABC Mobility")
    [info] = w.contracts()
    assert (info.emaid, info.provider, info.contract_id) == (EMAID, "DE-ABC Mobility", cid)
    assert info.not_before == leaf.cert.not_valid_before_utc and info.not_after == leaf.cert.not_valid_after_utc
    c = w.usable_contract(NOW)
    assert c is not None and c.leaf == leaf.der and list(c.sub_cas) == mo.sub_cas
    assert w.payment_option(NOW) == "Contract" and not w.needs_install(NOW)
    again = ContractWallet(tmp_path)
    assert again.usable_contract(NOW) is None  # nothing saved the switch: default (off) applies
    again.set_enabled(True)
    again = ContractWallet(tmp_path)
    c2 = again.usable_contract(NOW)
    assert c2 is not None and c2.info == info
    assert c2.private_key.private_numbers() == leaf.key.private_numbers()
    # key stored as PKCS#8 PEM
    data = json.loads((tmp_path / f"contract-{cid}.json").read_text())
    assert data["private_key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_default_provider_from_emaid(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    install(w, mo, contract(mo))
    assert w.contracts()[0].provider == "DE-ABC"


def test_newest_wins_and_older_kept(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    newer = contract(mo, "DEABCC000000002", start=NOW - 5 * DAY)
    older = contract(mo, "DEABCC000000001", start=NOW - 50 * DAY)
    install(w, mo, newer)
    install(w, mo, older)  # installing an older one keeps both, the newest is used
    assert [c.emaid for c in w.contracts()] == ["DEABCC000000002", "DEABCC000000001"]
    assert w.usable_contract(NOW).emaid == "DEABCC000000002"  # type: ignore[union-attr]
    same_start_later_end = issue("DEABCC000000003", "MO", mo.sub2, ca=False, not_before=NOW - 5 * DAY, days=400)
    install(w, mo, same_start_later_end)
    assert w.usable_contract(NOW).emaid == "DEABCC000000003"  # type: ignore[union-attr]
    # before the newest becomes valid the previous one is used
    assert w.usable_contract(NOW - 20 * DAY).emaid == "DEABCC000000001"  # type: ignore[union-attr]


def test_expiry_update_and_fallback(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    install(w, mo, contract(mo, start=NOW - 10 * DAY, days=30))  # ends NOW + 20 days
    assert not w.needs_update(NOW)
    assert w.needs_update(NOW + 7 * DAY)
    assert w.needs_update(NOW, margin=25 * DAY)
    assert w.usable_contract(NOW + 21 * DAY) is None and w.needs_install(NOW + 21 * DAY)
    assert w.payment_option(NOW + 21 * DAY) == "ExternalPayment"


def test_sub_ca_expiry_limits_usability(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    install(w, mo, contract(mo, days=5000))
    c = w.usable_contract(NOW)
    assert c is not None and c.chain_not_after == mo.sub2.cert.not_valid_after_utc
    assert w.usable_contract(mo.sub2.cert.not_valid_after_utc + DAY) is None


def test_disable_stops_use_delete_and_wipe(tmp_path: Path, mo: Chain, oem: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    w.set_oem_provisioning(oem.leaf.der, oem.sub_cas, oem.leaf.key_pem)
    a = install(w, mo, contract(mo, "DEABCC000000001"))
    b = install(w, mo, contract(mo, "DEABCC000000002", start=NOW - 2 * DAY))
    w.set_enabled(False)
    assert w.usable_contract(NOW) is None and not w.needs_install(NOW) and len(w.contracts()) == 2
    w.set_enabled(True)
    w.delete(b)
    assert w.usable_contract(NOW).info.contract_id == a  # type: ignore[union-attr]
    with pytest.raises(WalletError):
        w.delete(b)
    w.wipe()
    assert w.contracts() == [] and ContractWallet(tmp_path).contracts() == []
    assert ContractWallet(tmp_path).pcid == PCID  # the workshop wipe keeps the OEM credentials
    # repeating activation installs it again
    install(w, mo, contract(mo, "DEABCC000000009"))
    assert ContractWallet(tmp_path).usable_contract(NOW).emaid == "DEABCC000000009"  # type: ignore[union-attr]


def test_install_same_twice_is_idempotent(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    leaf = contract(mo)
    assert install(w, mo, leaf) == install(w, mo, leaf)
    assert len(w.contracts()) == 1


def test_install_rejects_bad_input(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    leaf = contract(mo)
    other = contract(mo)
    with pytest.raises(WalletError, match="does not match"):
        w.install(leaf.der, mo.sub_cas, other.key_pem)
    with pytest.raises(WalletError, match="eMAID"):
        w.install(leaf.der, mo.sub_cas, leaf.key_pem, emaid="DEXYZ1234567890")
    assert w.install(leaf.der, mo.sub_cas, leaf.key_pem, emaid="de-abc-c12345678-9").emaid == EMAID
    with pytest.raises(WalletError, match="DER"):
        w.install(b"\x30\x03\x02\x01\x01", mo.sub_cas, leaf.key_pem)
    with pytest.raises(WalletError, match="Sub-CA"):
        w.install(other.der, [b"junk"], other.key_pem)
    with pytest.raises(WalletError) as ei:
        w.install(other.der, mo.sub_cas, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert "AAAA" not in str(ei.value)
    assert len(w.contracts()) == 1


def test_no_private_key_in_repr_or_logs(tmp_path: Path, mo: Chain, oem: Chain, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = ContractWallet(tmp_path, enabled_default=True)
    w.set_oem_provisioning(oem.leaf.der, oem.sub_cas, oem.leaf.key)
    leaf = contract(mo)
    install(w, mo, leaf)
    c = w.usable_contract(NOW)
    secrets = [leaf.key_pem.decode().split("\n")[1], str(leaf.key.private_numbers().private_value),
               oem.leaf.key_pem.decode().split("\n")[1]]
    texts = [repr(w), repr(c), repr(w.oem_provisioning), repr(w.contracts()), caplog.text]
    for t in texts:
        for s in secrets:
            assert s not in t


def test_damaged_file_is_skipped_and_reported(tmp_path: Path, mo: Chain) -> None:
    w = ContractWallet(tmp_path, enabled_default=True)
    good = install(w, mo, contract(mo, "DEABCC000000001"))
    bad = install(w, mo, contract(mo, "DEABCC000000002"))
    (tmp_path / f"contract-{bad}.json").write_text("{not json")
    (tmp_path / "settings.json").write_bytes(b"\xff\xfe")
    w2 = ContractWallet(tmp_path)
    assert [c.contract_id for c in w2.contracts()] == [good]
    assert {p[0] for p in w2.problems} == {f"contract-{bad}.json", "settings.json"}


def test_permissions_are_tightened(tmp_path: Path) -> None:
    d = tmp_path / "loose"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    ContractWallet(d)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


# ------------------------------------------------------------------------------------------
# crash safety: kill between any two file-system steps
# ------------------------------------------------------------------------------------------
def _scenario(w: ContractWallet, mo: Chain, leaves: list[Issued], oem: Chain) -> None:
    w.set_enabled(True)
    w.set_oem_provisioning(oem.leaf.der, oem.sub_cas, oem.leaf.key)
    install(w, mo, leaves[0])
    install(w, mo, leaves[1])
    w.delete(w.contracts()[-1].contract_id)  # the older one
    install(w, mo, leaves[2])
    w.set_enabled(False)
    w.wipe()


def test_crash_between_any_two_writes(tmp_path: Path, mo: Chain, oem: Chain) -> None:
    leaves = [contract(mo, f"DEABCC00000000{i}", start=NOW - (30 - i) * DAY) for i in range(3)]
    # count the steps of the full scenario
    counter = CrashingOps(10**9)
    _scenario(ContractWallet(tmp_path / "count", file_ops=counter), mo, leaves, oem)
    total = counter.steps
    assert total >= 30
    for budget in range(total + 1):
        d = tmp_path / f"crash{budget}"
        ops = CrashingOps(budget)
        w = ContractWallet(d, file_ops=ops)
        committed: list[set[str]] = []  # contract sets that may be on disk after the crash
        try:
            _scenario_tracked(w, mo, leaves, oem, committed)
            crashed = False
        except SimulatedCrash:
            crashed = True
        assert crashed == (budget < total)
        # reopen as after a reboot
        r = ContractWallet(d)
        assert r.problems == []
        assert not [f for f in os.listdir(d) if f.endswith(".tmp")]
        on_disk = {c.contract_id for c in r.contracts()}
        # every contract that was durably installed before the crash is still there, intact
        assert on_disk in committed[-2:], (budget, on_disk, committed[-2:])
        for c in r.iter_contracts():
            assert c.valid_at(NOW) and c.private_key.public_key().public_numbers() == \
                [lf for lf in leaves if lf.der == c.leaf][0].key.public_key().public_numbers()
        if r.pcid is not None:
            assert r.pcid == PCID


def _scenario_tracked(w: ContractWallet, mo: Chain, leaves: list[Issued], oem: Chain, states: list[set[str]]) -> None:
    """The scenario, recording the contract set before and after each operation."""
    def snap() -> None:
        states.append({c.contract_id for c in w.contracts()})

    snap()
    w.set_enabled(True)
    w.set_oem_provisioning(oem.leaf.der, oem.sub_cas, oem.leaf.key)
    ids = []
    for leaf in leaves[:2]:
        states.append({c.contract_id for c in w.contracts()} | {_cid(leaf)})  # state if this install lands
        ids.append(install(w, mo, leaf))
        snap()
    states.append({c.contract_id for c in w.contracts()} - {ids[0]})
    w.delete(ids[0])
    snap()
    states.append({c.contract_id for c in w.contracts()} | {_cid(leaves[2])})
    install(w, mo, leaves[2])
    snap()
    w.set_enabled(False)
    for c in list(w.contracts()):
        states.append({x.contract_id for x in w.contracts()} - {c.contract_id})
        w.delete(c.contract_id)
        snap()


def _cid(leaf: Issued) -> str:
    from plugcharge.pnc.wallet import contract_id_of
    return contract_id_of(leaf.der)


def test_events_for_display_and_light() -> None:
    events: list[WalletEvent] = [InstallationStarted(), InstallationSucceeded(EMAID), InstallationFailed("FAILED_NoCertificateAvailable")]
    assert [e.light for e in events] == [ChargePortLight.INSTALLING, ChargePortLight.SUCCESS, ChargePortLight.FAILURE]
    assert EMAID in events[1].display_text and "FAILED_NoCertificateAvailable" in events[2].display_text
    assert "Updating" in InstallationStarted("update").display_text
