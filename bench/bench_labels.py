#!/usr/bin/env python3
"""Object identity across chunks: the core's run-based labelling (core/lazy/chunked.py) against
dask-image's `ndmeasure.label`, on one synthetic Sentinel-2 tile in dask chunks. Median wall
time of a few runs of each, in the same process, and a check that both find the same objects
(the same partition of the pixels). dask-image is not packaged by Debian, so this runs in the
venv of current pip releases (`make bench-labels` installs dask-image there).

    .venv/bin/python bench/bench_labels.py [--size 10980] [--chunk 4096] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
_link = Path(tempfile.mkdtemp(prefix="darts-pkg-")) / "darts_postprocessing"
_link.symlink_to(REPO)
sys.path.insert(0, str(_link.parent))


def main() -> None:
    import dask
    import dask.array as da
    from bench_core import make_tile
    from darts_postprocessing.core import label_objects
    from dask_image import ndmeasure

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    probabilities, _ = make_tile(args.size)
    binary = da.from_array(probabilities > 0.5, chunks=args.chunk)
    del probabilities
    runs = {"core (row runs)": [], "dask-image ndmeasure.label": []}
    results = {}
    for _ in range(args.repeat):
        start = time.perf_counter()
        labels, count = label_objects(binary)
        results["core (row runs)"] = dask.compute(labels, count, scheduler="threads")
        runs["core (row runs)"].append(time.perf_counter() - start)
        start = time.perf_counter()
        labels, count = ndmeasure.label(binary, structure=np.ones((3, 3), bool))
        results["dask-image ndmeasure.label"] = dask.compute(labels, count, scheduler="threads")
        runs["dask-image ndmeasure.label"].append(time.perf_counter() - start)

    (ours, n_ours), (theirs, n_theirs) = results.values()
    same = n_ours == n_theirs and np.array_equal(ours != 0, theirs != 0)
    if same:  # the same objects: each of our labels maps to exactly one of theirs
        pairs = np.unique(np.stack([ours[ours != 0], theirs[ours != 0]]), axis=1)
        same = pairs.shape[1] == n_ours
    print(f"Tile {args.size} x {args.size} (threshold 0.5), chunks {args.chunk}, {n_ours} objects, "
          f"dask {dask.__version__}, dask-image {importlib.metadata.version('dask-image')}, numpy {np.__version__}; "
          f"same objects: {'yes' if same else 'NO'}\n")
    print("| labelling | median wall time (s) | runs (s) |\n|---|---|---|")
    for name, times in runs.items():
        print(f"| {name} | {statistics.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} |")
    if not same:
        raise SystemExit("the two labellings differ")


if __name__ == "__main__":
    main()
