"""plugcharge: ISO 15118 Plug & Charge sessions (sans-IO), transports and the command-line tool.

The sessions do no I/O and read no clock (h11 style): feed received bytes with
``session.receive_data(data, now)`` (it returns typed events), drive the session with
``session.send(command, now)`` (a :class:`SendResult`: ``.data`` holds the bytes to put on the
wire, ``.events`` what happened), collect what else is due with ``session.data_to_send()`` and run
its timeouts with ``session.get_timer()`` / ``session.handle_timer(now)``.

- EV side: :class:`EVSession` with :class:`EVConfig` and :class:`EVSecurity` (the
  :class:`ContractWallet` holds the installed contracts and the OEM provisioning credentials).
- Charger side: :class:`ChargerSession` with :class:`ChargerConfig` and :class:`ChargerSecurity`;
  the :class:`BackendRequest` events it returns are answered by a :class:`Backend` (the protocol
  an OCPP/CSMS connection implements; :class:`SimulatedBackend` for tests and the demo).
- Events derive from :class:`Event`, commands from :class:`Command`.
- I/O: :func:`start_charger_server` / :func:`open_ev_connection` (TCP or TLS, V2GTP framing),
  :func:`run_charger` / :func:`run_ev` (a session over such a stream), :func:`discover_secc` /
  :func:`start_sdp_server` (SDP), :func:`server_context` / :func:`client_context` (TLS).
- Message signatures: :func:`sign_message`, :func:`verify_message`.

The public names are imported from their rooms on first use (``plugcharge.EVSession`` loads
:mod:`plugcharge.sessions`, ``plugcharge.open_ev_connection`` loads :mod:`plugcharge.net.transport`
...), so importing one room does not import the others. ``dir(plugcharge)`` lists them and nothing
else. Rooms: :mod:`plugcharge.core` (protocol-neutral, sans-IO: framing, handshake, session core,
events, errors), :mod:`plugcharge.iso2` (ISO 15118-2), :mod:`plugcharge.pnc` (signatures, wallet,
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
    "plugcharge.core.errors": (
        "PlugChargeError", "LocalProtocolError", "RemoteProtocolError", "SignatureError", "SignatureFormatError",
        "MissingReferenceError", "UnexpectedReferenceError", "DigestMismatchError", "BadSignatureError"),
    "plugcharge.core.events": (
        "Event", "BackendRequest", "Command", "SendResult", "ProtocolAgreed", "NegotiationFailed", "SessionStarted",
        "SessionEnded", "ProtocolError", "TimerExpired", "PaymentSelected", "ContractInstallationStarted",
        "ContractInstallationSucceeded", "ContractInstallationFailed", "AuthorizationPending",
        "AuthorizationAccepted", "AuthorizationRejected", "ChargingStarted", "MeterValues", "ChargingStopped",
        "SessionPaused", "SalesTariffVerified", "CertificateInstallationNeeded", "AuthorizationNeeded",
        "MeteringReceiptReceived", "StartSession", "StopCharging", "PauseCharging",
        "CertificateInstallationResponse", "AuthorizationResult", "RequestRenegotiation", "ChargePortLight"),
    "plugcharge.core.v2gtp": ("V2GTPError",),
    "plugcharge.iso2.timing": ("TimingProfile", "DEFAULT_TIMING"),
    "plugcharge.pnc.security": ("EVSecurity", "ChargerSecurity", "WalletLike"),
    "plugcharge.pnc.wallet": ("ContractWallet", "Contract", "ContractInfo", "OEMProvisioning", "WalletError"),
    "plugcharge.pnc.signatures": ("sign_message", "verify_message"),
    "plugcharge.backends.base": (
        "Backend", "AsyncBackend", "SyncBackendAdapter", "as_async", "AuthorizeRequest", "AuthorizeResponse",
        "Get15118EVCertificateRequest", "Get15118EVCertificateResponse", "OCSPRequestData", "pem_chain"),
    "plugcharge.backends.simulated": ("SimulatedBackend", "IssuedContract"),
    "plugcharge.net.transport": ("open_ev_connection", "start_charger_server", "V2GTPStream", "TransportClosed"),
    "plugcharge.net.runner": ("run_ev", "run_charger"),
    "plugcharge.net.sdp": ("discover_secc", "start_sdp_server", "SDPError", "SDPTimeoutError"),
    "plugcharge.net.tls": ("server_context", "client_context", "TLSConfigError"),
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
    """The public API only (``dir(plugcharge)``); the rooms stay importable by name."""
    return sorted(__all__)


if TYPE_CHECKING:  # the same names, for type checkers
    from .backends.base import (
        AsyncBackend, AuthorizeRequest, AuthorizeResponse, Backend, Get15118EVCertificateRequest,
        Get15118EVCertificateResponse, OCSPRequestData, SyncBackendAdapter, as_async, pem_chain,
    )
    from .backends.simulated import IssuedContract, SimulatedBackend
    from .core.config import ChargerConfig, EVConfig, SessionStore
    from .core.errors import (
        BadSignatureError, DigestMismatchError, LocalProtocolError, MissingReferenceError, PlugChargeError,
        RemoteProtocolError, SignatureError, SignatureFormatError, UnexpectedReferenceError,
    )
    from .core.events import (
        AuthorizationAccepted, AuthorizationNeeded, AuthorizationPending, AuthorizationRejected, AuthorizationResult,
        BackendRequest, CertificateInstallationNeeded, CertificateInstallationResponse, ChargePortLight,
        ChargingStarted, ChargingStopped, Command, ContractInstallationFailed, ContractInstallationStarted,
        ContractInstallationSucceeded, Event, MeteringReceiptReceived, MeterValues, NegotiationFailed,
        PauseCharging, PaymentSelected, ProtocolAgreed, ProtocolError, RequestRenegotiation, SalesTariffVerified,
        SendResult, SessionEnded, SessionPaused, SessionStarted, StartSession, StopCharging, TimerExpired,
    )
    from .core.protocol import ProtocolRegistry, ProtocolSpec
    from .core.v2gtp import V2GTPError
    from .iso2.timing import DEFAULT_TIMING, TimingProfile
    from .net.runner import run_charger, run_ev
    from .net.sdp import SDPError, SDPTimeoutError, discover_secc, start_sdp_server
    from .net.tls import TLSConfigError, client_context, server_context
    from .net.transport import TransportClosed, V2GTPStream, open_ev_connection, start_charger_server
    from .pnc.security import ChargerSecurity, EVSecurity, WalletLike
    from .pnc.signatures import sign_message, verify_message
    from .pnc.wallet import Contract, ContractInfo, ContractWallet, OEMProvisioning, WalletError
    from .sessions import ChargerSession, EVSession, default_registry
