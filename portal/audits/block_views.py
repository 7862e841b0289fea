"""Blocked addresses (admins): the list with its add form, and lifting a block. The
routes join the audit blueprint, under /audits/blocks."""

from __future__ import annotations

from datetime import datetime

from flask import abort, current_app, flash, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..changes.conflicts import to_utc
from ..client import client_ip
from ..errors import ServiceError
from ..query_args import positive_int
from ..security import Permission, permission_required
from ..timeutil import utcnow
from ..web import error_response, redirect_to, render
from . import blocks
from .block_forms import BlockForm
from .block_guard import pending_hits
from .block_models import NETWORK_MAX, IpBlock
from .views import bp

MANAGE = Permission.USERS_MANAGE


def _zone() -> str:
    """The zone the admin types and reads times in, as the `local_time` filter shows them."""
    return getattr(current_user, "timezone", None) or current_app.config["SETTINGS"].TIMEZONE


def get_block_or_404(block_id: int) -> IpBlock:
    block = blocks.get_block(block_id)
    if block is None:
        abort(404)
    return block


def _expiry(form: BlockForm) -> datetime:
    length = form.length
    if length is not None:
        return utcnow() + length
    return to_utc(form.until.data, _zone(), "expires")


def _add(form: BlockForm) -> int | None:
    """Add the block the form asks for; None when done, else the status to answer with
    (the refusal is put on its field)."""
    try:
        blocks.add_block(
            form.network.data, form.reason.data, _expiry(form), current_user, client_ip()
        )
    except ServiceError as exc:
        field = exc.field
        if field == "expires":
            field = "duration" if form.length is not None else "until"
        form.add_error(field, exc.message)
        return exc.status
    return None


@bp.route("/blocks", methods=["GET", "POST"])
@permission_required(MANAGE)
def blocks_list() -> Response:
    # A link may name the address to block (the sign-in attempts of a compromised
    # account link each address here): it fills the form, nothing more.
    asked = request.args.get("network", "")[:NETWORK_MAX] if request.method == "GET" else ""
    form = BlockForm(network=asked)
    status = 200
    if request.method == "POST":
        if form.validate():
            refused = _add(form)
            if refused is None:
                flash(
                    f"Requests from {blocks.parse_network(form.network.data)} are blocked.",
                    "success",
                )
                return redirect_to(url_for("audits.blocks_list"))
            status = refused
        else:
            status = 422
    page = blocks.blocks_page(positive_int(request.args.get("page")) or 1)
    return render(
        "audits/blocks.html",
        "results" if status == 200 else None,
        status,
        form=form,
        page=page,
        pending=pending_hits(b.id for b in page.items),
        now=utcnow(),
        zone=_zone(),
        your_address=client_ip(),
    )


@bp.route("/blocks/<int:block_id>/lift", methods=["POST"])
@permission_required(MANAGE)
def lift_block(block_id: int) -> Response:
    block = get_block_or_404(block_id)
    try:
        blocks.lift_block(block, current_user)
    except ServiceError as exc:
        return error_response(exc.status, "Not done", exc.message)
    flash(f"The block on {block.network} is lifted.", "success")
    return redirect_to(url_for("audits.blocks_list"))
