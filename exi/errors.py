"""Typed errors of the EXI codec.

Every failure of :mod:`exi` is an :class:`EXIError`. Encoding errors name the dotted path of the
offending field and the rule broken; decoding errors give the bit offset in the stream and what the
grammar expected there.
"""
from __future__ import annotations

__all__ = ["EXIError", "EncodeError", "DecodeError", "UnknownNamespaceError"]


class EXIError(Exception):
    """Root of every error raised by the EXI codec."""


class UnknownNamespaceError(EXIError, ValueError):
    """``get_codec`` was given a namespace for which no schema set is compiled."""


class EncodeError(EXIError, ValueError):
    """A message dict does not fit the schema.

    Attributes:
        path: dotted path of the offending field, e.g. ``V2G_Message.Body.CurrentDemandReq.EVTargetCurrent.Value``.
        rule: short code of the broken rule: ``missing`` (required element or attribute absent),
            ``unknown`` (name not allowed here), ``range`` (value outside the facets), ``type``
            (wrong Python type), ``occurs`` (too many occurrences), ``length`` (too long / too short).
    """

    def __init__(self, path: str, rule: str, message: str) -> None:
        self.path = path
        self.rule = rule
        self.detail = message
        super().__init__(f"{path or '<root>'}: {message} [{rule}]")


class DecodeError(EXIError, ValueError):
    """A stream is not a valid EXI encoding for the schema.

    Attributes:
        bit_offset: position in the stream (in bits, header byte included) where decoding failed.
        expected: what the grammar expected at that point.
    """

    def __init__(self, bit_offset: int, expected: str, message: str = "") -> None:
        self.bit_offset = bit_offset
        self.expected = expected
        text = f"at bit {bit_offset} (byte {bit_offset // 8}): expected {expected}"
        if message:
            text += f": {message}"
        super().__init__(text)
