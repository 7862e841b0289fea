"""The monthly operations report as a PDF (ReportLab platypus): a cover, the month's key
figures against the month before, the service-desk charts as vector drawings with their
tables, the breached tickets with the longest overrun, the incidents and their reviews,
change outcomes and access changes. Figures come from monthly_figures (SQL aggregates);
this module only lays them out, one part at a time, reporting progress after each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, BinaryIO

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    PageBreak,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from ..changes.pdf import text
from ..pdf_layout import build_a4
from ..tickets.models import SEVERITY, STATUS_LABELS
from ..timeutil import utcnow
from . import desk_figures
from . import monthly_figures as mf
from .charts import chart_of
from .monthly_format import change_text, duration, local_time, month_name, shown
from .period import ReportPeriod

_styles = getSampleStyleSheet()
BODY, H1, H2 = _styles["BodyText"], _styles["Title"], _styles["Heading2"]
SMALL = ParagraphStyle("monthly-small", parent=BODY, fontSize=8, leading=10)
COVER = ParagraphStyle("monthly-cover", parent=BODY, fontSize=12, leading=16)
FRAME_WIDTH = A4[0] - 40 * mm
HEADER_FILL = colors.HexColor("#e9ecef")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Context:
    """What every part needs: the month, the one before, who it is for, and when."""

    month: ReportPeriod
    previous: ReportPeriod
    reader: str
    now: datetime


def _table(rows: list[list[Any]], widths: list[float] | None = None) -> Table:
    cells = [[c if isinstance(c, Flowable) else Paragraph(text(c), SMALL) for c in r] for r in rows]
    table = Table(cells, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ]
        )
    )
    return table


def _note(value: str) -> Paragraph:
    return Paragraph(text(value), SMALL)


# -- the parts -------------------------------------------------------------------------------


def _cover(ctx: Context) -> list[Flowable]:
    zone = ctx.month.zone
    lines = [
        f"Month: {ctx.month.start:%Y-%m-%d} to {ctx.month.end:%Y-%m-%d} ({zone})",
        f"Compared with: {month_name(ctx.previous.start)}",
        f"Built: {local_time(ctx.now, zone)} {zone}",
        f"Prepared for: {ctx.reader}",
    ]
    return [
        Spacer(1, 40 * mm),
        Paragraph("Monthly operations report", H1),
        Paragraph(text(month_name(ctx.month.start)), H1),
        Spacer(1, 10 * mm),
        *(Paragraph(text(line), COVER) for line in lines),
        PageBreak(),
    ]


def _key_figures(ctx: Context) -> list[Flowable]:
    this, before = mf.key_figures(ctx.month), mf.key_figures(ctx.previous)
    rows: list[list[Any]] = [
        ["Figure", month_name(ctx.month.start), month_name(ctx.previous.start), "Change"]
    ]
    for key, label, unit in mf.KEY_LABELS:
        now_value, old_value = getattr(this, key), getattr(before, key)
        rows.append(
            [
                label,
                shown(now_value, unit),
                shown(old_value, unit),
                change_text(now_value, old_value, unit),
            ]
        )
    return [
        Paragraph("Key figures", H2),
        _table(rows, [70 * mm, 33 * mm, 33 * mm, 34 * mm]),
        _note(
            "Created, resolved and incidents count by creation or resolution time in the "
            "month; the backlog is the tickets open at midnight after its last day. SLA met % "
            "as in the service-desk report; medians are business minutes, pauses excluded. "
            "Changes count by the time their implementation finished."
        ),
    ]


def _fit(drawing: Any) -> Any:
    """Scaled down to the page's text width; still vector graphics."""
    drawing.renderScale = min(1.0, FRAME_WIDTH / drawing.width)
    return drawing


def _charts(ctx: Context) -> list[Flowable]:
    out: list[Flowable] = [PageBreak(), Paragraph("Service desk", H2)]
    for figure in (
        desk_figures.created_and_resolved(ctx.month),
        desk_figures.sla_compliance(ctx.month),
        desk_figures.business_times(ctx.month),
    ):
        out += [Paragraph(text(figure.title), _styles["Heading3"]), _note(figure.definition)]
        drawing = chart_of(figure)
        if drawing is not None:
            out.append(_fit(drawing))
        rows = [["—" if c is None else c for c in row] for row in figure.rows]
        out.append(_table([list(figure.header), *rows]) if rows else _note("No tickets."))
    return out


def _breached(ctx: Context) -> list[Flowable]:
    found = mf.breached_tickets(ctx.month, ctx.now)
    zone = ctx.month.zone
    rows = [
        [
            f"T-{t['id']:06d}",
            t["subject"],
            t["priority"],
            STATUS_LABELS.get(t["status"], t["status"]),
            local_time(t["resolution_due_at"], zone),
            local_time(t["resolved_at"], zone) if t["resolved_at"] else "open",
            duration(float(t["overrun"])),
        ]
        for t in found
    ]
    head = ["Ticket", "Subject", "Priority", "Status", "Due", "Resolved", "Overrun"]
    widths = [18 * mm, 38 * mm, 16 * mm, 20 * mm, 26 * mm, 26 * mm, 26 * mm]
    return [
        Paragraph(f"Breached tickets: the {mf.BREACHED_LIMIT} longest overruns", H2),
        _note(
            "Tickets whose resolution target fell due in the month and was breached; the "
            "overrun runs from the due time to the resolution, or to now for open ones."
        ),
        _table([head, *rows], widths) if rows else _note("No resolution target was breached."),
    ]


def _incidents(ctx: Context) -> list[Flowable]:
    found, counts = mf.incidents(ctx.month)
    zone = ctx.month.zone
    total = sum(counts.values())
    summary = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
    rows = [
        [
            f"T-{i['id']:06d}",
            SEVERITY.get(i["priority"], i["priority"]),
            i["subject"],
            STATUS_LABELS.get(i["status"], i["status"]),
            local_time(i["created_at"], zone),
            local_time(i["resolved_at"], zone),
            i["review"],
        ]
        for i in found
    ]
    head = ["Incident", "Severity", "Subject", "Status", "Opened", "Resolved", "Review"]
    widths = [18 * mm, 15 * mm, 43 * mm, 20 * mm, 26 * mm, 26 * mm, 22 * mm]
    out: list[Flowable] = [
        Paragraph("Incidents", H2),
        _note(f"{total} incidents opened in the month. Reviews — {summary or 'none'}."),
        _note("P0 and P1 incidents need a post-incident review; P2 and P3 do not."),
    ]
    out.append(_table([head, *rows], widths) if rows else _note("No incidents."))
    if total > len(found):
        out.append(_note(f"The {len(found)} most severe are listed; {total} in all."))
    return out


def _changes(ctx: Context) -> list[Flowable]:
    found = mf.change_outcomes(ctx.month)
    completed, failed = sum(r[2] for r in found), sum(r[3] for r in found)
    rows = [[t, r, c, f] for t, r, c, f in found]
    rows.append(["All", "", completed, failed])
    rate = desk_figures.percent(completed, completed + failed)
    return [
        Paragraph("Change outcomes", H2),
        _note(
            f"{completed + failed} changes finished in the month: {completed} completed, "
            f"{failed} failed (success rate {shown(rate, ' %')})."
        ),
        _table([["Type", "Risk", "Completed", "Failed"], *rows], [40 * mm] * 4),
    ]


def _access(ctx: Context) -> list[Flowable]:
    counts = mf.access_counts(ctx.month)
    events = mf.access_changes(ctx.month)
    zone = ctx.month.zone
    summary = [[label, counts.get(action, 0)] for action, label in mf.ACCESS_ACTIONS.items()]
    rows = [
        [
            local_time(e["created_at"], zone),
            mf.ACCESS_ACTIONS[e["action"]],
            e["target_email"] or (e["data"] or {}).get("email", "—"),
            _access_detail(e["data"] or {}),
            e["actor_label"],
        ]
        for e in events
    ]
    head = ["When", "What", "Account", "Detail", "By"]
    widths = [26 * mm, 24 * mm, 46 * mm, 34 * mm, 40 * mm]
    return [
        Paragraph("Access changes", H2),
        _table([["Change", "Count"], *summary], [60 * mm, 25 * mm]),
        Spacer(1, 3 * mm),
        _table([head, *rows], widths) if rows else _note("No access changes."),
    ]


def _access_detail(data: dict[str, Any]) -> str:
    before, after = data.get("before") or {}, data.get("after") or {}
    if "role" in after:
        return f"{before.get('role', '—')} to {after['role']}"
    return str(data.get("role") or after.get("status") or "")


PARTS: tuple[Callable[[Context], list[Flowable]], ...] = (
    _cover,
    _key_figures,
    _charts,
    _breached,
    _incidents,
    _changes,
    _access,
)
TOTAL_STEPS = len(PARTS) + 1  # the parts, then laying out the pages


def build_monthly_pdf(
    first: date, zone: str, reader: str, out: BinaryIO, progress: Progress | None = None
) -> int:
    """Write the report of the month starting `first` (local days in `zone`) for `reader`
    to `out`; the number of pages. `progress(done, total)` follows each part."""
    ctx = Context(
        month=mf.month_period(first, zone),
        previous=mf.month_period(mf.previous_month(first), zone),
        reader=reader,
        now=utcnow(),
    )
    story: list[Flowable] = []
    for done, part in enumerate(PARTS, start=1):
        story += part(ctx)
        if progress is not None:
            progress(done, TOTAL_STEPS)
    content, pages = build_a4(
        story, f"Monthly operations report {first:%Y-%m}", f"Operations {first:%Y-%m}"
    )
    out.write(content)
    if progress is not None:
        progress(TOTAL_STEPS, TOTAL_STEPS)
    return pages
