"""APT cluster analysis dock: maximum separation / DBSCAN / HDBSCAN on a point cloud.

Form and layer glue only: the engine is
:func:`napari_interfaces.apt.clusters.cluster_dataset` (the same call as
``napari-interfaces apt clusters``). The clustered ions are shown as a napari
Points layer (zyx, nm) coloured by cluster id with the id in the layer's
features; a table lists the clusters (solute atoms, Guinier radius,
composition ± counting error) and the status line gives the randomized-label
verdict and the parameters chosen (order, dmax, Nmin: "auto" = chosen from the data).
The parameter form is generated from
:class:`~napari_interfaces.apt.clusters.ClusterParams`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ._dock import Dock

__all__ = ["AptClustersDock", "cluster_colors"]

TABLE_COLUMNS = ("cluster", "n_solute_atoms", "n_atoms", "guinier_radius_nm")
#: Readable table headers (and their tooltips) for the summary columns.
TABLE_HEADERS = {
    "cluster": ("Cluster", "cluster id (1 = largest)"),
    "n_solute_atoms": ("Solute atoms", "solute atoms in the cluster (molecular ions decomposed)"),
    "n_atoms": ("Atoms", "all atoms in the cluster, envelope included"),
    "guinier_radius_nm": ("Guinier radius (nm)", "sqrt(5/3) x radius of gyration of the solutes"),
}
#: Opacity of the source point cloud while clusters are shown (3D: clusters on top).
DIM_OPACITY = 0.08


def default_solutes(elements: list[str], counts: dict[str, float] | None = None) -> list[str]:
    """Every ranged element but the matrix (the most abundant one; the first listed
    when no counts are known)."""
    if not elements:
        return []
    if counts and any(counts.get(e, 0) > 0 for e in elements):
        matrix = max(elements, key=lambda e: counts.get(e, 0.0))
    else:
        matrix = elements[0]
    return [e for e in elements if e != matrix]


def cluster_colors(ids: np.ndarray) -> np.ndarray:
    """RGBA per cluster id from a categorical palette (tab20, cycled)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return np.asarray(cmap((np.asarray(ids) - 1) % 20), np.float32)


def _run(path: str, ranges: str | None, solutes: list[str], params, progress=None):
    """The dock's job; ``params``: a :class:`~napari_interfaces.apt.clusters.ClusterParams`."""
    from ..apt.clusters import cluster_dataset
    from ..apt.dataset import open_dataset

    ds = open_dataset(path, ranges or None, progress=progress, require_ranges=True)
    res = cluster_dataset(ds, solutes, params, progress=progress)
    return ds, res


class AptClustersDock(Dock):
    """Cluster analysis of one APT point cloud (file + range file)."""

    title = "APT cluster analysis"

    def __init__(self, napari_viewer=None, sync: bool = False) -> None:
        super().__init__(napari_viewer, sync=sync)
        self.file = self.add_file(
            "point_cloud", "point_cloud", tooltip="point cloud file (.pos, .epos, .apt, ...)"
        )
        self.ranges = self.add_file(
            "range_file",
            "ranges",
            tooltip="range file; empty = the file with the same stem beside the point cloud",
        )
        self.solutes = self.add_param(
            "solutes",
            "",
            tooltip="solute elements to cluster, separated by spaces; filled from the open "
            "dataset's ranged elements (all but the matrix element)",
        )
        from ..apt.clusters import ClusterParams
        from ._form import SpecForm

        # method, dmax, order, Nmin, envelope, erosion (+ advanced): the engine's spec;
        # "auto" (the lowest value) = chosen from the data, as the CLI's default
        self.form = SpecForm(self, ClusterParams)
        self.method = self.form["method"]
        self.dmax = self.form["dmax"]
        self.order = self.form["order"]
        self.nmin = self.form["n_min"]
        self.envelope = self.form["envelope_nm"]
        self.erosion = self.form["erosion_nm"]
        self.run_button = self.add_button(
            "Find clusters", self.run, tooltip="run the cluster analysis in the background"
        )
        self.save_button = self.add_button(
            "Save results…",
            self.save,
            tooltip="write clusters.csv, summary.json, labels.npz and nn_check.png to a folder",
            job=False,
        )
        from qtpy.QtWidgets import QTableWidget

        self.table = QTableWidget(0, 0)
        self.table.setMinimumHeight(160)
        self.add_native(self.table)
        self.result = None
        self.dataset = None
        self.layer = None
        self._dimmed: list[tuple[Any, float]] = []
        self._auto: dict[str, str] = {}  # fields filled from an open dataset
        self.file.changed.connect(self._file_changed)
        if self.viewer is not None:
            self._pick_up_layer()

    # -- inputs from the open dataset ----------------------------------------
    def reset_choices(self, *args: Any) -> None:
        super().reset_choices(*args)
        if getattr(self, "viewer", None) is not None and hasattr(self, "solutes"):
            self._pick_up_layer()

    def _pick_up_layer(self) -> None:
        """Fill the file, range file and solutes from the newest point cloud our
        reader opened (layer metadata ``apt_source``), when they are empty."""
        for layer in reversed(list(self.viewer.layers)):
            md = getattr(layer, "metadata", None) or {}
            src = md.get("apt_source")
            if not src or md.get("what") == "clusters":
                continue
            if _text(self.file.value) and _text(self.file.value) != str(src):
                return  # the user chose another file: leave the form alone
            if not _text(self.file.value):
                self.file.value = Path(src)
            if not _text(self.ranges.value) and md.get("range_file"):
                self.ranges.value = Path(md["range_file"])
                self._auto["ranges"] = _text(self.ranges.value)
            if not str(self.solutes.value).strip():
                self._default_solutes(layer, md.get("range_file"))
                self._auto["solutes"] = str(self.solutes.value)
            return

    def _file_changed(self, *_: Any) -> None:
        """A new point cloud: forget the range file and solutes taken from the old one."""
        if self._auto.get("ranges") and _text(self.ranges.value) == self._auto["ranges"]:
            self.ranges.value = Path("")
        if self._auto.get("solutes") and str(self.solutes.value) == self._auto["solutes"]:
            self.solutes.value = ""
        self._auto.clear()

    def _default_solutes(self, layer, range_file: str | None) -> None:
        from ..io.ranges import read_ranges

        if not range_file:
            return
        try:
            rt = read_ranges(range_file)
        except (OSError, ValueError):
            return
        counts: dict[str, float] = {}
        feats = getattr(layer, "features", None)
        if feats is not None and "species" in feats:
            names, n = np.unique(np.asarray(feats["species"]).astype(str), return_counts=True)
            for sp, c in zip(names.tolist(), n.tolist()):
                for el, k in rt.species_composition.get(sp, {}).items():
                    counts[el] = counts.get(el, 0.0) + k * c
        sol = default_solutes(list(rt.elements), counts)
        if sol:
            self.solutes.value = " ".join(sol)

    # -- actions ------------------------------------------------------------
    def parameters(self):
        """The validated :class:`~napari_interfaces.apt.clusters.ClusterParams` of the form
        (a bad value is marked on its field and raised)."""
        return self.form.spec()

    def run(self):
        path = str(self.file.value or "")
        if not path or path == "." or not Path(path).is_file():
            raise InputError("choose a point cloud file")
        rng = str(self.ranges.value or "")
        # an empty file field can come back as "." or the working folder
        rng = rng if rng and rng != "." and not Path(rng).is_dir() else None
        solutes = [s for s in str(self.solutes.value).replace(",", " ").split() if s]
        if not solutes:
            from ..io.ranges import find_range_file, read_ranges

            rf = rng or find_range_file(path)
            if rf is not None:
                solutes = default_solutes(list(read_ranges(rf).elements))
                self.solutes.value = " ".join(solutes)
        if not solutes:
            raise InputError("solutes: give at least one element of the range file")
        params = self.parameters()
        return self.run_job(
            _run,
            path,
            rng,
            solutes,
            params,
            description="cluster analysis",
            on_done=self._show,
        )

    def save(self) -> None:
        from ..apt.clusters import write_cluster_results
        from ..core.outputs import atomic_dir, check_output

        if self.result is None:
            raise InputError("run the cluster analysis first")
        folder = self.ask_save_path("Folder for the cluster results", "clusters")
        if folder is None:
            return
        inputs = [self.dataset.provenance.get("path"), self.dataset.provenance.get("range_file")]
        check_output(folder, [p for p in inputs if p], overwrite=True)
        with atomic_dir(folder) as tmp:
            write_cluster_results(self.result, self.dataset.cloud, tmp)
        self.set_status(f"saved to {folder}")

    # -- display --------------------------------------------------------------
    def _show(self, out) -> None:
        from ._layers import add_or_update_layer, layer_kwargs

        ds, res = out
        self.dataset, self.result = ds, res
        sel = np.flatnonzero(res.labels > 0)
        ids = res.labels[sel]
        zyx = np.asarray(ds.cloud.xyz[sel], np.float32)[:, ::-1].copy()
        name = f"clusters [{Path(str(ds.provenance.get('path') or 'cloud')).stem}]"
        if self.viewer is not None and len(ids):  # no empty Points layer when nothing is found
            self.layer = add_or_update_layer(
                self.viewer,
                zyx,
                "points",
                **layer_kwargs(
                    1.0,
                    "nm",
                    ndim=3,
                    name=name,
                    size=0.3,
                    border_width=0,
                    face_color=cluster_colors(ids) if len(ids) else "white",
                    features={"cluster": ids.astype(np.int32)},
                    metadata={"apt_source": ds.provenance.get("path"), "what": "clusters"},
                    blending="translucent_no_depth",  # drawn over the ions in 3D
                ),
            )
            self._dim_sources(ds.provenance.get("path"))
        self._fill_table(res)
        s = res.summary
        msg = f"{s['n_clusters']} clusters, {s['number_density_m3']:.3g} m⁻³"
        par = s["parameters"]
        why = s.get("auto_parameters", {}).get("why", {})
        names = {"order": "order", "dmax": "dmax", "n_min": "Nmin"}
        chosen = [names[k] for k in names if why.get(k, "given") != "given"]
        msg += f" (order {par['order']}, dmax {par['dmax']:g} nm, Nmin {par['n_min']}" + (
            f"; {', '.join(chosen)} chosen from the data)" if chosen else ")"
        )
        if "random_check" in s:
            msg += f". {s['random_check']['verdict']}"
        self.set_status(msg)

    def _dim_sources(self, source: str | None) -> None:
        """Dim the ions of the analysed cloud and keep the clusters layer on top."""
        if self.viewer is None or self.layer is None:
            return
        for layer in list(self.viewer.layers):
            md = getattr(layer, "metadata", None) or {}
            if layer is self.layer or md.get("what") == "clusters":
                continue
            if source and md.get("apt_source") == source and layer.opacity > DIM_OPACITY:
                self._dimmed.append((layer, float(layer.opacity)))
                layer.opacity = DIM_OPACITY
        layers = self.viewer.layers
        i = layers.index(self.layer)
        if i != len(layers) - 1:
            layers.move(i, len(layers))

    def _fill_table(self, res) -> None:
        from qtpy.QtWidgets import QTableWidgetItem

        els = res.elements
        heads = [TABLE_HEADERS[c] for c in TABLE_COLUMNS]
        heads += [(f"{e} (at.%)", f"{e} concentration ± counting error") for e in els]
        self.table.clear()
        self.table.setColumnCount(len(heads))
        self.table.setHorizontalHeaderLabels([h for h, _ in heads])
        for j, (_, tip) in enumerate(heads):
            self.table.horizontalHeaderItem(j).setToolTip(tip)
        self.table.setRowCount(len(res.clusters))
        for i, r in enumerate(res.clusters):
            vals = [str(r[c]) for c in TABLE_COLUMNS]
            vals += [f"{r[f'{e}_at%']:.1f} ± {r[f'{e}_err_at%']:.1f}" for e in els]
            for j, v in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self.table.resizeColumnsToContents()


def _text(value: Any) -> str:
    text = str(value) if value is not None else ""
    # an empty file field can come back as "." or as the working folder
    return "" if text in ("", ".") or Path(text).is_dir() else text
