"""DIN SPEC 70121 message bodies: pure builders (no session state), DC and ExternalPayment only.

Builders return *body element* dicts in the shape of the ``exi`` codec; :func:`plugcharge.core.codec.v2g_message`
wraps one into the ``V2G_Message`` envelope, which DIN shares with ISO 15118-2.  Physical values are
:func:`plugcharge.core.codec.physical` (the same PhysicalValueType as ISO-2).  Where DIN differs from
ISO-2: the EVSEID is hexBinary (up to 32 bytes), ``PaymentOptions`` instead of ``PaymentOptionList``,
one ``EnergyTransferType`` in the ChargeService, ``PMax`` a plain xs:short in watts, PowerDeliveryReq
carries ``ReadyToChargeState``, SessionStopReq is empty, CurrentDemandRes has no MeterInfo.
"""
from __future__ import annotations

from typing import Any, Optional

from ..core.codec import physical

__all__ = [
    "SERVICE_ID_CHARGING", "PMAX_LIMIT", "DC_MODES", "evse_id_bytes", "evse_id_text", "supports_mode",
    "dc_ev_status", "dc_evse_status", "service_discovery_res", "service_payment_selection_req",
    "sa_schedule_list", "dc_evse_charge_parameter", "dc_ev_charge_parameter", "failure_body",
]

#: ServiceID of the charge service (the only service of DIN).
SERVICE_ID_CHARGING = 1
#: PMax is an xs:short in watts: a larger power is announced as this.
PMAX_LIMIT = 32767
#: The DC energy transfer types an EV may request in DIN (EVRequestedEnergyTransferType).
DC_MODES = ("DC_core", "DC_extended", "DC_combo_core", "DC_unique")


def evse_id_bytes(evse_id: str) -> bytes:
    """An EVSEID as DIN carries it (hexBinary): the ASCII bytes of the ID, cut to 32 bytes."""
    return evse_id.encode("ascii", "replace")[:32]


def evse_id_text(value: Any) -> str:
    """What a received EVSEID reads as: its text when it is printable ASCII, else its hex digits."""
    raw = bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode()
    return raw.decode("ascii") if raw and all(0x20 <= b < 0x7F for b in raw) else raw.hex().upper()


def supports_mode(offered: str, requested: str) -> bool:
    """Whether the SECC's EVSESupportedEnergyTransferType ``offered`` serves the EV's ``requested`` DC
    mode (the combined types name theirs last: ``AC_core3p_DC_extended`` serves ``DC_extended``)."""
    return offered == requested or offered.endswith("_" + requested)


def dc_ev_status(ready: bool = True, soc: float = 50, error: str = "NO_ERROR") -> dict[str, Any]:
    """DC_EVStatusType (the optional conditioning flags left out)."""
    return {"EVReady": ready, "EVErrorCode": error, "EVRESSSOC": max(0, min(100, int(soc)))}


def dc_evse_status(code: str = "EVSE_Ready", notification: str = "None", isolation: Optional[str] = "Valid",
                   max_delay: int = 0) -> dict[str, Any]:
    """DC_EVSEStatusType."""
    out: dict[str, Any] = {}
    if isolation is not None:
        out["EVSEIsolationStatus"] = isolation
    out.update(EVSEStatusCode=code, NotificationMaxDelay=max_delay, EVSENotification=notification)
    return out


def service_discovery_res(code: str, energy_type: str, service_id: int = SERVICE_ID_CHARGING) -> dict[str, Any]:
    """ServiceDiscoveryRes: ExternalPayment only [V2G-DC-252]; the ChargeService without ServiceName
    and ServiceScope [V2G-DC-628, V2G-DC-629]."""
    return {"ResponseCode": code, "PaymentOptions": {"PaymentOption": ["ExternalPayment"]},
            "ChargeService": {"ServiceTag": {"ServiceID": service_id, "ServiceCategory": "EVCharging"},
                              "FreeService": False, "EnergyTransferType": energy_type}}


def service_payment_selection_req(service_id: int = SERVICE_ID_CHARGING) -> dict[str, Any]:
    """ServicePaymentSelectionReq: ExternalPayment and the charge service."""
    return {"SelectedPaymentOption": "ExternalPayment",
            "SelectedServiceList": {"SelectedService": [{"ServiceID": service_id}]}}


def sa_schedule_list(pmax_w: float, *, tuple_id: int = 1, duration: int = 86400) -> dict[str, Any]:
    """SAScheduleList with one tuple: a flat PMax (watts, at most :data:`PMAX_LIMIT`) over ``duration``
    seconds (24 h by default); no SalesTariff [V2G-DC-554]."""
    pmax = max(0, min(PMAX_LIMIT, int(pmax_w)))
    return {"SAScheduleTuple": [{
        "SAScheduleTupleID": tuple_id,
        "PMaxSchedule": {"PMaxScheduleID": tuple_id, "PMaxScheduleEntry": [
            {"RelativeTimeInterval": {"start": 0, "duration": duration}, "PMax": pmax}]}}]}


def dc_evse_charge_parameter(status: dict[str, Any], *, max_current: float, max_power: float, max_voltage: float,
                             min_current: float, min_voltage: float, peak_ripple: float) -> dict[str, Any]:
    """DC_EVSEChargeParameterType."""
    return {"DC_EVSEStatus": status,
            "EVSEMaximumCurrentLimit": physical(max_current, "A"),
            "EVSEMaximumPowerLimit": physical(max_power, "W"),
            "EVSEMaximumVoltageLimit": physical(max_voltage, "V"),
            "EVSEMinimumCurrentLimit": physical(min_current, "A"),
            "EVSEMinimumVoltageLimit": physical(min_voltage, "V"),
            "EVSEPeakCurrentRipple": physical(peak_ripple, "A")}


def dc_ev_charge_parameter(status: dict[str, Any], *, max_current: float, max_power: float, max_voltage: float,
                           capacity_wh: float, request_wh: float) -> dict[str, Any]:
    """DC_EVChargeParameterType."""
    return {"DC_EVStatus": status,
            "EVMaximumCurrentLimit": physical(max_current, "A"),
            "EVMaximumPowerLimit": physical(max_power, "W"),
            "EVMaximumVoltageLimit": physical(max_voltage, "V"),
            "EVEnergyCapacity": physical(capacity_wh, "Wh"),
            "EVEnergyRequest": physical(request_wh, "Wh"),
            "FullSOC": 100, "BulkSOC": 80}


def failure_body(res: str, code: str, *, evse_id: bytes, energy_type: str,
                 service_id: int = 0, present_voltage: float = 0.0) -> dict[str, Any]:
    """The smallest schema-valid body of response ``res`` carrying ``code`` (a FAILED response to a
    request the SECC refuses; every response type of the DIN message set)."""
    b: dict[str, Any] = {"ResponseCode": code}
    status = dc_evse_status("EVSE_NotReady", isolation=None)
    volts = physical(present_voltage, "V")
    if res == "SessionSetupRes":
        b["EVSEID"] = evse_id
    elif res == "ServiceDiscoveryRes":
        b.update(service_discovery_res(code, energy_type))
    elif res == "ServiceDetailRes":
        b["ServiceID"] = service_id
    elif res == "PaymentDetailsRes":
        b.update(GenChallenge="", DateTimeNow=0)
    elif res == "ContractAuthenticationRes":
        b["EVSEProcessing"] = "Finished"
    elif res == "ChargeParameterDiscoveryRes":
        b.update(EVSEProcessing="Finished", SAScheduleList=sa_schedule_list(0))
        b["DC_EVSEChargeParameter"] = dc_evse_charge_parameter(
            status, max_current=0, max_power=0, max_voltage=0, min_current=0, min_voltage=0, peak_ripple=0)
    elif res == "PowerDeliveryRes":
        b["DC_EVSEStatus"] = status
    elif res == "ChargingStatusRes":
        b.update(EVSEID=evse_id, SAScheduleTupleID=1, ReceiptRequired=False,
                 AC_EVSEStatus={"PowerSwitchClosed": False, "RCD": False, "NotificationMaxDelay": 0,
                                "EVSENotification": "None"})
    elif res == "MeteringReceiptRes":
        b["AC_EVSEStatus"] = {"PowerSwitchClosed": False, "RCD": False, "NotificationMaxDelay": 0,
                              "EVSENotification": "None"}
    elif res in ("CertificateInstallationRes", "CertificateUpdateRes"):
        b.update(Id="id1", ContractSignatureCertChain={"Certificate": b"\x00"},
                 ContractSignatureEncryptedPrivateKey=bytes(1), DHParams=bytes(1), ContractID="")
        if res == "CertificateUpdateRes":
            b["RetryCounter"] = 0
    elif res == "CableCheckRes":
        b.update(DC_EVSEStatus=status, EVSEProcessing="Finished")
    elif res in ("PreChargeRes", "WeldingDetectionRes"):
        b.update(DC_EVSEStatus=status, EVSEPresentVoltage=volts)
    elif res == "CurrentDemandRes":
        b.update(DC_EVSEStatus=status, EVSEPresentVoltage=volts, EVSEPresentCurrent=physical(0, "A"),
                 EVSECurrentLimitAchieved=False, EVSEVoltageLimitAchieved=False, EVSEPowerLimitAchieved=False)
    return b
