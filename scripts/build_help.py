#!/usr/bin/env python3
"""Write the help pages shipped in the plugin (help/<algorithm>.html, opened by the dialogs'
help button) from the one source the README shares: each algorithm's own help (shortHelpString
and its parameters' descriptions, tooltips and choices) and its README section.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/build_help.py PLUGIN_FOLDER
"""

import html
import os
import re
import sys

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.45}}
table{{border-collapse:collapse}} th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}}
code,pre{{background:#f4f4f4}} pre{{padding:.6em;overflow-x:auto}}</style></head>
<body><h1>{title} <small><code>{id}</code></small></h1>
{summary}
<h2>Parameters</h2>
<table id="parameters"><tr><th>Name</th><th>Label</th><th>Meaning</th><th>Default</th></tr>
{rows}
</table>
<h2>More from the README</h2>
<div id="readme">{readme}</div>
</body></html>
"""


def readme_section(readme: str, algorithm_id: str) -> str:
    """The markdown of the README section whose heading names `algorithm_id`."""
    match = re.search(rf"^(#+) [^\n]*`{re.escape(algorithm_id)}`[^\n]*\n", readme, re.M)
    if not match:
        return ""
    level = len(match.group(1))
    rest = readme[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def markdown_html(text: str) -> str:
    """Markdown (tables included) as HTML, with Qt's own converter."""
    from qgis.PyQt.QtGui import QTextDocument

    document = QTextDocument()
    document.setMarkdown(text)
    body = document.toHtml()
    return body[body.find("<body"):].split(">", 1)[1].rsplit("</body>", 1)[0]


def parameter_row(algorithm, parameter) -> str:
    choices = parameter.metadata().get("widget_wrapper", {}).get("labels") if parameter.type() == "enum" else None
    meaning = html.escape(parameter.help())
    if choices:
        meaning += "<br>" + "<br>".join(f"<code>{html.escape(value)}</code>: {html.escape(choices[value])}"
                                        for value in parameter.options())
    default = parameter.defaultValue()
    flags = []
    if parameter.flags() & parameter.Flag.FlagOptional:
        flags.append("optional")
    if parameter.flags() & parameter.Flag.FlagAdvanced:
        flags.append("advanced")
    label = html.escape(parameter.description()) + (f" <i>({', '.join(flags)})</i>" if flags else "")
    return (f'<tr id="{parameter.name()}"><td><code>{parameter.name()}</code></td><td>{label}</td><td>{meaning}</td>'
            f'<td>{"" if default in (None, "") else html.escape(str(default))}</td></tr>')


def write_help(folder: str, target: str) -> list:
    """Write target/<name>.html for every algorithm of the plugin in `folder`; the paths."""
    from qgis.core import QgsApplication

    app = QgsApplication.instance() or QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, os.path.dirname(os.path.abspath(folder)))
    package = os.path.basename(os.path.abspath(folder))
    algorithms = __import__(f"{package}.algorithms", fromlist=["ALGORITHMS"]).ALGORITHMS
    with open(os.path.join(folder, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    os.makedirs(target, exist_ok=True)
    written = []
    for kind in algorithms:
        algorithm = kind()
        algorithm.initAlgorithm()
        algorithm_id = f"darts:{algorithm.name()}"
        rows = "\n".join(parameter_row(algorithm, parameter) for parameter in algorithm.parameterDefinitions())
        page = PAGE.format(title=html.escape(algorithm.displayName()), id=algorithm_id,
                           summary=algorithm.shortHelpString(), rows=rows,
                           readme=markdown_html(readme_section(readme, algorithm_id)))
        path = os.path.join(target, f"{algorithm.name()}.html")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(page)
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for page in write_help(sys.argv[1], os.path.join(sys.argv[1], "help")):
        print(page)
