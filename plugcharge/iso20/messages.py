"""ISO 15118-20 messages: the envelope, namespaces and payload types, RationalNumbers, services and
their parameter sets, schedules, and minimal schema-valid failure responses.

-20 has no ``V2G_Message`` envelope: every message is a global element of its schema set whose
first child is the ``Header`` (SessionID, TimeStamp, optional Signature).  Common messages live in
``urn:iso:std:iso:15118:-20:CommonMessages`` and travel as V2GTP payload type 0x8002; the AC and
DC messages in their own schema sets with payload types 0x8003 and 0x8004 (ISO 15118-20 Table 12;
the ``iso15118`` package decodes by payload type the same way).
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence

from ..core.codec import NS_ISO20_CM
from ..core.v2gtp import PayloadType

__all__ = [
    "NS_AC", "NS_DC", "NAMESPACE_OF_SERVICE", "route", "wrap", "message", "unwrap", "session_id_of", "rational",
    "from_rational", "SERVICE_IDS", "SERVICE_NAMES", "PARAM_SET_SCHEDULED", "PARAM_SET_DYNAMIC",
    "service_parameter_list", "control_mode_of", "scheduled_se_res", "meter_info", "evse_status",
    "failure_body", "evcc_id_text",
]

NS_AC = "urn:iso:std:iso:15118:-20:AC"
NS_DC = "urn:iso:std:iso:15118:-20:DC"
#: The SupportedAppProtocol namespace offered for each message set.
NAMESPACE_OF_SERVICE: Mapping[str, str] = MappingProxyType({"AC": NS_AC, "DC": NS_DC})

_ROUTES: Mapping[str, tuple[str, int]] = MappingProxyType({
    "AC_": (NS_AC, PayloadType.AC_MAINSTREAM), "DC_": (NS_DC, PayloadType.DC_MAINSTREAM)})
_COMMON_ROUTE = (NS_ISO20_CM, int(PayloadType.MAINSTREAM))


def route(name: str) -> tuple[str, int]:
    """The (namespace, V2GTP payload type) body element ``name`` is sent with."""
    return _ROUTES.get(name[:3], _COMMON_ROUTE)


def wrap(session_id: bytes, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: {Header, ...body}}``.  A ``"Header"`` in ``body`` is kept (TimeStamp, Signature);
    otherwise the header carries ``session_id`` and TimeStamp 0."""
    content = dict(body)
    header = dict(content.pop("Header", None) or {"TimeStamp": 0})
    header["SessionID"] = bytes(session_id)
    header.setdefault("TimeStamp", 0)
    return {name: {"Header": header, **content}}


def message(session_id: bytes, name: str, body: Mapping[str, Any], timestamp: int) -> dict[str, Any]:
    """``{name: {Header, ...body}}`` with ``session_id`` and ``timestamp`` in the header; a body that
    brings its own ``"Header"`` goes through :func:`wrap` (which keeps it)."""
    sid = bytes(session_id)
    if "Header" in body:
        return wrap(sid, name, body)
    return {name: {"Header": {"SessionID": sid, "TimeStamp": timestamp}, **body}}


def unwrap(message: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(body name, body, header)`` of a decoded -20 message; ValueError if the shape is wrong."""
    if isinstance(message, dict) and len(message) == 1:
        (name, content), = message.items()
        if isinstance(content, dict) and isinstance(content.get("Header"), dict):
            body = dict(content)
            return name, body, dict(body.pop("Header"))
    raise ValueError("not an ISO 15118-20 message with a Header")


def session_id_of(header: Mapping[str, Any]) -> Optional[bytes]:
    """The header's SessionID as bytes (None when absent or not binary)."""
    sid = header.get("SessionID") if isinstance(header, dict) else None
    return bytes(sid) if isinstance(sid, (bytes, bytearray)) else None


def evcc_id_text(evcc_id: bytes | str) -> str:
    """EVCCID as -20 carries it (identifierType, a string): the MAC address as upper-case hex."""
    return evcc_id if isinstance(evcc_id, str) else bytes(evcc_id).hex().upper()


# ---------------------------------------------------------------- RationalNumberType
def rational(value: float) -> dict[str, Any]:
    """RationalNumberType (``Value`` an xs:short, ``Exponent`` an xs:byte) for ``value``: the
    smallest exponent that represents it exactly, else the closest the range allows."""
    hit = _RATIONALS.get(value)
    if hit is not None and type(value) is hit[0]:
        return {"Exponent": hit[1], "Value": hit[2]}
    rn = _rational(value)
    if len(_RATIONALS) >= 512:
        _RATIONALS.clear()
    _RATIONALS[value] = (type(value), rn["Exponent"], rn["Value"])
    return rn


#: value -> (its type, Exponent, Value): the charge loop sends the same few numbers every message
_RATIONALS: dict[Any, tuple[type, int, int]] = {}


def _rational(value: float) -> dict[str, Any]:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    for exp in (0, -1, -2, -3, 1, 2, 3, 4, 5):
        scaled = value / (10 ** exp)
        if -32768 <= scaled <= 32767 and abs(round(scaled) - scaled) < 1e-9:
            return {"Exponent": exp, "Value": int(round(scaled))}
    for exp in range(0, 10):
        scaled = round(value / (10 ** exp))
        if -32768 <= scaled <= 32767:
            return {"Exponent": exp, "Value": int(scaled)}
    raise ValueError(f"{value} does not fit a RationalNumberType")


def from_rational(rn: Mapping[str, Any]) -> float:
    """The float a RationalNumberType stands for."""
    return float(rn["Value"]) * (10.0 ** int(rn["Exponent"]))


# ---------------------------------------------------------------- services (ISO 15118-20 Table 204)
#: Energy transfer service IDs (Table 204); WPT and ACDP are not implemented here.
SERVICE_IDS: Mapping[str, int] = MappingProxyType({"AC": 1, "DC": 2, "AC_BPT": 5, "DC_BPT": 6})
SERVICE_NAMES: Mapping[int, str] = MappingProxyType({v: k for k, v in SERVICE_IDS.items()})
#: Parameter sets offered for every energy service: one per control mode.
PARAM_SET_SCHEDULED = 1
PARAM_SET_DYNAMIC = 2
_CONTROL_MODE = {"Scheduled": 1, "Dynamic": 2}
_CONTROL_MODE_NAME = {1: "Scheduled", 2: "Dynamic"}


def service_parameter_list(service: str, control_modes: Sequence[str], nominal_voltage: float) -> dict[str, Any]:
    """ServiceParameterList of ``service`` (Tables 205-208): one ParameterSet per control mode with
    Connector, ControlMode, MobilityNeedsMode, Pricing (AC: EVSENominalVoltage; BPT: BPTChannel
    unified, GeneratorMode grid-following)."""
    sets = []
    for mode in control_modes:
        pset_id = PARAM_SET_SCHEDULED if mode == "Scheduled" else PARAM_SET_DYNAMIC
        params: list[dict[str, Any]] = [
            {"Name": "Connector", "intValue": 2 if service.startswith("AC") else 2},  # AC three-phase / DC extended
            {"Name": "ControlMode", "intValue": _CONTROL_MODE[mode]},
        ]
        if service.startswith("AC"):
            params.append({"Name": "EVSENominalVoltage", "intValue": int(nominal_voltage)})
        params += [{"Name": "MobilityNeedsMode", "intValue": 1},  # provided by the EVCC
                   {"Name": "Pricing", "intValue": 2}]  # price levels (one level: see scheduled_se_res)
        if service.endswith("BPT"):
            params += [{"Name": "BPTChannel", "intValue": 1},  # unified
                       {"Name": "GeneratorMode", "intValue": 1}]  # grid following
        sets.append({"ParameterSetID": pset_id, "Parameter": params})
    return {"ParameterSet": sets}


def control_mode_of(parameter_set: Mapping[str, Any]) -> Optional[str]:
    """``"Scheduled"`` / ``"Dynamic"`` from a ParameterSet's ControlMode parameter (None if absent)."""
    for p in parameter_set.get("Parameter") or []:
        if p.get("Name") == "ControlMode":
            return _CONTROL_MODE_NAME.get(int(p.get("intValue", 0)))
    return None


def scheduled_se_res(pmax_w: float, time_anchor: int, *, bpt: bool, discharge_w: float,
                     tuple_id: int = 1, duration: int = 86400) -> dict[str, Any]:
    """Scheduled_SEResControlMode with one ScheduleTuple: a flat charging schedule (and for BPT a
    flat discharging schedule, negative power), each with a one-level PriceLevelSchedule (optional in
    the schema; the ``iso15118`` package's EVCC refuses a schedule without one)."""
    def schedule(power: float, price_id: int) -> dict[str, Any]:
        return {"PowerSchedule": {"TimeAnchor": time_anchor, "PowerScheduleEntries": {
                    "PowerScheduleEntry": [{"Duration": duration, "Power": rational(power)}]}},
                "PriceLevelSchedule": {"Id": f"price{price_id}", "TimeAnchor": time_anchor,
                                       "PriceScheduleID": price_id, "NumberOfPriceLevels": 1,
                                       "PriceLevelScheduleEntries": {"PriceLevelScheduleEntry": [
                                           {"Duration": duration, "PriceLevel": 0}]}}}
    tup: dict[str, Any] = {"ScheduleTupleID": tuple_id, "ChargingSchedule": schedule(pmax_w, 1)}
    if bpt:
        tup["DischargingSchedule"] = schedule(-abs(discharge_w), 2)
    return {"ScheduleTuple": [tup]}


def meter_info(meter_id: str, charged_wh: float, discharged_wh: Optional[float], timestamp: int) -> dict[str, Any]:
    """MeterInfoType (BPT adds the discharged energy)."""
    out: dict[str, Any] = {"MeterID": meter_id, "ChargedEnergyReadingWh": int(charged_wh)}
    if discharged_wh is not None:
        out["BPT_DischargedEnergyReadingWh"] = int(discharged_wh)
    out["MeterTimestamp"] = int(timestamp)
    return out


def evse_status(notification: str, max_delay: int = 0) -> dict[str, Any]:
    """EVSEStatusType (``notification``: Pause, ExitStandby, Terminate, ScheduleRenegotiation,
    ServiceRenegotiation, MeteringConfirmation)."""
    return {"NotificationMaxDelay": max_delay, "EVSENotification": notification}


# ---------------------------------------------------------------- failure responses
_ZERO = {"Exponent": 0, "Value": 0}
_DC_LIMITS = ("EVSEMaximumChargePower", "EVSEMinimumChargePower", "EVSEMaximumChargeCurrent",
              "EVSEMinimumChargeCurrent", "EVSEMaximumVoltage", "EVSEMinimumVoltage")


def failure_body(res: str, code: str, *, evse_id: str, service_id: int = 0) -> dict[str, Any]:
    """A minimal schema-valid body of response ``res`` carrying ``code``."""
    b: dict[str, Any] = {"ResponseCode": code}
    if res == "SessionSetupRes":
        b["EVSEID"] = evse_id
    elif res == "AuthorizationSetupRes":
        b.update(AuthorizationServices=["EIM"], CertificateInstallationService=False, EIM_ASResAuthorizationMode={})
    elif res in ("AuthorizationRes", "DC_CableCheckRes"):
        b["EVSEProcessing"] = "Finished"
    elif res == "ServiceDiscoveryRes":
        b.update(ServiceRenegotiationSupported=False,
                 EnergyTransferServiceList={"Service": [{"ServiceID": service_id or 2, "FreeService": False}]})
    elif res == "ServiceDetailRes":
        b.update(ServiceID=service_id, ServiceParameterList={"ParameterSet": [
            {"ParameterSetID": 1, "Parameter": [{"Name": "ControlMode", "intValue": 1}]}]})
    elif res == "ScheduleExchangeRes":
        b.update(EVSEProcessing="Finished", Dynamic_SEResControlMode={})
    elif res == "CertificateInstallationRes":
        b.update(EVSEProcessing="Finished", CPSCertificateChain={"Certificate": b"\x00"},
                 SignedInstallationData={"Id": "id1", "ContractCertificateChain": {
                     "Certificate": b"\x00", "SubCertificates": {"Certificate": [b"\x00"]}},
                     "ECDHCurve": "SECP521", "DHPublicKey": bytes(133),
                     "SECP521_EncryptedPrivateKey": bytes(94)},
                 RemainingContractCertificateChains=0)
    elif res == "DC_ChargeParameterDiscoveryRes":
        b["DC_CPDResEnergyTransferMode"] = {k: _ZERO for k in _DC_LIMITS}
    elif res == "AC_ChargeParameterDiscoveryRes":
        b["AC_CPDResEnergyTransferMode"] = {"EVSEMaximumChargePower": _ZERO, "EVSEMinimumChargePower": _ZERO,
                                            "EVSENominalFrequency": {"Exponent": 0, "Value": 50}}
    elif res in ("DC_PreChargeRes", "DC_WeldingDetectionRes"):
        b["EVSEPresentVoltage"] = _ZERO
    elif res == "DC_ChargeLoopRes":
        b.update(EVSEPresentCurrent=_ZERO, EVSEPresentVoltage=_ZERO, EVSEPowerLimitAchieved=False,
                 EVSECurrentLimitAchieved=False, EVSEVoltageLimitAchieved=False, Scheduled_DC_CLResControlMode={})
    elif res == "AC_ChargeLoopRes":
        b["Scheduled_AC_CLResControlMode"] = {}
    return b
