"""The ISO 15118-20 EVCC (vehicle side) handler: AC, DC and their BPT variants, Scheduled and
Dynamic control, identification at the charger (EIM) and the Plug & Charge seam.

:class:`EVHandler` runs inside a :class:`plugcharge.EVSession` once the handshake agreed on the -20
AC or DC message set (the EV offers the one of its ``EVConfig.energy_mode``).  What it asks for:

* the energy service ``AC`` / ``DC`` or, with ``EVConfig.bpt``, ``AC_BPT`` / ``DC_BPT``, with the
  parameter set of ``EVConfig.control_mode`` (``Scheduled`` or ``Dynamic``);
* authorisation: Plug & Charge when a PnC implementation is plugged in (``security.iso20_pnc``, see
  :mod:`plugcharge.iso20.pnc`) and chooses it, else EIM; a PnC refusal falls back to EIM in the same
  session when the charger offers it; any other refusal (a ``WARNING_`` code) ends the session with
  SessionStopReq(Terminate); a ``FAILED`` response ends it at once [V2G20-1967, V2G20-2220];
* BPT in Scheduled mode: the EV discharges (negative target current / active power) for
  ``EVConfig.discharge_loops`` charge-loop messages, then charges; in Dynamic mode it follows what
  the charger delivers;
* ``StopCharging`` / ``PauseCharging``: PowerDelivery(Stop), DC_WeldingDetection (DC), then
  SessionStop(Terminate / Pause); a paused session resumes with ``EVConfig.resume_session_id``;
* the charger's notifications in the charge loop: Terminate, Pause, ScheduleRenegotiation
  (PowerDelivery(ScheduleRenegotiation), ScheduleExchange, PowerDelivery(Start)),
  MeteringConfirmation (MeteringConfirmationReq, signed under PnC), ExitStandby;
* ``EVConfig.standby_after_loops``: PowerDelivery(Standby), ``standby_loops`` loop messages at no
  power, PowerDelivery(Start) (``WARNING_StandbyNotAllowed`` keeps it charging).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..core.errors import LocalProtocolError, Stop
from ..core.events import (
    AuthorizationAccepted, AuthorizationPending, AuthorizationRejected, ChargingStarted, ChargingStopped,
    ContractInstallationFailed, ContractInstallationStarted, ContractInstallationSucceeded, MeterValues,
    PauseCharging, PaymentSelected,
    ProtocolError, SessionPaused, SessionStarted, StartSession, StopCharging,
)
from ..core.fsm import check_ev_transition
from ..core.session import EVHandler as _EVHandlerBase
from ..core.timers import MSG, TIMER_NAMES
from . import messages as M
from .plugandcharge import ev_pnc
from .pnc import Signer
from .states import ENDED, EV_TABLES, EVState

__all__ = ["EVHandler"]

E = EVState
R = M.rational
#: WeldingDetection is repeated until the charger's output is below this voltage (IEC 61851-23 safe level).
_WELDING_SAFE_VOLTAGE = 60.0
_WELDING_MAX_ROUNDS = 10


class _Stop(Stop):
    """The EV gives up on this session (reason is log-safe); ``install``: a contract installation failed."""

    def __init__(self, reason: str, code: Optional[str] = None, *, install: bool = False,
                 graceful: bool = False) -> None:
        super().__init__(reason, code, graceful=graceful)
        self.install = install


class EVHandler(_EVHandlerBase):
    """ISO 15118-20 on the vehicle side, SessionSetup to SessionStop (one V2G communication session)."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        spec = session.protocol
        #: ``"AC"`` or ``"DC"``: the message set agreed
        self.kind = "AC" if spec.namespace == M.NS_AC else "DC"
        self._table = EV_TABLES[self.kind]
        self.pnc: Any = ev_pnc(self.security)
        #: the energy service asked for (``"DC_BPT"`` ...)
        self.service = self.kind + ("_BPT" if self.config.bpt else "")
        self.payment: Optional[str] = None
        self.contract: Any = None
        self.soc = float(self.config.soc)
        self._services: list[str] = []
        self._challenge: Optional[bytes] = None
        self._auth_mode = "EIM"
        self._pnc_choice: Optional[str] = None
        self._install_offered = False
        self._installed = 0
        #: AuthorizationRes said OK_CertificateExpiresSoon [V2G20-2218]
        self.contract_expires_soon = False
        self._resumed = False
        self._request: Optional[dict] = None
        self._request_name = "supportedAppProtocolReq"
        self._pending: Optional[Callable[[], None]] = None
        self._schedule_id: Optional[int] = None
        self._evse: dict[str, float] = {}
        self._progress = ""
        self._loops = 0
        self._stop = False
        #: the charger asked to stop (EVSENotification Terminate) before the EV did
        self._charger_stop = False
        self._pause = False
        self._charging = False
        self._standby = False
        self._standby_left = 0
        self._standby_done = False
        self._requested_power = 0.0
        self._renegotiating = False
        self._cable_checked = False
        self._welding_rounds = 0
        self._end_reason: Optional[tuple[str, Optional[str], str, Optional[str]]] = None

    # ------------------------------------------------------------ plumbing
    def _timestamp(self) -> int:
        return int(self.security.wall_clock().timestamp())

    def _go(self, new: Any) -> None:
        check_ev_transition(self._table, self.state, new, stop_state=E.WAIT_SESSION_STOP)
        self.state = new

    def _send(self, name: str, body: dict[str, Any], new: Any, now: float, *, sign: Optional[Signer] = None) -> None:
        msg = M.message(self.session_id, name, body, self._timestamp())
        if sign is not None:
            sign(msg)
        self._queue(msg, name)
        self._request, self._request_name = msg, name
        self._go(new)
        self._set_timer(MSG, now + self.timing.message_timeout(name))

    def _resend(self, now: float) -> None:
        if self._request is None:
            raise _Stop("nothing to repeat")
        name = self._request_name
        self._request[name]["Header"]["TimeStamp"] = self._timestamp()
        self._queue(self._request, name)
        self._set_timer(MSG, now + self.timing.message_timeout(name))

    def _schedule(self, action: Callable[[], None], delay: float, now: float) -> None:
        self._clock = now
        if delay <= 0:
            action()
        else:
            self._pending = action
            self._set_timer("poll", now + delay)

    def _poll(self, now: float, *, ongoing: Optional[str] = None) -> None:
        """Repeat the request after ``poll_interval`` (an Ongoing answer); ``ongoing`` arms that phase timer."""
        if ongoing is not None and "ongoing" not in self._timers:
            self._set_timer("ongoing", now + self.timing.get(ongoing))

        def again() -> None:
            if self._stop:
                raise _Stop("stopped by the driver while waiting", graceful=True)
            self._resend(self._clock)
        self._schedule(again, self.config.poll_interval, now)

    def on_timer(self, name: str, now: float) -> None:
        """A timer fired: the next charge-loop or poll request, or a standard timeout."""
        if name == "poll" and self._pending is not None:
            action, self._pending = self._pending, None
            try:
                action()
            except Stop as stop:
                self.give_up(stop, now)
            except Exception as exc:  # e.g. our own request cannot be encoded: end, do not raise
                self._emit(ProtocolError("FAILED", f"{type(exc).__name__}: {exc}", False))
                self.state = ENDED
                self._end("protocol_error", response_code="FAILED", detail=str(exc))
            return
        timers = {MSG: (TIMER_NAMES[MSG], self._request_name),
                  "comm_setup": ("V2G_EVCC_CommunicationSetup_Timeout", "SessionSetupRes"),
                  "ongoing": ("V2G_EVCC_Ongoing_Timeout", self._request_name),
                  "cable_check": ("V2G_EVCC_CableCheck_Timeout", "DC_CableCheckRes"),
                  "pre_charge": ("V2G_EVCC_PreCharge_Timeout", "DC_PreChargeRes")}
        timer, what = timers.get(name, (name, ""))
        if self.state is E.WAIT_CERT_INSTALL:
            self._emit(ContractInstallationFailed(f"{timer} expired"))
        self._timeout(timer, what, now, fallback=self._fallback())

    def on_command(self, command: Any, now: float) -> None:
        """StopCharging / PauseCharging: leave the charge loop (or the wait) and end or pause the session."""
        if isinstance(command, StartSession):
            raise LocalProtocolError("session already started")
        if not isinstance(command, (StopCharging, PauseCharging)):
            raise LocalProtocolError(f"EV cannot handle {type(command).__name__}")
        self._stop = True
        self._pause = isinstance(command, PauseCharging)
        if self._pending is not None and self._charging:  # between two loop requests: act now
            self._cancel_timer("poll")
            self._pending = None
            self._power_delivery("Stop", now)

    def give_up(self, stop: Stop, now: float) -> None:
        """Leave with SessionStopReq(Terminate) when ``stop`` is graceful, else end at once."""
        if getattr(stop, "install", False):
            self._emit(ContractInstallationFailed(stop.reason, stop.code))
        fallback = self._fallback()
        if stop.graceful and not self.ended:
            self._end_reason = ("failed", stop.code, stop.reason, fallback)
            self._cancel_timer("ongoing", "cable_check", "pre_charge", "poll")
            self._send("SessionStopReq", {"ChargingSession": "Terminate"}, E.WAIT_SESSION_STOP, now)
            return
        self.state = ENDED
        self._end("failed", response_code=stop.code, detail=stop.reason, fallback=fallback)

    def on_failed_response(self, name: str, code: str, now: float) -> None:
        """A FAILED response ends the session [V2G20-1967, V2G20-2220]; authorisation says why."""
        if name == "AuthorizationRes":
            self._emit(AuthorizationRejected(code, None))
        raise _Stop(f"{name}: {code}", code, install=name == "CertificateInstallationRes")

    # ------------------------------------------------------------ setup and authorisation
    def start(self, now: float) -> None:
        """-20 was agreed: SessionSetupReq (its header carries the paused session's ID when resuming)."""
        self._send("SessionSetupReq", {"EVCCID": M.evcc_id_text(self.config.evcc_id)}, E.WAIT_SESSION_SETUP, now)

    def _r_SessionSetupRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self._cancel_timer("comm_setup")
        sid = M.session_id_of(header)
        if sid is None or not str(body["ResponseCode"]).startswith("OK"):
            raise ValueError("SessionSetupRes without a usable SessionID")
        self.session_id = sid
        self._resumed = body["ResponseCode"] == "OK_OldSessionJoined"
        self._emit(SessionStarted(sid, bytes(self.config.evcc_id), str(body["EVSEID"]), self._resumed))
        self._send("AuthorizationSetupReq", {}, E.WAIT_AUTHORIZATION_SETUP, now)

    def _r_AuthorizationSetupRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self._services = [str(s) for s in body["AuthorizationServices"]]
        self._install_offered = bool(body["CertificateInstallationService"])
        pnc_mode = body.get("PnC_ASResAuthorizationMode")
        self._challenge = bytes(pnc_mode["GenChallenge"]) if pnc_mode else None
        choice: Optional[str] = None
        if self.pnc is None:
            reason = "no_plug_and_charge"
        elif "PnC" not in self._services or self._challenge is None:
            reason = "contract_not_offered"
        elif self._resumed:  # the payment of the paused session [V2G20-1644]
            choice, reason = ("use" if self.config.resume_payment == "Contract" else None), "resumed"
        else:
            choice, reason = self.pnc.choose(self, self._services, self._install_offered)
        if self._resumed and choice is None:
            reason = "resumed"
        if choice is None:
            if "EIM" not in self._services:
                raise _Stop("the charger offers no identification this EV can use", graceful=True)
            self._emit(PaymentSelected("ExternalPayment", reason))
            self._send_eim(now)
            return
        self._pnc_choice = choice
        self._emit(PaymentSelected("Contract", reason, "install" if choice == "install" else None))
        if choice == "install":
            self._send_installation(now)
        else:
            self._send_pnc(now)

    def _fallback(self) -> Optional[str]:
        """ExternalPayment: what a new session on the same plug-in uses after Plug & Charge failed here."""
        return "ExternalPayment" if self._pnc_choice is not None and not self._charging else None

    def _pcid(self) -> str:
        wallet = getattr(self.security, "wallet", None)
        get = getattr(wallet, "oem_provisioning_for", None)
        oem = get(20) if callable(get) else None
        try:
            return str(getattr(oem, "pcid", "") or "")
        except Exception:  # an unreadable certificate: the event just names no PCID
            return ""

    def _send_installation(self, now: float) -> None:
        try:
            req, signer = self.pnc.installation_request(self)
        except Exception as exc:  # no OEM credentials, a key that signs no -20 suite
            self._installation_failed(str(exc), getattr(exc, "response_code", None), now)
            return
        self._emit(ContractInstallationStarted("install", self._pcid()))
        self._send("CertificateInstallationReq", req, E.WAIT_CERT_INSTALL, now, sign=signer)

    def _installation_failed(self, reason: str, code: Optional[str], now: float) -> None:
        """The installation brought no contract: a contract the wallet already holds, else EIM when
        the charger offers it (same session), else leave with the ExternalPayment fallback."""
        self._emit(ContractInstallationFailed(reason, code))
        if self._installed or (self.pnc is not None and self._has_contract()):
            self._send_pnc(now)
        elif "EIM" in self._services:
            self._pnc_choice = None
            self._emit(PaymentSelected("ExternalPayment", "installation_failed_fallback"))
            self._send_eim(now)
        else:
            raise _Stop(f"contract installation failed: {reason}", code, graceful=True)

    def _has_contract(self) -> bool:
        get = getattr(self.pnc, "contract", None)
        return bool(callable(get) and get(self.security.wall_clock()) is not None)

    def _send_eim(self, now: float) -> None:
        self._auth_mode = "EIM"
        self._send("AuthorizationReq", {"SelectedAuthorizationService": "EIM", "EIM_AReqAuthorizationMode": {}},
                   E.WAIT_AUTHORIZATION, now)

    def _send_pnc(self, now: float) -> None:
        try:
            mode, signer = self.pnc.authorization_request(self, self._challenge or b"")
        except Exception as exc:  # no usable contract after all (e.g. a new one not valid yet)
            if "EIM" not in self._services:
                raise _Stop(f"Plug & Charge not possible: {exc}", getattr(exc, "response_code", None),
                            graceful=True) from None
            self._pnc_choice = None
            self._emit(PaymentSelected("ExternalPayment", "no_usable_contract"))
            self._send_eim(now)
            return
        self._auth_mode = "PnC"
        self._send("AuthorizationReq", {"SelectedAuthorizationService": "PnC", "PnC_AReqAuthorizationMode": mode},
                   E.WAIT_AUTHORIZATION, now, sign=signer)

    def _r_CertificateInstallationRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            self._go(E.WAIT_CERT_INSTALL)
            self._poll(now, ongoing="ongoing")
            return
        self._cancel_timer("ongoing")
        code = str(body["ResponseCode"])
        if code.startswith("WARNING"):  # the charger or the backend refused: no contract in it
            self._installation_failed(f"the charger answered {code}", code, now)
            return
        try:
            installed = self.pnc.installation_response(self, body, header, msg)
        except Exception as exc:  # every check of the response (PnC20Error names the -20 code)
            self._installation_failed(f"contract rejected: {getattr(exc, 'hint', exc)}",
                                      getattr(exc, "response_code", None), now)
            return
        self._installed += 1
        self._emit(ContractInstallationSucceeded(str(installed.emaid), "install"))
        maximum = max(1, int(getattr(self.security, "maximum_contract_chains", 1) or 1))
        if int(installed.remaining) > 0 and self._installed < maximum:
            self._resend(now)  # the same signed request fetches the next chain
            self._go(E.WAIT_CERT_INSTALL)
            return
        self._send_pnc(now)

    def _r_AuthorizationRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        code = str(body["ResponseCode"])
        if code.startswith("WARNING"):
            self._cancel_timer("ongoing")
            self._emit(AuthorizationRejected(code, getattr(self.contract, "emaid", None)))
            if self._auth_mode == "PnC" and "EIM" in self._services:  # same session, identification at the charger
                self._pnc_choice = None
                self._emit(PaymentSelected("ExternalPayment", "plug_and_charge_refused_fallback"))
                self._send_eim(now)
                return
            raise _Stop(f"authorisation refused: {code}", code, graceful=True)
        if body["EVSEProcessing"] != "Finished":
            self._emit(AuthorizationPending(str(body["EVSEProcessing"])))
            self._go(E.WAIT_AUTHORIZATION)
            self._poll(now, ongoing="eim_ongoing" if self._auth_mode == "EIM" else "ongoing")
            return
        self._cancel_timer("ongoing")
        self.payment = "Contract" if self._auth_mode == "PnC" else "ExternalPayment"
        #: the charger said the contract ends within 14 days [V2G20-2218]: the next session with the
        #: certificate service installs a new one (``EVSecurity.update_before``)
        self.contract_expires_soon = code == "OK_CertificateExpiresSoon"
        self._emit(AuthorizationAccepted(self.payment, getattr(self.contract, "emaid", None)
                                         if self.payment == "Contract" else None))
        self._send("ServiceDiscoveryReq", {}, E.WAIT_SERVICE_DISCOVERY, now)

    # ------------------------------------------------------------ services
    def _r_ServiceDiscoveryRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        offered = {int(s["ServiceID"]) for s in body["EnergyTransferServiceList"]["Service"]}
        sid = M.SERVICE_IDS[self.service]
        if sid not in offered:
            raise _Stop(f"charger does not offer the {self.service} service", graceful=True)
        self._send("ServiceDetailReq", {"ServiceID": sid}, E.WAIT_SERVICE_DETAIL, now)

    def _r_ServiceDetailRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        sets = body["ServiceParameterList"]["ParameterSet"]
        chosen = [int(p["ParameterSetID"]) for p in sets if M.control_mode_of(p) == self.config.control_mode]
        if not chosen:
            raise _Stop(f"charger offers no {self.config.control_mode} control mode", graceful=True)
        self._send("ServiceSelectionReq", {"SelectedEnergyTransferService": {
            "ServiceID": M.SERVICE_IDS[self.service], "ParameterSetID": chosen[0]}}, E.WAIT_SERVICE_SELECTION, now)

    def _r_ServiceSelectionRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        c, bpt = self.config, self.config.bpt
        if self.kind == "DC":
            mode: dict[str, Any] = {
                "EVMaximumChargePower": R(c.dc_max_power), "EVMinimumChargePower": R(0),
                "EVMaximumChargeCurrent": R(c.dc_max_current), "EVMinimumChargeCurrent": R(0),
                "EVMaximumVoltage": R(c.dc_max_voltage), "EVMinimumVoltage": R(200)}
            if bpt:
                mode.update(EVMaximumDischargePower=R(c.max_discharge_power), EVMinimumDischargePower=R(0),
                            EVMaximumDischargeCurrent=R(c.max_discharge_current), EVMinimumDischargeCurrent=R(0))
        else:
            mode = {"EVMaximumChargePower": R(self._ac_max_power()), "EVMinimumChargePower": R(
                c.ac_min_current * c.ac_max_voltage / 3 ** 0.5 * 3 // 10 * 10)}
            if bpt:
                mode.update(EVMaximumDischargePower=R(c.max_discharge_power), EVMinimumDischargePower=R(0))
        key = ("BPT_" if bpt else "") + f"{self.kind}_CPDReqEnergyTransferMode"
        self._send(f"{self.kind}_ChargeParameterDiscoveryReq", {key: mode}, E.WAIT_CHARGE_PARAMETER, now)

    def _ac_max_power(self) -> float:
        return self.config.ac_max_current * self.config.ac_max_voltage / 3 ** 0.5 * 3 // 10 * 10

    def _cpd_res(self, body: dict, now: float) -> None:
        key = next((k for k in body if k.endswith("CPDResEnergyTransferMode")), None)
        if key is None:
            raise ValueError("charge parameters without the charger's limits")
        self._evse = {k: M.from_rational(v) for k, v in body[key].items() if isinstance(v, dict)}
        self._send_schedule_exchange(now)

    def _r_DC_ChargeParameterDiscoveryRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self._cpd_res(body, now)

    def _r_AC_ChargeParameterDiscoveryRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self._cpd_res(body, now)

    def _energy_request(self) -> float:
        return max(0.0, self.config.capacity_wh * (self.config.target_soc - self.soc) / 100)

    def _send_schedule_exchange(self, now: float) -> None:
        need = self._energy_request()
        if self.config.control_mode == "Dynamic":
            mode: dict[str, Any] = {"DepartureTime": int(self.config.departure_time or 7200),
                                    "EVTargetEnergyRequest": R(need), "EVMaximumEnergyRequest": R(need),
                                    "EVMinimumEnergyRequest": R(0)}
            if self.config.bpt:
                mode.update(EVMaximumV2XEnergyRequest=R(need), EVMinimumV2XEnergyRequest=R(0))
            body = {"MaximumSupportingPoints": 1024, "Dynamic_SEReqControlMode": mode}
        else:
            body = {"MaximumSupportingPoints": 1024, "Scheduled_SEReqControlMode": {"EVTargetEnergyRequest": R(need)}}
        self._send("ScheduleExchangeReq", body, E.WAIT_SCHEDULE_EXCHANGE, now)

    def _r_ScheduleExchangeRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            self._go(E.WAIT_SCHEDULE_EXCHANGE)
            self._poll(now, ongoing="ongoing")
            return
        self._cancel_timer("ongoing")
        if self.config.control_mode == "Scheduled":
            tuples = (body.get("Scheduled_SEResControlMode") or {}).get("ScheduleTuple") or []
            if not tuples:
                raise _Stop("charger offered no ScheduleTuple", graceful=True)
            self._schedule_id = int(tuples[0]["ScheduleTupleID"])
        elif "Dynamic_SEResControlMode" not in body:
            raise _Stop("charger answered ScheduleExchange in another control mode", graceful=True)
        if self.kind == "DC" and not self._cable_checked:
            self._set_timer("cable_check", now + self.timing.get("cable_check"))
            self._send("DC_CableCheckReq", {}, E.WAIT_CABLE_CHECK, now)
        else:
            self._power_delivery("Start", now)

    # ------------------------------------------------------------ DC preparation
    def _r_DC_CableCheckRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            self._go(E.WAIT_CABLE_CHECK)
            self._poll(now)
            return
        self._cancel_timer("cable_check")
        self._cable_checked = True
        self._set_timer("pre_charge", now + self.timing.get("pre_charge"))
        self._send_precharge(now)

    def _send_precharge(self, now: float) -> None:
        v = self.config.dc_target_voltage
        self._send("DC_PreChargeReq", {"EVProcessing": "Ongoing", "EVPresentVoltage": R(v), "EVTargetVoltage": R(v)},
                   E.WAIT_PRECHARGE, now)

    def _r_DC_PreChargeRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        present = M.from_rational(body["EVSEPresentVoltage"])
        if abs(present - self.config.dc_target_voltage) > self.config.precharge_tolerance:
            self._go(E.WAIT_PRECHARGE)
            self._schedule(lambda: self._send_precharge(self._clock), self.config.poll_interval, now)
            return
        self._cancel_timer("pre_charge")
        self._power_delivery("Start", now)

    # ------------------------------------------------------------ power delivery
    def _power_delivery(self, progress: str, now: float) -> None:
        body: dict[str, Any] = {"EVProcessing": "Finished", "ChargeProgress": progress}
        if progress == "Start":
            entry = {"Duration": 86400, "Power": R(self.config.dc_max_power if self.kind == "DC"
                                                   else self._ac_max_power())}
            profile: dict[str, Any] = {"TimeAnchor": self._timestamp()}
            if self.config.control_mode == "Scheduled":
                # PowerToleranceAcceptance is optional in the schema; the iso15118 package requires it
                profile["Scheduled_EVPPTControlMode"] = {"SelectedScheduleTupleID": self._schedule_id or 1,
                                                         "PowerToleranceAcceptance": "PowerToleranceConfirmed"}
            else:
                profile["Dynamic_EVPPTControlMode"] = {}
            profile["EVPowerProfileEntries"] = {"EVPowerProfileEntry": [entry]}
            body["EVPowerProfile"] = profile
        self._progress = progress
        self._send("PowerDeliveryReq", body, E.WAIT_POWER_DELIVERY, now)

    def _r_PowerDeliveryRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        progress = self._progress
        if progress == "Start":
            if not self._charging:
                self._emit(ChargingStarted(self.service, self._schedule_id or 0))
            self._charging, self._standby, self._renegotiating = True, False, False
            self._loop(now)
        elif progress == "Standby":
            if body["ResponseCode"] == "WARNING_StandbyNotAllowed":
                self._standby_done = True
            else:
                self._standby, self._standby_left = True, self.config.standby_loops
                self._emit(ChargingStopped("standby"))
            self._loop(now)
        elif progress == "ScheduleRenegotiation":
            self._renegotiating = True
            self._send_schedule_exchange(now)
        else:
            self._charging = False
            self._emit(ChargingStopped("pause" if self._pause else "charger_request" if self._charger_stop
                                       else "ev_request"))
            if self.kind == "DC":
                self._send("DC_WeldingDetectionReq", {"EVProcessing": "Ongoing"}, E.WAIT_WELDING, now)
            else:
                self._session_stop(now)

    def _session_stop(self, now: float) -> None:
        self._send("SessionStopReq", {"ChargingSession": "Pause" if self._pause else "Terminate"},
                   E.WAIT_SESSION_STOP, now)

    # ------------------------------------------------------------ charge loop
    def _discharging(self) -> bool:
        return self.config.bpt and self.config.control_mode == "Scheduled" and self._loops < self.config.discharge_loops

    def _done(self) -> bool:
        c = self.config
        return ((c.charge_loops is not None and self._loops >= c.charge_loops)
                or (self.soc >= c.target_soc and not self._discharging()))

    def _loop(self, now: float) -> None:
        def next_request() -> None:
            t = self._clock
            if self._stop or self._done():
                self._power_delivery("Stop", t)
            elif not self._standby and not self._standby_done and self.config.standby_after_loops is not None \
                    and self._loops >= self.config.standby_after_loops:
                self._standby_done = True
                self._power_delivery("Standby", t)
            elif self._standby and self._standby_left <= 0:
                self._power_delivery("Start", t)
            else:
                if self._standby:
                    self._standby_left -= 1
                self._send_loop(t)
        self._schedule(next_request, self.config.loop_interval, now)

    def _display(self) -> dict[str, Any]:
        return {"PresentSOC": int(self.soc), "TargetSOC": int(self.config.target_soc),
                "ChargingComplete": self.soc >= self.config.target_soc,
                "BatteryEnergyCapacity": R(self.config.capacity_wh)}

    def _send_loop(self, now: float) -> None:
        c, bpt = self.config, self.config.bpt
        prefix = "BPT_" if bpt else ""
        need = self._energy_request()
        if self.kind == "DC":
            if c.control_mode == "Scheduled":
                target = -c.max_discharge_current if self._discharging() else c.dc_target_current
                mode: dict[str, Any] = {"EVTargetCurrent": R(0 if self._standby else target),
                                        "EVTargetVoltage": R(c.dc_target_voltage)}
            else:
                mode = {"EVTargetEnergyRequest": R(need), "EVMaximumEnergyRequest": R(need),
                        "EVMinimumEnergyRequest": R(0), "EVMaximumChargePower": R(c.dc_max_power),
                        "EVMinimumChargePower": R(0), "EVMaximumChargeCurrent": R(c.dc_max_current),
                        "EVMaximumVoltage": R(c.dc_max_voltage), "EVMinimumVoltage": R(200)}
                if bpt:
                    mode.update(EVMaximumDischargePower=R(c.max_discharge_power), EVMinimumDischargePower=R(0),
                                EVMaximumDischargeCurrent=R(c.max_discharge_current))
            body = {"DisplayParameters": self._display(), "MeterInfoRequested": False,
                    "EVPresentVoltage": R(c.dc_target_voltage), f"{prefix}{c.control_mode}_DC_CLReqControlMode": mode}
        else:
            power = -c.max_discharge_power if self._discharging() else self._ac_max_power()
            self._requested_power = 0.0 if self._standby else power
            if c.control_mode == "Scheduled":
                mode = {"EVPresentActivePower": R(self._requested_power)}
            else:
                mode = {"EVTargetEnergyRequest": R(need), "EVMaximumEnergyRequest": R(need),
                        "EVMinimumEnergyRequest": R(0), "EVMaximumChargePower": R(self._ac_max_power()),
                        "EVMinimumChargePower": R(0), "EVPresentActivePower": R(0),
                        "EVPresentReactivePower": R(0)}
                if bpt:
                    mode.update(EVMaximumDischargePower=R(c.max_discharge_power), EVMinimumDischargePower=R(0))
            body = {"DisplayParameters": self._display(), "MeterInfoRequested": False,
                    f"{prefix}{c.control_mode}_AC_CLReqControlMode": mode}
        self._loops += 1
        self._send(f"{self.kind}_ChargeLoopReq", body, E.WAIT_CHARGE_LOOP, now)

    def _after_loop(self, body: dict, voltage: Optional[float], current: Optional[float], now: float) -> None:
        direction = 0.0 if current is None else current
        if direction > 0:
            self.soc = min(100.0, self.soc + self.config.soc_per_loop)
        elif direction < 0:
            self.soc = max(0.0, self.soc - self.config.soc_per_loop)
        meter = body.get("MeterInfo") or {}
        self._emit(MeterValues(voltage, current, meter.get("ChargedEnergyReadingWh"), int(self.soc)))
        note = (body.get("EVSEStatus") or {}).get("EVSENotification")
        if note in ("Terminate", "Pause"):
            self._charger_stop = self._charger_stop or (not self._stop and note == "Terminate")
            self._stop = True
            self._pause = self._pause or note == "Pause"
        elif note == "MeteringConfirmation" and not self._stop:
            self._send_metering_confirmation(body, now)
            return
        elif note == "ScheduleRenegotiation" and not self._stop:
            self._power_delivery("ScheduleRenegotiation", now)
            return
        elif note == "ExitStandby" and self._standby:
            self._standby_left = 0
        self._loop(now)

    def _r_DC_ChargeLoopRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self._after_loop(body, M.from_rational(body["EVSEPresentVoltage"]),
                         M.from_rational(body["EVSEPresentCurrent"]), now)

    def _r_AC_ChargeLoopRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        mode: dict = next((v for k, v in body.items() if k.endswith("CLResControlMode")), {}) or {}
        if self.config.control_mode == "Dynamic" and "EVSETargetActivePower" in mode:  # the charger sets it
            power = M.from_rational(mode["EVSETargetActivePower"])
        else:  # Scheduled: what the EV drew
            power = self._requested_power
        voltage = self.config.ac_max_voltage / 3 ** 0.5
        self._after_loop(body, round(voltage), round(power / (3 * voltage), 1), now)

    def _send_metering_confirmation(self, body: dict, now: float) -> None:
        meter = body.get("MeterInfo")
        if meter is None:
            raise ValueError("MeteringConfirmation requested without MeterInfo")
        data: dict[str, Any] = {"Id": "id1", "SessionID": self.session_id, "MeterInfo": dict(meter)}
        if self.config.control_mode == "Scheduled":
            data["Scheduled_SMDTControlMode"] = {"SelectedScheduleTupleID": self._schedule_id or 1}
        else:
            data["Dynamic_SMDTControlMode"] = {}
        signer = self.pnc.metering_signer(self) if self.payment == "Contract" and self.pnc is not None else None
        self._send("MeteringConfirmationReq", {"SignedMeteringData": data}, E.WAIT_METERING_CONFIRMATION, now,
                   sign=signer)

    def _r_MeteringConfirmationRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self._loop(now)

    # ------------------------------------------------------------ the end
    def _r_DC_WeldingDetectionRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self._welding_rounds += 1
        if (M.from_rational(body["EVSEPresentVoltage"]) > _WELDING_SAFE_VOLTAGE
                and self._welding_rounds < _WELDING_MAX_ROUNDS):
            self._go(E.WAIT_WELDING)
            self._schedule(lambda: self._resend(self._clock), self.config.poll_interval, now)
            return
        self._session_stop(now)

    def _r_SessionStopRes(self, body: dict, header: dict, msg: dict, now: float) -> None:
        self.state = ENDED
        if self._end_reason is not None:
            reason, code, detail, fallback = self._end_reason
            self._end(reason, response_code=code, detail=detail, fallback=fallback)
        elif self._pause:
            self._emit(SessionPaused(self.session_id))
            self._end("paused")
        else:
            self._end("finished")
