"""The package's lazy public API: scikit-image's pattern, in one place.

Every subpackage's ``__init__.py`` names its public names and the submodule
that defines each, then calls :func:`attach`; a name's submodule is imported on
first use, so ``import napari_interfaces.segment`` imports no torch.

Examples
--------
>>> from napari_interfaces.core.lazy import attach
>>> getattr_, dir_, all_ = attach("napari_interfaces.core", {"InputError": "errors"})
>>> all_, getattr_("InputError").__name__
(['InputError'], 'InputError')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["attach"]


def attach(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``__getattr__, __dir__, __all__`` of ``package`` (``lazy_loader.attach``).

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to str
        Public name -> the submodule (relative to ``package``) that defines it.
    """
    import lazy_loader

    by_module: dict[str, list[str]] = {}
    for name, module in exports.items():
        by_module.setdefault(module, []).append(name)
    return lazy_loader.attach(package, submod_attrs=by_module)
