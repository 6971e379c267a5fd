"""The DIN SPEC 70121 EVCC (vehicle side) handler: DC, ExternalPayment.

:class:`EVHandler` runs inside a :class:`plugcharge.EVSession` once the handshake agreed on DIN; the
session core does the framing, the SessionID and sequence checks and the message timer.

DIN has no Plug & Charge: the payment is always ExternalPayment (identification at the charger),
the EV's contract wallet is never touched, and :class:`~plugcharge.core.events.PaymentSelected`
says why (``reason="protocol_without_plug_and_charge"``: the driver display reads "this charger does
not support Plug & Charge").

Timers: ``V2G_EVCC_Msg_Timeout`` per request (Table 75, the core's message timer);
``V2G_EVCC_ReadyToCharge_Timeout`` from the start of the session until PowerDeliveryReq with
ReadyToChargeState=TRUE (it bounds the ContractAuthentication and ChargeParameterDiscovery Ongoing
loops, which have no timer of their own in DIN); ``V2G_EVCC_CableCheck_Timeout`` and
``V2G_EVCC_PreCharge_Timeout`` over their loops.  Any of them expiring ends the session at once.

Failures: a response with a FAILED code ends the session; when the EV itself cannot go on (no
ExternalPayment offered, its DC mode not served, the charger shut down during CableCheck) it leaves
with SessionStopReq and ends on SessionStopRes with ``reason="failed"``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from ..core.codec import from_physical, physical, session_id_of, v2g_message
from ..core.errors import LocalProtocolError, Stop
from ..core.events import (
    AuthorizationAccepted, AuthorizationPending, AuthorizationRejected, ChargingStarted, ChargingStopped,
    MeterValues, PauseCharging, PaymentSelected, ProtocolError, SessionStarted, StartSession, StopCharging,
)
from ..core.session import EVHandler as _EVHandlerBase
from ..core.timers import MSG, TIMER_NAMES
from . import messages as M
from .states import ENDED, EVState, check_ev_transition

__all__ = ["EVHandler", "NO_PLUG_AND_CHARGE"]

E = EVState
#: :attr:`PaymentSelected.reason` in DIN sessions: the protocol has no Plug & Charge.
NO_PLUG_AND_CHARGE = "protocol_without_plug_and_charge"
#: the EVSE stopped: leave the charge loop (or the preparation) now
_SHUTDOWN = frozenset({"EVSE_Shutdown", "EVSE_EmergencyShutdown"})
_TIMERS = {"comm_setup": ("V2G_EVCC_CommunicationSetup_Timeout", "SessionSetupRes"),
           "ready_to_charge": ("V2G_EVCC_ReadyToCharge_Timeout", "PowerDeliveryRes"),
           "cable_check": ("V2G_EVCC_CableCheck_Timeout", "CableCheckRes"),
           "pre_charge": ("V2G_EVCC_PreCharge_Timeout", "PreChargeRes")}


class EVHandler(_EVHandlerBase):
    """DIN SPEC 70121 on the vehicle side, from SessionSetup to SessionStop."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.payment: Optional[str] = None
        self.contract: Any = None  # DIN has no contract: the wallet is never read
        self.soc = float(self.config.soc)
        self.evse_id = ""
        self._request_name = "supportedAppProtocolReq"
        self._pending: Optional[Callable[[], None]] = None
        self._service_id = M.SERVICE_ID_CHARGING
        self._schedule_id = 1
        self._ready = False
        self._charging = False
        self._loops = 0
        self._stop = False
        #: the charger asked to stop (EVSENotification StopCharging, EVSE_Shutdown) before the EV did
        self._charger_stop = False
        self._end_reason: Optional[tuple[str, Optional[str], str]] = None

    # ------------------------------------------------------------ plumbing
    def _send(self, name: str, body: dict[str, Any], new: EVState, now: float) -> None:
        self._queue(v2g_message(self.session_id, name, body), name)
        self._request_name = name
        check_ev_transition(self.state, new)
        self.state = new
        self._set_timer(MSG, now + self.timing.message_timeout(name))

    def _status(self) -> dict[str, Any]:
        return M.dc_ev_status(True, self.soc)

    def _later(self, action: Callable[[float], None], delay: float, now: float) -> None:
        """Run ``action(now)`` after ``delay`` seconds (at once when ``delay`` <= 0)."""
        if delay <= 0:
            action(now)
            return
        self._pending = lambda: action(self._clock)
        self._set_timer("poll", now + delay)

    def on_timer(self, name: str, now: float) -> None:
        """A poll or loop delay ran out (send the next request), or a standard timer expired (end)."""
        if name == "poll" and self._pending is not None:
            action, self._pending = self._pending, None
            try:
                action()
            except Stop as stop:
                self.give_up(stop, now)
            except Exception as exc:  # e.g. our own request cannot be encoded: end, never raise
                self._emit(ProtocolError("FAILED", f"{type(exc).__name__}: {exc}", False))
                self.state = ENDED
                self._end("protocol_error", response_code="FAILED", detail=str(exc))
            return
        timer, what = _TIMERS.get(name, (TIMER_NAMES.get(name, name), self._request_name))
        self._timeout(timer, what, now)

    def on_command(self, command: Any, now: float) -> None:
        """StopCharging (and PauseCharging: DIN has no pause, so it stops too) leaves the charge loop."""
        if isinstance(command, StartSession):
            raise LocalProtocolError("session already started")
        if not isinstance(command, (StopCharging, PauseCharging)):
            raise LocalProtocolError(f"EV cannot handle {type(command).__name__}")
        self._stop = True
        if self._pending is not None and self._charging:  # between two CurrentDemandReq: act now
            self._cancel_timer("poll")
            self._pending = None
            self._power_delivery(False, now)

    def give_up(self, stop: Stop, now: float) -> None:
        """Leave with SessionStopReq when ``stop`` is graceful (and not charging), else end at once."""
        if stop.graceful and not self.ended and not self._charging:
            self._end_reason = ("failed", stop.code, stop.reason)
            self._cancel_timer("ready_to_charge", "cable_check", "pre_charge", "poll")
            self._send("SessionStopReq", {}, E.WAIT_SESSION_STOP, now)
            return
        self.state = ENDED
        self._end("failed", response_code=stop.code, detail=stop.reason)

    def on_failed_response(self, name: str, code: str, now: float) -> None:
        """A FAILED response ends the session; a refused ContractAuthentication says so first."""
        if name == "ContractAuthenticationRes":
            self._emit(AuthorizationRejected(code, None))
        raise Stop(f"{name}: {code}", code)

    # ------------------------------------------------------------ setup
    def start(self, now: float) -> None:
        """DIN was agreed: SessionSetupReq (SessionID zero: DIN sessions are never resumed here)."""
        self._set_timer("ready_to_charge", now + self.timing.get("ready_to_charge"))
        self.session_id = bytes(8)
        self._send("SessionSetupReq", {"EVCCID": bytes(self.config.evcc_id)[:8]}, E.WAIT_SESSION_SETUP, now)

    def _r_SessionSetupRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._cancel_timer("comm_setup")
        sid = session_id_of(header)
        if sid is None or not str(body["ResponseCode"]).startswith("OK"):
            raise ValueError("SessionSetupRes without a usable SessionID")
        self.session_id = sid
        self.evse_id = M.evse_id_text(body["EVSEID"])
        self._emit(SessionStarted(sid, self.config.evcc_id, self.evse_id, False))
        self._send("ServiceDiscoveryReq", {"ServiceCategory": "EVCharging"}, E.WAIT_SERVICE_DISCOVERY, now)

    def _r_ServiceDiscoveryRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        options = list(body["PaymentOptions"]["PaymentOption"])
        service = body["ChargeService"]
        offered = str(service["EnergyTransferType"])
        self._service_id = int(service["ServiceTag"]["ServiceID"])
        if "ExternalPayment" not in options:
            raise Stop(f"the charger offers no ExternalPayment ({', '.join(options)})", graceful=True)
        mode = self.config.energy_mode
        if mode not in M.DC_MODES:
            raise Stop(f"DIN SPEC 70121 charges DC only, the EV is configured for {mode}", graceful=True)
        if not M.supports_mode(offered, mode):
            raise Stop(f"the charger offers {offered}, the EV needs {mode}", graceful=True)
        self.payment = "ExternalPayment"
        self._emit(PaymentSelected("ExternalPayment", NO_PLUG_AND_CHARGE))
        self._send("ServicePaymentSelectionReq", M.service_payment_selection_req(self._service_id),
                   E.WAIT_PAYMENT_SELECTION, now)

    def _r_ServicePaymentSelectionRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any],
                                      now: float) -> None:
        self._send("ContractAuthenticationReq", {}, E.WAIT_CONTRACT_AUTHENTICATION, now)

    def _r_ContractAuthenticationRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any],
                                     now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            self._emit(AuthorizationPending(str(body["EVSEProcessing"])))
            self._poll(lambda t: self._send("ContractAuthenticationReq", {}, E.WAIT_CONTRACT_AUTHENTICATION, t), now)
            return
        self._emit(AuthorizationAccepted("ExternalPayment", None))
        self._send_charge_parameters(now)

    def _poll(self, action: Callable[[float], None], now: float) -> None:
        def again(t: float) -> None:
            if self._stop:
                raise Stop("stopped by the driver while waiting", graceful=True)
            action(t)
        self._later(again, self.config.poll_interval, now)

    # ------------------------------------------------------------ charge parameters and DC preparation
    def _send_charge_parameters(self, now: float) -> None:
        c = self.config
        param = M.dc_ev_charge_parameter(
            M.dc_ev_status(False, self.soc), max_current=c.dc_max_current, max_power=c.dc_max_power,
            max_voltage=c.dc_max_voltage, capacity_wh=c.capacity_wh,
            request_wh=c.capacity_wh * max(0.0, c.target_soc - self.soc) / 100)
        self._send("ChargeParameterDiscoveryReq", {"EVRequestedEnergyTransferType": c.energy_mode,
                                                   "DC_EVChargeParameter": param}, E.WAIT_CHARGE_PARAMETER, now)

    def _r_ChargeParameterDiscoveryRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any],
                                       now: float) -> None:
        if body["EVSEProcessing"] != "Finished":
            self._poll(self._send_charge_parameters, now)
            return
        tuples = (body.get("SAScheduleList") or {}).get("SAScheduleTuple") or []
        if not tuples:
            raise Stop("the charger offered no SAScheduleTuple", graceful=True)
        self._schedule_id = int(tuples[0]["SAScheduleTupleID"])
        self._set_timer("cable_check", now + self.timing.get("cable_check"))
        self._send("CableCheckReq", {"DC_EVStatus": self._status()}, E.WAIT_CABLE_CHECK, now)

    def _r_CableCheckRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        status = body["DC_EVSEStatus"]
        if status["EVSEStatusCode"] in _SHUTDOWN:
            raise Stop(f"the charger shut down during CableCheck ({status['EVSEStatusCode']})", graceful=True)
        if body["EVSEProcessing"] != "Finished":
            self._poll(lambda t: self._send("CableCheckReq", {"DC_EVStatus": self._status()}, E.WAIT_CABLE_CHECK, t),
                       now)
            return
        self._cancel_timer("cable_check")
        self._set_timer("pre_charge", now + self.timing.get("pre_charge"))
        self._send_precharge(now)

    def _send_precharge(self, now: float) -> None:
        self._send("PreChargeReq", {"DC_EVStatus": self._status(),
                                    "EVTargetVoltage": physical(self.config.dc_target_voltage, "V"),
                                    "EVTargetCurrent": physical(0, "A")}, E.WAIT_PRECHARGE, now)

    def _r_PreChargeRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        present = from_physical(body["EVSEPresentVoltage"])
        if abs(present - self.config.dc_target_voltage) > self.config.precharge_tolerance:
            self._poll(self._send_precharge, now)
            return
        self._cancel_timer("pre_charge")
        self._power_delivery(True, now)

    # ------------------------------------------------------------ power delivery and the charge loop
    def _power_delivery(self, ready: bool, now: float) -> None:
        if ready:
            self._cancel_timer("ready_to_charge")
        self._ready = ready
        self._send("PowerDeliveryReq", {"ReadyToChargeState": ready, "DC_EVPowerDeliveryParameter": {
            "DC_EVStatus": M.dc_ev_status(ready, self.soc), "ChargingComplete": not ready}},
            E.WAIT_POWER_DELIVERY, now)

    def _r_PowerDeliveryRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        if self._ready:
            self._charging = True
            self._emit(ChargingStarted(self.config.energy_mode, self._schedule_id))
            self._loop(now)
            return
        was_charging, self._charging = self._charging, False
        if was_charging:
            self._emit(ChargingStopped("charger_request" if self._charger_stop else "ev_request"))
        if self.config.welding_detection:
            self._send("WeldingDetectionReq", {"DC_EVStatus": M.dc_ev_status(False, self.soc)}, E.WAIT_WELDING, now)
        else:
            self._send("SessionStopReq", {}, E.WAIT_SESSION_STOP, now)

    def _loop(self, now: float) -> None:
        def next_request(t: float) -> None:
            c = self.config
            if self._stop or (c.charge_loops is not None and self._loops >= c.charge_loops) or self.soc >= c.target_soc:
                self._power_delivery(False, t)
                return
            self._loops += 1
            self._send("CurrentDemandReq", {
                "DC_EVStatus": self._status(),
                "EVTargetCurrent": physical(c.dc_target_current, "A"),
                "EVMaximumVoltageLimit": physical(c.dc_max_voltage, "V"),
                "EVMaximumCurrentLimit": physical(c.dc_max_current, "A"),
                "EVMaximumPowerLimit": physical(c.dc_max_power, "W"),
                "BulkChargingComplete": False,
                "ChargingComplete": self.soc >= c.target_soc,
                "EVTargetVoltage": physical(c.dc_target_voltage, "V")}, E.WAIT_CURRENT_DEMAND, t)
        self._later(next_request, self.config.loop_interval, now)

    def _r_CurrentDemandRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        status = body["DC_EVSEStatus"]
        self._emit(MeterValues(from_physical(body["EVSEPresentVoltage"]), from_physical(body["EVSEPresentCurrent"]),
                               None, int(self.soc)))
        self.soc = min(100.0, self.soc + self.config.soc_per_loop)
        if status.get("EVSENotification") == "StopCharging" or status.get("EVSEStatusCode") in _SHUTDOWN:
            self._charger_stop = self._charger_stop or not self._stop
            self._stop = True
        self._loop(now)

    def _r_WeldingDetectionRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self._send("SessionStopReq", {}, E.WAIT_SESSION_STOP, now)

    def _r_SessionStopRes(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], now: float) -> None:
        self.state = ENDED
        if self._end_reason is not None:
            reason, code, detail = self._end_reason
            self._end(reason, response_code=code, detail=detail)
        else:
            self._end("finished")
