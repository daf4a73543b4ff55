"""``python -m sda_lab``: see :mod:`sda_lab.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
