"""The ISO 15118-20 SECC (charger side) handler: AC, DC and their BPT variants, Scheduled and
Dynamic control, identification at the charger (EIM) and the Plug & Charge seam.

:class:`ChargerHandler` runs inside a :class:`plugcharge.ChargerSession` once the handshake agreed
on ``urn:iso:std:iso:15118:-20:AC`` or ``:DC``.  The session core decodes every request with the
namespace of its V2GTP payload type, checks the SessionID (``FAILED_UnknownSession``) and the
transition table (``FAILED_SequenceError``), and answers anything malformed with ``FAILED``; every
FAILED answer ends the session.  The handlers here add the message meaning:

* Authorization: EIM is granted by the caller (:class:`~plugcharge.core.events.AuthorizationNeeded`
  with ``payment="ExternalPayment"``, answered by :class:`~plugcharge.core.events.AuthorizationResult`);
  until then AuthorizationRes carries EVSEProcessing=Ongoing, for at most the EIM ongoing time
  (then ``FAILED``).  A refusal is ``WARNING_EIMAuthorizationFailure`` (the EV may try another
  mode or stop) unless the result names a FAILED code.  A mode not offered is
  ``WARNING_AuthorizationSelectionInvalid`` [V2G20-2226]; a PnC GenChallenge that is not the one
  sent is ``WARNING_ChallengeInvalid`` [V2G20-2565, V2G20-2216].  Plug & Charge: :mod:`.pnc`.
* ServiceDetail for a service not offered: ``FAILED_ServiceIDInvalid`` [V2G20-464]; a selection of
  a service or parameter set not offered: ``FAILED_ServiceSelectionInvalid``.
* Charge parameters of the wrong kind (BPT vs not) or a charge loop in another control mode:
  ``FAILED_WrongChargeParameter``; a schedule tuple not offered: ``FAILED_ScheduleSelectionInvalid``.
* A paused session keeps what it selected; SessionSetupReq with its SessionID joins it
  (``OK_OldSessionJoined``) and ServiceDiscovery offers only the service selected before
  [V2G20-1644] (ServiceRenegotiationSupported is False).
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Optional, Union

from ..core.codec import NS_ISO20_CM
from ..core.config import PausedSession
from ..core.errors import LocalProtocolError, Refused, SignatureError
from ..core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationRejected, AuthorizationResult,
    CertificateInstallationNeeded, CertificateInstallationResponse, ChargingStarted, ChargingStopped,
    MeteringReceiptReceived, MeterValues, RequestRenegotiation, SessionPaused, SessionStarted, StopCharging,
)
from ..core.fsm import CoreState
from ..core.session import ChargerHandler as _ChargerHandlerBase
from ..core.timers import SEQUENCE
from ..pnc.certs import normalize_emaid
from . import messages as M
from .plugandcharge import charger_pnc
from .states import ENDED, ChargerState

__all__ = ["ChargerHandler"]

_log = logging.getLogger("plugcharge.session")

#: the payment an authorisation mode (SelectedAuthorizationService) stands for
_PAYMENT = {"PnC": "Contract", "EIM": "ExternalPayment"}

S = ChargerState
Next = Union[ChargerState, CoreState]
R = M.rational


class ChargerHandler(_ChargerHandlerBase):
    """ISO 15118-20 on the charger side, SessionSetup to SessionStop (one V2G communication session)."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        spec = session.protocol
        #: ``"AC"`` or ``"DC"``: the message set agreed
        self.kind = "AC" if spec.namespace == M.NS_AC else "DC"
        self._protocol_id = spec.id
        self.pnc: Any = charger_pnc(self.security)
        self.payment: Optional[str] = None
        self.emaid: Optional[str] = None
        #: the energy service selected (``"DC"``, ``"DC_BPT"``, ...) and its control mode
        self.service: Optional[str] = None
        self.control_mode: Optional[str] = None
        self._parameter_set = 0
        self._auth_services: list[str] = []
        self._cert_install = False
        self._challenge: Optional[bytes] = None
        self._auth_mode: Optional[str] = None
        self._auth_requested = False
        self._auth_result: Optional[AuthorizationResult] = None
        self._auth_started: Optional[float] = None
        self._authorized = False
        self._contract: Any = None
        #: the PnC request under authorisation: (PnC_AReqAuthorizationMode, header Signature) as verified
        self._pnc_request: Optional[tuple[Any, Any]] = None
        self._resumed: Optional[PausedSession] = None
        self._polls = 0
        self._schedule_ids: set[int] = set()
        self._renegotiating = False
        self._ev_limits: dict[str, float] = {}
        self._loops = 0
        self._charged_wh = 0.0
        self._discharged_wh = 0.0
        self._last_meter_t: Optional[float] = None
        self._voltage = 0.0
        self._current = 0.0
        self._power = 0.0
        self._stop_requested = False
        self._renegotiate_requested = False
        self._receipt_due = False

    # ------------------------------------------------------------ helpers
    @property
    def energy_mode(self) -> Optional[str]:
        """The energy service selected (``ChargerSession.energy_mode``)."""
        return self.service

    @property
    def bpt(self) -> bool:
        """Whether the selected service is bidirectional."""
        return bool(self.service and self.service.endswith("_BPT"))

    def _timestamp(self) -> int:
        return int(self.security.wall_clock().timestamp())

    def _respond(self, name: str, body: dict[str, Any], now: float) -> None:
        self.session.respond(M.message(self.session_id, name, body, self._timestamp()), name, now)

    def failure_body(self, response: str, code: str, request: Optional[Mapping[str, Any]]) -> dict[str, Any]:
        """A minimal schema-valid body of ``response`` carrying ``code`` (with a header time stamp)."""
        sid = 0
        if request is not None and isinstance(request.get("ServiceID"), int):
            sid = int(request["ServiceID"])
        body = M.failure_body(response, code, evse_id=self.config.evse_id, service_id=sid)
        return {"Header": {"TimeStamp": self._timestamp()}, **body}

    def _services(self) -> list[str]:
        """The energy services this charger offers on the agreed message set."""
        if self._resumed is not None and self._resumed.energy_mode:  # [V2G20-1644]
            return [self._resumed.energy_mode.split(":")[0]]
        return [self.kind] + ([self.kind + "_BPT"] if self.config.bpt else [])

    def _control_modes(self) -> list[str]:
        if self._resumed is not None and self._resumed.energy_mode and ":" in self._resumed.energy_mode:
            return [self._resumed.energy_mode.split(":")[1]]
        return [m for m in self.config.control_modes if m in ("Scheduled", "Dynamic")]

    def _notification(self) -> Optional[dict[str, Any]]:
        if self._stop_requested:
            return M.evse_status("Terminate")
        if self._renegotiate_requested:
            return M.evse_status("ScheduleRenegotiation")
        if self._receipt_due:
            return M.evse_status("MeteringConfirmation")
        return None

    # ------------------------------------------------------------ timers and commands
    def on_timer(self, name: str, now: float) -> None:
        """The backend did not answer the certificate request in time: FAILED, end."""
        if name == "backend":
            self._fail("CertificateInstallationReq", "FAILED", "backend did not answer the certificate request in time",
                       now, remote=False)

    def on_command(self, command: Any, now: float) -> None:
        """The backend's answers, StopCharging and RequestRenegotiation from the operator."""
        if isinstance(command, AuthorizationResult):
            if command.payment is not None and command.payment != self._awaited_payment():
                _log.info("ignored an authorisation result for %s: %s", command.payment,
                          "the EV changed its authorisation mode" if self._auth_requested else "none awaited")
                return
            self._auth_result = command
        elif isinstance(command, CertificateInstallationResponse):
            self._on_certificate_response(command, now)
        elif isinstance(command, StopCharging):
            self._stop_requested = True
        elif isinstance(command, RequestRenegotiation):
            if self.state is not S.CHARGING:
                raise LocalProtocolError("renegotiation can only be requested during the charge loop")
            self._renegotiate_requested = True
        else:
            raise LocalProtocolError(f"charger cannot handle {type(command).__name__}")

    def _awaited_payment(self) -> Optional[str]:
        """The payment of the AuthorizationNeeded awaiting its answer (None: none awaited)."""
        if not self._auth_requested or self._auth_result is not None:
            return None
        return _PAYMENT.get(self._auth_mode or "")

    def _on_certificate_response(self, cmd: CertificateInstallationResponse, now: float) -> None:
        """Relay the backend's CertificateInstallationRes under this session's header (PnC seam)."""
        if self.state is not S.WAIT_BACKEND_CERTIFICATE:
            raise LocalProtocolError("no certificate request is pending")
        self._cancel_timer("backend")
        req = "CertificateInstallationReq"
        if not cmd.accepted or cmd.exi_response is None:
            if cmd.response_code is not None and cmd.response_code.startswith("WARNING"):
                self._refuse_installation(cmd.response_code, now)  # e.g. no contract for this PCID
                self.state = S.WAIT_AUTHORIZATION
                return
            self._fail(req, "FAILED", "backend refused the certificate request"
                       + (f": {cmd.reason}" if cmd.reason else ""), now, remote=False)
            return
        try:
            name, body, header = M.unwrap(self._decode(cmd.exi_response, NS_ISO20_CM))
            if name != "CertificateInstallationRes":
                raise ValueError(f"backend answered {name}")
            header["SessionID"] = self.session_id
            self._queue({name: {"Header": header, **body}}, name)
        except Exception as exc:
            self._fail(req, "FAILED", f"backend response unusable: {exc}", now, remote=False)
            return
        self._set_timer(SEQUENCE, now + self.timing.sequence_timeout())
        if str(body.get("ResponseCode", "")).startswith("FAILED"):
            self.state = ENDED
            self._end("failed", response_code=str(body["ResponseCode"]), detail="backend refused the certificate")
        else:
            self.state = S.WAIT_AUTHORIZATION

    # ------------------------------------------------------------ session setup and authorization
    def _h_SessionSetupReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        evcc = str(body["EVCCID"])
        requested = M.session_id_of(header) or b""
        paused = self.store.resume(requested, self._protocol_id) if any(requested) else None
        if paused is not None:
            self.session_id, code, self._resumed = requested, "OK_OldSessionJoined", paused
            self.payment, self.emaid, self._authorized = paused.payment, paused.emaid, True
        else:
            self.session_id, code = self.security.random_bytes(8), "OK_NewSessionEstablished"
        self._respond("SessionSetupRes", {"ResponseCode": code, "EVSEID": self.config.evse_id}, now)
        try:
            evcc_id = bytes.fromhex(evcc)
        except ValueError:
            evcc_id = evcc.encode()
        self._emit(SessionStarted(self.session_id, evcc_id, self.config.evse_id, paused is not None))
        return S.WAIT_AUTHORIZATION_SETUP

    def _pnc_offered(self) -> bool:
        return (self.pnc is not None and self.config.tls and "Contract" in self.config.payment_options
                and bool(self.pnc.offered(self)))

    def _h_AuthorizationSetupReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        services = []
        if "ExternalPayment" in self.config.payment_options or self._resumed is not None:
            services.append("EIM")
        pnc = self._pnc_offered()
        if pnc:
            services.append("PnC")
        if not services:
            raise Refused("FAILED", "no authorization service configured", remote=False)
        self._auth_services = services
        self._cert_install = pnc and self.config.certificate_service and bool(self.pnc.installation_offered(self))
        res: dict[str, Any] = {"ResponseCode": "OK", "AuthorizationServices": services,
                               "CertificateInstallationService": self._cert_install}
        if pnc:
            self._challenge = self.security.random_bytes(16)  # [V2G20-2565] checks its echo
            res["PnC_ASResAuthorizationMode"] = {"GenChallenge": self._challenge}
        else:
            res["EIM_ASResAuthorizationMode"] = {}
        self._respond("AuthorizationSetupRes", res, now)
        return S.WAIT_AUTHORIZATION

    def _auth_answer(self, code: str, processing: str, now: float) -> None:
        self._respond("AuthorizationRes", {"ResponseCode": code, "EVSEProcessing": processing}, now)

    def _h_AuthorizationReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        mode = str(body["SelectedAuthorizationService"])
        if mode not in self._auth_services or (mode + "_AReqAuthorizationMode") not in body:
            self._auth_answer("WARNING_AuthorizationSelectionInvalid", "Finished", now)  # [V2G20-2226]
            return S.WAIT_AUTHORIZATION
        if self._auth_mode is not None and mode != self._auth_mode:  # another mode after a refusal
            self._auth_requested, self._auth_result, self._auth_started = False, None, None
        self._auth_mode = mode
        if mode == "PnC":
            signed = (body["PnC_AReqAuthorizationMode"], header.get("Signature"))
            first = not self._auth_requested and self._auth_result is None
            if first or signed != self._pnc_request:
                # [V2G20-2565] every PnC request is checked: a repeat (EVSEProcessing Ongoing) that is
                # not the verified request itself (the same signed element and signature) is checked
                # as a first one and must name the contract under authorisation
                refusal = self._verify_pnc(body, header, msg, None if first else self._contract)
                if refusal is not None:  # the EV may try EIM or stop
                    self._auth_requested, self._auth_result, self._auth_started = False, None, None
                    self._pnc_request = None
                    self._emit(AuthorizationRejected(refusal, self.emaid))
                    self._auth_answer(refusal, "Finished", now)
                    return S.WAIT_AUTHORIZATION
                self._pnc_request = signed
        if self._authorized:  # a paused session joined again: authorised before, no backend call
            self._auth_result = AuthorizationResult(True)
        if self._auth_started is None:
            self._auth_started = now
        if not self._auth_requested and self._auth_result is None:
            self._auth_requested = True
            if mode == "PnC":
                self._emit(AuthorizationNeeded("Contract", self.emaid, self._contract.chain, self._contract.ocsp_data))
            else:
                self._emit(AuthorizationNeeded("ExternalPayment"))
        result = self._auth_result
        if result is None:
            limit = self.timing.get("secc_eim_ongoing" if mode == "EIM" else "secc_ongoing")
            if now - self._auth_started > limit:
                raise Refused("FAILED", f"authorisation not granted within {limit:g} s", remote=False)
            self._auth_answer("OK", "Ongoing", now)
            return S.WAIT_AUTHORIZATION
        if not result.accepted:
            code = result.response_code or ("WARNING_EIMAuthorizationFailure" if mode == "EIM"
                                            else "WARNING_GeneralPnCAuthorizationError")
            self._emit(AuthorizationRejected(code, self.emaid if mode == "PnC" else None))
            if code.startswith("FAILED"):
                raise Refused(code, "authorisation refused", remote=False)
            self._auth_answer(code, "Finished", now)
            return S.WAIT_AUTHORIZATION
        if self._resumed is not None:
            self.payment = self._resumed.payment  # the paused session's payment goes on
        else:
            self.payment = _PAYMENT[mode]
            self.emaid = self.emaid if mode == "PnC" else None
        self._authorized = True
        code = str(getattr(self._contract, "response_code", "OK")) if mode == "PnC" else "OK"
        self._auth_answer(code, "Finished", now)  # OK_CertificateExpiresSoon [V2G20-2218]
        self._emit(AuthorizationAccepted(self.payment, self.emaid if self.payment == "Contract" else None))
        return S.WAIT_SERVICE_DISCOVERY

    def _verify_pnc(self, body: dict, header: dict, msg: dict, under_way: Any = None) -> Optional[str]:
        """Check a PnC AuthorizationReq; returns the WARNING code of a refusal (a FAILED one raises).
        ``under_way``: the contract an authorisation is under way for (a repeated request must name it)."""
        request = body["PnC_AReqAuthorizationMode"]
        if self._challenge is None or bytes(request["GenChallenge"]) != self._challenge:
            return "WARNING_ChallengeInvalid"  # [V2G20-2565]: the signature counts as invalid [V2G20-2216]
        try:
            identity = self.pnc.verify_authorization(self, body, header, msg)
        except Refused as exc:
            if not exc.response_code.startswith("WARNING"):
                raise
            return exc.response_code
        resumed = self._resumed
        if resumed is not None and resumed.emaid is not None and \
                normalize_emaid(identity.emaid) != normalize_emaid(resumed.emaid):
            return "WARNING_GeneralPnCAuthorizationError"  # not the contract of the paused session
        if under_way is not None and tuple(identity.chain) != tuple(under_way.chain):
            return "WARNING_GeneralPnCAuthorizationError"  # another contract while the first is authorised
        self.emaid, self._contract = identity.emaid, identity
        return None

    def _h_CertificateInstallationReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        if not self._cert_install:
            raise Refused("FAILED", "CertificateInstallationService was not offered")
        try:
            self.pnc.check_installation_request(self, body, header, msg)
        except Refused as exc:
            if not exc.response_code.startswith("WARNING"):
                raise
            self._refuse_installation(exc.response_code, now)
            return S.WAIT_AUTHORIZATION
        ids = (body.get("ListOfRootCertificateIDs") or {}).get("RootCertificateID") or []
        emaids = (body.get("PrioritizedEMAIDs") or {}).get("EMAID") or []
        self._emit(CertificateInstallationNeeded(
            bytes(payload), "Install", NS_ISO20_CM,
            tuple((str(i["X509IssuerName"]), int(i["X509SerialNumber"])) for i in ids),
            int(body["MaximumContractCertificateChains"]), tuple(str(e) for e in emaids)))
        self._set_timer("backend", now + self.timing.get("backend_timeout"))
        self._cancel_timer(SEQUENCE)
        return S.WAIT_BACKEND_CERTIFICATE

    def _refuse_installation(self, code: str, now: float) -> None:
        """An unsigned CertificateInstallationRes carrying a WARNING code: no contract, the session goes on."""
        body = M.failure_body("CertificateInstallationRes", code, evse_id=self.config.evse_id)
        self._respond("CertificateInstallationRes", body, now)

    # ------------------------------------------------------------ services
    def _h_ServiceDiscoveryReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        offered = self._services()
        wanted = (body.get("SupportedServiceIDs") or {}).get("ServiceID")
        if wanted:
            offered = [s for s in offered if M.SERVICE_IDS[s] in {int(i) for i in wanted}] or offered
        self._respond("ServiceDiscoveryRes", {
            "ResponseCode": "OK", "ServiceRenegotiationSupported": False,
            "EnergyTransferServiceList": {"Service": [{"ServiceID": M.SERVICE_IDS[s], "FreeService": False}
                                                      for s in offered]}}, now)
        return S.WAIT_SERVICE_SELECTION

    def _h_ServiceDetailReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        sid = int(body["ServiceID"])
        name = M.SERVICE_NAMES.get(sid)
        if name not in self._services():
            raise Refused("FAILED_ServiceIDInvalid", f"ServiceID {sid} is not offered")  # [V2G20-464]
        self._respond("ServiceDetailRes", {
            "ResponseCode": "OK", "ServiceID": sid,
            "ServiceParameterList": M.service_parameter_list(name, self._control_modes(),
                                                             self.config.ac_nominal_voltage)}, now)
        return S.WAIT_SERVICE_SELECTION

    def _h_ServiceSelectionReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        sel = body["SelectedEnergyTransferService"]
        sid, pset = int(sel["ServiceID"]), int(sel["ParameterSetID"])
        name = M.SERVICE_NAMES.get(sid)
        modes = {M.PARAM_SET_SCHEDULED if m == "Scheduled" else M.PARAM_SET_DYNAMIC: m for m in self._control_modes()}
        if name not in self._services() or pset not in modes:
            raise Refused("FAILED_ServiceSelectionInvalid", f"service {sid} parameter set {pset} not offered")
        if (body.get("SelectedVASList") or {}).get("SelectedService"):
            raise Refused("FAILED_ServiceSelectionInvalid", "no value-added services are offered")
        self.service, self.control_mode, self._parameter_set = name, modes[pset], pset
        self._respond("ServiceSelectionRes", {"ResponseCode": "OK"}, now)
        return S.WAIT_CHARGE_PARAMETER

    # ------------------------------------------------------------ charge parameters and schedule
    def _limits(self, req: dict, prefix: str) -> None:
        self._ev_limits = {k: M.from_rational(v) for k, v in req.items() if isinstance(v, dict) and "Value" in v}

    def _h_DC_ChargeParameterDiscoveryReq(self, body: dict, header: dict, msg: dict, payload: bytes,
                                          now: float) -> Next:
        key = ("BPT_" if self.bpt else "") + "DC_CPDReqEnergyTransferMode"
        if key not in body:
            raise Refused("FAILED_WrongChargeParameter", f"{self.service} needs {key}")
        self._limits(body[key], "EV")
        c = self.config
        res = {"EVSEMaximumChargePower": R(c.dc_max_power), "EVSEMinimumChargePower": R(0),
               "EVSEMaximumChargeCurrent": R(c.dc_max_current), "EVSEMinimumChargeCurrent": R(c.dc_min_current),
               "EVSEMaximumVoltage": R(c.dc_max_voltage), "EVSEMinimumVoltage": R(c.dc_min_voltage)}
        if self.bpt:
            res.update(EVSEMaximumDischargePower=R(c.max_discharge_power), EVSEMinimumDischargePower=R(0),
                       EVSEMaximumDischargeCurrent=R(c.max_discharge_current), EVSEMinimumDischargeCurrent=R(0))
        self._respond("DC_ChargeParameterDiscoveryRes", {"ResponseCode": "OK", ("BPT_" if self.bpt else "")
                                                         + "DC_CPDResEnergyTransferMode": res}, now)
        return S.WAIT_SCHEDULE_EXCHANGE

    def _ac_max_power(self) -> float:
        return self.config.ac_nominal_voltage * self.config.ac_max_current * 3

    def _h_AC_ChargeParameterDiscoveryReq(self, body: dict, header: dict, msg: dict, payload: bytes,
                                          now: float) -> Next:
        key = ("BPT_" if self.bpt else "") + "AC_CPDReqEnergyTransferMode"
        if key not in body:
            raise Refused("FAILED_WrongChargeParameter", f"{self.service} needs {key}")
        self._limits(body[key], "EV")
        res = {"EVSEMaximumChargePower": R(self._ac_max_power()), "EVSEMinimumChargePower": R(0),
               "EVSENominalFrequency": R(50)}
        if self.bpt:
            res.update(EVSEMaximumDischargePower=R(self.config.max_discharge_power), EVSEMinimumDischargePower=R(0))
        self._respond("AC_ChargeParameterDiscoveryRes", {"ResponseCode": "OK", ("BPT_" if self.bpt else "")
                                                         + "AC_CPDResEnergyTransferMode": res}, now)
        return S.WAIT_SCHEDULE_EXCHANGE

    def _h_ScheduleExchangeReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        key = f"{self.control_mode}_SEReqControlMode"
        if key not in body:
            raise Refused("FAILED", f"ScheduleExchangeReq lacks {key} (the control mode selected)")
        processing = "Finished"
        if self._polls < self.config.schedule_polls:
            self._polls += 1
            processing = "Ongoing"
        res: dict[str, Any] = {"ResponseCode": "OK", "EVSEProcessing": processing}
        if self.control_mode == "Scheduled":
            pmax = self.config.pmax_w if self.kind == "DC" else min(self.config.pmax_w, self._ac_max_power())
            res["Scheduled_SEResControlMode"] = M.scheduled_se_res(pmax, self._timestamp(), bpt=self.bpt,
                                                                   discharge_w=self.config.max_discharge_power)
            self._schedule_ids = {t["ScheduleTupleID"] for t in res["Scheduled_SEResControlMode"]["ScheduleTuple"]}
        else:
            res["Dynamic_SEResControlMode"] = {}
        self._respond("ScheduleExchangeRes", res, now)
        if processing == "Ongoing":
            return S.WAIT_SCHEDULE_EXCHANGE
        self._polls = 0
        if self._renegotiating or self.kind == "AC":
            return S.WAIT_POWER_DELIVERY
        return S.WAIT_CABLE_CHECK

    # ------------------------------------------------------------ DC preparation
    def _h_DC_CableCheckReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        done = self._polls >= self.config.cable_check_polls
        self._polls += 1
        self._respond("DC_CableCheckRes", {"ResponseCode": "OK", "EVSEProcessing": "Finished" if done else "Ongoing"},
                      now)
        if done:
            self._polls = 0
        return S.WAIT_PRECHARGE if done else S.WAIT_CABLE_CHECK

    def _h_DC_PreChargeReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        self._voltage = min(M.from_rational(body["EVTargetVoltage"]), self.config.dc_max_voltage)
        self._respond("DC_PreChargeRes", {"ResponseCode": "OK", "EVSEPresentVoltage": R(round(self._voltage))}, now)
        return S.WAIT_PRECHARGE

    # ------------------------------------------------------------ power delivery
    def _h_PowerDeliveryReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        state = self.state
        progress = str(body["ChargeProgress"])
        if body["EVProcessing"] != "Finished":  # [V2G20-2007]: the rest of the request is ignored
            self._respond("PowerDeliveryRes", {"ResponseCode": "OK"}, now)
            return state
        code = "OK"
        new: Next
        if progress == "Start":
            if state is S.CHARGING:
                raise Refused("FAILED_PowerDeliveryNotApplied", "energy transfer already started")
            schedule_id = 0
            if self.control_mode == "Scheduled":
                profile = (body.get("EVPowerProfile") or {}).get("Scheduled_EVPPTControlMode") or {}
                schedule_id = int(profile.get("SelectedScheduleTupleID", min(self._schedule_ids, default=0)))
                if schedule_id not in self._schedule_ids:
                    raise Refused("FAILED_ScheduleSelectionInvalid", f"ScheduleTupleID {schedule_id} was not offered")
            self._last_meter_t = now
            self._emit(ChargingStarted(self.service or self.kind, schedule_id))
            new = S.CHARGING
        elif progress == "Stop":
            self._current = self._power = 0.0
            self._emit(ChargingStopped("ev_request"))
            new = S.STOPPED
        elif progress == "Standby":
            if state is not S.CHARGING:
                raise Refused("FAILED", "Standby outside the energy transfer")
            if self.config.standby_allowed:
                self._emit(ChargingStopped("standby"))
                new = S.STANDBY
            else:
                code, new = "WARNING_StandbyNotAllowed", S.CHARGING
        elif progress == "ScheduleRenegotiation":
            if state is not S.CHARGING:
                raise Refused("FAILED_ScheduleRenegotiation", "ScheduleRenegotiation outside the energy transfer")
            self._renegotiating, self._renegotiate_requested = True, False
            new = S.WAIT_SCHEDULE_EXCHANGE
        else:
            raise Refused("FAILED", f"unknown ChargeProgress {progress!r}")
        res: dict[str, Any] = {"ResponseCode": code}
        status = self._notification()
        if status is not None:
            res["EVSEStatus"] = status
        self._respond("PowerDeliveryRes", res, now)
        return new

    # ------------------------------------------------------------ charge loop
    def _meter(self, now: float) -> None:
        if self._last_meter_t is not None:
            energy = self._power * max(0.0, now - self._last_meter_t) / 3600.0
            if energy >= 0:
                self._charged_wh += energy
            else:
                self._discharged_wh -= energy
        self._last_meter_t = now

    def _loop_common(self, body: dict, now: float) -> tuple[str, dict]:
        """Count the loop, check the control mode element; returns (its name, its content)."""
        self._loops += 1
        if self.config.receipt_every and self._loops % self.config.receipt_every == 0:
            self._receipt_due = True
        key = ("BPT_" if self.bpt else "") + f"{self.control_mode}_{self.kind}_CLReqControlMode"
        if key not in body:
            raise Refused("FAILED_WrongChargeParameter", f"charge loop without {key}")
        self._meter(now)
        return key, body[key]

    def _loop_response(self, name: str, body: dict, res: dict[str, Any], now: float) -> None:
        out: dict[str, Any] = {"ResponseCode": "OK"}
        status = self._notification()
        if status is not None:
            out["EVSEStatus"] = status
        if body.get("MeterInfoRequested") or self._receipt_due:
            out["MeterInfo"] = M.meter_info(self.config.meter_id, self._charged_wh,
                                            self._discharged_wh if self.bpt else None, self._timestamp())
        out.update(res)
        self._respond(name, out, now)
        soc = (body.get("DisplayParameters") or {}).get("PresentSOC")
        self._emit(MeterValues(round(self._voltage, 1), round(self._current, 1), int(self._charged_wh), soc))

    def _discharging_commanded(self) -> bool:
        return self.bpt and self.control_mode == "Dynamic" and self._loops <= self.config.discharge_loops

    def _h_DC_ChargeLoopReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        key, mode = self._loop_common(body, now)
        c, ev = self.config, self._ev_limits
        self._voltage = min(M.from_rational(body["EVPresentVoltage"]), c.dc_max_voltage)
        volts = max(self._voltage, 1.0)
        charge_max = min(c.dc_max_current, c.dc_max_power / volts, ev.get("EVMaximumChargeCurrent", c.dc_max_current))
        discharge_max = min(c.max_discharge_current, c.max_discharge_power / volts,
                            ev.get("EVMaximumDischargeCurrent", c.max_discharge_current))
        if self.state is S.STANDBY:
            current = 0.0
        elif self.control_mode == "Scheduled":
            target = M.from_rational(mode["EVTargetCurrent"])
            current = max(-discharge_max, min(target, charge_max)) if self.bpt else max(0.0, min(target, charge_max))
        else:
            current = -discharge_max if self._discharging_commanded() else charge_max
        self._current, self._power = current, current * self._voltage
        res: dict[str, Any] = {
            "EVSEPresentCurrent": R(round(current, 1)), "EVSEPresentVoltage": R(round(self._voltage, 1)),
            "EVSEPowerLimitAchieved": abs(self._power) >= c.dc_max_power,
            "EVSECurrentLimitAchieved": current >= c.dc_max_current,
            "EVSEVoltageLimitAchieved": self._voltage >= c.dc_max_voltage}
        res_mode: dict[str, Any] = {}
        if self.control_mode == "Dynamic":
            res_mode = {"EVSEMaximumChargePower": R(c.dc_max_power), "EVSEMinimumChargePower": R(0),
                        "EVSEMaximumChargeCurrent": R(c.dc_max_current), "EVSEMaximumVoltage": R(c.dc_max_voltage)}
            if self.bpt:
                res_mode.update(EVSEMaximumDischargePower=R(c.max_discharge_power), EVSEMinimumDischargePower=R(0),
                                EVSEMaximumDischargeCurrent=R(c.max_discharge_current),
                                EVSEMinimumVoltage=R(c.dc_min_voltage))
        res[key.replace("CLReq", "CLRes")] = res_mode
        self._loop_response("DC_ChargeLoopRes", body, res, now)
        return self.state

    def _h_AC_ChargeLoopReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        key, mode = self._loop_common(body, now)
        c = self.config
        self._voltage = c.ac_nominal_voltage
        pmax = min(self._ac_max_power(), self._ev_limits.get("EVMaximumChargePower", self._ac_max_power()))
        dmax = min(c.max_discharge_power, self._ev_limits.get("EVMaximumDischargePower", c.max_discharge_power))
        res_mode: dict[str, Any] = {}
        if self.state is S.STANDBY:
            power = 0.0
        elif self.control_mode == "Scheduled":
            present = M.from_rational(mode["EVPresentActivePower"])
            power = max(-dmax, min(present, pmax)) if self.bpt else max(0.0, min(present, pmax))
        else:
            power = -dmax if self._discharging_commanded() else pmax
            res_mode["EVSETargetActivePower"] = R(power)
        self._power = power
        self._current = power / (3 * c.ac_nominal_voltage)
        res = {key.replace("CLReq", "CLRes"): res_mode}
        self._loop_response("AC_ChargeLoopRes", body, res, now)
        return self.state

    def _h_MeteringConfirmationReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        if not self._receipt_due:
            raise Refused("FAILED_SequenceError", "no metering confirmation was requested")
        data = body["SignedMeteringData"]
        if bytes(data["SessionID"]) != self.session_id:
            raise Refused("FAILED_UnknownSession", "SignedMeteringData names another session")
        if self.payment == "Contract" and self.pnc is not None:
            try:
                self.pnc.verify_metering(self, body, header, msg)
            except SignatureError as exc:
                raise Refused("FAILED_MeteringSignatureNotValid", str(exc)) from None
        self._receipt_due = False
        self._respond("MeteringConfirmationRes", {"ResponseCode": "OK"}, now)
        self._emit(MeteringReceiptReceived(dict(data["MeterInfo"])))
        return self.state

    # ------------------------------------------------------------ the end
    def _h_DC_WeldingDetectionReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        self._voltage = max(0.0, self._voltage / 4 - 1)
        self._respond("DC_WeldingDetectionRes", {"ResponseCode": "OK", "EVSEPresentVoltage": R(round(self._voltage))},
                      now)
        return S.STOPPED

    def _h_SessionStopReq(self, body: dict, header: dict, msg: dict, payload: bytes, now: float) -> Next:
        kind = body["ChargingSession"]
        if kind == "ServiceRenegotiation":
            raise Refused("FAILED_NoServiceRenegotiationSupported", "ServiceRenegotiationSupported was False")
        self._respond("SessionStopRes", {"ResponseCode": "OK"}, now)
        if kind == "Pause":
            if self._authorized and self.service is not None:
                leaf = self._contract.chain[0] if self._contract is not None and self._contract.chain else None
                self.store.pause(self.session_id, PausedSession(
                    self.payment or "ExternalPayment", self.emaid, leaf, f"{self.service}:{self.control_mode}",
                    self._protocol_id))
            self._emit(SessionPaused(self.session_id))
            self._end("paused")
        else:
            self._end("finished")
        return ENDED
