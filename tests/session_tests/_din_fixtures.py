"""Helpers for the DIN SPEC 70121 session tests: EV and charger configured for DIN, the pump, probes."""
from __future__ import annotations

from typing import Any, Callable, Optional

import pytest

from _pc_fixtures import NOW, Pump, TestBackend, codecs, fake_codecs, real_codec_status, trust_store
from plugcharge import ChargerConfig, ChargerSecurity, ChargerSession, EVConfig, EVSecurity, EVSession
from plugcharge.core.codec import NS_APP, NS_DIN, body_of, frame, v2g_message
from plugcharge.core.handshake import sap_req
from plugcharge.din import TimingProfile

REAL = real_codec_status()
#: skip where the real EXI codec does not work (then only the JSON fake runs)
needs_real = pytest.mark.skipif(REAL is not None, reason=str(REAL))


@pytest.fixture(params=["fake", pytest.param("real", marks=needs_real)])
def cp(request: Any) -> Any:
    """The codec provider a test runs on: the JSON fake, and the real EXI codec when it works."""
    if request.param == "fake":
        return fake_codecs
    import exi

    return exi.get_codec


#: The EV's DIN entry in supportedAppProtocolReq.
DIN_OFFER = ((NS_DIN, 2, 0, 1, 1),)


class NoWallet:
    """A wallet that fails the test when the session touches it (DIN must never use the wallet)."""

    touched: list[str] = []

    def __getattr__(self, name: str) -> Any:
        NoWallet.touched.append(name)
        raise AssertionError(f"a DIN session touched the wallet ({name})")


def din_ev(cp: Any = None, *, timing: Any = None, wallet: Any = None, **config: Any) -> EVSession:
    config.setdefault("protocols", ("din",))
    return EVSession(EVConfig(**config), codecs=cp or codecs(), timing=timing,
                     security=EVSecurity(wallet=wallet if wallet is not None else NoWallet(), wall_clock=lambda: NOW))


def din_charger(cp: Any = None, *, timing: Any = None, now: Optional[float] = 0.0, **config: Any) -> ChargerSession:
    config.setdefault("protocols", ("din",))
    config.setdefault("tls", False)
    return ChargerSession(ChargerConfig(**config), codecs=cp or codecs(), timing=timing, now=now,
                          security=ChargerSecurity(trust_store=trust_store(), wall_clock=lambda: NOW))


def din_run(cp: Any = None, *, ev: Optional[dict] = None, charger: Optional[dict] = None, backend: str = "accept",
            auth_after: float = 0.0, timing: Any = None, until: Optional[Callable[[Pump], bool]] = None,
            tamper: Optional[Callable[[str, bytes], bytes]] = None) -> Pump:
    """A DIN EV against a DIN charger in memory; the backend (``accept`` / ``reject``) decides the
    identification ``auth_after`` seconds after it was asked."""
    cp = cp or codecs()
    p = Pump(din_ev(cp, timing=timing, **(ev or {})), din_charger(cp, timing=timing, **(charger or {})),
             TestBackend(cp, authorize=backend), auth_after=auth_after)
    p.tamper = tamper
    p.start()
    return p.run(until=(lambda: until(p)) if until is not None else None)


def fast(**kw: Any) -> TimingProfile:
    return TimingProfile(**kw)


def din_frame(cp: Any, sid: bytes, name: str, body: dict) -> bytes:
    return frame(cp(NS_DIN).encode(v2g_message(sid, name, body)))


def sap_frame(cp: Any, offer: tuple = DIN_OFFER) -> bytes:
    return frame(cp(NS_APP).encode(sap_req(offer)))


def din_body(cp: Any, data: bytes) -> Optional[tuple[str, dict, dict]]:
    """(name, body, header) of the DIN message framed in ``data``, None for anything else (the handshake)."""
    if data[:2] != b"\x01\xfe":
        return None
    try:
        return body_of(cp(NS_DIN).decode(data[8:]))
    except ValueError:
        return None


def rewrite(cp: Any, src: str, target: str, change: Callable[[dict], Any]) -> Callable[[str, bytes], bytes]:
    """A Pump tamper function: ``change(body)`` on every ``target`` message ``src`` sends; ``change``
    may return another (name, body) to send instead."""
    def tamper(frm: str, data: bytes) -> bytes:
        got = din_body(cp, data) if frm == src else None
        if got is None or got[0] != target:
            return data
        name, body, header = got
        other = change(body)
        if isinstance(other, tuple):
            name, body = other
        return din_frame(cp, header["SessionID"], name, body)
    return tamper


def answer(cp: Any, data: bytes) -> tuple[str, dict]:
    """(body name, body) of the one DIN message in ``data``."""
    assert data[:2] == b"\x01\xfe", data[:8]
    name, body, _ = body_of(cp(NS_DIN).decode(data[8:]))
    return name, body


def requests(sid: bytes = bytes(8)) -> dict[str, dict]:
    """A schema-valid body of every DIN request type (to inject where it does not belong)."""
    from plugcharge.core.codec import physical
    from plugcharge.din import messages as M

    status = M.dc_ev_status()
    return {
        "SessionSetupReq": {"EVCCID": bytes(6)},
        "ServiceDiscoveryReq": {"ServiceCategory": "EVCharging"},
        "ServicePaymentSelectionReq": M.service_payment_selection_req(),
        "ContractAuthenticationReq": {},
        "ChargeParameterDiscoveryReq": {"EVRequestedEnergyTransferType": "DC_extended", "DC_EVChargeParameter": {
            "DC_EVStatus": status, "EVMaximumCurrentLimit": physical(100, "A"),
            "EVMaximumVoltageLimit": physical(450, "V")}},
        "CableCheckReq": {"DC_EVStatus": status},
        "PreChargeReq": {"DC_EVStatus": status, "EVTargetVoltage": physical(400, "V"),
                         "EVTargetCurrent": physical(0, "A")},
        "PowerDeliveryReq": {"ReadyToChargeState": True, "DC_EVPowerDeliveryParameter": {
            "DC_EVStatus": status, "ChargingComplete": False}},
        "CurrentDemandReq": {"DC_EVStatus": status, "EVTargetCurrent": physical(10, "A"), "ChargingComplete": False,
                             "EVTargetVoltage": physical(400, "V")},
        "WeldingDetectionReq": {"DC_EVStatus": status},
        "SessionStopReq": {},
        "ServiceDetailReq": {"ServiceID": 1},
        "ChargingStatusReq": {},
        "MeteringReceiptReq": {"SessionID": sid, "MeterInfo": {"MeterID": "m"}},
    }


def frames(data: bytes) -> list[bytes]:
    """The payloads of the V2GTP frames in ``data``."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        n = int.from_bytes(data[pos + 4:pos + 8], "big")
        out.append(data[pos + 8:pos + 8 + n])
        pos += 8 + n
    return out
