"""Issue 23: prepare_export_thresholds with and without the NaN-masked probabilities
(masked_probabilities=False, what prepare_export_files does without OUTPUT_PROBABILITIES), on one
synthetic full tile (bench_core.make_tile) at DARTS' defaults, alternating, in one process.

    /usr/bin/python3 bench/bench_masked.py --repeat 3
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
if REPO.name != "darts_postprocessing":
    LINK = Path(tempfile.mkdtemp(prefix="darts-pkg-"))
    os.symlink(REPO, LINK / "darts_postprocessing")
    sys.path.insert(0, str(LINK))
else:
    sys.path.insert(0, str(REPO.parent))

from bench_core import make_tile  # noqa: E402
from darts_postprocessing.core import prepare_export_thresholds  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    probabilities, quality = make_tile(options.size)
    tile = {"probabilities": probabilities, "quality_data_mask": quality}
    times, peaks, kept = {True: [], False: []}, {True: [], False: []}, {}
    for _ in range(options.repeat):
        for masked in (True, False):
            tracemalloc.start()
            start = time.perf_counter()
            result = prepare_export_thresholds(tile, [0.5], 10, 32, 1, device="cpu", masked_probabilities=masked)[0.5]
            times[masked].append(time.perf_counter() - start)
            peaks[masked].append(tracemalloc.get_traced_memory()[1] / 2 ** 20)
            tracemalloc.stop()
            kept[masked] = (result["binarized_segmentation"].copy(), result["extent"].copy())
            del result
    assert all(np.array_equal(a, b) for a, b in zip(kept[True], kept[False])), "results differ"
    for masked in (True, False):
        print(f"masked_probabilities={masked}: median {np.median(times[masked]):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in times[masked])}), peak allocated "
              f"{np.median(peaks[masked]):.0f} MiB")


if __name__ == "__main__":
    main()
