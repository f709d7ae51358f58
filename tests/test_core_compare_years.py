"""Change classes between years (core/compare_years.py) on hand-made pairs: growth, shrinking,
stable, a merge of two slumps, a split, new and gone with and without coverage, and from files."""

import os

import pytest

osgeo = pytest.importorskip("osgeo", reason="GDAL's Python bindings (Debian's python3-gdal) hold the geometries")
from darts_postprocessing.core.regions.compare_years import (  # noqa: E402
    Slump,
    compare_pair,
    compare_years,
    read_coverage,
    read_slumps,
    summary,
    write_changes,
)
from osgeo import ogr  # noqa: E402
from reading import open_read_only  # noqa: E402
from vectors import write_map  # noqa: E402

ogr.UseExceptions()


def box(x0, y0, x1, y1):
    return ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")


def slumps(*boxes):
    return [Slump(str(index), geometry, geometry.GetArea()) for index, geometry in enumerate(map(lambda b: box(*b), boxes),
                                                                                             start=1)]


def classes(changes):
    return sorted((c.change, c.match, tuple(c.ids_from), tuple(c.ids_to)) for c in changes)


def test_growth_shrinking_and_stable():
    earlier = slumps((0, 0, 10, 10), (100, 0, 110, 10), (200, 0, 210, 10))
    later = slumps((0, 0, 10, 15), (100, 0, 110, 8), (200, 0, 210, 10.5))  # +50 %, -20 %, +5 %
    changes = compare_pair(2020, 2022, earlier, later, tolerance=0.1)
    assert classes(changes) == [("grown", "one", ("1",), ("1",)), ("shrunk", "one", ("2",), ("2",)),
                                ("stable", "one", ("3",), ("3",))]
    grown = next(c for c in changes if c.change == "grown")
    assert (grown.area_from, grown.area_to, grown.change_m2, grown.change_m2_per_year) == (100, 150, 50, 25)


def test_merge_of_two_slumps_and_a_split():
    earlier = slumps((0, 0, 10, 10), (12, 0, 22, 10), (100, 0, 130, 10))
    later = slumps((0, 0, 24, 10), (100, 0, 110, 10), (120, 0, 130, 10))
    changes = compare_pair(2020, 2021, earlier, later)
    assert classes(changes) == [("grown", "merge", ("1", "2"), ("1",)), ("shrunk", "split", ("3",), ("2", "3"))]
    merged = next(c for c in changes if c.match == "merge")
    assert (merged.area_from, merged.area_to) == (200, 240)


def test_touching_is_no_overlap():
    changes = compare_pair(2020, 2021, slumps((0, 0, 10, 10)), slumps((10, 0, 20, 10)))
    assert classes(changes) == [("gone", "none", ("1",), ()), ("new", "none", (), ("1",))]


def test_new_and_gone_need_the_place_observed():
    earlier = slumps((0, 0, 10, 10), (50, 0, 60, 10))
    later = slumps((100, 0, 110, 10), (150, 0, 160, 10))
    coverage_from = box(90, -5, 120, 20)  # 2020 saw where 2021's first slump is, not its second
    coverage_to = box(-5, -5, 20, 20)  # 2021 saw where 2020's first slump was, not its second
    changes = compare_pair(2020, 2021, earlier, later, coverage_from, coverage_to)
    assert classes(changes) == [("gone", "none", ("1",), ()), ("new", "none", (), ("1",)),
                                ("unobserved", "none", (), ("2",)), ("unobserved", "none", ("2",), ())]
    # without coverage every place counts as observed
    assert sorted(c.change for c in compare_pair(2020, 2021, earlier, later)) == ["gone", "gone", "new", "new"]


def test_half_observed_counts_at_the_share():
    later = slumps((0, 0, 10, 10))
    coverage = box(0, 0, 6, 10)  # 60 % of the slump
    assert compare_pair(2020, 2021, [], later, coverage)[0].change == "new"
    assert compare_pair(2020, 2021, [], later, coverage, observed_share=0.7)[0].change == "unobserved"


def test_consecutive_pairs_and_summary():
    years = {2022: slumps((0, 0, 10, 20)), 2020: slumps((0, 0, 10, 10)), 2021: slumps((0, 0, 10, 10.5))}
    changes = compare_years(years)
    assert [(c.year_from, c.year_to, c.change) for c in changes] == [(2020, 2021, "stable"), (2021, 2022, "grown")]
    assert summary(changes) == [
        {"year_from": 2020, "year_to": 2021, "change": "stable", "count": 1, "area_from": 100.0, "area_to": 105.0},
        {"year_from": 2021, "year_to": 2022, "change": "grown", "count": 1, "area_from": 105.0, "area_to": 200.0}]
    with pytest.raises(ValueError, match="at least two years are needed to compare, got 2020"):
        compare_years({2020: slumps((0, 0, 1, 1))})


def test_from_files_with_coverage_and_written(tmp_path):
    x, y = 600000, 7800000
    path = write_map(tmp_path / "map.gpkg", [(2020, (x, y, x + 100, y + 100)), (2021, (x, y, x + 100, y + 150)),
                                             (2021, (x + 500, y, x + 550, y + 50))],
                     coverage=[(2020, (x - 10, y - 10, x + 200, y + 200)), (2021, (x - 10, y - 10, x + 900, y + 200))])
    years, crs = read_slumps([(path, "slumps", None)])
    coverage = read_coverage([(path, "slumps_coverage", None)], crs)
    changes = compare_years(years, coverage)
    assert classes(changes) == [("grown", "one", ("1",), ("2",)), ("unobserved", "none", (), ("3",))]
    written = tmp_path / "changes.gpkg"
    write_changes(str(written), "changes", changes, crs)
    with open_read_only(written, "vector") as dataset:
        rows = sorted((f.GetField("change"), f.GetField("area_from_m2"), f.GetField("area_to_m2"), f.GetField("ids_to"))
                      for f in dataset.GetLayer(0))
    assert rows == [("grown", 10000.0, 15000.0, "2"), ("unobserved", 0.0, 2500.0, "3")]


def test_file_errors(tmp_path):
    x, y = 600000, 7800000
    geographic = write_map(tmp_path / "geo.gpkg", [(2020, (10, 60, 10.1, 60.1))], epsg=4326)
    with pytest.raises(ValueError, match="is not projected"):
        read_slumps([(geographic, None, None)])
    no_year = write_map(tmp_path / "no_year.gpkg", [(2020, (x, y, x + 1, y + 1))], year_field="jahr")
    with pytest.raises(ValueError, match="no field 'year' for the year \\(has: jahr\\)"):
        read_slumps([(no_year, None, None)])
    no_crs = write_map(tmp_path / "no_crs.gpkg", [(2020, (x, y, x + 1, y + 1))], epsg=None)
    with pytest.raises(ValueError, match="the layer has no CRS"):
        read_slumps([(no_crs, None, None)])


def test_the_run_on_files_takes_the_coverage_beside_and_writes_all_or_nothing(tmp_path):
    """compare_years_files (the algorithm's and the command line's run): the coverage beside
    the map, the changes' layer with the run's tags, the report, notes and warnings; a map of one
    year, a cancel: nothing written."""
    from darts_postprocessing.core.regions.compare_years_files import CompareYearsSettings, compare_years_files
    from reading import tags

    x, y = 600000, 7800000
    path = write_map(tmp_path / "map.gpkg", [(2020, (x, y, x + 100, y + 100)), (2021, (x, y, x + 100, y + 150)),
                                             (2021, (x + 500, y, x + 550, y + 50))],
                     coverage=[(2021, (x - 10, y - 10, x + 900, y + 200))])
    out, logged = tmp_path / "out", []
    summary = compare_years_files([(path, None, None)], str(out / "changes.gpkg"),
                                  settings=CompareYearsSettings(year_field=" year "), report=str(out / "changes.html"),
                                  log=lambda sentence, warning: logged.append((sentence, warning)))
    assert (summary.layer, summary.features, summary.years) == ("changes", 2, {2020: 1, 2021: 2})
    assert summary.coverage == [(path, "slumps_coverage", None)]
    assert logged[:2] == [("Years: 2020: 1, 2021: 2 (3 slumps)", False), (f"Coverage from {path} (layer slumps_coverage)",
                                                                          False)]
    assert summary.warnings == ["No coverage for 2020: every place counts as observed in that year, so slumps there "
                                "are never 'unobserved'"]
    assert "2020 → 2021: 1 grown (10000.0 m² before, 15000.0 m² after)" in summary.notes
    assert sorted(os.listdir(out)) == ["changes.gpkg", "changes.html"]
    assert tags(str(out / "changes.gpkg"))["DARTS_compareyears_input"] == "map.gpkg"
    assert '<td id="count-2020-2021-new">1</td>' in (out / "changes.html").read_text(encoding="utf-8")
    one = write_map(tmp_path / "one.gpkg", [(2020, (x, y, x + 1, y + 1))])
    with pytest.raises(ValueError, match="^INPUT: the maps hold only the year 2020; at least two years are needed"):
        compare_years_files([(one, None, None)], str(tmp_path / "none" / "c.gpkg"), report=str(tmp_path / "none" / "c.html"))

    def cancel(fraction, message):
        if message == "Writing the outputs":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compare_years_files([(path, None, None)], str(tmp_path / "none" / "c.gpkg"), progress=cancel)
    with pytest.raises(ValueError, match="^INPUT: no map given"):
        compare_years_files([], str(tmp_path / "none" / "c.gpkg"))
    assert not (tmp_path / "none").exists() or not os.listdir(tmp_path / "none")
