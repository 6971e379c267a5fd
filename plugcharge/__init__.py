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
"""
from __future__ import annotations

from plugcharge.backend import (
    AsyncBackend,
    AuthorizeRequest,
    AuthorizeResponse,
    Backend,
    Get15118EVCertificateRequest,
    Get15118EVCertificateResponse,
    IssuedContract,
    OCSPRequestData,
    SimulatedBackend,
    SyncBackendAdapter,
    as_async,
    pem_chain,
)
from plugcharge.charger import ChargerConfig, ChargerSecurity, ChargerSession, SessionStore
from plugcharge.errors import (
    BadSignatureError,
    DigestMismatchError,
    LocalProtocolError,
    MissingReferenceError,
    PlugChargeError,
    RemoteProtocolError,
    SignatureError,
    SignatureFormatError,
    UnexpectedReferenceError,
)
from plugcharge.ev import EVConfig, EVSecurity, EVSession, WalletLike
from plugcharge.events import (
    AuthorizationAccepted,
    AuthorizationNeeded,
    AuthorizationPending,
    AuthorizationRejected,
    AuthorizationResult,
    BackendRequest,
    CertificateInstallationNeeded,
    CertificateInstallationResponse,
    ChargingStarted,
    ChargingStopped,
    Command,
    ContractInstallationFailed,
    ContractInstallationStarted,
    ContractInstallationSucceeded,
    Event,
    MeteringReceiptReceived,
    MeterValues,
    PauseCharging,
    PaymentSelected,
    ProtocolError,
    RequestRenegotiation,
    SalesTariffVerified,
    SendResult,
    SessionEnded,
    SessionPaused,
    SessionStarted,
    StartSession,
    StopCharging,
    TimerExpired,
)
from plugcharge.runner import run_charger, run_ev
from plugcharge.sdp import SDPError, SDPTimeoutError, discover_secc, start_sdp_server
from plugcharge.signatures import sign_message, verify_message
from plugcharge.timeouts import DEFAULT_TIMING, TimingProfile
from plugcharge.tlsconfig import TLSConfigError, client_context, server_context
from plugcharge.transport import TransportClosed, V2GTPStream, open_ev_connection, start_charger_server
from plugcharge.v2gtp import V2GTPError
from plugcharge.wallet import ChargePortLight, Contract, ContractInfo, ContractWallet, OEMProvisioning, WalletError

__all__ = [
    # sessions
    "EVSession",
    "EVConfig",
    "EVSecurity",
    "WalletLike",
    "ChargerSession",
    "ChargerConfig",
    "ChargerSecurity",
    "SessionStore",
    "TimingProfile",
    "DEFAULT_TIMING",
    # events and commands
    "Event",
    "BackendRequest",
    "Command",
    "SendResult",
    "SessionStarted",
    "SessionEnded",
    "SessionPaused",
    "ProtocolError",
    "TimerExpired",
    "PaymentSelected",
    "ContractInstallationStarted",
    "ContractInstallationSucceeded",
    "ContractInstallationFailed",
    "AuthorizationPending",
    "AuthorizationAccepted",
    "AuthorizationRejected",
    "SalesTariffVerified",
    "ChargingStarted",
    "MeterValues",
    "ChargingStopped",
    "CertificateInstallationNeeded",
    "AuthorizationNeeded",
    "MeteringReceiptReceived",
    "StartSession",
    "StopCharging",
    "PauseCharging",
    "CertificateInstallationResponse",
    "AuthorizationResult",
    "RequestRenegotiation",
    # the EV's wallet
    "ContractWallet",
    "Contract",
    "ContractInfo",
    "OEMProvisioning",
    "ChargePortLight",
    "WalletError",
    # the charger's backend
    "Backend",
    "AsyncBackend",
    "SyncBackendAdapter",
    "as_async",
    "AuthorizeRequest",
    "AuthorizeResponse",
    "Get15118EVCertificateRequest",
    "Get15118EVCertificateResponse",
    "OCSPRequestData",
    "SimulatedBackend",
    "IssuedContract",
    "pem_chain",
    # transports
    "start_charger_server",
    "open_ev_connection",
    "V2GTPStream",
    "TransportClosed",
    "run_charger",
    "run_ev",
    "discover_secc",
    "start_sdp_server",
    "SDPError",
    "SDPTimeoutError",
    "server_context",
    "client_context",
    "TLSConfigError",
    "V2GTPError",
    # message signatures
    "sign_message",
    "verify_message",
    # errors
    "PlugChargeError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "SignatureError",
    "SignatureFormatError",
    "MissingReferenceError",
    "UnexpectedReferenceError",
    "DigestMismatchError",
    "BadSignatureError",
]


def __dir__() -> list[str]:
    """The public API only (``dir(plugcharge)``); submodules stay importable by name."""
    return sorted(__all__)
