"""Where the test suite finds its data: everything is in the repository except the XSDs.

- ``VECTORS``: the golden EXI streams (``tests/data/vectors``, libcbv2g and EXIficient; ``found/``
  from libcbv2g's own tests; ``field/`` ~4,000 real-world streams), each folder with its provenance.
- ``ORACLE_DIR``: ``tools/``, which holds ``exificient_oracle.py`` (the EXIficient driver of the
  differential tests; the jar itself comes from ``tools/get_oracle_jar.sh``).
- ``schemas_dir()``: the V2G XSDs are ISO/DIN material and are not distributed here; the table
  generator's freshness test and the XSD-driven differential tests read them from the directory
  named by ``EXI_XSD_DIR`` (see the README, "Regenerating the tables") and skip without it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
VECTORS = DATA / "vectors"
FOUND = VECTORS / "found"
FIELD = VECTORS / "field"
ORACLE_DIR = REPO / "tools"
#: environment variable naming the XSD directory (the layout ``python -m exi.codegen`` reads)
XSD_ENV = "EXI_XSD_DIR"


def schemas_dir() -> Optional[Path]:
    """The XSD directory named by ``EXI_XSD_DIR``, or None when it is unset or not a directory."""
    value = os.environ.get(XSD_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    return path if path.is_dir() else None


def no_schemas_reason() -> str:
    return f"the V2G XSDs are not in the repository: set {XSD_ENV} to their directory to run this test"


def require_installed() -> None:
    """With ``PLUGCHARGE_REQUIRE_INSTALLED=1`` (set by .ci/run): stop the run when the packages come
    from the source tree instead of the installed wheel (tests/ and benches/ both check)."""
    if os.environ.get("PLUGCHARGE_REQUIRE_INSTALLED") != "1":
        return
    import exi
    import pki
    import plugcharge

    for mod in (exi, pki, plugcharge):
        where = Path(mod.__file__ or "").resolve()
        if REPO in where.parents:
            raise pytest.UsageError(f"{mod.__name__} imported from the source tree ({where}), not the installed wheel")
