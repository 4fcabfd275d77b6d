"""``napari-interfaces apt clusters``: cluster analysis of solute atoms (maximum separation,
DBSCAN, HDBSCAN) with statistics and the randomized-label check."""

from __future__ import annotations

import argparse
import json


def register(groups: dict) -> None:
    from ..apt.clusters import ClusterInputs, ClusterParams
    from ._spec import add_command

    add_command(
        groups["apt"],
        "clusters",
        run,
        ClusterInputs,
        ClusterParams,
        help="find solute clusters / small precipitates (maximum separation, DBSCAN, HDBSCAN)",
        description="Writes OUT/clusters.csv (per cluster: ions, atoms, solute atoms, centre, "
        "radius of gyration, Guinier radius, volume, at.% and counting error per element), "
        "OUT/summary.json (parameters, number density, matrix composition, size distribution, "
        "randomized-label check, the parameters chosen and why), OUT/labels.npz (the point "
        "cloud with a cluster label per ion: 0 matrix, -1 unranged) and OUT/nn_check.png (k-th "
        "nearest-neighbour distances of the solutes vs shuffled labels).",
    )


def plan(args: argparse.Namespace):
    """Every parameter and the output, checked before anything is read or written.

    Returns ``(inputs, params)`` (:class:`~napari_interfaces.apt.clusters.ClusterInputs`,
    :class:`~napari_interfaces.apt.clusters.ClusterParams`).
    """
    from ..apt.clusters import ClusterInputs, ClusterParams
    from ..core.errors import ParameterError
    from ..core.outputs import check_output
    from ._spec import spec_from_args

    params = spec_from_args(ClusterParams, args)
    inputs = spec_from_args(ClusterInputs, args)
    if not inputs.solutes:
        raise ParameterError("solutes", "give at least one solute element, e.g. Cu Ni")
    inputs.required("out", what="an output folder")
    files = [str(inputs.file)] + ([str(inputs.ranges)] if inputs.ranges else [])
    check_output(inputs.out, files, overwrite=inputs.overwrite)
    return inputs, params


def run(args: argparse.Namespace) -> int:
    from ..apt.clusters import cluster_dataset, write_cluster_results
    from ..apt.dataset import open_dataset
    from ..core.outputs import atomic_dir
    from ..core.progress import cli_progress

    inputs, params = plan(args)
    file, out = args.file, args.out  # as typed
    progress = cli_progress(not inputs.json)
    ranges = None if inputs.ranges is None else str(inputs.ranges)
    ds = open_dataset(file, ranges, progress=progress, require_ranges=True)
    res = cluster_dataset(ds, list(inputs.solutes), params, progress=progress)
    with atomic_dir(out) as tmp:
        write_cluster_results(res, ds.cloud, tmp)
    s = res.summary
    if inputs.json:
        print(json.dumps(s, indent=2, default=str))
        return 0
    print(
        f"{file}: {s['n_clusters']} cluster{'' if s['n_clusters'] == 1 else 's'}, "
        f"number density {s['number_density_m3']:.3g} m^-3 -> {out}"
    )
    par = s["parameters"]
    print(
        f"  parameters: order {par['order']}, dmax {par['dmax']:g} nm, nmin {par['n_min']}, "
        f"envelope {par['envelope_nm']:g} nm, erosion {par['erosion_nm']:g} nm"
    )
    for key, why in s.get("auto_parameters", {}).get("why", {}).items():
        print(f"    {key}: {why}")
    if "random_check" in s:
        print(f"  {s['random_check']['verdict']}")
        sug = s.get("suggested")
        if sug:
            print(f"  suggested: --dmax {sug['dmax_nm']} --nmin {sug['n_min']}")
    return 0
