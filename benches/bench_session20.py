"""Cost of one full ISO 15118-20 Plug & Charge session in memory against its public-key floor.

Run (the summary is printed at the end with ``-s``)::

    pytest benches/bench_session20.py --benchmark-enable -s -p no:cacheprovider

One *session* is an :class:`~plugcharge.EVSession` against a :class:`~plugcharge.ChargerSession`
speaking ISO 15118-20 DC with Plug & Charge, the
:class:`~plugcharge.backends.simulated.SimulatedBackend` answering the charger through the same
helpers the runner uses, bytes moved in memory (no sockets, no TLS): real EXI encoding/decoding of
every message, every signature created and verified, every certificate chain validated:

* ``iso20-reuse``: a contract in the wallet; the EV signs ``PnC_AReqAuthorizationMode`` over the
  GenChallenge (ecdsa-sha512, secp521r1), the charger validates the contract chain (-20 contract
  profile) and the signature, the backend validates the chain again (Authorize); SessionSetup …
  DC_CableCheck, DC_PreCharge, 5 DC_ChargeLoop, DC_WeldingDetection, SessionStop.
* ``iso20-install``: first plug-in: the EV signs CertificateInstallationReq with its OEM
  provisioning key, the backend checks the OEM chain and signature, issues a P-521 contract (a
  certificate signed by the MO Sub-CA 2), encrypts its key (ephemeral ECDH P-521) and signs the
  response with the CPS key; the EV checks the CPS chain and signature and the contract chain,
  decrypts the key (ECDH) and stores the contract; then as ``iso20-reuse``.
* ``iso20-reuse-ed448``: as ``iso20-reuse`` with an Ed448 contract (Ed448 signature and leaf).

The EV wallet is an in-memory stand-in (no disk writes); each side keeps its security object
across sessions, as a vehicle and a charger do.

The floor: :func:`count_public_key_ops` counts the public-key operations one session performs, by
kind (:data:`OP_KINDS`: P-521 and Ed448 verifications and signatures, a certificate the backend
signs counted as a signature of its CA's algorithm, ECDH P-521 exchanges, key generations), and each
kind is timed on its own in the same run (raw ``cryptography`` calls on loaded keys).  The floor is
the sum of count x time.  ``session/crypto-floor iso20-<case>: <ratio>x`` is the session's time over
its floor, measured interleaved (one session, then the floor's operations, round after round, in
CPU time with the cyclic GC off; the ratio of the minimums), so that load on a shared machine weighs
on both alike (``extra_info["crypto_floor"]`` of the session benchmarks in the JSON, as in
``bench_session.py``).  ``PLUGCHARGE_BENCH_FLOOR_SECONDS`` (default 1) bounds that measurement per
case.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448

from pki.issue import issue_test_pki
from pki.store import TrustStore
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.backends.base import (
    authorization_result_command, authorize_request_for, certificate_request_for, certificate_response_command,
)
from plugcharge.backends.simulated import SimulatedBackend
from plugcharge.core.events import AuthorizationNeeded, CertificateInstallationNeeded

from _inmemory import drive, interleaved_floor_ratio  # benches/, beside this file

NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
PKI2 = issue_test_pki(2, seed=15118, now=NOW - timedelta(days=10))
PKI20 = issue_test_pki(20, seed=15120, now=NOW - timedelta(days=10))
EMAID = "DEPLGCBENCH2001"
#: public-key operation kinds of the -20 floor, in report order
OP_KINDS = ("p521-verify", "p521-sign", "ed448-verify", "ed448-sign", "p521-ecdh", "p521-keygen", "ed448-keygen")
_RESULTS: dict[str, tuple[float, float]] = {}  # key -> (median, min) seconds
_OPS: dict[str, dict[str, int]] = {}  # case -> kind -> count
_FLOOR: dict[str, dict[str, float]] = {}  # case -> interleaved measurement


@dataclasses.dataclass
class _Contract:
    emaid: str
    leaf: bytes
    sub_cas: Sequence[bytes]
    private_key: Any
    chain_not_after: datetime


@dataclasses.dataclass
class _OEM:
    leaf: bytes
    sub_cas: Sequence[bytes]
    private_key: Any


class MemoryWallet20:
    """In-memory stand-in for the EV's wallet with -20 contracts (the session's ``Wallet20Like``)."""

    enabled = True

    def __init__(self, contract: Optional[_Contract] = None) -> None:
        self.contract = contract
        self.oem = _OEM(PKI20.cert("oem-provisioning-leaf"), (PKI20.cert("oem-sub2"), PKI20.cert("oem-sub1")),
                        PKI20.key("oem-provisioning-leaf"))

    def oem_provisioning_for(self, iso: int) -> Optional[_OEM]:
        return self.oem if iso == 20 else None

    def usable_contract(self, now: datetime, iso: int = 2) -> Optional[_Contract]:
        return self.contract if iso == 20 else None

    def install(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: Any, *, provider: Any = None,
                emaid: Optional[str] = None) -> None:
        self.contract = _contract(leaf, tuple(sub_cas), private_key)


def _contract(leaf: bytes, sub_cas: Sequence[bytes], key: Any) -> _Contract:
    not_after = min(x509.load_der_x509_certificate(d).not_valid_after_utc for d in (leaf, *sub_cas))
    return _Contract(EMAID, leaf, tuple(sub_cas), key, not_after)


def _codecs() -> Any:
    import exi

    return exi.get_codec


def _backend(cp: Any, algorithm: str = "secp521r1") -> SimulatedBackend:
    be = SimulatedBackend(PKI2, pki20=PKI20, clock=lambda: NOW, codecs=cp, contract_algorithm20=algorithm)
    be.register_pcid(PKI20.pcid, EMAID)
    return be


_CHARGER_STORE = TrustStore(PKI20.store_roots())


class Case:
    """One benchmark case: the backend, the EV's wallet and both sides' security objects (kept
    across sessions: the EV's trust store and the charger's are built once)."""

    def __init__(self, cp: Any, *, install: bool, algorithm: str = "secp521r1") -> None:
        self.cp = cp
        self.install = install
        self.backend = _backend(cp, algorithm)
        self.wallet = MemoryWallet20()
        if not install:
            key = ed448.Ed448PrivateKey.generate() if algorithm == "ed448" else ec.generate_private_key(ec.SECP521R1())
            issued = PKI20.issue_contract(EMAID, key=key, now=NOW - timedelta(days=1))
            self.wallet.contract = _contract(issued.der, (PKI20.cert("mo-sub2"), PKI20.cert("mo-sub1")), key)
        self.ev_security = EVSecurity(wallet=self.wallet, v2g_roots=[PKI20.cert("v2g-root")],  # type: ignore[arg-type]
                                      mo_roots=[PKI20.cert("mo-root")], wall_clock=lambda: NOW)
        self.charger_security = ChargerSecurity(trust_store=_CHARGER_STORE, wall_clock=lambda: NOW)
        self.ev_security.iso20_pnc = None

    def __call__(self) -> tuple[EVSession, ChargerSession]:
        if self.install:
            self.wallet.contract = None
        return one_session(self.cp, self.backend, self.ev_security, self.charger_security)


def one_session(cp: Any, backend: SimulatedBackend, ev_security: EVSecurity,
                charger_security: ChargerSecurity) -> tuple[EVSession, ChargerSession]:
    """Run one complete -20 PnC session EV <-> charger (+ backend) in memory; returns both sessions."""
    ev = EVSession(EVConfig(charge_loops=5, poll_interval=0.0, loop_interval=0.0, target_soc=95.0, tls=True,
                            protocols=("iso20",)), codecs=cp, security=ev_security)
    ch = ChargerSession(ChargerConfig(protocols=("iso20",)), codecs=cp, now=0.0, security=charger_security)

    def charger_events(events: list, now: float, to_ev: list) -> None:
        for e in events:
            if isinstance(e, CertificateInstallationNeeded):
                resp = backend.get_15118_ev_certificate(certificate_request_for(e))
                to_ev.append(ch.send(certificate_response_command(resp), now).data)
            elif isinstance(e, AuthorizationNeeded):
                req = authorize_request_for(e)
                res = authorization_result_command(backend.authorize(req) if req is not None else None, iso20=True)
                to_ev.append(ch.send(res, now).data)

    ch.connection_made(0.0)
    return drive(ev, ch, charger_events)


def _check(ev: EVSession, ch: ChargerSession, *, install: bool) -> None:
    """The session really ran to the end with Plug & Charge (not a quick failure being timed)."""
    assert ev.ended and ch.ended and ev.handler.payment == "Contract" and ch.handler.emaid == EMAID, (ev.state, ch.state)
    assert ev.trace.count(("in", "DC_ChargeLoopRes")) == 5 and ev.trace[-1] == ("in", "SessionStopRes")
    assert ev.trace.count(("in", "CertificateInstallationRes")) == (1 if install else 0)


# ---------------------------------------------------------------- the public-key floor
def count_public_key_ops(fn: Callable[[], Any], *, ca_algorithm: str = "secp521r1") -> dict[str, int]:
    """Run ``fn()`` once and count the public-key operations it performs, by kind (:data:`OP_KINDS`).

    ``sys.setprofile`` sees every call into ``cryptography``'s compiled core (``c_call`` events),
    whichever module makes it.  A certificate the backend signs (``create_x509_certificate``) counts
    as a signature of ``ca_algorithm``.  Work the floor has no timing for (P-256, RSA, X448) fails the
    count: the floor would understate the session's crypto."""
    counts: collections.Counter[str] = collections.Counter()
    problems: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event != "c_call":
            return
        owner = getattr(arg, "__self__", None)
        name = getattr(arg, "__name__", "")
        kind_of_owner = type(owner).__name__
        module = str(getattr(owner, "__name__", "")).rsplit(".", 1)[-1]
        kind: Optional[str] = None
        if kind_of_owner in ("ECPublicKey", "ECPrivateKey") and name in ("verify", "sign", "exchange"):
            curve = getattr(getattr(owner, "curve", None), "name", "")
            if curve != "secp521r1":
                problems.append(f"{name} on {curve}")
                return
            kind = {"verify": "p521-verify", "sign": "p521-sign", "exchange": "p521-ecdh"}[name]
        elif kind_of_owner == "Ed448PublicKey" and name == "verify":
            kind = "ed448-verify"
        elif kind_of_owner == "Ed448PrivateKey" and name == "sign":
            kind = "ed448-sign"
        elif module == "ec" and name in ("generate_private_key", "derive_private_key"):
            kind = "p521-keygen"
        elif module == "ed448" and name == "generate_key":
            kind = "ed448-keygen"
        elif module == "x509" and name == "create_x509_certificate":
            kind = "ed448-sign" if ca_algorithm == "ed448" else "p521-sign"
        elif kind_of_owner in ("RSAPublicKey", "RSAPrivateKey", "X448PrivateKey", "Ed25519PrivateKey",
                               "Ed25519PublicKey") and name in ("verify", "sign", "exchange"):
            problems.append(f"{kind_of_owner}.{name}")
        if kind is not None:
            counts[kind] += 1

    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(old)
    assert not problems, f"public-key operations the -20 floor does not cover: {sorted(set(problems))}"
    return {k: counts[k] for k in OP_KINDS}


def _floor_ops() -> dict[str, Callable[[], Any]]:
    """One callable per operation kind, on keys loaded once (SHA-512 for ECDSA P-521)."""
    p521 = ec.generate_private_key(ec.SECP521R1())
    peer = ec.generate_private_key(ec.SECP521R1()).public_key()
    e448 = ed448.Ed448PrivateKey.generate()
    data = b"SignedInfo" * 20
    alg = ec.ECDSA(hashes.SHA512())
    sig521, sig448 = p521.sign(data, alg), e448.sign(data)
    pub521, pub448 = p521.public_key(), e448.public_key()
    curve = ec.SECP521R1()
    return {
        "p521-verify": lambda: pub521.verify(sig521, data, alg),
        "p521-sign": lambda: p521.sign(data, alg),
        "ed448-verify": lambda: pub448.verify(sig448, data),
        "ed448-sign": lambda: e448.sign(data),
        "p521-ecdh": lambda: p521.exchange(ec.ECDH(), peer),
        "p521-keygen": lambda: ec.generate_private_key(curve),
        "ed448-keygen": ed448.Ed448PrivateKey.generate,
    }


_FLOOR_OPS = _floor_ops()


def _run(benchmark: Any, key: str, fn: Callable[[], Any], **extra: Any) -> None:
    benchmark.extra_info["key"] = key
    benchmark.extra_info.update(extra)
    benchmark(fn)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        _RESULTS[key] = (stats.stats.median, stats.stats.min)


def _measure(benchmark: Any, case: str, run: Case, minimum: dict[str, int]) -> None:
    run()  # warm: codecs, the EV's trust store
    _check(*run(), install=run.install)
    _OPS[case] = ops = count_public_key_ops(run)
    for kind, n in minimum.items():  # the counter sees the session's crypto
        assert ops[kind] >= n, ops
    _run(benchmark, case, run, public_key_ops=ops)
    if getattr(benchmark, "disabled", False):
        return
    seconds = float(os.environ.get("PLUGCHARGE_BENCH_FLOOR_SECONDS", "1"))
    _FLOOR[case] = m = interleaved_floor_ratio(run, [(_FLOOR_OPS[k], n) for k, n in ops.items()], seconds=seconds)
    benchmark.extra_info["crypto_floor"] = m  # read by benches/budgets.py


@pytest.mark.parametrize("kind", OP_KINDS)
def test_floor20_operation(benchmark: Any, kind: str) -> None:
    """The time of one public-key operation of each kind, in the same run as the sessions."""
    benchmark.group = "floor20"
    _run(benchmark, f"floor20/{kind}", _FLOOR_OPS[kind])


def test_session20_reuse_contract(benchmark: Any) -> None:
    benchmark.group = "session20"
    _measure(benchmark, "iso20-reuse", Case(_codecs(), install=False), {"p521-verify": 4, "p521-sign": 1})


def test_session20_reuse_ed448_contract(benchmark: Any) -> None:
    benchmark.group = "session20"
    _measure(benchmark, "iso20-reuse-ed448", Case(_codecs(), install=False, algorithm="ed448"),
             {"ed448-verify": 1, "ed448-sign": 1, "p521-verify": 6})


def test_session20_with_installation(benchmark: Any) -> None:
    benchmark.group = "session20"
    _measure(benchmark, "iso20-install", Case(_codecs(), install=True),
             {"p521-ecdh": 2, "p521-keygen": 2, "p521-sign": 3})


def test_zz_report20() -> None:
    """Print each session against its floor (``session/crypto-floor iso20-<case>: <ratio>x``)."""
    if not _FLOOR:
        pytest.skip("run with --benchmark-enable to get the report")
    lines = []
    for kind in OP_KINDS:
        if f"floor20/{kind}" in _RESULTS:
            med, best = _RESULTS[f"floor20/{kind}"]
            lines.append(f"one {kind}: {med * 1e6:.0f} us (best {best * 1e6:.0f} us)")
    for case, m in _FLOOR.items():
        ops = ", ".join(f"{n} {k}" for k, n in _OPS[case].items() if n)
        lines.append(f"session/crypto-floor {case}: {m['ratio']:.2f}x (session {m['session_us'] / 1e3:.2f} ms, "
                     f"floor {m['floor_us'] / 1e3:.2f} ms: {ops}; {m['rounds']:.0f} rounds)")
    print("\n" + "\n".join(lines))
