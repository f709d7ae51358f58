#!/usr/bin/env python3
"""Where core.prepare_export's time goes on one full tile (bench_core.py's tile, DARTS' defaults),
stage by stage, beside the floor of each: one numpy pass over the tile's pixels, writing the
outputs' fresh memory, GDAL's raw read and decompression of the tile as DARTS writes it.

Times each stage by wrapping the core's functions (so it follows this version's code), in one
process, after a warm-up run; prints the median of --repeat runs as Markdown.

    python3 bench/profile_stages.py [--size 10980] [--repeat 5] [--fortran-order]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
_LINK = Path(tempfile.mkdtemp(prefix="darts-stages-link-"))
os.symlink(REPO, _LINK / "darts_postprocessing")  # the package, whatever the checkout's folder is called
sys.path.insert(0, str(_LINK))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))

from darts_postprocessing import core  # noqa: E402
from darts_postprocessing.core.kernels import postprocess  # noqa: E402
from darts_postprocessing.core.products import api  # noqa: E402
from bench_core import DEFAULTS, make_tile  # noqa: E402

STAGES = [  # (module, function, label); nested stages are indented
    (api, "check_quality_mask", "quality mask check"),
    (api, "erode_valid_in_place", "erosion (invalid runs + painting the ring)"),
    (postprocess, "find_runs_host", "  invalid runs"),
    (postprocess, "_clear_dilated", "  painting the dilated runs"),
    (api, "_scan_layer", "probabilities pass: range check, threshold, NaN mask (+ transposing copy if not C-ordered)"),
    (api, "binarize_thresholded", "objects: runs, labelling, boundary, sizes, clearing"),
    (postprocess, "find_runs", "  object runs"),
    (postprocess, "run_components", "  run labelling (csgraph)"),
    (postprocess, "_pixels_where", "  object pixels outside the extent"),
    (postprocess, "clear_runs", "  clearing removed objects"),
]


def timed_stages(times: dict):
    for module, name, label in STAGES:
        function = getattr(module, name)

        def wrapper(*args, _function=function, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                times[_label] = times.get(_label, 0.0) + time.perf_counter() - start

        setattr(module, name, wrapper)


def floors(probs: np.ndarray, quality: np.ndarray, folder: Path) -> dict:
    """Lower bounds of the stages, measured the same way."""
    result = {}
    out = np.empty(probs.shape, bool)
    contiguous = np.ascontiguousarray(probs)
    start = time.perf_counter()
    np.greater(contiguous, 0.5, out=out)
    result["one numpy pass over the float32 probabilities (threshold into a preallocated bool)"] = \
        time.perf_counter() - start
    start = time.perf_counter()
    quality.max()
    result["one numpy pass over the uint8 quality mask (max)"] = time.perf_counter() - start
    start = time.perf_counter()
    outputs = [np.empty(probs.shape, np.float32), np.empty(probs.shape, np.uint8), np.empty(probs.shape, np.uint8)]
    for array in outputs:
        array.fill(0)
    result["fresh memory of the outputs (masked float32 + extent + binarized), written once"] = \
        time.perf_counter() - start
    del outputs
    try:
        from osgeo import gdal
    except ImportError:  # a venv without GDAL's bindings: the numpy floors only
        return result
    from sample_tile import percent, write_tif

    gdal.UseExceptions()
    path = folder / "probabilities.tif"
    if not path.exists():
        write_tif(str(path), percent(probs), nodata=255)
        write_tif(str(folder / "quality.tif"), quality)
    for name in ("probabilities.tif", "quality.tif"):
        start = time.perf_counter()
        dataset = gdal.Open(str(folder / name))
        dataset.GetRasterBand(1).ReadAsArray()
        dataset = None
        result[f"GDAL raw read + LZW decompression of {name} (uint8, as DARTS writes it)"] = \
            time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fortran-order", action="store_true",
                        help="Fortran-ordered probabilities (bench_core's are C-ordered, as DARTS gives them)")
    args = parser.parse_args()
    probs, quality = make_tile(args.size)
    if args.fortran_order:
        probs = np.asfortranarray(probs)
    tile = {"probabilities": probs, "quality_data_mask": quality}
    times: dict = {}
    timed_stages(times)
    runs, totals = [], []
    for index in range(args.repeat + 1):
        times.clear()
        start = time.perf_counter()
        core.prepare_export(tile, DEFAULTS["threshold"], DEFAULTS["erosion"], DEFAULTS["min_size"],
                            DEFAULTS["level"], [], "cpu")
        if index:  # the first run warms up
            totals.append(time.perf_counter() - start)
            runs.append(dict(times))
    with tempfile.TemporaryDirectory(prefix="darts-stages-") as tmp:
        floor = [floors(probs, quality, Path(tmp)) for _ in range(args.repeat)]

    print(f"Tile {args.size} x {args.size}, {'C' if probs.flags.c_contiguous else 'Fortran'}-ordered probabilities, "
          f"DARTS' defaults; median of {args.repeat} runs after a warm-up; numpy {np.__version__}, "
          f"{os.cpu_count()} CPUs\n")
    print("| stage | median (s) |\n|---|---|")
    for _, _, label in STAGES:
        print(f"| {label.strip() if not label.startswith('  ') else '&nbsp;&nbsp;' + label.strip()} | "
              f"{statistics.median(run.get(label, 0.0) for run in runs):.3f} |")
    accounted = statistics.median(sum(v for k, v in run.items() if not k.startswith("  ")) for run in runs)
    print(f"| rest (valid = quality >= level, checks, results) | {statistics.median(totals) - accounted:.3f} |")
    print(f"| **prepare_export in all** | **{statistics.median(totals):.3f}** |\n")
    print("| floor | median (s) |\n|---|---|")
    for label in floor[0]:
        print(f"| {label} | {statistics.median(f[label] for f in floor):.3f} |")


if __name__ == "__main__":
    main()
