"""EXI codec access, the schema namespaces, V2GTP frames of EXI payloads and the V2G_Message envelope.

Codecs: everything that encodes takes ``codecs``, a callable ``namespace -> codec`` (default
:func:`exi.get_codec`, imported lazily so that tests can inject a fake codec).

Message dicts have the shape the ``exi`` codec gives them (XSD names nested as in the XML,
attributes as plain keys, simple content beside attributes under ``"value"``, lists for repeated
elements, ``bytes`` for hexBinary/base64Binary).  DIN SPEC 70121 and ISO 15118-2 wrap every body
element in the same ``V2G_Message`` envelope (``Header`` with the ``SessionID``, ``Body`` with one
element): :func:`v2g_message`, :func:`body_of` and :func:`session_id_of` serve both; which
envelope a protocol uses is part of its :class:`~plugcharge.core.protocol.ProtocolSpec`, so the
session core itself never reads one.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional, Protocol

from .v2gtp import PayloadType, encode_frame

#: Concrete mapping types accepted (codecs return dicts; typing.Mapping checks are slow).
_MAP = (dict, MappingProxyType)

__all__ = [
    "NS_APP", "NS_DIN", "NS_ISO2", "NS_ISO20_CM", "NS_XMLDSIG", "Codec", "CodecProvider", "resolve_codecs",
    "frame", "v2g_message", "body_of", "session_id_of", "physical", "from_physical",
]

#: SupportedAppProtocol handshake (all protocols).
NS_APP = "urn:iso:15118:2:2010:AppProtocol"
#: DIN SPEC 70121 message set.
NS_DIN = "urn:din:70121:2012:MsgDef"
#: ISO 15118-2 message set.
NS_ISO2 = "urn:iso:15118:2:2013:MsgDef"
#: ISO 15118-20 common messages.
NS_ISO20_CM = "urn:iso:std:iso:15118:-20:CommonMessages"
#: XML signature fragments (SignedInfo).
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


def frame(payload: bytes, payload_type: int = PayloadType.EXI) -> bytes:
    """``payload`` in a V2GTP frame (:func:`plugcharge.core.v2gtp.encode_frame`), EXI payload type by default."""
    return encode_frame(payload_type, payload)


# ---------------------------------------------------------------- the V2G_Message envelope (DIN, ISO-2)
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


# ---------------------------------------------------------------- PhysicalValueType (DIN, ISO-2)
def physical(value: float, unit: str) -> dict[str, Any]:
    """PhysicalValueType for ``value`` (``Value`` is an xs:short, ``Multiplier`` in -3..3): the same
    type in DIN SPEC 70121 and ISO 15118-2 (-20 uses RationalNumberType instead)."""
    key = (value, unit)
    hit = _PHYSICAL.get(key)
    if hit is not None and type(value) is hit[0]:
        return {"Multiplier": hit[1], "Unit": unit, "Value": hit[2]}
    pv = _physical(value, unit)
    if len(_PHYSICAL) >= 512:
        _PHYSICAL.clear()
    _PHYSICAL[key] = (type(value), pv["Multiplier"], pv["Value"])
    return pv


#: (value, unit) -> (the value's type, Multiplier, Value): sessions send the same few numbers again and again
_PHYSICAL: dict[tuple[Any, str], tuple[type, int, int]] = {}


def _physical(value: float, unit: str) -> dict[str, Any]:
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
