#!/usr/bin/env python3
"""Benchmark the core against the scikit-image reference on one synthetic Sentinel-2 tile.

Each measured run is a fresh child process that loads the saved tile, so the peak memory
(the resident set size's peak above its level with the inputs loaded) is not blurred by
earlier runs. Prints the median wall time of each, the ratio and the peak memory, as Markdown.

    python3 bench/bench_core.py [--size 10980] [--repeat 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULTS = dict(threshold=0.5, erosion=10, min_size=32, level=1)  # DARTS' pipeline defaults


def make_tile(size: int, seed: int = 42):
    """Thaw-slump-like probability blobs, a nodata corner, clouds (quality 1), small gaps."""
    rng = np.random.default_rng(seed)
    cell = 24
    coarse = rng.random((size // cell + 2, size // cell + 2), dtype=np.float32)
    rows = np.minimum(np.arange(size) // cell, coarse.shape[0] - 1)
    # Blocky upsampling with a smooth bump inside each cell gives compact, varied objects.
    bump = np.sin(np.linspace(0, np.pi, cell, dtype=np.float32)) ** 2
    bumps = np.tile(bump, size // cell + 1)[:size]
    probs = coarse[rows][:, rows] ** 8 * bumps[:, None] * bumps[None, :] * 1.6
    np.clip(probs, 0, 1, out=probs)
    probs[rng.random((size, size), dtype=np.float32) < 0.001] = np.nan

    quality = np.full((size, size), 2, np.uint8)
    yy = np.arange(size)[:, None]
    xx = np.arange(size)[None, :]
    quality[(yy + xx) < size // 3] = 0  # nodata corner outside the orbit
    cloud_cells = coarse[rows][:, rows] < 0.08
    quality[cloud_cells] = 1
    gaps = coarse[rows][:, rows] > 0.995
    quality[gaps] = 0
    # C-ordered, as DARTS hands its tiles over (numpy's coarse[rows][:, rows] above is
    # Fortran-ordered; figures before 2026-12-06 22:00 were measured on that layout)
    return np.ascontiguousarray(probs), quality


class PeakRss:
    """Peak resident memory above the level at start, sampled every millisecond.

    (ru_maxrss is no use here: Linux carries the parent's high-water mark into children.)
    """

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def _sample(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def run_child(implementation: str, folder: Path, device: str) -> dict:
    probs = np.load(folder / "probs.npy")
    quality = np.load(folder / "quality.npy")
    sys.path.insert(0, str(folder))  # the package link
    sys.path.insert(0, str(REPO / "tests"))
    if implementation == "core":
        from darts_postprocessing.core import prepare_export
    elif implementation == "reference":
        import reference
    with PeakRss() as memory:
        start = time.perf_counter()
        if implementation == "floor":  # prepare_export's outputs' fresh memory, written once: no computing
            outputs = [np.empty(probs.shape, dtype) for dtype in (np.float32, np.uint8, bool)]
            for array in outputs:
                array.fill(0)
            binarized = extent = None
        elif implementation == "core":
            out = prepare_export({"probabilities": probs, "quality_data_mask": quality}, DEFAULTS["threshold"],
                                 DEFAULTS["erosion"], DEFAULTS["min_size"], DEFAULTS["level"], [], device)
            binarized, extent = out["binarized_segmentation"], out["extent"]
        else:
            extent, binarized, _ = reference.prepare_export(probs, quality, **DEFAULTS)
        seconds = time.perf_counter() - start
    peak_mib = memory.mib
    if binarized is None:
        return {"seconds": seconds, "peak_mib": peak_mib, "objects_px": 0}
    np.save(folder / f"{implementation}-binarized.npy", binarized)
    np.save(folder / f"{implementation}-extent.npy", extent)
    return {"seconds": seconds, "peak_mib": peak_mib, "objects_px": int(binarized.sum())}


def measure(command: list[str], repeat: int) -> dict:
    """Run a child `command` (it prints one JSON line) `repeat` times: the first run's fields,
    with the median and all wall times and the highest peak memory of the runs."""
    runs = []
    for _ in range(repeat):
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {**runs[0], "seconds": statistics.median(r["seconds"] for r in runs),
            "all_seconds": [r["seconds"] for r in runs], "peak_mib": max(r["peak_mib"] for r in runs)}


def print_table(rows: list[tuple[str, dict]]) -> None:
    """The Markdown table of docs/benchmarks.md for (implementation, measure()) rows."""
    print("| implementation | median wall time (s) | runs (s) | peak memory increase (MiB) |")
    print("|---|---|---|---|")
    for name, r in rows:
        runs = ", ".join(f"{s:.2f}" for s in r["all_seconds"])
        print(f"| {name} | {r['seconds']:.2f} | {runs} | {r['peak_mib']:.0f} |")


def child_command(script: str, implementation: str, folder: Path, *extra: str) -> list[str]:
    return [sys.executable, script, "--child", implementation, "--folder", str(folder), *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child")
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, Path(args.folder), args.device)))
        return

    with tempfile.TemporaryDirectory(prefix="darts-bench-") as tmp:
        folder = Path(tmp)
        os.symlink(REPO, folder / "darts_postprocessing")
        probs, quality = make_tile(args.size)
        np.save(folder / "probs.npy", probs)
        np.save(folder / "quality.npy", quality)
        del probs, quality
        core = measure(child_command(__file__, "core", folder, "--device", args.device), args.repeat)
        floor = measure(child_command(__file__, "floor", folder), args.repeat)
        ref = measure(child_command(__file__, "reference", folder, "--device", "cpu"), args.repeat)
        identical = all(np.array_equal(np.load(folder / f"core-{n}.npy"), np.load(folder / f"reference-{n}.npy"))
                        for n in ("binarized", "extent"))

    print(f"Tile {args.size} x {args.size}, threshold 0.5, erosion 10, min size 32, quality level 1; "
          f"{args.repeat} runs each, device {args.device}; {platform.node() and platform.machine()}, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__}, Python {platform.python_version()}")
    print(f"Objects kept: {core['objects_px']} px; core and reference identical: {'yes' if identical else 'NO'}\n")
    print_table([("core (this plugin)", core), ("scikit-image reference", ref),
                 ("floor: the outputs' fresh memory (masked float32, extent, binarized) written once", floor)])
    print(f"\nSpeed-up: {ref['seconds'] / core['seconds']:.1f}x; "
          f"peak memory: {core['peak_mib'] / ref['peak_mib']:.2f} of the reference's")
    if not identical:
        sys.exit("core and reference outputs differ")


if __name__ == "__main__":
    main()
