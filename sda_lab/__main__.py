"""``python -m sda_lab``: see :mod:`sda_lab.interface.cli`."""

import sys

from .interface.cli import main

if __name__ == "__main__":
    sys.exit(main())
