"""ISO 15118-2 message dicts: builders, codec access and (private fallback) V2GTP framing.

Message dicts have the shape of ``../shared/vectors`` (XSD names nested as in the XML, attributes
as plain keys, simple content beside attributes under ``"value"``, lists for repeated elements,
``bytes`` for hexBinary/base64Binary).  Builders return *body element* dicts; :func:`v2g_message`
wraps one into ``V2G_Message`` with its header.

Codecs: every function that encodes takes ``codecs``, a callable ``namespace -> codec`` (default
:func:`exi.get_codec`, imported lazily so that tests can inject a fake codec).
"""
from __future__ import annotations

import struct
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

#: Concrete mapping types accepted (codecs return dicts; typing.Mapping checks are slow).
_MAP = (dict, MappingProxyType)

__all__ = [
    "NS_APP", "NS_ISO2", "NS_XMLDSIG", "Codec", "CodecProvider", "resolve_codecs",
    "frame", "FrameBuffer", "FramingError", "MAX_PAYLOAD",
    "v2g_message", "body_of", "session_id_of", "physical", "from_physical",
    "sap_req", "sap_res",
]

NS_APP = "urn:iso:15118:2:2010:AppProtocol"
NS_ISO2 = "urn:iso:15118:2:2013:MsgDef"
NS_XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"


class Codec(Protocol):
    """What the session layer needs from an EXI codec (``exi.get_codec(ns)`` provides it)."""

    def encode(self, message: dict) -> bytes: ...
    def decode(self, data: bytes) -> dict: ...
    def encode_fragment(self, message: dict) -> bytes: ...
    def decode_fragment(self, data: bytes) -> dict: ...


CodecProvider = Callable[[str], Codec]


def _exi_provider(ns: str) -> Codec:
    import exi  # lazy: plugcharge must import even while the codec is being built

    return exi.get_codec(ns)


def resolve_codecs(codecs: Optional[CodecProvider]) -> CodecProvider:
    """``codecs`` or the default provider :func:`exi.get_codec`."""
    return codecs if codecs is not None else _exi_provider


# ---------------------------------------------------------------- V2GTP framing
# plugcharge.v2gtp (the transport layer's sans-IO framing) is used when present; the minimal
# private fallback below keeps the session layer usable on its own.
PAYLOAD_EXI = 0x8001
_HEADER = struct.Struct(">BBHI")
#: Largest V2GTP payload accepted; certificate-heavy ISO-2 messages stay well below 8 KiB.
MAX_PAYLOAD = 65536

try:  # pragma: no branch
    from ..core import v2gtp as _v2gtp
except ImportError:  # pragma: no cover - transport layer absent
    _v2gtp = None  # type: ignore[assignment]


class FramingError(ValueError):
    """A V2GTP header is invalid (wrong version, payload type or length); ``offset`` in the stream."""

    def __init__(self, msg: str, offset: int) -> None:
        super().__init__(f"{msg} (stream offset {offset})")
        self.offset = offset


def frame(payload: bytes, payload_type: int = PAYLOAD_EXI) -> bytes:
    """Prefix ``payload`` with the 8-byte V2GTP header (version 1, inverted version, type, length)."""
    if _v2gtp is not None:
        return _v2gtp.encode_frame(payload_type, payload)
    return _HEADER.pack(1, 0xFE, payload_type, len(payload)) + payload


class FrameBuffer:
    """Reassembles V2GTP EXI frames from arbitrary chunks (``feed`` → complete EXI payloads).

    Frames of another payload type are skipped; a header that breaks the stream raises
    :class:`FramingError`."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._offset = 0
        self._max = max_payload
        self._reader = (_v2gtp.FrameReader(max_payload=max_payload, allowed_types={PAYLOAD_EXI})
                        if _v2gtp is not None else None)

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return each complete payload; raise :class:`FramingError` on a bad header."""
        if self._reader is not None:
            out: list[bytes] = []
            while True:
                try:
                    out.extend(f.payload for f in self._reader.feed(data))
                    return out
                except _v2gtp.V2GTPError as exc:
                    out.extend(f.payload for f in exc.frames)
                    if exc.action is not _v2gtp.HeaderAction.DISCARD_MESSAGE:
                        raise FramingError(exc.reason, exc.offset) from None
                    data = b""  # the reader skips that frame; continue with what it holds
        self._buf += data
        out = []
        while len(self._buf) >= _HEADER.size:
            version, inverse, ptype, length = _HEADER.unpack_from(self._buf)
            if version != 1 or inverse != 0xFE:
                raise FramingError(f"bad V2GTP version bytes {version:#04x} {inverse:#04x}", self._offset)
            if ptype != PAYLOAD_EXI:
                raise FramingError(f"unsupported V2GTP payload type {ptype:#06x}", self._offset + 2)
            if length > self._max:
                raise FramingError(f"V2GTP payload length {length} exceeds {self._max}", self._offset + 4)
            end = _HEADER.size + length
            if len(self._buf) < end:
                break
            out.append(bytes(self._buf[_HEADER.size:end]))
            del self._buf[:end]
            self._offset += end
        return out


# ---------------------------------------------------------------- generic helpers
def v2g_message(session_id: bytes, body_name: str, body: Mapping[str, Any], *,
                signature: Optional[Mapping[str, Any]] = None,
                notification: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """Wrap a body element into a ``V2G_Message`` dict."""
    header: dict[str, Any] = {"SessionID": bytes(session_id)}
    if notification is not None:
        header["Notification"] = dict(notification)
    if signature is not None:
        header["Signature"] = dict(signature)
    return {"V2G_Message": {"Header": header, "Body": {body_name: dict(body)}}}


def body_of(message: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(body name, body element, header)`` of a decoded V2G_Message; ValueError if the shape is wrong."""
    try:
        root = message["V2G_Message"]
        header = root["Header"]
        body = root["Body"]
        if not isinstance(body, _MAP) or len(body) != 1 or not isinstance(header, _MAP):
            raise ValueError
        (name, content), = body.items()
        if not isinstance(content, _MAP):
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise ValueError("not a V2G_Message with a header and exactly one body element") from None
    return name, dict(content), dict(header)


def session_id_of(header: Mapping[str, Any]) -> Optional[bytes]:
    """The header's SessionID as bytes (None when absent or not binary)."""
    sid = header.get("SessionID") if isinstance(header, _MAP) else None
    return bytes(sid) if isinstance(sid, (bytes, bytearray)) else None


def physical(value: float, unit: str) -> dict[str, Any]:
    """PhysicalValueType for ``value`` (``Value`` is an xs:short, ``Multiplier`` in -3..3)."""
    for mult in (0, -1, -2, -3, 1, 2, 3):
        scaled = value / (10 ** mult)
        if -32768 <= scaled <= 32767 and abs(round(scaled) - scaled) < 1e-9:
            return {"Multiplier": mult, "Unit": unit, "Value": int(round(scaled))}
    for mult in (1, 2, 3):
        scaled = round(value / (10 ** mult))
        if -32768 <= scaled <= 32767:
            return {"Multiplier": mult, "Unit": unit, "Value": int(scaled)}
    raise ValueError(f"{value} {unit} does not fit a PhysicalValueType")


def from_physical(pv: Mapping[str, Any]) -> float:
    """The float a PhysicalValueType stands for."""
    return float(pv["Value"]) * (10 ** int(pv["Multiplier"]))


# ---------------------------------------------------------------- AppProtocol handshake
def sap_req(protocols: Sequence[tuple[str, int, int, int, int]] = ((NS_ISO2, 2, 0, 1, 1),)) -> dict[str, Any]:
    """supportedAppProtocolReq from ``(namespace, major, minor, schema id, priority)`` tuples."""
    return {"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": ns, "VersionNumberMajor": major, "VersionNumberMinor": minor,
         "SchemaID": sid, "Priority": prio} for ns, major, minor, sid, prio in protocols]}}


def sap_res(code: str, schema_id: Optional[int] = None) -> dict[str, Any]:
    """supportedAppProtocolRes."""
    res: dict[str, Any] = {"ResponseCode": code}
    if schema_id is not None:
        res["SchemaID"] = schema_id
    return {"supportedAppProtocolRes": res}


# ---------------------------------------------------------------- ISO-2 body builders
SERVICE_ID_CHARGING = 1
#: Certificate service (installation / update): ServiceID 2, ServiceCategory "ContractCertificate";
#: ParameterSetID 1 = Installation, 2 = Update (as RISE-V2G and Josev use them; requirement id unverified).
SERVICE_ID_CERTIFICATE = 2
PARAMETER_SET_INSTALL = 1
PARAMETER_SET_UPDATE = 2


def cert_chain(leaf: bytes, subs: Sequence[bytes] = (), ident: Optional[str] = None) -> dict[str, Any]:
    """CertificateChainType: leaf ``Certificate`` plus ``SubCertificates`` (Sub-CA2, Sub-CA1)."""
    out: dict[str, Any] = {"Certificate": bytes(leaf)}
    if ident is not None:
        out["Id"] = ident
    if subs:
        out["SubCertificates"] = {"Certificate": [bytes(c) for c in subs]}
    return out


def chain_certs(chain: Mapping[str, Any]) -> tuple[bytes, list[bytes]]:
    """``(leaf, [sub certificates])`` of a CertificateChainType dict."""
    subs = (chain.get("SubCertificates") or {}).get("Certificate") or []
    if isinstance(subs, (bytes, bytearray)):
        subs = [subs]
    return bytes(chain["Certificate"]), [bytes(c) for c in subs]


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
