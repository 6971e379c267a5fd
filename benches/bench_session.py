"""Cost of one full ISO 15118-2 Plug & Charge session in memory, and sessions per second on one core.

Run (the summary with ratios and sessions/s is printed at the end with ``-s``)::

    pytest benches/bench_session.py --benchmark-enable -s -p no:cacheprovider

One *session* is an :class:`~plugcharge.EVSession` against a
:class:`~plugcharge.ChargerSession` with the
:class:`~plugcharge.backends.simulated.SimulatedBackend` answering the charger, bytes moved in memory (no
sockets, no TLS): real EXI encoding/decoding of every message, every signature created and
verified (AuthorizationReq, the signed SalesTariff, CertificateInstallationReq/Res), every
certificate chain validated (contract chain by the charger and the backend, CPS chain by the EV,
OEM provisioning chain by the backend), DC: SessionSetup … CableCheck, PreCharge, 5 CurrentDemand
cycles, WeldingDetection, SessionStop.  The EV wallet is an in-memory stand-in (no disk writes).

Groups:

* ``messages`` — EXI encode + decode of every message of one session against msgpack of the same
  messages (the codec's share of the session cost).
* ``session`` — ``reuse``: a contract already in the wallet (the everyday case); ``install``: first
  plug-in, contract installation included (the backend issues a contract certificate, encrypts its
  key; the EV decrypts it).  Baseline in the same run: one raw ECDSA P-256 verification
  (``cryptography``), so results read as "one session costs N signature verifications".
* ``floor`` — the session's public-key floor: :func:`count_public_key_ops` counts the public-key
  operations one session performs (ECDSA verifications and signatures, a certificate signed by the
  backend counted as a signature, ECDH exchanges, EC key generations), and each kind is timed here
  on its own in the same run (P-256, the ISO-2 curve; raw ``cryptography`` calls on a loaded key).
  The floor is the sum of count x time over the kinds.  ``session/crypto-floor <case>: <ratio>x``
  is the session's time over its floor, measured interleaved (:func:`interleaved_floor_ratio`: one
  session, then the floor's operations, round after round, in CPU time, ratio of the minimums), so
  that load on a shared machine weighs on both alike; it is the figure ``benches/budgets.py``
  checks in CI (``extra_info["crypto_floor"]`` of the session benchmarks in the JSON).
  ``PLUGCHARGE_BENCH_FLOOR_SECONDS`` (default 1) bounds that measurement per case.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pki.issue import issue_test_pki
from pki.ocsp import ocpp_request_data
from pki.store import TrustStore
from plugcharge.core.codec import NS_ISO2
from plugcharge.backends.base import (
    AuthorizeRequest, Get15118EVCertificateRequest, OCSPRequestData, iso_response_code, pem_chain,
)
from plugcharge.backends.simulated import SimulatedBackend
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.core.events import (
    AuthorizationNeeded, AuthorizationResult, CertificateInstallationNeeded, CertificateInstallationResponse,
)

from _inmemory import drive, interleaved_floor_ratio  # benches/, beside this file

NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
PKI = issue_test_pki(2, seed=15118, now=NOW - timedelta(days=10))
EMAID = "DEPLGCBENCH0001"
_RESULTS: dict[str, tuple[float, float]] = {}  # key -> (median, min) seconds
_OPS: dict[str, dict[str, int]] = {}  # session case -> public-key operation kind -> count
_FLOOR: dict[str, dict[str, float]] = {}  # session case -> interleaved crypto-floor measurement
#: public-key operation kinds of the floor, in report order
OP_KINDS = ("ecdsa-verify", "ecdsa-sign", "ecdh", "ec-keygen")


@dataclasses.dataclass
class _Contract:
    emaid: str
    leaf: bytes
    sub_cas: Sequence[bytes]
    private_key: Any
    chain_not_after: datetime


class MemoryWallet:
    """In-memory stand-in for :class:`plugcharge.pnc.wallet.ContractWallet` (the session's WalletLike)."""

    enabled = True

    def __init__(self, contract: Optional[_Contract] = None) -> None:
        self.contract = contract

        class _OEM:
            leaf = PKI.cert("oem-provisioning-leaf")
            sub_cas = (PKI.cert("oem-sub2"), PKI.cert("oem-sub1"))
            private_key = PKI.key("oem-provisioning-leaf")
        self.oem_provisioning = _OEM()
        self.pcid = PKI.pcid

    def usable_contract(self, now: datetime) -> Optional[_Contract]:
        return self.contract

    def install(self, leaf: bytes, sub_cas: Sequence[bytes], private_key: Any, *, provider: Any = None,
                emaid: Optional[str] = None) -> None:
        not_after = min(x509.load_der_x509_certificate(d).not_valid_after_utc for d in (leaf, *sub_cas))
        self.contract = _Contract(emaid or EMAID, leaf, tuple(sub_cas), private_key, not_after)


def _codecs():
    import exi

    return exi.get_codec


def _backend(cp) -> SimulatedBackend:
    be = SimulatedBackend(PKI, clock=lambda: NOW, codecs=cp)
    be.register_pcid(PKI.pcid, EMAID)
    return be


_STORE = TrustStore(PKI.store_roots())
_V2G = PKI.store_roots()["v2g"]
_MO_ROOT = PKI.cert("mo-root")


def one_session(cp, backend: SimulatedBackend, wallet: MemoryWallet) -> tuple[EVSession, ChargerSession]:
    """Run one complete session EV <-> charger (+ backend) in memory; returns both sessions."""
    ev = EVSession(EVConfig(charge_loops=5, poll_interval=0.0, loop_interval=0.0, target_soc=95.0, protocols=("iso2",)), codecs=cp,
                   security=EVSecurity(wallet=wallet, v2g_roots=_V2G, wall_clock=lambda: NOW))
    ch = ChargerSession(ChargerConfig(sales_tariff=True, protocols=("iso2",)), codecs=cp, now=0.0,
                        security=ChargerSecurity(trust_store=_STORE, wall_clock=lambda: NOW,
                                                 sales_tariff_key=PKI.key("mo-sub2"),
                                                 ocsp_request_data=lambda c: ocpp_request_data([*c, _MO_ROOT])))

    def charger_events(events: list, now: float, to_ev: list) -> None:
        for e in events:
            if isinstance(e, CertificateInstallationNeeded):
                resp = backend.get_15118_ev_certificate(
                    Get15118EVCertificateRequest.from_exi(e.exi_request, e.action, e.schema_version))
                ok = resp.status == "Accepted"
                to_ev.append(ch.send(CertificateInstallationResponse(resp.exi if ok else None, ok), now).data)
            elif isinstance(e, AuthorizationNeeded):
                req = AuthorizeRequest(e.emaid or "", pem_chain(e.chain),
                                       tuple(OCSPRequestData.from_ocpp(d) for d in e.ocsp_data) or None)
                resp = backend.authorize(req)
                res = AuthorizationResult(resp.accepted, None if resp.accepted else iso_response_code(resp))
                to_ev.append(ch.send(res, now).data)  # send() hands back whatever the charger has queued

    ch.connection_made(0.0)
    return drive(ev, ch, charger_events)


def _reuse_wallet(cp) -> MemoryWallet:
    issued = _backend(cp).issue_contract(PKI.pcid, now=NOW - timedelta(days=1))
    return MemoryWallet(_Contract(EMAID, issued.leaf, issued.sub_cas, issued.private_key,
                                  min(x509.load_der_x509_certificate(d).not_valid_after_utc
                                      for d in (issued.leaf, *issued.sub_cas))))


def _install_supported(cp) -> bool:
    try:
        cp(NS_ISO2).encode_fragment({"eMAID": {"Id": "id4", "value": EMAID}})
        return True
    except ValueError:
        return False


def _run(benchmark, key, fn, **extra):
    benchmark.extra_info["key"] = key
    benchmark.extra_info.update(extra)
    benchmark(fn)
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        _RESULTS[key] = (stats.stats.median, stats.stats.min)


def _check(ev: EVSession, ch: ChargerSession) -> None:
    """The session really ran to the end with Plug & Charge (not a quick failure being timed)."""
    assert ev.ended and ch.ended and ev.payment == "Contract" and ch.emaid == EMAID, (ev.state, ch.state)
    assert ev.trace.count(("in", "CurrentDemandRes")) == 5 and ev.trace[-1] == ("in", "SessionStopRes")
    assert ("in", "AuthorizationRes") in ev.trace and ("in", "WeldingDetectionRes") in ev.trace


# ---------------------------------------------------------------- the public-key floor
#: (type of the called object, method) -> operation kind; module functions by (module name, function)
_OP_OF = {
    ("ECPublicKey", "verify"): "ecdsa-verify",
    ("ECPrivateKey", "sign"): "ecdsa-sign",
    ("x509", "create_x509_certificate"): "ecdsa-sign",  # the backend signing a contract certificate
    ("ECPrivateKey", "exchange"): "ecdh",
    ("ec", "generate_private_key"): "ec-keygen",
    ("ec", "derive_private_key"): "ec-keygen",  # a private key from a scalar: one base-point multiplication
}
#: public-key work the floor has no P-256 timing for: counting it would understate the floor
_FOREIGN = {"Ed448PublicKey", "Ed448PrivateKey", "X448PrivateKey", "RSAPublicKey", "RSAPrivateKey"}


def count_public_key_ops(fn) -> dict[str, int]:
    """Run ``fn()`` once and count the public-key operations it performs, by kind (:data:`OP_KINDS`).

    ``sys.setprofile`` sees every call into ``cryptography``'s compiled core (``c_call`` events),
    whichever module of ours makes it. Operations on another curve than P-256 fail the count: the
    floor's timings are P-256 ones."""
    counts: collections.Counter[str] = collections.Counter()
    problems: list[str] = []

    def profile(frame, event, arg):  # noqa: ANN001 - sys.setprofile signature
        if event != "c_call":
            return
        owner = getattr(arg, "__self__", None)
        name = getattr(arg, "__name__", "")
        module = str(getattr(owner, "__name__", "")).rsplit(".", 1)[-1]  # "_rust.x509" -> "x509"
        kind = _OP_OF.get((type(owner).__name__, name)) or _OP_OF.get((module, name))
        if kind is None:
            if type(owner).__name__ in _FOREIGN and name in ("verify", "sign", "exchange"):
                problems.append(f"{type(owner).__name__}.{name}")
            return
        curve = getattr(getattr(owner, "curve", None), "name", "secp256r1")
        if curve != "secp256r1":
            problems.append(f"{kind} on {curve}")
        counts[kind] += 1

    old = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(old)
    assert not problems, f"public-key operations the P-256 floor does not cover: {sorted(set(problems))}"
    return {k: counts[k] for k in OP_KINDS}


def _floor_ops():
    """One callable per operation kind (P-256, SHA-256), on keys loaded once."""
    key = ec.generate_private_key(ec.SECP256R1())
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    data = b"SignedInfo" * 20
    alg = ec.ECDSA(hashes.SHA256())
    sig = key.sign(data, alg)
    pub = key.public_key()
    curve = ec.SECP256R1()
    return {
        "ecdsa-verify": lambda: pub.verify(sig, data, alg),
        "ecdsa-sign": lambda: key.sign(data, alg),
        "ecdh": lambda: key.exchange(ec.ECDH(), peer),
        "ec-keygen": lambda: ec.generate_private_key(curve),
    }


_FLOOR_OPS = _floor_ops()


@pytest.mark.parametrize("kind", OP_KINDS)
def test_floor_operation(benchmark, kind):
    """The time of one public-key operation of each kind, in the same run as the sessions."""
    benchmark.group = "floor"
    _run(benchmark, f"floor/{kind}", _FLOOR_OPS[kind])


def test_baseline_ecdsa_p256_verify(benchmark):
    benchmark.group = "session"
    key = ec.generate_private_key(ec.SECP256R1())
    data = b"SignedInfo" * 20
    sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    pub = key.public_key()
    _run(benchmark, "verify", lambda: pub.verify(sig, data, ec.ECDSA(hashes.SHA256())))


def test_session_reuse_contract(benchmark):
    benchmark.group = "session"
    cp = _codecs()
    backend, wallet = _backend(cp), _reuse_wallet(cp)
    _check(*one_session(cp, backend, wallet))
    _OPS["reuse"] = ops = count_public_key_ops(lambda: one_session(cp, backend, wallet))
    assert ops["ecdsa-verify"] >= 4 and ops["ecdsa-sign"] >= 1, ops  # the counter sees the session's crypto
    _run(benchmark, "reuse", lambda: one_session(cp, backend, wallet), public_key_ops=ops)
    _floor_ratio(benchmark, "reuse", lambda: one_session(cp, backend, wallet), ops)


def test_session_with_installation(benchmark):
    benchmark.group = "session"
    cp = _codecs()
    if not _install_supported(cp):
        pytest.skip("the exi codec cannot encode the CertificateInstallationRes fragments yet")
    backend = _backend(cp)
    ev, ch = one_session(cp, backend, MemoryWallet())
    _check(ev, ch)
    assert ev.trace.count(("in", "CertificateInstallationRes")) == 1
    _OPS["install"] = ops = count_public_key_ops(lambda: one_session(cp, backend, MemoryWallet()))
    assert ops["ecdh"] >= 2 and ops["ec-keygen"] >= 1, ops
    _run(benchmark, "install", lambda: one_session(cp, backend, MemoryWallet()), public_key_ops=ops)
    _floor_ratio(benchmark, "install", lambda: one_session(cp, backend, MemoryWallet()), ops)


def crypto_floor(ops: dict[str, int], times: dict[str, float]) -> float:
    """Seconds of public-key work: sum of count x time of one operation, over the kinds."""
    return sum(n * times[k] for k, n in ops.items() if n)


def _floor_ratio(benchmark, case: str, session, ops: dict[str, int]) -> None:
    if getattr(benchmark, "disabled", False):
        return
    seconds = float(os.environ.get("PLUGCHARGE_BENCH_FLOOR_SECONDS", "1"))
    _FLOOR[case] = m = interleaved_floor_ratio(session, [(_FLOOR_OPS[k], n) for k, n in ops.items()],
                                                seconds=seconds, min_rounds=20)
    benchmark.extra_info["crypto_floor"] = m  # read by benches/budgets.py


class _Recorder:
    """Codec provider that records every document the session encodes: (namespace, message)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.documents: list[tuple[str, dict]] = []

    def __call__(self, ns: str):
        codec = self.inner(ns)
        rec = self

        class _Codec:
            def encode(self, message):
                rec.documents.append((ns, message))
                return codec.encode(message)

            def __getattr__(self, name):
                return getattr(codec, name)
        return _Codec()


def _session_documents() -> list[tuple[str, dict]]:
    rec = _Recorder(_codecs())
    one_session(rec, _backend(rec), _reuse_wallet(rec))
    return rec.documents


def test_messages_exi_roundtrip(benchmark):
    """EXI encode + decode of every message of one (reuse) session: the codec's share of a session."""
    benchmark.group = "messages"
    cp = _codecs()
    docs = [(cp(ns), msg) for ns, msg in _session_documents()]
    assert len(docs) >= 30

    def roundtrip():
        for codec, msg in docs:
            codec.decode(codec.encode(msg))
    _run(benchmark, "exi", roundtrip)


def test_messages_msgpack_roundtrip(benchmark):
    """Baseline: msgpack pack + unpack of the same messages (schema-less binary, no validation)."""
    msgpack = pytest.importorskip("msgpack")
    benchmark.group = "messages"
    docs = [msg for _, msg in _session_documents()]

    def roundtrip():
        for msg in docs:
            msgpack.unpackb(msgpack.packb(msg, use_bin_type=True), raw=False)
    _run(benchmark, "msgpack", roundtrip)


def test_messages_codec_floor(benchmark):
    """The lowest ratio any session on this codec could reach: every message of one reuse session
    decoded from its V2GTP frame, encoded again and framed (what the two sides' codecs do, without
    any session logic), plus the session's public-key operations, over the same floor (interleaved,
    as ``session/crypto-floor``).  Printed as ``session/codec-floor reuse``; what is left between it
    and ``session/crypto-floor reuse`` is the two sides' session logic and Plug & Charge bookkeeping."""
    benchmark.group = "messages"
    if getattr(benchmark, "disabled", False) or "reuse" not in _OPS:
        pytest.skip("run with --benchmark-enable (after the reuse session) to get the codec floor")
    from plugcharge.core.v2gtp import FrameReader, PayloadType, append_frame, encode_frame

    cp = _codecs()
    frames = [(cp(ns), encode_frame(PayloadType.EXI, cp(ns).encode(msg))) for ns, msg in _session_documents()]
    work = [(_FLOOR_OPS[k], n) for k, n in _OPS["reuse"].items()]

    def codec_and_crypto() -> None:
        out, readers = bytearray(), (FrameReader(), FrameReader())  # one reader per side, as a session has
        for i, (codec, frame) in enumerate(frames):
            for ptype, payload in readers[i & 1].feed_payloads(frame):
                append_frame(out, ptype, codec.encode(codec.decode(payload)))
        for fn, n in work:
            for _ in range(n):
                fn()
    seconds = float(os.environ.get("PLUGCHARGE_BENCH_FLOOR_SECONDS", "1"))
    _FLOOR["codec"] = m = interleaved_floor_ratio(codec_and_crypto, work, seconds=seconds, min_rounds=20)
    assert m["ratio"] > 1.0, m  # the codec work costs something on top of the floor
    benchmark.extra_info["codec_floor"] = m


def test_zz_report():
    """Print the summary: ratios to one verification and sessions/s (median; best round in brackets)."""
    r = _RESULTS
    if "verify" not in r:
        pytest.skip("run with --benchmark-enable to get the report")
    v_med, v_min = r["verify"]
    lines = [f"one ECDSA P-256 verify: {v_med * 1e6:.1f} us (best {v_min * 1e6:.1f} us)"]
    for key, what in (("reuse", "session, contract reused"), ("install", "session with contract installation")):
        if key in r:
            med, best = r[key]
            lines.append(f"{what}: {med * 1e3:.2f} ms = {med / v_med:.0f}x one verify; {1 / med:.0f} sessions/s "
                         f"on one core (best round {best * 1e3:.2f} ms = {best / v_min:.0f}x, {1 / best:.0f}/s)")
    for case in ("reuse", "install"):
        if case in _FLOOR:
            m, what = _FLOOR[case], ", ".join(f"{n} {k}" for k, n in _OPS[case].items() if n)
            lines.append(f"session/crypto-floor {case}: {m['ratio']:.2f}x ({m['session_us'] / 1e3:.2f} ms of CPU "
                         f"over a floor of {m['floor_us'] / 1e3:.3f} ms = {what}; interleaved, best of "
                         f"{m['rounds']:.0f} rounds)")
    if "codec" in _FLOOR:
        m = _FLOOR["codec"]
        lines.append(f"session/codec-floor reuse: {m['ratio']:.2f}x (the session's messages decoded, encoded and "
                     f"framed without session logic, plus its public-key operations, over the same floor; "
                     f"{(m['session_us'] - m['floor_us']) / 1e3:.3f} ms of codec work)")
    if "exi" in r and "msgpack" in r:
        n = len(_session_documents())
        lines.append(f"EXI encode+decode of the session's {n} messages: {r['exi'][0] * 1e3:.2f} ms "
                     f"= {r['exi'][0] / r['msgpack'][0]:.1f}x msgpack of the same messages"
                     + (f"; {r['exi'][0] / r['reuse'][0] * 100:.0f}% of a reuse session" if "reuse" in r else ""))
    print("\n" + "\n".join(lines))
