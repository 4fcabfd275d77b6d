"""Write docs/parameters.md: one table per command, generated from the workflow specs.

Every command that declares its options with a spec (``_cli/_spec.add_spec``)
gets a table (flag, default, unit, allowed values, meaning). Run it after
changing a spec; ``--check`` exits 1 when the file is out of date (the test
suite runs that).

Usage: ``python scripts/gen_parameter_docs.py [--check] [--out docs/parameters.md]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEADER = """# Parameters

Generated from the workflow specs by `python scripts/gen_parameter_docs.py`;
do not edit by hand. Each parameter is declared once, in its workflow's spec
(see [Architecture](architecture.md#parameters-one-spec-per-workflow)); the
CLI options, the docks' forms, the checks and these tables all come from it.
"(advanced)" parameters sit in the dock's collapsible *Advanced* group.
"""


def commands(parser: argparse.ArgumentParser, prefix: str = "napari-interfaces"):
    """``(command line, specs)`` for every sub-command that declares specs."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                specs = sub.get_default("_specs")
                if specs:
                    yield f"{prefix} {name}", specs
                yield from commands(sub, f"{prefix} {name}")


def render() -> str:
    from napari_interfaces.cli import build_parser
    from napari_interfaces.core.spec import markdown_table

    parts = [HEADER]
    for cmd, specs in commands(build_parser()):
        parts.append(f"\n## `{cmd}`\n")
        for spec in specs:
            doc = (spec.__doc__ or "").strip().splitlines()
            title = doc[0] if doc else spec.__name__
            parts.append(f"\n{title} (`{spec.__module__}.{spec.__name__}`)\n\n")
            parts.append(markdown_table(spec) + "\n")
    return "".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "parameters.md")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run python scripts/gen_parameter_docs.py")
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
