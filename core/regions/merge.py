"""The merge of tiles' objects into one map where tiles overlap (`merge_objects`):

- Objects are taken deepest first: depth is how far an object lies inside its tile's valid
  extent (from the tile's edges and from invalid data). A tile sees an object best far from
  where its view ends, and objects that touch that end are removed whole in their tile
  (boundary "remove"), so a slump cut by one tile's edge comes whole from its neighbour.
- An object that lies at least half inside an object already taken is the same slump seen by
  another tile: it is dropped and counted in the kept one's `n_tiles`.
- Otherwise what overlaps taken objects is cut off it (a sliver where neighbouring slumps meet
  on two tiles' pixel grids, or a neighbour that another tile saw joined to it), and the rest
  stays if it still covers `min_object_size` pixels. So no two features of the map overlap,
  and no slump that some tile saw whole is lost because another tile joined it to a neighbour.

Large objects are compared in pieces where their envelopes meet, so a hostile input (huge,
speckled objects) cannot make the merge quadratic in vertices.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...definitions import Progress
from ..files.gdal import osgeo, spatial_reference
from .tiles import TileResult

SAME_OBJECT_OVERLAP = 0.5  # share of an object inside one already taken from which it is the same slump
# -- the merge ------------------------------------------------------------------------------
# Bounds on the geometric work, so the merge ends in time proportional to its input whatever
# the shapes (a speckled tile gives one object of tens of thousands of diagonal parts, on
# which GEOS' Intersects never ends). Objects under both limits are compared whole, as they
# always were; larger ones piece by piece (their polygons, each cut into pieces of at most
# PIECE_VERTICES vertices), and only pieces whose envelopes meet are compared: the overlap
# areas are the same sums, and what is cut off is the same area.
SIMPLE_PARTS = 64  # an object of at most this many polygons ...
SIMPLE_VERTICES = 4096  # ... and vertices (rings included) is compared whole
PIECE_VERTICES = 512  # larger ones are compared in pieces of at most this many vertices
WIDE_CELLS = 4096  # an envelope over more grid cells is checked against every candidate instead


@dataclass
class MergedObject:
    result: TileResult
    index: int
    geometry: object = None  # OGR geometry, made when a neighbour is near (else the tile's WKB)
    tiles: set = field(default_factory=set)
    _pieces: object = field(default=None, repr=False)  # _Pieces of the geometry, made when needed

    def ogr(self):
        if self.geometry is None:
            _, ogr, _ = osgeo()
            self.geometry = ogr.CreateGeometryFromWkb(self.result.geometries[self.index])
        return self.geometry

    def pieces(self) -> _Pieces:
        if self._pieces is None:
            self._pieces = _Pieces(self.ogr())
        return self._pieces


class _Pieces:
    """An object's polygons cut into pieces of at most PIECE_VERTICES vertices (pieces of one
    polygon share only edges), their envelopes and a grid index of them."""

    def __init__(self, geometry):
        _, ogr, _ = osgeo()
        self.polygons, self.part_of = [], []
        multi = ogr.ForceToMultiPolygon(geometry.Clone())
        self.parts = [multi.GetGeometryRef(index).Clone() for index in range(multi.GetGeometryCount())]
        for part, polygon in enumerate(self.parts):
            for piece in _cut(polygon):
                self.polygons.append(piece)
                self.part_of.append(part)
        self.envelopes = (np.array([piece.GetEnvelope() for piece in self.polygons]) if self.polygons
                          else np.zeros((0, 4)))
        self._index = None

    def meeting(self, envelope) -> np.ndarray:
        """Indices of the pieces whose envelopes meet `envelope` (min x, max x, min y, max y)."""
        if self._index is None:
            self._index = _GridIndex(self.envelopes)
        return self._index.meeting(envelope)


class _GridIndex:
    """Which of many envelopes meet a given one, in time proportional to the answer: a uniform
    grid (cells twice the median envelope's side); envelopes over more than WIDE_CELLS cells
    are kept aside and checked every time (few: such envelopes are large)."""

    def __init__(self, envelopes: np.ndarray):
        self.envelopes = envelopes
        sides = np.maximum(envelopes[:, 1] - envelopes[:, 0], envelopes[:, 3] - envelopes[:, 2]) if len(envelopes) \
            else np.zeros(0)
        self.cell = max(float(np.median(sides)) * 2, 1e-9) if len(sides) else 1.0
        self.cells, wide = {}, []
        for position, (x0, x1, y0, y1) in enumerate(self._cell_ranges(envelopes)):
            if (x1 - x0 + 1) * (y1 - y0 + 1) > WIDE_CELLS:
                wide.append(position)
                continue
            for x in range(x0, x1 + 1):
                for y in range(y0, y1 + 1):
                    self.cells.setdefault((x, y), []).append(position)
        self.wide = np.array(wide, int)

    def _cell_ranges(self, envelopes):
        return np.floor(np.asarray(envelopes, float) / self.cell).astype(np.int64).reshape(-1, 4)

    def meeting(self, envelope) -> np.ndarray:
        x0, x1, y0, y1 = self._cell_ranges([envelope])[0]
        if (x1 - x0 + 1) * (y1 - y0 + 1) > WIDE_CELLS:  # a large envelope: every one is checked
            found = np.arange(len(self.envelopes))
        else:
            found = [position for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)
                     for position in self.cells.get((x, y), ())]
            found = np.unique(np.concatenate([np.array(found, int), self.wide]))
        return found[_meet(self.envelopes[found], envelope)] if len(found) else found


def _meet(envelopes: np.ndarray, envelope) -> np.ndarray:
    return ((envelopes[:, 0] <= envelope[1]) & (envelope[0] <= envelopes[:, 1])
            & (envelopes[:, 2] <= envelope[3]) & (envelope[2] <= envelopes[:, 3]))


def _vertices(geometry) -> int:
    count = geometry.GetPointCount()
    for index in range(geometry.GetGeometryCount()):
        count += _vertices(geometry.GetGeometryRef(index))
    return count


def _cut(polygon, depth: int = 0) -> list:
    """`polygon` in pieces of at most PIECE_VERTICES vertices: halved across its envelope's
    longer side until they are (each halving costs time proportional to its vertices)."""
    if _vertices(polygon) <= PIECE_VERTICES or depth >= 40:
        return [polygon]
    _, ogr, _ = osgeo()
    x0, x1, y0, y1 = polygon.GetEnvelope()
    if x1 - x0 >= y1 - y0:
        halves = [(x0, (x0 + x1) / 2, y0, y1), ((x0 + x1) / 2, x1, y0, y1)]
    else:
        halves = [(x0, x1, y0, (y0 + y1) / 2), (x0, x1, (y0 + y1) / 2, y1)]
    pieces = []
    for a, b, c, d in halves:
        box = ogr.CreateGeometryFromWkt(f"POLYGON (({a} {c}, {b} {c}, {b} {d}, {a} {d}, {a} {c}))")
        for piece in _polygons_of(polygon.Intersection(box)):
            pieces.extend(_cut(piece, depth + 1))
    return pieces


def _polygons_of(geometry) -> list:
    """The polygons of an overlay's result (a polygon, multipolygon or collection; lines and
    points, where pieces only touch, have no area and are left out)."""
    if geometry is None or geometry.IsEmpty():
        return []
    _, ogr, _ = osgeo()
    kind = ogr.GT_Flatten(geometry.GetGeometryType())
    if kind == ogr.wkbPolygon:
        return [geometry]
    if kind in (ogr.wkbMultiPolygon, ogr.wkbGeometryCollection):
        return [polygon for index in range(geometry.GetGeometryCount())
                for polygon in _polygons_of(geometry.GetGeometryRef(index).Clone())]
    return []


def _area(geometry) -> float:
    """The area of an overlay's result (0 where it is only points or lines)."""
    return sum(polygon.GetArea() for polygon in _polygons_of(geometry))


def _simple(item: MergedObject) -> bool:
    """Whether `item` is compared whole: few polygons, few vertices (its WKB holds 16 bytes a
    vertex, so its size bounds them without visiting them)."""
    geometry = item.ogr()
    return geometry.GetGeometryCount() <= SIMPLE_PARTS and geometry.WkbSize() <= 16 * SIMPLE_VERTICES


def merge_objects(results: list[TileResult], min_object_size: int = 0,
                  progress: Progress | None = None) -> tuple[list[MergedObject], int, int]:
    """(kept objects, duplicates dropped, objects clipped): the rule of this module's docstring.
    The order (depth, then tile id, then Region_ID) makes the map independent of the order in
    which tiles finished. `progress(fraction, message)` is called a few times a second and may
    raise to cancel."""
    tick = _Ticker(progress)
    candidates = [(-result.depths[index], result.tile_id, index, result)
                  for result in results for index in range(result.count)]
    candidates.sort(key=lambda item: item[:3])
    sizes = [max(result.envelopes[:, 1] - result.envelopes[:, 0]) for result in results if result.count]
    cell = max(1.0, 2 * float(np.median(sizes))) if sizes else 1.0
    index_of, wide = {}, []  # grid cell -> positions in kept; positions of kept objects over many cells
    kept, duplicates, clipped = [], 0, 0
    for number, (_, tile_id, index, result) in enumerate(candidates):
        tick(number / max(len(candidates), 1),
             lambda number=number: f"Merging the tiles' objects ({number} of {len(candidates)})")
        envelope = result.envelopes[index]
        x0, x1, y0, y1 = (int(envelope[0] // cell), int(envelope[1] // cell), int(envelope[2] // cell),
                          int(envelope[3] // cell))
        many = (x1 - x0 + 1) * (y1 - y0 + 1) > WIDE_CELLS
        cells = [] if many else [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
        looked = range(len(kept)) if many else [*{position for key in cells for position in index_of.get(key, ())},
                                                *wide]
        near = sorted({position for position in looked
                       if _envelopes_meet(envelope, kept[position].result.envelopes[kept[position].index])})
        candidate = MergedObject(result, index, tiles={tile_id})
        outcome = (_against_neighbours(candidate, [kept[position] for position in near], min_object_size,
                                       lambda number=number: tick(number / max(len(candidates), 1))) if near else "kept")
        if outcome == "duplicate":
            duplicates += 1
            continue
        clipped += outcome == "clipped"
        if many:
            wide.append(len(kept))
        for key in cells:
            index_of.setdefault(key, []).append(len(kept))
        kept.append(candidate)
        result.kept += 1
    tick(1.0, "Merged the tiles' objects", force=True)
    return kept, duplicates, clipped


class _Ticker:
    """Calls `progress` at most every 0.1 s (it may raise to cancel): cheap enough for every
    object and every piece compared."""

    def __init__(self, progress):
        self.progress, self.last, self.fraction, self.message = progress, 0.0, 0.0, ""

    def __call__(self, fraction: float | None = None, message=None, force: bool = False) -> None:
        """`message`: the text, or a function that makes it (made only when progress is called)."""
        if self.progress is None:
            return
        self.fraction = self.fraction if fraction is None else fraction
        self.message = self.message if message is None else message
        now = time.monotonic()
        if force or now - self.last >= 0.1:
            self.last = now
            self.progress(self.fraction, self.message() if callable(self.message) else self.message)


def _envelopes_meet(a, b) -> bool:
    return a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]


def _against_neighbours(candidate: MergedObject, neighbours: list[MergedObject], min_object_size: int,
                        tick: Callable[[], None] = lambda: None) -> str:
    """'duplicate' (and the neighbour it repeats counts its tile), 'clipped' or 'kept'."""
    if not (_simple(candidate) and all(_simple(neighbour) for neighbour in neighbours)):
        return _against_neighbours_in_pieces(candidate, neighbours, min_object_size, tick)
    geometry = candidate.ogr()
    area = geometry.GetArea()
    overlapping = []
    for neighbour in neighbours:
        tick()
        other = neighbour.ogr()
        if geometry.Intersects(other):
            overlap = geometry.Intersection(other).GetArea()
            if overlap > 0:  # not just touching edges or corners
                overlapping.append((overlap, neighbour))
    outcome, same = _same_slump(candidate, overlapping, area)
    if outcome != "cut":
        return outcome
    _, ogr, _ = osgeo()
    for _, neighbour in overlapping:
        geometry = geometry.Difference(neighbour.ogr())
    return _cut_off(candidate, ogr.ForceToMultiPolygon(geometry), area, same, min_object_size)


def _same_slump(candidate: MergedObject, overlapping: list, area: float) -> tuple[str, MergedObject | None]:
    """The rule of the module's docstring on the candidate's overlaps [(area, neighbour)]:
    ('kept', None) when it overlaps nothing; ('duplicate', neighbour) when it lies at least half
    inside that neighbour (which counts its tile); else ('cut', the neighbour it overlaps most,
    which is credited should too little of it be left after cutting)."""
    if not overlapping:
        return "kept", None
    largest, same = max(overlapping, key=lambda item: item[0])
    if largest >= SAME_OBJECT_OVERLAP * area:
        same.tiles.add(candidate.result.tile_id)
        return "duplicate", same
    return "cut", same


def _cut_off(candidate: MergedObject, geometry, area: float, same: MergedObject, min_object_size: int) -> str:
    """The candidate, having lost what overlapped its neighbours, is left with `geometry`:
    'clipped', or 'duplicate' when too little of it is left."""
    pixels = candidate.result.fields["npixel"][candidate.index] * geometry.GetArea() / area
    if geometry.IsEmpty() or pixels < max(min_object_size, 1):  # nothing of its own left: seen by `same` too
        same.tiles.add(candidate.result.tile_id)
        return "duplicate"
    candidate.geometry = geometry
    candidate._pieces = None
    return "clipped"


def _against_neighbours_in_pieces(candidate: MergedObject, neighbours: list[MergedObject], min_object_size: int,
                                  tick: Callable[[], None]) -> str:
    """_against_neighbours for objects of many parts or vertices: the same rule, piece by
    piece, comparing only pieces whose envelopes meet."""
    _, ogr, _ = osgeo()
    own = candidate.pieces()
    area = candidate.ogr().GetArea()
    overlapping, cuts = [], {}  # (overlap, neighbour); own piece -> neighbours' pieces to cut off it
    for neighbour in neighbours:
        theirs, overlap = neighbour.pieces(), 0.0
        for mine, piece in enumerate(own.polygons):
            for other in theirs.meeting(own.envelopes[mine]):
                tick()
                if piece.Intersects(theirs.polygons[other]):
                    shared = _area(piece.Intersection(theirs.polygons[other]))
                    if shared > 0:
                        overlap += shared
                        cuts.setdefault(mine, []).append(theirs.polygons[other])
        if overlap > 0:
            overlapping.append((overlap, neighbour))
    outcome, same = _same_slump(candidate, overlapping, area)
    if outcome != "cut":
        return outcome
    left = {part: [] for part in range(len(own.parts))}  # what is left of each polygon, in pieces
    changed, whole = set(), np.bincount(own.part_of, minlength=len(own.parts)) == 1
    for mine, piece in enumerate(own.polygons):
        for other in cuts.get(mine, ()):
            tick()
            piece = piece.Difference(other)
        if mine in cuts:
            changed.add(own.part_of[mine])
        left[own.part_of[mine]].extend(_polygons_of(piece))
    geometry = ogr.Geometry(ogr.wkbMultiPolygon)
    for part, pieces in left.items():
        if part not in changed:
            polygons = [own.parts[part]]
        elif len(pieces) <= 1 or whole[part]:
            polygons = pieces  # a polygon compared whole: its pieces are what is left of it
        else:  # the pieces of a cut polygon are joined again
            union = ogr.Geometry(ogr.wkbMultiPolygon)
            for piece in pieces:
                union.AddGeometry(piece)
            tick()
            polygons = _polygons_of(union.UnionCascaded())
        for polygon in polygons:
            geometry.AddGeometry(polygon)
    return _cut_off(candidate, geometry, area, same, min_object_size)


def write_merged(path: str, layer: str, target_crs, kept: list[MergedObject], tags: dict,
                 statistics: str = "fraction") -> None:
    """The merged map as one GeoPackage layer in the target CRS: each object's tile fields,
    `tile_id` and `n_tiles`; `tags` (metadata.describe_run) say how it was made."""
    _, ogr, _ = osgeo()
    from ..files.layers import FIELDS, Layout, write_layer

    fields = {"tile_id": [item.result.tile_id for item in kept],
              "date": [item.result.date.date.isoformat() if item.result.date.date else None for item in kept],
              "year": [item.result.date.year for item in kept]}
    for name in FIELDS:
        if all(name in item.result.fields for item in kept):
            fields[name] = [item.result.fields[name][item.index] for item in kept]
    fields["n_tiles"] = [len(item.tiles) for item in kept]
    geometries = [item.geometry if item.geometry is not None else ogr.CreateGeometryFromWkb(
        item.result.geometries[item.index]) for item in kept]
    write_layer(path, layer, spatial_reference(target_crs), fields, geometries,
                layout=Layout(statistics=statistics, tags=tags), feature_ids=None)


def coverage_layer(layer: str) -> str:
    """The name of the layer that holds where the map `layer` could have found slumps."""
    return f"{layer}_coverage"


def write_coverage(path: str, layer: str, target_crs, tiles: list[TileResult], tags: dict) -> None:
    """Each processed tile's valid extent (in the target CRS) with its tile_id, date and year,
    as a layer added to the GeoPackage `path`: "no slump here" and "not observed here" differ."""
    _, ogr, _ = osgeo()
    from ..files.layers import Layout, write_layer

    fields = {"tile_id": [tile.tile_id for tile in tiles],
              "date": [tile.date.date.isoformat() if tile.date.date else None for tile in tiles],
              "year": [tile.date.year for tile in tiles]}
    geometries = [ogr.CreateGeometryFromWkb(tile.coverage) for tile in tiles]
    write_layer(path, layer, spatial_reference(target_crs), fields, geometries, layout=Layout(tags=tags),
                feature_ids=None, add_layer=True)
