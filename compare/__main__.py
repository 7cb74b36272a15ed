"""``python -m compare``: the command line (the same program as the console script ``concurrence``;
see :mod:`compare.engine.cli`)."""

import sys

from compare.engine.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m compare"))
