"""``python -m gyre.cli``: the ``gyre`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
