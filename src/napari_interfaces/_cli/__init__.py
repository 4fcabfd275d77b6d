"""CLI command modules; see :mod:`napari_interfaces.cli`.

Each module defines ``register(groups)``. Keep imports of heavy libraries
inside the command functions so ``napari-interfaces --help`` stays fast.
"""
