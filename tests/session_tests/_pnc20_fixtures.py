"""Shared pieces of the ISO 15118-20 Plug & Charge session tests: the -20 test PKI, an EV wallet with
the -20 OEM provisioning credentials, the simulated backend answering a charger in memory (through
the same helpers the runner uses), and the security objects of both sides."""
from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional

from _pc_fixtures import NOW, Pump, session_pki
from pki.issue import TestPKI, issue_test_pki
from pki.store import TrustStore
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession, SessionStore
from plugcharge.backends.base import (
    authorization_result_command, authorize_request_for, certificate_request_for, certificate_response_command,
)
from plugcharge.backends.simulated import SimulatedBackend
from plugcharge.core.events import AuthorizationNeeded, BackendRequest, CertificateInstallationNeeded
from plugcharge.iso20.timing import DEFAULT_TIMING
from plugcharge.pnc.wallet import ContractWallet

EMAID = "DEPLGC000002001"
EMAID_2 = "DEPLGC000002002"
DC, AC = "DC_extended", "AC_three_phase_core"


@lru_cache(maxsize=None)
def pki20(algorithm: Optional[str] = None) -> TestPKI:
    """The -20 test PKI (P-521 by default; ``"ed448"``: Ed448 CAs and leaves, OEM provisioning P-521)."""
    return issue_test_pki(20, seed=2020, now=NOW - timedelta(days=10), algorithm=algorithm,
                          oem_provisioning_algorithm="secp521r1" if algorithm == "ed448" else None)


@lru_cache(maxsize=None)
def charger_store(algorithm: Optional[str] = None) -> TrustStore:
    return TrustStore(pki20(algorithm).store_roots())


def make_wallet20(directory: Path, p: Optional[TestPKI] = None, *, file_ops: Any = None) -> ContractWallet:
    """A wallet with Plug & Charge on and the -20 OEM provisioning credentials of ``p``."""
    p = p or pki20()
    w = ContractWallet(directory, file_ops=file_ops)
    if not w.enabled:
        w.set_enabled(True)
    if w.oem_provisioning_for(20) is None:
        w.set_oem_provisioning(p.cert("oem-provisioning-leaf"), (p.cert("oem-sub2"), p.cert("oem-sub1")),
                               p.key("oem-provisioning-leaf"), iso=20)
    return w


def ev_security(wallet: Any, p: Optional[TestPKI] = None, **kw: Any) -> EVSecurity:
    p = p or pki20()
    return EVSecurity(wallet=wallet, v2g_roots=[p.cert("v2g-root")], mo_roots=[p.cert("mo-root")],
                      wall_clock=kw.pop("wall_clock", lambda: NOW), **kw)


def charger_security(algorithm: Optional[str] = None, **kw: Any) -> ChargerSecurity:
    return ChargerSecurity(trust_store=charger_store(algorithm), wall_clock=kw.pop("wall_clock", lambda: NOW), **kw)


def make_backend(p: Optional[TestPKI] = None, *, emaids: tuple[str, ...] = (EMAID,), **kw: Any) -> SimulatedBackend:
    p = p or pki20()
    b = SimulatedBackend(session_pki(), pki20=p, clock=lambda: NOW, **kw)
    b.register_pcid(p.pcid, emaids[0])
    for e in emaids[1:]:
        b.add_emaid(p.pcid, e)
    return b


class BackendAnswers:
    """Answers the charger's backend requests with a :class:`SimulatedBackend` (what the runner does,
    through the same helpers).  ``tamper(exi) -> exi`` may spoil a certificate response; ``silent``
    names the requests left unanswered ("certificate", "authorize")."""

    def __init__(self, backend: SimulatedBackend, *, tamper: Optional[Callable[[bytes], bytes]] = None,
                 silent: tuple[str, ...] = ()) -> None:
        self.backend = backend
        self.tamper = tamper
        self.silent = silent
        self.requests: list[Any] = []

    def certificate_command(self, need: CertificateInstallationNeeded) -> Any:
        req = certificate_request_for(need)
        self.requests.append(req)
        resp = self.backend.get_15118_ev_certificate(req)
        cmd = certificate_response_command(resp)
        if self.tamper is not None and cmd.exi_response is not None:
            cmd = type(cmd)(self.tamper(cmd.exi_response), True)
        return cmd

    def authorization(self, need: AuthorizationNeeded) -> Any:
        req = authorize_request_for(need)
        self.requests.append(req)
        return authorization_result_command(self.backend.authorize(req) if req is not None else None, iso20=True,
                                            payment=need.payment)


class Pump20(Pump):
    """The in-memory pump with a -20 backend (the charger's certificate requests answered at once)."""

    def _charger_events(self, events: list) -> None:
        for e in events:
            self.charger_events.append(e)
            if not isinstance(e, BackendRequest) or self.backend is None or not self.answer_backend:
                continue
            if isinstance(e, CertificateInstallationNeeded):
                if "certificate" in getattr(self.backend, "silent", ()):
                    continue
                out = self.charger.send(self.backend.certificate_command(e), self.now)
                self.charger_events.extend(out.events)
                self._deliver("charger", out.data)
            elif isinstance(e, AuthorizationNeeded):
                if e.payment == "Contract" and "authorize" in getattr(self.backend, "silent", ()):
                    continue
                self.pending_auth.append((self.now + self.auth_after, e))


def pair(wallet: Any, *, ev: Optional[dict] = None, charger: Optional[dict] = None, backend: Any = None,
         ev_sec: Optional[EVSecurity] = None, ch_sec: Optional[ChargerSecurity] = None,
         store: Optional[SessionStore] = None, timing: Any = DEFAULT_TIMING, start: bool = True,
         **answers: Any) -> Pump20:
    """An EV and a charger speaking -20 over TLS (in memory), answered by ``backend``; started
    unless ``start`` is False."""
    evc = EVConfig(**{"charge_loops": 3, "tls": True, "protocols": ("iso20",), **(ev or {})})
    chc = ChargerConfig(**{"protocols": ("iso20",), **(charger or {})})
    e = EVSession(evc, codecs=_codecs(), timing=timing, security=ev_sec or ev_security(wallet))
    c = ChargerSession(chc, codecs=_codecs(), timing=timing, security=ch_sec or charger_security(), store=store, now=0.0)
    p = Pump20(e, c, BackendAnswers(backend or make_backend(), **answers))
    if start:
        p.start()
    return p


def _codecs() -> Any:
    import exi

    return exi.get_codec
