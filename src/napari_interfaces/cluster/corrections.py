"""Learn from corrections: a classifier on chip features from user-edited labels.

The user merges, splits or repaints communities in napari; every chip then
takes the majority label of its footprint in the corrected Labels image, a
multinomial logistic regression (scikit-learn) is fitted on the
standardized chip features, and all chips are re-labelled and painted.

The fitted pipeline (extractor name + settings, chip grid settings, feature
scaling, classifier coefficients) is saved as two plain files: ``NAME.json``
(settings) and ``NAME.npz`` (numbers, read with ``allow_pickle=False``).
Loading never executes code. :func:`apply_to_folder` labels a folder of
images with it.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.cluster.pipeline import segment_by_communities
>>> from napari_interfaces.cluster.synthetic import texture_mosaic
>>> from napari_interfaces.cluster.corrections import learn_from_corrections
>>> img, truth = texture_mosaic((256, 256), n_classes=3, seed=2)
>>> res = segment_by_communities(img, chip=32, stride=16)
>>> model, labels, chip_labels = learn_from_corrections(res, truth)
>>> sorted(model.classes.tolist())
[1, 2, 3]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from ..io.micrograph import MICROGRAPH_SUFFIXES
from .paint import chip_labels_from_image, paint_labels
from .pairfile import load_pair, pair_paths, save_pair
from .pipeline import ChipSetup, Classifier, label_chips

__all__ = [
    "ApplyFiles",
    "CorrectionModel",
    "fit_corrections",
    "learn_from_corrections",
    "apply_model",
    "apply_to_folder",
    "confident_pixels",
    "learn_pixels_from_corrections",
]

FORMAT = "napari-interfaces/cluster-corrections"
VERSION = 1


@dataclass(frozen=True)
class ApplyFiles(Spec):
    """Files of ``napari-interfaces cluster-apply`` (a saved corrections model on new images)."""

    model: Path | None = param(
        None, "MODEL.json (MODEL.npz beside it)", positional=True, metavar="MODEL", gui=False
    )
    inputs: Path | None = param(
        None,
        "images, or folders of images, to label",
        positional=True,
        nargs="+",
        metavar="IMAGE_OR_FOLDER",
        gui=False,
    )
    out: Path | None = param(
        None, "output folder for *_labels.tif (required)", metavar="FOLDER", gui=False
    )
    overwrite: bool = param(False, "replace an existing output folder", gui=False)


@dataclass
class CorrectionModel:
    """A fitted chip classifier plus everything needed to compute its features."""

    extractor: dict
    chip: int
    stride: int
    classes: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    border: str = "shift"
    clahe: bool = False
    extra: dict = field(default_factory=dict)

    def decision(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float64) - self.mean) / self.scale
        return x @ self.coef.T + self.intercept

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class label (from :attr:`classes`) of every feature row."""
        d = self.decision(features)
        if d.ndim == 1 or d.shape[1] == 1:  # binary
            d = np.ravel(d)
            return self.classes[(d > 0).astype(int)]
        return self.classes[np.argmax(d, axis=1)]

    # ---------------------------------------------------------------- files
    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.json`` and ``<stem>.npz`` (each atomically); returns both paths."""
        meta = {
            "format": FORMAT,
            "version": VERSION,
            **ChipSetup.of(self).to_meta(),
            "classes": [int(c) for c in self.classes],
            "classifier": "logistic_regression",
            "n_features": int(self.mean.shape[0]),
            "extra": self.extra,
        }
        return save_pair(
            path,
            meta,
            {
                "mean": self.mean,
                "scale": self.scale,
                "coef": self.coef,
                "intercept": self.intercept,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> CorrectionModel:
        """Read a model saved by :meth:`save` (``.json`` or ``.npz`` path or stem).

        Raises
        ------
        InputError
            Not such a model, or the two files disagree.
        """
        meta, raw = load_pair(path, FORMAT, "cluster corrections model")
        js, npz = pair_paths(path)
        try:
            arrays = {
                k: np.asarray(raw[k], np.float64) for k in ("mean", "scale", "coef", "intercept")
            }
            classes = np.asarray(meta["classes"], np.int64)
            nf = int(meta["n_features"])
        except (KeyError, ValueError, TypeError, OSError) as exc:
            raise InputError(f"{npz}: not a valid corrections model: {exc}") from None
        if arrays["mean"].shape != (nf,) or arrays["coef"].shape[-1] != nf:
            raise InputError(f"{npz}: arrays do not match {js.name} ({nf} features)")
        from .pairfile import check_settings

        check_settings(js, meta, "cluster corrections model")
        rows = 1 if len(classes) == 2 else len(classes)
        if (
            len(classes) < 2
            or arrays["coef"].shape != (rows, nf)
            or arrays["intercept"].shape != (rows,)
        ):
            raise InputError(
                f"{npz}: {len(classes)} classes in {js.name} but coef {arrays['coef'].shape} "
                f"and intercept {arrays['intercept'].shape}; the two files do not match"
            )
        try:
            setup = ChipSetup.from_meta(meta)
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{js}: not a valid corrections model: {exc}") from None
        return cls(
            **setup.fields(),
            classes=classes,
            extra=meta.get("extra", {}),
            **arrays,
        )


def fit_corrections(
    features: np.ndarray,
    chip_labels: np.ndarray,
    extractor: dict,
    chip: int,
    stride: int,
    border: str = "shift",
    clahe: bool = False,
    C: float = 1.0,
) -> CorrectionModel:
    """Fit the classifier on chips with a label > 0.

    Raises
    ------
    InputError
        Fewer than two labels among the chips.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, np.float64)
    y = np.asarray(chip_labels, np.int64)
    use = y > 0
    classes = np.unique(y[use])
    if len(classes) < 2:
        raise InputError(
            "the corrected labels hold fewer than two communities; paint at least two"
        )
    mean = x[use].mean(0)
    scale = x[use].std(0)
    scale[scale < 1e-9] = 1.0
    clf = LogisticRegression(C=C, max_iter=2000)
    clf.fit((x[use] - mean) / scale, y[use])
    return CorrectionModel(
        dict(extractor),
        int(chip),
        int(stride),
        clf.classes_.astype(np.int64),
        mean,
        scale,
        clf.coef_.astype(np.float64),
        clf.intercept_.astype(np.float64),
        border,
        bool(clahe),
        {"n_train_chips": int(use.sum())},
    )


def learn_from_corrections(
    result, corrected_labels: np.ndarray, C: float = 1.0, refine: bool = False
):
    """Fit on a :class:`~.pipeline.ClusterResult` and its user-corrected Labels; relabel all chips.

    Returns ``(model, labels (H, W), chip_labels (N,))``.
    """
    chip_lab = chip_labels_from_image(np.asarray(corrected_labels), result.grid)
    s = result.settings
    model = fit_corrections(
        result.features,
        chip_lab,
        s["features"],
        result.grid.chip,
        result.grid.stride,
        result.grid.border,
        s.get("clahe", False),
        C=C,
    )
    new = model.predict(result.features)
    labels = paint_labels(new, result.grid, image=result.image, refine=refine)
    return model, labels, new


def confident_pixels(
    labels: np.ndarray,
    margin: float,
    exclude: np.ndarray | None = None,
    max_pixels: int = 20_000,
    seed: int = 0,
) -> np.ndarray:
    """Unedited pixels whose community label can be trusted: far from every boundary.

    A pixel is confident when it lies at least ``margin`` pixels inside its
    community (chip boundaries are blocky, so about half a chip); pixels in
    ``exclude`` (the edited ones and the communities the user split by
    painting a new label into them) never are. At most ``max_pixels``,
    sampled evenly over the labels (seeded).
    """
    from scipy import ndimage as ndi

    lab = np.asarray(labels)
    inside = np.zeros(lab.shape, bool)
    for v in np.unique(lab):
        if v == 0:
            continue
        inside |= ndi.distance_transform_edt(lab == v) >= margin
    if exclude is not None:
        inside &= ~exclude
    idx = np.flatnonzero(inside)
    if len(idx) > max_pixels:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(idx, max_pixels, replace=False))
    mask = np.zeros(lab.size, bool)
    mask[idx] = True
    return mask.reshape(lab.shape)


def learn_pixels_from_corrections(
    result,
    corrected_labels: np.ndarray,
    *,
    painted: np.ndarray | None = None,
    include_confident: bool = False,
    classifier: str | None = None,
    cache=None,
    progress: Progress | None = None,
):
    """Train the pixel classifier on exactly the edited pixels of a communities result.

    Chip communities are a first proposal; the user repaints some pixels
    (a new label, or another community's label) and this fits the
    stroke-trained pixel classifier (:mod:`napari_interfaces.classify`) on
    those pixels only, then labels every pixel: a new label painted on a few
    pixels spreads to every similar region of the image.

    Parameters
    ----------
    result : ClusterResult
        The communities the user corrected (``result.labels`` is the proposal).
    corrected_labels : ndarray
        The Labels layer after the user's edits.
    painted : ndarray of bool, optional
        The pixels the user painted (default: where ``corrected_labels``
        differs from ``result.labels``). Painting a community's own label
        over it counts only when given here (the dock records paint events).
    include_confident : bool
        Also train on unedited pixels deep inside communities the user did
        not paint a new label into (:func:`confident_pixels`), with their
        community label.
    classifier : str, optional
        The pixel classifier's kind (:data:`napari_interfaces.classify.model.KINDS`;
        default ``"forest+mlp"``, the forest mixed with the neural head that also
        learns from the unpainted pixels: it spreads a new label further than
        the forest alone (``"random_forest"``; on the texture mosaic of the
        corrections test: new-label IoU 0.94 against 0.61) and keeps the other
        textures' labels (0.97 against 0.99); ``"mlp"``, the head alone,
        spreads it about as far (0.88) but more of it leaks into other textures.
    cache : FeatureCache, optional
        Features of ``result.image`` kept between calls.

    Returns
    -------
    ClassifyResult
        ``labels`` (corrected class values on every pixel), ``confidence``,
        ``model`` (a :class:`~napari_interfaces.classify.model.PixelClassifier`)
        and ``notes`` (how many edited and confident pixels it learnt from).

    Raises
    ------
    InputError
        Shapes differ, nothing was edited, or fewer than two classes to learn.
    """
    from ..classify.workflow import classify_image

    original = np.asarray(result.labels)
    corr = np.asarray(corrected_labels)
    if corr.shape != original.shape:
        raise InputError(
            f"corrected labels {corr.shape} and communities {original.shape} differ in shape"
        )
    edited = (corr != original) if painted is None else np.asarray(painted, bool)
    if edited.shape != original.shape:
        raise InputError(f"painted mask {edited.shape} and labels {original.shape} differ")
    edited = edited & (corr > 0)
    if not edited.any():
        raise InputError("no edited pixels: paint corrections on the communities layer first")
    scribbles = np.where(edited, corr, 0).astype(np.int64)
    n_edit = int(edited.sum())
    n_conf = 0
    img = getattr(result, "_gray", None)
    if img is None:  # one array per result, so a FeatureCache hits on the next call
        img = np.asarray(result.image)
        img = img.mean(-1) if img.ndim == 3 else img
        result._gray = img
    if cache is None:
        from ..classify.features import FeatureCache

        cache = result.__dict__.setdefault("_feature_cache", FeatureCache(1))
    kw = {"pixel_size": result.pixel_size, "unit": result.unit, "cache": cache}
    if include_confident:
        # a community the user painted another label into is split: not trusted any more
        # (paint a stroke of its own label where it stays, see ``painted``)
        split = np.unique(original[edited & (corr != original)])
        exclude = edited | np.isin(original, split)
        conf = confident_pixels(original, max(2.0, result.grid.chip / 2.0), exclude)
        scribbles[conf] = original[conf]
        n_conf = int(conf.sum())
    classes = np.unique(scribbles[scribbles > 0])
    if len(classes) < 2:
        hint = "" if include_confident else " or ask to learn from confident unedited regions"
        raise InputError(
            f"the edits hold one label ({classes.tolist()}); paint at least two labels{hint}"
        )
    if classifier is not None:
        kw["classifier"] = classifier
    out = classify_image(img, scribbles, progress=progress, **kw)
    out.notes.append(f"learnt from {n_edit} edited pixels and {n_conf} confident unedited ones")
    out.model.extra.update({"n_edited": n_edit, "n_confident": n_conf})
    return out


def apply_model(
    model: CorrectionModel, images, progress: Progress | None = None, weights: str | None = None
):
    """Label new image(s) with a fitted model; returns ``(labels, chip_labels)``.

    The chip featurizer and painting of :mod:`.pipeline` with the
    :class:`~.pipeline.Classifier` labeller; ``weights`` replaces the
    model's weights file (its sha256 must match).
    """
    chips = ChipSetup.of(model).features(images, owner="model", weights=weights, progress=progress)
    res = label_chips(chips, Classifier(model), table=False)
    return res.labels, res.chip_labels


IMAGE_SUFFIXES = MICROGRAPH_SUFFIXES  # the one list (io/micrograph.py)


def apply_to_folder(
    model: CorrectionModel | str | Path,
    folder: str | Path,
    out_folder: str | Path,
    progress: Progress | None = None,
) -> list[Path]:
    """Label every image in ``folder``; writes ``<stem>_labels.tif`` into ``out_folder``.

    Each file is written atomically; ``out_folder`` must be checked by the
    caller (:func:`napari_interfaces.core.outputs.check_output`).
    """
    from ..io.tiff import write_tiff

    if not isinstance(model, CorrectionModel):
        model = CorrectionModel.load(model)
    folder, out_folder = Path(folder), Path(out_folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise InputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    out_folder.mkdir(parents=True, exist_ok=True)
    progress = as_progress(progress)
    written = []
    progress.start(len(files), "applying model")
    for f in files:
        labels, _ = apply_model(model, f)
        out = out_folder / f"{f.stem}_labels.tif"
        write_tiff(out, labels.astype(np.uint16))
        written.append(out)
        progress.advance()
    return written
