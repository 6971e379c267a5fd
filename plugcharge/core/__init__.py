"""Protocol-neutral, sans-IO core of the V2G sessions (standard library and the ``exi`` codec only).

:mod:`~plugcharge.core.v2gtp` (the one V2GTP framer), :mod:`~plugcharge.core.codec` (codec access,
namespaces, the V2G_Message envelope), :mod:`~plugcharge.core.handshake` (SupportedAppProtocol,
negotiation), :mod:`~plugcharge.core.protocol` (:class:`ProtocolSpec`, :class:`ProtocolRegistry`),
:mod:`~plugcharge.core.session` (the session core, EV and charger bases, handler bases),
:mod:`~plugcharge.core.fsm` (table types and checks), :mod:`~plugcharge.core.timers`,
:mod:`~plugcharge.core.events`, :mod:`~plugcharge.core.errors`, :mod:`~plugcharge.core.config`,
:mod:`~plugcharge.core.sniff` (which request an undecodable message was, to answer it FAILED).
Nothing here imports another room of :mod:`plugcharge`.
"""
from .config import ChargerConfig, EVConfig, PausedSession, SessionStore
from .fsm import CoreState
from .protocol import DEFAULT_PROTOCOLS, KNOWN_PROTOCOLS, Fault, ProtocolRegistry, ProtocolSpec, TLSPolicy
from .session import ChargerHandler, ChargerSessionBase, EVHandler, EVSessionBase, Handler, SessionCore

__all__ = [
    "ChargerConfig", "EVConfig", "PausedSession", "SessionStore", "CoreState", "DEFAULT_PROTOCOLS",
    "KNOWN_PROTOCOLS", "Fault", "ProtocolRegistry", "ProtocolSpec", "TLSPolicy", "ChargerHandler",
    "ChargerSessionBase", "EVHandler", "EVSessionBase", "Handler", "SessionCore",
]
