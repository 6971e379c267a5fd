"""The ISO 15118-2 SECC (charger side) handler, AC and DC, Contract and EIM.

:class:`ChargerHandler` runs inside a :class:`plugcharge.ChargerSession` once the handshake agreed
on ISO 15118-2.  The session core dispatches requests through
:data:`plugcharge.iso2.states.CHARGER_TRANSITIONS`: a request that is not allowed in the current
state is answered with its response type carrying ``FAILED_SequenceError`` [V2G2-459, V2G2-538], a
SessionID that does not echo the one assigned [V2G2-388] with ``FAILED_UnknownSession``.  The
handlers here answer a bad or missing signature with ``FAILED_SignatureError``
(``FAILED_MeteringSignatureNotValid`` for receipts), a contract chain problem with the code
:mod:`pki` maps it to; every FAILED answer ends the session [V2G2-539, V2G2-034].
A payload that does not decode is answered (when the state expects exactly one request type) with
that request's response carrying ``FAILED``, then the session ends.

The backend is reached through events: :class:`~plugcharge.core.events.CertificateInstallationNeeded`
(answer with :class:`~plugcharge.core.events.CertificateInstallationResponse`) and
:class:`~plugcharge.core.events.AuthorizationNeeded` (answer with
:class:`~plugcharge.core.events.AuthorizationResult`).  While authorisation is pending the charger
answers AuthorizationReq with EVSEProcessing=Ongoing [V2G2-710..713].
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Optional, Sequence, Union

from cryptography.hazmat.primitives.asymmetric import ec

from ..core.codec import NS_ISO2, body_of, session_id_of, v2g_message
from ..core.config import PausedSession
from ..core.errors import LocalProtocolError, Refused, SignatureError
from ..core.fsm import CoreState
from ..core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationRejected, AuthorizationResult,
    CertificateInstallationNeeded, CertificateInstallationResponse, ChargingStarted, ChargingStopped,
    MeteringReceiptReceived, MeterValues, RequestRenegotiation, SessionPaused, SessionStarted,
    StopCharging,
)
from ..core.session import ChargerHandler as _ChargerHandlerBase
from ..core.timers import SEQUENCE
from ..pnc.certs import chain_certs, normalize_emaid
from ..pnc.security import certificate_of
from ..pnc.signatures import sign_message, verify_message
from . import messages as M
from .states import ENDED, ChargerState, allowed_response_code

__all__ = ["ChargerHandler"]

S = ChargerState
#: Length of the one SAScheduleTuple the charger offers (seconds).
_SCHEDULE_SECONDS = 86400
#: what a request handler returns: the next state
Next = Union[ChargerState, CoreState]
#: Every paused record this handler writes or resumes is of this protocol.
_PROTOCOL = "iso2"


class ChargerHandler(_ChargerHandlerBase):
    """ISO 15118-2 on the charger side, from SessionSetup to SessionStop (one V2G communication session)."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.payment: Optional[str] = None
        self.energy_mode: Optional[str] = None
        self.emaid: Optional[str] = None
        self._contract_leaf: Optional[bytes] = None
        self._challenge: Optional[bytes] = None
        self._challenge_ok = False
        self._auth_requested = False
        self._auth_result: Optional[AuthorizationResult] = None
        self._auth_started: Optional[float] = None
        self._resumed = False
        self._resumed_authorized = False
        self._schedule_start: Optional[datetime] = None
        self._cert_action = "Install"
        self._polls = 0
        self._schedule_ids: set[int] = set()
        self._receipt_due = False
        self._loops = 0
        self._meter_wh = 0.0
        self._last_meter_t: Optional[float] = None
        self._voltage = 0.0
        self._current = 0.0
        self._stop_requested = False
        self._renegotiate_requested = False
        self._chain: tuple[bytes, ...] = ()
        self._verified: Any = None

    # ------------------------------------------------------------ helpers
    @property
    def is_dc(self) -> bool:
        """Whether the session's (or else the first configured) energy transfer mode is a DC one."""
        mode = self.energy_mode or self.config.energy_modes[0]
        return mode not in M.AC_MODES

    def _offered_payment(self) -> list[str]:
        if self._resumed and self.payment is not None:
            return [self.payment]  # [V2G2-741] a resumed session offers the option it had
        opts = [p for p in self.config.payment_options if p != "Contract" or self.config.tls]
        return opts or ["ExternalPayment"]

    def _evse_status(self) -> tuple[str, dict[str, Any]]:
        note = "StopCharging" if self._stop_requested else "ReNegotiation" if self._renegotiate_requested else "None"
        if self.is_dc:
            code = "EVSE_Shutdown" if self._stop_requested else "EVSE_Ready"
            return "DC_EVSEStatus", M.dc_evse_status(code, note)
        return "AC_EVSEStatus", M.ac_evse_status(note)

    def _respond(self, name: str, body: dict[str, Any], *, sign_key: Optional[ec.EllipticCurvePrivateKey] = None,
                 now: float = 0.0) -> None:
        msg = v2g_message(self.session_id or bytes(8), name, body)
        if sign_key is not None:
            sign_message(msg, sign_key, codecs=self._codecs)
        self.session.respond(msg, name, now)

    def failure_body(self, res: str, code: str, req: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """Minimal schema-valid body of response ``res`` carrying ``code``."""
        b: dict[str, Any] = {"ResponseCode": code}
        st_name, st = self._evse_status()
        zero_v = M.physical(0, "V")
        dc_st = M.dc_evse_status("EVSE_NotReady", "None")
        if res == "SessionSetupRes":
            b["EVSEID"] = self.config.evse_id
        elif res == "ServiceDiscoveryRes":
            b.update(M.service_discovery_res(code, ["ExternalPayment"], list(self.config.energy_modes[:1]), False))
        elif res == "ServiceDetailRes":
            b["ServiceID"] = int((req or {}).get("ServiceID", 0) or 0)
        elif res == "PaymentDetailsRes":
            b.update(GenChallenge=bytes(16), EVSETimeStamp=self._timestamp())
        elif res in ("AuthorizationRes",):
            b["EVSEProcessing"] = "Finished"
        elif res == "ChargeParameterDiscoveryRes":
            b["EVSEProcessing"] = "Finished"
            b.update(self._evse_charge_parameter())
        elif res in ("PowerDeliveryRes", "MeteringReceiptRes"):
            b[st_name] = st
        elif res == "ChargingStatusRes":
            b.update(EVSEID=self.config.evse_id, SAScheduleTupleID=1, AC_EVSEStatus=M.ac_evse_status())
        elif res == "CableCheckRes":
            b.update(DC_EVSEStatus=dc_st, EVSEProcessing="Finished")
        elif res in ("PreChargeRes", "WeldingDetectionRes"):
            b.update(DC_EVSEStatus=dc_st, EVSEPresentVoltage=zero_v)
        elif res == "CurrentDemandRes":
            b.update(DC_EVSEStatus=dc_st, EVSEPresentVoltage=zero_v, EVSEPresentCurrent=M.physical(0, "A"),
                     EVSECurrentLimitAchieved=False, EVSEVoltageLimitAchieved=False,
                     EVSEPowerLimitAchieved=False, EVSEID=self.config.evse_id, SAScheduleTupleID=1)
        elif res in ("CertificateInstallationRes", "CertificateUpdateRes"):
            b.update(SAProvisioningCertificateChain={"Certificate": b"\x00"},
                     ContractSignatureCertChain={"Id": "id1", "Certificate": b"\x00"},
                     ContractSignatureEncryptedPrivateKey={"Id": "id2", "value": bytes(48)},
                     DHpublickey={"Id": "id3", "value": bytes(65)},
                     eMAID={"Id": "id4", "value": "ZZ00000000000000"[:15]})
        return b

    def _timestamp(self) -> int:
        return int(self.security.wall_clock().timestamp())

    # ------------------------------------------------------------ timers
    def on_timer(self, name: str, now: float) -> None:
        """The backend did not answer the certificate request in time: FAILED, end."""
        if name == "backend":
            res = "CertificateUpdateRes" if self._cert_action == "Update" else "CertificateInstallationRes"
            self._fail(res[:-3] + "Req", "FAILED", "backend did not answer the certificate request in time",
                       now, remote=False)

    # ------------------------------------------------------------ commands
    def on_command(self, command: Any, now: float) -> None:
        """The backend's answers, StopCharging and RequestRenegotiation from the operator."""
        if isinstance(command, CertificateInstallationResponse):
            self._on_certificate_response(command, now)
        elif isinstance(command, AuthorizationResult):
            self._auth_result = command
        elif isinstance(command, StopCharging):
            self._stop_requested = True
        elif isinstance(command, RequestRenegotiation):
            if self.state not in (S.CHARGING_AC, S.CHARGING_DC):
                raise LocalProtocolError("renegotiation can only be requested during the charge loop")
            self._renegotiate_requested = True
        else:
            raise LocalProtocolError(f"charger cannot handle {type(command).__name__}")

    def _on_certificate_response(self, cmd: CertificateInstallationResponse, now: float) -> None:
        if self.state is not S.WAIT_BACKEND_CERTIFICATE:
            raise LocalProtocolError("no certificate request is pending")
        self._cancel_timer("backend")
        res = "CertificateUpdateRes" if self._cert_action == "Update" else "CertificateInstallationRes"
        req = res[:-3] + "Req"
        if not cmd.accepted or cmd.exi_response is None:
            # a refusal without a code (OCPP status Failed) is plain FAILED (as EVerest answers it),
            # its reason in the events; a backend that knows why says so in its EXI response (or the
            # caller names the code)
            self._fail(req, cmd.response_code or "FAILED",
                       "backend refused the certificate request" + (f": {cmd.reason}" if cmd.reason else ""),
                       now, remote=False)
            return
        try:
            name, body, header = body_of(self._decode(cmd.exi_response, NS_ISO2))
        except Exception as exc:
            self._fail(req, "FAILED", f"backend response does not decode: {exc}", now, remote=False)
            return
        if name != res:
            self._fail(req, "FAILED", f"backend answered {name}, expected {res}", now, remote=False)
            return
        msg = v2g_message(self.session_id, name, body, signature=header.get("Signature"))
        try:
            self._queue(msg, name)
        except Exception as exc:
            self._fail(req, "FAILED", f"backend response cannot be re-encoded: {exc}", now, remote=False)
            return
        self._set_timer(SEQUENCE, now + self.timing.sequence_timeout())
        ok = str(body.get("ResponseCode", "")).startswith("OK")
        new = S.WAIT_PAYMENT_DETAILS if ok else ENDED
        self.state = new
        if not ok:
            self._end("failed", response_code=body.get("ResponseCode"), detail="backend refused the certificate")

    # ------------------------------------------------------------ request handlers
    def _h_SessionSetupReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        evcc_id = bytes(body["EVCCID"])
        requested = session_id_of(header) or b""
        paused = self.store.resume(requested, _PROTOCOL) if any(requested) else None
        if paused is not None:
            self.session_id, code, self._resumed = requested, "OK_OldSessionJoined", True
            self.payment, self.emaid = paused.payment, paused.emaid
            self._contract_leaf, self.energy_mode = paused.contract_leaf, paused.energy_mode
            self._schedule_start = paused.schedule_start
            self._resumed_authorized = True
        else:
            self.session_id, code = self.security.random_bytes(8), "OK_NewSessionEstablished"
        self._respond("SessionSetupRes", {"ResponseCode": code, "EVSEID": self.config.evse_id,
                                          "EVSETimeStamp": self._timestamp()}, now=now)
        self._emit(SessionStarted(self.session_id, evcc_id, self.config.evse_id, self._resumed))
        return S.WAIT_SERVICE_DISCOVERY

    def _h_ServiceDiscoveryReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        offered = self._offered_payment()
        cert = self.config.certificate_service and "Contract" in offered
        self._respond("ServiceDiscoveryRes", M.service_discovery_res(
            "OK", offered, list(self.config.energy_modes), cert), now=now)
        return S.WAIT_SERVICE_SELECTION

    def _h_ServiceDetailReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        sid = int(body["ServiceID"])
        if sid != M.SERVICE_ID_CERTIFICATE or not (self.config.certificate_service and "Contract" in self._offered_payment()):
            raise Refused("FAILED_ServiceIDInvalid", f"no details for ServiceID {sid}")
        self._respond("ServiceDetailRes", M.certificate_service_detail_res("OK", sid), now=now)
        return S.WAIT_SERVICE_SELECTION

    def _h_PaymentServiceSelectionReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        option = body["SelectedPaymentOption"]
        if option not in self._offered_payment():
            raise Refused("FAILED_PaymentSelectionInvalid", f"{option} is not offered")
        if self._resumed and option != self.payment:
            raise Refused("FAILED_PaymentSelectionInvalid", "a resumed session keeps its payment option")
        services = body["SelectedServiceList"]["SelectedService"]
        ids = [int(s["ServiceID"]) for s in services]
        if M.SERVICE_ID_CHARGING not in ids:
            raise Refused("FAILED_NoChargeServiceSelected", "charge service not selected")
        allowed = {M.SERVICE_ID_CHARGING}
        if self.config.certificate_service and option == "Contract":
            allowed.add(M.SERVICE_ID_CERTIFICATE)
        if any(i not in allowed for i in ids):
            raise Refused("FAILED_ServiceSelectionInvalid", f"service selection {ids} not offered")
        self.payment = option
        self._respond("PaymentServiceSelectionRes", {"ResponseCode": "OK"}, now=now)
        if option == "Contract":
            return S.RESUMED_CONTRACT if self._resumed else S.WAIT_CONTRACT
        return S.WAIT_AUTHORIZATION

    def _check_cert_request(self, name: str, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any],
                            now: float) -> None:
        signer = body["OEMProvisioningCert"] if name == "CertificateInstallationReq" else \
            chain_certs(body["ContractSignatureCertChain"])[0]
        at = self.security.wall_clock()
        if name == "CertificateInstallationReq":
            self.security.oem_check()(bytes(signer), at)
        else:
            leaf, subs = chain_certs(body["ContractSignatureCertChain"])
            self._verify_chain(leaf, subs, at)
        verify_message(msg, bytes(signer), codecs=self._codecs)

    def _h_CertificateInstallationReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        self._check_cert_request("CertificateInstallationReq", body, header, msg, now)
        self._cert_action = "Install"
        return self._ask_backend(payload, now)

    def _h_CertificateUpdateReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        self._check_cert_request("CertificateUpdateReq", body, header, msg, now)
        self._cert_action = "Update"
        return self._ask_backend(payload, now)

    def _ask_backend(self, payload: bytes, now: float) -> Next:
        self._cancel_timer(SEQUENCE)
        self._set_timer("backend", now + self.timing.get("backend_timeout"))
        self._emit(CertificateInstallationNeeded(bytes(payload), self._cert_action))
        return S.WAIT_BACKEND_CERTIFICATE

    def _verify_chain(self, leaf: bytes, subs: Sequence[bytes], at: datetime) -> Any:
        try:
            return self.security.contract_chain_verifier()(leaf, subs, at)
        except Refused:
            raise
        except Exception as exc:
            code = getattr(exc, "response_code", None) or "FAILED_CertChainError"
            raise Refused(str(code), f"contract chain rejected: {exc}") from None

    def _h_PaymentDetailsReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        leaf, subs = chain_certs(body["ContractSignatureCertChain"])
        verified = self._verify_chain(leaf, subs, self.security.wall_clock())
        emaid = str(body["eMAID"])
        # the chain validator's eMAID, else the leaf's CN (a certificate that is not DER is refused)
        chain_emaid = getattr(verified, "emaid", None) or certificate_of(leaf)[1]
        if normalize_emaid(emaid) != normalize_emaid(chain_emaid):
            raise Refused("FAILED_CertChainError", "eMAID does not match the contract certificate")
        if self._resumed and leaf != self._contract_leaf:  # another contract: authorise it afresh
            self._resumed_authorized = False
        self.emaid, self._contract_leaf = emaid, leaf
        self._chain = (leaf, *subs)
        self._verified = verified
        self._challenge = self.security.random_bytes(16)  # [V2G2-697]
        self._respond("PaymentDetailsRes", {"ResponseCode": "OK", "GenChallenge": self._challenge,
                                            "EVSETimeStamp": self._timestamp()}, now=now)
        return S.WAIT_AUTHORIZATION

    def _h_AuthorizationReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        # Contract: once this session issued a GenChallenge (PaymentDetailsRes, always before
        # authorisation except in a resumed session that skips to AuthorizationReq), the first
        # AuthorizationReq echoes it [V2G2-475] and is signed with the contract key.
        if self.payment == "Contract" and self._challenge is not None and not self._challenge_ok:
            if body.get("GenChallenge") is None or bytes(body["GenChallenge"]) != self._challenge:
                raise Refused("FAILED_ChallengeInvalid", "GenChallenge does not echo PaymentDetailsRes [V2G2-475]")
            if self._contract_leaf is None:
                raise Refused("FAILED_SequenceError", "no contract certificate known for this session")
            # the validated chain's leaf key (the same certificate, its key already loaded), else the DER
            key = getattr(self._verified, "leaf_public_key", None) if self._verified is not None else None
            verify_message(msg, key if key is not None else self._contract_leaf, codecs=self._codecs)
            self._challenge_ok = True
        elif body.get("GenChallenge") is not None and self.payment == "Contract" and self._challenge is not None:
            if bytes(body["GenChallenge"]) != self._challenge:
                raise Refused("FAILED_ChallengeInvalid", "GenChallenge changed while Ongoing")
        if self._resumed and self._resumed_authorized:
            self._auth_result = AuthorizationResult(True)
        if self._auth_started is None:
            self._auth_started = now
        if not self._auth_requested and self._auth_result is None:
            self._auth_requested = True
            chain = self._chain
            ocsp: tuple = ()
            if chain:
                try:
                    ocsp = tuple(self._ocsp_data(chain))
                except Exception:  # OCSP data is advisory: never fail the session for it
                    ocsp = ()
            self._emit(AuthorizationNeeded(self.payment or "ExternalPayment", self.emaid if self.payment == "Contract"
                                           else None, chain if self.payment == "Contract" else (), ocsp))
        result = self._auth_result
        if result is None:
            if now - self._auth_started > self.timing.get("secc_ongoing"):
                raise Refused("FAILED", "authorisation not granted within V2G_SECC_Ongoing_Performance_Time",
                               remote=False)
            self._respond("AuthorizationRes", {"ResponseCode": "OK", "EVSEProcessing": "Ongoing"}, now=now)
            return S.WAIT_AUTHORIZATION
        if not result.accepted:
            cause = result.response_code or "FAILED"
            code = allowed_response_code("AuthorizationRes", cause)
            self._emit(AuthorizationRejected(code, self.emaid, cause if cause != code else None))
            raise Refused(cause, "authorisation refused", remote=False)
        self._respond("AuthorizationRes", {"ResponseCode": "OK", "EVSEProcessing": "Finished"}, now=now)
        self._emit(AuthorizationAccepted(self.payment or "ExternalPayment", self.emaid))
        self._polls = 0
        return S.WAIT_CHARGE_PARAMETER

    def _ocsp_data(self, chain: Sequence[bytes]) -> Sequence[Mapping[str, Any]]:
        """OCPP OCSPRequestData for the contract chain: the injected function, else :mod:`pki.ocsp`
        over the verified path (which includes the root, so every Sub-CA gets an entry)."""
        if self.security.ocsp_request_data is not None:
            return self.security.ocsp_request_data(chain)
        verified = self._verified
        if verified is None or not callable(getattr(verified, "parsed", None)):
            return ()
        from pki.ocsp import ocpp_request_data

        return ocpp_request_data(verified)

    def _evse_charge_parameter(self) -> dict[str, Any]:
        c = self.config
        if self.is_dc:
            return {"DC_EVSEChargeParameter": {
                "DC_EVSEStatus": M.dc_evse_status("EVSE_Ready", isolation=None),
                "EVSEMaximumCurrentLimit": M.physical(c.dc_max_current, "A"),
                "EVSEMaximumPowerLimit": M.physical(c.dc_max_power, "W"),
                "EVSEMaximumVoltageLimit": M.physical(c.dc_max_voltage, "V"),
                "EVSEMinimumCurrentLimit": M.physical(c.dc_min_current, "A"),
                "EVSEMinimumVoltageLimit": M.physical(c.dc_min_voltage, "V"),
                "EVSEPeakCurrentRipple": M.physical(c.dc_peak_ripple, "A")}}
        return {"AC_EVSEChargeParameter": {
            "AC_EVSEStatus": M.ac_evse_status(),
            "EVSENominalVoltage": M.physical(c.ac_nominal_voltage, "V"),
            "EVSEMaxCurrent": M.physical(c.ac_max_current, "A")}}

    def _h_ChargeParameterDiscoveryReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        mode = body["RequestedEnergyTransferMode"]
        if mode not in self.config.energy_modes:
            raise Refused("FAILED_WrongEnergyTransferMode", f"{mode} not supported")
        want = "AC_EVChargeParameter" if mode in M.AC_MODES else "DC_EVChargeParameter"
        if want not in body:
            raise Refused("FAILED_WrongChargeParameter", f"{mode} needs {want}")
        renegotiation = self.energy_mode is not None and self._schedule_ids
        if self.energy_mode is not None and mode != self.energy_mode:
            raise Refused("FAILED_WrongEnergyTransferMode", "energy transfer mode changed")
        self.energy_mode = mode
        if self._polls < self.config.schedule_polls:
            self._polls += 1
            self._respond("ChargeParameterDiscoveryRes", {"ResponseCode": "OK", "EVSEProcessing": "Ongoing",
                                                          **self._evse_charge_parameter()}, now=now)
            return S.WAIT_CHARGE_PARAMETER
        self._polls = 0
        signed = self.config.sales_tariff and self.payment == "Contract" and self.security.sales_tariff_key is not None
        wall = self.security.wall_clock()
        if self._schedule_start is None or renegotiation:
            self._schedule_start = wall
        # [V2G2-741] a resumed session gets the tuple it had, shortened by the time already elapsed
        left = _SCHEDULE_SECONDS - int((wall - self._schedule_start).total_seconds())
        schedules = M.sa_schedule_list(self.config.pmax_w, sales_tariff=self.config.sales_tariff,
                                       duration=min(_SCHEDULE_SECONDS, max(1, left)))
        self._schedule_ids = {t["SAScheduleTupleID"] for t in schedules["SAScheduleTuple"]}
        self._respond("ChargeParameterDiscoveryRes", {
            "ResponseCode": "OK", "EVSEProcessing": "Finished", "SAScheduleList": schedules,
            **self._evse_charge_parameter()},
            sign_key=self.security.sales_tariff_key if signed else None, now=now)
        if renegotiation or not self.is_dc:
            return S.WAIT_POWER_DELIVERY
        return S.WAIT_CABLE_CHECK

    def _h_CableCheckReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        done = self._polls >= self.config.cable_check_polls
        self._polls += 1
        self._respond("CableCheckRes", {
            "ResponseCode": "OK",
            "DC_EVSEStatus": M.dc_evse_status("EVSE_Ready" if done else "EVSE_IsolationMonitoringActive",
                                              isolation="Valid" if done else "Invalid"),
            "EVSEProcessing": "Finished" if done else "Ongoing"}, now=now)
        return S.WAIT_PRECHARGE if done else S.WAIT_CABLE_CHECK

    def _h_PreChargeReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        self._voltage = M.from_physical(body["EVTargetVoltage"])
        self._respond("PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": M.dc_evse_status(),
                                       "EVSEPresentVoltage": M.physical(self._voltage, "V")}, now=now)
        return S.WAIT_PRECHARGE

    def _h_PowerDeliveryReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        sid = int(body["SAScheduleTupleID"])
        if sid not in self._schedule_ids:
            raise Refused("FAILED_TariffSelectionInvalid", f"SAScheduleTupleID {sid} was not offered")
        progress = body["ChargeProgress"]
        charging = self.state in (S.CHARGING_AC, S.CHARGING_DC)
        if progress == "Renegotiate" and not charging:
            raise Refused("FAILED", "Renegotiate outside the charge loop")
        if progress == "Start" and charging:
            raise Refused("FAILED_PowerDeliveryNotApplied", "already charging")
        st_name, st = self._evse_status()
        self._respond("PowerDeliveryRes", {"ResponseCode": "OK", st_name: st}, now=now)
        if progress == "Start":
            self._last_meter_t = now
            self._emit(ChargingStarted(self.energy_mode or "", sid))
            return S.CHARGING_DC if self.is_dc else S.CHARGING_AC
        if progress == "Renegotiate":
            self._renegotiate_requested = False
            return S.WAIT_CHARGE_PARAMETER
        self._current = 0.0
        self._emit(ChargingStopped("ev_request"))
        return S.STOPPED_DC if self.is_dc else S.STOPPED_AC

    def _meter(self, now: float) -> dict[str, Any]:
        if self._last_meter_t is not None:
            self._meter_wh += self._voltage * self._current * max(0.0, now - self._last_meter_t) / 3600.0
        self._last_meter_t = now
        return M.meter_info(self.config.meter_id, int(self._meter_wh), self._timestamp())

    def _receipt_flag(self) -> Optional[bool]:
        self._loops += 1
        if self.payment != "Contract" or not self.config.receipt_every:
            return None
        self._receipt_due = self._loops % self.config.receipt_every == 0
        return self._receipt_due

    def _h_ChargingStatusReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        self._voltage, self._current = self.config.ac_nominal_voltage, self.config.ac_max_current
        res: dict[str, Any] = {"ResponseCode": "OK", "EVSEID": self.config.evse_id,
                               "SAScheduleTupleID": min(self._schedule_ids),
                               "EVSEMaxCurrent": M.physical(self.config.ac_max_current, "A"),
                               "MeterInfo": self._meter(now)}
        receipt = self._receipt_flag()
        if receipt is not None:
            res["ReceiptRequired"] = receipt
        res["AC_EVSEStatus"] = self._evse_status()[1]
        self._respond("ChargingStatusRes", res, now=now)
        self._emit(MeterValues(self._voltage, self._current, int(self._meter_wh)))
        return S.CHARGING_AC

    def _h_CurrentDemandReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        meter = self._meter(now)
        c = self.config
        self._voltage = min(M.from_physical(body["EVTargetVoltage"]), c.dc_max_voltage)
        self._current = min(M.from_physical(body["EVTargetCurrent"]), c.dc_max_current,
                            c.dc_max_power / max(self._voltage, 1.0))
        res: dict[str, Any] = {
            "ResponseCode": "OK", "DC_EVSEStatus": self._evse_status()[1],
            "EVSEPresentVoltage": M.physical(round(self._voltage, 1), "V"),
            "EVSEPresentCurrent": M.physical(round(self._current, 1), "A"),
            "EVSECurrentLimitAchieved": self._current >= c.dc_max_current,
            "EVSEVoltageLimitAchieved": self._voltage >= c.dc_max_voltage,
            "EVSEPowerLimitAchieved": self._voltage * self._current >= c.dc_max_power,
            "EVSEMaximumVoltageLimit": M.physical(c.dc_max_voltage, "V"),
            "EVSEMaximumCurrentLimit": M.physical(c.dc_max_current, "A"),
            "EVSEMaximumPowerLimit": M.physical(c.dc_max_power, "W"),
            "EVSEID": c.evse_id, "SAScheduleTupleID": min(self._schedule_ids), "MeterInfo": meter}
        receipt = self._receipt_flag()
        if receipt is not None:
            res["ReceiptRequired"] = receipt
        self._respond("CurrentDemandRes", res, now=now)
        soc = body["DC_EVStatus"].get("EVRESSSOC")
        self._emit(MeterValues(self._voltage, self._current, int(self._meter_wh), soc))
        return S.CHARGING_DC

    def _h_MeteringReceiptReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        if not self._receipt_due:
            raise Refused("FAILED_SequenceError", "no metering receipt was requested")
        if bytes(body["SessionID"]) != self.session_id:
            raise Refused("FAILED_UnknownSession", "MeteringReceiptReq names another session")
        if self._contract_leaf is None:
            raise Refused("FAILED_MeteringSignatureNotValid", "no contract certificate to verify the receipt")
        try:
            verify_message(msg, self._contract_leaf, codecs=self._codecs)
        except SignatureError as exc:
            raise Refused("FAILED_MeteringSignatureNotValid", str(exc)) from None
        self._receipt_due = False
        st_name, st = self._evse_status()
        self._respond("MeteringReceiptRes", {"ResponseCode": "OK", st_name: st}, now=now)
        self._emit(MeteringReceiptReceived(dict(body["MeterInfo"])))
        return self.state

    def _h_WeldingDetectionReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        self._voltage = max(0.0, self._voltage / 4 - 1)
        self._respond("WeldingDetectionRes", {"ResponseCode": "OK", "DC_EVSEStatus": M.dc_evse_status(),
                                              "EVSEPresentVoltage": M.physical(round(self._voltage), "V")}, now=now)
        return S.STOPPED_DC

    def _h_SessionStopReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
            now: float) -> Next:
        kind = body["ChargingSession"]
        self._respond("SessionStopRes", {"ResponseCode": "OK"}, now=now)
        if kind == "Pause":
            authorized = self._auth_result is not None and self._auth_result.accepted
            if authorized:
                self.store.pause(self.session_id, PausedSession(self.payment or "ExternalPayment", self.emaid,
                                                                self._contract_leaf, self.energy_mode, _PROTOCOL,
                                                                self._schedule_start))
            self._emit(SessionPaused(self.session_id, self.payment, min(self._schedule_ids, default=None)))
            self._end("paused")
        else:
            self._end("finished")
        return ENDED
