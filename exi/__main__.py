"""``python -m exi``: the EXI codec's command line (see :mod:`exi.cli`)."""
import sys

from exi.cli import main

if __name__ == "__main__":
    sys.exit(main())
