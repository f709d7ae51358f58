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


def summary(tr, counts: dict, areas_m2: np.ndarray, area_note: str | None = None) -> str:
    """The run in one paragraph a scientist reads at the end of the log: objects kept and
    removed (and why), and the kept area in km² (or in the unit the note names)."""
    text = tr("Result: {} objects kept; removed: {} touching invalid data or the tile edge, {} smaller than the "
              "minimum size (of {} objects above the threshold).").format(
        len(areas_m2), counts["removed_at_boundary"], counts["removed_too_small"], counts["objects"])
    if area_note:
        return text + " " + tr("Kept area: {:.6g} ({}).").format(float(np.sum(areas_m2)), area_note)
    return text + " " + tr("Kept area: {:.4f} km².").format(float(np.sum(areas_m2)) / 1e6)


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
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{border:1px solid #ccc;padding:.3em .7em;text-align:left}} td{{text-align:right}}</style></head>
<body><h1>{html.escape(title)}</h1>
<h2>Objects</h2><table id="counts">
{rows}
</table>{note}
<h2>Object areas</h2>{figure}
<h2>Parameters</h2><table id="parameters">
{settings}
</table></body></html>
"""
