"""The access-review pages: who sees what, deciding with htmx, bad input, downloads, and
a fixed number of queries whatever the roster's size."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.audits import reviews
from portal.audits.review_models import AccessReview
from portal.extensions import db
from tests.conftest import row_counts
from tests.factories import make_user, sign_in_client

from .helpers import decide_all_keep, events, item_of, make_team, start

URL = "/audits/access-reviews"
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings(STORAGE_DIR=str(tmp_path))  # evidence files outlive the rolled-back rows


def _as(app: Flask, client: FlaskClient, user) -> None:  # type: ignore[no-untyped-def]
    with app.test_request_context("/"):
        sign_in_client(client, user)


def _decide(client: FlaskClient, review, item, htmx: bool = True, **fields: str):  # type: ignore[no-untyped-def]
    data = {f"item-{item.id}-{k}": v for k, v in fields.items()}
    return client.post(f"{URL}/{review.id}/items/{item.id}", data=data, headers=HX if htmx else {})


def test_an_admin_starts_a_review_from_the_list(app: Flask, client: FlaskClient, as_role) -> None:
    admin = as_role("admin")
    make_user(role="agent")
    page = client.get(URL)
    assert page.status_code == 200
    assert "Start an access review" in page.text

    response = client.post(
        f"{URL}/new", data={"title": "Spring review", "scope": "all", "reviewer_rule": "admins"}
    )

    assert response.status_code == 302
    review = db.session.scalar(select(AccessReview))
    assert response.headers["Location"].endswith(f"{URL}/{review.id}")
    assert review.started_by_id == admin.id and review.roster_count == 2
    listing = client.get(URL)
    assert "Spring review" in listing.text and "0 / 2" in listing.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("scope", "superuser", "Not a valid choice"),
        ("reviewer_rule", "", "This field is required"),
        ("team_id", "nine", "Invalid Choice"),
        ("due_date", "2001-01-01", "The due date must be after today"),
        ("due_date", "tomorrow-ish", "Not a valid date value"),
        ("title", "x" * 201, "Field cannot be longer than 200 characters"),
        ("title", "ab\x00cd", "Contains characters that are not allowed"),
        ("scope", "team", "Choose the team to review"),
    ],
)
def test_bad_start_input_is_a_message_and_changes_nothing(
    client: FlaskClient, as_role, field: str, value: str, message: str
) -> None:
    as_role("admin")
    data = {"title": "Review", "scope": "all", "reviewer_rule": "admins", field: value}
    before = row_counts()
    response = client.post(f"{URL}/new", data=data, headers=HX)
    assert response.status_code == 422
    assert message in response.text
    assert row_counts() == before


def test_an_empty_scope_is_refused_on_the_page(client: FlaskClient, as_role) -> None:
    as_role("admin")
    team = make_team("Empty", None, [])
    response = client.post(
        f"{URL}/new", data={"scope": "team", "team_id": str(team.id), "reviewer_rule": "admins"}
    )
    assert response.status_code == 422
    assert "Nobody active is in this scope" in response.text


def test_the_campaign_page_shows_each_person_with_the_hint(
    app: Flask, client: FlaskClient, as_role
) -> None:
    admin = as_role("admin")
    idle = make_user(role="agent", name="Idle Ida")
    review = start(admin)
    page = client.get(f"{URL}/{review.id}")
    assert page.status_code == 200
    row = re.search(rf'<tr id="review-item-{item_of(review, idle).id}".*?</tr>', page.text, re.S)
    assert row and "Idle Ida" in row.group(0)
    assert "No sign-in for 30 days: suggest deactivate." in row.group(0)
    assert "Save decision" in row.group(0)
    # The admin's own row has no form: another admin decides it.
    own = re.search(rf'<tr id="review-item-{item_of(review, admin).id}".*?</tr>', page.text, re.S)
    assert own and "Save decision" not in own.group(0)
    assert review.roster_hash in page.text


def test_deciding_swaps_the_one_row_and_confirming_ends_the_session(
    app: Flask, client: FlaskClient, as_role
) -> None:
    admin = as_role("admin")
    leaver = make_user(role="agent", name="Lou Leaver")
    leaver_client = app.test_client()
    _as(app, leaver_client, leaver)
    assert leaver_client.get("/").status_code == 200
    review = start(admin)
    item = item_of(review, leaver)

    response = _decide(client, review, item, decision="deactivate", comment="Left the company.")

    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="review-item-{item.id}"')
    assert "Deactivate" in response.text and "Not carried out until confirmed" in response.text
    assert "<html" not in response.text

    confirmed = client.post(f"{URL}/{review.id}/confirm", follow_redirects=True)
    assert "1 decision(s) carried out." in confirmed.text
    assert "deactivated; sessions ended" in confirmed.text
    gone = leaver_client.get("/")
    assert gone.status_code == 302 and "/login" in gone.headers["Location"]


def test_a_decision_without_a_comment_is_a_422_in_the_row(client: FlaskClient, as_role) -> None:
    admin = as_role("admin")
    agent = make_user(role="agent")
    review = start(admin)
    item = item_of(review, agent)
    before = row_counts()
    for fields, message in (
        ({"decision": "deactivate", "comment": ""}, "a comment is required"),
        ({"decision": "change_role", "new_role": "", "comment": "Less."}, "Choose the new role"),
        ({"decision": "promote"}, "Not a valid choice"),
        ({"decision": "keep", "comment": "x" * 1001}, "Field cannot be longer"),
        ({"decision": "keep", "comment": "a\x00b"}, "Contains characters that are not allowed"),
    ):
        response = _decide(client, review, item, **fields)
        assert response.status_code == 422, fields
        assert message in response.text
        assert response.text.lstrip().startswith(f'<tr id="review-item-{item.id}"')
        plain = _decide(client, review, item, htmx=False, **fields)
        assert plain.status_code == 422 and message in plain.text
    assert row_counts() == before


def test_own_access_and_strangers_are_refused_with_403(
    app: Flask, client: FlaskClient, as_role
) -> None:
    admin = as_role("admin")
    make_user(role="admin")
    review = start(admin)
    own = _decide(client, review, item_of(review, admin), decision="keep")
    assert own.status_code == 403
    assert "Nobody reviews their own access" in own.text
    assert events("access_review.decided") == []


def test_a_lead_sees_and_decides_only_their_team(app: Flask, client: FlaskClient) -> None:
    with app.test_request_context("/"):
        admin = make_user(role="admin")
        lead = make_user(role="agent", name="Lee Lead")
        member = make_user(role="requester", name="Max Member")
        outsider = make_user(role="requester", name="Oz Outsider")
        make_team("Desk", lead, [lead, member])
        review = start(admin, rule="team_leads")
    _as(app, client, lead)

    listing = client.get(URL)
    assert listing.status_code == 200 and review.title in listing.text
    assert "Start an access review" not in listing.text
    page = client.get(f"{URL}/{review.id}")
    assert page.status_code == 200
    assert "Max Member" in page.text and "Oz Outsider" not in page.text
    assert "Complete review" not in page.text and "Evidence (PDF)" not in page.text

    assert _decide(client, review, item_of(review, outsider), decision="keep").status_code == 403
    assert _decide(client, review, item_of(review, member), decision="keep").status_code == 200
    assert client.post(f"{URL}/{review.id}/complete").status_code == 403

    stranger = app.test_client()
    with app.test_request_context("/"):
        sign_in_client(stranger, make_user(role="agent"))
    assert stranger.get(f"{URL}/{review.id}").status_code == 403
    assert stranger.post(f"{URL}/{review.id}/confirm").status_code == 403
    assert review.title not in stranger.get(URL).text


def test_completing_offers_the_evidence_to_admins_and_auditors(
    app: Flask, client: FlaskClient, as_role
) -> None:
    admin = as_role("admin")
    with app.test_request_context("/"):
        other = make_user(role="admin")
        make_user(role="agent", name="Kept Person")
        review = start(admin)
    assert client.post(f"{URL}/{review.id}/complete").status_code == 409
    assert client.get(f"{URL}/{review.id}/evidence.pdf").status_code == 404
    with app.test_request_context("/"):
        decide_all_keep(review, admin)
        decide_all_keep(review, other)

    done = client.post(f"{URL}/{review.id}/complete", follow_redirects=True)
    assert "The access review is complete" in done.text
    assert "Evidence (PDF)" in done.text and "Save decision" not in done.text

    auditor = app.test_client()
    with app.test_request_context("/"):
        sign_in_client(auditor, make_user(role="auditor"))
    pdf = auditor.get(f"{URL}/{review.id}/evidence.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    assert pdf.headers["Content-Disposition"].startswith("attachment")
    got = auditor.get(f"{URL}/{review.id}/evidence.csv")
    rows = list(csv.DictReader(io.StringIO(got.data.decode("utf-8-sig"))))
    assert {r["person"] for r in rows if r["person"]} >= {"Kept Person"}
    assert all(r["decision"] == "keep" for r in rows if r["user_id"].isdigit())
    assert len(events("access_review.evidence_downloaded")) == 2


def _counts(client: FlaskClient, count_queries, review: AccessReview) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    client.get(URL), client.get(f"{URL}/{review.id}")  # the navigation's cached figures
    with count_queries() as listing:
        assert client.get(URL).status_code == 200
    with count_queries() as page:
        assert client.get(f"{URL}/{review.id}").status_code == 200
    return listing.count, page.count


def test_pages_run_a_fixed_number_of_queries(
    app: Flask, client: FlaskClient, as_role, count_queries
) -> None:
    admin = as_role("admin")
    with app.test_request_context("/"):
        lead = make_user(role="admin")
        first = make_user(role="agent")
        make_team("Crowd", lead, [lead, first])
        small = start(admin, rule="team_leads")
        reviews.decide(item_of(small, first), lead, "keep")
    few = _counts(client, count_queries, small)

    with app.test_request_context("/"):
        crowd = [make_user(role=role) for role in ("agent", "admin", "requester") * 4]
        make_team("More", lead, crowd)
        for _ in range(3):
            large = start(admin, rule="team_leads")
        for person in crowd[:5]:
            reviews.decide(item_of(large, person), lead, "keep")
        reviews.confirm(large, lead)
    many = _counts(client, count_queries, large)

    assert large.roster_count > 4 * small.roster_count
    assert many == few


def test_an_admin_cancels_a_review_without_evidence(client: FlaskClient, as_role) -> None:
    admin = as_role("admin")
    agent = make_user(role="agent")
    review = start(admin)
    _decide(client, review, item_of(review, agent), decision="keep")

    page = client.post(f"{URL}/{review.id}/cancel", follow_redirects=True)

    assert "The access review is cancelled" in page.text
    assert "Save decision" not in page.text and "Evidence (PDF)" not in page.text
    (cancelled,) = events("access_review.cancelled")
    assert cancelled.data["left_undone"] == 2
    assert _decide(client, review, item_of(review, agent), decision="keep").status_code == 409
    assert client.post(f"{URL}/{review.id}/cancel").status_code == 409
    assert client.get(f"{URL}/{review.id}/evidence.csv").status_code == 404
