"""The DIN SPEC 70121 SECC (charger side) handler: DC, ExternalPayment.

:class:`ChargerHandler` runs inside a :class:`plugcharge.ChargerSession` once the handshake agreed on
DIN.  The session core dispatches requests through :data:`plugcharge.din.states.CHARGER_TRANSITIONS`:
a request not allowed in the current state gets its response type with ``FAILED_SequenceError``
[V2G-DC-390], a foreign SessionID ``FAILED_UnknownSession`` [V2G-DC-391], an undecodable or malformed
one ``FAILED``; the session then ends [V2G-DC-665].  The handlers here refuse what DIN does not
allow: a payment option other than ExternalPayment (``FAILED_PaymentSelectionInvalid``
[V2G-DC-395]), a service selection other than the charge service (``FAILED_ServiceSelectionInvalid``
[V2G-DC-396]), an energy transfer type this charger does not offer
(``FAILED_WrongEnergyTransferType`` [V2G-DC-397]), a ChargeParameterDiscoveryReq without DC
parameters (``FAILED_WrongChargeParameter`` [V2G-DC-398]), PowerDelivery with ReadyToChargeState=TRUE
while charging (``FAILED_PowerDeliveryNotApplied``).

Authorisation is the backend's (identification at the charger, e.g. an RFID card): the first
ContractAuthenticationReq emits :class:`~plugcharge.core.events.AuthorizationNeeded`
(``payment="ExternalPayment"``); the charger answers EVSEProcessing=Ongoing until
:class:`~plugcharge.core.events.AuthorizationResult` arrives, then Finished (accepted) or FAILED
(refused), or FAILED after ``TimingProfile.secc_authorization`` seconds without an answer.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from ..core.codec import from_physical, physical, v2g_message
from ..core.errors import LocalProtocolError, Refused
from ..core.events import (
    AuthorizationAccepted, AuthorizationNeeded, AuthorizationRejected, AuthorizationResult, ChargingStarted,
    ChargingStopped, MeterValues, SessionStarted, StopCharging,
)
from ..core.fsm import CoreState
from ..core.session import ChargerHandler as _ChargerHandlerBase
from . import messages as M
from .states import ENDED, ChargerState

__all__ = ["ChargerHandler"]

S = ChargerState
Next = Union[ChargerState, CoreState]


class ChargerHandler(_ChargerHandlerBase):
    """DIN SPEC 70121 on the charger side, from SessionSetup to SessionStop."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.payment: Optional[str] = None
        self.emaid: Optional[str] = None  # DIN has no contract
        self.energy_mode: Optional[str] = None
        dc = [m for m in self.config.energy_modes if m not in ("AC_single_phase_core", "AC_three_phase_core")]
        #: the EVSESupportedEnergyTransferType announced (the first DC mode configured)
        self.energy_type: Optional[str] = dc[0] if dc else None
        self._evse_id = M.evse_id_bytes(self.config.evse_id)
        self._auth_requested = False
        self._auth_result: Optional[AuthorizationResult] = None
        self._auth_started: Optional[float] = None
        self._polls = 0
        self._voltage = 0.0
        self._current = 0.0
        self._meter_wh = 0.0
        self._last_meter_t: Optional[float] = None
        self._stop_requested = False

    # ------------------------------------------------------------ helpers
    def _respond(self, name: str, body: dict[str, Any], now: float) -> None:
        self.session.respond(v2g_message(self.session_id or bytes(8), name, body), name, now)

    def _status(self, code: str = "EVSE_Ready", isolation: Optional[str] = "Valid") -> dict[str, Any]:
        if self._stop_requested:
            return M.dc_evse_status("EVSE_Shutdown", "StopCharging", isolation)
        return M.dc_evse_status(code, "None", isolation)

    def failure_body(self, response: str, code: str, request: Optional[Mapping[str, Any]]) -> dict[str, Any]:
        """A minimal schema-valid body of ``response`` carrying ``code``."""
        sid = (request or {}).get("ServiceID", 0) if response == "ServiceDetailRes" else 0
        return M.failure_body(response, code, evse_id=self._evse_id, energy_type=self.energy_type or "DC_extended",
                              service_id=sid if isinstance(sid, int) else 0, present_voltage=self._voltage)

    # ------------------------------------------------------------ commands
    def on_command(self, command: Any, now: float) -> None:
        """The backend's authorisation and StopCharging from the operator."""
        if isinstance(command, AuthorizationResult):
            self._auth_result = command
        elif isinstance(command, StopCharging):
            self._stop_requested = True
        else:
            raise LocalProtocolError(f"charger cannot handle {type(command).__name__} in a DIN SPEC 70121 session")

    # ------------------------------------------------------------ request handlers
    def _h_SessionSetupReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                           now: float) -> Next:
        evcc_id = bytes(body["EVCCID"])
        self.session_id = self.security.random_bytes(8)
        self._respond("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": self._evse_id,
                                          "DateTimeNow": int(self.security.wall_clock().timestamp())}, now)
        self._emit(SessionStarted(self.session_id, evcc_id, self.config.evse_id, False))
        return S.WAIT_SERVICE_DISCOVERY

    def _h_ServiceDiscoveryReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                               now: float) -> Next:
        if self.energy_type is None:
            raise Refused("FAILED", "this charger offers no DC energy transfer mode, DIN SPEC 70121 is DC only",
                          remote=False)
        self._respond("ServiceDiscoveryRes", M.service_discovery_res("OK", self.energy_type), now)
        return S.WAIT_PAYMENT_SELECTION

    def _h_ServicePaymentSelectionReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any],
                                      payload: bytes, now: float) -> Next:
        option = body["SelectedPaymentOption"]
        if option != "ExternalPayment":
            raise Refused("FAILED_PaymentSelectionInvalid", f"{option} is not offered (DIN: ExternalPayment only)")
        ids = [int(s["ServiceID"]) for s in body["SelectedServiceList"]["SelectedService"]]
        if ids != [M.SERVICE_ID_CHARGING]:
            raise Refused("FAILED_ServiceSelectionInvalid", f"service selection {ids}: only the charge service "
                                                            f"{M.SERVICE_ID_CHARGING} is offered")
        self.payment = option
        self._respond("ServicePaymentSelectionRes", {"ResponseCode": "OK"}, now)
        return S.WAIT_AUTHORIZATION

    def _h_ContractAuthenticationReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any],
                                     payload: bytes, now: float) -> Next:
        if self._auth_started is None:
            self._auth_started = now
        if not self._auth_requested and self._auth_result is None:
            self._auth_requested = True
            self._emit(AuthorizationNeeded("ExternalPayment"))
        result = self._auth_result
        if result is None:
            if now - self._auth_started > self.timing.get("secc_authorization"):
                raise Refused("FAILED", "identification not granted in time", remote=False)
            self._respond("ContractAuthenticationRes", {"ResponseCode": "OK", "EVSEProcessing": "Ongoing"}, now)
            return S.WAIT_AUTHORIZATION
        if not result.accepted:
            self._emit(AuthorizationRejected("FAILED", None))
            raise Refused("FAILED", "identification refused", remote=False)
        self._respond("ContractAuthenticationRes", {"ResponseCode": "OK", "EVSEProcessing": "Finished"}, now)
        self._emit(AuthorizationAccepted("ExternalPayment", None))
        return S.WAIT_CHARGE_PARAMETER

    def _charge_parameter(self) -> dict[str, Any]:
        c = self.config
        return M.dc_evse_charge_parameter(
            self._status(isolation=None), max_current=c.dc_max_current, max_power=c.dc_max_power,
            max_voltage=c.dc_max_voltage, min_current=c.dc_min_current, min_voltage=c.dc_min_voltage,
            peak_ripple=c.dc_peak_ripple)

    def _h_ChargeParameterDiscoveryReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any],
                                       payload: bytes, now: float) -> Next:
        mode = body["EVRequestedEnergyTransferType"]
        if self.energy_type is None or not M.supports_mode(self.energy_type, mode):
            raise Refused("FAILED_WrongEnergyTransferType", f"{mode} is not offered ({self.energy_type})")
        if "DC_EVChargeParameter" not in body:
            raise Refused("FAILED_WrongChargeParameter", "no DC_EVChargeParameter")
        from_physical(body["DC_EVChargeParameter"]["EVMaximumVoltageLimit"])  # malformed: FAILED
        self.energy_mode = mode
        if self._polls < self.config.schedule_polls:
            self._polls += 1
            # the schema wants an SAScheduleList in every ChargeParameterDiscoveryRes, Ongoing too
            self._respond("ChargeParameterDiscoveryRes", {"ResponseCode": "OK", "EVSEProcessing": "Ongoing",
                                                          "SAScheduleList": M.sa_schedule_list(self.config.pmax_w),
                                                          "DC_EVSEChargeParameter": self._charge_parameter()}, now)
            return S.WAIT_CHARGE_PARAMETER
        self._polls = 0
        self._respond("ChargeParameterDiscoveryRes", {
            "ResponseCode": "OK", "EVSEProcessing": "Finished",
            "SAScheduleList": M.sa_schedule_list(self.config.pmax_w),
            "DC_EVSEChargeParameter": self._charge_parameter()}, now)
        return S.WAIT_CABLE_CHECK

    def _h_CableCheckReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                         now: float) -> Next:
        done = self._polls >= self.config.cable_check_polls
        self._polls += 1
        status = self._status("EVSE_Ready", "Valid") if done else self._status("EVSE_IsolationMonitoringActive",
                                                                                 "Invalid")
        self._respond("CableCheckRes", {"ResponseCode": "OK", "DC_EVSEStatus": status,
                                        "EVSEProcessing": "Finished" if done else "Ongoing"}, now)
        return S.WAIT_PRECHARGE if done else S.WAIT_CABLE_CHECK

    def _h_PreChargeReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                        now: float) -> Next:
        self._voltage = min(from_physical(body["EVTargetVoltage"]), self.config.dc_max_voltage)
        self._respond("PreChargeRes", {"ResponseCode": "OK", "DC_EVSEStatus": self._status(),
                                       "EVSEPresentVoltage": physical(self._voltage, "V")}, now)
        return S.WAIT_PRECHARGE

    def _h_PowerDeliveryReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                            now: float) -> Next:
        ready = body["ReadyToChargeState"]
        if not isinstance(ready, bool):
            raise ValueError("ReadyToChargeState is not a boolean")
        charging = self.state is S.CHARGING
        if ready and charging:
            raise Refused("FAILED_PowerDeliveryNotApplied", "already charging")
        self._respond("PowerDeliveryRes", {"ResponseCode": "OK", "DC_EVSEStatus": self._status()}, now)
        if ready:
            self._last_meter_t = now
            self._emit(ChargingStarted(self.energy_mode or "", 1))
            return S.CHARGING
        self._current = 0.0
        if charging:
            self._emit(ChargingStopped("ev_request"))
        return S.STOPPED

    def _h_CurrentDemandReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                            now: float) -> Next:
        c = self.config
        if self._last_meter_t is not None:
            self._meter_wh += self._voltage * self._current * max(0.0, now - self._last_meter_t) / 3600.0
        self._last_meter_t = now
        self._voltage = min(from_physical(body["EVTargetVoltage"]), c.dc_max_voltage)
        self._current = max(0.0, min(from_physical(body["EVTargetCurrent"]), c.dc_max_current,
                                     c.dc_max_power / max(self._voltage, 1.0)))
        self._respond("CurrentDemandRes", {
            "ResponseCode": "OK", "DC_EVSEStatus": self._status(),
            "EVSEPresentVoltage": physical(round(self._voltage, 1), "V"),
            "EVSEPresentCurrent": physical(round(self._current, 1), "A"),
            "EVSECurrentLimitAchieved": self._current >= c.dc_max_current,
            "EVSEVoltageLimitAchieved": self._voltage >= c.dc_max_voltage,
            "EVSEPowerLimitAchieved": self._voltage * self._current >= c.dc_max_power,
            "EVSEMaximumVoltageLimit": physical(c.dc_max_voltage, "V"),
            "EVSEMaximumCurrentLimit": physical(c.dc_max_current, "A"),
            "EVSEMaximumPowerLimit": physical(c.dc_max_power, "W")}, now)
        soc = body["DC_EVStatus"].get("EVRESSSOC")
        self._emit(MeterValues(self._voltage, self._current, int(self._meter_wh), soc if isinstance(soc, int) else None))
        return S.CHARGING

    def _h_WeldingDetectionReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                               now: float) -> Next:
        self._voltage = max(0.0, self._voltage / 4 - 1)
        self._respond("WeldingDetectionRes", {"ResponseCode": "OK", "DC_EVSEStatus": self._status(),
                                              "EVSEPresentVoltage": physical(round(self._voltage), "V")}, now)
        return S.STOPPED

    def _h_SessionStopReq(self, body: dict[str, Any], header: dict[str, Any], msg: dict[str, Any], payload: bytes,
                          now: float) -> Next:
        self._respond("SessionStopRes", {"ResponseCode": "OK"}, now)
        self._end("finished")  # DIN has no pause: SessionStopReq terminates [V2G-DC-451]
        return ENDED
