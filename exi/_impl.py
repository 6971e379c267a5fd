"""Which engine runs: the compiled one (``exi._cengine``) or, with ``EXI_IMPL=python``, its pure-Python twin.

Both :mod:`exi` and :mod:`exi._codec` take ``_eng`` from here, so the package and its codec module do
not import each other.
"""
from __future__ import annotations

import os

__all__ = ["IMPLEMENTATION"]

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
