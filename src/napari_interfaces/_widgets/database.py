"""The "Simulated database" dock: a magicgui form over :func:`~napari_interfaces.simulate.database.generate_database`.

1. **Spec**: start from a shipped example (or type your own YAML) and edit it.
2. **Generate**: number of samples, seed, output store and where to compute
   (this process, a local dask cluster, or a dask scheduler address; a
   scheduler can run code in this process, so use only one you started).
   A background job with progress in napari's activity panel and Cancel;
   the button is disabled while it runs; re-running the same settings
   resumes an interrupted store.
3. **Browse**: the sample index shows that sample's image and labels (read
   off the GUI thread) with their pixel size in Å, and its drawn parameters.

The form sits in a scroll area (the :class:`~._dock.Dock` base), so it
neither clips nor overlaps other docks on a small screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError
from ..simulate.database import DatabaseParams
from ._dock import Dock, select_choice
from ._form import SpecForm
from ._layers import layer_kwargs

if TYPE_CHECKING:
    import napari

__all__ = ["DatabaseWidget", "generate_job", "read_sample_job"]

SCHEDULERS = ("this process", "local dask cluster", "dask scheduler address")


def generate_job(spec_text: str, out: str, params: DatabaseParams, scheduler, progress=None):
    """Engine work of **Generate**: the recipe is YAML text (see :func:`~napari_interfaces.simulate.spec.load_spec`)."""
    from ..simulate.database import generate_database

    text = spec_text if spec_text.endswith("\n") else spec_text + "\n"
    return generate_database(text, out, params, scheduler=scheduler, progress=progress)


def read_sample_job(store: str, index: int, progress=None) -> dict[str, Any]:
    """One sample of a store with its pixel size (Å): ``image``, ``labels``, ``meta``, ``pixel_size``."""
    from ..simulate.database import read_attrs, read_sample

    image, labels, meta = read_sample(store, int(index))
    ps = float(read_attrs(store).get("pixel_size") or 1.0)
    return {"image": image, "labels": labels, "meta": meta, "pixel_size": ps, "index": int(index)}


_UNIT_HINTS = {
    "pixel_size": "Å", "sampling": "Å", "defocus": "Å", "extent": "Å", "diameter": "Å",
    "thickness": "Å", "energy": "kV", "energy_kv": "kV", "dose": "e/Å²", "cs": "Å",
    "focal_spread": "Å",
}  # fmt: skip


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) <= 6 and all(not isinstance(v, (dict, list, tuple)) for v in value):
            return ", ".join(_fmt(v) for v in value)
        return f"{len(value)} values"
    if value is None:
        return "—"
    return str(value)


def readable_fields(params: dict, prefix: str = "") -> list[tuple[str, str]]:
    """A sample's drawn parameters as ``(name, value)`` rows: nested keys joined by " › ",
    numbers to 4 significant digits, short lists inline, units where known.

    >>> readable_fields({"imaging": {"defocus": -61.23456, "d_spacing": 2.04}, "n": [1, 2]})
    [('imaging › defocus (Å)', '-61.23'), ('imaging › d spacing', '2.04'), ('n', '1, 2')]
    """
    rows: list[tuple[str, str]] = []
    for key, value in params.items():
        name = prefix + str(key).replace("_", " ")
        if isinstance(value, dict):
            rows += readable_fields(value, f"{name} › ")
            continue
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                rows += readable_fields(item, f"{name} {i + 1} › ")
            continue
        unit = _UNIT_HINTS.get(str(key))
        rows.append((f"{name} ({unit})" if unit else name, _fmt(value)))
    return rows


class DatabaseWidget(Dock):
    """Generate simulated HRTEM databases and browse their samples (see the module docs).

    Parameters
    ----------
    napari_viewer : napari.Viewer, optional
    sync : bool
        Run jobs in the calling thread (tests).
    """

    title = "Simulated database"

    def __init__(self, napari_viewer: napari.Viewer | None = None, *, sync: bool = False) -> None:
        super().__init__(napari_viewer, sync=sync)
        from ..core import config
        from ..simulate.spec import list_examples

        examples = list_examples()
        default = "tiny_synthetic" if "tiny_synthetic" in examples else examples[0]
        self.add_section("Spec")
        p = self.add_param
        p("example", default, choices=examples, on_change=lambda *_: self.load_example(),
          tooltip="a shipped spec to start from: tiny_synthetic (fast toy images), "
          "hrtem_default (the default model's database), rangel_dacosta_2024 (the paper's)")  # fmt: skip
        self.editor = p(
            "spec", "", widget_type="TextEdit", label="YAML",
            tooltip="the database spec: distributions of structures, imaging conditions and "
            "dose (see docs/hrtem_segmentation.md); YAML aliases are not allowed",
        )  # fmt: skip
        self.editor.native.setMinimumHeight(160)

        self.add_section("Generate")
        p("out", config.cache_dir() / "databases" / "database.zarr", mode="w", label="store",
          tooltip="output zarr store (a folder); an existing store with the same spec and seed "
          "is resumed")  # fmt: skip
        self.form = SpecForm(
            self, DatabaseParams, advanced_title="Advanced: seed, compute", leave_open=True
        )
        self.form.set(n=8, seed=0, workers=1)
        p("scheduler", SCHEDULERS[0], choices=list(SCHEDULERS), label="compute on",
          tooltip="this process; a local dask cluster of 'local workers' processes; or a running "
          "dask scheduler (can run code here: use only one you started)")  # fmt: skip
        p("address", "", label="address",
          tooltip="dask scheduler address, e.g. tcp://host:8786 (with 'dask scheduler address')")  # fmt: skip
        self.end_advanced()
        self.generate_button = self.add_button(
            "Generate", self.run, tooltip="simulate the missing samples into the store"
        )

        self.add_section("Browse")
        p("index", 0, min=0, max=0, label="sample", on_change=lambda *_: self.show_sample(),
          tooltip="index of the sample to show (image + labels layers)")  # fmt: skip
        self.add_button("Show sample", self.show_sample, job=False,
                        tooltip="show the chosen sample's image and labels")  # fmt: skip
        self.meta = self.add_label("")
        from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget

        table = QTableWidget(0, 2)
        table.setHorizontalHeaderLabels(["parameter", "value"])
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(True)
        table.setMinimumHeight(160)
        table.setToolTip("the drawn parameters of the shown sample")
        self.param_table = table
        self._table_box = self.add_native(table)
        self.load_example()

    # -- parameters -----------------------------------------------------------
    def _v(self, name: str) -> Any:
        return self.params[name].value

    def load_example(self, name: str | None = None) -> None:
        """Put a shipped example's text, seed and store name into the form."""
        from ..simulate import spec as spec_module
        from ..simulate.spec import load_spec

        if name is not None:
            select_choice(self.params["example"], name)
        name = self._v("example")
        path = Path(spec_module.__file__).parent / "examples" / f"{name}.yaml"
        if not path.is_file():
            return
        self.editor.value = path.read_text(encoding="utf-8")
        spec = load_spec(str(path))
        self.form.set(seed=spec.seed)
        if spec.n:
            self.form.set(n=min(spec.n, 8))
        self.params["out"].value = Path(self._v("out")).with_name(f"{spec.name}.zarr")

    def scheduler(self) -> Any:
        """The ``scheduler`` argument of ``generate_database`` for the form's choice."""
        choice = self._v("scheduler")
        if choice == SCHEDULERS[0]:
            return "inline"
        if choice == SCHEDULERS[1]:
            return None
        addr = str(self._v("address")).strip()
        if not addr:
            raise InputError("address: give the dask scheduler address (tcp://host:8786)")
        return addr

    # -- actions ----------------------------------------------------------------
    def run(self):
        """Generate (or resume) the store in the background; returns the job."""
        text = str(self.editor.value)
        if not text.strip():
            raise InputError("spec: the spec is empty; pick an example or type YAML")
        params = self.form.spec(scheduler=None)
        return self.run_job(
            generate_job, text, str(self._v("out")), params, self.scheduler(),
            on_done=self._generated, on_cancel=self._cancelled, description="simulated database",
        )  # fmt: skip

    def _cancelled(self) -> None:
        self.set_status("simulated database: cancelled; Generate again to resume")

    def _generated(self, result) -> None:
        self.set_status(
            f"{result.path}: {result.n} samples ({result.computed} computed, "
            f"{result.skipped} resumed) on {result.scheduler}"
        )
        index = self.params["index"]
        index.max = max(0, result.n - 1)
        try:  # one chunk of the store: milliseconds, so the layers exist when the job is done
            self._show(read_sample_job(str(result.path), int(index.value)))
        except (IndexError, OSError, ValueError) as exc:
            self.meta.value = str(exc)

    def show_sample(self, *_: Any) -> None:
        """Show the chosen sample (read off the GUI thread)."""
        store = str(self._v("out"))
        if not Path(store).exists():
            self.meta.value = f"{store}: no store yet; press Generate"
            return
        self.run_latest("sample", read_sample_job, store, int(self._v("index")),
                        on_done=self._show, delay_ms=50)  # fmt: skip

    def sample_fields(self) -> list[tuple[str, str]]:
        """The parameter table's rows as ``(parameter, value)`` text (tests, scripts)."""
        t = self.param_table
        return [(t.item(r, 0).text(), t.item(r, 1).text()) for r in range(t.rowCount())]

    def _show(self, sample: dict) -> None:
        from qtpy.QtWidgets import QTableWidgetItem

        ps = sample["pixel_size"]
        params = sample["meta"].get("parameters", {})
        rows = readable_fields(params)
        self.meta.value = f"sample {sample['index']}: {len(rows)} drawn parameters, {ps:.4g} Å/px"
        table = self.param_table
        table.setRowCount(len(rows))
        for r, (key, text) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(key))
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            table.setItem(r, 1, item)
        if self.viewer is None:
            return
        md = {"pixel_size": ps, "pixel_unit": "Å", "store": str(self._v("out"))}
        img = self.put_layer("image", sample["image"], "image",
                        **layer_kwargs(ps, "Å", ndim=2, name="image [database]", colormap="gray",
                                       metadata=dict(md)))  # fmt: skip
        img.contrast_limits = (float(sample["image"].min()), float(sample["image"].max()) + 1e-6)
        self.put_layer("labels", sample["labels"], "labels",
                  **layer_kwargs(ps, "Å", ndim=2, name="labels [database]", opacity=0.4,
                                 metadata=dict(md)))  # fmt: skip
