"""Deprecated location of the test helper ``tests/_apt_interfaces_synth.py``.

The tiny two-phase specimens are for tests and benchmarks only and are not
part of the installed package any more. This shim loads them from a source
checkout so that old imports keep working until their users switch to
``from _apt_interfaces_synth import two_phase, true_profile`` (with
``tests/`` on ``sys.path``). Remove it then.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_HELPER = Path(__file__).resolve().parents[3] / "tests" / "_apt_interfaces_synth.py"
if not _HELPER.is_file():  # pragma: no cover - installed wheel
    raise ImportError(
        "napari_interfaces.apt.interfaces_synth moved to tests/_apt_interfaces_synth.py "
        "(a source checkout only)"
    )
_mod = sys.modules.get("_apt_interfaces_synth")
if _mod is None:
    _spec = importlib.util.spec_from_file_location("_apt_interfaces_synth", _HELPER)
    _mod = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
    sys.modules["_apt_interfaces_synth"] = _mod
    _spec.loader.exec_module(_mod)  # type: ignore[union-attr]

two_phase = _mod.two_phase
true_profile = _mod.true_profile
__all__ = ["two_phase", "true_profile"]
