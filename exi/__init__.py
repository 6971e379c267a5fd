"""exi: schema-informed EXI codec for the V2G message sets.

``exi.get_codec(namespace)`` returns a :class:`Codec` for one schema set (AppProtocol, DIN SPEC 70121,
ISO 15118-2, the five ISO 15118-20 namespaces, and the xmldsig-only fragment grammar). Messages are
plain dicts shaped like the XML (see :class:`Codec`).

The engine is compiled with Cython (``IMPLEMENTATION == "compiled"``). ``EXI_IMPL=python`` selects
the pure-Python twin that runs the same logic over the same tables; it is never chosen silently.
"""
from __future__ import annotations

from exi._codec import NAMESPACES, SHORT_NAMES, Codec, get_codec
from exi._impl import IMPLEMENTATION
from exi.errors import DecodeError, EncodeError, EXIError, UnknownNamespaceError

__all__ = [
    "Codec",
    "DecodeError",
    "EncodeError",
    "EXIError",
    "IMPLEMENTATION",
    "NAMESPACES",
    "SHORT_NAMES",
    "UnknownNamespaceError",
    "get_codec",
]


def __dir__() -> list[str]:
    """The public API only (``dir(exi)``): no imported helpers or the engine module."""
    return sorted(__all__)
