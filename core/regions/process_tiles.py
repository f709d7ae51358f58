"""From tiles to a region: many DARTS tiles in, one map of thaw-slump polygons out
(`process_tiles_files`: darts:processtiles' pipeline on files; `merge_tiles` without writing).
Tiles are found and processed one by one (tiles.py, in workers: workers.py), then merged per
group (by default per year, as DARTS' products are yearly: objects of different groups are
never merged nor cut against each other) (merge.py), and the map is written with a coverage
layer of the tiles' valid extents.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from ...definitions import DEFAULT_TARGET_CRS, Progress
from ..files.atomic import AtomicFiles
from ..files.gdal import spatial_reference
from ..products.prepare_export_files import run_on_files
from .darts_ids import group_key
from .merge import coverage_layer, merge_objects, write_coverage, write_merged
from .tiles import TILE_OUTPUTS, Skipped, TileResult, TileSettings, tiles_found
from .workers import run_tiles, worker_count


@dataclass
class Region:
    """The merged objects of a run (`write` puts them into a GeoPackage) and what the run did,
    for the log and the report."""

    tiles: list[TileResult]
    skipped: list[Skipped]
    merged: list  # the map's objects (MergedObject), in the order they were taken
    duplicates: int  # objects dropped because another tile's object is the same slump
    clipped: int  # objects that lost a sliver to a neighbouring object
    seconds: float
    target_crs: str
    record: dict  # the run's parameters, on record in the output
    groups: dict = field(default_factory=dict)  # {group (year, date or "all"): its tiles, features, merges}
    notes: list = field(default_factory=list)  # sentences for the log (process_tiles_files)
    warnings: list = field(default_factory=list)

    @property
    def features(self) -> int:
        return len(self.merged)

    def write(self, path: str, layer: str) -> int:
        """The merged map as the GeoPackage layer `layer` of the new file `path`, and the tiles'
        valid extents as the layer coverage_layer(layer) beside it; the map's count."""
        from ..files.tags import describe_run

        self.record["coverage_layer"] = coverage_layer(layer)
        tags = describe_run("processtiles", self.record)
        write_merged(path, layer, self.target_crs, self.merged, tags, self.record["statistics_scale"])
        write_coverage(path, coverage_layer(layer), self.target_crs, self.tiles, tags)
        return self.features


def excluded_note(counts: dict) -> str:
    """', x % of its pixels in the exclusion mask' for a tile's log line ('' without a mask)."""
    if "excluded_share" not in counts:
        return ""
    return f", {100 * counts['excluded_share']:.3g} % of its pixels in the exclusion mask"


def exclusion_missed(counts: dict) -> bool:
    """Whether the exclusion polygons overlap a tile in their own CRS yet exclude none of its
    pixels (smaller than a pixel, or in another CRS than they say): worth a warning."""
    return counts.get("exclusion_overlaps", False) and counts.get("excluded_share") == 0


def merge_tiles(inputs, target_crs=DEFAULT_TARGET_CRS, *, settings: TileSettings | None = None,
                tile_outputs: str | None = None, workers: int = 1, client=None, stop_on_error: bool = False,
                progress: Progress | None = None, files: AtomicFiles | None = None) -> Region:
    """Postprocess every tile under `inputs` (see find_tiles) and merge their objects in
    `target_crs`; each tile's binarized/extent rasters and polygons go into
    `tile_outputs/<tile id>/` through `files` (an AtomicFiles the caller commits). Tiles that
    cannot be processed are skipped (listed in the result), or stop the run with
    `stop_on_error`. `progress(fraction, message)` may raise to cancel."""
    start = time.perf_counter()
    settings = (settings or TileSettings()).checked()
    target_srs = spatial_reference(target_crs)
    if target_srs is None or not target_srs.IsProjected():
        raise ValueError(f"the target CRS must be a projected CRS (got {target_crs!r})")
    if tile_outputs and files is None:
        raise ValueError("tile outputs are written through `files` (an AtomicFiles)")
    report = progress or (lambda fraction, message: None)
    sources, skipped = tiles_found(inputs, settings.subset, stop_on_error)
    if files is not None:  # outputs never replace a tile's files
        files.protect([path for source in sources for path in source.inputs])
    if tile_outputs:  # a tile's own outputs that would replace an input are refused before any tile
        for source in sources:
            for name in TILE_OUTPUTS:
                files.check(os.path.join(tile_outputs, source.tile_id, name))
    jobs = []
    for source in sources:
        outputs = None
        if tile_outputs:  # hidden files in the folder itself until the end: no half-filled tile folders
            stem = source.tile_id.replace("/", "_")
            outputs = {name: files.scratch(os.path.join(tile_outputs, f"{stem}-{name}")) for name in TILE_OUTPUTS}
        jobs.append((source, settings, target_crs, outputs))
    results, unfound = [], len(skipped)
    status = [f"Processing {len(jobs)} tiles"]
    if client is None and workers > 1:
        workers, note = worker_count(workers, sources)
        status[0] += f", up to {workers} at a time in worker processes" if workers > 1 else " in this process"
        if note:
            status[0] += f" ({note})"

    def heartbeat():
        report((len(results) + len(skipped) - unfound) / len(jobs) * 0.9, status[0])

    for result in run_tiles(jobs, workers, client, heartbeat):
        if result.outputs_failed:
            where = os.path.join(tile_outputs, result.tile_id) + os.sep
            raise OSError(f"tile {result.tile_id}: {result.error.replace('write ', 'write ' + where, 1)}")
        if result.error:
            if stop_on_error:
                raise ValueError(f"tile {result.tile_id}: {result.error}")
            skipped.append(Skipped(result.tile_id, result.error))
        else:
            results.append(result)
        status[0] = f"Tile {result.tile_id}: " + (f"skipped ({result.error})" if result.error
                                                   else f"{result.count} objects" + excluded_note(result.counts))
        heartbeat()
    if not results:
        raise ValueError(f"none of the {len(jobs)} tiles could be processed; the first: tile "
                         f"{skipped[unfound].tile_id}: {skipped[unfound].reason}")
    results.sort(key=lambda result: result.tile_id)
    report(0.9, "Merging the tiles' objects")
    merged, duplicates, clipped, groups = [], 0, 0, {}
    total, done = max(sum(result.count for result in results), 1), 0
    for key, members in grouped(results, settings.group_by):
        share = sum(member.count for member in members)
        group_merged, group_duplicates, group_clipped = merge_objects(
            members, settings.min_object_size,
            lambda fraction, message, done=done, share=share: report(0.9 + 0.1 * (done + fraction * share) / total,
                                                                     message))
        done += share
        merged += group_merged
        duplicates += group_duplicates
        clipped += group_clipped
        groups[key] = {"tiles": len(members), "features": len(group_merged), "duplicates": group_duplicates,
                       "clipped": group_clipped, "objects": sum(member.count for member in members)}
    for result in results:
        for name, written in result.written.items():
            os.replace(written, files.reserve(os.path.join(tile_outputs, result.tile_id, name)))
    record = {**settings.on_record(), "target_crs": str(target_crs), "tiles": len(results),
              "tiles_skipped": len(skipped), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return Region(results, skipped, merged, duplicates, clipped, time.perf_counter() - start, str(target_crs), record,
                  groups)


def grouped(results: list[TileResult], grouping: str) -> list[tuple[object, list[TileResult]]]:
    """[(group, its tiles)] in order (years or dates ascending, tiles without a date last):
    each group is merged on its own (GROUPINGS)."""
    groups = {}
    for result in results:
        groups.setdefault(group_key(result.date, grouping), []).append(result)
    return sorted(groups.items(), key=lambda item: (item[0] is None, str(item[0])))


@dataclass(frozen=True)
class TilesOutputs:
    """Where a processtiles run writes: the merged map into the GeoPackage `map` (as the layer
    `layer` of it when the file exists, its other layers kept; else a new file, the layer named
    `layer` or after the file) with its coverage layer beside it; optionally each tile's files
    under the folder `tiles` and an HTML `report`."""

    map: str
    layer: str | None = None
    tiles: str | None = None
    report: str | None = None


def process_tiles_files(inputs, outputs: TilesOutputs, target_crs=DEFAULT_TARGET_CRS,
                        settings: TileSettings | None = None, *, workers: int = 1, address: str | None = None,
                        client=None, stop_on_error: bool = False, progress: Progress | None = None,
                        files: AtomicFiles | None = None, log=None, title: str | None = None) -> Region:
    """darts:processtiles from files to files: merge_tiles on the tiles under `inputs` (on the
    dask.distributed cluster at `address`, or through `client`, one connected already), then the
    merged map, its coverage layer and the report written to `outputs` through `files` (an
    AtomicFiles the caller commits; None: one of its own, committed when all are written).
    `log(sentence, warning)` receives each tile's notes and warnings, each group's line and the
    summary once (they are in the result's notes and warnings too). `title`: the report's."""
    from ..files.atomic import into_geopackage
    from ..lazy.blockwise import scheduler

    settings = (settings or TileSettings()).checked()
    report = progress or (lambda fraction, message: None)

    def run(files, say):
        if settings.exclude:
            from ..files.exclusion import polygons_without_crs

            if polygons_without_crs(settings.exclude[0], settings.exclude[1]):
                say("EXCLUDE: the polygons have no CRS; they are taken to be in the raster's CRS", True)
        with contextlib.nullcontext((client, None)) if client is not None else scheduler(address) as (connected, _):
            if connected is not None and address:
                say(f"Processing the tiles on the dask cluster at {address}")
            region = merge_tiles(inputs, target_crs, settings=settings, tile_outputs=outputs.tiles, workers=workers,
                                 client=connected, stop_on_error=stop_on_error, files=files,
                                 progress=lambda fraction, message: report(0.95 * fraction, message))
        report(0.95, "Writing the merged map")
        into_geopackage(files, outputs.map, outputs.layer, region.write, lambda layer: [coverage_layer(layer)])
        for sentence, warning in region_lines(region):
            say(sentence, warning)
        if outputs.report:
            from .report import TILES_TITLE, render_tiles_report

            with open(files.reserve(outputs.report), "w", encoding="utf-8") as handle:
                handle.write(render_tiles_report(title or TILES_TITLE, region, inputs))
        return region

    return run_on_files(run, [settings.exclude[0] if settings.exclude else None], files, log)


def region_lines(region: Region):
    """(sentence, warning) for the log of a run: each skipped tile, each tile's notes and
    warnings, each group, the summary."""
    for skipped in region.skipped:
        yield f"Tile {skipped.tile_id} skipped: {skipped.reason}", True
    for tile in region.tiles:
        for warning in tile.warnings:
            yield f"Tile {tile.tile_id}: {warning}", True
        if "excluded_share" in tile.counts:
            yield f"Tile {tile.tile_id}{excluded_note(tile.counts)}", False
        if exclusion_missed(tile.counts):
            yield (f"Tile {tile.tile_id}: the exclusion polygons overlap it in their own CRS but cover no pixel centre "
                   f"of it (smaller than a pixel, or not in the CRS they declare?)"), True
        if tile.date.year is None:
            yield (f"Tile {tile.tile_id}: no date found ({tile.date.source}); its objects are merged with the other "
                   f"tiles without a date"), True
        if tile.extent_as_given.startswith("valid pixels"):
            yield f"Tile {tile.tile_id}: no extent in its folder, the {tile.extent_as_given.split(' (')[0]} used", False
    for key, group in region.groups.items():
        yield (f"{region.record['group_by']} {key if key is not None else 'without a date'}: {group['tiles']} tiles, "
               f"{group['features']} slump polygons ({group['duplicates']} merged across tiles)"), False
    yield (f"{len(region.tiles)} tiles processed, {len(region.skipped)} skipped: {region.features} slump polygons in "
           f"the merged map ({region.duplicates} objects seen by more than one tile merged, {region.clipped} cut where "
           f"they met a neighbour) in {region.seconds:.1f} s."), False


def process_tiles(inputs, output: str, target_crs=DEFAULT_TARGET_CRS, *, layer: str | None = None,
                  tile_outputs: str | None = None, **options) -> Region:
    """process_tiles_files (same `options`) with the merged map into the GeoPackage `output`
    (layer `layer`, default the file's name). Every file appears at the end, or none does."""
    return process_tiles_files(inputs, TilesOutputs(output, layer, tile_outputs), target_crs, **options)
