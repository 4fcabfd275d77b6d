"""Workflow parameter specs: every parameter is declared once.

A workflow's parameters are one frozen dataclass, a :class:`Spec`, whose
fields are made with :func:`param`. Each field carries its default, unit,
bounds, choices, a one-line help, the text shown for a sentinel value
(``None`` = "auto", "off", "unknown") and a basic/advanced flag. From that
one declaration

- the CLI options and ``--help`` are generated (``_cli/_spec.py``);
- the dock's magicgui form is generated, with tooltips, units in the labels,
  sentinel texts and advanced fields in a collapsible group
  (``_widgets/_form.py``);
- validation runs once, when the spec is made: a bad value raises
  :class:`~.errors.ParameterError` whose ``name`` is the *field* name; the CLI
  shows it as ``--flag``, the dock next to the field;
- the documentation's parameter tables are generated
  (:func:`markdown_table`, ``scripts/gen_parameter_docs.py``).

The engine receives validated specs and never sees a flag name. Specs are
plain frozen dataclasses of builtins and paths, so a dask batch sends them as
they are, and :meth:`Spec.to_dict` / :meth:`Spec.from_dict` write them to and
read them from JSON summaries.

Adding a parameter is one line in one spec::

    @dataclass(frozen=True)
    class ThresholdParams(Spec):
        level: float = param(0.5, "grey level that separates the phases", lo=0, hi=1)
        sigma: float | None = param(
            None, "Gaussian smoothing first", unit="px", lo=0, lo_open=True, none="off"
        )

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class P(Spec):
...     tile: int = param(256, "tile side", unit="px", lo=16, hi=4096)
>>> P().tile
256
>>> P(tile=8)
Traceback (most recent call last):
...
napari_interfaces.core.errors.ParameterError: tile: must be in [16, 4096], got 8
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import ParameterError

__all__ = ["Param", "Spec", "markdown_table", "param"]

_MISSING = dataclasses.MISSING


@dataclass(frozen=True)
class Param:
    """What one spec field declares (read it from :meth:`Spec.params`).

    Attributes
    ----------
    name : str
        The field's name (``merge_to``); the CLI spells it ``--merge-to``.
    kind : type
        ``int``, ``float``, ``str``, ``bool``, ``Path`` or ``tuple`` (a
        comma-separated list of ``item`` values).
    default : Any
        The default (``None`` for a sentinel such as "auto").
    help : str
        One line: what it does and its effect (the tooltip and ``--help``).
    unit : str or None
        Physical unit shown in labels and help ("Å", "nm", "px", "kV").
    lo, hi : float or None
        Bounds (inclusive unless ``lo_open``/``hi_open``); for tuples, each item.
    choices : tuple or None
        Allowed values.
    none : str or None
        What ``None`` means ("auto", "off", "unknown"); ``None`` is allowed
        only when this is set. The CLI also accepts this word.
    advanced : bool
        In the dock's collapsible "Advanced" group; in ``--help`` under
        "advanced options".
    item : type
        The type of a tuple's items.
    alias : str or None
        A shorter public name (``voxel`` for the field ``voxel_size``): the
        CLI's option is ``--`` + the alias (or the name) with dashes.
    label : str or None
        The dock's label when it is not the name with spaces.
    positional : bool
        A CLI positional argument (input files), not an option.
    nargs : str or None
        For positionals and lists of paths: ``"?"``, ``"+"`` or ``"*"``.
    cli, gui : bool
        Whether the CLI / the dock form shows it (paths are often CLI only:
        the dock works on layers).
    step : float or None
        The dock's spin-box step.
    metavar : str, tuple of str or None
        The CLI's placeholder (default: the unit or the upper-case name); a
        tuple names each of ``nargs`` values (``Q0 C POWER``).
    group : str or None
        A heading of its own in ``--help`` (e.g. "series"); advanced fields
        without one go under "advanced options".
    choice_labels : tuple of (value, text) pairs or None
        What the dock shows for a choice ("iso" -> "iso-concentration"); the
        CLI and the engine use the values.
    """

    name: str
    kind: type
    default: Any
    help: str
    unit: str | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None
    none: str | None = None
    advanced: bool = False
    item: type = float
    alias: str | None = None
    label: str | None = None
    positional: bool = False
    nargs: str | None = None
    cli: bool = True
    gui: bool = True
    step: float | None = None
    metavar: str | tuple[str, ...] | None = None
    group: str | None = None
    choice_labels: tuple[tuple[Any, str], ...] | None = None

    def choice_text(self, value: Any) -> str:
        """The dock's text for a choice (its label, else the value)."""
        return dict(self.choice_labels or ()).get(value, str(value))

    @property
    def cli_flag(self) -> str:
        """``--merge-to`` (from the alias, if any; the metavar for a positional)."""
        if self.positional:
            return self.metavar if isinstance(self.metavar, str) else self.name.upper()
        return "--" + (self.alias or self.name).replace("_", "-")

    @property
    def gui_label(self) -> str:
        """``pixel size (Å)``: the label with its unit."""
        name = self.name
        if self.label is None and self.unit and name.lower().endswith("_" + self.unit.lower()):
            name = name[: -len(self.unit) - 1]  # energy_kv -> "energy (kV)"
        text = self.label or name.replace("_", " ")
        return f"{text} ({self.unit})" if self.unit and f"({self.unit})" not in text else text

    def range_text(self) -> str:
        """``[0.1, 100]``, ``> 0``, ``one of a, b`` or ``""``."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        lo = None if self.lo is None else f"{self.lo:g}"
        hi = None if self.hi is None else f"{self.hi:g}"
        if lo is not None and hi is not None:
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            return f"{left}{lo}, {hi}{right}"
        if lo is not None:
            return f"{'>' if self.lo_open else '≥'} {lo}"
        if hi is not None:
            return f"{'<' if self.hi_open else '≤'} {hi}"
        return ""

    def unit_and_range(self) -> list[str]:
        """``["nm", "(0, 10]"]``: the unit and the range text, where there are any.

        What the CLI's help and the dock's tooltip add to the help text.
        """
        return [text for text in (self.unit, self.range_text()) if text]

    def check(self, value: Any) -> Any:
        """The value converted to :attr:`kind` and checked; raises :class:`ParameterError`."""
        if value is None or (isinstance(value, str) and self.none and value == self.none):
            if self.none is None and not (self.kind is Path and self.default is None):
                raise ParameterError(self.name, "a value is required")
            return None
        if self.kind is tuple:
            if isinstance(value, int | float | Path) and not isinstance(value, bool):
                value = (value,)  # one number: a list of one
            items = _split(value) if isinstance(value, str) else value
            try:
                items = tuple(items)
            except TypeError:
                raise ParameterError(self.name, f"expected a list, got {value!r}") from None
            if not items and self.default != () and self.nargs != "*":
                raise ParameterError(self.name, f"expected at least one value, got {value!r}")
            return tuple(self._one(v) for v in items)
        if self.nargs in ("+", "*") and isinstance(value, list | tuple):
            return tuple(self._one(v) for v in value)
        return self._one(value)

    def _one(self, value: Any) -> Any:
        kind = self.item if self.kind is tuple else self.kind
        if kind is bool:
            if isinstance(value, bool):
                return value
            raise ParameterError(self.name, f"must be true or false, got {value!r}")
        if kind in (int, float):
            value = _number(self.name, value, integer=kind is int)
            self._bounds(value)
        elif kind is Path:
            value = Path(value)
        elif kind is str:
            if not isinstance(value, str):
                raise ParameterError(self.name, f"must be text, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                self.name, f"must be one of {', '.join(map(str, self.choices))}; got {value!r}"
            )
        return value

    def _bounds(self, x: float) -> None:
        bad_lo = self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo)
        bad_hi = self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi)
        if bad_lo or bad_hi:
            rng = self.range_text()
            where = "in " if rng[:1] in "[(" else ""
            raise ParameterError(self.name, f"must be {where}{rng}, got {x:g}")


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]


def _number(name: str, value: Any, integer: bool) -> int | float:
    what = "an integer" if integer else "a number"
    if isinstance(value, bool):
        raise ParameterError(name, f"must be {what}, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, f"must be {what}, got {value!r}") from None
    except OverflowError:
        raise ParameterError(name, f"must be finite, got {value!r}") from None
    if not math.isfinite(x):
        raise ParameterError(name, f"must be finite, got {value!r}")
    if integer:
        if x != int(x):
            raise ParameterError(name, f"must be an integer, got {value!r}")
        return int(x)
    return x


def param(
    default: Any,
    help: str,  # noqa: A002 - the field's help text
    *,
    unit: str | None = None,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    choices: tuple | list | None = None,
    none: str | None = None,
    advanced: bool = False,
    item: type = float,
    alias: str | None = None,
    label: str | None = None,
    positional: bool = False,
    nargs: str | None = None,
    cli: bool = True,
    gui: bool = True,
    step: float | None = None,
    metavar: str | tuple[str, ...] | None = None,
    group: str | None = None,
    choice_labels: Mapping[Any, str] | None = None,
) -> Any:
    """A spec field with everything a front end needs to show and check it.

    The field's type comes from its annotation (``int | None`` = an integer
    or the sentinel ``none``); see :class:`Param` for the options.
    """
    if not help:
        raise ValueError("every parameter needs a one-line help")
    info = dict(
        help=help,
        unit=unit,
        lo=lo,
        hi=hi,
        lo_open=lo_open,
        hi_open=hi_open,
        choices=tuple(choices) if choices is not None else None,
        none=none,
        advanced=advanced,
        item=item,
        alias=alias,
        label=label,
        positional=positional,
        nargs=nargs,
        cli=cli,
        gui=gui,
        step=step,
        metavar=metavar,
        group=group,
        choice_labels=tuple(choice_labels.items()) if choice_labels else None,
    )
    if choice_labels and choices is not None:
        unknown = set(choice_labels) - set(choices)
        if unknown:
            raise ValueError(f"choice_labels for values that are not choices: {unknown}")
    if isinstance(default, list | dict | set):
        raise TypeError("spec defaults must be immutable (use a tuple)")
    return field(default=default, metadata={"param": info})


_KINDS = (bool, int, float, str, Path, tuple)


def _kind(annotation: Any) -> type:
    """``int | None`` -> int; ``tuple[float, ...]`` -> tuple; ``Path | None`` -> Path."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return str if str in args else _kind(args[0])
        return _kind(args[0])
    if origin is tuple or annotation is tuple:
        return tuple
    if origin is typing.Literal:
        return type(typing.get_args(annotation)[0])
    if annotation in _KINDS:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return Path
    raise TypeError(f"unsupported spec field type {annotation!r}")


@dataclass(frozen=True)
class Spec:
    """Base class of a workflow's parameters (a frozen dataclass of :func:`param` fields).

    Making an instance validates every field (and :meth:`check` for rules
    that tie fields together); values are converted to their declared type
    (``"4"`` -> 4, ``"1,2"`` -> ``(1.0, 2.0)``). ``spec.replace(k=v)``
    gives a new, validated spec.
    """

    _params_cache: ClassVar[dict[type, tuple[Param, ...]]] = {}

    def __post_init__(self) -> None:
        for p in self.params():
            value = getattr(self, p.name)
            checked = p.check(value)
            if checked is not value:
                object.__setattr__(self, p.name, checked)
        self.check()

    def check(self) -> None:
        """Rules between fields; raise :class:`ParameterError` naming a field. Override."""

    def required(self, *names: str, what: str | None = None) -> Any:
        """The value of the field ``names[-1]``, once none of ``names`` is ``None``.

        For paths that are optional in the spec (``Path | None``: the docks use
        layers) but required by a command: the first one left out raises
        :class:`ParameterError` (``"required: give <what>"``, else ``"a value is
        required"``).
        """
        value = None
        for name in names:
            value = getattr(self, name)
            if value is None:
                raise ParameterError(
                    name, f"required: give {what}" if what else "a value is required"
                )
        return value

    @classmethod
    def params(cls) -> tuple[Param, ...]:
        """The declared parameters, in order."""
        cached = Spec._params_cache.get(cls)
        if cached is not None:
            return cached
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            info = f.metadata.get("param")
            if info is None:
                continue
            default = f.default if f.default is not _MISSING else None
            out.append(Param(name=f.name, kind=_kind(hints[f.name]), default=default, **info))
        Spec._params_cache[cls] = result = tuple(out)
        return result

    @classmethod
    def param_of(cls, name: str) -> Param:
        """The :class:`Param` called ``name``."""
        for p in cls.params():
            if p.name == name:
                return p
        raise KeyError(name)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, strict: bool = True) -> Spec:
        """A spec from a mapping (e.g. a JSON summary); unknown keys raise unless ``strict=False``."""
        names = {p.name for p in cls.params()}
        unknown = set(values) - names
        if unknown and strict:
            raise ParameterError(sorted(unknown)[0], f"not a parameter of {cls.__name__}")
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (paths as text, tuples as lists)."""
        out: dict[str, Any] = {}
        for p in self.params():
            v = getattr(self, p.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = [str(x) if isinstance(x, Path) else x for x in v]
            out[p.name] = v
        return out

    @classmethod
    def of(cls, params: Spec | None = None, /, **values: Any) -> Spec:
        """The engine's entry: ``params`` as given, with ``values`` applied, validated once.

        ``segment(img, params)`` and ``segment(img, chip=32)`` both work; a spec
        of another class is refused.
        """
        if params is None:
            return cls(**values)
        if not isinstance(params, cls):
            raise TypeError(f"expected {cls.__name__}, got {type(params).__name__}")
        return params.replace(**values) if values else params

    def replace(self, **changes: Any) -> Spec:
        """A new spec with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def markdown_table(spec: type[Spec], *, cli: bool = True) -> str:
    """The documentation table of a spec: flag, default, unit, range, meaning.

    Parameters
    ----------
    spec : Spec subclass
    cli : bool
        Show the CLI spelling (``--merge-to``); otherwise the field name.
    """
    rows = ["| parameter | default | unit | allowed | meaning |", "|---|---|---|---|---|"]
    for p in spec.params():
        if cli and not p.cli:
            continue
        name = p.cli_flag if cli else p.name
        if p.default is None:
            default = p.none or "–"
        elif isinstance(p.default, tuple):
            default = ",".join(map(str, p.default))
        else:
            default = str(p.default)
        allowed = p.range_text()
        if p.none and p.default is not None:
            allowed = f"{allowed}; {p.none}" if allowed else p.none
        adv = " (advanced)" if p.advanced else ""
        text = p.help.replace("|", "\\|")
        rows.append(
            f"| `{name}` | {default} | {p.unit or ''} | {allowed.replace('|', '/')} | "
            f"{text}{adv} |"
        )
    return "\n".join(rows)
