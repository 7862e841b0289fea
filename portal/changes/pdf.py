"""The printable record of a change: every field, the risk and the approvals it called
for, each vote, the conflicts acknowledged, the retrospective and the whole timeline,
as a PDF built by a job (ReportLab platypus).

`request_pdf` writes the job's row and enqueues `build_change_pdf` after the commit;
the job fills the row in as it goes (progress, then the stored file or the error), so
the change page polls the row, never Redis.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from flask import current_app
from redis.exceptions import RedisError
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle
from sqlalchemy import select

from .. import job_records, jobs, storage
from ..audits import record
from ..audits.models import AuditEvent
from ..extensions import db
from ..pdf_layout import build_a4
from ..timeutil import to_zone, utcnow
from ..users.models import User
from . import approvals, risk
from .calendar import zone_of
from .models import ChangeHistory, ChangeRequest, ConflictAcknowledgement

log = logging.getLogger(__name__)

KIND = "change_pdf"
SUBJECT = "change_request"
STORAGE_PREFIX = "change-pdfs"
# Long enough for a change with years of history on a busy worker.
JOB_TIMEOUT = 600
# A plan's history keeps whole texts; the PDF shows the start of each old and new value.
HISTORY_VALUE_CHARS = 400
AUDIT_EVENT_LIMIT = 2000

_styles = getSampleStyleSheet()
BODY = _styles["BodyText"]
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10)
H1, H2 = _styles["Title"], _styles["Heading2"]


# -- the service ---------------------------------------------------------------------------


def request_pdf(change: ChangeRequest, actor: User) -> job_records.JobRecord:
    """Queue a PDF of `change` for `actor`. The job starts once the row is committed;
    without Redis it runs right here, so the row comes back finished (or failed)."""
    row = job_records.new_record(KIND, SUBJECT, change.id, actor)
    record("change.pdf_requested", actor, change, job_record=row.id, job_id=row.job_id)
    jobs.after_commit(
        build_change_pdf, row.id, queue="exports", job_id=row.job_id, timeout=JOB_TIMEOUT
    )
    try:
        jobs.commit()
    except RedisError as exc:
        # The row is committed but no job will ever pick it up: say so on the row, so
        # the page offers a retry instead of polling a job that does not exist.
        log.error("could not queue the PDF of %s: %s", change.number, exc)
        job_records.fail(row.id, "The job queue is unavailable; try again in a moment.")
    db.session.refresh(row)
    return row


def record_download(change: ChangeRequest, row: job_records.JobRecord, actor: User) -> None:
    record("change.pdf_downloaded", actor, change, job_record=row.id, filename=row.filename)
    jobs.commit()


# -- the job ------------------------------------------------------------------------------


@jobs.job
def build_change_pdf(job_record_id: int) -> str:
    """Build the PDF a row asks for. Safe to run twice: a row already done whose file is
    still stored is left alone, and a row another run is building is not touched."""
    row = db.session.get(job_records.JobRecord, job_record_id)
    if row is None:
        return "missing"
    rebuild = False
    if row.status == "done":
        if row.file_key and storage.exists(row.file_key):
            return "already built"
        rebuild = True  # the stored file was lost: make it again
    if not job_records.claim(job_record_id, rebuild=rebuild):
        return "taken"
    try:
        db.session.refresh(row)
        change = db.session.get(ChangeRequest, row.subject_id)
        if change is None:
            raise LookupError(f"change request {row.subject_id} no longer exists")
        content = render_pdf(change, zone_of(row.requested_by, _default_zone()), row)
        old_key = row.file_key
        stored = storage.save(io.BytesIO(content), prefix=STORAGE_PREFIX)
        job_records.finish(row, stored.key, f"{change.number}.pdf")
        if old_key and old_key != stored.key:
            storage.delete(old_key)
    except Exception as exc:
        job_records.fail(job_record_id, f"{type(exc).__name__}: {exc}")
        raise
    return "built"


def _default_zone() -> str:
    return str(current_app.config["SETTINGS"].TIMEZONE)


# -- the document ---------------------------------------------------------------------------


def text(value: Any) -> str:
    """Plain text made safe for ReportLab's paragraph mark-up: a title with `<b>` or `&`
    in it prints as typed instead of becoming mark-up or breaking the build."""
    return escape("" if value is None else str(value))


def paragraphs(value: str | None, style: ParagraphStyle = BODY) -> list[Flowable]:
    """A Markdown field as plain text: one paragraph per blank-line-separated block,
    its line breaks kept, nothing interpreted."""
    blocks = [b for b in (value or "").replace("\r\n", "\n").split("\n\n") if b.strip()]
    if not blocks:
        return [Paragraph("<i>(empty)</i>", style)]
    return [Paragraph(text(b.strip()).replace("\n", "<br/>"), style) for b in blocks]


class _Times:
    """A stored time written both ways: in UTC and in the reader's zone."""

    def __init__(self, zone: str) -> None:
        self.zone = zone

    def __call__(self, value: datetime | None) -> str:
        if value is None:
            return "—"
        local = to_zone(value, self.zone)
        assert local is not None
        if self.zone == "UTC":
            return f"{value:%Y-%m-%d %H:%M} UTC"
        return f"{value:%Y-%m-%d %H:%M} UTC ({local:%Y-%m-%d %H:%M %Z})"


def _table(rows: list[list[Any]], widths: list[float], header: bool = True) -> Table:
    cells = [[c if isinstance(c, Flowable) else Paragraph(text(c), SMALL) for c in r] for r in rows]
    table = Table(cells, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")))
    table.setStyle(TableStyle(style))
    return table


def _fields(change: ChangeRequest, at: _Times) -> list[Flowable]:
    template = change.template.name if change.template else "—"
    rows = [
        ["Number", change.number],
        ["Title", change.title],
        ["Type", change.type],
        ["Status", change.status_label],
        ["Requester", f"{change.requester.name} <{change.requester.email}>"],
        ["Implementer", change.implementer.name if change.implementer else "—"],
        ["Standard template", template],
        ["Window start", at(change.window_start)],
        ["Window end", at(change.window_end)],
        ["Approval round", change.approval_round],
        ["Rejection reason", change.rejection_reason or "—"],
        ["Freeze reason", change.freeze_reason or "—"],
        ["Created", at(change.created_at)],
        ["Updated", at(change.updated_at)],
        ["Status changed", at(change.status_changed_at)],
        ["Submitted", at(change.submitted_at)],
        ["Decided", at(change.decided_at)],
        ["Scheduled", at(change.scheduled_at)],
        ["Started", at(change.started_at)],
        ["Finished", at(change.finished_at)],
        ["Closed", at(change.closed_at)],
    ]
    return [Paragraph("Change", H2), _table(rows, [45 * mm, 125 * mm], header=False)]


def _scope(change: ChangeRequest, at: _Times) -> list[Flowable]:
    services = [
        [s.name, s.owner.name, "active" if s.is_active else "retired"] for s in change.services
    ]
    tickets = [[t.number, t.subject, t.status] for t in change.tickets]
    out: list[Flowable] = [Paragraph("Services", H2)]
    out.append(
        _table([["Service", "Owner", "State"], *services], [70 * mm, 70 * mm, 30 * mm])
        if services
        else Paragraph("No services.", BODY)
    )
    out.append(Paragraph("Linked tickets", H2))
    out.append(
        _table([["Ticket", "Subject", "Status"], *tickets], [30 * mm, 110 * mm, 30 * mm])
        if tickets
        else Paragraph("No linked tickets.", BODY)
    )
    return out


def _risk(change: ChangeRequest, at: _Times) -> list[Flowable]:
    needed = approvals.requirement(change)
    tally = approvals.tally(change)
    score = risk.score(change.impact, change.likelihood)
    lines = [
        f"Impact {change.impact} × likelihood {change.likelihood} = {score}: "
        f"<b>{text(change.risk)} risk</b>",
        f"Approvals needed: {text(needed.describe())}",
        f"Approvals given in round {change.approval_round}: {tally.approvals}"
        f" ({tally.admin_approvals} from an admin), rejections: {tally.rejections}",
        "Approved" if tally.approved else f"Needs {text(tally.describe_missing())}",
    ]
    return [Paragraph("Risk and approvals", H2), *(Paragraph(line, BODY) for line in lines)]


def _plans(change: ChangeRequest, at: _Times) -> list[Flowable]:
    out: list[Flowable] = []
    for label, value in (
        ("Description", change.description),
        ("Justification", change.justification),
        ("Success criteria", change.success_criteria),
        ("Implementation plan", change.implementation_plan),
        ("Rollback plan", change.rollback_plan),
    ):
        out += [Paragraph(label, H2), *paragraphs(value)]
    return out


def _votes(change: ChangeRequest, at: _Times) -> list[Flowable]:
    rows = [
        [v.round, v.approver.name, v.approver_role, v.decision, at(v.created_at), v.comment or "—"]
        for v in change.votes
    ]
    head = ["Round", "Approver", "Role", "Decision", "When", "Comment"]
    widths = [13 * mm, 32 * mm, 18 * mm, 17 * mm, 45 * mm, 45 * mm]
    body = _table([head, *rows], widths) if rows else Paragraph("No votes yet.", BODY)
    return [Paragraph("Votes", H2), body]


def _conflicts(change: ChangeRequest, at: _Times) -> list[Flowable]:
    acks = db.session.scalars(
        select(ConflictAcknowledgement)
        .where(ConflictAcknowledgement.change_id == change.id)
        .order_by(ConflictAcknowledgement.id)
    ).all()
    rows = [
        [
            a.other_change.number,
            a.services,
            f"{at(a.window_start)} – {at(a.window_end)}",
            f"{at(a.other_window_start)} – {at(a.other_window_end)}",
            f"{a.acknowledged_by.name}, {at(a.created_at)}",
        ]
        for a in acks
    ]
    head = ["Other change", "Shared services", "This window", "Its window", "Acknowledged"]
    widths = [22 * mm, 30 * mm, 40 * mm, 40 * mm, 38 * mm]
    body = _table([head, *rows], widths) if rows else Paragraph("None.", BODY)
    return [Paragraph("Conflicts acknowledged", H2), body]


def _outcome(change: ChangeRequest, at: _Times) -> list[Flowable]:
    out: list[Flowable] = [
        Paragraph("Validation results", H2),
        *paragraphs(change.validation_results),
    ]
    out += [Paragraph("Outcome", H2), *paragraphs(change.outcome)]
    out.append(Paragraph("Retrospective review", H2))
    review = change.review
    if review is None:
        out.append(Paragraph("No review.", BODY))
    else:
        justified = "yes" if review.emergency_justified else "no"
        out.append(
            Paragraph(
                f"By {text(review.reviewer.name)}, {text(at(review.updated_at))}. "
                f"Emergency justified: {justified}.",
                BODY,
            )
        )
        out += paragraphs(review.findings)
    out += [Paragraph("Lessons learned", H2), *paragraphs(change.lessons_learned)]
    return out


def _clip(value: str | None) -> str:
    value = value or "—"
    return value if len(value) <= HISTORY_VALUE_CHARS else value[:HISTORY_VALUE_CHARS] + " …"


def _timeline(change: ChangeRequest, at: _Times) -> list[Flowable]:
    """Field history and audit events of the change, merged in time order."""
    history = db.session.scalars(
        select(ChangeHistory).where(ChangeHistory.change_id == change.id).order_by(ChangeHistory.id)
    ).all()
    events = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "changerequest", AuditEvent.target_id == str(change.id))
        .order_by(AuditEvent.id)
        .limit(AUDIT_EVENT_LIMIT)
    ).all()
    entries: list[tuple[datetime, int, list[str]]] = []
    for h in history:
        what = f"{h.field}: {_clip(h.old_value)} → {_clip(h.new_value)}"
        if h.reason:
            what += f" (why: {h.reason})"
        entries.append(
            (h.created_at, 0, [at(h.created_at), h.actor.name if h.actor else "system", what])
        )
    for e in events:
        details = ", ".join(f"{k}={_clip(str(v))}" for k, v in sorted((e.data or {}).items()))
        what = e.action + (f" ({details})" if details else "")
        entries.append((e.created_at, 1, [at(e.created_at), e.actor_label, what]))
    entries.sort(key=lambda item: (item[0], item[1]))
    rows = [row for _, _, row in entries]
    widths = [45 * mm, 40 * mm, 85 * mm]
    body = (
        _table([["When", "Who", "What"], *rows], widths)
        if rows
        else Paragraph("Nothing yet.", BODY)
    )
    return [Paragraph("Timeline", H2), body]


SECTIONS: tuple[Callable[[ChangeRequest, _Times], list[Flowable]], ...] = (
    _fields,
    _scope,
    _risk,
    _plans,
    _votes,
    _conflicts,
    _outcome,
    _timeline,
)


def render_pdf(change: ChangeRequest, zone: str, row: job_records.JobRecord | None = None) -> bytes:
    """The PDF's bytes; with `row`, its progress is kept up to date section by section."""
    at = _Times(zone)
    total = len(SECTIONS) + 1  # the sections, then laying out the pages
    story: list[Flowable] = [
        Paragraph(f"{text(change.number)}: {text(change.title)}", H1),
        Paragraph(f"Times in UTC and {text(zone)}. Printed {text(at(utcnow()))}.", SMALL),
        Spacer(1, 4 * mm),
    ]
    for done, section in enumerate(SECTIONS, start=1):
        story += section(change, at)
        if row is not None:
            job_records.progress(row, done, total)
    content, _ = build_a4(story, f"{change.number} {change.title}", change.number)
    if row is not None:
        job_records.progress(row, total, total)
    return content
