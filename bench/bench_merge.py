#!/usr/bin/env python3
"""Benchmark processtiles' merge alone (core.regions.merge.merge_objects): its time and the memory it
adds, on

- `speckled`: the 4 tiles of scripts/sample_region.py with checkerboard probabilities,
  boundary clip, erosion 0, minimum size 1 (one object of ~45 000 diagonal parts per tile;
  the merge hung before issue 20);
- `region`: N tiles (10 columns x N/10 rows, SIZE px, overlapping by a tenth) cut from one
  ground raster of small blobs, each tile on its own grid shifted by a fraction of a pixel,
  so overlapping tiles see the same slumps on different pixels (duplicates and slivers), at
  DARTS' defaults: ~10^5 objects for 50 tiles of 2000 px.

Tiles are processed first (process_tile, in worker processes), then merged in this process;
peak memory is the peak RSS during the merge above the RSS before it, sampled every 5 ms.

    python3 bench/bench_merge.py [--tiles 50] [--size 2000] [--workers 2] [--cases speckled region]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal, osr
from scipy import ndimage as ndi

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "bench"))
import sample_region  # noqa: E402
from bench_core import PeakRss  # noqa: E402  (peak memory above the start, sampled every millisecond)

gdal.UseExceptions()
PIXEL = 10.0
EPSG = 3413


def write(path, array, origin):
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[1], array.shape[0], 1, gdal.GDT_Byte,
                                                   ["COMPRESS=LZW"])
    dataset.SetGeoTransform((origin[0], PIXEL, 0, origin[1], 0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    dataset.SetProjection(srs.ExportToWkt())
    dataset.GetRasterBand(1).WriteArray(array)
    dataset = None


def region(folder: Path, tiles: int, size: int, seed: int = 0) -> None:
    """Tiles cut from one ground raster of blobs (probability 90 % in, 10 % out), each shifted
    by a random fraction of a pixel (nearest pixel of the ground raster, sampled twice as fine)."""
    rng = np.random.default_rng(seed)
    columns, rows = 10, max(tiles // 10, 1)
    stride = size * 9 // 10
    fine = 2  # the ground raster at half a pixel, so tiles can sit on grids half a pixel apart
    height, width = ((rows - 1) * stride + size + 1) * fine, ((columns - 1) * stride + size + 1) * fine
    ground = ndi.gaussian_filter(rng.random((height // 4, width // 4), dtype=np.float32), 1.2)
    ground = ndi.zoom(ground > np.quantile(ground, 0.93), 4, order=0)[:height, :width]
    for number in range(tiles):
        row, column = divmod(number, columns)
        dy, dx = rng.integers(0, fine, 2)
        y0, x0 = row * stride * fine + dy, column * stride * fine + dx
        window = ground[y0:y0 + size * fine:fine, x0:x0 + size * fine:fine]
        tile = folder / f"tile_{number:02d}"
        tile.mkdir(parents=True)
        origin = (x0 / fine * PIXEL, -y0 / fine * PIXEL)
        write(tile / "probabilities.tif", np.where(window, 90, 10).astype(np.uint8), origin)
        write(tile / "quality_data_mask.tif", np.full(window.shape, 2, np.uint8), origin)


def measure(name, folder, settings, workers):
    from darts_postprocessing.core.regions.merge import merge_objects
    from darts_postprocessing.core.regions.tiles import find_tiles
    from darts_postprocessing.core.regions.workers import run_tiles

    sources, _ = find_tiles(str(folder))
    start = time.perf_counter()
    results = sorted(run_tiles([(source, settings, f"EPSG:{EPSG}", None) for source in sources], workers),
                     key=lambda result: result.tile_id)
    processed = time.perf_counter() - start
    assert not any(result.error for result in results), [result.error for result in results if result.error]
    objects = sum(result.count for result in results)
    parts = sum(int.from_bytes(wkb[5:9], "little") for result in results for wkb in result.geometries)  # NDR WKB
    with PeakRss() as memory:
        start = time.perf_counter()
        kept, duplicates, clipped = merge_objects(results, settings.min_object_size)
        seconds = time.perf_counter() - start
    print(f"| {name} | {len(results)} | {objects:,} ({parts:,} polygons) | {processed:.1f} | {seconds:.1f} | "
          f"{memory.mib:.0f} | {len(kept):,} ({duplicates:,} duplicates, {clipped:,} "
          f"clipped) |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=50)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=["speckled", "region"])
    arguments = parser.parse_args()
    link = Path(tempfile.mkdtemp(prefix="bench-merge-"))
    (link / "darts_postprocessing").symlink_to(REPO)
    sys.path.insert(0, str(link))
    from darts_postprocessing.core.regions.tiles import TileSettings

    print("| case | tiles | objects | processing the tiles (s) | merge (s) | merge's peak memory (MiB) | features |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as folder:
        if "speckled" in arguments.cases:
            sample_region.speckled_region(os.path.join(folder, "speckled"))
            measure("speckled 4 tiles, clip, erosion 0, min size 1", Path(folder) / "speckled",
                    TileSettings(boundary="clip", mask_erosion_size=0, min_object_size=1), arguments.workers)
        if "region" in arguments.cases:
            region(Path(folder) / "region", arguments.tiles, arguments.size)
            measure(f"{arguments.tiles} tiles of {arguments.size} px, DARTS' defaults", Path(folder) / "region",
                    TileSettings(), arguments.workers)


if __name__ == "__main__":
    main()
