"""The portal's printed pages: A4, its margins, and a footer naming the document and the
page. Every PDF (a change's record, the monthly report) is laid out through here."""

from __future__ import annotations

import io
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, SimpleDocTemplate

MARGIN_SIDE, MARGIN_TOP = 20 * mm, 18 * mm


def build_a4(story: list[Flowable], title: str, footer: str) -> tuple[bytes, int]:
    """The PDF of `story` and its page count; `footer` precedes the page number."""
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=title,
        author="Ops Portal",
        leftMargin=MARGIN_SIDE,
        rightMargin=MARGIN_SIDE,
        topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_TOP,
    )

    def draw_footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(MARGIN_SIDE, 10 * mm, f"{footer} · page {document.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=draw_footer, onLaterPages=draw_footer)
    return buffer.getvalue(), int(doc.page)
