"""ISO 15118-20 Plug & Charge in memory, our EV against our charger with the simulated backend: contract
installation and reuse (P-521 and Ed448), several contracts (RemainingContractCertificateChains,
PrioritizedEMAIDs, the newest valid one wins), every failure with its -20 code and where the session
goes after it (EIM without re-plugging, or a clean end with the ExternalPayment fallback), the 14-day
expiry flag, signed metering confirmation, pause and resume with PnC, and the wallet's crash safety
during an installation in a session."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

import exi
from _pc_crash import CrashingOps, SimulatedCrash
from _pc_fixtures import NOW, first, session_pki
from _pnc20_fixtures import (
    AC, DC, EMAID, EMAID_2, BackendAnswers, Pump20, charger_security, ev_security, make_backend, make_wallet20, pair,
    pki20,
)
from plugcharge import SessionStore
from plugcharge.core.codec import NS_ISO20_CM
from plugcharge.core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationRejected, CertificateInstallationNeeded,
    ContractInstallationFailed, ContractInstallationStarted, ContractInstallationSucceeded, MeteringReceiptReceived,
    PauseCharging, PaymentSelected, ProtocolError, SessionEnded, SessionPaused, TimerExpired,
)
from plugcharge.core.v2gtp import FrameReader, PayloadType, encode_frame
from plugcharge.iso20 import messages as M
from plugcharge.iso20 import plugandcharge as PNC
from plugcharge.iso20.plugandcharge import EVPlugAndCharge
from plugcharge.pnc.auth20 import pnc_authorization_mode
from plugcharge.pnc.codes20 import PnC20Error
from plugcharge.pnc import signatures as S
from plugcharge.pnc.signatures import sign_message

cp = exi.get_codec


def sent(session: Any) -> list[str]:
    return [n for d, n in session.trace if d == "out"]


def ended(events: list) -> SessionEnded:
    return first(events, SessionEnded)


def payments(events: list) -> list[str]:
    return [e.option for e in events if isinstance(e, PaymentSelected)]


def run(p: Pump20) -> Pump20:
    return p.run()


# ------------------------------------------------------------ install, then reuse
@pytest.mark.parametrize("algorithm", ["secp521r1", "ed448"])
@pytest.mark.parametrize("mode", [DC, AC])
def test_first_session_installs_the_contract_and_the_second_reuses_it(tmp_path, algorithm, mode):
    wallet = make_wallet20(tmp_path / "w")
    backend = make_backend(contract_algorithm20=algorithm)
    p = run(pair(wallet, ev={"energy_mode": mode}, charger={"receipt_every": 2}, backend=backend))
    assert sent(p.ev)[:5] == ["supportedAppProtocolReq", "SessionSetupReq", "AuthorizationSetupReq",
                              "CertificateInstallationReq", "AuthorizationReq"]
    assert first(p.ev_events, PaymentSelected) == PaymentSelected("Contract", "no_contract_install", "install")
    assert first(p.ev_events, ContractInstallationStarted).pcid == pki20().pcid
    assert first(p.ev_events, ContractInstallationSucceeded).emaid == EMAID
    # the charger forwarded the EV's EXI with what OCPP 2.1 passes on
    need = first(p.charger_events, CertificateInstallationNeeded)
    assert need.schema_version == NS_ISO20_CM and need.maximum_contract_chains == 1
    names = {x509.load_der_x509_certificate(pki20().cert(r)).issuer.rfc4514_string() for r in ("v2g-root", "mo-root")}
    assert {n for n, _ in need.root_certificate_ids} == names
    assert cp(NS_ISO20_CM).decode(need.exi_request)["CertificateInstallationReq"]["Header"]["Signature"]
    auth = first(p.charger_events, AuthorizationNeeded)
    assert (auth.payment, auth.emaid, len(auth.chain)) == ("Contract", EMAID, 3)
    assert first(p.ev_events, AuthorizationAccepted) == AuthorizationAccepted("Contract", EMAID)
    # the contract is in the wallet with its key (the edition follows from the key)
    [info] = wallet.contracts(iso=20)
    contract = wallet.get(info.contract_id)
    assert info.emaid == EMAID and (algorithm == "ed448") == (not isinstance(contract.private_key, ec.EllipticCurvePrivateKey))
    # signed metering confirmation, checked by the charger with the contract key
    assert first(p.charger_events, MeteringReceiptReceived)
    assert ended(p.ev_events).reason == ended(p.charger_events).reason == "finished"
    assert p.ev.handler.payment == p.charger.handler.payment == "Contract"
    # second plug-in: the same wallet, no installation
    p2 = run(pair(wallet, ev={"energy_mode": mode}, backend=backend))
    assert "CertificateInstallationReq" not in sent(p2.ev)
    assert first(p2.ev_events, PaymentSelected) == PaymentSelected("Contract", "contract_available")
    assert first(p2.charger_events, AuthorizationNeeded).emaid == EMAID
    assert ended(p2.ev_events).reason == "finished" and len(wallet.contracts(iso=20)) == 1


def test_several_contracts_in_one_installation(tmp_path):
    """MaximumContractCertificateChains 2: the EV repeats the request while
    RemainingContractCertificateChains says more are there; PrioritizedEMAIDs orders them."""
    wallet = make_wallet20(tmp_path / "w")
    backend = make_backend(emaids=(EMAID, EMAID_2))
    p = run(pair(wallet, backend=backend, ev_sec=ev_security(wallet, maximum_contract_chains=2,
                                                             prioritized_emaids=(EMAID_2,))))
    assert sent(p.ev).count("CertificateInstallationReq") == 2
    assert [e.emaid for e in p.ev_events if isinstance(e, ContractInstallationSucceeded)] == [EMAID_2, EMAID]
    need = first(p.charger_events, CertificateInstallationNeeded)
    assert need.prioritized_emaids == (EMAID_2,) and need.maximum_contract_chains == 2
    assert p.backend.requests[0].prioritized_emaids == (EMAID_2,)  # OCPP 2.1's prioritizedEMAIDs
    assert p.backend.requests[0].maximum_contract_certificate_chains == 2
    assert sorted(c.emaid for c in wallet.contracts(iso=20)) == [EMAID, EMAID_2]
    assert ended(p.ev_events).reason == "finished" and first(p.ev_events, AuthorizationAccepted).payment == "Contract"


def test_the_newest_valid_contract_wins(tmp_path):
    p20 = pki20()
    wallet = make_wallet20(tmp_path / "w")
    for emaid, age in (("DEPLGC000002011", 20), ("DEPLGC000002012", 2), ("DEPLGC000002013", 9)):
        c = p20.issue_contract(emaid, now=NOW - timedelta(days=age))
        wallet.install(c.der, (p20.cert("mo-sub2"), p20.cert("mo-sub1")), c.key)
    future = p20.issue_contract("DEPLGC000002014", now=NOW + timedelta(days=3))  # not valid yet
    wallet.install(future.der, (p20.cert("mo-sub2"), p20.cert("mo-sub1")), future.key)
    backend = make_backend(emaids=("DEPLGC000002011", "DEPLGC000002012", "DEPLGC000002013"))
    p = run(pair(wallet, backend=backend))
    assert first(p.charger_events, AuthorizationNeeded).emaid == "DEPLGC000002012"
    assert first(p.ev_events, AuthorizationAccepted).emaid == "DEPLGC000002012"
    assert ended(p.ev_events).reason == "finished"


# ------------------------------------------------------------ installation failures
def _falls_back_to_eim(p: Pump20, code: Any = None) -> ContractInstallationFailed:
    failed = first(p.ev_events, ContractInstallationFailed)
    if code is not None:
        assert failed.response_code == code, failed
    assert payments(p.ev_events) == ["Contract", "ExternalPayment"]
    assert first(p.charger_events, AuthorizationNeeded).payment == "ExternalPayment"
    assert ended(p.ev_events).reason == ended(p.charger_events).reason == "finished"  # no re-plug
    assert p.ev.handler.payment == "ExternalPayment"
    return failed


def test_bad_oem_chain_is_refused_by_the_backend_and_the_ev_uses_eim(tmp_path):
    other = __import__("pki.issue", fromlist=["issue_test_pki"]).issue_test_pki(20, seed=99, now=NOW - timedelta(days=10))
    wallet = make_wallet20(tmp_path / "w", other)  # an OEM root the backend does not know
    p = run(pair(wallet))
    _falls_back_to_eim(p, "WARNING_CertificateValidationError")
    assert not wallet.contracts(iso=20)


def test_unknown_pcid_gets_no_contract_and_the_ev_uses_eim(tmp_path):
    wallet = make_wallet20(tmp_path / "w")
    backend = make_backend()
    backend._pcids.clear()
    _falls_back_to_eim(run(pair(wallet, backend=backend)), "WARNING_NoContractMatchingPCIDFound")


def _spoil(field: str):
    def tamper(exi_bytes: bytes) -> bytes:
        msg = cp(NS_ISO20_CM).decode(exi_bytes)
        res = msg["CertificateInstallationRes"]
        if field == "signature":
            sig = res["Header"]["Signature"]["SignatureValue"]
            value = bytearray(sig["value"] if isinstance(sig, dict) else sig)
            value[5] ^= 0x01
            if isinstance(sig, dict):
                sig["value"] = bytes(value)
            else:
                res["Header"]["Signature"]["SignatureValue"] = bytes(value)
        elif field == "key":
            data = res["SignedInstallationData"]
            data["SECP521_EncryptedPrivateKey"] = bytes(94)
        return cp(NS_ISO20_CM).encode(msg)
    return tamper


def test_bad_cps_signature_is_rejected_by_the_ev(tmp_path):
    wallet = make_wallet20(tmp_path / "w")
    failed = _falls_back_to_eim(run(pair(wallet, tamper=_spoil("signature"))), "FAILED_SignatureError")
    assert "CPS signature" in failed.reason and not wallet.contracts(iso=20)


def test_undecryptable_key_is_rejected_by_the_ev(tmp_path):
    """The encrypted key is covered by the CPS signature: spoiling it breaks the signature first; a
    response signed over a key the EV cannot decrypt is refused by the decryption [V2G20-2504]."""
    wallet = make_wallet20(tmp_path / "w")
    _falls_back_to_eim(run(pair(wallet, tamper=_spoil("key"))), "FAILED_SignatureError")
    p20 = pki20()

    def resign(exi_bytes: bytes) -> bytes:
        msg = cp(NS_ISO20_CM).decode(_spoil("key")(exi_bytes))
        msg["CertificateInstallationRes"]["Header"].pop("Signature")
        return cp(NS_ISO20_CM).encode(sign_message(msg, p20.key("cps-leaf")))
    wallet2 = make_wallet20(tmp_path / "w2")
    failed = _falls_back_to_eim(run(pair(wallet2, tamper=resign)), "FAILED")
    assert "V2G20-2504" in failed.reason and not wallet2.contracts(iso=20)


def test_installation_failure_keeps_an_older_contract(tmp_path):
    """A renewal (the contract ends within update_before) that fails: the EV uses the contract it has."""
    wallet = make_wallet20(tmp_path / "w")
    run(pair(wallet))
    sec = ev_security(wallet, update_before=timedelta(days=3650))
    p = run(pair(wallet, ev_sec=sec, tamper=_spoil("signature")))
    assert first(p.ev_events, PaymentSelected).reason == "contract_expires_soon"
    assert first(p.ev_events, ContractInstallationFailed).response_code == "FAILED_SignatureError"
    assert payments(p.ev_events) == ["Contract"] and first(p.ev_events, AuthorizationAccepted).emaid == EMAID
    assert ended(p.ev_events).reason == "finished" and len(wallet.contracts(iso=20)) == 1


def test_backend_timeout_on_installation_ends_with_the_fallback(tmp_path):
    """No answer within the charger's backend timer: CertificateInstallationRes FAILED, the EV stops
    [V2G20-1967] and a new session on the same plug-in pays with EIM."""
    wallet = make_wallet20(tmp_path / "w")
    p = run(pair(wallet, silent=("certificate",)))
    end = ended(p.ev_events)
    assert (end.reason, end.response_code, end.fallback) == ("failed", "FAILED", "ExternalPayment")
    assert ended(p.charger_events).response_code == "FAILED" and p.now == pytest.approx(4.5, abs=0.1)
    assert first(p.ev_events, ContractInstallationFailed)
    p2 = run(pair(wallet, ev={"pnc_suppressed": True}))
    assert first(p2.ev_events, PaymentSelected).reason == "plug_and_charge_suppressed_after_failure"
    assert ended(p2.ev_events).reason == "finished" and p2.ev.handler.payment == "ExternalPayment"


def test_backend_failure_on_installation_ends_with_the_fallback(tmp_path):
    wallet = make_wallet20(tmp_path / "w")
    backend = make_backend()
    backend.fail_installations = "CPS unreachable"
    p = run(pair(wallet, backend=backend))
    end = ended(p.ev_events)
    assert (end.reason, end.response_code, end.fallback) == ("failed", "FAILED", "ExternalPayment")


# ------------------------------------------------------------ authorisation failures
def _installed(tmp_path: Path, **kw: Any) -> Any:
    wallet = make_wallet20(tmp_path / "w")
    backend = make_backend(**kw)
    assert ended(run(pair(wallet, backend=backend)).ev_events).reason == "finished"
    return wallet, backend


def test_revoked_contract_falls_back_to_eim_without_replugging(tmp_path):
    wallet, backend = _installed(tmp_path)
    backend.revoke(EMAID)
    p = run(pair(wallet, backend=backend))
    rejected = first(p.ev_events, AuthorizationRejected)
    assert (rejected.response_code, rejected.emaid) == ("WARNING_CertificateRevoked", EMAID)
    assert payments(p.ev_events) == ["Contract", "ExternalPayment"]
    assert [n.payment for n in p.charger_events if isinstance(n, AuthorizationNeeded)] == ["Contract", "ExternalPayment"]
    assert ended(p.ev_events).reason == "finished" and p.ev.handler.payment == "ExternalPayment"


def test_revoked_contract_without_eim_ends(tmp_path):
    wallet, backend = _installed(tmp_path)
    backend.revoke(EMAID)
    p = run(pair(wallet, backend=backend, charger={"payment_options": ("Contract",)}))
    end = ended(p.ev_events)
    assert (end.reason, end.response_code) == ("failed", "WARNING_CertificateRevoked")
    assert sent(p.ev)[-1] == "SessionStopReq" and ended(p.charger_events).reason == "finished"


#: how the iso15118 package signs -20 messages: the -2 algorithms (ecdsa-sha256, SHA-256 digests)
JOSEV_SUITE = S.SignatureSuite("josev-20", NS_ISO20_CM, S.ALG_ECDSA_SHA256, S.ALG_SHA256, hashlib.sha256, 32,
                               "secp521r1", 132)


class _Rogue(EVPlugAndCharge):
    """An EV that signs what a real one would not: another challenge, another key or suite."""

    def __init__(self, security: Any, *, challenge: Any = None, key: Any = None, suite: Any = None) -> None:
        super().__init__(security)
        self.challenge, self.key, self.suite = challenge, key, suite

    def authorization_request(self, handler, challenge):
        super().authorization_request(handler, challenge)
        contract = handler.contract
        mode = pnc_authorization_mode(contract, self.challenge or challenge)
        key = self.key or contract.private_key
        return mode, (lambda msg: sign_message(msg, key, suite=self.suite))


def _rogue(tmp_path: Path, **kw: Any) -> Pump20:
    wallet, backend = _installed(tmp_path)
    sec = ev_security(wallet)
    sec.iso20_pnc = _Rogue(sec, **kw)
    return run(pair(wallet, backend=backend, ev_sec=sec, ch_sec=kw.pop("ch_sec", None) or charger_security()))


def test_wrong_gen_challenge_is_refused_and_the_ev_uses_eim(tmp_path):
    p = _rogue(tmp_path, challenge=b"\x5a" * 16)
    assert first(p.ev_events, AuthorizationRejected).response_code == "WARNING_ChallengeInvalid"  # [V2G20-2565]
    assert [n.payment for n in p.charger_events if isinstance(n, AuthorizationNeeded)] == ["ExternalPayment"]
    assert ended(p.ev_events).reason == "finished" and p.ev.handler.payment == "ExternalPayment"


@pytest.mark.parametrize("rogue", [{"key": ec.generate_private_key(ec.SECP521R1())}, {"suite": JOSEV_SUITE}],
                         ids=["other-key", "ecdsa-sha256"])
def test_bad_contract_signature_ends_the_session(tmp_path, rogue):
    """A signature the contract key did not make, or one with the -2 algorithms over the -20 fragment
    (the contract's own P-521 key, ecdsa-sha256: how the iso15118 package signs -20 messages):
    FAILED_SignatureError, the end."""
    p = _rogue(tmp_path, **rogue)
    err = first(p.charger_events, ProtocolError)
    assert err.response_code == "FAILED_SignatureError"
    end = ended(p.ev_events)
    assert (end.reason, end.response_code, end.fallback) == ("failed", "FAILED_SignatureError", "ExternalPayment")
    assert not any(isinstance(e, AuthorizationNeeded) for e in p.charger_events)


class _PnCRequestTamper:
    """Rewrites the EV's PnC AuthorizationReq messages: ``rewrite(msg, n)`` gets the n-th (from 1)
    decoded and returns whether it changed it (then re-encoded into the frame)."""

    seen = 0

    def rewrite(self, msg: dict, n: int) -> bool:
        raise NotImplementedError

    def __call__(self, src: str, data: bytes) -> bytes:
        if src != "ev":
            return data
        frame = FrameReader().feed(data)[0]
        if frame.payload_type != PayloadType.MAINSTREAM:
            return data
        msg = cp(NS_ISO20_CM).decode(frame.payload)
        if "AuthorizationReq" not in msg or "PnC_AReqAuthorizationMode" not in msg["AuthorizationReq"]:
            return data
        self.seen += 1
        if not self.rewrite(msg, self.seen):
            return data
        return encode_frame(frame.payload_type, cp(NS_ISO20_CM).encode(msg))


class _RepeatTamper(_PnCRequestTamper):
    """Rewrites the EV's second PnC AuthorizationReq (the repeat while the backend is slow and the
    charger answers Ongoing) with ``change(msg, key)``, which may alter and re-sign it."""

    def __init__(self, p: Pump20, change: Any) -> None:
        self.p, self.change = p, change

    def rewrite(self, msg: dict, n: int) -> bool:
        if n == 2:
            self.change(msg, self.p.ev.handler.contract.private_key)
        return n == 2


def _repeat(tmp_path: Path, change: Any, setup: Any = None) -> tuple[Pump20, list]:
    wallet, backend = setup() if setup is not None else _installed(tmp_path)
    p = pair(wallet, backend=backend, start=False)
    p.auth_after = 3.0  # the backend answers late: the EV repeats its request (EVSEProcessing Ongoing)
    p.tamper = tamper = _RepeatTamper(p, change)
    checked: list = []
    real = PNC.validate_pnc_authorization

    def counting(*a: Any, **kw: Any) -> Any:
        checked.append(a[0])
        return real(*a, **kw)

    PNC.validate_pnc_authorization = counting
    try:
        p.start()
        run(p)
    finally:
        PNC.validate_pnc_authorization = real
    assert tamper.seen >= 2, "no repeated AuthorizationReq"
    return p, checked


def _resign(msg: dict, key: Any) -> None:
    del msg["AuthorizationReq"]["Header"]["Signature"]
    sign_message(msg, key)


def test_unchanged_repeat_of_the_pnc_request_is_not_checked_again(tmp_path):
    """A repeat that is the verified request itself (same signed element, same signature): no second
    chain and signature check; the contract is authorised."""
    p, checked = _repeat(tmp_path, lambda msg, key: None)
    assert len(checked) == 1
    assert [e.payment for e in p.charger_events if isinstance(e, AuthorizationAccepted)] == ["Contract"]


def test_resigned_repeat_of_the_pnc_request_is_checked_and_accepted(tmp_path):
    """The same request with a fresh signature (ECDSA signatures differ every time) is checked again
    and goes on with the authorisation already asked for: one Authorize to the backend."""
    p, checked = _repeat(tmp_path, _resign)
    assert len(checked) >= 2  # the first, the re-signed repeat (and the next repeat, the first again)
    assert [e.payment for e in p.charger_events if isinstance(e, AuthorizationAccepted)] == ["Contract"]
    assert [e.payment for e in p.charger_events if isinstance(e, AuthorizationNeeded)] == ["Contract"]


def test_repeat_with_another_gen_challenge_is_refused(tmp_path):
    """[V2G20-2565] holds for the repeats too: another GenChallenge (properly signed) is refused with
    WARNING_ChallengeInvalid, the contract is not authorised, and the EV goes on with EIM."""
    def change(msg: dict, key: Any) -> None:
        msg["AuthorizationReq"]["PnC_AReqAuthorizationMode"]["GenChallenge"] = b"\x5a" * 16
        _resign(msg, key)

    p, checked = _repeat(tmp_path, change)
    assert len(checked) == 1  # the challenge is compared before any chain or signature work
    assert first(p.ev_events, AuthorizationRejected).response_code == "WARNING_ChallengeInvalid"
    assert not any(isinstance(e, AuthorizationAccepted) and e.payment == "Contract" for e in p.charger_events)
    assert ended(p.ev_events).reason == "finished" and p.ev.handler.payment == "ExternalPayment"


def test_repeat_whose_signature_does_not_cover_it_ends_the_session(tmp_path):
    """A repeat altered under the first request's signature: FAILED_SignatureError, the end (what a
    first request with a bad signature gets)."""
    def change(msg: dict, key: Any) -> None:
        msg["AuthorizationReq"]["PnC_AReqAuthorizationMode"]["Id"] = "other"

    p, checked = _repeat(tmp_path, change)
    assert first(p.charger_events, ProtocolError).response_code == "FAILED_SignatureError"
    assert not any(isinstance(e, AuthorizationAccepted) for e in p.charger_events)
    assert ended(p.ev_events).reason == "failed"


def test_repeat_naming_another_contract_is_refused(tmp_path):
    """A repeat naming another (valid, properly signed) contract than the one the backend was asked
    about is refused (WARNING_GeneralPnCAuthorizationError): the answer under way is not for it."""
    p20 = pki20()
    older = p20.issue_contract("DEPLGC000002011", now=NOW - timedelta(days=9))
    newer = p20.issue_contract("DEPLGC000002012", now=NOW - timedelta(days=2))

    def setup() -> Any:
        wallet = make_wallet20(tmp_path / "w")
        for c in (older, newer):
            wallet.install(c.der, (p20.cert("mo-sub2"), p20.cert("mo-sub1")), c.key)
        return wallet, make_backend(emaids=("DEPLGC000002011", "DEPLGC000002012"))

    def change(msg: dict, key: Any) -> None:
        req = msg["AuthorizationReq"]
        challenge = req["PnC_AReqAuthorizationMode"]["GenChallenge"]
        other = type("Contract", (), {"leaf": older.der, "sub_cas": (p20.cert("mo-sub2"), p20.cert("mo-sub1")),
                                      "private_key": older.key})()
        req["PnC_AReqAuthorizationMode"] = pnc_authorization_mode(other, challenge)
        _resign(msg, older.key)

    p, checked = _repeat(tmp_path, change, setup)
    assert len(checked) == 2
    assert first(p.charger_events, AuthorizationNeeded).emaid == "DEPLGC000002012"
    assert first(p.ev_events, AuthorizationRejected).response_code == "WARNING_GeneralPnCAuthorizationError"
    assert not any(isinstance(e, AuthorizationAccepted) and e.payment == "Contract" for e in p.charger_events)


class _SwitchToEIM(_PnCRequestTamper):
    """Rewrites every PnC AuthorizationReq of the EV after its first into an EIM one: an EV that
    gives up on Plug & Charge while the backend is still deciding on its contract."""

    def rewrite(self, msg: dict, n: int) -> bool:
        if n > 1:
            header = {k: v for k, v in msg["AuthorizationReq"]["Header"].items() if k != "Signature"}
            msg["AuthorizationReq"] = {"Header": header, "SelectedAuthorizationService": "EIM",
                                       "EIM_AReqAuthorizationMode": {}}
        return n > 1


def _answers(results: dict) -> Any:
    """A backend answering each AuthorizationNeeded by its payment, each result tagged with it."""
    from plugcharge.core.events import AuthorizationResult

    def authorization(need: AuthorizationNeeded) -> Any:
        accepted, code = results[need.payment]
        return AuthorizationResult(accepted, code, payment=need.payment)
    return authorization


def test_late_answer_for_an_abandoned_pnc_request_does_not_authorise_eim(tmp_path):
    """The backend accepts the contract after the EV switched to EIM (while the charger answered
    Ongoing): that answer is for the abandoned PnC request and is ignored; the EIM request gets its
    own answer (here: the driver did not identify, refused)."""
    wallet, backend = _installed(tmp_path)
    p = pair(wallet, backend=backend, start=False)
    p.auth_after = 3.0  # each answer comes 3 s after its request
    p.tamper = switch = _SwitchToEIM()
    p.backend.authorization = _answers({"Contract": (True, None),
                                        "ExternalPayment": (False, "WARNING_EIMAuthorizationFailure")})
    p.start()
    run(p)
    assert switch.seen >= 2
    needs = [e.payment for e in p.charger_events if isinstance(e, AuthorizationNeeded)]
    assert needs[:2] == ["Contract", "ExternalPayment"]
    assert not any(isinstance(e, AuthorizationAccepted) for e in p.charger_events), p.charger_events
    refused = [e for e in p.charger_events if isinstance(e, AuthorizationRejected)]
    assert refused and refused[0].response_code == "WARNING_EIMAuthorizationFailure"


def test_untagged_answer_still_answers_the_request_under_way(tmp_path):
    """An AuthorizationResult without ``payment`` answers whatever request is under way (as before)."""
    from plugcharge.core.events import AuthorizationResult

    wallet, backend = _installed(tmp_path)
    p = pair(wallet, backend=backend, start=False)
    p.auth_after = 3.0
    p.tamper = _SwitchToEIM()
    p.backend.authorization = lambda need: AuthorizationResult(True)
    p.start()
    run(p)
    assert [e.payment for e in p.charger_events if isinstance(e, AuthorizationAccepted)] == ["ExternalPayment"]


def test_tagged_answer_when_none_is_awaited_is_ignored(tmp_path):
    """A result for a payment no request awaits (none asked yet) does not pre-authorise the session."""
    from plugcharge.core.events import AuthorizationResult

    wallet, backend = _installed(tmp_path)
    p = pair(wallet, backend=backend, start=False)
    p.charger.send(AuthorizationResult(False, "WARNING_CertificateRevoked", payment="Contract"), 0.0)
    p.start()
    run(p)
    assert [e.payment for e in p.charger_events if isinstance(e, AuthorizationNeeded)] == ["Contract"]
    assert [e.payment for e in p.charger_events if isinstance(e, AuthorizationAccepted)] == ["Contract"]


@pytest.mark.parametrize("shift,code", [(timedelta(days=-400 * 4), "WARNING_CertificateNotYetValid"),
                                        (timedelta(days=400 * 6), "WARNING_CertificateExpired")])
def test_contract_outside_its_validity_is_refused(tmp_path, shift, code):
    """A contract presented outside its validity (the charger's clock moved: a rogue EV would present
    it; our wallet would not) is a WARNING and the EV uses EIM."""
    wallet, backend = _installed(tmp_path)
    p = run(pair(wallet, backend=backend, ch_sec=charger_security(wall_clock=lambda: NOW + shift)))
    assert first(p.ev_events, AuthorizationRejected).response_code == code
    assert payments(p.ev_events) == ["Contract", "ExternalPayment"] and ended(p.ev_events).reason == "finished"


def test_contract_of_an_unknown_emsp_is_refused(tmp_path):
    wallet, backend = _installed(tmp_path)
    from pki.store import TrustStore

    alien = TrustStore({"v2g": [session_pki().cert("v2g-root")]})
    sec = charger_security()
    sec.trust_store = alien
    p = run(pair(wallet, backend=backend, ch_sec=sec))
    assert first(p.ev_events, AuthorizationRejected).response_code == "WARNING_eMSPUnknown"


def test_contract_that_expires_within_14_days_is_flagged(tmp_path):
    """[V2G20-2218]: OK_CertificateExpiresSoon; the EV renews it at the next plug-in."""
    wallet, backend = _installed(tmp_path)
    [info] = wallet.contracts(iso=20)
    late = info.not_after - timedelta(days=5)
    p = run(pair(wallet, backend=backend, ch_sec=charger_security(wall_clock=lambda: late),
                 ev_sec=ev_security(wallet, wall_clock=lambda: late, update_before=timedelta(0))))
    assert p.ev.handler.contract_expires_soon and first(p.ev_events, AuthorizationAccepted).payment == "Contract"
    assert ended(p.ev_events).reason == "finished"
    # the next plug-in tries a renewal (within update_before); here the test CPS certificate has
    # ended before the contract, so the EV refuses the new contract and keeps using the old one
    p2 = run(pair(wallet, backend=backend, ev_sec=ev_security(wallet, wall_clock=lambda: late),
                  ch_sec=charger_security(wall_clock=lambda: late)))
    assert first(p2.ev_events, PaymentSelected).reason == "contract_expires_soon"
    assert first(p2.ev_events, ContractInstallationFailed).response_code == "WARNING_CertificateExpired"
    assert first(p2.ev_events, AuthorizationAccepted) == AuthorizationAccepted("Contract", EMAID)
    assert p2.ev.handler.contract_expires_soon and len(wallet.contracts(iso=20)) == 1


def test_backend_timeout_on_authorize_ends_with_the_fallback(tmp_path):
    wallet, backend = _installed(tmp_path)
    p = run(pair(wallet, backend=backend, silent=("authorize",), ev={"poll_interval": 2.0}))
    end = ended(p.ev_events)
    assert (end.reason, end.response_code, end.fallback) == ("failed", "FAILED", "ExternalPayment")
    assert ended(p.charger_events).response_code == "FAILED" and 55.0 <= p.now <= 58.0
    # the EV's own V2G_EVCC_Ongoing_Timeout (60 s) when the charger keeps answering Ongoing
    p = run(pair(wallet, backend=backend, silent=("authorize",), ev={"poll_interval": 5.0}))
    end = ended(p.ev_events)
    assert (end.reason, end.fallback) == ("timeout", "ExternalPayment")
    assert first(p.ev_events, TimerExpired).timer == "V2G_EVCC_Ongoing_Timeout"


# ------------------------------------------------------------ pause and resume
def test_pause_and_resume_with_plug_and_charge(tmp_path):
    wallet, backend = _installed(tmp_path)
    store = SessionStore()
    p = pair(wallet, backend=backend, store=store, ev={"charge_loops": 10})
    p.run(until=lambda: ("out", "DC_ChargeLoopReq") in p.ev.trace)
    out = p.ev.send(PauseCharging(), p.now)
    p.ev_events.extend(out.events)
    p._deliver("ev", out.data)
    p.run()
    paused = first(p.ev_events, SessionPaused)
    assert ended(p.ev_events).reason == "paused"
    p2 = run(pair(wallet, backend=backend, store=store,
                  ev={"resume_session_id": paused.session_id, "resume_payment": "Contract"}))
    assert p2.ev.session_id == paused.session_id
    assert first(p2.ev_events, PaymentSelected) == PaymentSelected("Contract", "resumed")
    assert "AuthorizationReq" in sent(p2.ev) and not any(isinstance(e, AuthorizationNeeded) for e in p2.charger_events)
    assert first(p2.charger_events, AuthorizationAccepted) == AuthorizationAccepted("Contract", EMAID)
    assert ended(p2.ev_events).reason == "finished" and p2.charger.handler.payment == "Contract"


def test_resume_with_another_contract_is_refused(tmp_path):
    wallet, backend = _installed(tmp_path)
    store = SessionStore()
    p = pair(wallet, backend=backend, store=store, ev={"charge_loops": 10})
    p.run(until=lambda: ("out", "DC_ChargeLoopReq") in p.ev.trace)
    out = p.ev.send(PauseCharging(), p.now)
    p._deliver("ev", out.data)
    p.run()
    sid = p.ev.session_id
    p20 = pki20()
    other = p20.issue_contract(EMAID_2, now=NOW + timedelta(hours=1))
    wallet.install(other.der, (p20.cert("mo-sub2"), p20.cert("mo-sub1")), other.key)  # now the newest
    p2 = run(pair(wallet, backend=backend, store=store, ev={"resume_session_id": sid, "resume_payment": "Contract"}))
    assert first(p2.ev_events, AuthorizationRejected).response_code == "WARNING_GeneralPnCAuthorizationError"
    assert ended(p2.ev_events).reason == "finished" and p2.ev.handler.payment == "ExternalPayment"
    assert p2.charger.handler.payment == "Contract"  # the paused session's authorisation goes on


# ------------------------------------------------------------ the wallet during an installation
def test_wallet_survives_a_crash_at_every_step_of_an_installation_in_a_session(tmp_path):
    """The process dies at each file step of storing the new contract (inside the session):
    the contract installed before is intact, the new one is there whole or not at all, and the next
    plug-in charges with Plug & Charge (installing again if needed)."""
    p20 = pki20()
    older = p20.issue_contract("DEPLGC000002031", now=NOW - timedelta(days=5))
    seen_complete = seen_absent = False
    for budget in range(0, 12):
        d = tmp_path / f"w{budget}"
        make_wallet20(d).install(older.der, (p20.cert("mo-sub2"), p20.cert("mo-sub1")), older.key)
        ops = CrashingOps(budget)
        wallet = make_wallet20(d, file_ops=ops)
        sec = ev_security(wallet, update_before=timedelta(days=3650))  # renew: an installation runs
        try:
            run(pair(wallet, ev_sec=sec))
            crashed = False
        except SimulatedCrash:
            crashed = True
        again = make_wallet20(d)
        emaids = sorted(c.emaid for c in again.contracts(iso=20))
        assert again.problems == [] and "DEPLGC000002031" in emaids, (budget, emaids)
        assert emaids in (["DEPLGC000002031"], [EMAID, "DEPLGC000002031"]), emaids
        seen_complete |= len(emaids) == 2
        seen_absent |= len(emaids) == 1
        p = run(pair(again, backend=make_backend(emaids=(EMAID, "DEPLGC000002031"))))
        assert ended(p.ev_events).reason == "finished" and p.ev.handler.payment == "Contract", budget
        if not crashed:
            break
    assert seen_complete and seen_absent


def test_wallet_refusing_the_contract_falls_back(tmp_path):
    wallet = make_wallet20(tmp_path / "w")

    class Full:
        """The wallet's disk is full."""

        def __getattr__(self, name):
            return getattr(wallet, name)

        def install(self, *a, **kw):
            raise OSError(28, "No space left on device")
    failed = _falls_back_to_eim(run(pair(Full())), "FAILED")
    assert "wallet refused" in failed.reason


def test_pnc20_error_carries_codes():
    e = PnC20Error("WARNING_CertificateRevoked", "x")
    assert not e.terminal and PnC20Error("FAILED", "y").terminal


def test_pem_chain_is_what_cryptography_writes_and_reads():
    """The charger's PEM chain for Authorize (built without parsing the DER) is byte for byte
    ``cryptography``'s PEM, and reading it back refuses what is not PEM."""
    from cryptography.hazmat.primitives import serialization

    from plugcharge.backends.base import der_chain_from_pem, pem_chain

    p = pki20()
    ders = [p.cert("contract-leaf"), p.cert("mo-sub2"), p.cert("mo-sub1")]
    ref = "".join(x509.load_der_x509_certificate(d).public_bytes(serialization.Encoding.PEM).decode() for d in ders)
    assert pem_chain(ders) == ref and der_chain_from_pem(ref) == ders
    for bad in ("garbage", ref.replace("-----END CERTIFICATE-----", "", 1), ref.replace("M", "!", 1)):
        with pytest.raises(ValueError):
            der_chain_from_pem(bad)
    with pytest.raises(ValueError):
        pem_chain([b"not DER"])


# ------------------------------------------------------------ hostile input on the PnC states
def _fixed_ids(**kw: Any) -> Any:
    return charger_security(random_bytes=lambda k: b"\x07" * k, **kw)


def _pnc_frames(tmp_path: Path) -> list[bytes]:
    """The EV's frames of a real -20 session with contract installation, signed metering included."""
    frames: list[bytes] = []
    wallet = make_wallet20(tmp_path / "rec")
    p = pair(wallet, ch_sec=_fixed_ids(), charger={"receipt_every": 2}, ev={"charge_loops": 2}, start=False)

    def tap(src: str, data: bytes) -> bytes:
        if src == "ev":
            frames.append(data)
        return data
    p.tamper = tap
    p.start()
    p.run()
    assert ended(p.ev_events).reason == "finished" and first(p.charger_events, MeteringReceiptReceived)
    return frames


class _Replay:
    """A fresh charger fed recorded frames, its backend requests answered as they come."""

    def __init__(self) -> None:
        from plugcharge import ChargerConfig, ChargerSession

        self.ch = ChargerSession(ChargerConfig(protocols=("iso20",), receipt_every=2), codecs=cp, now=0.0,
                                 security=_fixed_ids())
        self.answers = BackendAnswers(make_backend())
        self.t = 0.0
        self.events: list = []

    def feed(self, data: bytes) -> None:
        self.t += 0.01
        self._handle(self.ch.receive_data(data, self.t))
        self.ch.data_to_send()

    def _handle(self, events: list) -> None:
        for e in events:
            self.events.append(e)
            if self.ch.ended:
                continue
            if isinstance(e, CertificateInstallationNeeded):
                self._handle(list(self.ch.send(self.answers.certificate_command(e), self.t).events))
            elif isinstance(e, AuthorizationNeeded):
                self._handle(list(self.ch.send(self.answers.authorization(e), self.t).events))


def test_mutated_pnc_requests_at_every_state(tmp_path):
    """Flip bits in each request of a real PnC session (CertificateInstallationReq, the signed
    AuthorizationReq, MeteringConfirmationReq ...) replayed into a fresh charger: every outcome is an
    answer or a clean end, never an exception, a hang or a silent stall."""
    import random

    frames = _pnc_frames(tmp_path)
    whole = _Replay()
    for data in frames:
        whole.feed(data)
    assert ended(whole.events).reason == "finished" and first(whole.events, MeteringReceiptReceived)
    rng = random.Random(2015)
    outcomes: set = set()
    for n in range(1, len(frames)):
        for _ in range(3):
            r = _Replay()
            for i, data in enumerate(frames[:n + 1]):
                if i == n:
                    blob = bytearray(data)
                    for _ in range(rng.randint(1, 3)):
                        blob[rng.randrange(8, len(blob))] ^= 1 << rng.randrange(8)
                    data = bytes(blob)
                r.feed(data)
            r._handle(r.ch.handle_timer(r.t + 61.0))
            assert r.ch.ended and r.ch.get_timer() is None
            codes = [e.response_code for e in r.events if isinstance(e, SessionEnded)]
            outcomes.add(codes[0] if codes else None)
    # mutations were refused with the standard's codes (FAILED, FAILED_SignatureError, FAILED_SequenceError ...)
    # and some were harmless (the session then ended on V2G_SECC_Sequence_Timeout: no code)
    assert None in outcomes and "FAILED" in outcomes and len(outcomes) >= 3, outcomes


def _raw20() -> Any:
    from test_pc_iso20_sessions import Raw

    raw = Raw()
    raw.ch.security.trust_store = charger_store_20()
    return raw.setup()


def charger_store_20() -> Any:
    from _pnc20_fixtures import charger_store

    return charger_store()


@pytest.mark.parametrize("spoil,code,ends", [
    (lambda m: m["ContractCertificateChain"].update(Certificate=b"\x30\x03\x02\x01\x00"),
     "WARNING_CertificateValidationError", False),
    (lambda m: m["ContractCertificateChain"]["SubCertificates"].update(Certificate=[b"\x30"]),
     "WARNING_CertificateValidationError", False),
    (lambda m: m.update(GenChallenge=b"\x00" * 16), "WARNING_ChallengeInvalid", False),
    (lambda m: None, "FAILED_SignatureError", True),  # no Signature in the header
])
def test_malformed_pnc_authorization_requests(spoil, code, ends):
    raw = _raw20()
    name, body = raw.send("AuthorizationSetupReq", {})
    assert body["AuthorizationServices"] == ["EIM", "PnC"]
    p = pki20()
    mode = {"Id": "id1", "GenChallenge": bytes(body["PnC_ASResAuthorizationMode"]["GenChallenge"]),
            "ContractCertificateChain": {"Certificate": p.cert("contract-leaf"),
                                         "SubCertificates": {"Certificate": [p.cert("mo-sub2"), p.cert("mo-sub1")]}}}
    spoil(mode)
    name, res = raw.send("AuthorizationReq", {"SelectedAuthorizationService": "PnC", "PnC_AReqAuthorizationMode": mode})
    assert (name, res["ResponseCode"]) == ("AuthorizationRes", code)
    assert raw.ch.ended == ends
    if not ends:  # the EV may still identify at the charger
        name, res = raw.send("AuthorizationReq", {"SelectedAuthorizationService": "EIM", "EIM_AReqAuthorizationMode": {}})
        assert res["ResponseCode"] == "OK"


@pytest.mark.parametrize("leaf,code", [(b"\x01\x02", "FAILED"),
                                       (lambda p: p.cert("contract-leaf"), "WARNING_CertificateValidationError")])
def test_malformed_certificate_installation_requests(leaf, code):
    raw = _raw20()
    raw.send("AuthorizationSetupReq", {})
    p = pki20()
    der = leaf(p) if callable(leaf) else leaf
    name, res = raw.send("CertificateInstallationReq", {
        "OEMProvisioningCertificateChain": {"Id": "id1", "Certificate": der},
        "ListOfRootCertificateIDs": {"RootCertificateID": [{"X509IssuerName": "CN=x", "X509SerialNumber": 1}]},
        "MaximumContractCertificateChains": 1})
    assert (name, res["ResponseCode"]) == ("CertificateInstallationRes", code)
    assert raw.ch.ended == code.startswith("FAILED")
