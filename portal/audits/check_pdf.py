"""A scheduled audit run as a PDF (ReportLab, laid out by pdf_layout.build_a4): the period,
each check with its share of objects passing, then the findings with their first
evidence rows, as the run saw them and in their state now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from ..changes.pdf import BODY, H1, H2, SMALL, text
from ..pdf_layout import build_a4
from ..timeutil import to_zone, utcnow
from .check_models import CheckRun
from .check_queries import check_rows, previous_run, run_findings

# Findings printed (a run tracks up to 500 per check; the page lists them all).
PDF_FINDINGS = 1000
EVIDENCE_IN_PDF = 5
EVIDENCE_COLUMNS = 5


class _Times:
    """A stored time in the reader's zone, its name shown."""

    def __init__(self, zone: str) -> None:
        self.zone = zone

    def __call__(self, value: datetime | None) -> str:
        local = to_zone(value, self.zone)
        return "—" if local is None else f"{local:%Y-%m-%d %H:%M %Z}"


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    """A grid with a shaded header row; every cell is escaped text."""
    cells = [[Paragraph(text(c), SMALL) for c in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")),
            ]
        )
    )
    return table


def _results(run: CheckRun) -> list[Flowable]:
    rows: list[list[Any]] = [["Check", "Result", "Passing", "New", "Still open", "Resolved"]]
    for row in check_rows(run):
        result = row.result
        if result is None:
            outcome, passing = "not run", "—"
        elif result.status == "error":
            outcome, passing = f"error: {result.error or ''}"[:200], "—"
        else:
            outcome = result.status
            share = result.percent_passing
            passing = (
                f"{share}% ({result.passed} of {result.total} {row.check.objects})"
                if share is not None
                else f"nothing to check ({row.check.objects})"
            )
            if not result.complete:
                passing += f"; {result.failing} failing, the first tracked"
        rows.append([row.check.title, outcome, passing, row.new, row.still_open, row.resolved])
    return [
        Paragraph("Checks", H2),
        _table(rows, [55 * mm, 20 * mm, 50 * mm, 12 * mm, 16 * mm, 17 * mm]),
    ]


def _evidence(evidence: dict[str, Any]) -> list[Flowable]:
    rows = (evidence or {}).get("rows") or []
    if not rows:
        return []
    columns = list(rows[0].keys())[:EVIDENCE_COLUMNS]
    shown = [[str(r.get(c, "")) for c in columns] for r in rows[:EVIDENCE_IN_PDF]]
    width = 170 * mm / len(columns)
    flowables: list[Flowable] = [_table([columns, *shown], [width] * len(columns))]
    total = int(evidence.get("total") or len(rows))
    if total > len(shown):
        flowables.append(Paragraph(f"The first {len(shown)} of {total} rows.", SMALL))
    return flowables


def _findings(run: CheckRun, at: _Times) -> list[Flowable]:
    found = run_findings(run, PDF_FINDINGS + 1)
    story: list[Flowable] = [Paragraph("Findings", H2)]
    if not found:
        return [*story, Paragraph("No finding: every check passed.", BODY)]
    for finding, compared in found[:PDF_FINDINGS]:
        heading = (
            f"<b>{text(finding.number)}</b> [{text(finding.severity)}] {text(finding.title)} "
            f"— {text(compared)}; now {text(finding.state_label.lower())}"
        )
        story.append(Paragraph(heading, BODY))
        story.append(
            Paragraph(f"Subject {text(finding.subject_key)}. {text(finding.recommendation)}", SMALL)
        )
        if finding.state == "accepted":
            story.append(
                Paragraph(
                    f"Risk accepted until {text(at(finding.accepted_until))}: "
                    f"{text(finding.accepted_reason)}",
                    SMALL,
                )
            )
        if finding.ticket_id:
            story.append(Paragraph(f"Ticket T-{finding.ticket_id:06d}.", SMALL))
        story += _evidence(finding.evidence)
        story.append(Spacer(1, 3 * mm))
    if len(found) > PDF_FINDINGS:
        story.append(
            Paragraph(
                f"Only the first {PDF_FINDINGS} findings are printed; "
                "the run's page lists them all.",
                SMALL,
            )
        )
    return story


def render_run_pdf(run: CheckRun, zone: str) -> bytes:
    at = _Times(zone)
    previous = previous_run(run)
    compared = f"Compared with {previous.number}." if previous else "The first run of its schedule."
    story: list[Flowable] = [
        Paragraph(f"{text(run.number)}: {text(run.schedule)} audit", H1),
        Paragraph(
            f"Period {text(at(run.period_start))} to {text(at(run.period_end))}. "
            f"Run {text(at(run.started_at))}, status {text(run.status)}. {text(compared)} "
            f"Printed {text(at(utcnow()))}.",
            SMALL,
        ),
        Spacer(1, 4 * mm),
        *_results(run),
        Spacer(1, 4 * mm),
        *_findings(run, at),
    ]
    content, _ = build_a4(
        story, f"{run.number} {run.schedule} audit", f"{run.number} {run.schedule} audit"
    )
    return content
