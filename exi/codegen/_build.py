"""Build step: the EXI grammar tables, made from the XSDs before the package is built.

    python exi/codegen/_build.py OUT_DIR

``setup.py`` runs this file as a script (by its path) before it collects the package's modules.
The tables are generated from the ISO 15118 and DIN SPEC 70121 XSDs, which are not distributed with
plugcharge, so they are not in the repository either:

* with ``EXI_XSD_DIR`` set, every table module is generated into OUT_DIR from the XSDs there (about
  a second);
* without it, the tables already in OUT_DIR (generated before in this checkout, by an earlier build
  or by ``python -m exi.codegen``) are used as they are;
* without either, it stops with exit status 2 and a message saying what to do.

It runs as a script so that it does not import the ``exi`` package itself: the package's compiled
engine is built after this step.
"""
from __future__ import annotations

import os
import sys
import types

_EXI_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NO_XSDS = (
    "plugcharge: the EXI grammar tables (exi/_generated) are generated from the ISO 15118 and DIN SPEC "
    "70121 XSDs, which are not distributed with plugcharge, and none were generated in this checkout "
    "yet. Set EXI_XSD_DIR to a directory holding the XSDs (README: 'The XSDs and regenerating the "
    "tables' says where to get them and how to lay them out) and build again."
)


def _codegen() -> types.ModuleType:
    """exi.codegen.emit, imported with ``exi`` as a bare package (its __init__ not run)."""
    pkg = types.ModuleType("exi")
    pkg.__path__ = [_EXI_DIR]
    sys.modules["exi"] = pkg
    from exi.codegen import emit

    return emit


def missing_tables(out_dir: str, names: list[str]) -> list[str]:
    """The schema sets of ``names`` whose table module is not in ``out_dir``."""
    return [n for n in names if not os.path.isfile(os.path.join(out_dir, f"{n}.py"))]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python exi/codegen/_build.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = argv[1]
    emit = _codegen()
    xsd_dir = os.environ.get("EXI_XSD_DIR", "").strip()
    if xsd_dir:
        if not os.path.isdir(xsd_dir):
            print(f"plugcharge: EXI_XSD_DIR={xsd_dir} is not a directory", file=sys.stderr)
            return 2
        try:
            written = emit.generate_all(xsd_dir, out_dir)
        except (OSError, ValueError, KeyError, SyntaxError) as exc:  # a missing or unexpected XSD
            print(f"plugcharge: could not generate the EXI grammar tables from {xsd_dir}: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        print(f"plugcharge: generated {len(written)} EXI table modules from the XSDs in {xsd_dir}")
        return 0
    missing = missing_tables(out_dir, sorted(emit.SCHEMA_SETS))
    if missing:
        print(_NO_XSDS + f" (missing: {', '.join(missing)})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
