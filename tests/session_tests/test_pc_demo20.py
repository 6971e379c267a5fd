"""``plugcharge demo --protocol iso20`` in-process and as a subprocess: a complete ISO 15118-20 Plug &
Charge session over SDP and mutual TLS 1.3 on loopback (the first run installs the contract, the
second reuses it), DC, AC and bidirectional, identification at the charger, the fallback after a
failed installation, with the driver's display lines."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import exi
from plugcharge.cli.demo import DemoOptions, run_demo
from plugcharge.core.events import (
    AuthorizationNeeded, CertificateInstallationNeeded, ChargingStarted, ContractInstallationSucceeded,
    MeteringReceiptReceived, MeterValues, PaymentSelected, ProtocolAgreed,
)
from plugcharge.pnc.wallet import ContractWallet


def demo(tmp_path, **kw):
    lines: list[str] = []
    kw = {"loops": 3, "loop_interval": 0.05, "timeout": 30.0, "protocol": "iso20", "seed": 20, **kw}
    summary = run_demo(DemoOptions(data_dir=tmp_path / "data", codecs=exi.get_codec, **kw), lines.append)
    return summary, "\n".join(lines)


@pytest.mark.parametrize("ac", [False, True])
def test_iso20_demo_completes_over_tls13(tmp_path, ac):
    s, text = demo(tmp_path, ac=ac, eim=True)
    assert s.completed and s.exit_code == 0, text
    kind = "AC" if ac else "DC"
    agreed = [e for e in s.ev_events if isinstance(e, ProtocolAgreed)]
    assert [a.name for a in agreed] == [f"ISO 15118-20 {kind}"]
    assert f"protocol agreed: ISO 15118-20 {kind}" in text
    assert "TLSv1.3 TLS_AES_256_GCM_SHA384: charger certificate" in text and "(secp521r1)" in text
    assert "presenting the ISO 15118-20 certificate" in text
    assert "Please identify at the charger" in text and "Charging complete - you can unplug" in text
    assert "light: green, pulsing" in text and "light: green, steady" in text
    assert [e.payment for e in s.charger_events if isinstance(e, AuthorizationNeeded)] == ["ExternalPayment"]
    assert [e.energy_mode for e in s.ev_events if isinstance(e, ChargingStarted)] == [kind]
    assert "TLS 1.3 (mutual): vehicle certificate" in text and "unsigned: identification at the charger" in text


@pytest.mark.parametrize("ac", [False, True])
def test_iso20_demo_installs_the_contract_then_reuses_it(tmp_path, ac):
    s, text = demo(tmp_path, ac=ac)
    assert s.completed and s.installed and s.payment == "Contract" and s.emaid == "DEPLGCDEMO00001", text
    assert [type(e).__name__ for e in s.charger_events if isinstance(e, (CertificateInstallationNeeded,
                                                                         AuthorizationNeeded))] == [
        "CertificateInstallationNeeded", "AuthorizationNeeded"]
    assert "ISO 15118-20" in text and "TLS 1.3 (mutual): vehicle certificate" in text and "TLSv1.3" in text
    assert "Installing charging contract" in text and "light: blue, pulsing" in text
    assert "Charging contract DEPLGCDEMO00001 installed" in text and "Authorised - contract DEPLGCDEMO00001" in text
    assert "signed with the contract key, verified" in text and "Plug & Charge is not wired" not in text
    [info] = ContractWallet(tmp_path / "data" / "wallet").contracts(iso=20)
    assert info.emaid == "DEPLGCDEMO00001"
    s2, text2 = demo(tmp_path, ac=ac)
    assert s2.completed and not s2.installed and s2.payment == "Contract", text2
    assert "reused from the wallet" in text2 and "contract in the wallet" in text2
    assert not any(isinstance(e, ContractInstallationSucceeded) for e in s2.ev_events)


def test_iso20_demo_fail_installation_falls_back_to_eim(tmp_path):
    s, text = demo(tmp_path, fail_installation=True)
    assert s.completed and s.fallback and s.payment == "ExternalPayment" and s.sessions == 2, text
    assert [e.option for e in s.ev_events if isinstance(e, PaymentSelected)] == ["Contract", "ExternalPayment"]
    assert "Plug & Charge not possible - switching to card/app" in text and "light: amber, blinking" in text
    assert "after the Plug & Charge fallback" in text
    assert not ContractWallet(tmp_path / "data" / "wallet").contracts(iso=20)
    assert "already holds a usable" not in text


def test_iso20_demo_fail_installation_with_a_contract_in_the_wallet_says_why_it_reuses(tmp_path):
    """With a usable -20 contract in the wallet no installation is attempted: the demo says so (and
    how to see the fallback) instead of silently reusing it."""
    assert demo(tmp_path)[0].installed
    s, text = demo(tmp_path, fail_installation=True)
    assert s.completed and s.payment == "Contract" and not s.installed, text
    assert "already holds a usable ISO 15118-20 contract" in text and "plugcharge wallet wipe" in text


@pytest.mark.parametrize("ac", [False, True])
def test_iso20_demo_bpt_discharges_then_charges(tmp_path, ac):
    s, text = demo(tmp_path, ac=ac, bpt=True)
    assert s.completed, text
    currents = [e.current for e in s.ev_events if isinstance(e, MeterValues)]
    assert currents[:2] == [c for c in currents[:2] if c < 0] and len(currents) == 5 and currents[2] > 0
    assert text.count("display: Discharging") == 2 and "to the grid" in text
    assert [e.energy_mode for e in s.ev_events if isinstance(e, ChargingStarted)] == [("AC" if ac else "DC") + "_BPT"]
    assert any(isinstance(e, MeteringReceiptReceived) for e in s.charger_events)
    assert "bidirectional" in text and s.payment == "Contract"


def test_iso20_demo_subprocess(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "plugcharge", "demo", "--protocol", "iso20", "--loops", "2",
                           "--data-dir", str(tmp_path / "d"), "--timeout", "60"],
                          capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(tmp_path))  # outside the checkout: import the installed packages
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"protocol agreed: ISO 15118-20 DC", proc.stdout)
    assert "TLSv1.3" in proc.stdout and "result      completed (finished)" in proc.stdout
    assert "installed over the cable in this session" in proc.stdout and "TLS 1.3 (mutual)" in proc.stdout


def test_iso20_demo_display_keeps_the_last_meter_reading(tmp_path):
    """-20 charge loop answers carry a meter reading only now and then (MeterInfo is optional): once
    the EV has one, the driver's display keeps showing it instead of dropping the energy."""
    s, text = demo(tmp_path, loops=6)
    assert s.completed, text
    assert sum(e.meter_wh is None for e in s.ev_events if isinstance(e, MeterValues)) > 0  # readings do go missing
    shown = [ln for ln in text.splitlines() if "display: Charging SOC" in ln]
    first_reading = next(i for i, ln in enumerate(shown) if re.search(r" \d+ Wh", ln))
    assert all(re.search(r" \d+ Wh", ln) for ln in shown[first_reading:]), shown
