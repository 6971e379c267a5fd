"""ISO 15118-2 message bodies: builders (the PhysicalValueType helpers, shared with DIN, are
:func:`plugcharge.core.codec.physical` / :func:`~plugcharge.core.codec.from_physical`, re-exported here).

Builders return *body element* dicts; :func:`plugcharge.core.codec.v2g_message` wraps one into
``V2G_Message`` with its header.  Certificate chain dicts are :func:`plugcharge.pnc.certs.cert_chain`
and :func:`~plugcharge.pnc.certs.chain_certs`.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ..core.codec import from_physical, physical

__all__ = [
    "AC_MODES", "SERVICE_ID_CHARGING", "SERVICE_ID_CERTIFICATE", "PARAMETER_SET_INSTALL", "PARAMETER_SET_UPDATE",
    "physical", "from_physical", "root_ids", "dc_ev_status", "dc_evse_status", "ac_evse_status",
    "service_discovery_res", "certificate_service_detail_res", "payment_service_selection_req",
    "sa_schedule_list", "meter_info",
]

#: The AC energy transfer modes (every other mode is DC).
AC_MODES = frozenset({"AC_single_phase_core", "AC_three_phase_core"})


# ---------------------------------------------------------------- ISO-2 body builders
SERVICE_ID_CHARGING = 1
#: Certificate service (installation / update): ServiceID 2, ServiceCategory "ContractCertificate";
#: ParameterSetID 1 = Installation, 2 = Update (as RISE-V2G and Josev use them; requirement id unverified).
SERVICE_ID_CERTIFICATE = 2
PARAMETER_SET_INSTALL = 1
PARAMETER_SET_UPDATE = 2


def root_ids(ids: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """ListOfRootCertificateIDs from ``(issuer name, serial)`` pairs (1..20 entries)."""
    return {"RootCertificateID": [{"X509IssuerName": n, "X509SerialNumber": int(s)} for n, s in ids[:20]]}


def dc_ev_status(ready: bool = True, soc: int = 50, error: str = "NO_ERROR") -> dict[str, Any]:
    """DC_EVStatusType."""
    return {"EVReady": ready, "EVErrorCode": error, "EVRESSSOC": max(0, min(100, int(soc)))}


def dc_evse_status(code: str = "EVSE_Ready", notification: str = "None", isolation: Optional[str] = "Valid",
                   max_delay: int = 0) -> dict[str, Any]:
    """DC_EVSEStatusType."""
    out: dict[str, Any] = {"NotificationMaxDelay": max_delay, "EVSENotification": notification}
    if isolation is not None:
        out["EVSEIsolationStatus"] = isolation
    out["EVSEStatusCode"] = code
    return out


def ac_evse_status(notification: str = "None", rcd: bool = False, max_delay: int = 0) -> dict[str, Any]:
    """AC_EVSEStatusType."""
    return {"NotificationMaxDelay": max_delay, "EVSENotification": notification, "RCD": rcd}


def service_discovery_res(code: str, payment_options: Sequence[str], energy_modes: Sequence[str],
                          certificate_service: bool) -> dict[str, Any]:
    """ServiceDiscoveryRes offering charging and, optionally, the certificate service."""
    res: dict[str, Any] = {
        "ResponseCode": code,
        "PaymentOptionList": {"PaymentOption": list(payment_options)},
        "ChargeService": {"ServiceID": SERVICE_ID_CHARGING, "ServiceCategory": "EVCharging",
                          "FreeService": False,
                          "SupportedEnergyTransferMode": {"EnergyTransferMode": list(energy_modes)}},
    }
    if certificate_service:
        res["ServiceList"] = {"Service": [{"ServiceID": SERVICE_ID_CERTIFICATE,
                                           "ServiceCategory": "ContractCertificate", "FreeService": True}]}
    return res


def certificate_service_detail_res(code: str, service_id: int) -> dict[str, Any]:
    """ServiceDetailRes for the certificate service: parameter set 1 Installation, 2 Update."""
    res: dict[str, Any] = {"ResponseCode": code, "ServiceID": service_id}
    if code.startswith("OK"):
        res["ServiceParameterList"] = {"ParameterSet": [
            {"ParameterSetID": PARAMETER_SET_INSTALL, "Parameter": [{"Name": "Service", "stringValue": "Installation"}]},
            {"ParameterSetID": PARAMETER_SET_UPDATE, "Parameter": [{"Name": "Service", "stringValue": "Update"}]},
        ]}
    return res


def payment_service_selection_req(option: str, services: Sequence[tuple[int, Optional[int]]]) -> dict[str, Any]:
    """PaymentServiceSelectionReq selecting ``option`` and ``(ServiceID, ParameterSetID)`` pairs."""
    selected = []
    for sid, pset in services:
        entry: dict[str, Any] = {"ServiceID": sid}
        if pset is not None:
            entry["ParameterSetID"] = pset
        selected.append(entry)
    return {"SelectedPaymentOption": option, "SelectedServiceList": {"SelectedService": selected}}


def sa_schedule_list(pmax_w: float, *, tuple_id: int = 1, duration: int = 86400,
                     sales_tariff: bool = False, tariff_id: int = 1) -> dict[str, Any]:
    """SAScheduleList with one tuple: a flat PMax schedule and optionally a one-entry SalesTariff."""
    interval = {"RelativeTimeInterval": {"start": 0, "duration": duration}}
    tup: dict[str, Any] = {
        "SAScheduleTupleID": tuple_id,
        "PMaxSchedule": {"PMaxScheduleEntry": [dict(interval, PMax=physical(pmax_w, "W"))]},
    }
    if sales_tariff:
        tup["SalesTariff"] = {"Id": f"tariff{tariff_id}", "SalesTariffID": tariff_id, "NumEPriceLevels": 1,
                              "SalesTariffEntry": [dict(interval, EPriceLevel=1)]}
    return {"SAScheduleTuple": [tup]}


def meter_info(meter_id: str, reading_wh: int, t_meter: Optional[int] = None) -> dict[str, Any]:
    """MeterInfoType."""
    out: dict[str, Any] = {"MeterID": meter_id, "MeterReading": int(reading_wh)}
    if t_meter is not None:
        out["TMeter"] = int(t_meter)
    return out
