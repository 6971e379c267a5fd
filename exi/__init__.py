"""exi: schema-informed EXI codec for the V2G message sets.

``exi.get_codec(namespace)`` returns a :class:`Codec` for one schema set (AppProtocol, DIN SPEC 70121,
ISO 15118-2, the five ISO 15118-20 namespaces, and the xmldsig-only fragment grammar). Messages are
plain dicts shaped like the XML (see :class:`Codec`).

The engine is compiled with Cython (``IMPLEMENTATION == "compiled"``). ``EXI_IMPL=python`` selects
the pure-Python twin that runs the same logic over the same tables; it is never chosen silently.
"""
from __future__ import annotations

import os

from exi.errors import DecodeError, EncodeError, EXIError, UnknownNamespaceError

if os.environ.get("EXI_IMPL", "").strip().lower() == "python":
    from exi import _engine as _eng

    IMPLEMENTATION = "python"
else:
    try:
        from exi import _cengine as _eng  # type: ignore[no-redef]
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ImportError(
            "exi: the compiled EXI engine (exi._cengine) was not built. Build it with "
            "'python setup.py build_ext --inplace' (needs Cython and a C compiler), or set "
            "EXI_IMPL=python to use the slow pure-Python engine explicitly."
        ) from exc
    IMPLEMENTATION = "compiled"

from exi._codec import NAMESPACES, SHORT_NAMES, Codec, get_codec  # noqa: E402

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
