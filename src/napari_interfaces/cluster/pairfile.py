"""Settings shared by the chip-community model files (corrections models and
series references), saved as a ``.json`` + ``.npz`` pair through
:mod:`napari_interfaces.core.pairfile` (never pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..core.pairfile import load_pair, pair_paths, save_pair

__all__ = ["check_settings", "load_pair", "pair_paths", "save_pair"]


def check_settings(js: Path, meta: dict[str, Any], what: str) -> None:
    """Check the settings every cluster model file shares: chip, stride, extractor.

    One line naming the file and the key for a chip or stride that is not a
    positive integer (stride at most the chip), or an unknown extractor or
    extractor setting.
    """
    import inspect

    from .features import EXTRACTORS

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    chip, stride = meta.get("chip"), meta.get("stride")
    if not (is_int(chip) and 4 <= chip <= 8192):
        raise InputError(f"{js}: chip = {chip!r}: expected an integer in [4, 8192] ({what})")
    if not (is_int(stride) and 1 <= stride <= chip):
        raise InputError(f"{js}: stride = {stride!r}: expected an integer in [1, chip={chip}]")
    if meta.get("border", "shift") not in ("shift", "drop"):
        raise InputError(f"{js}: border = {meta.get('border')!r}: expected 'shift' or 'drop'")
    for key in ("clahe", "refine"):
        if not isinstance(meta.get(key, False), bool):
            raise InputError(f"{js}: {key} = {meta.get(key)!r}: expected true or false")
    for key in ("settings", "source", "extra"):
        if not isinstance(meta.get(key, {}), dict):
            raise InputError(f"{js}: {key} = {meta.get(key)!r}: expected a mapping")
    nov = meta.get("novelty", 2.0)
    if not (isinstance(nov, (int, float)) and not isinstance(nov, bool) and 0 < nov < 1e6):
        raise InputError(f"{js}: novelty = {nov!r}: expected a positive number")
    fw = meta.get("feature_weighting")
    if fw is not None and not isinstance(fw, dict):
        raise InputError(f"{js}: feature_weighting = {fw!r}: expected a mapping")
    ext = meta.get("extractor")
    if not isinstance(ext, dict) or str(ext.get("name", "")).lower() not in EXTRACTORS:
        name = ext.get("name") if isinstance(ext, dict) else ext
        raise InputError(
            f"{js}: extractor {name!r} is unknown; expected one of {', '.join(EXTRACTORS)}"
        )
    cls = EXTRACTORS[str(ext["name"]).lower()]
    params = inspect.signature(cls).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = set(ext) - set(params) - {"name", "sha256", "scales"}
        if unknown:
            raise InputError(f"{js}: extractor settings {sorted(unknown)} are unknown")
