"""``plugcharge csms`` (a real websocket server in its own process; ``activate`` / ``revoke``
acting on it while it runs) and ``plugcharge demo --csms`` end to end: not activated → EIM with
the hint, activated → installation through Get15118EVCertificate, then reuse, after ``revoke`` →
EIM fallback; a CSMS that is down → clean fallback."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _ocpp_fixtures import need_real_codec

from plugcharge.cli import main

pytestmark = pytest.mark.usefixtures("_real_codec")


@pytest.fixture
def _real_codec() -> None:
    need_real_codec()


def _cli(*args: str) -> tuple[int, str, str]:
    out: list[str] = []
    err: list[str] = []
    code = main(list(args), out=out.append, err=err.append)
    return code, "\n".join(out), "\n".join(err)


def _pcid(data: Path) -> str:
    code, out, err = _cli("pcid", "--data-dir", str(data))
    assert code == 0, err
    return out.strip()


def test_demo_with_csms_activation_install_reuse_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    demo = ("demo", "--csms", "--data-dir", str(data), "--loops", "2")

    # first run: the car is not activated with the eMSP: EIM, and the operator line says how to activate
    code, out, err = _cli(*demo)
    assert code == 0, out + err
    assert "activate Plug & Charge with your provider first" in out
    assert "plugcharge csms activate" in out and "ExternalPayment (RFID card) after the Plug & Charge fallback" in out
    assert re.search(r"csms +PLUGCHARGE-DEMO-1: Get15118EVCertificate .* -> Accepted: unknown PCID", out)

    code, out, err = _cli("csms", "activate", _pcid(data), "--data-dir", str(data))
    assert code == 0 and "activated PCID" in out, err
    emaid = re.search(r"contract (\S+) \(serial", out).group(1)

    code, out, _ = _cli(*demo)
    assert code == 0, out
    assert re.search(r"csms +PLUGCHARGE-DEMO-1: Get15118EVCertificate action=Install .* -> Accepted: contract " + emaid, out)
    assert re.search(r"csms +PLUGCHARGE-DEMO-1: Authorize idToken=" + emaid
                     + r" type=eMAID iso15118CertificateHashData=3 entries .* -> Accepted", out)
    assert "installed over the cable in this session" in out and f"eMAID       {emaid}" in out
    assert re.search(r"TransactionEvent .* -> Ended tx \S+ seq \d+ StopAuthorized \d+ Wh", out)

    code, out, _ = _cli(*demo)
    assert code == 0 and "reused from the wallet" in out and "Get15118EVCertificate" not in out

    code, out, err = _cli("csms", "revoke", emaid, "--data-dir", str(data))
    assert code == 0 and "revoked 1 contract certificate" in out, err
    code, out, err = _cli("csms", "revoke", emaid, "--data-dir", str(data))  # again: nothing new is revoked
    assert code == 0 and f"revoked 0 contract certificates of {emaid} (1 revoked before)" in out, out + err
    code, out, _ = _cli(*demo)
    assert code == 0, out
    assert re.search(r"Authorize idToken=" + emaid + r" .* -> Blocked / certificateStatus CertificateRevoked", out)
    assert "ExternalPayment (RFID card) after the Plug & Charge fallback" in out

    code, out, _ = _cli("csms", "list", "--data-dir", str(data))
    assert code == 0 and f"{_pcid(data)}  {emaid}" in out and "REVOKED" in out and "1 contract certificate" in out

    code, _, err = _cli("csms", "revoke", "DEPLGC00000000X", "--data-dir", str(data))
    assert code == 1 and "no contract was issued" in err
    code, _, err = _cli("csms", "activate", "not-a-pcid", "--data-dir", str(data))
    assert code == 1 and "not a valid PCID" in err


def test_demo_with_an_unreachable_csms_falls_back_to_eim(tmp_path: Path) -> None:
    code, out, err = _cli("demo", "--csms", "ws://127.0.0.1:9", "--data-dir", str(tmp_path / "d"), "--loops", "1",
                          "--timeout", "30")
    assert code == 0, out + err
    assert "not reachable" in out and "Get15118EVCertificate(Install) failed" in out
    assert "ExternalPayment (RFID card) after the Plug & Charge fallback" in out


def _spawn_csms(data: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "plugcharge", "csms", "--listen", "127.0.0.1:0", "--data-dir",
                             str(data)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=data.parent)  # not the checkout: `-m` would import its uncompiled sources
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"CSMS listening on (ws://\S+/)<station-id>", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise AssertionError("plugcharge csms did not start")


def test_csms_process_activate_acts_on_the_running_csms(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, url = _spawn_csms(data)
    try:
        code, out, _ = _cli("demo", "--csms", url, "--data-dir", str(data), "--loops", "1")
        assert code == 0 and "activate Plug & Charge with your provider first" in out, out
        code, out, err = _cli("csms", "activate", _pcid(data), "--data-dir", str(data))  # CSMS keeps running
        assert code == 0, err
        code, out, _ = _cli("demo", "--csms", url, "--data-dir", str(data), "--loops", "1")
        assert code == 0 and "installed over the cable in this session" in out, out
    finally:
        proc.terminate()
        try:
            log, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            log, _ = proc.communicate()
    assert proc.returncode == 0 and "CSMS stopped" in log
    lines = log.splitlines()
    # one line per OCPP call, with Authorize's hash data and the Get15118EVCertificate that installed
    assert any(re.search(r"Authorize idToken=\S+ type=eMAID iso15118CertificateHashData=3 entries", ln) for ln in lines)
    assert any("Get15118EVCertificate action=Install" in ln and "-> Accepted: contract" in ln for ln in lines)
    assert any("Get15118EVCertificate action=Install" in ln and "unknown PCID" in ln for ln in lines)


def test_csms_command_errors(tmp_path: Path) -> None:
    code, _, err = _cli("csms", "--listen", "nonsense", "--data-dir", str(tmp_path / "d"))
    assert code == 1 and "HOST:PORT" in err
    (tmp_path / "d" / "csms").mkdir(parents=True)
    (tmp_path / "d" / "csms" / "state.json").write_text("[]")
    code, _, err = _cli("csms", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"))
    assert code == 1 and "unreadable" in err and "delete it" in err
    code, _, err = _cli("csms", "activate", "PLUGCHARGEPCID0001", "--data-dir", str(tmp_path / "d"))
    assert code == 1 and "unreadable" in err
