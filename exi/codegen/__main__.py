"""``python -m exi.codegen [--xsd-dir DIR] [--out exi/_generated]``: regenerate the tables.

DIR holds the V2G XSDs (not distributed with plugcharge; the README says where to get them) in the
layout ``app_handshake/``, ``din70121/``, ``iso15118_2/``, ``iso15118_20/`` and
``xmldsig-core-schema.xsd``; without ``--xsd-dir`` the ``EXI_XSD_DIR`` environment variable names it.
"""
from __future__ import annotations

import argparse
import os

from exi.codegen.emit import SCHEMA_SETS, generate_all


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m exi.codegen", description=__doc__)
    ap.add_argument("--xsd-dir", default=os.environ.get("EXI_XSD_DIR") or None,
                    help="directory holding the V2G XSDs (default: $EXI_XSD_DIR)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_generated"),
                    help="directory the table modules are written to (default: exi/_generated of this checkout)")
    ap.add_argument("--only", nargs="*", choices=sorted(SCHEMA_SETS), metavar="SET",
                    help=f"generate only these schema sets (of: {', '.join(sorted(SCHEMA_SETS))})")
    args = ap.parse_args()
    if not args.xsd_dir:
        ap.error("the XSD directory is needed: give --xsd-dir DIR or set EXI_XSD_DIR (see the README)")
    for path in generate_all(args.xsd_dir, args.out, args.only):
        print("wrote", path)


if __name__ == "__main__":
    main()
