"""Shared helpers for the plugcharge session tests: codecs, test PKI, wallet, backend, in-memory pump.

``codecs()`` returns the real EXI codec provider when ``exi`` encodes ISO-2 messages, else a JSON
fake (``FakeCodec``) with the same API; ``PLUGCHARGE_FAKE_CODEC=1`` forces the fake.
"""
from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from plugcharge.core.codec import NS_APP, NS_ISO2, NS_XMLDSIG, body_of, v2g_message
from plugcharge.core.handshake import sap_req
from plugcharge.pnc.certs import cert_chain
from plugcharge import (
    ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession, SessionStore,
)
from plugcharge.core.events import (
    AuthorizationNeeded, AuthorizationResult, BackendRequest, CertificateInstallationNeeded,
    CertificateInstallationResponse, StartSession,
)
from plugcharge.pnc.signatures import sign_message
from plugcharge.iso2.timing import TimingProfile
from plugcharge.pnc.wallet import ContractWallet

#: Real time (to the hour): TLS handshakes check certificate validity against the real clock.
NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------- codecs
class FakeDecodeError(ValueError):
    """Raised by FakeCodec.decode on malformed input (mirrors exi.DecodeError being a ValueError)."""


def _enc(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray)):
        return {"$b": base64.b64encode(bytes(o)).decode()}
    if isinstance(o, dict):
        return {k: _enc(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_enc(v) for v in o]
    return o


def _dec(o: Any) -> Any:
    if isinstance(o, dict):
        if set(o) == {"$b"}:
            return base64.b64decode(o["$b"])
        return {k: _dec(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_dec(v) for v in o]
    return o


class FakeCodec:
    """JSON stand-in for an EXI codec: canonical (sorted keys), bytes tagged, namespace-tagged."""

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def _e(self, message: dict, kind: str) -> bytes:
        if not isinstance(message, dict) or len(message) != 1:
            raise ValueError("message must be a dict with one root element")
        return json.dumps([self.ns, kind, _enc(message)], sort_keys=True, separators=(",", ":")).encode()

    def _d(self, data: bytes, kind: str) -> dict:
        try:
            ns, k, msg = json.loads(bytes(data).decode())
        except Exception as exc:
            raise FakeDecodeError(f"not a fake EXI stream: {exc}") from None
        if ns != self.ns or k != kind or not isinstance(msg, dict):
            raise FakeDecodeError(f"stream is {ns}/{k}, expected {self.ns}/{kind}")
        return _dec(msg)

    def encode(self, message: dict) -> bytes:
        return self._e(message, "doc")

    def decode(self, data: bytes) -> dict:
        return self._d(data, "doc")

    def encode_fragment(self, message: dict) -> bytes:
        return self._e(message, "frag")

    def decode_fragment(self, data: bytes) -> dict:
        return self._d(data, "frag")


_FAKES: dict[str, FakeCodec] = {}


def fake_codecs(ns: str) -> FakeCodec:
    if ns not in _FAKES:
        _FAKES[ns] = FakeCodec(ns)
    return _FAKES[ns]


@lru_cache(maxsize=None)
def real_codec_status() -> Optional[str]:
    """None when the real codec works for ISO-2 documents and fragments, else why not."""
    try:
        import exi

        c = exi.get_codec(NS_ISO2)
        msg = v2g_message(bytes(8), "SessionStopReq", {"ChargingSession": "Terminate"})
        if c.decode(c.encode(msg)) != msg:
            return "round trip differs"
        c.encode_fragment({"AuthorizationReq": {"Id": "id1", "GenChallenge": bytes(16)}})
        exi.get_codec(NS_XMLDSIG)
        exi.get_codec(NS_APP).encode(sap_req(((NS_ISO2, 2, 0, 1, 1),)))
        return None
    except Exception as exc:  # pragma: no cover - depends on the codec's state
        return f"{type(exc).__name__}: {exc}"


def codecs() -> Callable[[str], Any]:
    if os.environ.get("PLUGCHARGE_FAKE_CODEC") == "1" or real_codec_status() is not None:
        return fake_codecs
    import exi

    return exi.get_codec


# ---------------------------------------------------------------- PKI
@lru_cache(maxsize=None)
def session_pki():
    from pki.issue import issue_test_pki

    return issue_test_pki(2, seed=15118, now=NOW - timedelta(days=10))


def v2g_roots() -> tuple[bytes, ...]:
    return tuple(session_pki().store_roots()["v2g"])


def trust_store():
    from pki.store import TrustStore

    return TrustStore(session_pki().store_roots())


def make_wallet(directory: Path, *, enabled: bool = True, contract: bool = False,
                contract_now: Optional[datetime] = None) -> ContractWallet:
    p = session_pki()
    w = ContractWallet(directory)
    w.set_enabled(enabled)
    w.set_oem_provisioning(p.cert("oem-provisioning-leaf"), (p.cert("oem-sub2"), p.cert("oem-sub1")),
                           p.key("oem-provisioning-leaf"))
    if contract:
        issued = p.issue_contract(p.emaid, now=contract_now) if contract_now else None
        leaf, key = (issued.der, issued.key) if issued else (p.cert("contract-leaf"), p.key("contract-leaf"))
        w.install(leaf, (p.cert("mo-sub2"), p.cert("mo-sub1")), key)
    return w


# ---------------------------------------------------------------- backend (CPS + MO)
class TestBackend:
    """Plays the certificate provisioning service and the eMSP for the in-memory tests."""

    __test__ = False

    def __init__(self, codec_provider: Callable[[str], Any], *, install: str = "ok", authorize: str = "accept",
                 emaid: str = "DEPLGC000000042", auth_delay_polls: int = 0) -> None:
        self.codecs = codec_provider
        self.install_mode = install
        self.authorize_mode = authorize
        self.emaid = emaid
        self.auth_delay_polls = auth_delay_polls
        self.requests: list[Any] = []
        self.issued_key: Optional[ec.EllipticCurvePrivateKey] = None

    def certificate_response(self, req: CertificateInstallationNeeded) -> Optional[bytes]:
        from pki.keytransport import encrypt_contract_key

        p = session_pki()
        self.requests.append(req)
        if self.install_mode == "refuse":
            return None
        name, body, _ = body_of(self.codecs(NS_ISO2).decode(req.exi_request))
        signer_der = body["OEMProvisioningCert"] if name == "CertificateInstallationReq" else \
            body["ContractSignatureCertChain"]["Certificate"]
        receiver = x509.load_der_x509_certificate(bytes(signer_der)).public_key()
        issued = p.issue_contract(self.emaid, now=NOW - timedelta(days=1))
        self.issued_key = issued.key
        enc = encrypt_contract_key(issued.key, receiver, iso=2, contract_certificate=issued.der)
        if self.install_mode == "wrong_key":
            other = ec.generate_private_key(ec.SECP256R1())
            enc = encrypt_contract_key(other, receiver, iso=2)
        res_name = "CertificateUpdateRes" if name == "CertificateUpdateReq" else "CertificateInstallationRes"
        res = {
            "ResponseCode": "FAILED" if self.install_mode == "failed_code" else "OK",
            "SAProvisioningCertificateChain": cert_chain(p.cert("cps-leaf"), (p.cert("cps-sub2"), p.cert("cps-sub1"))),
            "ContractSignatureCertChain": cert_chain(issued.der, (p.cert("mo-sub2"), p.cert("mo-sub1")), "id1"),
            "ContractSignatureEncryptedPrivateKey": {"Id": "id2", "value": enc.ciphertext},
            "DHpublickey": {"Id": "id3", "value": enc.dh_public_key},
            "eMAID": {"Id": "id4", "value": self.emaid},
        }
        msg = v2g_message(bytes(8), res_name, res)
        signer = p.key("cps-leaf") if self.install_mode != "forged" else ec.generate_private_key(ec.SECP256R1())
        if self.install_mode != "failed_code":
            sign_message(msg, signer, codecs=self.codecs)
        if self.install_mode == "tampered":
            msg["V2G_Message"]["Body"][res_name]["eMAID"]["value"] = "DEPLGC000000099"
        return self.codecs(NS_ISO2).encode(msg)

    def authorization(self, req: AuthorizationNeeded) -> AuthorizationResult:
        self.requests.append(req)
        if self.authorize_mode == "accept":
            return AuthorizationResult(True)
        return AuthorizationResult(False, "FAILED_CertificateRevoked" if self.authorize_mode == "revoked" else None)


# ---------------------------------------------------------------- sessions and pump
FAST = TimingProfile()


def pin_protocols(config: Any, protocols: tuple[str, ...] = ("iso2",)) -> Any:
    """``config`` speaking ``protocols`` unless it names protocols of its own (not the default)."""
    from dataclasses import replace

    from plugcharge.core.protocol import DEFAULT_PROTOCOLS

    return replace(config, protocols=protocols) if config.protocols == DEFAULT_PROTOCOLS else config


def make_pair(tmp_path: Path, *, ev_config: Optional[EVConfig] = None, charger_config: Optional[ChargerConfig] = None,
              wallet: Optional[ContractWallet] = None, backend: Optional[TestBackend] = None,
              store: Optional[SessionStore] = None, codec_provider=None, charger_security: Optional[ChargerSecurity] = None,
              ev_security: Optional[EVSecurity] = None, timing: TimingProfile = FAST,
              protocols: tuple[str, ...] = ("iso2",)):
    """An EV and a charger speaking ``protocols`` (ISO-2 by default: these helpers serve the ISO-2
    tests; a config that names its own protocols keeps them)."""
    cp = codec_provider or codecs()
    ev_config = pin_protocols(ev_config or EVConfig(), protocols)
    charger_config = pin_protocols(charger_config or ChargerConfig(), protocols)
    if wallet is None:
        wallet = make_wallet(tmp_path / "wallet")
    ev = EVSession(ev_config or EVConfig(), timing=timing, codecs=cp,
                   security=ev_security or EVSecurity(wallet=wallet, v2g_roots=v2g_roots(), wall_clock=lambda: NOW))
    sec = charger_security or ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW,
                                              sales_tariff_key=session_pki().key("mo-sub2"))
    charger = ChargerSession(charger_config or ChargerConfig(), security=sec, store=store, timing=timing, codecs=cp,
                             now=0.0)
    return ev, charger, backend or TestBackend(cp)


class Pump:
    """Drives an EV and a charger against each other in memory, advancing a fake clock."""

    def __init__(self, ev: EVSession, charger: ChargerSession, backend: Optional[TestBackend], *,
                 answer_backend: bool = True, auth_after: float = 0.0) -> None:
        self.ev, self.charger, self.backend = ev, charger, backend
        self.now = 0.0
        self.answer_backend = answer_backend
        self.auth_after = auth_after
        self.ev_events: list = []
        self.charger_events: list = []
        self.pending_auth: list[tuple[float, AuthorizationNeeded]] = []
        self.drop_to_charger = False
        self.drop_to_ev = False
        self.tamper: Optional[Callable[[str, bytes], bytes]] = None

    def _deliver(self, src: str, data: bytes) -> None:
        if not data:
            return
        if self.tamper is not None:
            data = self.tamper(src, data)
        if src == "ev":
            if not self.drop_to_charger:
                self._charger_events(self.charger.receive_data(data, self.now))
        elif not self.drop_to_ev:
            self.ev_events.extend(self.ev.receive_data(data, self.now))

    def _charger_events(self, events: list) -> None:
        for e in events:
            self.charger_events.append(e)
            if isinstance(e, BackendRequest) and self.backend is not None and self.answer_backend:
                if isinstance(e, CertificateInstallationNeeded):
                    res = self.backend.certificate_response(e)
                    out = self.charger.send(CertificateInstallationResponse(res, res is not None), self.now)
                    self.charger_events.extend(out.events)
                    self._deliver("charger", out.data)
                elif isinstance(e, AuthorizationNeeded):
                    self.pending_auth.append((self.now + self.auth_after, e))

    def start(self) -> None:
        out = self.ev.send(StartSession(), self.now)
        self.ev_events.extend(out.events)
        self._deliver("ev", out.data)

    def run(self, max_steps: int = 5000, until: Optional[Callable[[], bool]] = None) -> "Pump":
        for _ in range(max_steps):
            while True:
                if until is not None and until():
                    return self
                c_out = self.charger.data_to_send()
                if c_out:
                    self._deliver("charger", c_out)
                    continue
                e_out = self.ev.data_to_send()
                if not e_out:
                    break
                self._deliver("ev", e_out)
            if until is not None and until():
                return self
            if self.ev.ended and self.charger.ended:
                return self
            for due, req in list(self.pending_auth):
                if due <= self.now:
                    self.pending_auth.remove((due, req))
                    if not self.charger.ended:
                        self.charger.send(self.backend.authorization(req), self.now)
            candidates = [t for t in (self.ev.get_timer(), self.charger.get_timer()) if t is not None]
            candidates += [d for d, _ in self.pending_auth]
            if not candidates:
                return self
            self.now = max(self.now, min(candidates))
            self.ev_events.extend(self.ev.handle_timer(self.now))
            self._charger_events(self.charger.handle_timer(self.now))
        raise AssertionError("pump did not settle")


def kinds(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def first(events: list, cls: type):
    for e in events:
        if isinstance(e, cls):
            return e
    raise AssertionError(f"no {cls.__name__} in {kinds(events)}")
