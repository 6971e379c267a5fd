"""Full Plug & Charge sessions against a real peer: the ``iso15118`` PyPI package (0.31.2).

* our ``EVSession`` against its SECC, and
* its EVCC against our ``ChargerSession`` with the simulated backend,

each over real sockets on this host: SDP over the ``ff02::1`` multicast group, then TLS 1.2 to the
SECC's link-local address, a DC session with contract installation, authorisation, the charge
loop and SessionStop. The peer runs in its own process (``_iso15118_peer.py``) with its own
simulators and its own EXI codec (EXIficient through py4j, so java is needed); both sides use
one test PKI from :mod:`pki`, written in the peer's file layout.

That package needs an interface with an IPv6 link-local address (it binds its TCP server there);
the tests take the first such multicast interface of the host, or ``PLUGCHARGE_INTEROP_IFACE``,
and as root create a veth pair when there is none.

What they show and the deviations found on the peer's side are listed in the README
("Interoperability").
"""
from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from plugcharge.backends.simulated import SimulatedBackend
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, CertificateInstallationNeeded, ChargingStarted, ChargingStopped,
    ContractInstallationSucceeded, MeterValues, PaymentSelected, SalesTariffVerified, SessionEnded, SessionStarted,
)
from plugcharge.net.runner import run_charger, run_ev
from _pc_fixtures import multicast_link_local_interfaces
from plugcharge.net.sdp import SDPRequest, discover_secc, link_local_address, make_responder, start_sdp_server
from plugcharge.net.tls import client_context, secc_leaf_check, server_context, to_pem_chain
from plugcharge.net.transport import open_ev_connection, start_charger_server
from plugcharge.iso2.timing import EVCC_MSG_TIMEOUT, TimingProfile
from plugcharge.pnc.wallet import ContractWallet

HARNESS = Path(__file__).with_name("_iso15118_peer.py")
_MISSING = [m for m in ("iso15118.secc", "iso15118.evcc", "aiofile", "py4j")
            if importlib.util.find_spec(m.split(".")[0]) is None]
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_MISSING), reason=f"interop extra not installed (missing {', '.join(_MISSING)})"),
    pytest.mark.skipif(shutil.which("java") is None, reason="the iso15118 package's EXI codec needs java"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="interface discovery reads Linux /sys"),
]

#: our test-PKI role -> the peer's file base name (iso15118/shared/pki/create_certs.sh)
_LAYOUT = {
    "v2g-root": "v2gRootCA", "cpo-sub1": "cpoSubCA1", "cpo-sub2": "cpoSubCA2", "secc-leaf": "seccLeaf",
    "cps-sub1": "cpsSubCA1", "cps-sub2": "cpsSubCA2", "cps-leaf": "cpsLeaf",
    "mo-root": "moRootCA", "mo-sub1": "moSubCA1", "mo-sub2": "moSubCA2", "contract-leaf": "contractLeaf",
    "oem-root": "oemRootCA", "oem-sub1": "oemSubCA1", "oem-sub2": "oemSubCA2", "oem-provisioning-leaf": "oemLeaf",
}
_PASSWORD_FILES = ("seccLeafPassword.txt", "oemLeafPassword.txt", "contractLeafPassword.txt",
                   "cpsLeafPassword.txt", "moSubCA2LeafPassword.txt")
EMAID = "DEPLGC000000099"
PEER_TIMEOUT = 150.0
#: The peer encodes and decodes through a JVM over py4j: 50-100 ms per message here, more than
#: the 250 ms CurrentDemand/ChargingStatus V2G_EVCC_Msg_Timeout when the two cores are busy. Our
#: EV waits at least 2 s per message against it (README); every other timer is the standard's.
PEER_TIMING = TimingProfile(msg_timeout={k: max(v, 2.0) for k, v in EVCC_MSG_TIMEOUT.items()})


def write_layout(pki, root: Path) -> Path:
    """Write ``pki`` (a ``pki.issue.TestPKI``) in the iso15118 package's PKI_PATH layout.

    Keys are unencrypted PKCS#8 PEM with empty password files (the package then loads them with
    no password)."""
    from pki.issue import private_key_pem

    certs = root / "iso15118_2" / "certs"
    keys = root / "iso15118_2" / "private_keys"
    certs.mkdir(parents=True)
    keys.mkdir(parents=True)
    for role, base in _LAYOUT.items():
        (certs / f"{base}Cert.der").write_bytes(pki.cert(role))
        (certs / f"{base}Cert.pem").write_bytes(to_pem_chain([pki.cert(role)]))
        (keys / f"{base}.key").write_bytes(private_key_pem(pki.key(role)))
    chain = {"cpoCertChain.pem": ("secc-leaf", "cpo-sub2", "cpo-sub1"),
             "oemCertChain.pem": ("oem-provisioning-leaf", "oem-sub2", "oem-sub1")}
    for name, roles in chain.items():
        (certs / name).write_bytes(to_pem_chain([pki.cert(r) for r in roles]))
    for name in _PASSWORD_FILES:
        (keys / name).write_text("")
    return root


def _make_veth() -> str | None:
    """As root: a veth pair with link-local addresses (no DAD wait); ``None`` when impossible."""
    ip = shutil.which("ip")
    if ip is None or os.geteuid() != 0:
        return None
    cmds = [[ip, "link", "add", "pcint0", "type", "veth", "peer", "name", "pcint1"]]
    for dev in ("pcint0", "pcint1"):
        cmds += [[ip, "link", "set", dev, "addrgenmode", "eui64"],
                 [ip, "link", "set", dev, "up"]]
    for cmd in cmds:
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            subprocess.run([ip, "link", "del", "pcint0"], capture_output=True)
            return None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the address is usable once DAD has finished
        if "pcint0" in multicast_link_local_interfaces() and not _tentative("pcint0"):
            return "pcint0"
        time.sleep(0.1)
    subprocess.run([ip, "link", "del", "pcint0"], capture_output=True)
    return None


def _tentative(dev: str) -> bool:
    out = subprocess.run(["ip", "-6", "addr", "show", "dev", dev], capture_output=True, text=True).stdout
    return "tentative" in out


@pytest.fixture(scope="module")
def iface() -> Iterator[str]:
    wanted = os.environ.get("PLUGCHARGE_INTEROP_IFACE")
    if wanted:
        yield wanted
        return
    found = multicast_link_local_interfaces()
    if found:
        yield found[0]
        return
    made = _make_veth()
    if made is None:
        pytest.skip("no multicast interface with an IPv6 link-local address (and no veth pair could be made)")
    try:
        yield made
    finally:
        subprocess.run(["ip", "link", "del", "pcint0"], capture_output=True)


@pytest.fixture(scope="module")
def peer_pki():
    from pki.issue import issue_test_pki

    return issue_test_pki(2, seed=1511802, now=dt.datetime.now(dt.timezone.utc), emaid=EMAID)


class Peer:
    """The peer process; its combined output goes to ``log``, shown when a test fails."""

    def __init__(self, role: str, pki_dir: Path, iface: str, log: Path, *extra: str) -> None:
        self.log = log
        self._fh = open(log, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, str(HARNESS), role, "--pki", str(pki_dir), "--iface", iface,
                                      *extra], stdout=self._fh, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(pki_dir))

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._fh.close()


def _kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def _wallet(directory: Path, pki) -> ContractWallet:
    wallet = ContractWallet(directory)
    wallet.set_oem_provisioning(pki.cert("oem-provisioning-leaf"), (pki.cert("oem-sub2"), pki.cert("oem-sub1")),
                                pki.key("oem-provisioning-leaf"))
    wallet.set_enabled(True)
    return wallet


# --------------------------------------------------------------------- our EV, their SECC
async def _our_ev_session(pki, wallet: ContractWallet, iface: str, peer: Peer, mode: str) -> list:
    deadline = time.monotonic() + 60
    while True:  # the peer starts a JVM first; its SDP server comes up after that
        try:
            resp = await discover_secc(SDPRequest(), interface=iface, timeout=0.25, max_requests=8)
            break
        except TimeoutError:
            if peer.proc.poll() is not None or time.monotonic() > deadline:
                raise
    assert resp.address.is_link_local and resp.host.endswith(f"%{iface}")
    stream = await open_ev_connection(resp.host, resp.port, ssl_context=client_context([pki.cert("v2g-root")]),
                                      verify_peer=secc_leaf_check)
    assert stream.tls and stream.tls_version == "TLSv1.2"
    ev = EVSession(EVConfig(energy_mode=mode, charge_loops=3, poll_interval=0.2, protocols=("iso2",)),
                   security=EVSecurity(wallet=wallet, v2g_roots=[pki.cert("v2g-root")]),  # type: ignore[arg-type]
                   timing=PEER_TIMING)
    return await asyncio.wait_for(run_ev(stream, ev), PEER_TIMEOUT)


MODES = ("DC_extended", "AC_three_phase_core")
_LOOP = {"DC_extended": ("CableCheckReq", "PreChargeReq", "CurrentDemandReq", "WeldingDetectionReq"),
         "AC_three_phase_core": ("ChargingStatusReq",)}


@pytest.mark.parametrize("mode", MODES)
def test_our_ev_installs_a_contract_and_charges_at_their_secc(tmp_path, iface, peer_pki, mode):
    pki_dir = write_layout(peer_pki, tmp_path / "peer-pki")
    wallet_dir = tmp_path / "wallet"
    wallet = _wallet(wallet_dir, peer_pki)
    peer = Peer("secc", pki_dir, iface, tmp_path / "secc.log", "--auth", "PNC")
    try:
        events = asyncio.run(asyncio.wait_for(_our_ev_session(peer_pki, wallet, iface, peer, mode),
                                                 PEER_TIMEOUT + 60))
    except BaseException:
        peer.stop()
        print(peer.output()[-20000:])
        raise
    peer.stop()
    log = peer.output()
    kinds = _kinds(events)
    assert isinstance(events[-1], SessionEnded) and events[-1].reason == "finished", (events[-1], log[-5000:])
    # their SECC answers with the contract of its PKI files: ours, issued for EMAID
    assert [e.emaid for e in events if isinstance(e, ContractInstallationSucceeded)] == [EMAID]
    [info] = wallet.contracts()
    contract = wallet.get(info.contract_id)
    assert contract.leaf == peer_pki.cert("contract-leaf") and info.emaid == EMAID
    # a restart finds it (persisted), with the key that matches the certificate
    assert ContractWallet(wallet_dir).get(info.contract_id).leaf == contract.leaf
    assert next(e for e in events if isinstance(e, PaymentSelected)).option == "Contract"
    assert [e.emaid for e in events if isinstance(e, AuthorizationAccepted)] == [EMAID]
    # the SalesTariff their SECC signs with the MO Sub-CA 2 key verified against the contract chain
    assert "SalesTariff" in log and [e for e in events if isinstance(e, SalesTariffVerified)]
    assert kinds.index("ChargingStarted") < kinds.index("ChargingStopped")
    assert sum(isinstance(e, MeterValues) for e in events) >= 3
    # their side saw every step and stopped cleanly
    for msg in ("CertificateInstallationReq", "PaymentDetailsReq", "AuthorizationReq", "PowerDeliveryReq",
                *_LOOP[mode], "SessionStopReq"):
        assert msg in log, f"{msg} missing from the peer's log"
    assert "Traceback" not in log, log[-5000:]


# --------------------------------------------------------------------- their EVCC, our charger
async def _their_ev_at_our_charger(pki, iface: str, pki_dir: Path, log: Path, mode: str) -> tuple[list, SimulatedBackend, Peer]:
    from pki.store import TrustStore

    backend = SimulatedBackend(pki)
    backend.register_pcid(pki.pcid, EMAID)
    store = TrustStore(pki.store_roots())
    results: asyncio.Queue = asyncio.Queue()

    async def handler(stream) -> None:
        session = ChargerSession(ChargerConfig(energy_modes=(mode,), sales_tariff=True, tls=stream.tls, protocols=("iso2",)),
                                 security=ChargerSecurity(trust_store=store, sales_tariff_key=pki.key("mo-sub2")))
        try:
            results.put_nowait(await run_charger(stream, session, backend))
        except BaseException as exc:  # surfaced below
            results.put_nowait(exc)

    address = link_local_address(iface)
    secc_chain = [pki.cert("secc-leaf"), pki.cert("cpo-sub2"), pki.cert("cpo-sub1")]
    server = await start_charger_server(handler, f"{address}%{iface}", 0,
                                        ssl_context=server_context(secc_chain, pki.key("secc-leaf")))
    sdp = await start_sdp_server(make_responder(address, tls_port=server.port), interface=iface)
    peer = Peer("evcc", pki_dir, iface, log, "--mode", mode, "--loops", "3")
    try:
        async with server:
            loop = asyncio.get_running_loop()
            exited = loop.run_in_executor(None, peer.proc.wait)
            session = asyncio.ensure_future(results.get())
            await asyncio.wait({session, exited}, timeout=PEER_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            if not session.done():  # the peer gave up (or hung) before any session ended
                session.cancel()
                raise AssertionError(f"no session ended at our charger; peer exit status {peer.proc.poll()}")
            got = session.result()
            if isinstance(got, BaseException):
                raise got
            await asyncio.wait_for(exited, 30)
    finally:
        sdp.close()
        peer.stop()
    return got, backend, peer


@pytest.mark.parametrize("mode", MODES)
def test_their_evcc_installs_a_contract_and_charges_at_our_charger(tmp_path, iface, peer_pki, mode):
    pki_dir = write_layout(peer_pki, tmp_path / "peer-pki")
    log_path = tmp_path / "evcc.log"
    try:
        events, backend, peer = asyncio.run(_their_ev_at_our_charger(peer_pki, iface, pki_dir, log_path,
                                                                     mode))
    except BaseException:
        print(log_path.read_text(errors="replace")[-20000:] if log_path.exists() else "(no peer log)")
        raise
    log = peer.output()
    kinds = _kinds(events)
    assert isinstance(events[-1], SessionEnded) and events[-1].reason == "finished", (events[-1], log[-5000:])
    assert "SessionStarted" in kinds
    # the installation went through our backend: a fresh contract for the PCID of their OEM file
    install = [e for e in events if isinstance(e, CertificateInstallationNeeded)]
    assert len(install) == 1 and [c.emaid for c in backend.issued] == [EMAID]
    # authorisation: a contract chain our charger validated (their EVCC presents the contract of
    # its PKI files, not the one it was just sent: see the README)
    auth = [e for e in events if isinstance(e, AuthorizationNeeded)]
    assert auth and auth[0].payment == "Contract" and auth[0].emaid == EMAID
    assert auth[0].chain[0] == peer_pki.cert("contract-leaf")
    assert "ChargingStarted" in kinds and "ChargingStopped" in kinds
    assert peer.proc.returncode == 0, log[-5000:]
    for msg in ("CertificateInstallationRes", "PaymentDetailsRes", "AuthorizationRes", "PowerDeliveryRes",
                *(m.replace("Req", "Res") for m in _LOOP[mode]), "SessionStopRes"):
        assert msg in log, f"{msg} missing from the peer's log"
    assert "Traceback" not in log, log[-5000:]
