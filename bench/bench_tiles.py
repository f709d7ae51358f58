#!/usr/bin/env python3
"""Benchmark many tiles to one map: `qgis_process run darts:processtiles` on N full Sentinel-2
sized tiles (10 columns x N/10 rows, overlapping by 1188 px as MGRS tiles do, half of the
columns in UTM zone 7N and half in 8N), with 1 and 2 worker processes, against what a user
does today: darts:prepareexport + darts:polygonize per tile, then QGIS's native:mergevectorlayers
(into EPSG:3413), native:dissolve and native:multiparttosingleparts, in one QGIS Python.

The tiles are copies of one generated tile whose content repeats every 9792 px, so shifted
copies agree where they overlap within a zone (as real tiles of one scene do); only their
geotransforms differ. Peak memory is the peak summed RSS of the process and its children,
sampled every 50 ms.

    python3 bench/bench_tiles.py [--tiles 50] [--size 10980] [--skip-baseline] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr, osr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))
from bench_mosaic import PeakRss, qgis_profile  # noqa: E402
from sample_tile import percent, write_tif  # noqa: E402

gdal.UseExceptions()
ogr.UseExceptions()
CELL = 24
STRIDE = 9792  # 408 cells: content repeats with the tile spacing, overlap 10980 - 9792 = 1188 px
PIXEL = 10.0
OPTIONS = ["THRESHOLD=0.5", "MASK_EROSION_SIZE=10", "MIN_OBJECT_SIZE=32", "QUALITY_LEVEL=low_quality"]

BASELINE = r"""
import os, sys, time, json
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from qgis.core import QgsApplication
app = QgsApplication([], False); app.initQgis()
from processing.core.Processing import Processing; Processing.initialize()
import processing
sys.path.insert(0, sys.argv[3])  # the staged plugin
from darts_postprocessing.darts_provider import DartsProvider
provider = DartsProvider()
QgsApplication.processingRegistry().addProvider(provider)
tiles, out = json.loads(sys.argv[1]), sys.argv[2]
options = dict(THRESHOLD=0.5, MASK_EROSION_SIZE=10, MIN_OBJECT_SIZE=32, QUALITY_LEVEL="low_quality")
times = {}
start = time.perf_counter()
polygons = []
for name, folder in tiles:
    b = processing.run("darts:prepareexport", dict(options, PROBABILITIES=f"{folder}/probabilities.tif",
                       QUALITY_MASK=f"{folder}/quality_data_mask.tif", OUTPUT_BINARIZED=f"{out}/{name}-b.tif",
                       OUTPUT_EXTENT=f"{out}/{name}-e.tif"))["OUTPUT_BINARIZED"]
    polygons.append(processing.run("darts:polygonize", dict(BINARIZED=b, PROBABILITIES=f"{folder}/probabilities.tif",
                                   OUTPUT=f"{out}/{name}.gpkg"))["OUTPUT"])
times["per tile: prepareexport + polygonize"] = time.perf_counter() - start
start = time.perf_counter()
merged = processing.run("native:mergevectorlayers", dict(LAYERS=polygons, CRS="EPSG:3413",
                        OUTPUT=f"{out}/merged.gpkg"))["OUTPUT"]
times["native:mergevectorlayers"] = time.perf_counter() - start
start = time.perf_counter()
dissolved = processing.run("native:dissolve", dict(INPUT=merged, OUTPUT=f"{out}/dissolved.gpkg"))["OUTPUT"]
times["native:dissolve"] = time.perf_counter() - start
start = time.perf_counter()
single = processing.run("native:multiparttosingleparts", dict(INPUT=dissolved, OUTPUT=f"{out}/slumps.gpkg"))["OUTPUT"]
times["native:multiparttosingleparts"] = time.perf_counter() - start
print("TIMES", json.dumps(times))
"""


def stride_of(size: int) -> int:
    """The spacing of tiles: STRIDE for full tiles, as much overlap in proportion for smaller ones."""
    return size * STRIDE // 10980 // CELL * CELL


def base_tile(size: int, seed: int = 7):
    """(probabilities 0..1 with NaN, quality 0/1/2): blobs of 24 px cells that repeat every
    STRIDE px, clouds, a nodata corner; about 1500 objects kept per full tile."""
    rng = np.random.default_rng(seed)
    period = stride_of(size) // CELL
    coarse = rng.random((period, period), dtype=np.float32)
    cells = (np.arange(size) // CELL) % period
    bump = np.sin(np.linspace(0, np.pi, CELL, dtype=np.float32)) ** 2
    bumps = np.tile(bump, size // CELL + 1)[:size]
    values = coarse[cells][:, cells]
    probabilities = values ** 100 * bumps[:, None] * bumps[None, :] * 1.6
    np.clip(probabilities, 0, 1, out=probabilities)
    quality = np.full((size, size), 2, np.uint8)
    quality[values < 0.08] = 1
    quality[values > 0.9995] = 0
    rows, cols = np.arange(size)[:, None], np.arange(size)[None, :]
    quality[(rows + cols) < size // 6] = 0  # outside the orbit
    probabilities[quality == 0] = np.nan
    return probabilities, quality


def srs(epsg: int):
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(epsg)
    reference.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return reference


def layout(count: int, size: int):
    """[(name, epsg, x0, y0)]: 10 columns (5 in zone 7N, 5 east of them in 8N), count/10 rows."""
    step = stride_of(size) * PIXEL
    columns = 10
    x0, y0 = 300000.0, 7800000.0
    to_zone8 = osr.CoordinateTransformation(srs(32607), srs(32608))
    east_x, east_y, _ = to_zone8.TransformPoint(x0 + 5 * step, y0)
    east_x, east_y = round(east_x, -1), round(east_y, -1)
    tiles = []
    for index in range(count):
        row, column = divmod(index, columns)
        if column < 5:
            tiles.append((f"T07_{row}_{column}", 32607, x0 + column * step, y0 - row * step))
        else:
            tiles.append((f"T08_{row}_{column}", 32608, east_x + (column - 5) * step, east_y - row * step))
    return tiles


def make_tiles(folder: Path, count: int, size: int) -> list:
    base = folder / "base"
    if not (base / "quality_data_mask.tif").exists():
        base.mkdir(parents=True, exist_ok=True)
        probabilities, quality = base_tile(size)
        write_tif(str(base / "probabilities.tif"), percent(probabilities), nodata=255)
        write_tif(str(base / "quality_data_mask.tif"), quality)
        del probabilities, quality
    tiles = []
    for name, epsg, x0, y0 in layout(count, size):
        tile = folder / "tiles" / name
        if not (tile / "quality_data_mask.tif").exists():
            tile.mkdir(parents=True, exist_ok=True)
            for file in ("probabilities.tif", "quality_data_mask.tif"):
                shutil.copy(base / file, tile / file)
                dataset = gdal.Open(str(tile / file), gdal.GA_Update)
                dataset.SetGeoTransform((x0, PIXEL, 0, y0, 0, -PIXEL))
                dataset.SetProjection(srs(epsg).ExportToWkt())
                dataset = None
        tiles.append((name, str(tile)))
    return tiles


def timed(command, environment):
    start = time.perf_counter()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakRss([process.pid]) as peak:
        output, _ = process.communicate()
    if process.returncode:
        raise SystemExit(f"{command[:3]} failed:\n{output[-3000:]}")
    return time.perf_counter() - start, peak.peak / 2 ** 20, output


def feature_count(path) -> int:
    dataset = ogr.Open(str(path))  # must outlive the layer
    return dataset.GetLayer(0).GetFeatureCount()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=50)
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the generated tiles (kept between runs)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-tiles-"))
    data = args.keep or work
    environment, plugins = qgis_profile(work)
    start = time.perf_counter()
    tiles = make_tiles(data, args.tiles, args.size)
    print(f"{len(tiles)} tiles of {args.size} x {args.size} px in {data} ({time.perf_counter() - start:.0f} s)",
          flush=True)

    rows = []
    for workers in args.workers:
        out = work / f"workers-{workers}"
        out.mkdir()
        seconds, peak, output = timed(["qgis_process", "run", "darts:processtiles", "--",
                                       f"INPUT_FOLDER={data / 'tiles'}", *OPTIONS, f"WORKERS={workers}",
                                       f"OUTPUT={out / 'map.gpkg'}", f"OUTPUT_REPORT={out / 'report.html'}"],
                                      environment)
        summary = next(line for line in output.splitlines() if "tiles processed" in line)
        rows.append((f"darts:processtiles, WORKERS={workers}", seconds, peak, feature_count(out / "map.gpkg"),
                     summary.strip()))
        print(rows[-1], flush=True)

    if not args.skip_baseline:
        out = work / "baseline"
        out.mkdir()
        seconds, peak, output = timed(["/usr/bin/python3", "-c", BASELINE, json.dumps(tiles), str(out), str(plugins)],
                                      environment)
        times = json.loads(next(line for line in output.splitlines() if line.startswith("TIMES"))[6:])
        note = "; ".join(f"{name} {value:.0f} s" for name, value in times.items())
        rows.append(("prepareexport + polygonize per tile, mergevectorlayers, dissolve, multipart to single parts",
                     seconds, peak, feature_count(out / "slumps.gpkg"), note))
        print(rows[-1], flush=True)

    print(f"\n{len(tiles)} tiles of {args.size} x {args.size} px ({len(tiles) * args.size ** 2 / 1e9:.2f} G px)\n")
    # Each run against the baseline measured in this run (issue 23's goal: 2 workers >= 15x), and per tile
    baseline = rows[-1][1] if not args.skip_baseline else None
    print("| run | wall time (s) | per tile (s) | vs baseline | peak RSS (MiB) | features | note |\n"
          "|---|---|---|---|---|---|---|")
    for name, seconds, peak, features, note in rows:
        ratio = f"{baseline / seconds:.1f}x faster" if baseline else "-"
        print(f"| {name} | {seconds:.0f} | {seconds / len(tiles):.2f} | {ratio} | {peak:.0f} | {features} | {note} |")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
