"""The HTML summary of a prepareexport run: what was kept and removed, and why."""

from __future__ import annotations

import base64
import html
import io

import numpy as np


def histogram_png(areas_m2: np.ndarray) -> bytes | None:
    """A PNG histogram of object areas (log-spaced bins), or None without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(figure)  # attaches an off-screen canvas: no GUI backend, no global state
    axes = figure.add_subplot()
    if areas_m2.size:
        low, high = float(areas_m2.min()), float(areas_m2.max())
        bins = np.geomspace(low, high * 1.0001, 25) if high > low else 10
        axes.hist(areas_m2, bins=bins, color="#d7301f", edgecolor="white")
        if high > low:
            axes.set_xscale("log")
    else:
        axes.text(0.5, 0.5, "no objects kept", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("object area (m²)")
    axes.set_ylabel("objects")
    axes.set_title("Areas of the kept objects")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def render_report(title: str, parameters: list[tuple[str, object]], counts: dict, kept_objects: int,
                  kept_pixels: int, kept_area_m2: float, extent_pixels: int, object_areas_m2: np.ndarray,
                  area_note: str | None = None) -> str:
    """The report page; every number sits in an element with a stable id (for scripts and tests).
    `area_note` says what the areas are in when they cannot be m² (no CRS or geotransform)."""
    png = histogram_png(object_areas_m2)
    figure = (f'<img id="area-histogram" alt="Histogram of object areas" '
              f'src="data:image/png;base64,{base64.b64encode(png).decode()}">' if png else
              "<p>(matplotlib is not installed: no histogram.)</p>")
    numbers = [
        ("objects", "Objects above the threshold (8-connected)", counts["objects"]),
        ("removed_at_boundary", "Removed: touching invalid data or the tile edge", counts["removed_at_boundary"]),
        ("removed_too_small", "Removed: smaller than the minimum object size", counts["removed_too_small"]),
        ("kept_objects", "Objects kept", kept_objects),
        ("kept_pixels", "Kept object pixels", kept_pixels),
        ("kept_area_m2", "Kept object area (m²)", f"{kept_area_m2:.1f}"),
        ("extent_pixels", "Extent (valid) pixels", extent_pixels),
    ]
    note = f'\n<p id="area-note"><strong>Note: {html.escape(area_note)}.</strong></p>' if area_note else ""
    rows = "\n".join(f'<tr><th>{html.escape(label)}</th><td id="{key}">{value}</td></tr>' for key, label, value in numbers)
    settings = "\n".join(f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td></tr>"
                         for name, value in parameters)
    return _page(title, f"""<h2>Objects</h2><table id="counts">
{rows}
</table>{note}
<h2>Object areas</h2>{figure}
<h2>Parameters</h2><table id="parameters">
{settings}
</table>""")


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
    tiles = "\n".join(
        f'<tr><th>{html.escape(tile.tile_id)}</th><td>{html.escape(tile.crs_name)}</td><td>{tile.counts["objects"]}</td>'
        f'<td>{tile.counts["removed_at_boundary"]}</td><td>{tile.counts["removed_too_small"]}</td><td>{tile.count}</td>'
        f'<td>{tile.kept}</td><td>{tile.seconds:.1f}</td></tr>' for tile in region.tiles)
    skipped = "\n".join(f"<tr><th>{html.escape(item.tile_id)}</th><td>{html.escape(item.reason)}</td></tr>"
                        for item in region.skipped) or '<tr><td colspan="2">none</td></tr>'
    settings = "\n".join(f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td></tr>"
                         for name, value in [("input folder", folder), *region.record.items()])
    return _page(title, f"""<h2>Summary</h2><table id="summary">
{summary}
</table>
<h2>Tiles</h2><table id="tiles">
<tr><th>tile</th><th>CRS</th><th>objects</th><th>removed at the boundary</th><th>removed as too small</th>
<th>kept in the tile</th><th>in the merged map</th><th>time (s)</th></tr>
{tiles}
</table>
<h2>Skipped tiles</h2><table id="skipped">
{skipped}
</table>
<h2>Parameters</h2><table id="parameters">
{settings}
</table>""")


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{border:1px solid #ccc;padding:.3em .7em;text-align:left}} td{{text-align:right}}</style></head>
<body><h1>{html.escape(title)}</h1>
{body}
</body></html>
"""
