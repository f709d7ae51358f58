#!/usr/bin/env python3
"""Benchmark polygonizing a full Sentinel-2 tile (~10^4 objects) with statistics: the core's
`polygonize` against upstream DARTS' way (scikit-image label + regionprops with a median,
rasterio's shapes on the whole label raster), each run in a fresh child process.

    python3 bench/bench_polygonize.py [--size 10980] [--objects 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import REPO, PeakRss, child_command, measure, print_table  # noqa: E402

GEOTRANSFORM = (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0)
EPSG = 32606


def make_objects(size: int, count: int, seed: int = 7):
    """(binary objects: `count` random ellipses of radius 3-11 px, probabilities 0..1)."""
    rng = np.random.default_rng(seed)
    binary = np.zeros((size, size), bool)
    for y, x, radius, squash in zip(rng.integers(12, size - 12, count), rng.integers(12, size - 12, count),
                                    rng.integers(3, 12, count), rng.uniform(0.3, 1.0, count)):
        yy, xx = np.ogrid[-radius:radius + 1, -radius:radius + 1]
        binary[y - radius:y + radius + 1, x - radius:x + radius + 1] |= yy * yy + xx * xx * squash <= radius * radius
    probabilities = np.where(binary, rng.uniform(0.5, 1.0, (size, size)).astype(np.float32), np.float32(0.1))
    return binary, probabilities


def run_child(implementation: str, folder: Path) -> dict:
    binary = np.load(folder / "binary.npy")
    probabilities = np.load(folder / "probabilities.npy")
    sys.path.insert(0, str(folder))
    path = str(folder / f"{implementation}.gpkg")
    with PeakRss() as memory:
        start = time.perf_counter()
        if implementation == "core":
            from darts_postprocessing.core import polygonize

            features = polygonize(binary, GEOTRANSFORM, EPSG, path, probabilities=probabilities)
            area = None
        else:
            features, area = reference_polygonize(binary, probabilities)
        seconds = time.perf_counter() - start
    if area is None:
        from darts_postprocessing.core.files.gdal import open_read_only

        with open_read_only(path, "vector") as dataset:
            area = sum(feature.GetGeometryRef().GetArea() for feature in dataset.GetLayer(0))
    return {"seconds": seconds, "peak_mib": memory.mib, "features": features, "area": area}


def reference_polygonize(binary, probabilities):
    """scikit-image labels and regionprops (with a median), rasterio shapes of the whole raster."""
    import rasterio.features
    from affine import Affine
    from skimage import measure

    def median_intensity(region, values):
        return np.median(values[region])

    labels = measure.label(binary, connectivity=2)
    regions = measure.regionprops(labels, intensity_image=probabilities, extra_properties=[median_intensity])
    stats = {r.label: (r.min_intensity, r.max_intensity, r.mean_intensity, r.median_intensity,
                       np.std(r.image_intensity[r.image]), r.area) for r in regions}
    shapes = [(geometry, int(value)) for geometry, value in
              rasterio.features.shapes(labels.astype(np.int32), transform=Affine.from_gdal(*GEOTRANSFORM)) if value > 0]
    area = sum(abs(_ring_area(g["coordinates"][0])) - sum(abs(_ring_area(h)) for h in g["coordinates"][1:])
               for g, _ in shapes)
    assert len(stats) == labels.max()
    return len(shapes), area


def _ring_area(ring):
    x, y = np.asarray(ring).T
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, Path(args.folder))))
        return

    with tempfile.TemporaryDirectory(prefix="darts-bench-") as tmp:
        folder = Path(tmp)
        os.symlink(REPO, folder / "darts_postprocessing")
        binary, probabilities = make_objects(args.size, args.objects)
        sys.path.insert(0, str(folder))
        from darts_postprocessing.core import label_objects

        objects = label_objects(binary)[1]
        pixels = int(binary.sum())
        np.save(folder / "binary.npy", binary)
        np.save(folder / "probabilities.npy", probabilities)
        del binary, probabilities
        core = measure(child_command(__file__, "core", folder), args.repeat)
        ref = measure(child_command(__file__, "reference", folder), args.repeat)

    same_area = abs(core["area"] - pixels * 100.0) < 1e-3 and abs(ref["area"] - pixels * 100.0) < 1e-3
    print(f"Tile {args.size} x {args.size}, {objects} objects (8-connected), {pixels} object pixels; "
          f"{args.repeat} runs each; {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"Python {platform.python_version()}")
    print(f"Features: core {core['features']} (one per object), upstream way {ref['features']} (diagonal parts split); "
          f"polygon area equals the object pixels' area in both: {'yes' if same_area else 'NO'}\n")
    print_table([("core polygonize (label, statistics, GeoPackage)", core),
                 ("upstream way (skimage label + regionprops, rasterio shapes)", ref)])
    print(f"\nSpeed-up: {ref['seconds'] / core['seconds']:.1f}x")
    if core["features"] != objects or not same_area:
        sys.exit("the core's polygons do not match the objects")


if __name__ == "__main__":
    main()
