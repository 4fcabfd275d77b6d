"""Command line interface: ``napari-interfaces <command> ...``.

The CLI calls the same engine as the napari docks. Commands are contributed
by the modules in :mod:`napari_interfaces._cli` listed in
:data:`COMMAND_MODULES`; each defines ``register(groups)`` where ``groups``
maps a group name (``"root"``, ``"apt"``, ``"simulate"``) to an ``argparse``
sub-parsers object, and each command sets ``func=callable(args) -> int``.

Exit status: 0 on success; 2 for the user's own mistakes, printed as one
line ``napari-interfaces: error: ...`` -- bad arguments (argparse), a
:class:`~napari_interfaces.core.errors.InputError` (bad file, parameter or
output path) or an :class:`OSError` (missing file, no permission, ...);
130 on Ctrl-C. Any other exception is a bug and keeps its traceback
(exit status 1).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .core.errors import InputError

__all__ = ["build_parser", "main"]

#: Command modules under ``napari_interfaces._cli``, imported in this order.
COMMAND_MODULES = (
    "info",
    "demo",
    "apt_data",
    "apt_interfaces",
    "apt_clusters",
    "simulate_hrtem",
    "simulate_database",
    "segment",
    "cluster",
    "classify",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="napari-interfaces",
        description=(
            "Find interfaces and phases in materials data: atom probe tomography, "
            "micrographs and simulated HRTEM."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    root = parser.add_subparsers(dest="command", metavar="COMMAND")
    apt = root.add_parser("apt", help="atom probe tomography: info, synth, voxelize, segment")
    apt_sub = apt.add_subparsers(dest="apt_command", metavar="APT_COMMAND")
    apt.set_defaults(func=lambda args: _group_help(apt))
    sim = root.add_parser("simulate", help="HRTEM simulation: structure, image, database")
    sim_sub = sim.add_subparsers(dest="simulate_command", metavar="SIMULATE_COMMAND")
    sim.set_defaults(func=lambda args: _group_help(sim))
    groups = {"root": root, "apt": apt_sub, "simulate": sim_sub}
    for name in COMMAND_MODULES:
        # A missing module is a packaging bug: let it raise, never hide a command.
        importlib.import_module(f"napari_interfaces._cli.{name}").register(groups)
    return parser


def _group_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a user error never spans lines)."""
    text = str(exc) or type(exc).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _as_flag(exc: BaseException, args: argparse.Namespace) -> BaseException | str:
    """The message with each parameter reference spelled as its flag (``merge_to`` -> ``--merge-to``).

    The engine names parameters by spec field (see :func:`.core.errors.ref`);
    a field of the command's specs takes its declared flag, any other
    ``--`` + the name with dashes.
    """
    if not isinstance(exc, InputError):
        return exc
    flags = {
        p.name: p.cli_flag for spec in getattr(args, "_specs", ()) for p in spec.params() if p.cli
    }
    return exc.spelled(lambda name: flags.get(name) or "--" + name.replace("_", "-"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-interfaces`` console script."""
    from .core.config import configure_numba_cache

    configure_numba_cache()  # this process only; never on a plain import of the package
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (InputError, OSError) as exc:
        print(f"napari-interfaces: error: {one_line(_as_flag(exc, args))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-interfaces: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
