"""The pixel classifier: a class-balanced random forest (or a small neural head) on pixel features.

Saving never pickles: a classifier is stored as its *training set* (the
feature vectors of the painted pixels and their labels, ``.npz`` read with
``allow_pickle=False``) plus the settings (``.json``: feature sigmas, pixel
size and unit, forest parameters, seed). Loading refits the forest with the
same seed, which gives the identical forest (scikit-learn forests are
deterministic for a fixed ``random_state``); a few thousand painted pixels
refit in a fraction of a second. ``kind="mlp"`` and ``kind="forest+mlp"``
(:mod:`.mlp`) also store the grid sample of unpainted pixels the head's
entropy term was trained on, and its seeded single-thread refit gives the
identical head.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.classify.model import PixelClassifier
>>> rng = np.random.default_rng(0)
>>> x = np.r_[rng.normal(0, 1, (50, 3)), rng.normal(4, 1, (50, 3))].astype(np.float32)
>>> y = np.r_[np.full(50, 3), np.full(50, 7)]
>>> clf = PixelClassifier().fit(x, y)
>>> clf.classes.tolist(), clf.predict(np.array([[4.0, 4, 4]], np.float32)).tolist()
([3, 7], [7])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.pairfile import load_pair, pair_paths, save_pair
from .features import FeatureSettings
from .guided import RADIUS as GUIDED_RADIUS

__all__ = ["PixelClassifier", "FORMAT", "load_pair", "pair_paths", "save_pair"]

FORMAT = "napari-interfaces/pixel-classifier"
VERSION = 3  # 3: feature sets (learned VGG features and their projection)
KINDS = ("extra_trees", "forest+mlp", "mlp", "random_forest")
#: the kinds that also learn from unpainted pixels (``unlabeled``, saved with them)
SEMI_SUPERVISED = ("forest+mlp", "mlp")
MAX_TRAINING = 200_000


@dataclass
class PixelClassifier:
    """Tree ensemble (or a small neural head, alone or mixed in) over :func:`~.features.pixel_features`.

    The default ``kind="forest+mlp"`` (since the ninth round of
    docs/benchmarks.md; the random forest alone before): the random forest's
    probabilities, cluster-smoothed, weigh 0.7 and those of a neural head
    (:mod:`.mlp`: 32 hidden units, entropy term 2 on the unpainted pixels, 150
    steps) 0.3, and the mixture is edge-smoothed (``edge_smoothing``, tenth
    round). On the six micrographs of ``benchmarks/bench_classify.py`` the
    mixture gave 0.573 / 0.670 mean IoU (rounds 1 / 2, three seeds; 0.591 /
    0.692 with the edge smoothing) against the forest's 0.535 / 0.640 (0.557
    / 0.673), no image's round 2 below the forest's; a new label
    spreads further on the corrections test's mosaic (0.61 -> 0.94) while the
    other textures keep theirs (0.97); trained on one micrograph and applied
    to another of the same kind it labels it better (mean IoU 0.394 against
    0.367 over 14 pairs), though on synthetic texture mosaics worse (0.79
    against 0.87 right). It costs 1.2-1.5x scikit-image's time per 1024 x
    1024 image on a quiet machine (the forest 0.9-1.2x; the issue's limit is
    1.5x), a re-train after a stroke about 0.5 s (the forest 0.4 s), and its
    sample of unpainted rows (at most about 15 MB) is saved with it.
    ``kind="random_forest"`` is the forest alone (cluster-smoothed).
    Extremely randomized trees (``kind="extra_trees"``, random split
    thresholds) raise the round-1 mean IoU by about 0.02 but lose 0.1 IoU on
    the corrections test's mosaic.

    Attributes
    ----------
    settings : FeatureSettings
        Feature sigmas and the training image's pixel size.
    n_estimators, max_depth : int
        Forest size: 32 trees of depth 10, each on a bootstrap of 25 % of the
        samples (scikit-image's gallery uses 50 trees; on the six micrographs
        of ``benchmarks/bench_classify.py`` 32 trees give the same mean IoU
        within 0.005 at 2/3 of the fit and prediction time).
    seed : int
        ``random_state`` of the forest (and of the training subsample).
    kind : str
        ``"forest+mlp"`` (default: the forest and the head mixed),
        ``"random_forest"`` (the forest alone), ``"extra_trees"`` or ``"mlp"``: the small neural head alone (:mod:`.mlp`,
        NumPy) trained on the painted pixels with an entropy term on a grid
        sample of the image's unpainted pixels (``unlabeled``, saved with the
        classifier so the refit on load is identical).
    edge_smoothing : float
        Radius (pixels of the training image; 0: off) of the guided filter that
        smooths the class probabilities along the image's edges (of the guide,
        ``edge_guide``) before the labels are taken (:mod:`.guided`, tenth
        round (b) and (c) of docs/benchmarks.md; default 6 px, ``eps = 1e-3``).
        Applied to other images, the radius follows their pixel size as the
        feature scales do. Needs the basic features (the guide's columns). On
        the six micrographs of ``benchmarks/bench_classify.py`` it raises the
        default's mean IoU from 0.573 / 0.670 to 0.591 / 0.692 (three seeds;
        the forest alone's from 0.535 / 0.639 to 0.557 / 0.673) at about
        0.03-0.04 s per 1024 x 1024 image; on the corrections test's mosaic the
        new label's IoU goes from 0.94 to 0.92 (the forest alone's from 0.61 to
        0.60). Classifiers saved before it existed load with 0 (their labels
        stay as they were).
    edge_guide : str
        The guided filter's guide: ``"intensity+texture"`` (default) the
        smoothed intensity and, as a second channel, the local standard
        deviation at 16 px (the ``std`` feature; :mod:`.guided`), so that a
        boundary between textures of equal mean grey is kept too: on the
        corrections test's mosaic the new label's IoU is 0.92 (the forest
        alone's 0.60) instead of 0.89 (0.57) with ``"intensity"`` (the smoothed
        intensity alone), at the same mean IoU on the micrographs of
        ``benchmarks/bench_classify.py`` (tenth round (c) of
        docs/benchmarks.md) and about 0.008 s more per 1024 x 1024 image.
        Classifiers saved before it existed load with ``"intensity"``.
    head_weight, head_entropy, head_steps, head_hidden : float, float, int, int
        ``kind="forest+mlp"`` only: the head's share of the mixture (0.3),
        the weight of its entropy term (2; the head alone uses 4, which let
        the unpainted pixels overrule a minority class's correction strokes),
        its optimizer steps (150) and hidden units (32: half the fit and
        prediction arithmetic of the head alone's 64, the same mean IoU on
        the benchmark, 0.573 / 0.670 against 0.572 / 0.670 over three seeds;
        mixtures saved with 64 load with 64). Saved with the classifier.
    superpixel_step : float
        0 (default): the forest's probabilities of every pixel, exact at
        boundaries and doubtful pixels (:func:`~.workflow.predict_proba_fast`).
        ``> 0``: the forest runs on every second pixel of every second row and
        its probabilities are averaged inside edge-following superpixels of
        about this side (pixels of the training image;
        :func:`~.features.superpixels`). On the SEM micrographs of
        ``benchmarks/bench_classify.py`` step 8 raises the mean IoU by about
        0.01 (round 1) and 0.03 (round 2, three forest seeds); on textures
        whose boundaries are no intensity edges it loses 0.07 IoU (the
        corrections test's mosaic), so it is not the default.
    propagate : bool
        False (default). True: when trained on strokes
        (:func:`~.workflow.classify_image`), the strokes also spread inside
        regions bounded by intensity and feature edges, with the forest's
        probabilities as the prior (:func:`~.propagate.propagate_strokes`, a
        random walker). On the micrographs of ``benchmarks/bench_classify.py``
        it raises the mean IoU by about 0.02 (both rounds, three forest seeds)
        at 0.3-0.4 s more per 1024 x 1024 image (1.2-1.35 x scikit-image's
        time with it, within the benchmark's 1.5 x limit since the sixth
        round; a re-train after a stroke takes about twice as long: 0.8 s
        instead of 0.4 s), so it is opt-in. Not used when applying a trained
        classifier to another image (no strokes there).
    cluster_smoothing : bool
        True (default): each pixel's probabilities are mixed half and half
        with the mean of its feature-space cluster (:mod:`~.clusters`, 128
        k-means clusters on the features' principal components), so a few
        strokes speak for the feature-space mode they sit in; also when
        applied to other images. On the micrographs of
        ``benchmarks/bench_classify.py`` +0.015 / +0.025 mean IoU (rounds 1 /
        2, three forest seeds) at about 0.1 s more per 1024 x 1024 image.
        Classifiers saved before it existed load with False (their labels
        stay as they were). Forests only (with ``kind="forest+mlp"`` the
        forest's part): the neural head learns from the unpainted pixels
        itself, and smoothing it as well lowered its round-2 mean IoU from
        0.664 to 0.631 (three seeds).
    """

    settings: FeatureSettings = field(default_factory=FeatureSettings)
    n_estimators: int = 32
    max_depth: int = 10
    max_samples: float = 0.25
    seed: int = 0
    kind: str = "forest+mlp"
    superpixel_step: float = 0.0
    propagate: bool = False
    cluster_smoothing: bool = True
    edge_smoothing: float = GUIDED_RADIUS
    edge_guide: str = "intensity+texture"
    head_weight: float = 0.3
    head_entropy: float = 2.0
    head_steps: int = 150
    head_hidden: int = 32
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    unlabeled: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _forest: Any = None
    _head: Any = None

    @property
    def classes(self) -> np.ndarray:
        if self._forest is None:
            raise InputError("the pixel classifier is not trained yet: paint strokes first")
        return self._forest.classes_

    @property
    def fitted(self) -> bool:
        return self._forest is not None

    def fit(
        self, x: np.ndarray, y: np.ndarray, unlabeled: np.ndarray | None = None
    ) -> PixelClassifier:
        """Fit on feature rows ``x (n, F)`` with labels ``y (n,)`` (all > 0).

        ``unlabeled`` (``(m, F)`` rows of unpainted pixels,
        :func:`.mlp.unlabeled_sample`) is used by ``kind="mlp"`` only.

        Raises
        ------
        InputError
            Fewer than two classes, or mismatched sizes.
        """
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        if self.kind not in KINDS:
            raise InputError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        x = np.asarray(x, np.float32)
        y = np.asarray(y).astype(np.int64).ravel()
        if x.ndim != 2 or len(x) != len(y):
            raise InputError(f"training data: {x.shape} features for {y.shape} labels")
        classes = np.unique(y)
        if len(classes) < 2:
            raise InputError(
                f"scribbles: paint at least two classes (found {len(classes)}: {classes.tolist()})"
            )
        if len(y) > MAX_TRAINING:  # keep refits sub-second: a class-stratified subsample
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(y), MAX_TRAINING, replace=False))
            x, y = x[keep], y[keep]
        self.x, self.y = x, y
        self._head = None
        if self.kind in SEMI_SUPERVISED:
            from .mlp import HeadSettings, fit_head

            u = None
            if unlabeled is not None:
                u = np.asarray(unlabeled, np.float32)
                if u.ndim != 2 or u.shape[1] != x.shape[1]:
                    raise InputError(
                        f"unlabeled rows {u.shape} do not match {x.shape[1]} features"
                    )
            self.unlabeled = u
            if self.kind == "mlp":
                self._forest = fit_head(x, y, u, seed=int(self.seed))
                return self
            head = HeadSettings(
                steps=int(self.head_steps),
                entropy=float(self.head_entropy),
                hidden=int(self.head_hidden),
            )
        else:
            self.unlabeled = None
        cls = ExtraTreesClassifier if self.kind == "extra_trees" else RandomForestClassifier
        forest = cls(
            n_estimators=int(self.n_estimators),
            max_depth=int(self.max_depth),
            bootstrap=True,
            max_samples=float(self.max_samples) if len(y) > 50 else None,
            class_weight="balanced",
            n_jobs=-1,
            random_state=int(self.seed),
        )
        if self.kind == "forest+mlp":
            # one after the other: beside the forest's fit (its own threads) the head's
            # (~150 small NumPy steps, holding the GIL between them) made both slower
            # (docs/benchmarks.md, ninth round (c))
            self._head = fit_head(x, y, u, seed=int(self.seed), settings=head)
        forest.fit(x, y)
        self._forest = forest
        return self

    def predict_proba(self, features: np.ndarray, chunk: int = 262_144) -> np.ndarray:
        """Class probabilities ``(..., n_classes)`` for features ``(..., F)``.

        ``kind="forest+mlp"``: the forest's and the head's mixed
        (:meth:`parts`; without the cluster smoothing, which the workflow
        applies to the forest's part of a whole image).
        """
        if self._head is None:
            return self._proba(self._forest, features, chunk)
        w = float(self.head_weight)
        forest, head = self.parts()
        out = forest(features, chunk)
        out *= 1.0 - w
        out += w * head(features, chunk)
        return out

    def parts(self):
        """The forest's and the head's ``predict_proba`` of a ``kind="forest+mlp"`` ensemble
        (their mixture's weights: ``1 - head_weight`` and ``head_weight``)."""
        if self._head is None:
            raise InputError(f"a {self.kind!r} classifier has no forest and head parts")
        return (
            lambda f, chunk=262_144: self._proba(self._forest, f, chunk),
            lambda f, chunk=262_144: self._proba(self._head, f, chunk),
        )

    def _proba(self, est, features: np.ndarray, chunk: int) -> np.ndarray:
        f = np.asarray(features, np.float32)
        n = int(self._forest.n_features_in_) if self.fitted else self.settings.n_features
        if f.shape[-1] != n:
            raise InputError(f"the classifier expects {n} features per pixel, got {f.shape[-1]}")
        flat = f.reshape(-1, f.shape[-1])
        out = np.empty((len(flat), len(self.classes)), np.float32)
        for i in range(0, len(flat), chunk):
            out[i : i + chunk] = est.predict_proba(flat[i : i + chunk])
        return out.reshape(*f.shape[:-1], len(self.classes))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class values (as painted) for features ``(..., F)``."""
        return self.classes[self.predict_proba(features).argmax(-1)]

    # ------------------------------------------------------------ save / load
    def to_meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "features": self.settings.to_dict(),
            "forest": {
                "n_estimators": int(self.n_estimators),
                "max_depth": int(self.max_depth),
                "max_samples": float(self.max_samples),
                "seed": int(self.seed),
                "kind": self.kind,
                "superpixel_step": float(self.superpixel_step),
                "propagate": bool(self.propagate),
                "cluster_smoothing": bool(self.cluster_smoothing),
                "edge_smoothing": float(self.edge_smoothing),
                "edge_guide": str(self.edge_guide),
                **(
                    {
                        "head_weight": float(self.head_weight),
                        "head_entropy": float(self.head_entropy),
                        "head_steps": int(self.head_steps),
                        "head_hidden": int(self.head_hidden),
                    }
                    if self.kind == "forest+mlp"
                    else {}
                ),
            },
            "classes": [int(c) for c in self.classes],
            "n_training_pixels": int(len(self.y)),
            "extra": self.extra,
        }

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.json`` + ``<stem>.npz`` atomically; returns both paths."""
        if not self.fitted:
            raise InputError("the pixel classifier is not trained yet: nothing to save")
        arrays = {"x": self.x, "y": self.y}
        if self.unlabeled is not None:
            arrays["unlabeled"] = self.unlabeled
        if self.settings.learned:
            if self.settings.projection is None:
                raise InputError("the learned features' projection is missing: train again")
            arrays.update(self.settings.projection.to_arrays())
        return save_pair(path, self.to_meta(), arrays)

    @classmethod
    def load(cls, path: str | Path) -> PixelClassifier:
        """Read a pair written by :meth:`save` and refit (identical forest)."""
        meta, arrays = load_pair(path, FORMAT, "pixel classifier")
        js = pair_paths(path)[0]
        try:
            settings = FeatureSettings.from_dict(meta["features"], arrays)
            forest = meta["forest"]
            x, y = arrays["x"], arrays["y"]
            model = cls(
                settings,
                int(forest["n_estimators"]),
                int(forest["max_depth"]),
                float(forest["max_samples"]),
                int(forest["seed"]),
                kind=str(forest.get("kind", "random_forest")),
                superpixel_step=float(forest.get("superpixel_step", 0.0)),
                propagate=bool(forest.get("propagate", False)),
                cluster_smoothing=bool(forest.get("cluster_smoothing", False)),
                # classifiers saved before the guided filter existed label as they did
                edge_smoothing=float(forest.get("edge_smoothing", 0.0)),
                # ... and those saved before the texture channel with the intensity alone
                edge_guide=str(forest.get("edge_guide", "intensity")),
                head_weight=float(forest.get("head_weight", 0.3)),
                head_entropy=float(forest.get("head_entropy", 2.0)),
                head_steps=int(forest.get("head_steps", 150)),
                # mixtures saved before the width was a setting had 64 hidden units
                head_hidden=int(forest.get("head_hidden", 64)),
                extra=dict(meta.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{js}: not a valid pixel classifier ({exc})") from None
        except InputError as exc:
            raise InputError(f"{js}: {exc}") from None
        if x.ndim != 2 or x.shape[1] != settings.n_features or len(x) != len(y):
            raise InputError(
                f"{js}: training arrays {x.shape}/{y.shape} do not match "
                f"{settings.n_features} features"
            )
        u = arrays.get("unlabeled")
        if u is not None and (u.ndim != 2 or u.shape[1] != x.shape[1]):
            raise InputError(f"{js}: unlabeled rows {u.shape} do not match {x.shape[1]} features")
        return model.fit(x, y, u)
