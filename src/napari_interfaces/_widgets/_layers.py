"""Layer glue shared by the docks: physical pixel size, layer kwargs, result layers.

Every layer the plugin makes carries ``scale`` and ``units`` (Å or nm) taken
from its source. These helpers are the one place that reads a pixel (voxel)
size from a layer and builds the keyword arguments of a new one.

Examples
--------
>>> import numpy as np
>>> from napari.layers import Image
>>> img = Image(np.zeros((8, 8)), scale=(0.125, 0.125), units="angstrom", name="sim")
>>> pixel_size_from_layer(img)
(0.125, 'Å')
>>> to_nm(0.125, "Å")
0.0125
>>> kw = layer_kwargs(0.125, "Å", ndim=2, name="labels [sim]")
>>> kw["scale"], kw["units"]
((0.125, 0.125), ('Å', 'Å'))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.units import UNIT_ALIASES

if TYPE_CHECKING:
    import napari

__all__ = [
    "add_or_update_layer",
    "canonical_unit",
    "layer_kwargs",
    "pixel_size_from_layer",
    "result_name",
    "to_angstrom",
    "to_nm",
    "unique_name",
    "mark_written",
    "was_edited",
]

#: Spellings of length units -> canonical names: the one unit table, in core/units.py.
_ALIASES = UNIT_ALIASES

#: A result marker set on layers the plugin made; cleared when the user edits them.
_EDITED_KEY = "napari_interfaces_user_edited"


def canonical_unit(unit: Any) -> str:
    """Canonical spelling of a length unit: ``"Å"``, ``"nm"``, ``"µm"``, ... or ``"pixel"``.

    Accepts strings (``"angstrom"``, ``"Å"``, ``"nanometer"``) and pint units
    (napari ≥ 0.5 ``layer.units``). Unknown units are returned as ``str(unit)``.

    >>> canonical_unit("angstrom"), canonical_unit("nanometer"), canonical_unit(None)
    ('Å', 'nm', 'pixel')
    """
    if unit is None:
        return "pixel"
    text = str(unit).strip()
    return _ALIASES.get(text.lower(), _ALIASES.get(text, text))


def _length(unit: Any) -> float | None:
    """Å per ``unit`` from the plugin's one unit table; ``None`` for pixels / non-lengths."""
    from ..core.units import to_angstrom as _to_angstrom

    u = canonical_unit(unit)
    return None if u == "pixel" else _to_angstrom(1.0, u)


def _factor(unit: Any) -> float:
    f = _length(unit)
    if f is None:
        from ..core.errors import InputError

        raise InputError(f"unit {unit!r} is not a length unit (expected Å or nm)")
    return f


def to_angstrom(value: float, unit: Any) -> float:
    """Convert a length ``value`` in ``unit`` to Å.

    >>> to_angstrom(0.2, "nm")
    2.0
    """
    return float(value) * _factor(unit)


def to_nm(value: float, unit: Any) -> float:
    """Convert a length ``value`` in ``unit`` to nm.

    >>> to_nm(2.0, "Å")
    0.2
    """
    return float(value) * _factor(unit) / 10.0


def _from_metadata(md: dict) -> tuple[float | None, str]:
    for key, default_unit in (("pixel_size", "Å"), ("voxel_size", "nm")):
        value = md.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple, np.ndarray)):
            value = np.asarray(value, float).ravel()[-1] if np.size(value) else None
        try:
            size = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(size) or size <= 0:
            continue
        unit = md.get(f"{key}_unit") or md.get("unit") or default_unit
        return size, canonical_unit(unit)
    return None, "pixel"


def pixel_size_from_layer(layer: Any, axis: int = -1) -> tuple[float | None, str]:
    """The physical pixel (voxel) size of ``layer`` along ``axis`` and its unit.

    Reads ``layer.scale`` and ``layer.units`` (pint units in napari ≥ 0.5).
    When the units are pixels (napari's default, i.e. no physical unit), falls
    back to ``layer.metadata["pixel_size"]`` (Å unless
    ``metadata["pixel_size_unit"]`` / ``metadata["unit"]`` says otherwise) or
    ``metadata["voxel_size"]`` (nm by default).

    Parameters
    ----------
    layer : napari.layers.Layer
        Any layer (or an object with ``scale``, ``units``, ``metadata``).
    axis : int
        Which axis' size to return (default: the last, x).

    Returns
    -------
    size : float or None
        Pixel size in ``unit``; ``None`` when the layer records no physical size.
    unit : str
        ``"Å"``, ``"nm"`` (other length units are converted to nm) or ``"pixel"``.
    """
    scale = getattr(layer, "scale", None)
    units = getattr(layer, "units", None)
    md = getattr(layer, "metadata", None) or {}
    unit = "pixel"
    if units is not None and len(units):
        try:
            unit = canonical_unit(units[axis])
        except IndexError:
            unit = "pixel"
    if unit != "pixel" and scale is not None and len(scale):
        size = float(scale[axis])
        if unit not in ("Å", "nm") and _length(unit) is not None:
            size, unit = to_nm(size, unit), "nm"
        if math.isfinite(size) and size > 0:
            return size, unit
    return _from_metadata(md)


def _sizes(pixel_size: Any, ndim: int | None) -> tuple[float, ...]:
    if np.ndim(pixel_size) == 0:
        n = ndim or 2
        return (float(pixel_size),) * n
    sizes = tuple(float(s) for s in pixel_size)
    if ndim is not None and len(sizes) != ndim:
        if len(sizes) > ndim:
            sizes = sizes[-ndim:]
        else:
            sizes = (1.0,) * (ndim - len(sizes)) + sizes
    return sizes


def layer_kwargs(
    grid_or_pixel_size: Any = None,
    unit: str | None = None,
    *,
    ndim: int | None = None,
    name: str | None = None,
    source_layer: Any = None,
    translate: Sequence[float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments (``scale``, ``translate``, ``units``, ``name``) for a new layer.

    Parameters
    ----------
    grid_or_pixel_size : Grid, float, sequence of float, or None
        A :class:`napari_interfaces.core.geometry.Grid` (or any object with
        ``spacing``, ``origin`` and ``unit``), one pixel size for every axis, or
        one per axis. ``None``: copy from ``source_layer``.
    unit : str, optional
        Length unit of the pixel size (``"Å"``, ``"nm"``, pint spellings accepted).
        Required with a plain pixel size (unless copied from ``source_layer``).
    ndim : int, optional
        Number of spatial axes of the new layer (default: from the grid or the
        source layer, else 2).
    name : str, optional
        Layer name.
    source_layer : napari layer, optional
        Copy ``scale``, ``translate`` and ``units`` from it (its last ``ndim``
        axes) where the arguments do not give them.
    translate : sequence of float, optional
        Position of the first pixel centre, in ``unit``.
    **extra
        Passed through (``metadata``, ``opacity``, ...).

    Returns
    -------
    dict
    """
    kw: dict[str, Any] = {}
    src_scale = src_translate = src_units = None
    if source_layer is not None:
        src_scale = tuple(float(s) for s in source_layer.scale)
        src_translate = tuple(float(t) for t in source_layer.translate)
        src_units = tuple(canonical_unit(u) for u in getattr(source_layer, "units", ()) or ())
        if ndim is None:
            ndim = len(src_scale)
    g = grid_or_pixel_size
    if g is not None and hasattr(g, "spacing"):
        spacing = tuple(float(s) for s in g.spacing)
        ndim = ndim or len(spacing)
        kw["scale"] = _sizes(spacing, ndim)
        origin = getattr(g, "origin", None)
        if origin is not None and translate is None:
            translate = _sizes(origin, ndim) if len(origin) else None
        unit = unit or getattr(g, "unit", None)
    elif g is not None:
        kw["scale"] = _sizes(g, ndim)
        ndim = len(kw["scale"])
    elif src_scale is not None:
        kw["scale"] = _sizes(src_scale, ndim)
    n = ndim or len(kw.get("scale", ())) or 2
    if "scale" in kw:
        kw["scale"] = _sizes(kw["scale"], n)
    if translate is not None:
        kw["translate"] = tuple(float(t) for t in _sizes(translate, n))
    elif src_translate is not None:
        kw["translate"] = _sizes(src_translate, n)
    if unit is not None:
        kw["units"] = (canonical_unit(unit),) * n
    elif src_units:
        kw["units"] = tuple(_sizes_units(src_units, n))
    if name is not None:
        kw["name"] = name
    kw.update(extra)
    return kw


def _sizes_units(units: tuple[str, ...], n: int) -> tuple[str, ...]:
    if len(units) >= n:
        return units[-n:]
    return ("pixel",) * (n - len(units)) + units


def unique_name(viewer: napari.Viewer | None, name: str) -> str:
    """``name``, or ``name (2)``, ``name (3)``... if a layer of that name exists."""
    if viewer is None or name not in viewer.layers:
        return name
    i = 2
    while f"{name} ({i})" in viewer.layers:
        i += 1
    return f"{name} ({i})"


def result_name(what: str, source: Any = None) -> str:
    """Name of a layer the plugin makes: ``"<what> [<source>]"``, the one naming pattern.

    ``<what>`` says what the layer holds (``labels``, ``particles``,
    ``uncertainty``, ``phases``, ``edge probability``, ``Si at.%``, ``ions
    (200,000 of 945,211 shown)``, ``image``, ``atoms``...); ``<source>`` is
    what it was made from: the input layer (``labels [mic]``), the opened file
    (``Si at.% [Si.pos]``, ``phases [Si]``) or the generator (``image
    [HRTEM]``, ``labels [database]``). A second result of the same name that
    must not replace the first (the user edited it) gets `` (2)``.

    >>> result_name("labels", "Au particle")
    'labels [Au particle]'
    >>> result_name("phases")
    'phases'
    """
    if source is None:
        return what
    src = source if isinstance(source, str) else getattr(source, "name", str(source))
    return f"{what} [{src}]"


#: Arrays larger than this (elements) are not fingerprinted (edits then count by paint only).
_FINGERPRINT_MAX = 64_000_000


def _fingerprint(data: Any) -> tuple | None:
    """A cheap checksum of an in-memory array (``None`` for lazy or huge data)."""
    import zlib

    if not isinstance(data, np.ndarray) or data.size > _FINGERPRINT_MAX:
        return None
    a = np.ascontiguousarray(data)
    return (a.shape, a.dtype.str, zlib.crc32(a.view(np.uint8).reshape(-1)))


def mark_written(layer: Any) -> None:
    """Record ``layer``'s data as the plugin wrote it (later changes are the user's edits)."""
    layer.metadata[_EDITED_KEY] = False
    try:
        layer._napari_interfaces_fp = _fingerprint(layer.data)
    except (AttributeError, TypeError):  # a layer refusing new attributes
        pass


def _watch_edits(layer: Any) -> None:
    """Mark ``layer`` as edited by the user when its data changes by painting.

    In-place edits from code (``layer.data[...] = v; layer.refresh()``) emit no
    event: :func:`was_edited` also compares the data with a checksum taken
    when the plugin wrote it.
    """
    mark_written(layer)

    def _edited(*_: Any) -> None:
        layer.metadata[_EDITED_KEY] = True

    for ev in ("paint", "labels_update"):
        emitter = getattr(layer.events, ev, None)
        if emitter is not None:
            emitter.connect(_edited)


def was_edited(layer: Any) -> bool:
    """Whether the user changed a layer this plugin wrote.

    By painting (brush, fill, eraser: napari's ``paint`` / ``labels_update``
    events) or by changing the data in place from code or the console
    (``layer.data[...] = v; layer.refresh()``: the data no longer match the
    checksum taken when the plugin wrote them).
    """
    if bool((getattr(layer, "metadata", None) or {}).get(_EDITED_KEY, False)):
        return True
    fp = getattr(layer, "_napari_interfaces_fp", None)
    if fp is None:
        return False
    edited = _fingerprint(layer.data) != fp
    if edited:
        layer.metadata[_EDITED_KEY] = True
    return edited


def add_or_update_layer(
    viewer: napari.Viewer,
    data: Any,
    kind: str = "image",
    *,
    name: str,
    **kwargs: Any,
) -> Any:
    """Add a layer, or update the plugin's earlier result of the same name.

    A layer of that name is updated in place (data, scale, translate, units,
    metadata) when it is of the same kind and, for Labels, the user has not
    painted on it since the plugin wrote it. Otherwise a new layer is added as
    ``name (2)`` etc.: a user's label edits are never discarded and a layer the
    plugin did not make is never replaced.

    Parameters
    ----------
    viewer : napari.Viewer
    data : array-like
        Layer data.
    kind : str
        ``"image"``, ``"labels"``, ``"points"``, ``"shapes"``, ``"surface"``...
    name : str
        Wanted layer name (see :func:`result_name`).
    **kwargs
        Layer keyword arguments (see :func:`layer_kwargs`).

    Returns
    -------
    napari.layers.Layer
    """
    # napari's PublicOnlyProxy (the viewer npe2 gives plugin widgets) wraps every
    # layer in a new proxy: work on the real objects so kinds and identity hold
    viewer = getattr(viewer, "__wrapped__", viewer)
    existing = viewer.layers[name] if name in viewer.layers else None
    if existing is not None:
        existing = getattr(existing, "__wrapped__", existing)
        same_kind = type(existing).__name__.lower() == kind.lower()
        ours = _EDITED_KEY in (existing.metadata or {})
        if same_kind and ours and not was_edited(existing):
            for key in ("scale", "translate", "units"):
                if key in kwargs:
                    setattr(existing, key, kwargs[key])
            if "metadata" in kwargs:
                existing.metadata.update(kwargs["metadata"])
            existing.data = data
            mark_written(existing)
            return existing
        name = unique_name(viewer, name)
    metadata = dict(kwargs.pop("metadata", None) or {})
    add = getattr(viewer, f"add_{kind.lower()}")
    layer = add(data, name=name, metadata=metadata, **kwargs)
    _watch_edits(layer)
    return layer


def has_physical_units(layer: Any) -> bool:
    """Whether ``layer``'s last axis is in a length unit (Å, nm, µm...), not pixels."""
    units = getattr(layer, "units", None)
    if not units:
        return False
    try:
        return _length(units[-1]) is not None
    except Exception:  # an odd unit object: not a length
        return False


def scale_bar_overlay(viewer: Any) -> Any:
    """The viewer's scale bar overlay (napari ≥ 0.9 ``canvas.overlays``, else ``scale_bar``)."""
    viewer = getattr(viewer, "__wrapped__", viewer)
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    bar = getattr(overlays, "scale_bar", None)
    return bar if bar is not None else viewer.scale_bar


def show_scale_bar_if_physical(viewer: Any, *_: Any) -> bool:
    """Turn the scale bar on when a layer has physical units (once: the user may hide it).

    Returns whether it was turned on now.
    """
    if viewer is None:
        return False
    viewer = getattr(viewer, "__wrapped__", viewer)
    if getattr(viewer, "_napari_interfaces_scale_bar", False):
        return False
    if not any(has_physical_units(layer) for layer in viewer.layers):
        return False
    bar = scale_bar_overlay(viewer)
    viewer._napari_interfaces_scale_bar = True
    if not bar.visible:
        bar.visible = True
        return True
    return False
