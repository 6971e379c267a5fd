"""plugcharge: ISO 15118 Plug & Charge sessions (sans-IO), transports and the command-line tool.

The public names below are imported from their rooms on first use (``plugcharge.EVSession`` loads
:mod:`plugcharge.sessions`, ``plugcharge.open_ev_connection`` loads :mod:`plugcharge.net.transport`
...), so importing one room does not import the others.

Rooms: :mod:`plugcharge.core` (protocol-neutral, sans-IO: framing, handshake, session core, events,
errors), :mod:`plugcharge.iso2` (ISO 15118-2), :mod:`plugcharge.pnc` (signatures, wallet,
certificates), :mod:`plugcharge.net` (SDP, TLS, transports, runner), :mod:`plugcharge.backends`,
:mod:`plugcharge.cli`.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {}
for _module, _names in {
    "plugcharge.sessions": ("EVSession", "ChargerSession", "default_registry"),
    "plugcharge.core.config": ("EVConfig", "ChargerConfig", "SessionStore"),
    "plugcharge.core.protocol": ("ProtocolSpec", "ProtocolRegistry"),
    "plugcharge.core.errors": ("PlugChargeError", "LocalProtocolError", "RemoteProtocolError", "SignatureError"),
    "plugcharge.core.events": (
        "Event", "BackendRequest", "Command", "SendResult", "ProtocolAgreed", "NegotiationFailed", "SessionStarted",
        "SessionEnded", "ProtocolError", "TimerExpired", "PaymentSelected", "ContractInstallationStarted",
        "ContractInstallationSucceeded", "ContractInstallationFailed", "AuthorizationPending",
        "AuthorizationAccepted", "AuthorizationRejected", "ChargingStarted", "MeterValues", "ChargingStopped",
        "SessionPaused", "SalesTariffVerified", "CertificateInstallationNeeded", "AuthorizationNeeded",
        "MeteringReceiptReceived", "StartSession", "StopCharging", "PauseCharging",
        "CertificateInstallationResponse", "AuthorizationResult", "RequestRenegotiation"),
    "plugcharge.iso2.timing": ("TimingProfile",),
    "plugcharge.pnc.security": ("EVSecurity", "ChargerSecurity"),
    "plugcharge.pnc.wallet": ("ContractWallet", "WalletError"),
    "plugcharge.pnc.signatures": ("sign_message", "verify_message"),
    "plugcharge.backends.base": ("Backend", "AsyncBackend"),
    "plugcharge.backends.simulated": ("SimulatedBackend",),
    "plugcharge.net.transport": ("open_ev_connection", "start_charger_server", "V2GTPStream"),
    "plugcharge.net.runner": ("run_ev", "run_charger"),
}.items():
    _EXPORTS.update(dict.fromkeys(_names, _module))
del _module, _names

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'plugcharge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # the same names, for type checkers
    from .backends.base import AsyncBackend, Backend
    from .backends.simulated import SimulatedBackend
    from .core.config import ChargerConfig, EVConfig, SessionStore
    from .core.errors import LocalProtocolError, PlugChargeError, RemoteProtocolError, SignatureError
    from .core.events import (
        AuthorizationAccepted, AuthorizationNeeded, AuthorizationPending, AuthorizationRejected, AuthorizationResult,
        BackendRequest, CertificateInstallationNeeded, CertificateInstallationResponse, ChargingStarted,
        ChargingStopped, Command, ContractInstallationFailed, ContractInstallationStarted,
        ContractInstallationSucceeded, Event, MeteringReceiptReceived, MeterValues, NegotiationFailed,
        PauseCharging, PaymentSelected, ProtocolAgreed, ProtocolError, RequestRenegotiation, SalesTariffVerified,
        SendResult, SessionEnded, SessionPaused, SessionStarted, StartSession, StopCharging, TimerExpired,
    )
    from .core.protocol import ProtocolRegistry, ProtocolSpec
    from .iso2.timing import TimingProfile
    from .net.runner import run_charger, run_ev
    from .net.transport import V2GTPStream, open_ev_connection, start_charger_server
    from .pnc.security import ChargerSecurity, EVSecurity
    from .pnc.signatures import sign_message, verify_message
    from .pnc.wallet import ContractWallet, WalletError
    from .sessions import ChargerSession, EVSession, default_registry
