"""Exception types of the Plug & Charge session layer (h11 style).

``LocalProtocolError`` means *our* caller asked for something the protocol does not allow in the
current state (a programming error on this side).  ``RemoteProtocolError`` means the *peer* broke
the protocol; it carries the ``ResponseCode`` of the agreed protocol a charger answers with
(``response_code``) and a short ``error_hint`` for logs.  Sessions never let either escape
``receive_data``: they turn a remote error into a ``ProtocolError`` event plus a clean session end.
A protocol's handlers raise :class:`Refused` (charger: answer this request with a FAILED code and
end) and :class:`Stop` (EV: give up on the session); the session core catches both.  Signature
problems have their own typed hierarchy under :class:`SignatureError`.

No message of any of these exceptions ever contains private key material.
"""
from __future__ import annotations

__all__ = [
    "PlugChargeError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "Refused",
    "Stop",
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
        #: responseCodeType literal of the agreed protocol that describes the fault (e.g. ``FAILED_SequenceError``).
        self.response_code = response_code
        #: Short, log-safe explanation (never contains key material).
        self.error_hint = error_hint if error_hint is not None else msg


class LocalProtocolError(_ProtocolErrorBase):
    """The local caller tried something the protocol state does not allow."""


class RemoteProtocolError(_ProtocolErrorBase):
    """The peer violated the protocol; ``response_code`` is what a charger answers with."""


class Refused(RemoteProtocolError):
    """A charger handler refuses the request it is handling with ``response_code``; the session core
    answers that request's response with the code and ends the session.  ``remote=False`` when the
    refusal is policy or the backend's answer (e.g. authorisation denied), not a fault of the EV."""

    def __init__(self, code: str, hint: str, *, remote: bool = True) -> None:
        super().__init__(hint, response_code=code, error_hint=hint)
        self.hint = hint
        self.remote = remote


class Stop(PlugChargeError):
    """An EV handler gives up on the session: ``reason`` is log-safe, ``code`` the ResponseCode that
    caused it (if any); ``graceful`` leaves with the protocol's stop request instead of just ending.
    The session core hands it back to the handler's ``give_up``."""

    def __init__(self, reason: str, code: str | None = None, *, graceful: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.code, self.graceful = reason, code, graceful


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
