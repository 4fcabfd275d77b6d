"""CLI options generated from workflow specs (:mod:`napari_interfaces.core.spec`).

``add_spec(parser, ClusterParams)`` adds one option per CLI field: the flag
is the field name with dashes (``merge_to`` -> ``--merge-to``) unless the
field declares another, the help carries the unit, range, default and the
sentinel word, and advanced fields are listed under "advanced options".
argparse keeps the raw text; the spec converts and checks it, so a bad
value gives the same one-line message as in the dock, with the flag
(``cli.main`` spells the field as its flag).

``spec_from_args(ClusterParams, args)`` makes the validated spec.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core.spec import Param, Spec

__all__ = ["add_spec", "spec_from_args"]


def _help(p: Param) -> str:
    bits = p.unit_and_range()
    if p.default is None:
        if p.none:
            bits.append(f"default: {p.none}")
    elif p.kind is bool:
        pass
    elif isinstance(p.default, tuple):
        if p.default:
            bits.append("default: " + ",".join(map(str, p.default)))
    else:
        bits.append(f"default: {p.default}")
        if p.none:
            bits.append(f"'{p.none}' allowed")
    text = p.help.replace("%", "%%")
    return f"{text} ({'; '.join(bits)})" if bits else text


def add_spec(
    parser: argparse.ArgumentParser,
    *specs: type[Spec],
    skip: tuple[str, ...] = (),
) -> None:
    """Add the CLI fields of ``specs`` to ``parser``.

    Fields with a ``group`` get that heading in ``--help``; advanced ones
    without a group go under "advanced options".
    """
    groups: dict[str, Any] = {}
    known = list(parser.get_default("_specs") or ())
    for spec in specs:
        for p in spec.params():
            if not p.cli or p.name in skip:
                continue
            target: Any = parser
            title = p.group or ("advanced options" if p.advanced else None)
            if title and not p.positional:
                if title not in groups:
                    groups[title] = _group(parser, title)
                target = groups[title]
            _add(target, p)
        known.append(spec)
    parser.set_defaults(_specs=tuple(known))


def add_command(
    group: Any,
    name: str,
    func: Any,
    *specs: type[Spec],
    help: str,  # noqa: A002 - argparse's option name
    description: str,
    epilog: str | None = None,
    skip: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` to ``group``: options from ``specs``, run by ``func(args)``.

    Returns the subcommand's parser (for a second :func:`add_spec`).
    """
    parser = group.add_parser(name, help=help, description=description, epilog=epilog)
    add_spec(parser, *specs, skip=skip)
    parser.set_defaults(func=func)
    return parser


def _group(parser: argparse.ArgumentParser, title: str) -> Any:
    """The parser's argument group called ``title`` (made once, reused by later calls)."""
    for group in parser._action_groups:  # noqa: SLF001 - argparse has no public lookup
        if group.title == title:
            return group
    return parser.add_argument_group(title)


def _add(target: Any, p: Param) -> None:
    action = _add_action(target, p)
    action.spec_param = p  # what the option is (tests and docs read it; argparse ignores it)


def _add_action(target: Any, p: Param) -> argparse.Action:
    kw: dict[str, Any] = {"help": _help(p)}
    if p.positional:
        kw["metavar"] = p.metavar or p.name.upper()
        if p.nargs:
            kw["nargs"] = p.nargs
        if p.nargs in ("?", "*") or p.default is not None:
            kw["default"] = p.default
        return target.add_argument(p.name, **kw)
    flag = p.cli_flag
    if p.kind is bool:
        if p.default:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["action"] = "store_true"
        kw["default"] = bool(p.default)
        return target.add_argument(flag, dest=p.name, **kw)
    kw["default"] = p.default
    kw["metavar"] = p.metavar or (
        "{" + ",".join(map(str, p.choices)) + "}"
        if p.choices and len(p.choices) <= 6
        else (p.unit or p.name.upper().replace("_", "-"))
    )
    if p.nargs:
        kw["nargs"] = p.nargs
    if p.nargs in ("+", "*"):
        # a repeated option adds to the list (--defect twin --defect stacking_fault);
        # not given: None here, the spec's default in spec_from_args
        kw["action"], kw["default"] = "extend", None
    return target.add_argument(flag, dest=p.name, **kw)


def _list_not_given(p: Param, value: Any) -> bool:
    return value is None and p.nargs in ("+", "*") and not p.positional


def spec_from_args(spec: type[Spec], args: argparse.Namespace, **overrides: Any) -> Spec:
    """The validated spec from parsed arguments (plus ``overrides`` the command fills)."""
    values = {
        p.name: getattr(args, p.name)
        for p in spec.params()
        if p.cli
        and hasattr(args, p.name)
        and p.name not in overrides
        and not _list_not_given(p, getattr(args, p.name))
    }
    values.update(overrides)
    if any(p.nargs in ("+", "*") for p in spec.params()):
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items()}
    return spec(**values)
