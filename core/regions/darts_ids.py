"""When a DARTS tile was seen: the date (or only the year) its tile id says.

DARTS names each tile folder by its tile id and takes a tile's year from that id; its
products are per year. The id forms DARTS writes (darts-nextgen's pipelines):

- Sentinel-2 from Earth Engine: `20240715T213529_20240715T213531_T07WET` (date first)
- Sentinel-2 from the Copernicus data space: `S2B_MSIL2A_20240715T213529_N0510_R086_T07WET_...`
- PlanetScope scenes: `20240715_213529_31_2474` (date first), in `<tile_id>/<scene_id>/`
- PlanetScope orthotiles: `5226109_4956307_2024-07-15_227b` (date third)
- quarterly mosaics: `Sentinel-2_mosaic_2024_Q3_07WET_0_0` (a year and a quarter, no day)

Any other id with a valid date `YYYYMMDD` or `YYYY-MM-DD` standing apart is read too; an id
without a date gives none (allowed: such tiles form a group of their own). No numpy here.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from ... import definitions

# An 8-digit or dashed date standing apart (not inside a longer number), as a scene id writes it.
_DATE = re.compile(r"(?<![0-9])((?:19|20)[0-9]{2})-?([01][0-9])-?([0-3][0-9])(?![0-9])")
# A quarterly mosaic: `_<year>_Q<quarter>_`.
_MOSAIC_YEAR = re.compile(r"(?:^|_)((?:19|20)[0-9]{2})_Q[1-4](?:_|$)")


@dataclass(frozen=True)
class TileDate:
    """What a tile's id says about when: `date` (None for a mosaic or an id without one),
    `year` (None when unknown) and `source` (where it was read, for the log)."""

    date: datetime.date | None = None
    year: int | None = None
    source: str = ""

    @property
    def label(self) -> str:
        if self.date:
            return self.date.isoformat()
        return str(self.year) if self.year else "no date"


def date_of_id(tile_id: str) -> TileDate:
    """The date (and year) a DARTS tile or scene id holds; TileDate() when it holds none."""
    for match in _DATE.finditer(tile_id):
        try:
            day = datetime.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:  # 20241399 and the like: not a date
            continue
        return TileDate(day, day.year)
    mosaic = _MOSAIC_YEAR.search(tile_id)
    if mosaic:
        return TileDate(None, int(mosaic.group(1)))
    return TileDate()


def tile_date(candidates: list[tuple[str, str | None]]) -> TileDate:
    """The first date found among `candidates` ([(where, id or None)], in order of trust:
    darts_inference.json's DARTS_tileid, the raster's DARTS_tileid tag, the folder's name).
    A PlanetScope orthotile's DARTS_tileid has no date, its scene folder has: so the next
    candidate is tried."""
    for where, tile_id in candidates:
        if tile_id:
            found = date_of_id(str(tile_id))
            if found.year is not None:
                return TileDate(found.date, found.year, f"{where} {tile_id!r}")
    return TileDate(source="none of " + ", ".join(where for where, _ in candidates) + " holds a date")


GROUPINGS = definitions.GROUPINGS


def group_key(found: TileDate, grouping: str):
    """The group a tile's objects are merged in: its year, its date or one group for all;
    tiles without one form the group None."""
    if grouping == "none":
        return "all"
    return found.year if grouping == "year" else found.date
