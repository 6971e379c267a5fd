"""ISO 15118-2 sessions against a real peer: the ``iso15118`` PyPI package (0.31.2).

* our ``EVSession`` against its SECC, and
* its EVCC against our ``ChargerSession`` with the simulated backend,

over real sockets between two network namespaces made for these tests and joined by a veth pair
(``tests/_netns.py``; never a host interface): SDP over the ``ff02::1`` multicast group on that
link, then TLS 1.2 (or plain TCP) to the SECC's link-local address. The peer runs in its own
process (``_iso15118_peer.py``) in one namespace, with its own simulators and its own EXI codec
(EXIficient through py4j, so java is needed); our side runs in the other namespace. One test PKI
from :mod:`pki` serves both sides, written in the peer's file layout.

To keep the matrix within a few minutes each peer process starts its JVM once: one SECC serves
every session of our EV (a second one, offering only DIN and -20, shows the negotiation refusal),
and one EVCC process runs its sessions one after another as the tests ask for them.

What they show and the deviations found on the peer's side are listed in the README
("Interoperability"). Where the peer is at fault a test asserts our side's behaviour.
"""
from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import pytest

import _netns
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.backends.simulated import SimulatedBackend
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationRejected, CertificateInstallationNeeded,
    ContractInstallationFailed, ContractInstallationSucceeded, MeteringReceiptReceived, MeterValues, PaymentSelected,
    ChargingStarted, NegotiationFailed, PauseCharging, ProtocolError, SalesTariffVerified, SessionEnded, SessionPaused,
    SessionStarted,
)
from plugcharge.core.codec import NS_ISO2
from plugcharge.iso2.timing import EVCC_MSG_TIMEOUT, TimingProfile
from plugcharge.net.runner import run_charger, run_ev
from plugcharge.net.sdp import SDPRequest, Security, discover_secc, link_local_address, make_responder, start_sdp_server
from plugcharge.net.tls import client_context, secc_leaf_check, server_context, to_pem_chain
from plugcharge.net.transport import open_ev_connection, start_charger_server
from plugcharge.pnc.wallet import Contract, ContractInfo, ContractWallet

HARNESS = Path(__file__).with_name("_iso15118_peer.py")
_MISSING = [m for m in ("iso15118.secc", "iso15118.evcc", "aiofile", "py4j")
            if importlib.util.find_spec(m.split(".")[0]) is None]
pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(bool(_MISSING), reason=f"interop extra not installed (missing {', '.join(_MISSING)})"),
    pytest.mark.skipif(shutil.which("java") is None, reason="the iso15118 package's EXI codec needs java"),
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
#: Every certificate of the peer PKI is valid from 31 days ago (room for an expired contract).
PKI_START = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
PEER_TIMEOUT = 120.0
#: The peer's jar builds a new JAXB context for every ISO-2 message it encodes or decodes (12 ms at
#: best, 30-80 ms while both cores are busy; README), so its decode and encode of a request and its
#: response can take longer than the 250 ms CurrentDemand/ChargingStatus V2G_EVCC_Msg_Timeout. Our
#: EV waits at least 2 s per message against it; every other timer is the standard's.
PEER_TIMING = TimingProfile(msg_timeout={k: max(v, 2.0) for k, v in EVCC_MSG_TIMEOUT.items()})
MODES = ("DC_extended", "AC_three_phase_core")
_LOOP = {"DC_extended": ("CableCheckReq", "PreChargeReq", "CurrentDemandReq", "WeldingDetectionReq"),
         "AC_three_phase_core": ("ChargingStatusReq",)}


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


def write_contract(root: Path, leaf: bytes, subs: Sequence[bytes], key: Any) -> None:
    """Replace the contract (leaf, MO Sub-CA 2 and 1, key) in a layout written by :func:`write_layout`."""
    from pki.issue import private_key_pem

    certs, keys = root / "iso15118_2" / "certs", root / "iso15118_2" / "private_keys"
    for base, der in (("contractLeaf", leaf), ("moSubCA2", subs[0]), ("moSubCA1", subs[1])):
        (certs / f"{base}Cert.der").write_bytes(der)
        (certs / f"{base}Cert.pem").write_bytes(to_pem_chain([der]))
    (keys / "contractLeaf.key").write_bytes(private_key_pem(key))


# --------------------------------------------------------------------- the link and the PKI
@pytest.fixture(scope="module")
def link() -> Iterator[_netns.Link]:
    """Two network namespaces made for these tests, joined by a veth pair: the peer runs in
    ``link.a``'s namespace, our side in ``link.b``'s. ``PLUGCHARGE_TEST_IFACE`` may name a prepared
    interface instead (both sides then share it); never a host interface by default."""
    prepared = _netns.prepared_link()
    if prepared is not None:
        yield prepared
        return
    why = _netns.unavailable()
    if why is not None:
        pytest.skip(why)
    with _netns.veth_link(tag="pi", labels=("peer", "ours")) as made:
        yield made


def _assert_fixture_interface(link: _netns.Link) -> None:
    """The interfaces in use are the ones the fixture made (or the prepared one it was told to use)."""
    if not link.created:
        assert link.a.iface == link.b.iface == os.environ[_netns.ENV_IFACE]
        return
    for end in (link.a, link.b):
        assert end.iface in end.namespace.interfaces() and not _netns.interface_exists(end.iface)


@pytest.fixture(scope="module")
def peer_pki():
    from pki.issue import issue_test_pki

    return issue_test_pki(2, seed=1511802, now=PKI_START, emaid=EMAID)


@pytest.fixture(scope="module")
def foreign_pki():
    """Another MO PKI with the same names as ``peer_pki``'s (so its Sub-CAs look like ours)."""
    from pki.issue import issue_test_pki

    return issue_test_pki(2, seed=1511803, now=PKI_START, emaid=EMAID)


def _expired_contract(pki):
    from pki.issue import issue_contract

    return issue_contract(pki.cert("mo-sub2"), pki.key("mo-sub2"), EMAID, iso=2,
                          now=PKI_START + dt.timedelta(days=2), validity=dt.timedelta(days=3))


# --------------------------------------------------------------------- the peer process
class Peer:
    """A peer process in the link's peer namespace; its combined output goes to ``log``."""

    def __init__(self, role: str, pki_dir: Path, end: _netns.Endpoint, log: Path, *extra: str) -> None:
        self.log = log
        self._fh = open(log, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        argv = [sys.executable, str(HARNESS), role, "--pki", str(pki_dir), "--iface", end.iface, *extra]
        self.proc = subprocess.Popen(end.namespace.command(argv), stdout=self._fh, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE, env=env, cwd=str(pki_dir))
        self.started = time.monotonic()

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def since(self, offset: int) -> str:
        return self.output()[offset:]

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> Optional[re.Match]:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.output()[start:])
            if found or self.proc.poll() is not None or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def send(self, command: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._fh.close()


@pytest.fixture(scope="module")
def peer_dirs(tmp_path_factory, peer_pki) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("iso15118-peer")
    return {role: write_layout(peer_pki, root / role) for role in ("secc", "evcc", "secc-refusing")}


class Peers:
    """The peer processes of this module, one at a time on the link: asking for one stops the
    other (their SECC would otherwise hear their EVCC's SDP requests in the same namespace)."""

    KINDS = {
        "secc": ("secc", "--auth", "EIM,PNC", "--protocols", "ISO_15118_2", "--no-tls"),
        "secc-refusing": ("secc", "--auth", "EIM,PNC", "--protocols",
                          "DIN_SPEC_70121,ISO_15118_20_AC,ISO_15118_20_DC", "--no-tls"),
        "evcc": ("evcc", "--serve"),
    }

    def __init__(self, dirs: dict[str, Path], link: _netns.Link) -> None:
        self.dirs, self.link = dirs, link
        self.running: dict[str, Peer] = {}

    def get(self, kind: str) -> Peer:
        peer = self.running.get(kind)
        if peer is not None and peer.proc.poll() is None:
            return peer
        self.stop()
        role, *extra = self.KINDS[kind]
        pki_dir = self.dirs[kind]
        peer = Peer(role, pki_dir, self.link.a, pki_dir / f"{kind}.log", *extra)
        self.running[kind] = peer
        if role == "evcc":
            assert peer.wait_for(r"PEER-READY evcc", 90), peer.output()[-5000:]
        return peer

    def stop(self) -> None:
        for peer in self.running.values():
            peer.stop()
        self.running.clear()


@pytest.fixture(scope="module")
def peers(peer_dirs, link) -> Iterator[Peers]:
    pool = Peers(peer_dirs, link)
    try:
        yield pool
    finally:
        pool.stop()


@pytest.fixture
def their_secc(peers) -> Peer:
    """Their SECC: ISO 15118-2 only, Contract and ExternalPayment, TLS or plain TCP as asked."""
    return peers.get("secc")


@pytest.fixture
def their_evcc(peers) -> Peer:
    """Their EVCC process: one session per command on its stdin."""
    return peers.get("evcc")


def _kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]


def _ended(events) -> SessionEnded:
    return [e for e in events if isinstance(e, SessionEnded)][-1]


def _one(run: Any, cls: type) -> Any:
    """The first ``cls`` event of a session run; a failure shows the events and the peer's log."""
    found = next((e for e in run.events if isinstance(e, cls)), None)
    assert found is not None, (f"no {cls.__name__}", run.events, run.log[-6000:])
    return found


def _wallet(directory: Path, pki, *, contract: Any = None, subs: Sequence[bytes] = ()) -> ContractWallet:
    wallet = ContractWallet(directory)
    wallet.set_oem_provisioning(pki.cert("oem-provisioning-leaf"), (pki.cert("oem-sub2"), pki.cert("oem-sub1")),
                                pki.key("oem-provisioning-leaf"))
    wallet.set_enabled(True)
    if contract is not None:
        wallet.install(contract[0], subs or (pki.cert("mo-sub2"), pki.cert("mo-sub1")), contract[1])
    return wallet


class _FixedWallet:
    """A wallet that presents one given contract (the real one refuses a key that does not match)."""

    enabled = True
    pcid = None
    oem_provisioning = None

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def usable_contract(self, now: dt.datetime) -> Contract:
        return self.contract

    def install(self, *a: Any, **kw: Any) -> None:
        raise AssertionError("no installation expected")


# --------------------------------------------------------------------- our EV, their SECC
@dataclasses.dataclass
class EVRun:
    events: list
    log: str  # the peer's output during this session


async def _our_ev_session(pki, iface: str, ev: EVSession, peer: Peer, security: Security, on_event: Any) -> list:
    deadline = time.monotonic() + 90
    while True:  # the peer starts a JVM first; its SDP server comes up after that
        try:
            resp = await discover_secc(SDPRequest(security), interface=iface, timeout=0.25, max_requests=8)
            break
        except TimeoutError:
            if peer.proc.poll() is not None or time.monotonic() > deadline:
                raise
    assert resp.address.is_link_local and resp.host.endswith(f"%{iface}")
    assert resp.security is security
    if security is Security.TLS:
        stream = await open_ev_connection(resp.host, resp.port, ssl_context=client_context([pki.cert("v2g-root")]),
                                          verify_peer=secc_leaf_check)
        assert stream.tls and stream.tls_version == "TLSv1.2"
    else:
        stream = await open_ev_connection(resp.host, resp.port)
        assert not stream.tls
    return await asyncio.wait_for(run_ev(stream, ev, on_event=on_event), PEER_TIMEOUT)


def our_ev(link: _netns.Link, peer: Peer, pki, config: EVConfig, wallet: Any, *,
           security: Security = Security.TLS, on_event: Any = None, **ev_security: Any) -> EVRun:
    """One session of our EV against ``peer`` (a SECC), run inside our namespace."""
    _assert_fixture_interface(link)
    sec = EVSecurity(wallet=wallet, v2g_roots=[pki.cert("v2g-root")], **ev_security)
    # ISO 15118-2 only (DIN and -20 with this peer: test_pc_din_interop.py, test_pc_interop_iso15118_20.py)
    ev = EVSession(dataclasses.replace(config, protocols=("iso2",)), security=sec, timing=PEER_TIMING)
    offset = len(peer.output())
    try:
        events = link.b.namespace.run(asyncio.run, _our_ev_session(pki, link.b.iface, ev, peer, security, on_event),
                                      timeout=PEER_TIMEOUT + 60)
    except BaseException:
        print(peer.output()[-20000:])
        raise
    # its SECC logs the end of a session (a stop, a closed connection, a timeout) as it begins its
    # teardown: the session's log is complete from there, and what the teardown logs later (it
    # closes the connection 5 s on) stays out of the next session's
    peer.wait_for(r"The data link will", 15, offset)
    return EVRun(events, peer.since(offset))


def _assert_peer_saw(log: str, *messages: str) -> None:
    for msg in messages:
        assert msg in log, f"{msg} missing from the peer's log"
    assert "Traceback" not in log, log[-5000:]


@pytest.mark.parametrize("mode", MODES)
def test_our_ev_installs_a_contract_and_charges_at_their_secc(tmp_path, link, their_secc, peer_pki, mode):
    wallet_dir = tmp_path / "wallet"
    wallet = _wallet(wallet_dir, peer_pki)
    run = our_ev(link, their_secc, peer_pki, EVConfig(energy_mode=mode, charge_loops=3, poll_interval=0.2), wallet)
    events, kinds = run.events, _kinds(run.events)
    assert _ended(events).reason == "finished", (events[-1], run.log[-5000:])
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
    assert "SalesTariff" in run.log and [e for e in events if isinstance(e, SalesTariffVerified)]
    assert kinds.index("ChargingStarted") < kinds.index("ChargingStopped")
    assert sum(isinstance(e, MeterValues) for e in events) >= 3
    _assert_peer_saw(run.log, "CertificateInstallationReq", "PaymentDetailsReq", "AuthorizationReq",
                     "PowerDeliveryReq", *_LOOP[mode], "SessionStopReq")


def _pause_and_resume(link, peer, pki, wallet, mode) -> tuple[EVRun, EVRun]:
    """Session 1 pauses once charging has started; session 2 resumes it."""
    first = our_ev(link, peer, pki, EVConfig(energy_mode=mode, charge_loops=3, poll_interval=0.2), wallet,
                   on_event=lambda e: PauseCharging() if isinstance(e, ChargingStarted) else None)
    paused = next((e for e in first.events if isinstance(e, SessionPaused)), None)
    assert paused is not None, (first.events[-6:], first.log[-4000:])
    second = our_ev(link, peer, pki, EVConfig(energy_mode=mode, charge_loops=2, poll_interval=0.2,
                                              resume_session_id=paused.session_id, resume_payment=paused.payment,
                                              resume_schedule_id=paused.sa_schedule_id), wallet)
    return first, second


def test_our_ev_pauses_and_resumes_with_its_installed_contract_at_their_secc(tmp_path, link, their_secc, peer_pki):
    """Contract already installed: PaymentDetails and Authorization; then pause, and resume with
    the SessionID: OK_OldSessionJoined, PaymentDetails and a signed AuthorizationReq over the new
    GenChallenge (its SECC refuses the empty unsigned AuthorizationReq with FAILED_SignatureError)."""
    wallet = _wallet(tmp_path / "w", peer_pki, contract=(peer_pki.cert("contract-leaf"), peer_pki.key("contract-leaf")))
    first, second = _pause_and_resume(link, their_secc, peer_pki, wallet, "DC_extended")
    assert _ended(first.events).reason == "paused", first.log[-5000:]
    assert _one(first, PaymentSelected).reason == "contract_available"
    assert "CertificateInstallationReq" not in first.log
    _assert_peer_saw(first.log, "PaymentDetailsReq", "AuthorizationReq", "CurrentDemandReq", '"ChargingSession":"Pause"')
    started = _one(second, SessionStarted)
    paused = _one(first, SessionPaused)
    assert started.resumed and started.session_id == paused.session_id
    assert "OK_OldSessionJoined" in second.log
    assert _ended(second.events).reason == "finished", second.log[-5000:]
    assert [e.emaid for e in second.events if isinstance(e, AuthorizationAccepted)] == [EMAID]
    _assert_peer_saw(second.log, "PaymentDetailsReq", "AuthorizationReq", "CurrentDemandReq", '"ChargingSession":"Terminate"')


def test_our_ev_pauses_and_resumes_with_external_payment_at_their_secc(tmp_path, link, their_secc, peer_pki):
    wallet = _wallet(tmp_path / "w", peer_pki)
    wallet.set_enabled(False)  # Plug & Charge off: ExternalPayment
    first, second = _pause_and_resume(link, their_secc, peer_pki, wallet, "AC_three_phase_core")
    assert _one(first, PaymentSelected).option == "ExternalPayment"
    assert _ended(first.events).reason == "paused", first.log[-5000:]
    assert _one(second, SessionStarted).resumed
    assert "OK_OldSessionJoined" in second.log
    assert _ended(second.events).reason == "finished", second.log[-5000:]
    _assert_peer_saw(second.log, "AuthorizationReq", "ChargingStatusReq")
    assert "PaymentDetailsReq" not in second.log


def test_our_ev_charges_over_plain_tcp_at_their_secc(tmp_path, link, their_secc, peer_pki):
    """Without TLS there is no Contract: ExternalPayment."""
    run = our_ev(link, their_secc, peer_pki, EVConfig(charge_loops=2, poll_interval=0.2),
                 _wallet(tmp_path / "w", peer_pki), security=Security.NO_TLS)
    assert _ended(run.events).reason == "finished", run.log[-5000:]
    selected = _one(run, PaymentSelected)
    assert (selected.option, selected.reason) == ("ExternalPayment", "contract_not_offered")
    _assert_peer_saw(run.log, "AuthorizationReq", "CurrentDemandReq")


def test_our_ev_contract_update_at_their_secc(tmp_path, link, their_secc, peer_pki):
    """A contract close to its end asks for CertificateUpdate. Their SECC cannot take a valid
    CertificateUpdateReq (its model types eMAID as the Res's Id'd element; README): our EV reports
    the failed update, keeps its contract and advises ExternalPayment on this plug-in."""
    contract = (peer_pki.cert("contract-leaf"), peer_pki.key("contract-leaf"))
    wallet = _wallet(tmp_path / "w", peer_pki, contract=contract)
    # it expires within ten years: time for an update
    run = our_ev(link, their_secc, peer_pki, EVConfig(charge_loops=1, poll_interval=0.2), wallet,
                 update_before=dt.timedelta(days=3650))
    selected = _one(run, PaymentSelected)
    assert (selected.option, selected.installation) == ("Contract", "update")
    assert "CertificateUpdateReq" in run.log
    failed = _one(run, ContractInstallationFailed)
    end = _ended(run.events)
    assert end.reason in ("failed", "protocol_error", "connection_closed", "timeout")
    assert not [e for e in run.events if isinstance(e, ContractInstallationSucceeded)]
    assert [c.emaid for c in wallet.contracts()] == [EMAID]  # nothing the user owns is lost
    assert failed.reason


def test_their_secc_refuses_an_expired_contract(tmp_path, link, their_secc, peer_pki):
    """Our EV's clock is wrong, so it presents an expired contract: FAILED_CertificateExpired."""
    issued = _expired_contract(peer_pki)
    wallet = _wallet(tmp_path / "w", peer_pki, contract=(issued.der, issued.key))
    run = our_ev(link, their_secc, peer_pki, EVConfig(charge_loops=1, poll_interval=0.2), wallet,
                 wall_clock=lambda: PKI_START + dt.timedelta(days=3), update_before=dt.timedelta(0))
    rejected = _one(run, AuthorizationRejected)
    end = _ended(run.events)
    assert rejected.response_code == "FAILED_CertificateExpired", run.log[-5000:]
    assert (end.reason, end.response_code, end.fallback) == ("failed", "FAILED_CertificateExpired", "ExternalPayment")


def test_their_secc_accepts_a_foreign_sub_ca_and_our_ev_rejects_its_sales_tariff(tmp_path, link, their_secc,
                                                                                 peer_pki, foreign_pki):
    """A contract from another MO PKI: their SECC authorises it (it hands chains it cannot verify
    to its backend, whose simulator accepts everything; README). Its SalesTariff, signed with its
    MO Sub-CA 2 key, does not verify against the Sub-CA of our contract, so our EV stops: the final
    event carries our FAILED_SignatureError, not their answer to our SessionStopReq."""
    issued = foreign_pki.issue_contract(EMAID, now=PKI_START + dt.timedelta(days=1))
    wallet = _wallet(tmp_path / "w", peer_pki, contract=(issued.der, issued.key),
                     subs=(foreign_pki.cert("mo-sub2"), foreign_pki.cert("mo-sub1")))
    run = our_ev(link, their_secc, peer_pki, EVConfig(charge_loops=1, poll_interval=0.2), wallet)
    assert [e.emaid for e in run.events if isinstance(e, AuthorizationAccepted)] == [EMAID], (run.events,
                                                                                             run.log[-5000:])
    assert _one(run, ProtocolError).response_code == "FAILED_SignatureError"
    end = _ended(run.events)
    assert (end.reason, end.response_code, end.fallback) == ("failed", "FAILED_SignatureError", "ExternalPayment")
    assert "SessionStopReq" in run.log
    assert "ChargingStarted" not in _kinds(run.events)


def test_their_secc_refuses_a_wrongly_signed_authorization(tmp_path, link, their_secc, peer_pki):
    """Our EV signs AuthorizationReq with a key that is not the contract's: FAILED_SignatureError."""
    from cryptography.hazmat.primitives.asymmetric import ec

    info = ContractInfo(EMAID, "test", PKI_START, PKI_START + dt.timedelta(days=700), "wrong-key")
    contract = Contract(info, peer_pki.cert("contract-leaf"), (peer_pki.cert("mo-sub2"), peer_pki.cert("mo-sub1")),
                        ec.generate_private_key(ec.SECP256R1()))
    run = our_ev(link, their_secc, peer_pki, EVConfig(charge_loops=1, poll_interval=0.2), _FixedWallet(contract))
    rejected = _one(run, AuthorizationRejected)
    assert rejected.response_code == "FAILED_SignatureError", run.log[-5000:]
    assert _ended(run.events).response_code == "FAILED_SignatureError"


def test_a_secc_offering_only_din_and_20_refuses_our_ev(tmp_path, link, peers, peer_pki):
    """Negotiation refusal: their SECC configured for DIN SPEC 70121 and ISO 15118-20 only answers
    the offer of our EV configured for ISO 15118-2 only with Failed_NoNegotiation; our EV ends with
    that code (offering DIN too, it charges there: test_pc_din_interop.py)."""
    run = our_ev(link, peers.get("secc-refusing"), peer_pki, EVConfig(charge_loops=1, protocols=("iso2",)),
                 _wallet(tmp_path / "w", peer_pki))
    end = _ended(run.events)
    assert (end.reason, end.response_code) == ("failed", "Failed_NoNegotiation"), run.log[-5000:]
    assert "SessionSetupReq" not in run.log


# --------------------------------------------------------------------- their EVCC, our charger
_counter = iter(range(1, 1000))


@dataclasses.dataclass
class ChargerRun:
    events: list
    backend: SimulatedBackend
    status: str  # how their EVCC's session ended (PEER-DONE)
    log: str


async def _serve_one(link: _netns.Link, pki, evcc: Peer, spec: dict, *, config: ChargerConfig,
                     security: ChargerSecurity, backend: SimulatedBackend, tls: bool) -> list:
    results: asyncio.Queue = asyncio.Queue()

    async def handler(stream) -> None:
        # ISO 15118-2 only (the -20 interop: test_pc_interop_iso15118_20.py)
        session = ChargerSession(dataclasses.replace(config, tls=stream.tls, protocols=("iso2",)), security=security)
        try:
            results.put_nowait(await run_charger(stream, session, backend))
        except BaseException as exc:  # surfaced below
            results.put_nowait(exc)

    iface = link.b.iface
    address = link_local_address(iface)
    secc_chain = [pki.cert("secc-leaf"), pki.cert("cpo-sub2"), pki.cert("cpo-sub1")]
    ctx = server_context(secc_chain, pki.key("secc-leaf")) if tls else None
    server = await start_charger_server(handler, f"{address}%{iface}", 0, ssl_context=ctx)
    responder = make_responder(address, tls_port=server.port) if tls else make_responder(address, tcp_port=server.port)
    sdp = await start_sdp_server(responder, interface=iface)
    try:
        async with server:
            evcc.send(spec)
            got = await asyncio.wait_for(results.get(), PEER_TIMEOUT)
            if isinstance(got, BaseException):
                raise got
            return got
    finally:
        sdp.close()


def our_charger(link: _netns.Link, evcc: Peer, pki, *, mode: str = "DC_extended", install: bool = False,
                tls: bool = True, protocols: Sequence[str] = ("ISO_15118_2",), config: Optional[ChargerConfig] = None,
                security: Optional[ChargerSecurity] = None, backend: Optional[SimulatedBackend] = None,
                expect_done: bool = True) -> ChargerRun:
    """One session of their EVCC (the running ``evcc`` process) against our charger."""
    from pki.store import TrustStore

    _assert_fixture_interface(link)
    if backend is None:
        backend = SimulatedBackend(pki)
        backend.register_pcid(pki.pcid, EMAID)
    security = security or ChargerSecurity(trust_store=TrustStore(pki.store_roots()),
                                           sales_tariff_key=pki.key("mo-sub2"))
    config = config or ChargerConfig(energy_modes=(mode,), sales_tariff=True)
    number = next(_counter)
    spec = {"run": number, "mode": mode, "install": install, "tls": tls, "protocols": list(protocols), "loops": 3,
            "timeout": PEER_TIMEOUT}
    offset = len(evcc.output())
    assert evcc.proc.poll() is None, evcc.output()[-5000:]
    try:
        events = link.b.namespace.run(asyncio.run, _serve_one(link, pki, evcc, spec, config=config,
                                                              security=security, backend=backend, tls=tls),
                                      timeout=PEER_TIMEOUT + 30)
    except BaseException:
        print(evcc.since(offset)[-20000:])
        raise
    # their EVCC returns after a normal session; after a failed one it may hang (README): give up on it
    done = evcc.wait_for(rf"PEER-DONE {number} (.*)", 15 if expect_done else 3, offset)
    if done is None:
        evcc.send({"cancel": number})
        done = evcc.wait_for(rf"PEER-DONE {number} (.*)", 15, offset)
    assert done is not None, evcc.since(offset)[-5000:]
    return ChargerRun(events, backend, done.group(1).strip(), evcc.since(offset))


@pytest.mark.parametrize("mode", MODES)
def test_their_evcc_installs_a_contract_and_charges_at_our_charger(link, their_evcc, peer_pki, mode):
    """With installation; our charger asks for a signed metering receipt with every second status:
    their EVCC sends them in AC and ignores ReceiptRequired in DC (README; with a receipt asked for
    every time it would never stop in AC: it counts its charge loop only on statuses without one)."""
    run = our_charger(link, their_evcc, peer_pki, mode=mode, install=True,
                      config=ChargerConfig(energy_modes=(mode,), sales_tariff=True, receipt_every=2))
    events, kinds = run.events, _kinds(run.events)
    assert _ended(events).reason == "finished", (events[-1], run.log[-5000:])
    assert run.status == "ok", run.log[-5000:]
    assert "SessionStarted" in kinds
    # the installation went through our backend: a fresh contract for the PCID of their OEM file
    install = [e for e in events if isinstance(e, CertificateInstallationNeeded)]
    assert len(install) == 1 and [c.emaid for c in run.backend.issued] == [EMAID]
    # authorisation: a contract chain our charger validated (their EVCC presents the contract of
    # its PKI files, not the one it was just sent: see the README)
    auth = [e for e in events if isinstance(e, AuthorizationNeeded)]
    assert auth and auth[0].payment == "Contract" and auth[0].emaid == EMAID
    assert auth[0].chain[0] == peer_pki.cert("contract-leaf")
    assert "ChargingStarted" in kinds and "ChargingStopped" in kinds
    receipts = [e for e in events if isinstance(e, MeteringReceiptReceived)]
    if mode.startswith("AC"):
        assert len(receipts) >= 1 and "MeteringReceiptRes" in run.log
    else:
        assert not receipts and "MeteringReceiptReq" not in run.log  # their defect: ignored in DC
    _assert_peer_saw(run.log, "CertificateInstallationRes", "PaymentDetailsRes", "AuthorizationRes",
                     "PowerDeliveryRes", *(m.replace("Req", "Res") for m in _LOOP[mode]), "SessionStopRes")


def test_their_evcc_with_its_installed_contract_at_our_charger(link, their_evcc, peer_pki):
    run = our_charger(link, their_evcc, peer_pki, mode="AC_three_phase_core")
    assert _ended(run.events).reason == "finished" and run.status == "ok", run.log[-5000:]
    assert not [e for e in run.events if isinstance(e, CertificateInstallationNeeded)]
    assert _one(run, AuthorizationNeeded).emaid == EMAID
    _assert_peer_saw(run.log, "PaymentDetailsRes", "ChargingStatusRes")


def test_their_evcc_pays_externally_at_our_charger(link, their_evcc, peer_pki):
    """Our charger offers only ExternalPayment (TLS)."""
    run = our_charger(link, their_evcc, peer_pki, config=ChargerConfig(payment_options=("ExternalPayment",),
                                                                       energy_modes=("DC_extended",)))
    assert _ended(run.events).reason == "finished" and run.status == "ok", run.log[-5000:]
    need = _one(run, AuthorizationNeeded)
    assert (need.payment, need.emaid) == ("ExternalPayment", None)
    assert "PaymentDetailsReq" not in run.log


def test_their_evcc_charges_over_plain_tcp_at_our_charger(link, their_evcc, peer_pki):
    run = our_charger(link, their_evcc, peer_pki, mode="AC_three_phase_core", tls=False)
    assert _ended(run.events).reason == "finished" and run.status == "ok", run.log[-5000:]
    assert _one(run, AuthorizationNeeded).payment == "ExternalPayment"


@pytest.fixture
def evcc_contract(peer_dirs, peer_pki):
    """Lets a test give their EVCC another contract; the PKI files' contract comes back afterwards."""
    root = peer_dirs["evcc"]

    def give(leaf: bytes, subs: Sequence[bytes], key: Any) -> None:
        write_contract(root, leaf, subs, key)
    yield give
    write_contract(root, peer_pki.cert("contract-leaf"), (peer_pki.cert("mo-sub2"), peer_pki.cert("mo-sub1")),
                   peer_pki.key("contract-leaf"))


@pytest.mark.parametrize("case,code", [
    ("expired", "FAILED_CertificateExpired"),
    ("foreign Sub-CA", "FAILED_CertChainError"),
    ("unknown MO root", "FAILED_NoCertificateAvailable"),
    ("wrong signature", "FAILED_SignatureError"),
    ("revoked", "FAILED"),
])
def test_our_charger_refuses_their_evccs_bad_contract(link, their_evcc, peer_pki, foreign_pki, evcc_contract,
                                                      case, code):
    """The contract their EVCC presents (from its PKI files) is bad: our charger answers the code
    the message may carry [PaymentDetailsRes / AuthorizationRes] and ends the session."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from pki.store import TrustStore

    subs = (peer_pki.cert("mo-sub2"), peer_pki.cert("mo-sub1"))
    security = None
    backend = None
    if case == "expired":
        issued = _expired_contract(peer_pki)
        evcc_contract(issued.der, subs, issued.key)
    elif case == "foreign Sub-CA":
        issued = foreign_pki.issue_contract(EMAID, now=PKI_START + dt.timedelta(days=1))
        evcc_contract(issued.der, (foreign_pki.cert("mo-sub2"), foreign_pki.cert("mo-sub1")), issued.key)
    elif case == "unknown MO root":
        security = ChargerSecurity(trust_store=TrustStore({"v2g": peer_pki.store_roots()["v2g"]}))
    elif case == "wrong signature":
        evcc_contract(peer_pki.cert("contract-leaf"), subs, ec.generate_private_key(ec.SECP256R1()))
    else:
        from cryptography import x509

        backend = SimulatedBackend(peer_pki)
        backend.register_pcid(peer_pki.pcid, EMAID)
        backend.revoke_serial(x509.load_der_x509_certificate(peer_pki.cert("contract-leaf")).serial_number)
    run = our_charger(link, their_evcc, peer_pki, mode="AC_three_phase_core", security=security, backend=backend,
                      expect_done=False)
    end = _ended(run.events)
    assert (end.reason, end.response_code) == ("failed", code), (end, run.log[-5000:])
    response = "AuthorizationRes" if case in ("wrong signature", "revoked") else "PaymentDetailsRes"
    assert re.search(rf"{response}.*{code}", run.log) or f"'{code}'" in run.log, run.log[-5000:]
    if case == "revoked":
        rejected = _one(run, AuthorizationRejected)
        assert (rejected.response_code, rejected.cause) == ("FAILED", "FAILED_CertificateRevoked")
    assert "ChargingStarted" not in _kinds(run.events)


@pytest.mark.parametrize("protocols,tls", [
    (["DIN_SPEC_70121"], True),   # under TLS their EVCC drops DIN: an empty AppProtocol list
    (["DIN_SPEC_70121"], False),
    (["ISO_15118_20_AC", "ISO_15118_20_DC"], True),
], ids=["DIN-only-TLS", "DIN-only-TCP", "20-only"])
def test_our_iso2_charger_refuses_their_evccs_din_or_20_only_offer(link, their_evcc, peer_pki, protocols, tls):
    """Our charger configured for ISO 15118-2 only (DIN against our DIN charger:
    test_pc_din_interop.py) refuses an offer of DIN or -20 alone with Failed_NoNegotiation."""
    config = ChargerConfig(protocols=("iso2",), energy_modes=("AC_three_phase_core",))
    run = our_charger(link, their_evcc, peer_pki, mode="AC_three_phase_core", tls=tls, protocols=protocols,
                      config=config, expect_done=False)
    end = _ended(run.events)
    assert (end.reason, end.response_code) == ("failed", "Failed_NoNegotiation"), (end, run.log[-5000:])
    failed = _one(run, NegotiationFailed)
    if protocols == ["DIN_SPEC_70121"] and tls:
        assert failed.offered == ()  # an empty list: reported as what it is, not as undecodable
        assert "offers nothing" in end.detail
    else:
        assert failed.offered and NS_ISO2 not in failed.offered
    assert "Failed_NoNegotiation" in run.log
