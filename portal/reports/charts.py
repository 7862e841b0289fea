"""Charts drawn on the server with ReportLab's graphics. `chart_of` gives a `Drawing`,
which a PDF can place as vector graphics as it is; `inline_svg` turns the same drawing
into markup for a page.

The portal's Content-Security-Policy has `style-src 'self'`, which also forbids `style`
attributes, and ReportLab writes every colour and font as one. `inline_svg` moves them
into SVG presentation attributes (`fill`, `stroke`, `font-size`…), which the policy
does not govern, so the chart looks the same without weakening the policy.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: N817
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup
from reportlab.graphics import renderSVG
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors

from .. import cache
from .figures import Figure

SVG_NS = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
PALETTE = [colors.HexColor(c) for c in ("#0d6efd", "#fd7e14", "#198754", "#dc3545", "#6f42c1")]
WIDTH, HEIGHT = 640, 240
# Past this many categories a bar per category is unreadable: a line instead.
MAX_BAR_CATEGORIES = 16
# At most this many category labels under the axis; the table has them all.
MAX_LABELS = 12


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _series(figure: Figure) -> tuple[list[str], list[str], list[list[float]]]:
    assert figure.chart is not None
    category, columns, _ = figure.chart
    rows = figure.rows[:-1] if figure.total_row else figure.rows
    names = [str(row[category]) for row in rows]
    labels = [figure.header[i] for i in columns]
    data = [[_number(row[i]) for row in rows] for i in columns]
    return names, labels, data


def _thinned(names: list[str]) -> list[str]:
    step = max(1, -(-len(names) // MAX_LABELS))
    return [name if i % step == 0 else "" for i, name in enumerate(names)]


def _plot(names: list[str], data: list[list[float]], stacked: bool) -> Any:
    if len(names) > MAX_BAR_CATEGORIES:
        plot: Any = HorizontalLineChart()
        for i in range(len(data)):
            plot.lines[i].strokeColor = PALETTE[i % len(PALETTE)]
            plot.lines[i].strokeWidth = 2
    else:
        plot = VerticalBarChart()
        plot.groupSpacing = 6
        for i in range(len(data)):
            plot.bars[i].fillColor = PALETTE[i % len(PALETTE)]
            plot.bars[i].strokeColor = None
        if stacked:
            plot.categoryAxis.style = "stacked"
    plot.data = [tuple(values) for values in data]
    plot.categoryAxis.categoryNames = _thinned(names)
    plot.categoryAxis.labels.fontSize = 8
    plot.valueAxis.labels.fontSize = 8
    plot.valueAxis.valueMin = 0
    peak = max((sum(col) if stacked else max(col) for col in zip(*data, strict=True)), default=0)
    plot.valueAxis.valueMax = max(1.0, peak * 1.1)
    return plot


def chart_of(figure: Figure) -> Drawing | None:
    """The figure's chart as a ReportLab drawing, or None for a figure without one."""
    if figure.chart is None or not figure.rows:
        return None
    names, labels, data = _series(figure)
    drawing = Drawing(WIDTH, HEIGHT)
    plot = _plot(names, data, stacked=figure.chart[2])
    plot.x, plot.y, plot.width, plot.height = 45, 40, WIDTH - 60, HEIGHT - 75
    drawing.add(plot)
    legend = Legend()
    legend.x, legend.y = 45, HEIGHT - 8
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.fontSize = 8
    legend.colorNamePairs = [(PALETTE[i % len(PALETTE)], label) for i, label in enumerate(labels)]
    drawing.add(legend)
    return drawing


def _attributes_from_style(element: ET.Element) -> None:
    style = element.attrib.pop("style", "")
    for declaration in style.split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if name and value and name not in element.attrib:
            element.set(name, value)


def _prefixed_ids(element: ET.Element, prefix: str) -> None:
    """ReportLab names every drawing's clip path `clip`: unique per chart on one page."""
    if "id" in element.attrib:
        element.set("id", f"{prefix}-{element.attrib['id']}")
    for name, value in element.attrib.items():
        if "url(#" in value:
            element.set(name, value.replace("url(#", f"url(#{prefix}-"))


def inline_svg(drawing: Drawing, title: str, key: str) -> Markup:
    """The drawing as an `<svg>` element for a page: no style attributes, ids unique to
    `key`, as wide as its container, titled for screen readers."""
    text = renderSVG.drawToString(drawing)
    text = re.sub(r"^.*?(?=<svg)", "", text, count=1, flags=re.S)
    # Our own output, never a visitor's file: nothing to defend against in parsing it.
    root = ET.fromstring(text)  # noqa: S314
    for element in root.iter():
        _attributes_from_style(element)
        _prefixed_ids(element, f"chart-{key}")
    for name in ("width", "height"):
        root.attrib.pop(name, None)
    root.set("role", "img")
    root.set("aria-label", title)
    for child in list(root):
        if child.tag in (f"{{{SVG_NS}}}title", f"{{{SVG_NS}}}desc"):
            root.remove(child)
    title_element = ET.Element(f"{{{SVG_NS}}}title")
    title_element.text = title
    root.insert(0, title_element)
    return Markup(ET.tostring(root, encoding="unicode"))  # noqa: S704 (serialised by ElementTree)


def inline_charts(figures: Sequence[Figure]) -> dict[str, Markup]:
    """Each figure's chart as inline SVG, by figure key (figures without one left out).

    Drawing a page's charts costs far more than counting its figures, and the same figures
    always make the same SVG: kept in the shared cache under a digest of the figures."""
    from .figure_cache import digest_of

    def draw() -> dict[str, str]:
        out = {}
        for figure in figures:
            drawing = chart_of(figure)
            if drawing is not None:
                out[figure.key] = str(inline_svg(drawing, figure.title, figure.key))
        return out

    drawn = cache.shared("report_charts", digest_of(figures), draw)
    return {key: Markup(svg) for key, svg in drawn.items()}  # noqa: S704 (drawn above)
