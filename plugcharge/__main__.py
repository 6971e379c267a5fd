"""``python -m plugcharge``: the ``plugcharge`` command line (see :mod:`plugcharge.cli`)."""
import sys

from plugcharge.cli import main

if __name__ == "__main__":
    sys.exit(main())
