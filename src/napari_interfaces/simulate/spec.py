"""Database specifications: a YAML file of parameter distributions.

A spec says how to draw the parameters of every sample of a simulated
database. Its top level::

    name: my_database          # free text
    seed: 0                    # default seed (the seed parameter overrides)
    sampler: multislice        # "multislice" (the HRTEM simulator) or "synthetic"
    output:                    # fixed for the whole database
      pixel_size: 0.2          # Å/px of the stored images
      crop: 512                # side of the stored images, px
      classes: [background, particle]
    parameters:                # anything; drawn per sample (see below)
      particle:
        radius: {uniform: [15, 50]}       # Å
      imaging:
        defocus: {uniform: [-500, 500]}   # Å
        dose: {loguniform: [100, 1200]}   # e/Å²

Every leaf under ``parameters`` is either a constant (number, string, list)
or a **distribution**, a one-key mapping:

``{uniform: [lo, hi]}``
    continuous uniform on ``[lo, hi)``
``{loguniform: [lo, hi]}``
    uniform in ``log`` (``lo, hi > 0``)
``{normal: [mean, sd]}``
    Gaussian; optional ``clip: [lo, hi]`` beside it
``{randint: [lo, hi]}``
    integer, ``lo..hi`` **inclusive**
``{choice: [a, b, ...]}``
    one of the items; optional ``p: [...]`` probabilities beside it
``{constant: value}``
    ``value`` as is (to store a mapping literally)

Draws happen in sorted key order (so the order of keys in the file does not
matter) from the sample's own generator, so a sample's parameters depend only
on the spec, the seed and the sample index (see :func:`sample_rng`).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.simulate.spec import DatabaseSpec, sample_rng
>>> spec = DatabaseSpec.from_dict({"output": {"pixel_size": 0.5, "crop": 64},
...     "parameters": {"radius": {"uniform": [10, 20]}, "element": "Au"}})
>>> p = spec.draw(sample_rng(0, 3))
>>> p["element"], 10 <= p["radius"] < 20
('Au', True)
>>> p == spec.draw(sample_rng(0, 3))
True
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.params import in_range, non_negative, positive

__all__ = [
    "DISTRIBUTIONS",
    "DatabaseSpec",
    "draw",
    "load_spec",
    "sample_rng",
    "sample_seed_sequence",
    "validate_distributions",
]

#: Keys that make a mapping a distribution (with their optional companions).
DISTRIBUTIONS: dict[str, set[str]] = {
    "uniform": set(),
    "loguniform": set(),
    "normal": {"clip"},
    "randint": set(),
    "choice": {"p"},
    "constant": set(),
}

SAMPLERS = ("multislice", "synthetic")
TOP_KEYS = {"name", "description", "seed", "n", "sampler", "output", "parameters", "reference"}


def sample_seed_sequence(seed: int, index: int) -> np.random.SeedSequence:
    """SeedSequence of sample ``index``: ``SeedSequence(seed, spawn_key=(index,))``.

    This is the ``index``-th child of ``SeedSequence(seed).spawn(...)``, so a
    sample's randomness does not depend on how many samples are made, in
    which order, or on which worker.
    """
    return np.random.SeedSequence(int(seed), spawn_key=(int(index),))


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` (see :func:`sample_seed_sequence`)."""
    return np.random.default_rng(sample_seed_sequence(seed, index))


def _is_distribution(node: Any) -> bool:
    if not isinstance(node, dict) or not node:
        return False
    keys = set(node)
    main = keys & set(DISTRIBUTIONS)
    if len(main) != 1:
        return False
    (kind,) = main
    return keys - {kind} <= DISTRIBUTIONS[kind]


def _pair(node: dict, kind: str, where: str) -> tuple[float, float]:
    v = node[kind]
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise InputError(f"{where}: {kind} needs [lo, hi], got {v!r}")
    lo, hi = (float(x) for x in v)
    return lo, hi


def _check(node: dict, where: str) -> None:
    (kind,) = set(node) & set(DISTRIBUTIONS)
    if kind in ("uniform", "loguniform", "randint"):
        lo, hi = _pair(node, kind, where)
        if hi < lo:
            raise InputError(f"{where}: {kind} bounds must satisfy lo <= hi, got [{lo}, {hi}]")
        if kind == "loguniform" and lo <= 0:
            raise InputError(f"{where}: loguniform needs positive bounds, got [{lo}, {hi}]")
    elif kind == "normal":
        _, sd = _pair(node, kind, where)
        if sd < 0:
            raise InputError(f"{where}: normal needs sd >= 0")
        if "clip" in node:
            _pair(node, "clip", where)
    elif kind == "choice":
        items = node["choice"]
        if not isinstance(items, list) or not items:
            raise InputError(f"{where}: choice needs a non-empty list")
        if "p" in node:
            p = np.asarray(node["p"], dtype=float)
            if (
                p.shape != (len(items),)
                or (p < 0).any()
                or not math.isclose(p.sum(), 1, rel_tol=1e-6)
            ):
                raise InputError(
                    f"{where}: p must be {len(items)} non-negative numbers summing to 1"
                )


def validate_distributions(tree: Any, where: str = "parameters") -> None:
    """Raise ``InputError`` (naming the key) for malformed distributions."""
    if _is_distribution(tree):
        _check(tree, where)
    elif isinstance(tree, dict):
        for k, v in tree.items():
            if isinstance(v, dict) and set(v) & set(DISTRIBUTIONS) and not _is_distribution(v):
                raise InputError(
                    f"{where}.{k}: a distribution is a one-key mapping like {{uniform: [lo, hi]}} "
                    f"(allowed companions: clip for normal, p for choice); got keys {sorted(v)}"
                )
            validate_distributions(v, f"{where}.{k}")


def _draw_one(node: dict, rng: np.random.Generator) -> Any:
    (kind,) = set(node) & set(DISTRIBUTIONS)
    if kind == "constant":
        return copy.deepcopy(node["constant"])
    if kind == "uniform":
        lo, hi = (float(x) for x in node[kind])
        return float(rng.uniform(lo, hi))
    if kind == "loguniform":
        lo, hi = (float(x) for x in node[kind])
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if kind == "normal":
        mu, sd = (float(x) for x in node[kind])
        v = float(rng.normal(mu, sd))
        if "clip" in node:
            lo, hi = (float(x) for x in node["clip"])
            v = min(max(v, lo), hi)
        return v
    if kind == "randint":
        lo, hi = (int(x) for x in node[kind])
        return int(rng.integers(lo, hi + 1))
    if kind == "choice":
        items = node["choice"]
        p = node.get("p")
        k = int(rng.choice(len(items), p=None if p is None else np.asarray(p, dtype=float)))
        item = items[k]
        # a chosen item may itself hold distributions
        return draw(item, rng)
    raise AssertionError(kind)


def draw(tree: Any, rng: np.random.Generator) -> Any:
    """Replace every distribution in ``tree`` by a value drawn from ``rng``."""
    if _is_distribution(tree):
        return _draw_one(tree, rng)
    if isinstance(tree, dict):
        # canonical (sorted) order: the same spec written in another key
        # order gives the same samples
        drawn = {k: draw(tree[k], rng) for k in sorted(tree, key=str)}
        return {k: drawn[k] for k in tree}
    if isinstance(tree, list):
        return [draw(v, rng) for v in tree]
    return copy.deepcopy(tree)


@dataclass
class DatabaseSpec:
    """A parsed database spec (see the module docstring for the format).

    Attributes
    ----------
    name : str
    seed : int
    sampler : str
        ``"multislice"`` or ``"synthetic"``.
    pixel_size : float
        Å/px of the stored images.
    crop : int
        Side of the stored (square) images, px.
    classes : list of str
    parameters : dict
        The distribution tree.
    raw : dict
        The whole spec as read (stored in the database's attributes).
    """

    name: str = "database"
    seed: int = 0
    sampler: str = "multislice"
    pixel_size: float = 0.2
    crop: int = 256
    classes: list[str] = field(default_factory=lambda: ["background", "particle"])
    parameters: dict[str, Any] = field(default_factory=dict)
    n: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "spec") -> DatabaseSpec:
        """Parse and validate a spec mapping.

        Raises
        ------
        InputError
            For unknown top-level keys, a bad ``output`` or a malformed
            distribution; the message names the key.
        """
        if not isinstance(d, dict):
            raise InputError(f"{source}: a database spec is a mapping, got {type(d).__name__}")
        unknown = set(d) - TOP_KEYS
        if unknown:
            raise InputError(
                f"{source}: unknown top-level keys {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}"
            )
        out = d.get("output") or {}
        if not isinstance(out, dict):
            raise InputError(f"{source}: output must be a mapping")
        unknown = set(out) - {"pixel_size", "crop", "classes"}
        if unknown:
            raise InputError(
                f"{source}: unknown output keys {sorted(unknown)} (pixel_size, crop, classes)"
            )
        sampler = str(d.get("sampler", "multislice"))
        if sampler not in SAMPLERS:
            raise InputError(f"{source}: sampler must be one of {SAMPLERS}, got {sampler!r}")
        try:
            pixel_size = in_range("output.pixel_size", out.get("pixel_size", 0.2), 0.005, 100.0)
            crop = in_range("output.crop", out.get("crop", 256), 8, 16384, integer=True)
            seed = non_negative("seed", d.get("seed", 0), integer=True)
            n = d.get("n")
            if n is not None:
                n = positive("n", n, integer=True, maximum=10**9)
        except InputError as exc:
            raise InputError(f"{source}: {exc}") from None
        classes = [str(c) for c in out.get("classes", ["background", "particle"])]
        if len(classes) < 2:
            raise InputError(f"{source}: output.classes needs at least 2 names (background first)")
        params = d.get("parameters") or {}
        if not isinstance(params, dict):
            raise InputError(f"{source}: parameters must be a mapping")
        validate_distributions(params)
        return cls(
            name=str(d.get("name", Path(source).stem if source != "spec" else "database")),
            seed=seed,
            sampler=sampler,
            pixel_size=pixel_size,
            crop=crop,
            classes=classes,
            parameters=params,
            n=n,
            raw=copy.deepcopy(d),
        )

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """Parameters of one sample drawn from ``rng``."""
        return draw(self.parameters, rng)

    def draw_sample(self, seed: int, index: int) -> dict[str, Any]:
        """Parameters of sample ``index`` of a database made with ``seed``."""
        return self.draw(sample_rng(seed, index))

    @property
    def output(self) -> dict[str, Any]:
        return {"pixel_size": self.pixel_size, "crop": self.crop, "classes": list(self.classes)}

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain mapping (round-trips through :meth:`from_dict`)."""
        d = copy.deepcopy(self.raw) if self.raw else {}
        d.update(
            name=self.name,
            seed=self.seed,
            sampler=self.sampler,
            output=self.output,
            parameters=copy.deepcopy(self.parameters),
        )
        if self.n is not None:
            d["n"] = self.n
        return d


def load_spec(spec: str | Path | dict[str, Any] | DatabaseSpec) -> DatabaseSpec:
    """A :class:`DatabaseSpec` from a YAML path, YAML text, a mapping or a spec.

    A bare name such as ``"rangel_dacosta_2024"`` or ``"tiny"`` loads the
    shipped example ``simulate/examples/<name>.yaml``.

    Raises
    ------
    FileNotFoundError, InputError
    """
    if isinstance(spec, DatabaseSpec):
        return spec
    if isinstance(spec, dict):
        return DatabaseSpec.from_dict(spec)
    text: str
    source = str(spec)
    p = Path(spec).expanduser()
    example = Path(__file__).parent / "examples" / f"{source}.yaml"
    if p.is_file():
        if p.stat().st_size > 4 * MAX_SPEC_CHARS:
            raise InputError(f"{p}: {p.stat().st_size:,} bytes is too large for a spec")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    elif example.is_file():
        text, source = example.read_text(encoding="utf-8"), str(example)
    elif isinstance(spec, str) and "\n" in spec:
        text, source = spec, "spec"
    else:
        raise FileNotFoundError(
            f"{spec}: no such spec file (or shipped example: {list_examples()})"
        )
    if len(text) > MAX_SPEC_CHARS:
        raise InputError(
            f"{source}: {len(text):,} characters; a spec is at most {MAX_SPEC_CHARS:,}"
        )
    data = _safe_load(text, source)
    if data is None or data == {}:
        raise InputError(
            f"{source}: the spec is empty (see the shipped examples: {list_examples()})"
        )
    return DatabaseSpec.from_dict(data, source=source)


#: Longest spec text accepted (characters).
MAX_SPEC_CHARS = 1_000_000


def _safe_load(text: str, source: str) -> Any:
    """``yaml.safe_load`` that refuses aliases (``*name``): no "billion laughs" expansion.

    Raises
    ------
    InputError
        Naming the file and line of the alias, or the YAML error.
    """
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                line = event.start_mark.line + 1
                raise InputError(
                    f"{source}: line {line}: YAML aliases (*{event.anchor}) are not allowed in "
                    "a spec; write the values out"
                )
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliasLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        msg = " ".join(str(exc).split())
        raise InputError(f"{source}: not valid YAML: {msg}") from None


def list_examples() -> list[str]:
    """Names of the shipped example specs."""
    folder = Path(__file__).parent / "examples"
    return sorted(p.stem for p in folder.glob("*.yaml"))
