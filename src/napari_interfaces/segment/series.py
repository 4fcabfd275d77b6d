"""Segmenting every frame of a series (a time, focal or tilt series of HRTEM frames).

:func:`segment_frames` runs :func:`~.inference.segment_image` on each frame,
reading one frame at a time, with **one pixel size for the whole series**:
the one given, or the one estimated on the first frame (frames of one
acquisition share their magnification, and particles measured at different
scales could not be compared frame to frame). The labels, particle
instances and uncertainty become stacks ``(frame, y, x)``; the particle
table gets a ``frame`` column (0-based). Particle ids run on through the
series (frame 2's first particle follows frame 1's last), so an id names one
particle of one frame in the stack, the table and a napari Labels layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.progress import Progress, as_progress

__all__ = ["SeriesSegmentation", "segment_frames"]


@dataclass
class SeriesSegmentation:
    """What :func:`segment_frames` produced, one entry per frame along axis 0.

    Attributes
    ----------
    labels : (n, H, W) uint8
    instances : (n, H, W) int32 or None
        Particle instances of each frame, numbered on through the series.
    uncertainty : (n, H, W) float32 or None
    particles : ParticleTable or None
        Every frame's particles, with a ``frame`` column.
    pixel_size : float
        Å/px, the same for every frame.
    pixel_size_source : str
        As :attr:`~.inference.SegmentationResult.pixel_size_source`, of the
        first frame (the others were given its pixel size).
    frames : list of dict
        Each frame's :meth:`~.inference.SegmentationResult.summary`.
    estimate : PixelSizeEstimate or None
        The first frame's pixel-size estimate, when one was made.
    """

    labels: np.ndarray
    instances: np.ndarray | None
    uncertainty: np.ndarray | None
    particles: Any
    pixel_size: float
    pixel_size_source: str
    frames: list[dict] = field(default_factory=list)
    estimate: Any = None

    @property
    def scale(self) -> float:
        """Zoom applied to reach the model's pixel size (the same for every frame)."""
        return float(self.frames[0]["scale"]) if self.frames else 1.0

    @property
    def seconds(self) -> dict[str, float]:
        """Wall times summed over the frames."""
        keys = self.frames[0]["seconds"] if self.frames else {}
        return {k: sum(f["seconds"].get(k, 0.0) for f in self.frames) for k in keys}

    @property
    def grid(self):
        """The stack's grid: frame index, then y and x in Å (axes ``tyx``)."""
        from ..core.geometry import Grid

        ps = float(self.pixel_size)
        return Grid((0.0, 0.0, 0.0), (1.0, ps, ps), "Å", "tyx")

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the first frame's summary, the frame count and per-frame counts."""
        d = dict(self.frames[0]) if self.frames else {}
        d["shape"] = list(self.labels.shape)
        d["frames"] = len(self.frames)
        d["foreground_fraction"] = round(float((self.labels > 0).mean()), 6)
        d["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        if self.particles is not None:
            d["n_particles"] = len(self.particles)
            d["n_particles_per_frame"] = [f.get("n_particles", 0) for f in self.frames]
        d.pop("mean_uncertainty", None)
        if self.uncertainty is not None:
            d["mean_uncertainty"] = round(float(self.uncertainty.mean()), 6)
        return d


def segment_frames(
    frames: Any,
    model,
    params=None,
    *,
    progress: Progress | None = None,
    **values: Any,
) -> SeriesSegmentation:
    """Segment every frame of a series with one pixel size (see the module docstring).

    Parameters
    ----------
    frames : array-like
        ``(n, H, W)`` (or ``(n, H, W, 3)``): an array, a dask array or an
        :class:`~napari_interfaces.io.micrograph.FrameStack`; ``frames[i]``
        is read only when segmented.
    model, params, values
        As :func:`~.inference.segment_image`.
    progress : Progress, optional
        One step per frame; cancelling stops inside the current frame.

    Returns
    -------
    SeriesSegmentation

    Raises
    ------
    InputError
        Not a stack of frames, or the stacks would not fit the memory limit
        (checked before the first frame is segmented).
    """
    from ..core.limits import check_bytes
    from .inference import SegmentParams, segment_image
    from .models import LoadedModel, load_model
    from .particles import ParticleTable

    shape = tuple(int(n) for n in np.shape(frames))
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (3, 4)):
        raise InputError(f"a series: expected frames (n, H, W) or (n, H, W, 3), got {shape}")
    p = SegmentParams.of(params, **values)
    n, hw = shape[0], shape[1:3]
    per_px = 1 + (4 if p.particles else 0) + (4 if p.uncertainty else 0)
    check_bytes(n * hw[0] * hw[1] * per_px, f"the results of {n} frames of {hw[0]} x {hw[1]}")
    if not isinstance(model, LoadedModel):
        model = load_model(model)
    progress = as_progress(progress)
    progress.start(n, f"segmenting {n} frames")
    inner = Progress(cancel_event=progress.cancel_event)  # tiles: cancel, no counting
    labels = np.zeros((n, *hw), np.uint8)
    inst = np.zeros((n, *hw), np.int32) if p.particles else None
    unc = np.zeros((n, *hw), np.float32) if p.uncertainty else None
    tables: list[dict[str, np.ndarray]] = []
    summaries: list[dict] = []
    ps, source, estimate, offset = p.pixel_size, "", None, 0
    for i in range(n):
        res = segment_image(np.asarray(frames[i]), model, p.replace(pixel_size=ps), progress=inner)
        if i == 0:
            ps, source, estimate = res.pixel_size, res.pixel_size_source, res.estimate
        labels[i] = res.labels
        if inst is not None and res.instances is not None:
            inst[i] = np.where(res.instances > 0, res.instances + offset, 0)
        if unc is not None and res.uncertainty is not None:
            unc[i] = res.uncertainty
        if res.particles is not None:
            cols = {"frame": np.full(len(res.particles), i, np.int64)}
            cols.update(res.particles.columns)
            if "id" in cols:
                cols["id"] = np.asarray(cols["id"]) + offset
            offset += len(res.particles)
            tables.append(cols)
        summaries.append(res.summary())
        progress.advance()
    table = None
    if p.particles:
        names = list(tables[0]) if tables else ["frame"]
        table = ParticleTable(
            {k: np.concatenate([t[k] for t in tables]) for k in names}
            if tables
            else {"frame": np.zeros(0, np.int64)},
            pixel_size=float(ps),
        )
    return SeriesSegmentation(labels, inst, unc, table, float(ps), source, summaries, estimate)
