"""exi: schema-informed EXI codec for the V2G message sets.

``exi.get_codec(namespace)`` returns a :class:`Codec` for one schema set (AppProtocol, DIN SPEC 70121,
ISO 15118-2, the five ISO 15118-20 namespaces, and the xmldsig-only fragment grammar). Messages are
plain dicts shaped like the XML (see :class:`Codec`).

The engine is compiled with Cython (``IMPLEMENTATION == "compiled"``). ``EXI_IMPL=python`` selects
the pure-Python twin that runs the same logic over the same tables; it is never chosen silently.
"""
from __future__ import annotations

from exi._codec import NAMESPACES, Codec, get_codec
from exi._impl import IMPLEMENTATION
from exi.errors import DecodeError, EncodeError, EXIError, UnknownNamespaceError

__all__ = [
    "Codec",
    "DecodeError",
    "EncodeError",
    "EXIError",
    "IMPLEMENTATION",
    "NAMESPACES",
    "UnknownNamespaceError",
    "get_codec",
]
