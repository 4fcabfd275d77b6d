"""The "Open as..." dock: files napari opens itself, read the plugin's way.

The plugin's readers claim only formats napari cannot open (``.pos``,
``.epos``, ``.apt``, ``.ato``, range files, ``.dm3/.dm4/.emd/.mrc``), so a
plain TIFF, PNG, JPEG or CSV opens with napari's own reader and no reader
choice pops up. This dock opens such files explicitly:

* **as a micrograph with a pixel size** (TIFF/PNG/JPEG/DM/EMD/MRC): the
  pixel size recorded in the file, or the one typed here, becomes the Image
  layer's ``scale`` (Å), so the segmentation and clustering docks rescale
  correctly;
* **as an APT point cloud** (CSV/TXT with x, y, z, m columns, or a labelled
  ``.npz``), with a range file (``.rrng``/``.rng``/``.env``) chosen here or
  found beside it by stem.

Reading runs in the background (:meth:`Dock.run_job`); a bad file gives a
one-line notification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import InputError, ParameterError
from ._dock import Dock

__all__ = ["OpenAsDock", "micrograph_layers", "point_cloud_layers"]


def micrograph_layers(path: str | Path, pixel_size: float = 0.0, progress=None) -> list[tuple]:
    """LayerData tuples of one micrograph with its pixel size (Å).

    Parameters
    ----------
    path : path-like
        TIFF, PNG, JPEG (or DM3/DM4/EMD/MRC with rosettasciio).
    pixel_size : float
        Å per pixel; 0 uses the size recorded in the file (none: unscaled).
    """
    from ..io.micrograph import read_micrograph

    if progress is not None:
        progress.start(1, "reading micrograph")
    if not pixel_size >= 0:
        raise ParameterError("pixel size", f"must be zero or more, got {pixel_size!r}")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    mic = read_micrograph(path, warn_frames=False)  # a series opens whole below
    size = float(pixel_size) if pixel_size > 0 else mic.pixel_size
    source = "typed" if pixel_size > 0 else mic.source
    kwargs: dict[str, Any] = {
        "name": path.stem,
        "metadata": {
            "pixel_size": size,
            "pixel_unit": "Å",
            "pixel_size_source": source,
            "path": str(path),
        },
    }
    if mic.metadata.get("frames", 1) > 1:  # a series: every frame, read as napari shows it
        from .._hooks.micrograph import series_layers

        layers = series_layers(path, mic, size, kwargs)
        if progress is not None:
            progress.advance()
        return layers
    data = mic.data
    if size:
        kwargs["scale"] = (size, size)
        kwargs["units"] = ("Å", "Å")
    if data.ndim == 3:
        kwargs["rgb"] = True
    else:
        kwargs["colormap"] = "gray"
    if progress is not None:
        progress.advance()
    return [(data, kwargs, "image")]


def point_cloud_layers(
    path: str | Path, ranges: str | Path | None = None, progress=None
) -> list[tuple]:
    """LayerData tuples of an APT point cloud in a CSV/TXT/labelled NPZ (or any APT format).

    Parameters
    ----------
    path : path-like
        The point cloud.
    ranges : path-like, optional
        A range file; default: the one with the same stem, if any.
    """
    from .._hooks.apt_data import cloud_layers
    from ..apt.dataset import open_dataset

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    ranges = Path(ranges) if ranges else None
    if ranges is not None and not ranges.is_file():
        raise InputError(f"{ranges}: no such range file")
    ds = open_dataset(path, ranges, progress)
    return cloud_layers(ds.cloud, ds.ranges, ds.name)


class OpenAsDock(Dock):
    """Open a plain image as a micrograph, or a CSV/NPZ as an APT point cloud."""

    title = "Open as..."

    def __init__(self, napari_viewer=None, sync: bool = False) -> None:
        super().__init__(napari_viewer, sync=sync)
        self.add_section("Micrograph with pixel size")
        self.image_path = self.add_param(
            "image_path",
            Path(),
            label="image",
            mode="r",
            filter="Images (*.tif *.tiff *.png *.jpg *.jpeg *.dm3 *.dm4 *.emd *.mrc)",
            tooltip="a micrograph napari would open as a plain image",
        )
        self.pixel_size = self.add_param(
            "pixel_size",
            0.0,
            label="pixel size (Å)",
            min=0.0,
            max=1e6,
            step=0.01,
            tooltip="Å per pixel; 0 = the size recorded in the file (none: unscaled)",
        )
        self.add_button(
            "Open as micrograph",
            self.open_micrograph,
            tooltip="read it and add an Image layer",
            footer=False,
        )
        self.add_section("APT point cloud")
        self.cloud_path = self.add_file(
            "cloud_path",
            "point_cloud",
            label="point cloud",
            tooltip="CSV/TXT with x, y, z and m columns, or a labelled .npz",
        )
        self.ranges_path = self.add_file(
            "ranges_path",
            "ranges",
            label="range file",
            tooltip="optional; default: the .rrng/.rng/.env with the same stem",
        )
        self.add_button(
            "Open as point cloud",
            self.open_point_cloud,
            tooltip="read it and add composition and Points layers",
            footer=False,
        )

    @staticmethod
    def _path(widget) -> Path | None:
        value = widget.value
        return Path(value) if value and str(value) not in ("", ".") else None

    def _chosen(self, widget, what: str) -> Path:
        """The file chosen in ``widget``; an InputError ("choose <what> first") when empty."""
        path = self._path(widget)
        if path is None:
            raise InputError(f"choose {what} first")
        return path

    def open_micrograph(self):
        path = self._chosen(self.image_path, "an image file")
        return self.run_job(
            micrograph_layers,
            path,
            float(self.pixel_size.value),
            description=f"opening {path.name}",
            on_done=self._add_layers,
        )

    def open_point_cloud(self):
        path = self._chosen(self.cloud_path, "a point cloud file")
        return self.run_job(
            point_cloud_layers,
            path,
            self._path(self.ranges_path),
            description=f"opening {path.name}",
            on_done=self._add_layers,
        )

    def _add_layers(self, layers: list[tuple]) -> None:
        if self.viewer is None:
            return
        for data, kwargs, kind in layers:
            getattr(self.viewer, f"add_{kind}")(data, **kwargs)
        self.set_status(f"added {len(layers)} layer(s)")
