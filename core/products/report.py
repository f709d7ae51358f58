"""The HTML pages of the runs (no QGIS): prepareexport's report (what was kept and removed, and
why; one threshold or several compared) and the page every report shares (`page`); the
reports of many tiles (processtiles, evaluate, compareyears) build on it in core/regions/report.py."""

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


def summary_line(tr, counts: dict, areas_m2: np.ndarray, area_note: str | None = None) -> str:
    """The run in one paragraph a scientist reads at the end of the log: objects kept and
    removed (and why), and the kept area in km² (or in the unit the note names)."""
    excluded = tr(", {} in the exclusion mask").format(counts["removed_excluded"]) if "removed_excluded" in counts else ""
    text = tr("Result: {} objects kept; removed: {} touching invalid data or the tile edge{}, {} smaller than the "
              "minimum size (of {} objects above the threshold).").format(
        len(areas_m2), counts["removed_at_boundary"], excluded, counts["removed_too_small"], counts["objects"])
    if area_note:
        return text + " " + tr("Kept area: {:.6g} ({}).").format(float(np.sum(areas_m2)), area_note)
    return text + " " + tr("Kept area: {:.4f} km².").format(float(np.sum(areas_m2)) / 1e6)


TITLE = "DARTS postprocessing report"  # prepareexport's page (the algorithm translates it)


def prepare_export_report(summary, title: str = TITLE) -> str:
    """The page of a prepare_export_files run (its PrepareExportSummary): one threshold's counts
    and area histogram, or the thresholds compared side by side."""
    from .prepare_export_files import threshold_label

    settings = dict(summary.report_parameters)
    if settings.get("edge_erosion_size") is None:
        settings["edge_erosion_size"] = f"{settings['mask_erosion_size']} (the mask erosion size)"
    parameters = [*settings.items(), ("grid", summary.grid.describe())]
    runs = summary.runs
    if summary.several:
        return render_threshold_report(title, parameters, [
            dict(threshold=threshold_label(run.threshold), counts=run.counts, kept_objects=len(run.areas),
                 kept_pixels=run.kept_pixels, kept_area_m2=float(run.areas.sum())) for run in runs],
            extent_pixels=summary.extent_pixels, area_note=summary.area_note)
    run = runs[0]
    return render_report(title, parameters, run.counts, kept_objects=len(run.areas), kept_pixels=run.kept_pixels,
                         kept_area_m2=float(run.areas.sum()), extent_pixels=summary.extent_pixels,
                         object_areas_m2=run.areas, area_note=summary.area_note)


def render_report(title: str, parameters: list[tuple[str, object]], counts: dict, kept_objects: int,
                  kept_pixels: int, kept_area_m2: float, extent_pixels: int, object_areas_m2: np.ndarray,
                  area_note: str | None = None) -> str:
    """The report page; every number sits in an element with a stable id (for scripts and tests).
    `area_note` says what the areas are in when they cannot be m² (no CRS or geotransform)."""
    png = histogram_png(object_areas_m2)
    figure = (f'<img id="area-histogram" alt="Histogram of object areas" '
              f'src="data:image/png;base64,{base64.b64encode(png).decode()}">' if png else
              "<p>(matplotlib is not installed: no histogram.)</p>")
    numbers = [(key, label, value) for key, label, value in (
        ("objects", "Objects above the threshold (8-connected)", counts["objects"]),
        ("removed_at_boundary", "Removed: touching invalid data or the tile edge", counts["removed_at_boundary"]),
        ("removed_excluded", EXCLUDED_LABEL, counts.get("removed_excluded")),
        ("removed_too_small", "Removed: smaller than the minimum object size", counts["removed_too_small"]),
        ("kept_objects", "Objects kept", kept_objects),
        ("kept_pixels", "Kept object pixels", kept_pixels),
        ("kept_area_m2", "Kept object area (m²)", f"{kept_area_m2:.1f}"),
        ("extent_pixels", "Extent (valid) pixels", extent_pixels),
    ) if value is not None]
    note = f'\n<p id="area-note"><strong>Note: {html.escape(area_note)}.</strong></p>' if area_note else ""
    rows = "\n".join(f'<tr><th>{html.escape(label)}</th><td id="{key}">{value}</td></tr>' for key, label, value in numbers)
    return html_page(title, f"""<h2>Objects</h2><table id="counts">
{rows}
</table>{note}
<h2>Object areas</h2>{figure}""", parameters)


def excluded_cell(counts: dict) -> str:
    """A tile's objects removed in the exclusion mask, and the share of its pixels in it."""
    if "removed_excluded" not in counts:
        return "–"
    share = counts.get("excluded_share")
    return f"{counts['removed_excluded']}" + (f" ({100 * share:.3g} % of the pixels)" if share is not None else "")


EXCLUDED_LABEL = "Removed: in the exclusion mask (clip: wholly)"


def html_page(title: str, body: str, parameters: list[tuple[str, object]]) -> str:
    settings = "\n".join(f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(str(value))}</td></tr>"
                         for name, value in parameters)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin-bottom:1.5em}}
th,td{{border:1px solid #ccc;padding:.3em .7em;text-align:left}} td{{text-align:right}}</style></head>
<body><h1>{html.escape(title)}</h1>
{body}
<h2>Parameters</h2><table id="parameters">
{settings}
</table></body></html>
"""


def render_threshold_report(title: str, parameters: list[tuple[str, object]], runs: list[dict], extent_pixels: int,
                            area_note: str | None = None) -> str:
    """The report of a run with several thresholds: per threshold (one column each) the object
    counts and the kept area, and one plot of both. `runs` holds per threshold a dict with
    `threshold` (its label), `counts`, `kept_objects`, `kept_pixels` and `kept_area_m2`; each
    number sits in a cell with the id <key>-t<label>."""
    measures = [("objects", "Objects above the threshold (8-connected)", lambda r: r["counts"]["objects"]),
                ("removed_at_boundary", "Removed: touching invalid data or the tile edge",
                 lambda r: r["counts"]["removed_at_boundary"]),
                ("removed_excluded", EXCLUDED_LABEL, lambda r: r["counts"].get("removed_excluded")),
                ("removed_too_small", "Removed: smaller than the minimum object size",
                 lambda r: r["counts"]["removed_too_small"]),
                ("kept_objects", "Objects kept", lambda r: r["kept_objects"]),
                ("kept_pixels", "Kept object pixels", lambda r: r["kept_pixels"]),
                ("kept_area_m2", "Kept object area (m²)", lambda r: f"{r['kept_area_m2']:.1f}")]
    header = "".join(f"<th>t = {html.escape(r['threshold'])}</th>" for r in runs)
    rows = "\n".join(
        f"<tr><th>{html.escape(label)}</th>"
        + "".join(f'<td id="{key}-t{html.escape(r["threshold"])}">{value(r)}</td>' for r in runs) + "</tr>"
        for key, label, value in measures if value(runs[0]) is not None)
    note = f'\n<p id="area-note"><strong>Note: {html.escape(area_note)}.</strong></p>' if area_note else ""
    return html_page(title, f"""<h2>Thresholds compared</h2><table id="thresholds">
<tr><th></th>{header}</tr>
{rows}
</table>
<p>Extent (valid) pixels, the same for every threshold: <span id="extent_pixels">{extent_pixels}</span></p>{note}
{threshold_plot_svg(runs)}""", parameters)


def threshold_plot_svg(runs: list[dict]) -> str:
    """One inline SVG figure, two bar panels: objects kept and kept area per threshold."""
    width, height, top, bottom = 300, 230, 40, 40
    panels = []
    for index, (key, label) in enumerate((("kept_objects", "Objects kept"), ("kept_area_m2", "Kept area (m²)"))):
        values = [float(run[key]) for run in runs]
        scale = (height - top - bottom) / (max(values) or 1)
        step = (width - 40) / len(runs)
        bars = []
        for position, (run, value) in enumerate(zip(runs, values)):
            x, bar = 30 + position * step + step * 0.15, value * scale
            text = f"{value:.0f}" if key == "kept_objects" else f"{value:.3g}"
            bars.append(f'<rect x="{x:.1f}" y="{height - bottom - bar:.1f}" width="{step * 0.7:.1f}" height="{bar:.1f}" '
                        f'fill="#d7301f"><title>t = {html.escape(run["threshold"])}: {text}</title></rect>'
                        f'<text x="{x + step * 0.35:.1f}" y="{height - bottom - bar - 4:.1f}" text-anchor="middle" '
                        f'font-size="11">{text}</text>'
                        f'<text x="{x + step * 0.35:.1f}" y="{height - bottom + 16:.1f}" text-anchor="middle" '
                        f'font-size="11">{html.escape(run["threshold"])}</text>')
        panels.append(f'<g transform="translate({index * width},0)"><text x="{width / 2}" y="20" text-anchor="middle" '
                      f'font-size="13">{label}</text><line x1="25" y1="{height - bottom}" x2="{width - 5}" '
                      f'y2="{height - bottom}" stroke="#333"/>{"".join(bars)}<text x="{width / 2}" y="{height - 6}" '
                      f'text-anchor="middle" font-size="11">threshold</text></g>')
    return (f'<svg id="threshold-plot" xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{height}" '
            f'role="img" aria-label="Objects kept and kept area per threshold">{"".join(panels)}</svg>')
