"""Which body an undecodable V2G message was meant to carry, from the bits before the fault.

A charger must answer every request it cannot process with that request's response type carrying
FAILED, then end the session ([V2G2-538]/[V2G2-539], [V2G-DC-665]).  When the EXI stream cannot be
decoded, the decoder yields nothing, but the bits that select the body element usually come early
and intact: an EXI document is a prefix code, and two messages with the same header differ first
inside the event code of their body element.

:class:`BodySniffer` encodes, once per protocol and SessionID, a *probe* of every body the protocol
knows (the header as the session's EV sends it, the body a nil element, which non-strict EXI allows
for every element; for ISO 15118-20, whose messages are document roots with the header inside, the
nil root) and keeps for each the bit prefix that tells it apart from all the others.  A
payload that starts with one probe's prefix was meant to carry that body.  A header the probes do
not model (a Notification, a Signature) matches none of them; the caller then falls back to the
request the session state expects.  Nothing here raises: an unusable probe is left out.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional

__all__ = ["BodySniffer", "common_prefix_bits"]

#: body content that encodes for every element: a nil element; a required attribute (``Id`` of the
#: signed -2/DIN messages) must still be present beside it
_NIL_BODIES: tuple[Mapping[str, Any], ...] = ({"xsi:nil": True}, {"xsi:nil": True, "Id": "i"})


def common_prefix_bits(a: bytes, b: bytes) -> int:
    """How many leading bits ``a`` and ``b`` share (the shorter length when one is a prefix)."""
    n = min(len(a), len(b))
    for i in range(n):
        x = a[i] ^ b[i]
        if x:
            return i * 8 + (8 - x.bit_length())
    return n * 8


def _encoded(encode: Callable[[dict], bytes], make: Callable[[Mapping[str, Any]], dict],
             body: Mapping[str, Any]) -> Optional[bytes]:
    try:
        return encode(make(body))
    except Exception:  # the codec refuses this shape
        return None


def _starts_with(data: bytes, probe: bytes, bits: int) -> bool:
    whole, rest = divmod(bits, 8)
    if len(data) * 8 < bits or data[:whole] != probe[:whole]:
        return False
    if rest == 0:
        return True
    mask = (0xFF << (8 - rest)) & 0xFF
    return (data[whole] & mask) == (probe[whole] & mask)


class BodySniffer:
    """The body names of one protocol, told apart by their EXI prefixes under one header.

    ``encode`` is the protocol's document encoder, ``wrap(session_id, name, body)`` its envelope
    (:attr:`~plugcharge.core.protocol.ProtocolSpec.wrap`), ``names`` every body it knows.
    """

    def __init__(self, encode: Callable[[dict], bytes], wrap: Callable[[bytes, str, Mapping[str, Any]], dict],
                 session_id: bytes, names: Iterable[str]) -> None:
        probes: dict[str, bytes] = {}
        for name in dict.fromkeys(names):
            # in the protocol's envelope (ISO-2, DIN: V2G_Message, Header, Body); else the message as
            # the document's root, where ISO 15118-20 has it (its header is inside: the root's event
            # code comes first, and a nil root fits no envelope)
            for make in (lambda b: wrap(session_id, name, b), lambda b: {name: dict(b)}):
                try:
                    probes[name] = next(p for p in (_encoded(encode, make, b) for b in _NIL_BODIES) if p)
                    break
                except StopIteration:  # this body cannot be probed this way
                    continue
        #: name -> (probe, bits that tell it apart from every other probe)
        self._prefixes: dict[str, tuple[bytes, int]] = {}
        for name, probe in probes.items():
            bits = max((common_prefix_bits(probe, other) + 1 for n, other in probes.items() if n != name), default=0)
            if 0 < bits <= len(probe) * 8:
                self._prefixes[name] = (probe, bits)

    @property
    def names(self) -> tuple[str, ...]:
        """The bodies this sniffer can recognise."""
        return tuple(self._prefixes)

    def identify(self, payload: bytes) -> Optional[str]:
        """The body ``payload`` starts like, or None when it starts like none of them."""
        data = bytes(payload)
        for name, (probe, bits) in self._prefixes.items():
            if _starts_with(data, probe, bits):
                return name
        return None
