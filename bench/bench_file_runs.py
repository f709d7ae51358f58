#!/usr/bin/env python3
"""Issue 23's file-path figures, each against a baseline measured in the same run: `qgis_process
run darts:prepareexport` on one full tile (uint8 percent in; binarized + extent + polygons) and
`darts:processtiles` per full tile (1 worker), this checkout against another git ref (default
main), runs interleaved; then the outputs of both compared (GeoTIFF pixels and tags but the
export date, GeoPackage features and attributes), and the stages of this checkout's run.

    python3 bench/bench_file_runs.py [--baseline main] [--repeat 3] [--tiles 4] [--keep build/bench-file]

Per tile, processtiles is the slope: (time for --tiles tiles - time for 1 tile) / (tiles - 1), so
QGIS's start and the merge's fixed costs drop out. The stage breakdown runs
core.prepare_export_files in this Python with its steps timed (the qgis_process run's remainder
is QGIS's start and the algorithm's adapter: measured as a qgis_process run that fails at once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "scripts"))
from bench_mosaic import PeakRss  # noqa: E402
from bench_tiles import OPTIONS, make_tiles  # noqa: E402

gdal.UseExceptions()
ogr.UseExceptions()
DATES = ("exportdate", "_date", "created")  # metadata keys holding when a file was made


def profile_for(source: Path, work: Path, name: str):
    """(environment for qgis_process) with the plugin staged from `source`, in a profile of its own."""
    profile = work / f"profile-{name}"
    plugins = profile / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    subprocess.run([sys.executable, str(source / "scripts" / "package.py"), "stage", str(plugins)], check=True,
                   capture_output=True)
    environment = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(profile), QT_QPA_PLATFORM="offscreen")
    subprocess.run(["qgis_process", "plugins", "enable", "darts_postprocessing"], env=environment, check=True,
                   capture_output=True)
    return environment


def timed(command, environment, check=True):
    start = time.perf_counter()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakRss([process.pid]) as peak:
        output, _ = process.communicate()
    if check and process.returncode:
        raise SystemExit(f"{command[:3]} failed:\n{output[-3000:]}")
    return time.perf_counter() - start, peak.peak / 2 ** 20


def prepare(environment, tile: str, out: Path):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return timed(["qgis_process", "run", "darts:prepareexport", "--", f"PROBABILITIES={tile}/probabilities.tif",
                  f"QUALITY_MASK={tile}/quality_data_mask.tif", *OPTIONS, f"OUTPUT_BINARIZED={out}/binarized.tif",
                  f"OUTPUT_EXTENT={out}/extent.tif", f"OUTPUT_POLYGONS={out}/slumps.gpkg"], environment)


def process_tiles(environment, folder: Path, out: Path):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return timed(["qgis_process", "run", "darts:processtiles", "--", f"INPUT_FOLDER={folder}", *OPTIONS, "WORKERS=1",
                  f"OUTPUT={out}/map.gpkg"], environment)


def raster_digest(path: Path):
    dataset = gdal.Open(str(path))
    band = dataset.GetRasterBand(1)
    tags = {key: value for key, value in dataset.GetMetadata().items() if not any(d in key for d in DATES)}
    return (dataset.GetGeoTransform(), dataset.GetProjection(), band.GetNoDataValue(), band.GetBlockSize(),
            band.DataType, dataset.GetMetadata("IMAGE_STRUCTURE"), tags, band.GetDescription(),
            band.ReadAsArray().tobytes())


def vector_digest(path: Path):
    dataset = ogr.Open(str(path))
    result = []
    for index in range(dataset.GetLayerCount()):
        layer = dataset.GetLayer(index)
        metadata = {key: value for key, value in (layer.GetMetadata() or {}).items()
                    if not any(d in key for d in DATES)}
        features = [(feature.items(), feature.GetGeometryRef().ExportToWkb()) for feature in layer]
        result.append((layer.GetName(), metadata, layer.GetSpatialRef().ExportToWkt(), features))
    return result


def same_outputs(a: Path, b: Path) -> list[str]:
    differences = []
    for name in sorted(p.name for p in a.iterdir()):
        if name.endswith(".tif") and raster_digest(a / name) != raster_digest(b / name):
            differences.append(name)
        if name.endswith(".gpkg"):
            first, second = vector_digest(a / name), vector_digest(b / name)
            if first != second:
                parts = [f"{x[0]}: " + ", ".join(label for label, p, q in zip(("name", "metadata", "crs", "features"), x, y)
                                                 if p != q) for x, y in zip(first, second)]
                differences.append(f"{name} ({'; '.join(parts)})")
    return differences


def stages(tile: str, repeat: int) -> dict:
    """{stage: median seconds} of core.prepare_export_files on `tile` in this process."""
    link = Path(tempfile.mkdtemp(prefix="darts-link-"))
    os.symlink(REPO, link / "darts_postprocessing")
    sys.path.insert(0, str(link))
    from darts_postprocessing.core.files import gdal as gdal_module, geotiff
    from darts_postprocessing.core.kernels import objects
    from darts_postprocessing.core.products import api, polygons, prepare_export_files as pef

    wrapped = [(pef, "read_probabilities_for_export", "read probabilities (GDAL + checking DARTS' percent)"),
               (pef, "read_quality", "read quality mask"),
               (api, "prepare_export_thresholds", "core: prepare_export_thresholds"),
               (geotiff, "write_geotiff", "write 2 GeoTIFFs (DEFLATE)"),
               (geotiff, "check_written", "  of which read-back checks"),
               (polygons, "polygonize", "polygons (GeoPackage)"),
               (objects.Objects, "__init__", "  labelling objects (Objects)"),
               (objects.Objects, "table", "  object statistics"),
               (polygons, "trace_objects", "  GDAL Polygonize (trace_objects: window by window)"),
               (polygons, "write_layer", "  writing the GeoPackage"),
               (polygons, "object_areas", "object areas (report)")]
    times: dict = {}
    for owner, name, label in wrapped:
        function = getattr(owner, name)

        def wrapper(*args, _function=function, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                times.setdefault(_label, []).append(time.perf_counter() - start)

        setattr(owner, name, wrapper)
    assert gdal_module  # check_written is imported into geotiff by name
    settings = pef.PrepareExportSettings(threshold=0.5, mask_erosion_size=10, min_object_size=32,
                                         quality_level="low_quality")
    runs = []
    for _ in range(repeat + 1):
        out = Path(tempfile.mkdtemp(prefix="darts-stages-"))
        for values in times.values():
            values.append(None)  # a marker: this run's entries follow
        start = time.perf_counter()
        pef.prepare_export_files(pef.PrepareExportInputs(f"{tile}/probabilities.tif", f"{tile}/quality_data_mask.tif"),
                                 pef.PrepareExportOutputs(f"{out}/binarized.tif", f"{out}/extent.tif",
                                                          polygons=f"{out}/slumps.gpkg"), settings)
        runs.append(time.perf_counter() - start)
        shutil.rmtree(out)
    per_run: dict = {}
    for label, values in times.items():
        sums, current = [], None
        for value in values:
            if value is None:
                if current is not None:
                    sums.append(current)
                current = 0.0
            else:
                current = (current or 0.0) + value
        sums.append(current or 0.0)
        per_run[label] = statistics.median(sums[1:])  # after the warm-up run
    per_run["prepare_export_files in all"] = statistics.median(runs[1:])
    return per_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="main", help="git ref of the baseline")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tiles", type=int, default=4, help="tiles of the processtiles run (and one alone)")
    parser.add_argument("--keep", type=Path, default=REPO / "build" / "bench-file")
    parser.add_argument("--skip-tiles", action="store_true")
    parser.add_argument("--skip-stages", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-file-"))
    baseline_source = work / "baseline-source"
    baseline_source.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(baseline_source)], input=archive.stdout, check=True)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.baseline], check=True,
                            capture_output=True, text=True).stdout.strip()
    here = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], check=True,
                          capture_output=True, text=True).stdout.strip()
    versions = {f"baseline {args.baseline} ({commit})": profile_for(baseline_source, work, "baseline"),
                f"this checkout ({here})": profile_for(REPO, work, "this")}
    tiles = make_tiles(args.keep, max(args.tiles, 1), 10980)
    one = work / "one-tile"
    one.mkdir()
    os.symlink(tiles[0][1], one / tiles[0][0])
    many = work / "tiles"
    many.mkdir()
    for name, folder in tiles[:args.tiles]:
        os.symlink(folder, many / name)
    environment = next(iter(versions.values()))
    start_seconds, _ = timed(["qgis_process", "run", "darts:prepareexport", "--"], environment, check=False)

    results = {name: {"prepare": [], "one": [], "many": []} for name in versions}
    outputs = {}
    for repeat in range(args.repeat):
        order = list(enumerate(versions.items()))
        for index, (name, environment) in (order if repeat % 2 == 0 else order[::-1]):  # neither always first
            outputs[name] = work / f"out-{index}"
            results[name]["prepare"].append(prepare(environment, tiles[0][1], outputs[name]))
            print(name, "prepareexport", results[name]["prepare"][-1], flush=True)
        if args.skip_tiles:
            continue
        for index, (name, environment) in enumerate(versions.items()):
            results[name]["one"].append(process_tiles(environment, one, work / f"tiles1-{index}"))
            results[name]["many"].append(process_tiles(environment, many, work / f"tiles-{index}"))
            print(name, "processtiles 1 /", args.tiles, results[name]["one"][-1], results[name]["many"][-1], flush=True)
    differences = same_outputs(*outputs.values())
    tile_differences = [] if args.skip_tiles else same_outputs(work / "tiles-0", work / "tiles-1")

    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()[0]:.1f}, numpy {np.__version__}, "
          f"GDAL {gdal.__version__}; qgis_process start (a run that fails at once): {start_seconds:.2f} s\n")
    print("| run | " + " | ".join(versions) + " | ratio (baseline / this) |\n|---|---|---|---|")

    def row(label, values_of):
        medians = [values_of(name) for name in versions]
        cells = " | ".join(f"{m:.2f}" for m in medians)
        print(f"| {label} | {cells} | {medians[0] / medians[1]:.2f}x |")

    row("prepareexport, median wall (s)", lambda n: statistics.median(t for t, _ in results[n]["prepare"]))
    row("prepareexport, median peak RSS (MiB)", lambda n: statistics.median(p for _, p in results[n]["prepare"]))
    if not args.skip_tiles:
        row("processtiles, 1 tile, wall (s)", lambda n: statistics.median(t for t, _ in results[n]["one"]))
        row(f"processtiles, {args.tiles} tiles, wall (s)", lambda n: statistics.median(t for t, _ in results[n]["many"]))
        row("processtiles per tile (slope, s)",
            lambda n: statistics.median((m - o) / (args.tiles - 1) for (o, _), (m, _) in
                                        zip(results[n]["one"], results[n]["many"])))
        row(f"processtiles, {args.tiles} tiles, peak RSS (MiB)",
            lambda n: statistics.median(p for _, p in results[n]["many"]))
    for name in versions:
        print(f"{name}: prepareexport runs {', '.join(f'{t:.2f}' for t, _ in results[name]['prepare'])}")
    print(f"\nprepareexport outputs identical (pixels, tags but dates, features): {not differences} {differences}")
    if not args.skip_tiles:
        print(f"processtiles maps identical: {not tile_differences} {tile_differences}")
    if not args.skip_stages:
        print("\nStages of this checkout's prepare_export_files (in this Python, median after a warm-up):\n")
        print("| stage | seconds |\n|---|---|")
        for label, seconds in stages(tiles[0][1], args.repeat).items():
            print(f"| {label} | {seconds:.3f} |")
    shutil.rmtree(work, ignore_errors=True)
    if differences or tile_differences:
        raise SystemExit("outputs differ")


if __name__ == "__main__":
    main()
