"""One TLS port for ISO 15118-2 and -20: the charger presents the certificate of the protocol the
EV's ClientHello asks for.

The problem.  TLS comes before the SupportedAppProtocol handshake, so the charger must pick its
server certificate before it knows which protocol will be agreed; ISO 15118-2 needs TLS 1.2 with a
secp256r1 leaf [V2G2-067, V2G2-006], ISO 15118-20 TLS 1.3 [V2G20-1264] with a secp521r1 (or Ed448)
leaf.  SDP does not tell them apart (both EVs ask for a secured connection, and the SDP response
names one port), and a second port cannot be announced.  What does tell them apart is the EV's
ClientHello: a -20 EV offers TLS 1.3 (``supported_versions``) and the -20 signature algorithm
(``signature_algorithms``: ecdsa_secp521r1_sha512 or ed448), a -2 EV offers TLS 1.2 and P-256.
EVerest does the same (its TLS server tags each chain with the TLS version it serves and picks a
version-compatible chain during the handshake, EVerest PR #2683).

How.  :class:`DualServerContext` builds one server context that negotiates TLS 1.2 or 1.3 and,
while the ClientHello is processed, switches the connection to the -20 context (TLS 1.3, the -20
chain) when the hello qualifies, else to the -2 context (TLS 1.2 cipher of Table 7, the -2 chain).
Python's ``ssl`` has no ClientHello callback: the hello is read through the context's message
callback (``SSLContext._msg_callback``, CPython's debugging hook, present since 3.8) and the switch
is made in the SNI callback, which OpenSSL calls right after it for every ClientHello.  After the
handshake :func:`protocols_for_tls_version` names the protocols the charger may agree on that
connection (TLS 1.3: -20 only; TLS 1.2: -2 only).  Connections switched to the -20 context get its
post-handshake checks (:class:`plugcharge.net.tls.V2GSSLObject`: a suite other than the two -20
allows is refused [V2G20-2458], and with ``iso20_client_roots`` the vehicle chain is checked under
the -20 vehicle profile [V2G20-2430..2432]).

Limits (Python's ``ssl``): the TLS 1.3 suites cannot be restricted, so OpenSSL's defaults are
offered (TLS_AES_256_GCM_SHA384 and TLS_CHACHA20_POLY1305_SHA256 first, in the standard's order
[V2G20-2458], then TLS_AES_128_GCM_SHA256); with the server's preference the first is chosen and
the -20 context refuses the third.  The key-exchange group is not pinned on the shared context (a
-2 client needs secp256r1 from the same context); our -20 client pins secp521r1.  OpenSSL takes
the verify mode from the context a connection starts with, so with ``iso20_client_roots`` the
shared context asks every client for a certificate (``CERT_OPTIONAL``): a -2 EV answers without
one, a -20 EV must present its vehicle chain (the -20 context's check refuses a missing one).
"""
from __future__ import annotations

import dataclasses
import ssl
from typing import Any, Optional, Sequence

from .tls import ISO2_CIPHERS, V2GSSLObject, _load_chain, server_context

__all__ = ["ClientHello", "parse_client_hello", "wants_iso20", "DualServerContext", "protocols_for_tls_version"]
#: signature_algorithms code points of the -20 leaf algorithms (RFC 8446 4.2.3).
_ECDSA_P521_SHA512 = 0x0603
_ED448 = 0x0808
_TLS13 = 0x0304
_MAX_PENDING = 256


@dataclasses.dataclass(frozen=True)
class ClientHello:
    """What the selection reads from a ClientHello."""

    versions: tuple[int, ...]
    signature_algorithms: tuple[int, ...]


def parse_client_hello(msg: bytes) -> ClientHello:
    """Parse a ClientHello handshake message (its 4-byte header included); ValueError if malformed."""
    try:
        if msg[0] != 1:
            raise ValueError("not a ClientHello")
        end = 4 + int.from_bytes(msg[1:4], "big")
        pos = 4 + 2 + 32  # legacy_version, random
        pos += 1 + msg[pos]  # session id
        pos += 2 + int.from_bytes(msg[pos:pos + 2], "big")  # cipher suites
        pos += 1 + msg[pos]  # compression methods
        versions: list[int] = [int.from_bytes(msg[4:6], "big")]
        sigalgs: list[int] = []
        if pos < end:
            ext_end = pos + 2 + int.from_bytes(msg[pos:pos + 2], "big")
            pos += 2
            while pos + 4 <= ext_end:
                etype = int.from_bytes(msg[pos:pos + 2], "big")
                elen = int.from_bytes(msg[pos + 2:pos + 4], "big")
                data = msg[pos + 4:pos + 4 + elen]
                if etype == 0x002B and data:  # supported_versions
                    versions = [int.from_bytes(data[i:i + 2], "big") for i in range(1, 1 + data[0], 2)]
                elif etype == 0x000D and len(data) >= 2:  # signature_algorithms
                    n = int.from_bytes(data[:2], "big")
                    sigalgs = [int.from_bytes(data[i:i + 2], "big") for i in range(2, 2 + n, 2)]
                pos += 4 + elen
        return ClientHello(tuple(versions), tuple(sigalgs))
    except IndexError:
        raise ValueError("truncated ClientHello") from None


def wants_iso20(hello: ClientHello) -> bool:
    """Whether the hello comes from a -20 EV: TLS 1.3 and a -20 leaf signature algorithm offered."""
    return _TLS13 in hello.versions and bool({_ECDSA_P521_SHA512, _ED448} & set(hello.signature_algorithms))


class DualServerContext:
    """A server context presenting the -2 chain over TLS 1.2 or the -20 chain over TLS 1.3, chosen
    by the ClientHello (see the module docstring).  Either chain may be absent (then every client
    gets the other one, in its own TLS version).  ``context`` goes to
    :func:`plugcharge.net.transport.start_charger_server`; :attr:`selected` counts the choices."""

    def __init__(self, *, iso2: Optional[tuple[Sequence[bytes], Any]] = None,
                 iso20: Optional[tuple[Sequence[bytes], Any]] = None,
                 iso20_client_roots: Optional[Sequence[bytes]] = None) -> None:
        if iso2 is None and iso20 is None:
            raise ValueError("a charger needs at least one certificate chain")
        self.iso2 = server_context(iso2[0], iso2[1], iso=2) if iso2 is not None else None
        self.iso20 = server_context(iso20[0], iso20[1], iso=20, client_roots=iso20_client_roots) \
            if iso20 is not None else None
        self.selected = {"iso2": 0, "iso20": 0}
        self._hellos: dict[int, ClientHello] = {}
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2 if self.iso2 is not None else ssl.TLSVersion.TLSv1_3
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3 if self.iso20 is not None else ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ISO2_CIPHERS)  # TLS 1.2 (Table 7); TLS 1.3 suites are OpenSSL's
        # OpenSSL takes options and the ticket count from the context a connection starts with, not
        # from the one the hello switches it to: no session tickets (TLS 1.2 and 1.3) and no
        # renegotiation here too, as in plugcharge.net.tls
        ctx.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_TICKET
                        | ssl.OP_NO_RENEGOTIATION)
        ctx.num_tickets = 0
        default = iso2 if iso2 is not None else iso20
        assert default is not None
        _load_chain(ctx, default[0], default[1])
        # the -20 context's post-handshake checks run on connections switched to it
        ctx.sslobject_class = V2GSSLObject
        if self.iso20 is not None and iso20_client_roots:
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx._msg_callback = self._on_message  # type: ignore[attr-defined]
        ctx.sni_callback = self._on_hello
        self.context = ctx

    def _on_message(self, conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any,
                    data: bytes) -> None:
        if direction == "read" and msg_type == ssl._TLSMessageType.CLIENT_HELLO:  # type: ignore[attr-defined]
            try:
                hello = parse_client_hello(bytes(data))
            except ValueError:
                return  # OpenSSL itself rejects a malformed hello
            if len(self._hellos) >= _MAX_PENDING:
                self._hellos.clear()
            self._hellos[id(conn)] = hello

    def _on_hello(self, conn: Any, server_name: Optional[str], ctx: ssl.SSLContext) -> None:
        hello = self._hellos.pop(id(conn), None)
        iso20 = self.iso20 is not None and (self.iso2 is None or (hello is not None and wants_iso20(hello)))
        conn.context = self.iso20 if iso20 else self.iso2
        self.selected["iso20" if iso20 else "iso2"] += 1


def protocols_for_tls_version(version: Optional[str]) -> tuple[str, ...]:
    """The protocols a charger may agree on a connection of TLS ``version`` (``ssl``'s names):
    ``TLSv1.3``: ISO 15118-20; ``TLSv1.2``: ISO 15118-2; no TLS: ISO 15118-2 and DIN SPEC 70121."""
    if version == "TLSv1.3":
        return ("iso20",)
    if version == "TLSv1.2":
        return ("iso2",)
    return ("iso2", "din")

