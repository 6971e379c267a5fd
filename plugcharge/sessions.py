"""The public sessions: :class:`EVSession` and :class:`ChargerSession`, bound to the protocols this
package implements (:func:`default_registry`).

Both are sans-IO (h11 style): ``receive_data(bytes, now)`` returns typed events, ``data_to_send()``
returns bytes, ``send(command, now)`` drives them, ``get_timer()`` / ``handle_timer(now)`` apply the
standard's timeouts.  The SupportedAppProtocol handshake picks the protocol
(:class:`~plugcharge.core.events.ProtocolAgreed` names it); implemented today: ISO 15118-2 and
DIN SPEC 70121.

``timing`` takes one timer profile or several (each protocol's own type, e.g. a scaled
:class:`plugcharge.iso2.TimingProfile` and a :class:`plugcharge.din.TimingProfile`): a profile applies
to the protocol whose type it is (:func:`plugcharge.core.timers.timing_for`); without one, each
protocol runs on its standard's tables.
"""
from __future__ import annotations

from typing import Any, Optional

from . import din, iso2, iso20
from .core.codec import CodecProvider
from .core.config import ChargerConfig, EVConfig, SessionStore
from .core.protocol import ProtocolRegistry
from .core.session import ChargerSessionBase, EVSessionBase
from .core.timers import TimingArg
from .pnc.security import ChargerSecurity, EVSecurity

__all__ = ["EVSession", "ChargerSession", "default_registry"]


def default_registry() -> ProtocolRegistry:
    """The protocols implemented in this package: ISO 15118-20 (DC and AC message sets, family
    ``"iso20"``), ISO 15118-2 and DIN SPEC 70121."""
    return ProtocolRegistry([*iso20.SPECS, iso2.SPEC, din.SPEC])


class EVSession(EVSessionBase):
    """One V2G communication session on the vehicle side (one TCP/TLS connection).

    ``config.protocols`` lists what the EV offers, most preferred first; ``protocols`` replaces the
    registry (tests plug in protocols of their own)."""

    def __init__(self, config: Optional[EVConfig] = None, *, security: Optional[EVSecurity] = None,
                 timing: TimingArg = None, codecs: Optional[CodecProvider] = None,
                 protocols: Optional[ProtocolRegistry] = None) -> None:
        super().__init__(config or EVConfig(), security=security or EVSecurity(), timing=timing, codecs=codecs,
                         protocols=protocols if protocols is not None else default_registry())

    @property
    def payment(self) -> Optional[str]:
        """The payment option chosen (``Contract`` / ``ExternalPayment``), None before that."""
        return getattr(self.handler, "payment", None)

    @property
    def contract(self) -> Any:
        """The contract used in this session (Contract payment), else None."""
        return getattr(self.handler, "contract", None)

    @property
    def soc(self) -> float:
        """The simulated battery's state of charge (%)."""
        return float(getattr(self.handler, "soc", self.config.soc))


class ChargerSession(ChargerSessionBase):
    """One V2G communication session on the charger side (one TCP/TLS connection).

    ``config.protocols`` lists what the charger speaks; ``store`` keeps paused sessions across
    connections; ``now`` arms the sequence timer at once (else call :meth:`connection_made`)."""

    def __init__(self, config: Optional[ChargerConfig] = None, *, security: Optional[ChargerSecurity] = None,
                 store: Optional[SessionStore] = None, timing: TimingArg = None,
                 codecs: Optional[CodecProvider] = None, now: Optional[float] = None,
                 protocols: Optional[ProtocolRegistry] = None) -> None:
        super().__init__(config or ChargerConfig(), security=security or ChargerSecurity(), store=store,
                         timing=timing, codecs=codecs,
                         protocols=protocols if protocols is not None else default_registry(), now=now)

    @property
    def payment(self) -> Optional[str]:
        """The payment option the EV selected, None before that."""
        return getattr(self.handler, "payment", None)

    @property
    def emaid(self) -> Optional[str]:
        """The contract's eMAID (Contract payment), else None."""
        return getattr(self.handler, "emaid", None)

    @property
    def energy_mode(self) -> Optional[str]:
        """The energy transfer mode the EV requested, None before that."""
        return getattr(self.handler, "energy_mode", None)
