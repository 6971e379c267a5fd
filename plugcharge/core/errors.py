"""Exception types of the Plug & Charge session layer (h11 style).

``LocalProtocolError`` means *our* caller asked for something the protocol does not allow in the
current state (a programming error on this side).  ``RemoteProtocolError`` means the *peer* broke
the protocol; it carries the ISO 15118-2 ``ResponseCode`` a charger answers with (``response_code``)
and a short ``error_hint`` for logs.  Sessions never let either escape ``receive_data``: they turn a
remote error into a ``ProtocolError`` event plus a clean session end.  Signature problems have their
own typed hierarchy under :class:`SignatureError`.

No message of any of these exceptions ever contains private key material.
"""
from __future__ import annotations

__all__ = [
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


class PlugChargeError(Exception):
    """Root of every error raised by :mod:`plugcharge` session code."""


class _ProtocolErrorBase(PlugChargeError):
    def __init__(self, msg: str, *, response_code: str = "FAILED", error_hint: str | None = None) -> None:
        super().__init__(msg)
        #: ISO 15118-2 responseCodeType literal that describes the fault (e.g. ``FAILED_SequenceError``).
        self.response_code = response_code
        #: Short, log-safe explanation (never contains key material).
        self.error_hint = error_hint if error_hint is not None else msg


class LocalProtocolError(_ProtocolErrorBase):
    """The local caller tried something the protocol state does not allow."""


class RemoteProtocolError(_ProtocolErrorBase):
    """The peer violated the protocol; ``response_code`` is what a charger answers with."""


class SignatureError(PlugChargeError):
    """An ISO 15118 XML signature (EXI canonicalised) could not be created or is not valid.

    ``response_code`` maps the problem onto ISO 15118-2 (``FAILED_SignatureError``)."""

    response_code = "FAILED_SignatureError"


class SignatureFormatError(SignatureError):
    """SignedInfo uses an algorithm, attribute or element that ISO 15118-2 forbids [V2G2-771], or is malformed."""


class MissingReferenceError(SignatureError):
    """An element that must be signed has no ``Reference`` (or no ``Id`` to refer to)."""


class UnexpectedReferenceError(SignatureError):
    """SignedInfo references something that is not one of the expected signed elements."""


class DigestMismatchError(SignatureError):
    """A Reference's ``DigestValue`` is not the SHA-256 of the element's EXI fragment."""

    def __init__(self, msg: str, *, uri: str) -> None:
        super().__init__(msg)
        self.uri = uri


class BadSignatureError(SignatureError):
    """``SignatureValue`` does not verify over the EXI encoding of SignedInfo with the given key."""
