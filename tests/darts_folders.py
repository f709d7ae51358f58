"""Tile folders exactly as DARTS' exporter writes them (darts-nextgen v0.11, `export_tile` with its
default bands plus "metadata"), for the tests that read real DARTS runs.

Per tile folder, named by the tile id:
- probabilities.tif: uint8 percent int(p * 100), nodata 255 (also outside the extent), LZW, the
  run's DARTS_* metadata as dataset tags
- binarized.tif: uint8 0/1, LZW (no tags: DARTS tags only the ensemble members' binarized files)
- prediction_segments.gpkg: layer prediction_segments, geometry column geom, one Polygon per
  4-connected part, Region_ID/min/max/mean/median/std/npixel (statistics of the percent values)
- prediction_extent.gpkg: layer prediction_extent, the extent as polygons, the same fields
  (both GeoPackage 1.4, as the GDAL of DARTS' environment writes them)
- thumbnail.jpg, darts_inference.json (the DARTS_* keys); with `subsets`, the -{subset} files
No extent raster and no quality mask: DARTS does not write them.

The content is DARTS' pipeline on the test region's tiles (scripts/sample_region.py): the
quality mask eroded by 10 px with its edge band, binarized at 0.5, clipped at the extent, sizes
counted with 4-connectivity, minimum 32 px, as upstream does.
"""

import json
import os
import shutil
import sqlite3

import numpy as np
import sample_region as scene
from darts_postprocessing.core import polygonize, prepare_export
from darts_postprocessing.core.files.gdal import open_read_only
from darts_postprocessing.core.products.export import tile_layout
from writing import write_raster
from osgeo import gdal

gdal.UseExceptions()

PIPELINE = {"DARTS_modelfiles": ["RTS_v6_tcvis_s2native.pt"], "DARTS_tpiouter": 100, "DARTS_tpiinner": 0,
            "DARTS_patchsize": 1024, "DARTS_overlap": 256, "DARTS_reflection": 0, "DARTS_binarizethreshold": 0.5,
            "DARTS_maskerosion": 10, "DARTS_edgeerosion": 10, "DARTS_mmu": 32, "DARTS_qualitymask": 1}

# The id forms DARTS names tile folders by (with the date each holds), per year of the region.
IDS = {
    2019: {"tile_A": ("20190715T213529_20190715T213531_T07WET", "2019-07-15"),  # Earth Engine
           "tile_B": ("S2B_MSIL2A_20190716T213529_N0213_R086_T08WMC_20190716T235959", "2019-07-16"),  # CDSE
           "tile_C": ("20190717_213000_31_2474", "2019-07-17")},  # PlanetScope scene
    2024: {"tile_A": ("Sentinel-2_mosaic_2024_Q3_07WET_0_0", None),  # quarterly mosaic: a year, no day
           "tile_B": ("20240715T213529_20240715T213531_T08WMC", "2024-07-15"),
           "tile_C": ("4956307/5226109_4956307_2024-07-18_227b", "2024-07-18")},  # orthotile: <tile>/<scene>/
}


def write_darts_tile(folder, percent_source, quality, tile_id, subsets=(), json_file=True):
    """One DARTS tile folder from a drawn tile (its probabilities.tif as the model's output, in
    percent, and its quality mask): DARTS' postprocessing and export, `tile_id` as DARTS_tileid.
    Returns the folder."""
    with open_read_only(percent_source) as source:
        geotransform, crs = source.GetGeoTransform(), source.GetProjection()
        raw = source.ReadAsArray()
    probabilities = np.where(raw == 255, np.nan, raw / np.float32(100)).astype(np.float32)
    tile = {"probabilities": probabilities, "quality_data_mask": quality}
    for number, subset in enumerate(subsets):  # members see a little less and a little more
        tile[f"probabilities-{subset}"] = np.clip(probabilities + np.float32(0.05 * (1 - 2 * number)), 0, 1)
    result = prepare_export(tile, 0.5, 10, 32, 1, list(subsets), "cpu", 10, boundary="clip", size_connectivity=4)
    os.makedirs(folder, exist_ok=True)
    tags = {**{key: json.dumps(value) if isinstance(value, list) else str(value) for key, value in PIPELINE.items()},
            "DARTS_tileid": tile_id, "DARTS_exportdate": "2025-01-01 00:00:00.000000+00:00"}
    for suffix in ["", *(f"-{subset}" for subset in subsets)]:
        percent = np.where(np.isnan(result[f"probabilities{suffix}"]), 255,
                           np.nan_to_num(result[f"probabilities{suffix}"] * np.float32(100)).astype(np.uint8))
        binarized = result[f"binarized_segmentation{suffix}"].astype(np.uint8)
        _tif(os.path.join(folder, f"probabilities{suffix}.tif"), percent.astype(np.uint8), geotransform, crs, 255, tags)
        _tif(os.path.join(folder, f"binarized{suffix}.tif"), binarized, geotransform, crs, None,
             tags if suffix else None)
        polygonize(binarized, geotransform, crs, os.path.join(folder, f"prediction_segments{suffix}.gpkg"),
                   f"prediction_segments{suffix}", percent, layout=tile_layout(parts=True))
        if not suffix:
            polygonize(result["extent"], geotransform, crs, os.path.join(folder, "prediction_extent.gpkg"),
                       "prediction_extent", percent, layout=tile_layout(parts=True))
    for name in os.listdir(folder):  # DARTS' GDAL writes GeoPackage 1.4, which GDAL 3.6 reads with a warning
        if name.endswith(".gpkg"):
            with sqlite3.connect(os.path.join(folder, name)) as database:
                database.execute("PRAGMA user_version = 10400")
    thumbnail = gdal.GetDriverByName("MEM").Create("", 64, 64, 3, gdal.GDT_Byte)
    gdal.GetDriverByName("JPEG").CreateCopy(os.path.join(folder, "thumbnail.jpg"), thumbnail)
    for leftover in os.listdir(folder):
        if leftover.endswith(".aux.xml"):
            os.remove(os.path.join(folder, leftover))
    if json_file:
        with open(os.path.join(folder, "darts_inference.json"), "w") as handle:
            json.dump({**PIPELINE, "DARTS_tileid": tile_id, "DARTS_exportdate": "2025-01-01 00:00:00.000000+00:00"},
                      handle, indent=2)
    return folder


def _tif(path, array, geotransform, crs, nodata, tags):
    """A uint8 raster as DARTS' exporter writes it (LZW)."""
    write_raster(path, array, geotransform, crs, nodata, tags, gdal.GDT_Byte, ["COMPRESS=LZW"])


def darts_run(folder, years=(2019, 2024), subsets=()):
    """A DARTS output folder of the test region for `years`: tiles A (UTM 7N), B, C (8N), named by
    the id forms of IDS (C nested as PlanetScope writes it), with DARTS' _metadata_* folder and
    run files beside them. In 2024 every slump is 20 m larger and a new slump lies in tile C.
    Returns {"folders": {(year, tile): folder}, "ids", "dates", "slumps": {year: slumps}}."""
    folder = str(folder)
    scratch = os.path.join(folder, "_drawn")
    base = scene.region(os.path.join(scratch, "base"))
    specs = base["tiles"]
    out = {"folders": {}, "ids": {}, "dates": {}, "slumps": {}}
    for year in years:
        slumps = dict(base["slumps"])
        if year > 2019:
            slumps = {name: (x, y, radius + 20.0) for name, (x, y, radius) in slumps.items()}
            slumps["c_new"] = (*scene.ground_of_pixel(specs["tile_C"], 80, 200), 60.0)
        out["slumps"][year] = slumps
        drawn = os.path.join(scratch, str(year))
        for name in ("tile_A", "tile_B", "tile_C"):
            spec = specs[name]
            scene.draw_tile(spec, slumps.values(), drawn)
            quality = np.full((spec.size, spec.size), 2, np.uint8)
            for row0, row1, col0, col1 in spec.clouds:
                quality[row0:row1, col0:col1] = 0
            tile_id, date = IDS[year][name]
            target = os.path.join(folder, tile_id)
            # DARTS_tileid: the scene id; for a PlanetScope orthotile the tile's (no date in it)
            write_darts_tile(target, os.path.join(drawn, name, "probabilities.tif"), quality, tile_id.split("/")[0],
                             subsets=subsets if name == "tile_B" else ())
            out["folders"][(year, name)] = target
            out["ids"][(year, name)] = tile_id.split("/")[-1]
            out["dates"][(year, name)] = date
    shutil.rmtree(scratch)
    metadata = os.path.join(folder, "_metadata_2025-01-01")
    os.makedirs(metadata)
    with open(os.path.join(metadata, "config.toml"), "w") as handle:
        handle.write('[darts]\nmodel-files = ["RTS_v6_tcvis_s2native.pt"]\n')
    with open(os.path.join(folder, "results.parquet"), "wb") as handle:
        handle.write(b"PAR1")
    return out


def darts_region(tmp_path):
    """A DARTS output folder (tests/darts_folders.py: tiles in UTM 7N and 8N that overlap) and its
    drawn slumps as round polygons in EPSG:3413, plus one rectangle where nothing is predicted."""
    from osgeo import ogr, osr

    run = darts_run(tmp_path / "run", years=(2024,))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3413)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "digitized.gpkg"))
    layer = dataset.CreateLayer("slumps", srs, ogr.wkbPolygon)
    slumps = list(run["slumps"][2024].values())
    x, y, _ = slumps[0]
    for geometry in [ogr.CreateGeometryFromWkt(f"POINT ({x} {y})").Buffer(radius, 32) for x, y, radius in slumps] + [
            ogr.CreateGeometryFromWkt(f"POINT ({x + 400} {y + 400})").Buffer(40, 4)]:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    dataset = None
    return run, str(tmp_path / "digitized.gpkg"), len(slumps)
