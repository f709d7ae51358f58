"""The HTML pages of runs over many tiles (no QGIS): processtiles' region (tiles processed and
skipped, the merge), evaluate's scores and compareyears' changes; on the page of
core/products/report.py."""

from __future__ import annotations

import html

import numpy as np

from ..products.report import excluded_cell, html_page


TILES_TITLE = "DARTS tiles to one map"  # processtiles' page (the algorithm translates it)
CHANGES_TITLE = "Slump change between years"  # compareyears' page (the algorithm translates it)


def render_tiles_report(title: str, region, folder: str) -> str:
    """The page of a processtiles run: tiles processed (objects found, removed, kept in the
    merged map), tiles skipped and why, the merge and the run's parameters."""
    numbers = [("tiles_processed", "Tiles processed", len(region.tiles)),
               ("tiles_skipped", "Tiles skipped", len(region.skipped)),
               ("features", "Slump polygons in the merged map", region.features),
               ("duplicates", "Objects seen by more than one tile, merged", region.duplicates),
               ("clipped", "Objects cut where they met a neighbouring tile's object", region.clipped),
               ("seconds", "Time (s)", f"{region.seconds:.1f}")]
    summary = "\n".join(f'<tr><th>{html.escape(label)}</th><td id="{key}">{value}</td></tr>'
                        for key, label, value in numbers)
    groups = "\n".join(
        f'<tr><th>{html.escape("no date" if key is None else str(key))}</th><td>{group["tiles"]}</td>'
        f'<td>{group["objects"]}</td>'
        f'<td>{group["duplicates"]}</td><td>{group["clipped"]}</td><td>{group["features"]}</td></tr>'
        for key, group in region.groups.items())
    tiles = "\n".join(
        f'<tr><th>{html.escape(tile.tile_id)}</th><td>{html.escape(tile.date.label)}</td>'
        f'<td>{html.escape(tile.extent_as_given or "quality mask")}</td>'
        f'<td>{html.escape(tile.crs_name)}</td><td>{tile.counts["objects"]}</td>'
        f'<td>{tile.counts["removed_at_boundary"]}</td><td>{excluded_cell(tile.counts)}</td>'
        f'<td>{tile.counts["removed_too_small"]}</td><td>{tile.count}</td><td>{tile.kept}</td>'
        f'<td>{tile.seconds:.1f}</td></tr>' for tile in region.tiles)
    skipped = "\n".join(f"<tr><th>{html.escape(item.tile_id)}</th><td>{html.escape(item.reason)}</td></tr>"
                        for item in region.skipped) or '<tr><td colspan="2">none</td></tr>'
    return html_page(title, f"""<h2>Summary</h2><table id="summary">
{summary}
</table>
<h2>Per {html.escape(region.record.get("group_by", "year"))}</h2><table id="groups">
<tr><th>{html.escape(region.record.get("group_by", "year"))}</th><th>tiles</th><th>objects in the tiles</th>
<th>seen by more than one tile, merged</th><th>cut where they met a neighbour</th><th>slump polygons</th></tr>
{groups}
</table>
<p>Groups are merged on their own: objects of different groups are never merged nor cut against each other.
The map's layer <i>{html.escape(region.record.get("coverage_layer", ""))}</i> holds each tile's valid extent
(where a slump could have been seen).</p>
<h2>Tiles</h2><table id="tiles">
<tr><th>tile</th><th>date</th><th>extent</th><th>CRS</th><th>objects</th>
<th>removed at the boundary</th><th>removed in the exclusion mask</th>
<th>removed as too small</th><th>kept in the tile</th><th>in the merged map</th><th>time (s)</th></tr>
{tiles}
</table>
<h2>Skipped tiles</h2><table id="skipped">
{skipped}
</table>""", [("input folder", folder), *region.record.items()])


SCORE_LABELS = {"object_f1": "Object F1", "object_precision": "Object precision", "object_recall": "Object recall",
                "found_share": "Share of reference slumps found at all", "pixel_iou": "Pixel IoU", "pixel_f1": "Pixel F1",
                "pixel_precision": "Pixel precision", "pixel_recall": "Pixel recall"}
SERIES_COLOURS = ("#d7301f", "#2171b5", "#238b45", "#6a51a3", "#ff7f00", "#666666")


def line_chart_svg(element_id: str, title: str, x_label: str, y_label: str, series: list[tuple[str, list, list]],
                   x_range=None) -> str:
    """An inline SVG line chart, 0..1 on the y axis: `series` holds (name, xs, ys); each point
    has a tooltip. x runs over `x_range` (default: the data's)."""
    width, height, left, right, top, bottom = 430, 300, 45, 130, 30, 40
    xs = [x for _, values, _ in series for x in values]
    low, high = x_range or (min(xs), max(xs))
    if high <= low:
        low, high = low - 0.05, high + 0.05
    plot_w, plot_h = width - left - right, height - top - bottom

    def at(x, y):
        return left + (x - low) / (high - low) * plot_w, top + (1 - y) * plot_h

    parts = [f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1):
        _, y = at(low, tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{tick:g}</text>')
    for tick in np.linspace(low, high, 5):
        x, _ = at(tick, 0)
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" font-size="10">{tick:.3g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" font-size="11">'
                 f'{html.escape(x_label)}</text><text x="12" y="{top + plot_h / 2}" text-anchor="middle" font-size="11" '
                 f'transform="rotate(-90 12 {top + plot_h / 2})">{html.escape(y_label)}</text>')
    for index, (name, values_x, values_y) in enumerate(series):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        points = [at(x, y) for x, y in zip(values_x, values_y)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{html.escape(name)}: '
                  f'{vx:.3g}, {vy:.3f}</title></circle>' for (x, y), vx, vy in zip(points, values_x, values_y)]
        legend_y = top + 14 * index + 8
        parts.append(f'<line x1="{width - right + 8}" y1="{legend_y}" x2="{width - right + 24}" y2="{legend_y}" '
                     f'stroke="{colour}" stroke-width="2"/><text x="{width - right + 28}" y="{legend_y + 4}" '
                     f'font-size="10">{html.escape(name)}</text>')
    return (f'<svg id="{element_id}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{html.escape(title)}">{"".join(parts)}</svg>')


def render_evaluation_report(title: str, parameters: list[tuple[str, object]], rows: list[dict], best: dict, by: str,
                             reference: dict) -> str:
    """The page of an evaluate run: the best setting and its numbers, scores against the
    threshold and a precision-recall curve (per minimum size), and every setting's row
    (table id="settings"; the best row has class "best"). `rows` are core.regions.evaluate's table rows;
    `reference` counts the reference slumps given, scored and left out."""
    from .evaluate import CSV_COLUMNS

    numbers = [("best_threshold", "Threshold", f"{best['threshold']:g}"),
               ("best_min_object_size", "Minimum object size (pixels)", best["min_object_size"]),
               *((f"best_{name}", SCORE_LABELS[name], f"{best[name]:.3f}") for name in SCORE_LABELS),
               ("best_object_tp", "Matched (true positive objects)", best["object_tp"]),
               ("best_object_fp", "False positive objects", best["object_fp"]),
               ("best_object_fn", "Missed reference slumps", best["object_fn"])]
    summary = "\n".join(f'<tr><th>{html.escape(label)}</th><td id="{key}">{value}</td></tr>'
                        for key, label, value in numbers)
    counts = "\n".join(f'<tr><th>{html.escape(label)}</th><td id="{key}">{value}</td></tr>' for key, label, value in (
        ("reference_given", "Reference slumps given", reference["given"]),
        ("reference_scored", "Scored (a pixel centre inside the valid extent)", reference["scored"]),
        ("reference_left_out", "Left out (no pixel centre inside the valid extent)", reference["left_out"]),
        ("extent_pixels", "Valid extent (pixels)", reference["extent_pixels"])))
    sizes = sorted({row["min_object_size"] for row in rows})
    thresholds = sorted({row["threshold"] for row in rows})
    x_range = (min(thresholds), max(thresholds))
    best_size = [row for row in rows if row["min_object_size"] == best["min_object_size"]]
    best_size.sort(key=lambda row: row["threshold"])
    against_threshold = line_chart_svg(
        "scores-plot", f"Scores against the threshold (minimum size {best['min_object_size']})", "threshold", "score",
        [(label, [row["threshold"] for row in best_size], [row[name] for row in best_size])
         for name, label in (("object_f1", "object F1"), ("object_precision", "object precision"),
                             ("object_recall", "object recall"), ("pixel_f1", "pixel F1"))], x_range)
    curves = []
    for size in sizes:
        points = sorted((row for row in rows if row["min_object_size"] == size), key=lambda row: row["threshold"])
        curves.append((f"min size {size}", [row["object_recall"] for row in points],
                       [row["object_precision"] for row in points]))
    pr_curve = line_chart_svg("pr-curve", "Object precision-recall (a point per threshold)", "object recall",
                              "object precision", curves, (0.0, 1.0))
    header = "".join(f"<th>{html.escape(column)}</th>" for column in CSV_COLUMNS if column != "best")
    chosen = (best["threshold"], best["min_object_size"])
    body = "\n".join(
        f'<tr{" class=best" if (row["threshold"], row["min_object_size"]) == chosen else ""}>'
        + "".join(f"<td>{_number(row[column])}</td>" for column in CSV_COLUMNS if column != "best") + "</tr>"
        for row in rows)
    return html_page(title, f"""<h2>Best setting by {html.escape(SCORE_LABELS[by].lower())}</h2><table id="best">
{summary}
</table>
<h2>Reference</h2><table id="reference">
{counts}
</table>
<h2>Plots</h2>{against_threshold} {pr_curve}
<h2>Every setting</h2><style>tr.best td{{background:#fee8c8;font-weight:bold}}</style><table id="settings">
<tr>{header}</tr>
{body}
</table>""", parameters)


def _number(value):
    return f"{value:.4g}" if isinstance(value, float) else value


def render_changes_report(title: str, parameters: list[tuple[str, object]], rows: list[dict]) -> str:
    """The page of a compareyears run: per pair of years and class the number of slumps and their
    area in each year (table id="changes"; each count in a cell with id count-<from>-<to>-<class>)."""
    body = "\n".join(
        f'<tr><th>{row["year_from"]} → {row["year_to"]}</th><th>{html.escape(row["change"])}</th>'
        f'<td id="count-{row["year_from"]}-{row["year_to"]}-{row["change"]}">{row["count"]}</td>'
        f'<td>{row["area_from"]:.1f}</td><td>{row["area_to"]:.1f}</td><td>{row["area_to"] - row["area_from"]:.1f}</td></tr>'
        for row in rows) or '<tr><td colspan="6">no slumps in either year</td></tr>'
    return html_page(title, f"""<h2>Change per pair of years</h2><table id="changes">
<tr><th>years</th><th>class</th><th>slumps</th><th>area before (m²)</th><th>area after (m²)</th><th>change (m²)</th></tr>
{body}
</table>""", parameters)
