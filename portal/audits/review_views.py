"""Access-review pages (on the audits blueprint): the campaigns, one campaign's people
with a decision form each (htmx swaps the one row), confirming, completing, and the
evidence downloads.

Who may do what: starting and completing are the admins' (users:manage); the evidence
is the admins' and auditors' (audits:read). Deciding and confirming belong to the
assigned reviewer, who may be a team lead without either permission, so those routes
ask only for a signed-in user and the object check (reviews.check_can_decide,
review_queries.items_for) does the rest.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from flask import abort, flash, make_response, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from .. import jobs
from ..downloads import stored_file_response
from ..errors import Forbidden, ServiceError
from ..extensions import db
from ..security import Permission, can, login_required, permission_required
from ..tickets.setup_models import Team
from ..web import error_response, is_htmx, redirect_to, render
from . import record, reviews
from .review_forms import DecisionForm, StartReviewForm
from .review_models import AccessReview, AccessReviewItem
from .review_queries import (
    facts_for,
    get_item_or_404,
    get_review_or_404,
    hint,
    items_for,
    reviews_for,
)
from .views import bp

log = logging.getLogger(__name__)
MANAGE = Permission.USERS_MANAGE


def _refused(exc: ServiceError) -> Response:
    return error_response(exc.status, "Not done", exc.message)


def _start_form(formdata: object = None) -> StartReviewForm:
    form = StartReviewForm(formdata=formdata) if formdata is not None else StartReviewForm()
    teams = db.session.execute(select(Team.id, Team.name).order_by(Team.name)).all()
    form.team_id.choices = [SelectChoice("", "—"), *(SelectChoice(t.id, t.name) for t in teams)]
    return form


def _list(form: StartReviewForm | None, status: int = 200) -> Response:
    campaigns, progress = reviews_for(current_user)
    return render(
        "audits/access_reviews.html",
        "start_form" if status == 422 else None,
        status,
        reviews=campaigns,
        progress=progress,
        form=form,
    )


@bp.route("/access-reviews")
@login_required
def access_reviews() -> Response:
    return _list(_start_form() if can(MANAGE) else None)


@bp.route("/access-reviews/new", methods=["POST"])
@permission_required(MANAGE)
def start_access_review() -> Response:
    form = _start_form(request.form)
    if form.validate():
        due = form.due_date.data
        try:
            review = reviews.start_campaign(
                current_user,
                scope=form.scope.data,
                reviewer_rule=form.reviewer_rule.data,
                team_id=form.team_id.data,
                title=form.title.data,
                # The end of the chosen day (UTC): due "on" a date means by its end.
                due_at=datetime.combine(due + timedelta(days=1), time()) if due else None,
            )
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            flash(f"Access review started: {review.roster_count} people to review.", "success")
            return redirect_to(url_for("audits.access_review", review_id=review.id))
    return _list(form, 422)


def _decision_form(item: AccessReviewItem) -> DecisionForm:
    return DecisionForm(
        formdata=None,
        prefix=f"item-{item.id}",
        decision=item.decision or "keep",
        new_role=item.new_role or "",
        comment=item.comment or "",
    )


def _forms(
    review: AccessReview,
    items: list[AccessReviewItem],
    posted: tuple[int, DecisionForm] | None = None,
) -> dict[int, DecisionForm]:
    """A decision form for each item the viewer may still decide."""
    if not review.is_open:
        return {}
    forms = {
        item.id: _decision_form(item)
        for item in items
        if not item.is_settled and reviews.may_decide(item, current_user)
    }
    if posted is not None:
        forms[posted[0]] = posted[1]  # the one sent back, with its errors
    return forms


def _page(
    review: AccessReview, posted: tuple[int, DecisionForm] | None = None, status: int = 200
) -> Response:
    items = items_for(review, current_user)
    return render(
        "audits/access_review.html",
        None,
        status,
        review=review,
        items=items,
        facts=facts_for(items),
        forms=_forms(review, items, posted),
        hint=hint,
        undecided=sum(1 for i in items if not i.is_settled),
        mine_pending=any(
            i.decided_by_id == current_user.id and i.is_decided and not i.is_settled for i in items
        ),
    )


@bp.route("/access-reviews/<int:review_id>")
@login_required
def access_review(review_id: int) -> Response:
    return _page(get_review_or_404(review_id))


@bp.route("/access-reviews/<int:review_id>/items/<int:review_item_id>", methods=["POST"])
@login_required
def decide_access_item(review_id: int, review_item_id: int) -> Response:
    review = get_review_or_404(review_id)
    item = get_item_or_404(review, review_item_id)
    try:
        reviews.check_can_decide(item, current_user)
    except Forbidden as exc:
        abort(403, exc.message)
    form = DecisionForm(prefix=f"item-{item.id}")
    status = 200
    if form.validate():
        try:
            reviews.decide(
                item, current_user, form.decision.data, form.new_role.data, form.comment.data
            )
        except ServiceError as exc:
            if exc.status != 422:
                return _refused(exc)
            form.add_error(exc.field, exc.message)
            status = 422
    else:
        status = 422
    if not is_htmx():
        if status == 422:
            return _page(review, (item.id, form), 422)
        flash(f"Decision saved for {item.snapshot['name']}: confirm to carry it out.", "success")
        return redirect_to(url_for("audits.access_review", review_id=review.id))
    db.session.refresh(item)
    body = render_template(
        "audits/_access_review_item.html",
        review=review,
        item=item,
        facts=facts_for([item]),
        form=form if status == 422 else _decision_form(item),
        may_decide=review.is_open and not item.is_settled,
        hint=hint,
    )
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


@bp.route("/access-reviews/<int:review_id>/confirm", methods=["POST"])
@login_required
def confirm_access_review(review_id: int) -> Response:
    review = get_review_or_404(review_id)
    items_for(review, current_user)  # a reviewer of this campaign (or an admin), else 403
    try:
        done = reviews.confirm(review, current_user)
    except ServiceError as exc:
        return _refused(exc)
    if not done.applied and not done.refused:
        flash("You have no decisions waiting to be carried out.", "info")
    else:
        flash(f"{done.applied} decision(s) carried out.", "success")
    for refusal in done.refused or []:
        flash(refusal, "danger")
    return redirect_to(url_for("audits.access_review", review_id=review.id))


@bp.route("/access-reviews/<int:review_id>/complete", methods=["POST"])
@permission_required(MANAGE)
def complete_access_review(review_id: int) -> Response:
    review = get_review_or_404(review_id)
    try:
        reviews.complete(review, current_user)
    except ServiceError as exc:
        return _refused(exc)
    flash("The access review is complete; its evidence is ready to download.", "success")
    return redirect_to(url_for("audits.access_review", review_id=review.id))


@bp.route("/access-reviews/<int:review_id>/cancel", methods=["POST"])
@permission_required(MANAGE)
def cancel_access_review(review_id: int) -> Response:
    review = get_review_or_404(review_id)
    try:
        reviews.cancel(review, current_user)
    except ServiceError as exc:
        return _refused(exc)
    flash("The access review is cancelled; decisions already carried out stay done.", "info")
    return redirect_to(url_for("audits.access_review", review_id=review.id))


def _evidence(review_id: int, kind: str) -> Response:
    review = get_review_or_404(review_id)
    key = review.evidence_pdf_key if kind == "pdf" else review.evidence_csv_key
    if review.status != "completed" or not key:
        abort(404, "The evidence is produced when the review completes.")
    mimetype = "application/pdf" if kind == "pdf" else "text/csv"
    try:
        response = stored_file_response(key, f"access-review-{review.id}.{kind}", mimetype)
    except FileNotFoundError:
        log.error("access review %s: its %s evidence is no longer stored", review.id, kind)
        abort(404, "The evidence file is no longer stored.")
    record("access_review.evidence_downloaded", current_user, review, file=kind)
    jobs.commit()
    return response


@bp.route("/access-reviews/<int:review_id>/evidence.pdf")
@permission_required(Permission.AUDITS_READ)
def access_review_pdf(review_id: int) -> Response:
    return _evidence(review_id, "pdf")


@bp.route("/access-reviews/<int:review_id>/evidence.csv")
@permission_required(Permission.AUDITS_READ)
def access_review_csv(review_id: int) -> Response:
    return _evidence(review_id, "csv")
