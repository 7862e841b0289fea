"""A completed access review's evidence: a CSV and a PDF of every decision (keeps too),
stamped with the roster hash and the audit chain's head at completion.

The CSV has one row per person (the five frozen values the roster hash covers among
them: user_id, email, role_at_freeze, status_at_freeze, team_at_freeze), then an empty
row and `#`-rows naming the hashes. Text cells that a spreadsheet would run as a formula
start with a `'` (reports/columns.py `defuse`); strip it before recomputing the hash.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import storage
from ..changes.pdf import text
from ..extensions import db
from ..pdf_layout import build_a4
from ..reports.columns import defuse
from ..reports.csv_writer import BOM
from .review_models import AccessReview, AccessReviewItem

STORAGE_PREFIX = "access-reviews"
CSV_HEADERS = [
    "user_id",
    "person",
    "email",
    "role_at_freeze",
    "status_at_freeze",
    "team_at_freeze",
    "reviewer",
    "decided_by",
    "decided_at_utc",
    "decision",
    "new_role",
    "comment",
    "what_changed",
    "carried_out_at_utc",
]

_styles = getSampleStyleSheet()
BODY = _styles["BodyText"]
SMALL = ParagraphStyle("review-small", parent=BODY, fontSize=7, leading=8.5)
MONO = ParagraphStyle("review-mono", parent=SMALL, fontName="Courier")
H1, H2 = _styles["Title"], _styles["Heading2"]


def _time(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _items(review: AccessReview) -> list[AccessReviewItem]:
    return list(
        db.session.scalars(
            select(AccessReviewItem)
            .where(AccessReviewItem.review_id == review.id)
            .options(
                selectinload(AccessReviewItem.reviewer), selectinload(AccessReviewItem.decided_by)
            )
            .order_by(AccessReviewItem.user_id)
        )
    )


def _reviewer(item: AccessReviewItem) -> str:
    return item.reviewer.email if item.reviewer else "admins"


def _decider(item: AccessReviewItem) -> str:
    if item.decided_by:
        return item.decided_by.email
    return "system" if item.decided_at else ""


def _row(item: AccessReviewItem) -> list[str]:
    snap = item.snapshot
    cells = [
        str(item.user_id),
        snap.get("name") or "",
        snap["email"],
        snap["role"],
        snap["status"],
        snap["team"],
        _reviewer(item),
        _decider(item),
        _time(item.decided_at),
        item.decision or "",
        item.new_role or "",
        item.comment or "",
        item.outcome or "",
        _time(item.applied_at),
    ]
    return [defuse(cell) for cell in cells]


def stamp_lines(review: AccessReview) -> list[list[str]]:
    return [
        ["# access_review", str(review.id), review.title],
        ["# roster_sha256", review.roster_hash, f"{review.roster_count} people"],
        ["# audit_chain_head_sha256", review.chain_head_hash or "", f"id {review.chain_head_id}"],
        ["# completed_at_utc", _time(review.completed_at)],
    ]


def build_csv(review: AccessReview, items: list[AccessReviewItem]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    writer.writerows(_row(item) for item in items)
    writer.writerow([])
    writer.writerows([[defuse(c) for c in line] for line in stamp_lines(review)])
    return BOM + buffer.getvalue().encode()


def _table(
    rows: list[list[Any]], widths: list[float], style: ParagraphStyle = SMALL, header: bool = True
) -> Table:
    cells = [
        [c if isinstance(c, Flowable) else Paragraph(text(c), style) for c in row] for row in rows
    ]
    table = Table(cells, colWidths=widths, repeatRows=1 if header else 0)
    looks = [("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        looks.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e9ecef")))
    table.setStyle(TableStyle(looks))
    return table


def _lines(*values: Any) -> Paragraph:
    """One cell, a value per line: an email address is never broken by wrapping."""
    return Paragraph("<br/>".join(text(v) for v in values), SMALL)


def build_pdf(review: AccessReview, items: list[AccessReviewItem]) -> bytes:
    started_by = review.started_by.email if review.started_by else "system (monthly)"
    completed_by = review.completed_by.email if review.completed_by else "system"
    facts = [
        ["Scope", review.scope_label],
        ["Reviewers", review.reviewer_label],
        ["Started", f"{_time(review.started_at)} UTC by {started_by}"],
        ["Due", f"{_time(review.due_at)} UTC"],
        ["Completed", f"{_time(review.completed_at)} UTC by {completed_by}"],
        ["People reviewed", str(review.roster_count)],
        ["Roster hash (sha256)", review.roster_hash],
        ["Audit chain head", f"event {review.chain_head_id}: {review.chain_head_hash}"],
    ]
    head = ["Person", "Role at freeze", "Decided by, when (UTC)", "Decision", "Comment", "Changed"]
    rows = [
        [
            _lines(item.snapshot.get("name"), item.snapshot["email"], f"id {item.user_id}"),
            item.snapshot["role"],
            _lines(_decider(item), _time(item.decided_at)),
            item.decision_label,
            item.comment or "—",
            # The PDF's standard fonts have no arrow.
            (item.outcome or "—").replace("→", "->"),
        ]
        for item in items
    ]
    story: list[Flowable] = [
        Paragraph(f"Access review {review.id}: {text(review.title)}", H1),
        _table(facts, [40 * mm, 130 * mm], MONO, header=False),
        Spacer(1, 4 * mm),
        Paragraph("Decisions", H2),
        _table([head, *rows], [44 * mm, 15 * mm, 40 * mm, 20 * mm, 29 * mm, 22 * mm]),
        Spacer(1, 4 * mm),
        Paragraph(
            "The roster hash is the sha256 of the canonical JSON of the frozen roster "
            "(user id, email, role, status and team of each person, sorted by user id); "
            "the CSV evidence carries those values to recompute it.",
            SMALL,
        ),
    ]
    content, _ = build_a4(story, f"Access review {review.id}", f"Access review {review.id}")
    return content


def store_evidence(review: AccessReview) -> tuple[str, str]:
    """Build and store both files; their storage keys (PDF, CSV)."""
    items = _items(review)
    pdf = storage.save(io.BytesIO(build_pdf(review, items)), prefix=STORAGE_PREFIX)
    csv_file = storage.save(io.BytesIO(build_csv(review, items)), prefix=STORAGE_PREFIX)
    return pdf.key, csv_file.key
