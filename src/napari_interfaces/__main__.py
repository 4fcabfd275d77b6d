"""``python -m napari_interfaces``: the same as the ``napari-interfaces`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
