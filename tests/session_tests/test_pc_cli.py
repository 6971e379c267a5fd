"""The ``plugcharge`` command line: ``demo`` as a subprocess (``python -m plugcharge`` and the console
script), ``wallet list|delete|wipe|enable|disable`` and ``pcid`` in-process."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _pc_fixtures import fake_codecs, real_codec_status
from plugcharge.core.codec import NS_ISO2
from plugcharge.cli import main
from plugcharge.cli.demo import DEMO_EMAID, DemoOptions, run_demo
from plugcharge.pnc.wallet import ContractWallet

REAL = real_codec_status()


def _real_installs() -> bool:
    if REAL is not None:
        return False
    import exi

    try:
        exi.get_codec(NS_ISO2).encode_fragment({"eMAID": {"Id": "id4", "value": DEMO_EMAID}})
        return True
    except ValueError:
        return False


def cli(*argv: str) -> tuple[int, str, str]:
    out: list[str] = []
    err: list[str] = []
    code = main(list(argv), out=out.append, err=err.append)
    return code, "\n".join(out), "\n".join(err)


def run(*argv: str, cwd: Path, exe: tuple[str, ...] = (sys.executable, "-m", "plugcharge")) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PLUGCHARGE_DATA_DIR", None)
    if env.get("PYTHONPATH"):  # the child runs in another directory: keep relative entries working
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    return subprocess.run([*exe, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def installed(tmp_path) -> Path:
    """A data directory whose wallet holds one contract (installed by an in-process demo run)."""
    s = run_demo(DemoOptions(data_dir=tmp_path / "d", codecs=fake_codecs, loops=1, loop_interval=0.0, timeout=30),
                 lambda line: None)
    assert s.installed
    return tmp_path / "d"


# ---------------------------------------------------------------- subprocess
@pytest.mark.skipif(REAL is not None, reason=f"exi codec unusable: {REAL}")
def test_demo_subprocess_completes_with_default_data_dir(tmp_path):
    p = run("demo", "--loops", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "completed (finished)" in p.stdout and "TLSv1.2" in p.stdout and "SDP: charger at" in p.stdout
    assert "DC_extended" in p.stdout
    assert (tmp_path / "plugcharge-demo" / "pki" / "manifest.json").is_file()
    assert (tmp_path / "plugcharge-demo" / "wallet").is_dir()


@pytest.mark.skipif(not _real_installs(), reason="the exi codec cannot yet encode the CertificateInstallationRes fragments")
def test_demo_subprocess_installs_then_reuses(tmp_path):
    data = str(tmp_path / "dd")
    p1 = run("demo", "--data-dir", data, "--loops", "2", cwd=tmp_path)
    assert p1.returncode == 0 and "installed over the cable in this session" in p1.stdout, p1.stdout + p1.stderr
    p2 = run("demo", "--data-dir", data, "--loops", "2", "--ac", cwd=tmp_path)
    assert p2.returncode == 0 and "reused from the wallet" in p2.stdout, p2.stdout + p2.stderr
    assert "Get15118EVCertificate" not in p2.stdout
    p3 = run("wallet", "list", "--data-dir", data, cwd=tmp_path)
    assert DEMO_EMAID in p3.stdout and "in use" in p3.stdout


@pytest.mark.skipif(REAL is not None, reason=f"exi codec unusable: {REAL}")
def test_demo_subprocess_eim_and_fallback(tmp_path):
    data = str(tmp_path / "dd")
    p = run("demo", "--data-dir", data, "--eim", "--loops", "1", cwd=tmp_path)
    assert p.returncode == 0 and "ExternalPayment (RFID card)" in p.stdout, p.stdout + p.stderr
    p = run("demo", "--data-dir", data, "--fail-installation", "--loops", "1", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "after the Plug & Charge fallback" in p.stdout and "2 V2G communication sessions" in p.stdout


def test_console_script_and_module_help(tmp_path):
    p = run("--help", cwd=tmp_path)
    assert p.returncode == 0 and "demo" in p.stdout and "wallet" in p.stdout and "pcid" in p.stdout
    p = run("demo", "--help", cwd=tmp_path)
    assert "plugcharge-demo" in p.stdout and "PLUGCHARGE_DATA_DIR" in p.stdout
    script = shutil.which("plugcharge", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("package not installed: no 'plugcharge' console script next to the interpreter")
    p = run("--help", cwd=tmp_path, exe=(script,))
    assert p.returncode == 0 and "demo" in p.stdout


def test_parser_defaults_and_data_dir_position():
    from plugcharge.cli import build_parser

    p = build_parser()
    assert p.parse_args(["demo"]).ac is False and p.parse_args(["demo", "--ac"]).ac is True
    assert p.parse_args(["demo", "--dc"]).ac is False
    assert str(p.parse_args(["wallet", "--data-dir", "X", "list"]).data_dir) == "X"
    assert str(p.parse_args(["wallet", "delete", "ab", "--data-dir", "Y"]).data_dir) == "Y"
    assert getattr(p.parse_args(["wallet", "list"]), "data_dir", None) is None


def test_demo_iso20_refuses_what_it_cannot_do(tmp_path):
    # -20 through a CSMS runs now (OCPP 2.1, test_pc_csms20.py): one that is down means EIM
    code, out, err = cli("demo", "--iso", "20", "--csms", "ws://127.0.0.1:9/x", "--loops", "1",
                         "--data-dir", str(tmp_path / "d"))
    assert code == 0 and "CSMS at ws://127.0.0.1:9/x not reachable" in out, err
    code, _, err = cli("demo", "--bpt", "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "--bpt needs --protocol iso20" in err


def test_demo_protocol_option(tmp_path):
    """``--protocol`` names what the charger offers; one not implemented yet (ISO 15118-20 until its
    sessions are registered) is refused with one sentence and a non-zero exit, like the old ``--iso 20``."""
    from plugcharge.cli import build_parser
    from plugcharge.cli.demo import implemented_protocols

    parser = build_parser()
    assert parser.parse_args(["demo"]).protocol is None and parser.parse_args(["demo", "--protocol", "din"]).protocol == "din"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--protocol", "iso15118-2"])
    if "iso20" in implemented_protocols():
        pytest.skip("ISO 15118-20 is implemented: the demo runs it (test_pc_demo)")
    for argv in (("--protocol", "iso20"), ("--iso", "20")):
        code, out, err = cli("demo", *argv, "--data-dir", str(tmp_path / "d"))
        assert code != 0 and out == ""
        assert err == ("plugcharge demo: error: ISO 15118-20 sessions are not implemented in this version of plugcharge "
                       "(use --protocol iso2 or --protocol din)")


@pytest.mark.skipif(REAL is not None, reason=f"exi codec unusable: {REAL}")
def test_demo_subprocess_din(tmp_path):
    p = run("demo", "--protocol", "din", "--loops", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "protocol agreed: DIN SPEC 70121" in p.stdout and "  protocol    DIN SPEC 70121" in p.stdout
    assert "security NO_TLS" in p.stdout and "TLSv1.2" not in p.stdout
    assert "This charger does not support Plug & Charge" in p.stdout and "completed (finished)" in p.stdout


# ---------------------------------------------------------------- wallet / pcid (in-process)
def test_wallet_commands_without_wallet(tmp_path):
    for argv in (("wallet", "list"), ("pcid",)):
        code, _, err = cli(*argv, "--data-dir", str(tmp_path / "none"))
        assert code == 1 and "no wallet" in err
    code, _, err = cli("wallet", "--data-dir", str(tmp_path))
    assert code == 2 and "give an action" in err


def test_wallet_list_pcid_delete(installed):
    d = str(installed)
    code, out, _ = cli("pcid", "--data-dir", d)
    assert code == 0 and out == ContractWallet(installed / "wallet").pcid
    code, out, _ = cli("wallet", "list", "--data-dir", d)
    assert code == 0 and "Plug & Charge: on" in out and DEMO_EMAID in out and "in use" in out
    cid = ContractWallet(installed / "wallet").contracts()[0].contract_id
    code, _, err = cli("wallet", "delete", "nope", "--data-dir", d)
    assert code == 1 and "no contract" in err
    code, out, _ = cli("wallet", "delete", cid, "--data-dir", d)
    assert code == 0 and DEMO_EMAID in out
    assert ContractWallet(installed / "wallet").contracts() == []
    code, out, _ = cli("wallet", "list", "--data-dir", d)
    assert "no contracts installed" in out


def test_wallet_wipe_enable_disable(installed, monkeypatch):
    monkeypatch.setenv("PLUGCHARGE_DATA_DIR", str(installed))  # default data dir from the environment
    code, out, _ = cli("wallet", "disable")
    assert code == 0 and "off" in out and not ContractWallet(installed / "wallet").enabled
    code, out, _ = cli("wallet", "list")
    assert "Plug & Charge: off" in out and "in use" not in out
    assert cli("wallet", "enable")[0] == 0 and ContractWallet(installed / "wallet").enabled
    code, out, _ = cli("wallet", "wipe")
    assert code == 0 and "wiped 1 contract" in out
    w = ContractWallet(installed / "wallet")
    assert w.contracts() == [] and w.pcid is not None  # the OEM credentials stay
