"""``plugcharge init`` and the data directory the commands share: what it creates (modes included), that
it is idempotent, that ``demo`` runs on a directory ``init`` made and ``init`` completes one the demo
made (its wallet's contract kept), the charger's credential files and their errors, and the charger's
and the EV's setup errors (exit code 2, no network needed).  The commands on an interface:
``test_pc_field_commands.py``."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from _pc_fixtures import fake_codecs
from plugcharge.cli import main
from plugcharge.cli.datadir import CredentialsError, DataDir, load_secc_credentials, load_v2g_roots
from plugcharge.cli.demo import DemoOptions, load_pki, run_demo
from plugcharge.pnc.wallet import ContractWallet


def cli(*argv: str) -> tuple[int, str, str]:
    out: list[str] = []
    err: list[str] = []
    code = main(list(argv), out=out.append, err=err.append)
    return code, "\n".join(out), "\n".join(err)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_the_layout(tmp_path):
    d = tmp_path / "d"
    code, out, err = cli("init", "--data-dir", str(d), "--seed", "7")
    assert code == 0, err
    dd = DataDir(d)
    pki, pki20 = load_pki(dd.pki), load_pki(dd.pki20)
    assert (pki.iso, pki20.iso) == (2, 20)
    wallet = ContractWallet(dd.wallet)
    assert wallet.pcid == pki.pcid and wallet.enabled and wallet.contracts() == []
    assert wallet.oem_provisioning_for(20) is not None and wallet.vehicle_certificate is not None
    assert wallet.vehicle_certificate.leaf == pki20.cert("vehicle-leaf")
    assert f"PCID {wallet.pcid}" in out and f"plugcharge csms activate {wallet.pcid}" in out
    # the charger's files: the chain leaf first without the root, the key private, both editions
    for iso, p in ((2, pki), (20, pki20)):
        chain, key = load_secc_credentials(dd.secc_chain(iso), dd.secc_key(iso))
        assert chain == [p.cert("secc-leaf"), p.cert("cpo-sub2"), p.cert("cpo-sub1")]
        assert _mode(dd.secc_key(iso)) == 0o600
        assert x509.load_der_x509_certificate(chain[0]).subject.get_attributes_for_oid(
            x509.oid.NameOID.DOMAIN_COMPONENT)[0].value == "CPO"
    assert load_v2g_roots([dd.v2g_roots]) == [pki.cert("v2g-root"), pki20.cert("v2g-root")]
    assert _mode(dd.wallet) == 0o700
    # again: everything is kept, nothing rewritten
    stamp = dd.secc_key().stat().st_mtime_ns
    code, out2, _ = cli("init", "--data-dir", str(d))
    assert code == 0 and "wrote" not in out2 and dd.secc_key().stat().st_mtime_ns == stamp
    assert ContractWallet(dd.wallet).pcid == wallet.pcid and load_pki(dd.pki).cert("v2g-root") == pki.cert("v2g-root")
    code, out3, _ = cli("pcid", "--data-dir", str(d))
    assert out3 == wallet.pcid


def test_no_iso20(tmp_path):
    code, out, _ = cli("init", "--data-dir", str(tmp_path / "d"), "--no-iso20")
    assert code == 0 and not DataDir(tmp_path / "d").pki20.exists() and "secc20" not in out
    assert ContractWallet(DataDir(tmp_path / "d").wallet).vehicle_certificate is None


def test_the_demo_and_init_share_the_layout(tmp_path):
    """The demo runs on a directory init made (same PKI, same wallet); init completes a directory the
    demo made and keeps the contract the demo installed."""
    made = tmp_path / "made-by-init"
    assert cli("init", "--data-dir", str(made))[0] == 0
    pcid = ContractWallet(DataDir(made).wallet).pcid
    lines: list[str] = []
    summary = run_demo(DemoOptions(data_dir=made, codecs=fake_codecs, loops=1, loop_interval=0.0, timeout=30),
                       lines.append)
    assert summary.completed and summary.installed, lines
    assert any("test PKI loaded from" in line for line in lines) and ContractWallet(DataDir(made).wallet).pcid == pcid

    by_demo = tmp_path / "made-by-demo"
    summary = run_demo(DemoOptions(data_dir=by_demo, codecs=fake_codecs, loops=1, loop_interval=0.0, timeout=30),
                       lambda line: None)
    assert summary.installed
    contracts = ContractWallet(DataDir(by_demo).wallet).contracts()
    code, out, err = cli("init", "--data-dir", str(by_demo))
    assert code == 0, err
    assert ContractWallet(DataDir(by_demo).wallet).contracts() == contracts and "1 contract(s)" in out
    assert DataDir(by_demo).pki20.is_dir() and DataDir(by_demo).secc_chain().exists()


def test_credential_files_errors_name_the_file(tmp_path):
    dd = DataDir(tmp_path / "d")
    assert cli("init", "--data-dir", str(dd.root), "--no-iso20")[0] == 0
    with pytest.raises(CredentialsError, match="does not exist"):
        load_secc_credentials(tmp_path / "nope.pem", dd.secc_key())
    with pytest.raises(CredentialsError, match=r"nope-key\.pem does not exist"):
        load_secc_credentials(dd.secc_chain(), tmp_path / "nope-key.pem")
    other = tmp_path / "other.pem"
    from cryptography.hazmat.primitives.asymmetric import ec

    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(CredentialsError, match="is not the key of the first certificate") as info:
        load_secc_credentials(dd.secc_chain(), other)
    assert "PRIVATE" not in str(info.value)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(CredentialsError, match="not an unencrypted PEM private key"):
        load_secc_credentials(dd.secc_chain(), garbage)
    with pytest.raises(CredentialsError, match="holds no PEM certificate"):
        load_v2g_roots([garbage])


def test_charger_and_ev_setup_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    code, _, err = cli("charger", "--interface", "lo", "--data-dir", str(empty))
    assert code == 2 and "run 'plugcharge init" in err
    code, _, err = cli("ev", "--interface", "lo", "--data-dir", str(empty))
    assert code == 2 and "plugcharge init" in err
    d = tmp_path / "d"
    assert cli("init", "--data-dir", str(d), "--no-iso20")[0] == 0
    code, _, err = cli("charger", "--interface", "lo", "--data-dir", str(d), "--protocol", "iso20")
    assert code == 2 and "no ISO 15118-20 certificate" in err and "--cert-chain20" in err
    code, _, err = cli("charger", "--interface", "lo", "--data-dir", str(d), "--key", str(tmp_path / "k.pem"))
    assert code == 2 and "k.pem does not exist" in err
    with pytest.raises(SystemExit) as exc:
        cli("charger", "--interface", "lo", "--data-dir", str(d), "--max-per-peer", "0")
    assert exc.value.code == 2
    assert "argument --max-per-peer: must be 1 or more, not 0" in capsys.readouterr().err
    code, _, err = cli("ev", "--interface", "no-such-if0", "--data-dir", str(d), "--sdp-requests", "1")
    assert code == 2 and "cannot send SDP on no-such-if0" in err
