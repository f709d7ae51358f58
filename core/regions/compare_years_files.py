"""darts:compareyears from files to files (`compare_years_files`): which slumps are new, grew,
shrank or are gone between the years of polygon maps, without QGIS.

Reads the maps (any projected CRS, all compared in the first one's), refuses fewer than two
years, takes the coverage given or else processtiles' `<layer>_coverage` beside each map, warns
of years without coverage, compares (the rules: compare_years.py) and writes the changes'
GeoPackage layer and optionally the HTML report, all together or none (AtomicFiles). The
algorithm and the command line both run this; what a caller shows (a log, a layer to load)
comes back in the summary.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...definitions import Progress
from ..files.atomic import AtomicFiles, into_geopackage
from ..files.layers import layer_name
from ..products.prepare_export_files import run_on_files, step_tags
from .compare_years import (
    DEFAULT_OBSERVED_SHARE,
    DEFAULT_TOLERANCE,
    compare_years,
    coverage_beside,
    read_coverage,
    read_slumps,
    summary,
    write_changes,
)
from .report import CHANGES_TITLE


@dataclass(frozen=True)
class CompareYearsSettings:
    """The field that holds each feature's year (empty: "year"), the share of the earlier area
    within which a change is stable, and the share of a slump that must lie in a year's
    coverage for its place to count as observed; named and defaulted as darts:compareyears'
    parameters (checked by compare_years)."""

    year_field: str = "year"
    tolerance: float = DEFAULT_TOLERANCE
    observed_share: float = DEFAULT_OBSERVED_SHARE


@dataclass
class CompareYearsSummary:
    """What compare_years_files did: the changes' file (final path) and layer, the report (None:
    none), the number of change features, {year: number of slumps}, the summary rows (per pair
    of years and class), the common CRS, the coverage read ((file, layer, filter), ...) and
    sentences for the log."""

    output: str
    layer: str
    report: str | None
    features: int
    years: dict
    rows: list
    crs: object
    coverage: list
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def run_tags(inputs: Sequence[tuple], coverage: Sequence[tuple], settings: CompareYearsSettings) -> dict:
    """The tags of the GeoPackage, as darts:compareyears writes them: its settings under its
    parameters' names (inputs by file name), the DARTS_* tags of the maps and coverage (the most
    recently exported wins) and who wrote it (step_tags)."""
    record = {
        "INPUT": ", ".join(os.path.basename(path) for path, _, _ in inputs) or None,
        "YEAR_FIELD": settings.year_field,
        "COVERAGE": ", ".join(os.path.basename(path) for path, _, _ in coverage) or None,
        "TOLERANCE": float(settings.tolerance),
        "OBSERVED_SHARE": float(settings.observed_share),
    }
    return step_tags("compareyears", record, [path for path, _, _ in [*inputs, *coverage]])


def compare_years_files(inputs: Sequence[tuple], output: str, coverage: Sequence[tuple] = (),
                        settings: CompareYearsSettings | None = None, progress: Progress | None = None, *,
                        layer: str | None = None, report: str | None = None, files: AtomicFiles | None = None,
                        tags: dict | None = None, log=None, names: dict | None = None,
                        title: str = CHANGES_TITLE) -> CompareYearsSummary:
    """The changes between the years of the polygon maps `inputs` ((file, layer or None, OGR
    filter or None), ...) into the GeoPackage `output` (a layer of the file's name, or `layer`
    of that file, its other layers kept), with what each year observed from `coverage` (same
    form; none: the `<layer>_coverage` beside each map, where there is one).

    `progress(fraction, message)` is called along the way and may raise to cancel (nothing is
    written then). `report`: the HTML page (with `title`). `files`: an AtomicFiles the caller
    commits; without it the outputs are committed here when all are written. `tags`: the
    file's metadata (default: run_tags). `log(sentence, warning)` receives the notes and
    warnings as they come (they are in the summary too). `names` ({"input": ..., "coverage":
    ...}) names the inputs in messages (default: INPUT, COVERAGE, as the algorithm's parameters).
    """
    settings = settings or CompareYearsSettings()
    names = {"input": "INPUT", "coverage": "COVERAGE", **(names or {})}
    inputs, coverage = list(inputs), list(coverage or ())
    report_progress = progress or (lambda fraction, message: None)
    return run_on_files(lambda files, say: _run(inputs, output, coverage, settings, report_progress, layer, report,
                                                files, tags, say, names, title),
                        [path for path, _, _ in inputs + coverage], files, log)


def _run(inputs, output, coverage, settings, progress, layer, report, files, tags, say, names, title):
    year_field = settings.year_field.strip() or "year"
    progress(0.0, "Reading the maps")
    if not inputs:
        raise ValueError(f"{names['input']}: no map given")
    slumps, crs = read_slumps(inputs, year_field, what=names["input"])
    years = sorted(slumps)
    if len(years) < 2:
        raise ValueError(f"{names['input']}: the maps hold "
                         f"{'only the year ' + str(years[0]) if years else 'no slump'}; "
                         f"at least two years are needed to compare")
    say("Years: {} ({} slumps)".format(", ".join(f"{year}: {len(slumps[year])}" for year in years),
                                      sum(map(len, slumps.values()))))
    if not coverage:
        coverage = [found for found in (coverage_beside(path, name) for path, name, _ in inputs) if found]
        for path, name, _ in coverage:
            say(f"Coverage from {path} (layer {name})")
    observed = read_coverage(coverage, crs, year_field, what=names["coverage"]) if coverage else {}
    unseen = [year for year in years if year not in observed]
    if unseen:
        say(f"No coverage for {', '.join(map(str, unseen))}: every place counts as observed in that year, so slumps "
            f"there are never 'unobserved'", True)
    changes = compare_years(slumps, observed, settings.tolerance, settings.observed_share,
                            progress=lambda fraction, message: progress(0.1 + 0.8 * fraction, message))
    progress(0.9, "Writing the outputs")
    tags = run_tags(inputs, coverage, settings) if tags is None else tags
    count = into_geopackage(files, output, layer, lambda file, name: write_changes(file, name, changes, crs, tags))
    rows = summary(changes)
    for row in rows:
        say("{} → {}: {} {} ({:.1f} m² before, {:.1f} m² after)".format(
            row["year_from"], row["year_to"], row["count"], row["change"], row["area_from"], row["area_to"]))
    if report:
        from .report import render_changes_report

        described = [("maps", "; ".join(f"{path}" + (f", layer {name}" if name else "") for path, name, _ in inputs)),
                     ("coverage", "; ".join(f"{path}, layer {name}" for path, name, _ in coverage) or "(none)"),
                     ("year field", year_field), ("stable within", settings.tolerance),
                     ("observed share", settings.observed_share), ("CRS", crs.GetName())]
        with open(files.reserve(report), "w", encoding="utf-8") as handle:
            handle.write(render_changes_report(title, described, rows))
    return CompareYearsSummary(output, layer or layer_name(output), report, count,
                               {year: len(slumps[year]) for year in years}, rows, crs, coverage)
