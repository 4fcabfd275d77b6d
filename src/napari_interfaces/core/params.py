"""Parameter checks with the parameter's name in the message.

Each command validates all its parameters in one place (its ``validate``
function or the workflow's entry) with these helpers, before any file is
written; a bad value raises :class:`~.errors.ParameterError` (one line,
exit status 2 in the CLI).

Examples
--------
>>> positive("tile", 256, integer=True)
256
>>> positive("tile", 0, integer=True)
Traceback (most recent call last):
...
napari_interfaces.core.errors.ParameterError: tile: must be a positive integer, got 0
"""

from __future__ import annotations

import math
from typing import Any

from .errors import ParameterError

__all__ = ["fraction", "in_range", "non_negative", "one_of", "positive"]


def _number(name: str, value: Any, integer: bool) -> float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool):
        raise ParameterError(name, f"must be {kind}, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, f"must be {kind}, got {value!r}") from None
    except OverflowError:  # an int beyond float range
        raise ParameterError(name, f"must be finite, got {value!r}") from None
    if not math.isfinite(x):
        raise ParameterError(name, f"must be finite, got {value!r}")
    if integer and x != int(x):
        raise ParameterError(name, f"must be an integer, got {value!r}")
    return x


def positive(name: str, value: Any, *, integer: bool = False, maximum: float | None = None):
    """``value > 0`` (and ``<= maximum``); returns it as int or float."""
    x = _number(name, value, integer)
    if x <= 0:
        kind = "a positive integer" if integer else "positive"
        raise ParameterError(name, f"must be {kind}, got {value!r}")
    if maximum is not None and x > maximum:
        raise ParameterError(name, f"must be at most {maximum:g}, got {value!r}")
    return int(x) if integer else x


def non_negative(name: str, value: Any, *, integer: bool = False, maximum: float | None = None):
    """``value >= 0`` (and ``<= maximum``); returns it as int or float."""
    x = _number(name, value, integer)
    if x < 0:
        raise ParameterError(name, f"must be zero or more, got {value!r}")
    if maximum is not None and x > maximum:
        raise ParameterError(name, f"must be at most {maximum:g}, got {value!r}")
    return int(x) if integer else x


def in_range(
    name: str,
    value: Any,
    lo: float,
    hi: float,
    *,
    integer: bool = False,
    lo_open: bool = False,
    hi_open: bool = False,
):
    """``lo <= value <= hi`` (open ends with ``lo_open``/``hi_open``)."""
    x = _number(name, value, integer)
    bad_lo = x <= lo if lo_open else x < lo
    bad_hi = x >= hi if hi_open else x > hi
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ParameterError(name, f"must be in {left}{lo:g}, {hi:g}{right}, got {value!r}")
    return int(x) if integer else x


def fraction(name: str, value: Any, *, allow_zero: bool = True, allow_one: bool = False) -> float:
    """A fraction in ``[0, 1)`` by default."""
    return in_range(name, value, 0.0, 1.0, lo_open=not allow_zero, hi_open=not allow_one)


def one_of(name: str, value: Any, choices) -> Any:
    """``value in choices``."""
    try:
        ok = value in choices
    except TypeError:  # unhashable value, set of choices
        ok = False
    if not ok:
        raise ParameterError(name, f"must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value
