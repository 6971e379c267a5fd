"""The rough edges a new user met in the first hour with ``plugcharge`` (the command and the demo).

Each test is one of them: the demo never re-issues a PKI under an existing wallet, errors are one
sentence naming the file (no raw exception text, on the driver display neither), ``| head`` ends
quietly, option values are checked instead of clamped, global options go anywhere, ``-v`` logs.
"""
from __future__ import annotations

import datetime as dt
import errno
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _pc_fixtures import NOW, Pump, fake_codecs, first, make_pair, session_pki
from plugcharge.cli import build_parser, main
from plugcharge.cli.demo import DemoError, DemoOptions, _View, ensure_pki, run_demo
from plugcharge.core.events import ContractInstallationFailed, ProtocolError, SessionEnded, TimerExpired
from plugcharge.pnc.wallet import ContractWallet, FileOps, WalletError

#: what an error line must never contain: exception reprs and raw parser/OS texts
RAW = re.compile(r"Traceback|\w+Error\(|\[Errno|ParseError|\{ kind|\.tmp\b|ShortData")


def cli(*argv: str) -> tuple[int, str, str]:
    out: list[str] = []
    err: list[str] = []
    code = main(list(argv), out=out.append, err=err.append)
    return code, "\n".join(out), "\n".join(err)


def one_sentence(err: str, prog: str = "plugcharge demo") -> str:
    """The error output is one line in the common form ``<command>: error: <sentence>``."""
    assert err.count("\n") == 0 and err.startswith(f"{prog}: error: "), err
    assert not RAW.search(err), err
    return err


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A data directory (pki/ and wallet/ with one contract) made by an in-process demo run."""
    s = run_demo(DemoOptions(data_dir=tmp_path / "d", codecs=fake_codecs, loops=1, loop_interval=0.0, timeout=30),
                 lambda line: None)
    assert s.installed
    return tmp_path / "d"


def _subprocess(*argv: str, cwd: Path, shell: bool = False, timeout: float = 120,
                **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PLUGCHARGE_DATA_DIR", "PYTHONPATH", "PYTHONUNBUFFERED")}
    env.update(extra_env)
    cmd: object = " ".join(argv) if shell else list(argv)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, shell=shell)  # type: ignore[call-overload]


# ---------------------------------------------------------------- the demo's data directory
def test_demo_refuses_a_new_pki_under_an_existing_wallet(installed: Path) -> None:
    (installed / "pki" / "manifest.json").unlink()
    contract_files = sorted(p.name for p in (installed / "wallet").glob("contract-*.json"))
    assert contract_files
    code, out, err = cli("demo", "--data-dir", str(installed))
    assert code == 2 and out == ""
    one_sentence(err)
    assert "manifest.json" in err and str(installed / "wallet") in err and contract_files[0] in err
    assert not (installed / "pki" / "manifest.json").exists()  # nothing re-issued
    assert sorted(p.name for p in (installed / "wallet").glob("contract-*.json")) == contract_files


def test_demo_says_what_a_replaced_pki_costs_the_wallet(installed: Path) -> None:
    lines: list[str] = []
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3650)  # every certificate has expired
    pki, created = ensure_pki(installed / "pki", seed=None, iso=2, now=later, say=lambda who, text: lines.append(text),
                              wallet_dir=installed / "wallet")
    assert created
    assert any("issuing a new one" in line and "wallet" in line and "wallet wipe" in line for line in lines), lines


def test_a_new_data_directory_still_gets_a_pki(tmp_path: Path) -> None:
    pki, created = ensure_pki(tmp_path / "pki", seed=1, iso=2, now=NOW, say=lambda who, text: None,
                              wallet_dir=tmp_path / "wallet")
    assert created and (tmp_path / "pki" / "manifest.json").is_file()


@pytest.mark.parametrize("damage", ["truncated-der", "garbage-key", "swapped-key", "bad-json", "missing-file"])
def test_a_damaged_pki_file_is_named_in_one_sentence(installed: Path, damage: str) -> None:
    pki_dir = installed / "pki"
    if damage == "truncated-der":
        victim = pki_dir / "mo-sub2.der"
        victim.write_bytes(victim.read_bytes()[:100])
    elif damage == "garbage-key":
        victim = pki_dir / "secc-leaf.key.pem"
        victim.write_text("garbage\n")
    elif damage == "swapped-key":
        victim = pki_dir / "secc-leaf.key.pem"
        victim.write_bytes((pki_dir / "cps-leaf.key.pem").read_bytes())
    elif damage == "bad-json":
        victim = pki_dir / "manifest.json"
        victim.write_text("{")
    else:
        victim = pki_dir / "cps-leaf.der"
        victim.unlink()
    code, _, err = cli("demo", "--data-dir", str(installed))
    assert code == 2
    one_sentence(err)
    assert str(victim) in err and "restore it" in err
    if damage == "swapped-key":
        assert "is not the key of the certificate secc-leaf.der" in err


# ---------------------------------------------------------------- errors on the driver display
class _NoContractWrites(FileOps):
    """The file system refuses the contract file (as an immutable wallet directory does)."""

    def open_temp(self, path: Path) -> int:
        if path.name.startswith(".contract-"):
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        return super().open_temp(path)


def test_a_wallet_that_cannot_save_the_contract_says_so_in_one_sentence(tmp_path: Path) -> None:
    p = session_pki()
    wallet = ContractWallet(tmp_path / "wallet", file_ops=_NoContractWrites())
    wallet.set_enabled(True)
    wallet.set_oem_provisioning(p.cert("oem-provisioning-leaf"), (p.cert("oem-sub2"), p.cert("oem-sub1")),
                                p.key("oem-provisioning-leaf"))
    ev, charger, backend = make_pair(tmp_path, wallet=wallet, codec_provider=fake_codecs)
    pump = Pump(ev, charger, backend)
    pump.start()
    pump.run()
    failed = first(pump.ev_events, ContractInstallationFailed)
    assert failed is not None
    assert "cannot save" in failed.reason and str(tmp_path / "wallet") in failed.reason and "writable" in failed.reason
    assert not RAW.search(failed.reason), failed.reason
    display = failed.wallet_event.display_text
    assert display == "Contract installation failed; charging without Plug & Charge"
    shown: list[str] = []
    view = _View(shown.append, 0.0)
    for e in pump.ev_events:
        view.ev_event(e)
    assert shown and not any(RAW.search(line) for line in shown), shown
    assert not list((tmp_path / "wallet").glob("*.tmp"))  # no debris left behind


def test_wallet_write_errors_are_wallet_errors_naming_the_file(tmp_path: Path) -> None:
    class Full(FileOps):
        def write(self, fd: int, data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    w = ContractWallet(tmp_path / "w", file_ops=Full())
    with pytest.raises(WalletError, match=r"cannot save .*settings\.json \(no space left on device\): free some disk"):
        w.set_enabled(True)
    assert not list((tmp_path / "w").iterdir())


def test_protocol_errors_and_timeouts_read_as_sentences() -> None:
    shown: list[str] = []
    view = _View(shown.append, 0.0)
    view.ev_event(ProtocolError("FAILED_CertChainError", "contract chain rejected: EXPIRED at depth 0"))
    view.charger_event(TimerExpired("sequence", "no request within 60 s"))
    view.ev_event(SessionEnded("failed", "FAILED_CertChainError", "contract chain rejected"))
    text = "\n".join(shown)
    assert "protocol error FAILED_CertChainError (the peer): contract chain rejected" in text
    assert "timeout: sequence expired (no request within 60 s)" in text
    assert "ProtocolError(" not in text and "TimerExpired(" not in text


# ---------------------------------------------------------------- the command line
@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_demo_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, unbuffered: str) -> None:
    # unbuffered: every line is written at once, so the pipe breaks while the demo runs; buffered:
    # the output goes at exit, when the reader may already have gone
    p = _subprocess(sys.executable, "-m", "plugcharge", "demo", "--data-dir", str(tmp_path / "d"), "|", "head", "-2",
                    cwd=tmp_path, shell=True, PYTHONUNBUFFERED=unbuffered)
    assert len(p.stdout.splitlines()) == 2
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr and "Exception ignored" not in p.stderr, p.stderr
    # the demo ran to its end behind the closed pipe: the contract it installed is in the wallet
    assert ContractWallet(tmp_path / "d" / "wallet").contracts()
    q = _subprocess(sys.executable, "-m", "plugcharge", "wallet", "list", "--data-dir", str(tmp_path / "d"), "|", "true",
                    cwd=tmp_path, shell=True, PYTHONUNBUFFERED=unbuffered)
    assert "Traceback" not in q.stderr and "BrokenPipe" not in q.stderr and "Exception ignored" not in q.stderr, q.stderr


@pytest.mark.parametrize("argv,needle", [
    (["demo", "--loops", "0"], "--loops: must be 1 or more, not 0"),
    (["demo", "--loops", "-3"], "--loops: must be 1 or more, not -3"),
    (["demo", "--loops", "two"], "--loops: not a whole number"),
    (["demo", "--timeout", "0"], "--timeout: must be a positive number of seconds"),
    (["demo", "--timeout", "-1"], "--timeout: must be a positive number of seconds"),
    (["demo", "--timeout", "nan"], "--timeout: must be a positive number of seconds"),
])
def test_option_values_are_checked_not_clamped(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"plugcharge demo: error: argument {needle}" in err


def test_a_short_timeout_is_kept_as_given(tmp_path: Path) -> None:
    p = build_parser().parse_args(["demo", "--timeout", "0.1", "--loops", "2"])
    assert p.timeout == 0.1 and p.loops == 2
    code, out, _ = cli("demo", "--timeout", "0.1", "--data-dir", str(tmp_path / "d"))
    assert code == 1 and "gave up after 0.1 s" in out


@pytest.mark.parametrize("argv", [
    ["-v", "--data-dir", "X", "wallet", "list"],
    ["--data-dir", "X", "wallet", "list", "-v"],
    ["wallet", "--data-dir", "X", "-v", "list"],
    ["wallet", "list", "--data-dir", "X", "--verbose"],
    ["--data-dir", "X", "-v", "pcid"],
    ["pcid", "-v", "--data-dir", "X"],
])
def test_global_options_in_any_position(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert str(args.data_dir) == "X" and args.verbose is True


def test_global_options_for_the_demo() -> None:
    for argv in (["demo", "-v", "--data-dir", "X"], ["-v", "demo", "--data-dir", "X"], ["--data-dir", "X", "demo", "-v"]):
        args = build_parser().parse_args(argv)
        assert str(args.data_dir) == "X" and args.verbose is True
    args = build_parser().parse_args(["demo"])
    assert getattr(args, "verbose", False) is False and getattr(args, "data_dir", None) is None


def test_data_dir_before_the_command_reaches_the_wallet(installed: Path) -> None:
    code, out, err = cli("--data-dir", str(installed), "wallet", "list")
    assert code == 0 and "in use" in out, err
    code, out, _ = cli("-v", "--data-dir", str(installed), "pcid")
    assert code == 0 and out == ContractWallet(installed / "wallet").pcid


def test_verbose_logs_the_library_info_messages(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    quiet = _subprocess(sys.executable, "-m", "plugcharge", "demo", "--data-dir", d, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "INFO" not in quiet.stderr
    loud = _subprocess(sys.executable, "-m", "plugcharge", "demo", "--data-dir", d, "-v", cwd=tmp_path)
    assert loud.returncode == 0, loud.stderr
    info = [line for line in loud.stderr.splitlines() if line.startswith("INFO plugcharge.")]
    assert any("EV: SessionStarted" in line for line in info), loud.stderr
    assert any("charger: SessionEnded (reason=finished" in line for line in info), loud.stderr
    assert "summary" in loud.stdout and "INFO" not in loud.stdout  # the user's output stays on stdout, the log on stderr


def test_wallet_errors_use_the_common_form(tmp_path: Path, installed: Path) -> None:
    code, _, err = cli("wallet", "list", "--data-dir", str(tmp_path / "none"))
    assert code == 1
    one_sentence(err, "plugcharge wallet list")
    code, _, err = cli("wallet", "--data-dir", str(installed))
    assert code == 2
    one_sentence(err, "plugcharge wallet")
    code, _, err = cli("wallet", "delete", "nope", "--data-dir", str(installed))
    assert code == 1
    one_sentence(err, "plugcharge wallet delete")
    code, _, err = cli("pcid", "--data-dir", str(tmp_path / "none"))
    assert code == 1
    one_sentence(err, "plugcharge pcid")


def test_demo_setup_errors_use_the_common_form(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = cli("demo", "--data-dir", str(blocker / "d"))
    assert code == 2
    one_sentence(err)
    assert str(blocker / "d") in err and "--data-dir" in err
    with pytest.raises(DemoError, match="cannot create the data directory"):
        run_demo(DemoOptions(data_dir=blocker / "x"), lambda line: None)


def test_an_unreadable_wallet_file_is_named_with_what_is_wrong(installed: Path) -> None:
    victim = next((installed / "wallet").glob("contract-*.json"))
    victim.write_text("{ not json")
    code, out, err = cli("wallet", "list", "--data-dir", str(installed))
    assert code == 0 and "no contracts installed" in out
    assert err == f"plugcharge wallet list: warning: wallet file {victim} ignored (not valid JSON); delete it if it stays unreadable"


# ---------------------------------------------------------------- a second pass: wallet files, the EV's transport
def test_a_wallet_without_its_credentials_file_is_not_announced_as_new(installed: Path) -> None:
    """Deleting the wallet's OEM provisioning file leaves its contracts: the demo restores the
    credentials from the test PKI and says so, instead of "wallet created ... no contract yet"."""
    (installed / "wallet" / "oem-provisioning.json").unlink()
    lines: list[str] = []
    s = run_demo(DemoOptions(data_dir=installed, codecs=fake_codecs, loops=1, loop_interval=0.0, timeout=30),
                 lines.append)
    out = "\n".join(lines)
    assert s.completed and s.payment == "Contract" and not s.installed, out
    assert "wallet created" not in out and "no contract yet" not in out, out
    assert "OEM provisioning credentials were missing, restored from the test PKI" in out
    assert "1 contract installed" in out


def test_plug_and_charge_off_says_how_to_switch_it_on(installed: Path) -> None:
    (installed / "wallet" / "settings.json").unlink()  # a wallet without its settings has Plug & Charge off
    lines: list[str] = []
    s = run_demo(DemoOptions(data_dir=installed, codecs=fake_codecs, loops=1, loop_interval=0.0, timeout=30),
                 lines.append)
    out = "\n".join(lines)
    assert s.completed and s.payment == "ExternalPayment", out
    assert "Plug & Charge OFF ('plugcharge wallet enable' switches it on)" in out


def test_a_backend_without_a_20_pki_says_so() -> None:
    """A backend (the test CSMS started before D/pki20 existed) refuses a -20 installation naming the
    missing -20 PKI, not an "unsupported schema" that is supported."""
    from plugcharge.backends.base import ISO20_SCHEMA_VERSION, Get15118EVCertificateRequest
    from plugcharge.backends.simulated import SimulatedBackend

    backend = SimulatedBackend(session_pki(), codecs=fake_codecs)
    res = backend.get_15118_ev_certificate(Get15118EVCertificateRequest(ISO20_SCHEMA_VERSION, "Install", "AAAA"))
    assert res.status == "Failed" and res.status_info is not None
    assert "no ISO 15118-20 test PKI" in res.status_info and "unsupported" not in res.status_info


def test_an_interface_that_does_not_exist_is_named_so() -> None:
    from plugcharge.net.sdp import link_local_address

    with pytest.raises(OSError) as info:
        link_local_address("nosuchif0")
    assert info.value.errno == errno.ENODEV
    assert "no network interface named 'nosuchif0'" in str(info.value.strerror) and "lo" in str(info.value.strerror)
    with pytest.raises(OSError, match="no link-local IPv6 address"):
        link_local_address("lo")  # exists, but has no link-local address


def test_the_ev_offers_what_fits_the_transport() -> None:
    from plugcharge.cli.ev import fitting_protocols

    assert fitting_protocols(("iso20", "iso2", "din"), True) == ("iso20", "iso2")
    assert fitting_protocols(("iso20", "iso2", "din"), False) == ("iso2", "din")
    assert fitting_protocols(("din",), True) == () and fitting_protocols(("iso20",), False) == ()


def test_ev_setup_errors_before_looking_for_a_charger(installed: Path) -> None:
    """``--protocol iso20 --no-tls`` cannot run at all: said at once (exit 2), not after SDP."""
    code, out, err = cli("ev", "--interface", "nosuchif0", "--data-dir", str(installed), "--protocol", "iso20",
                         "--no-tls")
    assert code == 2, out + err
    one_sentence(err, "plugcharge ev")
    assert "cannot run without TLS" in err and "--no-tls" in err


def _connect_error(installed: Path, serve: Any, offered: tuple[str, ...], ssl: Any = None) -> str:
    """The error of the EV's connection attempt (``plugcharge ev``'s ``_connect``, TLS, the data
    directory's V2G root and wallet) to a loopback server answering with ``serve``."""
    import asyncio
    from types import SimpleNamespace

    from plugcharge.cli.demo import load_pki
    from plugcharge.cli.ev import _connect, _Fail

    async def go() -> str:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ssl)
        port = server.sockets[0].getsockname()[1]
        try:
            await asyncio.wait_for(_connect(SimpleNamespace(host="127.0.0.1", port=port), True, offered,
                                            [load_pki(installed / "pki").cert("v2g-root")],
                                            ContractWallet(installed / "wallet"), None), 20)
        except _Fail as exc:
            return str(exc)
        finally:
            server.close()
        raise AssertionError("connected")

    return asyncio.run(go())


@pytest.mark.parametrize("offered,needle", [(("iso20",), "TLS 1.3 for ISO 15118-20: the charger reset the connection"),
                                            (("iso2", "din"), "TLS 1.2 for iso2: the charger reset the connection")])
def test_a_connection_the_charger_drops_says_why(installed: Path, offered: tuple[str, ...], needle: str) -> None:
    """A charger that resets the TLS handshake (it has no TLS 1.3, or no TLS 1.2) raised a
    ConnectionResetError without text: the error line read "failed: " and nothing."""
    import asyncio

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the ClientHello, then closed: asyncio's handshake gets a bare ConnectionResetError()
        writer.close()

    message = _connect_error(installed, reset, offered)
    assert needle in message, message
    assert not message.endswith("failed: ")


def test_a_charger_of_another_pki_is_named_as_such(installed: Path) -> None:
    """A charger whose certificate the EV's roots do not anchor (e.g. a second charger on the same
    link, made with another data directory): the error says so, without the hint for a dropped
    handshake."""
    import asyncio

    from plugcharge.net.tls import server_context

    other = session_pki()  # not the PKI of ``installed``
    ctx = server_context([other.cert("secc-leaf"), other.cert("cpo-sub2"), other.cert("cpo-sub1")],
                         other.key("secc-leaf"))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
        except (OSError, ConnectionError):
            pass
        writer.close()

    message = _connect_error(installed, serve, ("iso2",), ssl=ctx)
    assert "TLS 1.2 for iso2: the charger's certificate does not verify against the V2G roots" in message, message
    assert "--v2g-roots" in message and "--protocol iso20" not in message


@pytest.mark.parametrize("argv", [["demo", "--csms", "http://127.0.0.1:9000"],
                                  ["demo", "--csms", "ws://127.0.0.1:port"],
                                  ["charger", "--interface", "x", "--csms", "127.0.0.1:9000"]])
def test_a_csms_url_that_is_no_websocket_url_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``--csms http://...`` (or a bare HOST:PORT) ran on as "CSMS not reachable" and the fallback."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"plugcharge {argv[0]}: error: argument --csms: wants a websocket URL, ws://HOST:PORT" in err, err


def test_csms_urls_that_are_fine() -> None:
    assert build_parser().parse_args(["demo", "--csms"]).csms == ""
    assert build_parser().parse_args(["demo", "--csms", "ws://127.0.0.1:9000"]).csms == "ws://127.0.0.1:9000"
    assert build_parser().parse_args(["charger", "-i", "x", "--csms", "wss://csms.example/CP-1"]).csms \
        == "wss://csms.example/CP-1"


def test_an_ev_on_an_interface_that_does_not_exist_stops_before_plugging_in(installed: Path) -> None:
    """``plugcharge ev --interface eth9`` printed the wallet and "Cable plugged in" before its error."""
    code, out, err = cli("ev", "--interface", "nosuchif0", "--data-dir", str(installed))
    assert code == 2 and out == "", out
    one_sentence(err, "plugcharge ev")
    assert "cannot send SDP on nosuchif0: no network interface named 'nosuchif0' (here: " in err


@pytest.mark.parametrize("value,needle", [("Authorize", "wants ACTION=SECONDS"), ("Authorize=abc", "wants ACTION=SECONDS"),
                                          ("Authorise=3", "'Authorise' is no OCPP call the test CSMS answers")])
def test_a_bad_csms_delay_is_one_sentence(value: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``plugcharge csms --delay Authorize`` said "could not convert string to float: ''"; a misspelt
    action was taken and never applied."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["csms", "--delay", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "plugcharge csms: error: argument --delay: " in err and needle in err, err
    assert "convert" not in err
    assert build_parser().parse_args(["csms", "--delay", "Authorize=30"]).delay == [("Authorize", 30.0)]
