"""Change of slumps between years: which are new, grown, shrunk, stable, gone or unobserved.

Slumps of two consecutive years (`year_from` < `year_to`, the years present in the input) are
grouped by overlap: features of the two years that overlap (an intersection of positive area)
belong to one group, and so does everything connected to them through further overlaps. A group
is thus one slump followed over the two years, also when slumps merge (several earlier features,
one later: match "merge"), split ("split") or both ("many"); a one-to-one group is "one", a group
of one year only "none". Per group:

- both years: the area change (summed areas of the later features minus the earlier) within
  `tolerance` times the earlier area is "stable", above it "grown", below it "shrunk";
- only the later year: "new" when the earlier year observed that place (its coverage holds the
  slump), else "unobserved";
- only the earlier year: "gone" when the later year observed that place, else "unobserved".

Coverage (what a year observed, e.g. processtiles' `<layer>_coverage`) is optional: a year without
it counts as observed everywhere. A slump counts as observed when at least `observed_share` of its
area lies inside the coverage. Areas are in the units of the (projected) CRS: m² for the
CRSs DARTS uses. Geometry work with OGR/GEOS; no QGIS import here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence

import numpy as np

from ..files.exclusion import crs_of
from ..files.gdal import open_read_only, osgeo, spatial_reference

CLASSES = ("new", "grown", "stable", "shrunk", "gone", "unobserved")
DEFAULT_TOLERANCE = 0.1
DEFAULT_OBSERVED_SHARE = 0.5


@dataclasses.dataclass
class Slump:
    """One feature of one year: `key` names it in the output (its FID, prefixed with the
    input's number when there are several inputs), `geometry` in the common CRS."""

    key: str
    geometry: object
    area: float


@dataclasses.dataclass
class Change:
    year_from: int
    year_to: int
    change: str  # one of CLASSES
    match: str  # one, merge, split, many, none
    area_from: float
    area_to: float
    ids_from: list
    ids_to: list
    geometry: object  # the later year's features (the earlier ones for gone slumps), unioned

    @property
    def change_m2(self) -> float:
        return self.area_to - self.area_from

    @property
    def change_m2_per_year(self) -> float:
        return self.change_m2 / (self.year_to - self.year_from)


def overlap_groups(earlier: Sequence[Slump], later: Sequence[Slump]) -> list[tuple[list[int], list[int]]]:
    """Groups (indices into `earlier`, indices into `later`) of features connected by overlaps
    of positive area; every feature is in exactly one group. Candidates by bounding boxes first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, m = len(earlier), len(later)
    boxes_later = np.array([s.geometry.GetEnvelope() for s in later], dtype=float).reshape(-1, 4)  # minx maxx miny maxy
    rows, cols = [], []
    for i, slump in enumerate(earlier):
        minx, maxx, miny, maxy = slump.geometry.GetEnvelope()
        near = np.flatnonzero((boxes_later[:, 0] <= maxx) & (boxes_later[:, 1] >= minx) & (boxes_later[:, 2] <= maxy)
                              & (boxes_later[:, 3] >= miny))
        for j in near:
            if overlaps(slump.geometry, later[j].geometry):
                rows.append(i)
                cols.append(n + j)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + m, n + m))
    count, labels = connected_components(graph, directed=False)
    groups = [([], []) for _ in range(count)]
    for index, label in enumerate(labels):
        (groups[label][0] if index < n else groups[label][1]).append(index if index < n else index - n)
    return groups


def overlaps(a, b) -> bool:
    """Whether two polygons share area (touching edges or corners do not count)."""
    if not a.Intersects(b):
        return False
    shared = a.Intersection(b)
    return shared is not None and shared.GetArea() > 0


def observed(geometry, coverage, share: float) -> bool:
    """Whether at least `share` of `geometry`'s area lies inside `coverage` (None: observed)."""
    if coverage is None:
        return True
    area = geometry.GetArea()
    if area <= 0:
        return coverage.Intersects(geometry)
    inside = geometry.Intersection(coverage)
    return inside is not None and inside.GetArea() >= share * area


def union_of(geometries):
    _, ogr, _ = osgeo()
    collection = ogr.Geometry(ogr.wkbMultiPolygon)
    for geometry in geometries:
        flat = ogr.ForceToMultiPolygon(geometry.Clone())
        for index in range(flat.GetGeometryCount()):
            collection.AddGeometry(flat.GetGeometryRef(index))
    merged = collection.UnionCascaded() if collection.GetGeometryCount() > 1 else collection
    return ogr.ForceToMultiPolygon(merged)


def compare_pair(year_from: int, year_to: int, earlier: Sequence[Slump], later: Sequence[Slump], coverage_from=None,
                 coverage_to=None, tolerance: float = DEFAULT_TOLERANCE,
                 observed_share: float = DEFAULT_OBSERVED_SHARE) -> list[Change]:
    """The changes from `year_from` to `year_to` (see the module's rules), one per group."""
    changes = []
    for group_from, group_to in overlap_groups(earlier, later):
        slumps_from, slumps_to = [earlier[i] for i in group_from], [later[j] for j in group_to]
        area_from, area_to = sum(s.area for s in slumps_from), sum(s.area for s in slumps_to)
        shown = union_of([s.geometry for s in (slumps_to or slumps_from)])
        if slumps_from and slumps_to:
            difference = area_to - area_from
            change = "stable" if abs(difference) <= tolerance * area_from else "grown" if difference > 0 else "shrunk"
            match = {(True, True): "one", (False, True): "merge", (True, False): "split"}.get(
                (len(slumps_from) == 1, len(slumps_to) == 1), "many")
        elif slumps_to:
            change, match = ("new" if observed(shown, coverage_from, observed_share) else "unobserved"), "none"
        else:
            change, match = ("gone" if observed(shown, coverage_to, observed_share) else "unobserved"), "none"
        changes.append(Change(year_from, year_to, change, match, area_from, area_to, [s.key for s in slumps_from],
                              [s.key for s in slumps_to], shown))
    return changes


def compare_years(slumps: dict, coverage: dict | None = None, tolerance: float = DEFAULT_TOLERANCE,
                  observed_share: float = DEFAULT_OBSERVED_SHARE, progress=None) -> list[Change]:
    """Changes between each pair of consecutive years of `slumps` ({year: [Slump]}); `coverage`
    ({year: geometry}) says what each year observed (a year missing from it: everywhere)."""
    if not 0 <= tolerance:
        raise ValueError(f"tolerance must be >= 0 (a share of the earlier area), got {tolerance!r}")
    if not 0 < observed_share <= 1:
        raise ValueError(f"observed_share must be in (0, 1], got {observed_share!r}")
    years = sorted(slumps)
    if len(years) < 2:
        raise ValueError(f"at least two years are needed to compare, got {', '.join(map(str, years)) or 'none'}")
    coverage = coverage or {}
    changes = []
    for index, (year_from, year_to) in enumerate(zip(years, years[1:])):
        if progress:
            progress(index / (len(years) - 1), f"Comparing {year_from} with {year_to}")
        changes += compare_pair(year_from, year_to, slumps[year_from], slumps[year_to], coverage.get(year_from),
                                coverage.get(year_to), tolerance, observed_share)
    return changes


def summary(changes: Sequence[Change]) -> list[dict]:
    """Per pair of years and class: the number of groups and their area in each year."""
    rows = {}
    for change in changes:
        key = (change.year_from, change.year_to, change.change)
        row = rows.setdefault(key, {"year_from": key[0], "year_to": key[1], "change": key[2], "count": 0,
                                    "area_from": 0.0, "area_to": 0.0})
        row["count"] += 1
        row["area_from"] += change.area_from
        row["area_to"] += change.area_to
    return [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1], CLASSES.index(k[2])))]


# -- files -------------------------------------------------------------------------------------------

def read_slumps(sources: Sequence[tuple], year_field: str = "year", crs=None, what: str = "INPUT") -> tuple[dict, object]:
    """({year: [Slump]}, the common CRS) of the polygon layers `sources` ((file, layer or None,
    OGR filter or None), ...), each feature's year from `year_field`. The common CRS is `crs`,
    or the first layer's; it must be projected (areas in its units)."""
    gdal, ogr, osr = osgeo()
    slumps, target = {}, spatial_reference(crs) if crs else None
    for number, name, layer, srs in _year_layers(sources, year_field, what):
        if target is None:
            target = srs.Clone()
            target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if not target.IsProjected():
            raise ValueError(f"{name}: the CRS {target.GetName()!r} is not projected, so areas would be in "
                             f"degrees²: reproject the maps first (e.g. to the UTM zone or EPSG:3413)")
        transform = _transform_to(srs, target)
        for feature in layer:
            geometry = feature.GetGeometryRef()
            if geometry is None or geometry.IsEmpty():
                continue
            year = feature.GetField(year_field)
            if year is None or str(year).strip() == "":
                raise ValueError(f"{name}: feature {feature.GetFID()} has no year in {year_field!r}")
            try:
                year = int(str(year)[:4]) if not isinstance(year, int) else year
            except ValueError:
                raise ValueError(f"{name}: feature {feature.GetFID()} has {year!r} in {year_field!r}, "
                                 f"not a year") from None
            geometry = geometry.Clone()
            if transform is not None:
                geometry.Transform(transform)
            if not geometry.IsValid():
                geometry = geometry.MakeValid() if hasattr(geometry, "MakeValid") else geometry.Buffer(0)
            key = str(feature.GetFID()) if len(sources) == 1 else f"{number}:{feature.GetFID()}"
            slumps.setdefault(year, []).append(Slump(key, geometry, geometry.GetArea()))
    return slumps, target


def _transform_to(srs, target):
    """The transformation from a layer's CRS to `target` (x/y order), None when they are the same."""
    _, _, osr = osgeo()
    srs = srs.Clone()
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return None if srs.IsSame(target) else osr.CoordinateTransformation(srs, target)


def read_coverage(sources: Sequence[tuple], target, year_field: str = "year", what: str = "COVERAGE") -> dict:
    """{year: union of the coverage polygons of that year} in the CRS `target`."""
    parts = {}
    for _, _, layer, srs in _year_layers(sources, year_field, what):
        transform = _transform_to(srs, target)
        for feature in layer:
            geometry = feature.GetGeometryRef()
            year = feature.GetField(year_field)
            if geometry is None or year is None:
                continue
            geometry = geometry.Clone()
            if transform is not None:
                geometry.Transform(transform)
            parts.setdefault(int(str(year)[:4]), []).append(geometry)
    return {year: union_of(geometries) for year, geometries in parts.items()}


def _year_layers(sources: Sequence[tuple], year_field: str, what: str):
    """(number, name for messages, layer with its filter set, its CRS) of each polygon layer of
    `sources`, open while it is being read; a layer without a CRS or without the year field
    is refused."""
    for number, (path, layer_name, where) in enumerate(sources, start=1):
        name = f"{what} {number}" if len(sources) > 1 else what
        with _open_layer(path, layer_name, name) as layer:
            srs = crs_of(layer)
            if srs is None:
                raise ValueError(f"{name}: the layer has no CRS: set it (e.g. 'Assign projection') first")
            definition = layer.GetLayerDefn()
            if definition.GetFieldIndex(year_field) < 0:
                fields = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
                raise ValueError(f"{name}: no field {year_field!r} for the year (has: {', '.join(fields) or 'none'})")
            if where:
                layer.SetAttributeFilter(where)
            yield number, name, layer, srs


@contextlib.contextmanager
def _open_layer(path: str, layer_name: str | None, what: str):
    """`with _open_layer(...) as layer:` the polygon layer, its file open read-only and
    leaving nothing beside it (files.open_read_only) until the end of the block."""
    with contextlib.ExitStack() as stack:
        try:
            dataset = stack.enter_context(open_read_only(path, "vector"))
        except RuntimeError as error:
            raise ValueError(f"{what}: cannot read {path!r} as polygons: {error}") from None
        if dataset is None or dataset.GetLayerCount() == 0:
            raise ValueError(f"{what}: {path!r} holds no vector layer")
        if layer_name is None and dataset.GetLayerCount() == 1:
            yield dataset.GetLayer(0)
            return
        if layer_name is None:
            names = [dataset.GetLayer(i).GetName() for i in range(dataset.GetLayerCount())]
            candidates = [n for n in names if not n.endswith("_coverage")]
            if len(candidates) != 1:
                raise ValueError(f"{what}: {path!r} has {len(names)} layers ({', '.join(names)}): name one, as "
                                 f"{path}|layername=NAME")
            layer_name = candidates[0]
        layer = dataset.GetLayerByName(layer_name)
        if layer is None:
            raise ValueError(f"{what}: {path!r} has no layer {layer_name!r}")
        yield layer


def coverage_beside(path: str, layer_name: str | None) -> tuple | None:
    """(file, '<layer>_coverage', None) when the GeoPackage beside the map holds processtiles'
    coverage layer for it, else None."""
    try:
        with open_read_only(path, "vector") as dataset:
            names = [dataset.GetLayer(i).GetName() for i in range(dataset.GetLayerCount())]
    except RuntimeError:
        return None
    if layer_name is None:
        candidates = [n for n in names if not n.endswith("_coverage")]
        if len(candidates) != 1:
            return None
        layer_name = candidates[0]
    return (path, f"{layer_name}_coverage", None) if f"{layer_name}_coverage" in names else None


def write_changes(path: str, layer_name: str, changes: Sequence[Change], crs, tags=None) -> int:
    """The changes as a GeoPackage layer: year_from, year_to, change, match, area_from_m2,
    area_to_m2, change_m2, change_m2_per_year, ids_from, ids_to (comma-separated FIDs)."""
    from ..files.gdal import gdal_writing

    _, ogr, _ = osgeo()
    with gdal_writing(path):
        dataset = ogr.GetDriverByName("GPKG").CreateDataSource(path)
        layer = dataset.CreateLayer(layer_name, crs, ogr.wkbMultiPolygon)
        fields = [("year_from", ogr.OFTInteger), ("year_to", ogr.OFTInteger), ("change", ogr.OFTString),
                  ("match", ogr.OFTString), ("area_from_m2", ogr.OFTReal), ("area_to_m2", ogr.OFTReal),
                  ("change_m2", ogr.OFTReal), ("change_m2_per_year", ogr.OFTReal), ("ids_from", ogr.OFTString),
                  ("ids_to", ogr.OFTString)]
        for name, kind in fields:
            layer.CreateField(ogr.FieldDefn(name, kind))
        layer.StartTransaction()
        for change in changes:
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetGeometry(change.geometry)
            values = dict(year_from=change.year_from, year_to=change.year_to, change=change.change, match=change.match,
                          area_from_m2=change.area_from, area_to_m2=change.area_to, change_m2=change.change_m2,
                          change_m2_per_year=change.change_m2_per_year, ids_from=",".join(change.ids_from),
                          ids_to=",".join(change.ids_to))
            for name, value in values.items():
                feature.SetField(name, value)
            layer.CreateFeature(feature)
        layer.CommitTransaction()
        if tags:
            dataset.SetMetadata({str(k): str(v) for k, v in tags.items()})
        dataset = None
    return len(changes)
