"""``python -m sda_lab``: see :mod:`sda_lab.interface.cli`."""

import sys

from . import _interrupted_while_starting

try:
    from .interface.cli import main
except KeyboardInterrupt:
    _interrupted_while_starting()

if __name__ == "__main__":
    sys.exit(main())
