#!/usr/bin/env python3
"""Benchmark darts:evaluate's core (core.regions.evaluate.evaluate) on one synthetic Sentinel-2 tile:
the sweep of thresholds x minimum sizes against reference slumps, time per setting, against one
plain prepare_export run (what each setting would cost run one by one). Prints Markdown.

    python3 bench/bench_evaluate.py [--size 10980] [--thresholds 0.3,0.4,0.5,0.6,0.7] [--sizes 0,16,32,64]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
LINK = tempfile.mkdtemp(prefix="bench-evaluate-")  # the package by its name, as QGIS installs it
os.symlink(REPO, os.path.join(LINK, "darts_postprocessing"))
sys.path.insert(0, LINK)

from bench_core import make_tile  # noqa: E402
from darts_postprocessing.core import label_objects, prepare_export  # noqa: E402
from darts_postprocessing.core.regions.evaluate import evaluate  # noqa: E402


def reference_for(tile, seed=7):
    """Reference slumps: the objects kept at threshold 0.45 (every third left out) and 500
    rectangles at random places (mostly missed)."""
    kept = prepare_export(tile, 0.45, 10, 32, 1)["binarized_segmentation"]
    ids, count = label_objects(kept)
    ids[ids % 3 == 0] = 0
    rng = np.random.default_rng(seed)
    size = ids.shape[0]
    for index in range(500):
        row, col = rng.integers(0, size - 30, size=2)
        ids[row:row + rng.integers(5, 30), col:col + rng.integers(5, 30)] = count + 1 + index
    return ids, count + 500


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--sizes", default="0,16,32,64")
    args = parser.parse_args()
    thresholds = [float(value) for value in args.thresholds.split(",")]
    sizes = [int(value) for value in args.sizes.split(",")]
    probabilities, quality = make_tile(args.size)
    tile = {"probabilities": probabilities, "quality_data_mask": quality}
    ids, count = reference_for(tile)
    started = time.perf_counter()
    prepare_export(tile, 0.5, 10, 32, 1)
    one_run = time.perf_counter() - started
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    evaluation = evaluate(tile, ids, thresholds, sizes, reference_count=count, mask_erosion_size=10, quality_level=1)
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"Tile {args.size} x {args.size}; {platform.python_version()}, numpy {np.__version__}; "
          f"{int(evaluation.reference.counted.size)} reference slumps scored of {count}")
    print(f"\nSweep of {len(evaluation.settings)} settings: {total:.2f} s in all "
          f"({total / len(evaluation.settings):.3f} s per setting); the extent and every threshold's objects "
          f"(prepare_export_thresholds) {evaluation.seconds_erosion:.2f} s of it. One plain prepare_export run: "
          f"{one_run:.2f} s. Peak resident memory {peak:.0f} MiB (before the sweep {before:.0f} MiB).\n")
    print("| threshold | min size | objects | object TP | FP | FN | object F1 | pixel IoU | scoring (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setting in evaluation.settings:
        row = setting.scores
        print(f"| {setting.threshold:g} | {setting.min_object_size} | {row['predicted_objects']} | {row['object_tp']} | "
              f"{row['object_fp']} | {row['object_fn']} | {row['object_f1']:.3f} | {row['pixel_iou']:.3f} | "
              f"{row['seconds']:.3f} |")
    best = evaluation.best
    print(f"\nBest by object F1: threshold {best.threshold:g}, minimum size {best.min_object_size}.")


if __name__ == "__main__":
    main()
