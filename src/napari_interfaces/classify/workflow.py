"""Paint to segment: train on scribbles, label every pixel, apply to other images.

One engine workflow for the CLI (``napari-interfaces classify``), the
"Paint to segment" dock and the chip-communities correction loop:

* :func:`classify_image` -- features (cached), fit on the painted pixels,
  full-resolution labels with the painted class values + confidence;
* :func:`apply_classifier` -- a trained (or loaded) classifier on another
  image; when both pixel sizes are known the feature sigmas are rescaled so
  they measure the same physical lengths, otherwise pixels are assumed equal
  (and the result says so);
* :func:`apply_to_frames` -- the same for every frame of a series (a stack
  ``(n, H, W)``: time, focal or tilt series), one frame in memory at a time.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.classify.workflow import classify_image
>>> img = np.zeros((64, 64), np.float32); img[:, 32:] = 1.0
>>> img += np.random.default_rng(0).normal(0, 0.2, img.shape).astype(np.float32)
>>> s = np.zeros((64, 64), np.uint8); s[10:20, 5:10] = 4; s[40:50, 50:55] = 9
>>> r = classify_image(img, s)
>>> sorted(np.unique(r.labels).tolist()), r.labels[32, 0], r.labels[32, 63]
([4, 9], np.uint8(4), np.uint8(9))
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from ..io.folders import poll_param, watch_timeout_param
from .features import FEATURE_SETS, FeatureCache, FeatureSettings, normalize_image
from .model import KINDS, SEMI_SUPERVISED, PixelClassifier

__all__ = [
    "ClassifyFiles",
    "ClassifyParams",
    "ClassifyResult",
    "apply_classifier",
    "apply_to_frames",
    "check_scribbles",
    "classify_image",
    "label_dtype",
    "train_classifier",
]


#: run the mixture's two parts' predictions side by side, and the feature clusters beside
#: the prediction (:func:`~..core.threads.beside`; False: one after the other; the same values)
OVERLAP = True


@dataclass(frozen=True)
class ClassifyParams(Spec):
    """Paint to segment: the pixel classifier's features and the image's pixel size."""

    features: str | None = param(
        None,
        "pixel features: basic (multi-scale intensity, gradient, Hessian, structure tensor, "
        "texture), vgg (learned: the first VGG16 blocks of the shipped HED network, as "
        "convpaint does; slower), basic+vgg, or basic+vgg-fast (basic without the fine-scale "
        "extras and VGG16 at 1/4 resolution: with classifier forest+mlp the best measured on "
        "the benchmark micrographs, about 0.4 s more per megapixel than forest+mlp on basic); "
        "auto: basic, or a given classifier's own",
        choices=FEATURE_SETS,
        none="auto",
        advanced=True,
        label="features",
    )
    sigmas: tuple[float, ...] | None = param(
        None,
        "feature scales (Gaussian sigmas) of the pixel features, e.g. 1,2,4,8; auto: the "
        "classifier's defaults (1 to 64), or a given classifier's own",
        unit="px",
        lo=0,
        lo_open=True,
        hi=1024,
        none="auto",
        advanced=True,
        metavar="S,S,...",
        label="feature scales",
    )
    classifier: str | None = param(
        None,
        "classifier on the pixel features: forest+mlp (the random forest mixed 0.7 / 0.3 with "
        "a small neural network that also learns from the unpainted pixels: a new label "
        "spreads further; on the benchmark micrographs +0.04 mean IoU after the first and "
        "the second round of strokes over the forest alone), random_forest (the forest alone: "
        "about 0.15 s less per megapixel), extra_trees, or mlp (the network alone: more in "
        "the first round, but correction strokes teach it less and thin cracks are lost more "
        "often); auto: forest+mlp, or a given classifier's own",
        choices=KINDS,
        none="auto",
        advanced=True,
        label="classifier",
    )
    propagate: bool = param(
        False,
        "spread the strokes inside regions bounded by intensity and texture edges (a random "
        "walker with the forest's probabilities as its prior): fills a layer that differs from "
        "its neighbours mainly by position; about 0.3-0.4 s more per megapixel",
        advanced=True,
        label="spread strokes",
    )
    cluster_smoothing: bool = param(
        True,
        "mix each pixel's class probabilities with the mean of its feature-space cluster "
        "(k-means on the features' principal components): a few strokes speak for every "
        "pixel that looks like them; about 0.1 s per megapixel; off: the forest's own "
        "probabilities (the neural head, classifier mlp, is never smoothed: it learns from the "
        "unpainted pixels itself)",
        advanced=True,
        label="cluster smoothing",
    )
    edge_smoothing: bool = param(
        True,
        "smooth the class probabilities along the image's intensity and texture edges (a "
        "guided filter of 6 px radius) before the labels are taken: fewer isolated wrong "
        "pixels, boundaries where the image has them; about 0.04 s per megapixel; off: no "
        "smoothing in the image plane (e.g. for classes only a few pixels wide)",
        advanced=True,
        label="edge smoothing",
    )
    pixel_size: float | None = param(
        None,
        "pixel size of the image (Å on the command line), stored with the classifier so its "
        "feature scales follow other images' pixel sizes; auto: read from the file or layer",
        lo=0,
        lo_open=True,
        none="auto",
        metavar="Å",
    )


@dataclass(frozen=True)
class ClassifyFiles(Spec):
    """Files of ``napari-interfaces classify``."""

    image: Path | None = param(
        None, "image file (grey or RGB)", positional=True, nargs="?", metavar="IMAGE", gui=False
    )
    scribbles: Path | None = param(
        None,
        "label image of strokes: 0 = unpainted, k = class k (at least two classes)",
        metavar="SCRIBBLES.tif",
        gui=False,
    )
    model: Path | None = param(
        None, "use a saved classifier instead of scribbles", metavar="MODEL.json", gui=False
    )
    save_model: Path | None = param(
        None, "save the classifier (MODEL.json + MODEL.npz)", metavar="MODEL.json", gui=False
    )
    out: Path | None = param(
        None,
        "output labels of IMAGE (.tif; class values as painted)",
        metavar="LABELS.tif",
        gui=False,
    )
    confidence: Path | None = param(
        None,
        "output confidence (float32, 0..1; default: LABELS_confidence.tif)",
        metavar="CONF.tif",
        gui=False,
    )
    apply_to: Path | None = param(
        None,
        "also label these images (every image of a folder; every frame of a multi-frame "
        "TIFF); writes STEM_labels.tif and STEM_confidence.tif into the apply-out folder",
        nargs="+",
        metavar="IMAGE_OR_FOLDER",
        gui=False,
    )
    apply_out: Path | None = param(
        None,
        "output folder of the applied and watched images (default: the labels' folder)",
        metavar="FOLDER",
        gui=False,
    )
    watch: Path | None = param(
        None,
        "label images in FOLDER as they are written (complete files only; stop with Ctrl-C or "
        "the watch timeout); writes into the apply-out folder, skipping images already "
        "labelled there (a resumed watch) unless --overwrite",
        metavar="FOLDER",
        gui=False,
    )
    watch_timeout: float | None = watch_timeout_param()
    poll: float = poll_param()
    overwrite: bool = param(False, "replace existing outputs", gui=False)
    json: bool = param(False, "print the summary as JSON", gui=False)


@dataclass
class ClassifyResult:
    """Labels, confidence and the classifier that made them.

    Attributes
    ----------
    labels : ndarray
        ``(H, W)`` with the painted class values.
    confidence : ndarray
        ``(H, W)`` float32 in ``[1/n_classes, 1]``: the winning class's probability.
    model : PixelClassifier
    pixel_size : float or None
        Of the labelled image, in ``unit``.
    unit : str
    notes : list of str
        What was assumed (e.g. equal pixel sizes).
    timings : dict
        Seconds for ``features``, ``fit`` and ``predict``.
    """

    labels: np.ndarray
    confidence: np.ndarray
    model: PixelClassifier
    pixel_size: float | None = None
    unit: str = "pixel"
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        vals, counts = np.unique(self.labels, return_counts=True)
        return {
            "classes": [int(v) for v in self.model.classes],
            "fractions": {
                int(v): round(float(c) / self.labels.size, 4) for v, c in zip(vals, counts)
            },
            "mean_confidence": round(float(self.confidence.mean()), 4),
            "low_confidence_fraction": round(float((self.confidence < 0.6).mean()), 4),
            "pixel_size": self.pixel_size,
            "unit": self.unit,
            "notes": list(self.notes),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }


def label_dtype(max_value: int):
    """Smallest unsigned dtype for class values up to ``max_value``."""
    return np.uint8 if max_value < 256 else (np.uint16 if max_value < 65536 else np.uint32)


def check_scribbles(scribbles: np.ndarray, shape: tuple[int, ...], name: str = "scribbles"):
    """The scribbles as an int64 ``(H, W)`` array; one-line :class:`InputError` otherwise."""
    s = np.asarray(scribbles)
    if s.ndim == 3 and s.shape[-1] in (3, 4):
        raise InputError(f"{name}: expected a label image (0 = unpainted, k = class k), got RGB")
    if s.shape != tuple(shape[:2]):
        raise InputError(f"{name}: shape {s.shape} differs from the image's {tuple(shape[:2])}")
    if s.dtype.kind == "f":
        if not np.isfinite(s).all() or (s != np.round(s)).any():
            raise InputError(f"{name}: expected whole-number labels, got fractional values")
    elif s.dtype.kind not in "iub":
        raise InputError(f"{name}: expected integer labels, got {s.dtype}")
    s = s.astype(np.int64)
    if (s < 0).any():
        raise InputError(f"{name}: labels must be >= 0 (0 = unpainted)")
    classes = np.unique(s[s > 0])
    if len(classes) < 2:
        raise InputError(
            f"{name}: paint at least two classes (found {len(classes)}: {classes.tolist()})"
        )
    return s


def train_classifier(
    features: np.ndarray,
    scribbles: np.ndarray,
    model: PixelClassifier | None = None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
) -> PixelClassifier:
    """Fit ``model`` (default a new :class:`PixelClassifier`) on the painted pixels.

    ``extra`` adds ``(x, y)`` training rows (e.g. confident unedited pixels).
    """
    s = check_scribbles(scribbles, features.shape[:2])
    m = s > 0
    x, y = features[m], s[m]
    if extra is not None:
        x = np.concatenate([x, extra[0]])
        y = np.concatenate([y, extra[1]])
    model = model or PixelClassifier()
    if model.kind in SEMI_SUPERVISED:  # the head's entropy term sees the whole image
        from .mlp import unlabeled_sample

        return model.fit(x, y, unlabeled_sample(features))
    return model.fit(x, y)


def predict_proba_fast(model: PixelClassifier, feats: np.ndarray, margin: float = 0.6):
    """Class probabilities of every pixel, exact where it matters, at about 1/3 of the cost.

    The forest first labels every second pixel of every second row; those
    probabilities are spread to their 2 x 2 blocks. Every pixel whose block
    is uncertain (top probability below ``margin``) or next to a block with
    another label is then predicted on its own features. Pixels inside
    confident, uniform areas keep their block's (exact, neighbouring)
    probabilities; every boundary and every doubtful pixel is exact.
    """
    return predict_parts_fast((model.predict_proba,), (1.0,), feats, margin)[0]


def predict_parts_fast(fns, weights, feats: np.ndarray, margin: float = 0.6) -> list:
    """:func:`predict_proba_fast` of a mixture ``sum(w * fn(feats))``: each part's
    probabilities, every pixel the mixture needs exact predicted exactly by every part."""
    from scipy import ndimage as ndi

    h, w, nf = feats.shape
    if h < 16 or w < 16:
        return [fn(feats) for fn in fns]
    # one contiguous copy of the coarse grid for every part (each copied it for itself)
    sub = np.ascontiguousarray(feats[::2, ::2], np.float32)
    coarse_parts = _each(fns, sub)
    del sub
    coarse = (
        coarse_parts[0] if len(fns) == 1 else sum(c * q for c, q in zip(coarse_parts, weights))
    )
    k = coarse.shape[-1]
    lab = coarse.argmax(-1)
    edge = np.zeros(lab.shape, bool)
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[:, :-1] |= lab[:, 1:] != lab[:, :-1]
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    edge[:-1, :] |= lab[1:, :] != lab[:-1, :]
    redo_c = ndi.binary_dilation(edge) | (coarse.max(-1) < margin)
    redo = np.repeat(np.repeat(redo_c, 2, 0), 2, 1)[:h, :w]
    redo[::2, ::2] = False  # those were predicted exactly
    rows = feats[redo].reshape(-1, nf) if redo.any() else None
    exact = _each(fns, rows) if rows is not None else [None] * len(fns)
    out = []
    for c, e in zip(coarse_parts, exact):
        proba = np.repeat(np.repeat(c, 2, 0), 2, 1)[:h, :w]
        if e is not None:
            proba[redo] = e.reshape(-1, k)
        out.append(proba)
    return out


def _each(fns, x) -> list:
    """``[fn(x) for fn in fns]``; with two or more parts (the forest and the neural head)
    the later ones run in a worker thread beside the first (the same values)."""
    if len(fns) == 1:
        return [fns[0](x)]
    from ..core.threads import beside

    box = []
    rest = beside(
        lambda: [fn(x) for fn in fns[1:]], lambda: box.append(fns[0](x)), overlap=OVERLAP
    )
    return [box[0], *rest]


def predict_proba_superpixels(model: PixelClassifier, feats: np.ndarray, segments: np.ndarray):
    """Class probabilities averaged inside superpixels (:func:`.features.superpixels`).

    The forest labels every second pixel of every second row; each pixel's
    probabilities are those of its 2 x 2 block, averaged over its
    superpixel. Superpixels follow the image's edges, so the average removes
    isolated wrong pixels without blurring across boundaries, at a quarter of
    the forest's per-pixel cost.
    """
    h, w, _ = feats.shape
    if h < 16 or w < 16:
        return model.predict_proba(feats)
    coarse = model.predict_proba(feats[::2, ::2])
    k = coarse.shape[-1]
    proba = np.repeat(np.repeat(coarse, 2, 0), 2, 1)[:h, :w].reshape(-1, k)
    seg = np.asarray(segments).ravel()
    count = np.maximum(np.bincount(seg), 1)
    mean = np.stack([np.bincount(seg, proba[:, j]) / count for j in range(k)], -1)
    return mean[seg].astype(np.float32).reshape(h, w, k)


def _predict(
    model, feats, progress, exact: bool = False, segments=None, strokes=None, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and confidence; ``strokes = (image, scribbles)`` spreads the strokes.

    With ``model.cluster_smoothing`` a forest's probabilities are first mixed
    with their feature-space cluster's mean (:mod:`.clusters`; not the neural
    head's, ``kind="mlp"``, which learns from the unpainted pixels itself).
    With ``model.edge_smoothing`` the (mixed) probabilities are then smoothed
    along the edges of the guide, ``model.edge_guide`` (:mod:`.guided`; the radius times ``scale``,
    the ratio of this image's feature scales to the training image's).
    """
    head = None
    wh = float(getattr(model, "head_weight", 0.0))

    def probabilities():
        if model.kind == "forest+mlp" and segments is None:
            # forest + neural head: the forest's part is cluster-smoothed, the head's is not
            parts = model.parts()
            if exact:
                return tuple(fn(feats) for fn in parts)
            return tuple(predict_parts_fast(parts, (1.0 - wh, wh), feats))
        if exact:
            return model.predict_proba(feats), None
        if segments is not None:
            return predict_proba_superpixels(model, feats, segments), None
        return predict_proba_fast(model, feats), None

    if getattr(model, "cluster_smoothing", False) and model.kind != "mlp":
        # the forests' probabilities only: the neural head learns from the unpainted pixels
        # itself, and smoothing it too lost 0.03 mean IoU in round 2 (docs/benchmarks.md).
        # The clusters (one thread, cached per feature array) are computed beside the
        # prediction.
        from ..core.threads import beside
        from .clusters import cached_feature_clusters, smooth_in_clusters

        box = []
        clusters = beside(
            lambda: cached_feature_clusters(feats),
            lambda: box.append(probabilities()),
            overlap=OVERLAP,
        )
        proba, head = box[0]
        proba = smooth_in_clusters(proba, clusters)
    else:
        proba, head = probabilities()
    if head is not None:
        proba *= 1.0 - wh
        proba += wh * head
    radius = float(getattr(model, "edge_smoothing", 0.0) or 0.0) * float(scale)
    if radius > 0 and model.settings.basic:
        # the guide: the smoothed intensity of the finest scale (G_u * I; the raw intensity
        # carries its noise into the probabilities)
        from .features import feature_names
        from .guided import guided_smooth, texture_channel

        names = feature_names(model.settings)
        col = next(i for i, n in enumerate(names) if n.startswith("smooth@"))
        # and with edge_guide "intensity+texture" (the default) the local standard deviation
        # at 16 px as a second channel: boundaries between textures of equal mean grey
        tcol = texture_channel(names, getattr(model, "edge_guide", "intensity"))
        texture = None if tcol is None else feats[..., tcol]
        proba = guided_smooth(proba, feats[..., col], radius, texture=texture)
    if strokes is not None:
        from .propagate import propagate_strokes

        proba = propagate_strokes(proba, strokes[0], strokes[1], model.classes, feats)
        np.clip(proba, 0.0, None, out=proba)
        proba /= np.maximum(proba.sum(-1, keepdims=True), 1e-6)
    progress.advance()
    idx = proba.argmax(-1)
    conf = np.take_along_axis(proba, idx[..., None], -1)[..., 0].astype(np.float32)
    classes = model.classes
    labels = classes[idx].astype(label_dtype(int(classes.max())))
    return labels, conf


def classify_image(
    image: np.ndarray,
    scribbles: np.ndarray,
    params: ClassifyParams | None = None,
    *,
    unit: str = "pixel",
    settings: FeatureSettings | None = None,
    model: PixelClassifier | None = None,
    cache: FeatureCache | None = None,
    progress: Progress | None = None,
    **values: Any,
) -> ClassifyResult:
    """Train on ``scribbles`` and label every pixel of ``image``.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, 3|4)``.
    scribbles : ndarray of int
        Same ``(H, W)``; 0 = unpainted, k > 0 = class k (at least two classes).
    params : ClassifyParams, optional
        ``features`` (feature set, :data:`.features.FEATURE_SETS`; None:
        ``settings``', the model's or the default ``"basic"``), ``sigmas``
        (feature scales; None: ``settings``', the model's or the
        defaults), ``classifier`` (:data:`.model.KINDS`; None: the model's
        own or ``"forest+mlp"``), ``propagate`` (True: spread the strokes with a random
        walker, :mod:`.propagate`; False: the model's own setting),
        ``cluster_smoothing`` (True, the default: the model's own setting,
        on for a new classifier: the probabilities are mixed with their
        feature-space cluster's mean, :mod:`.clusters`; False: off),
        ``edge_smoothing`` (True, the default: the model's own setting, on
        for a new classifier: a guided filter of the probabilities,
        :mod:`.guided`; False: off) and
        ``pixel_size`` (in ``unit``; stored with the classifier so it can be
        applied to images with other pixel sizes).
    unit : str
        Unit of the pixel size.
    settings : FeatureSettings, optional
        Feature settings (pixel size and unit are taken from the arguments).
    model : PixelClassifier, optional
        Forest parameters to use (refitted).
    cache : FeatureCache, optional
        Reuse the features of ``image`` between calls (the dock re-trains
        after every stroke).
    **values
        Parameters as keywords (``pixel_size=2.0``, ``sigmas=(1, 2, 4)``).
    """
    p = ClassifyParams.of(params, **values)
    pixel_size = p.pixel_size
    progress = as_progress(progress)
    progress.start(3, "pixel classifier")
    base = settings or (model.settings if model is not None else FeatureSettings())
    if p.features is not None:
        # which features are on (a preset such as basic+vgg-fast also sets its extras and
        # learned settings; FeatureSettings.with_feature_set)
        base = base.with_feature_set(p.features)
    settings = FeatureSettings(
        p.sigmas or base.sigmas,
        pixel_size or None,
        unit if pixel_size else "pixel",
        extras=base.extras,
        basic=base.basic,
        learned=base.learned,
        learned_components=base.learned_components,
        learned_downsample=base.learned_downsample,
    )  # no projection: learned features are projected on this image's own axes
    t0 = time.perf_counter()
    img = normalize_image(image)  # validates before the (cached) features
    cache = cache or FeatureCache(1)
    feats, settings = cache.get_with_settings(image, settings, normalized=img)
    if model is None:
        model = PixelClassifier(settings)
    else:
        model.settings = settings
    if p.propagate:
        model.propagate = True
    if p.classifier is not None:
        model.kind = p.classifier
    if not p.cluster_smoothing:
        model.cluster_smoothing = False
    if not p.edge_smoothing:
        model.edge_smoothing = 0.0
    progress.advance()
    t1 = time.perf_counter()
    train_classifier(feats, scribbles, model)
    progress.advance()
    t2 = time.perf_counter()
    step = float(getattr(model, "superpixel_step", 0.0) or 0.0)
    segments = cache.segments(image, step) if step > 0 else None
    strokes = None
    if getattr(model, "propagate", False):
        strokes = (img, check_scribbles(scribbles, feats.shape[:2]))
    labels, conf = _predict(model, feats, progress, segments=segments, strokes=strokes)
    t3 = time.perf_counter()
    return ClassifyResult(
        labels,
        conf,
        model,
        pixel_size or None,
        unit if pixel_size else "pixel",
        [],
        {"features": t1 - t0, "fit": t2 - t1, "predict": t3 - t2},
    )


def apply_classifier(
    model: PixelClassifier,
    image: np.ndarray,
    *,
    pixel_size: float | None = None,
    unit: str = "pixel",
    cache: FeatureCache | None = None,
    progress: Progress | None = None,
) -> ClassifyResult:
    """Label another image with a trained classifier (same physical feature scales)."""
    if not model.fitted:
        raise InputError("the pixel classifier is not trained yet: paint strokes first")
    progress = as_progress(progress)
    progress.start(2, "applying pixel classifier")
    s = model.settings
    sig = s.sigmas_for(pixel_size, unit)
    notes = []
    if s.pixel_size and pixel_size and sig != s.sigmas:
        ratio = sig[0] / s.sigmas[0]
        notes.append(f"feature scales x{ratio:.3g} for the pixel size {pixel_size:g} {unit}")
        if s.learned:
            notes.append("learned (VGG) features are not rescaled: they see this image's pixels")
    elif bool(s.pixel_size) != bool(pixel_size):
        notes.append("pixel sizes not both known: assumed equal to the training image's")
    if s.learned and s.projection is None:
        raise InputError("the classifier's learned features have no projection: train it again")
    t0 = time.perf_counter()
    cache = cache or FeatureCache(1)
    feats = cache.get(image, s, sigmas=sig)
    progress.advance()
    t1 = time.perf_counter()
    step = float(model.superpixel_step or 0.0) * sig[0] / s.sigmas[0]
    segments = cache.segments(image, step) if step > 0 else None
    labels, conf = _predict(model, feats, progress, segments=segments, scale=sig[0] / s.sigmas[0])
    return ClassifyResult(
        labels,
        conf,
        model,
        pixel_size or None,
        unit if pixel_size else "pixel",
        notes,
        {"features": t1 - t0, "predict": time.perf_counter() - t1},
    )


def apply_to_frames(
    model: PixelClassifier,
    frames: Any,
    *,
    pixel_size: float | None = None,
    unit: str = "pixel",
    progress: Progress | None = None,
) -> ClassifyResult:
    """Label every frame of a series with a trained classifier (:func:`apply_classifier`).

    Parameters
    ----------
    model : PixelClassifier
    frames : array-like
        ``(n, H, W)`` (or ``(n, H, W, 3|4)``) frames of one pixel size: an
        array, a dask array or an :class:`~napari_interfaces.io.micrograph.FrameStack`
        (read frame by frame); ``frames[i]`` is read only when labelled.
    pixel_size, unit
        Of every frame (see :func:`apply_classifier`).
    progress : Progress, optional
        One step per frame; cancelling stops between frames.

    Returns
    -------
    ClassifyResult
        ``labels`` and ``confidence`` of shape ``(n, H, W)``; ``notes`` those of
        the first frame; ``timings`` summed over the frames.

    Raises
    ------
    InputError
        Not a stack of frames, or the output would not fit the memory limit
        (checked before anything is labelled).
    """
    from ..core.limits import check_bytes

    if not model.fitted:
        raise InputError("the pixel classifier is not trained yet: paint strokes first")
    shape = tuple(int(n) for n in np.shape(frames))
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (3, 4)):
        raise InputError(f"a series: expected frames (n, H, W) or (n, H, W, 3|4), got {shape}")
    n, hw = shape[0], shape[1:3]
    dtype = label_dtype(int(model.classes.max()))
    check_bytes(
        n * hw[0] * hw[1] * (np.dtype(dtype).itemsize + 4),
        f"labels and confidence of {n} frames of {hw[0]} x {hw[1]}",
    )
    progress = as_progress(progress)
    progress.start(n, f"applying pixel classifier to {n} frames")
    labels = np.empty((n, *hw), dtype)
    conf = np.empty((n, *hw), np.float32)
    notes: list[str] = []
    timings: dict[str, float] = {}
    for i in range(n):  # features of one frame at a time (no cache: frames differ)
        r = apply_classifier(model, np.asarray(frames[i]), pixel_size=pixel_size, unit=unit)
        labels[i], conf[i] = r.labels, r.confidence
        notes = notes or r.notes
        for k, v in r.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        progress.advance()
    return ClassifyResult(
        labels,
        conf,
        model,
        pixel_size or None,
        unit if pixel_size else "pixel",
        [*notes, f"{n} frames"],
        timings,
    )
