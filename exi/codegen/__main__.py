"""``python -m exi.codegen --xsd-dir ../shared/schemas [--out exi/_generated]``: regenerate the tables."""
from __future__ import annotations

import argparse
import os

from exi.codegen.emit import SCHEMA_SETS, generate_all


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m exi.codegen", description=__doc__)
    ap.add_argument("--xsd-dir", required=True, help="directory holding the V2G XSDs (../shared/schemas)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_generated"))
    ap.add_argument("--only", nargs="*", choices=sorted(SCHEMA_SETS), help="generate only these sets")
    args = ap.parse_args()
    for path in generate_all(args.xsd_dir, args.out, args.only):
        print("wrote", path)


if __name__ == "__main__":
    main()
