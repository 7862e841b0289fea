"""Admins set up the change process: services, freeze periods and standard templates."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.audits.models import AuditEvent
from portal.changes.setup_models import FreezePeriod, Service, StandardTemplate
from portal.extensions import db
from portal.timeutil import utcnow
from tests.changes.helpers import make_freeze, make_service
from tests.conftest import csrf_token_from, row_counts
from tests.factories import make_user

PAGES = ("/changes/setup/services", "/changes/setup/freezes", "/changes/setup/templates")


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _last_event_id() -> int:
    return db.session.scalar(select(func.max(AuditEvent.id))) or 0


def _field_error(html: str, name: str) -> str | None:
    match = re.search(rf'<div class="invalid-feedback[^"]*" id="{name}-error">([^<]*)</div>', html)
    return match.group(1) if match else None


def _service(name: str) -> Service | None:
    return db.session.scalar(select(Service).where(Service.name == name))


def _template(name: str) -> StandardTemplate | None:
    return db.session.scalar(select(StandardTemplate).where(StandardTemplate.name == name))


def _template_data(*services: Service, **values: str) -> dict[str, object]:
    return {
        "name": "Rotate TLS certificate",
        "description": "The yearly certificate renewal.",
        "implementation_plan": "Install the new certificate and reload nginx.",
        "rollback_plan": "Restore the previous certificate.",
        "services": [str(s.id) for s in services],
        "impact": "1",
        "likelihood": "1",
        "is_active": "y",
        **values,
    }


# -- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["approver", "agent", "requester", "auditor"])
def test_only_admins_open_or_post_to_the_setup(client, as_role, role):
    as_role(role)
    freeze = make_freeze(utcnow() + timedelta(days=3), utcnow() + timedelta(days=4))
    service = make_service("Payments")
    for path in (
        *PAGES,
        f"/changes/setup/services/{service.id}",
        f"/changes/setup/freezes/{freeze.id}",
    ):
        assert client.get(path).status_code == 403, path
    before = row_counts()
    for path in (*PAGES, f"/changes/setup/freezes/{freeze.id}/delete"):
        assert client.post(path, data={"name": "X", "reason": "Y"}).status_code == 403, path
    db.session.expire_all()
    assert row_counts() == before


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_empty_pages_say_so(client, as_role):
    as_role("admin")
    for path, empty in zip(
        PAGES,
        ("No services yet.", "No freeze periods yet.", "No standard templates yet."),
        strict=True,
    ):
        page = client.get(path)
        assert page.status_code == 200 and empty in page.text, path
        # The tab of the page is the current one.
        assert 'aria-current="page"' in page.text


def test_missing_ids_are_404(client, as_role):
    as_role("admin")
    for path in (
        "/changes/setup/services/999999",
        "/changes/setup/freezes/999999",
        "/changes/setup/templates/999999",
    ):
        assert client.get(path).status_code == 404, path
        assert client.post(path, data={}).status_code == 404, path
    assert client.post("/changes/setup/freezes/999999/delete").status_code == 404


# -- services --------------------------------------------------------------------------------


def test_create_and_edit_a_service(client, as_role):
    as_role("admin")
    owner = make_user(role="agent", name="Olga Owner")
    created = client.post(
        "/changes/setup/services",
        data={"name": "  Web   shop ", "owner": str(owner.id), "description": "The storefront"},
    )
    assert created.status_code == 302
    service = _service("Web shop")
    assert service is not None and service.owner_id == owner.id and service.is_active
    assert _events("change_service.created")[0].target_id == str(service.id)

    listing = client.get("/changes/setup/services")
    assert listing.status_code == 200
    assert "Web shop" in listing.text and "Olga Owner" in listing.text
    assert "The storefront" in listing.text

    url = f"/changes/setup/services/{service.id}"
    page = client.get(url)
    assert page.status_code == 200
    assert f'<option selected value="{owner.id}">Olga Owner</option>' in page.text
    assert '<label class="form-label" for="owner">Owner</label>' in page.text

    heir = make_user(role="agent", name="Hugo Heir")
    saved = client.post(
        url, data={"name": "Online shop", "owner": str(heir.id), "description": ""}
    )  # no is_active: the box is unticked, the service retired
    assert saved.status_code == 302
    db.session.refresh(service)
    assert (service.name, service.owner_id, service.is_active) == ("Online shop", heir.id, False)
    [event] = _events("change_service.updated")
    assert event.data["before"]["is_active"] is True and event.data["after"]["is_active"] is False
    assert event.data["after"]["owner"] == heir.email
    assert "retired" in client.get("/changes/setup/services").text


def test_duplicate_service_name_is_422_at_the_field(client, as_role):
    as_role("admin")
    make_service("Payments")
    other = make_service("Search")
    owner = make_user(role="agent")
    before, first_new = row_counts(), _last_event_id() + 1

    dup = client.post("/changes/setup/services", data={"name": "payments", "owner": owner.id})
    assert dup.status_code == 422
    assert "exists already" in _field_error(dup.text, "name")
    rename = client.post(
        f"/changes/setup/services/{other.id}",
        data={"name": "PAYMENTS", "owner": owner.id, "is_active": "y"},
    )
    assert rename.status_code == 422 and "exists already" in _field_error(rename.text, "name")

    db.session.expire_all()
    assert row_counts() == before
    assert db.session.get(Service, other.id).name == "Search"
    assert not db.session.scalars(select(AuditEvent).where(AuditEvent.id >= first_new)).all()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "owner": "OWNER"}, "name", "Give it a name."),
        ({"name": "x" * 81, "owner": "OWNER"}, "name", "at most 80"),
        ({"name": "Mail", "owner": ""}, "owner", "Choose an active person"),
        ({"name": "Mail", "owner": "999999"}, "owner", "Not a valid choice"),
        ({"name": "Mail", "owner": "INACTIVE"}, "owner", "Not a valid choice"),
        ({"name": "Mail\x00", "owner": "OWNER"}, "name", "not allowed"),
    ],
)
def test_bad_service_input_is_422_and_writes_nothing(client, as_role, data, field, message):
    as_role("admin")
    owner = make_user(role="agent")
    gone = make_user(role="agent", is_active=False)
    ids = {"OWNER": str(owner.id), "INACTIVE": str(gone.id)}
    data = {k: ids.get(v, v) for k, v in data.items()}
    before = row_counts()
    response = client.post("/changes/setup/services", data=data)
    assert response.status_code == 422
    assert message in (_field_error(response.text, field) or "")
    db.session.expire_all()
    assert row_counts() == before


def test_a_deactivated_owner_must_be_replaced(client, as_role):
    as_role("admin")
    owner = make_user(role="agent", name="Departed Dana")
    service = make_service("Billing", owner)
    owner.is_active = False
    db.session.commit()
    page = client.get(f"/changes/setup/services/{service.id}")
    assert page.status_code == 200 and "is deactivated: choose a new owner" in page.text
    unchanged = client.post(
        f"/changes/setup/services/{service.id}",
        data={"name": "Billing", "owner": str(owner.id), "is_active": "y"},
    )
    assert unchanged.status_code == 422 and _field_error(unchanged.text, "owner")


# -- freeze periods --------------------------------------------------------------------------


def test_freeze_typed_in_berlin_time_is_stored_in_utc_and_shown_back(client, as_role):
    admin = as_role("admin", timezone="Europe/Berlin", name="Berta Admin")
    response = client.post(
        "/changes/setup/freezes",
        data={
            "starts_at": "2030-12-23T18:00",  # winter: UTC+1
            "ends_at": "2031-01-02T08:00",
            "reason": "Year-end trading",
        },
    )
    assert response.status_code == 302
    freeze = db.session.scalar(
        select(FreezePeriod).where(FreezePeriod.reason == "Year-end trading")
    )
    assert freeze is not None
    assert (freeze.starts_at, freeze.ends_at) == (
        datetime(2030, 12, 23, 17),
        datetime(2031, 1, 2, 7),
    )
    assert freeze.created_by_id == admin.id
    [event] = _events("freeze.created")
    assert event.target_id == str(freeze.id) and event.data["after"]["reason"] == "Year-end trading"

    listing = client.get("/changes/setup/freezes")
    assert listing.status_code == 200
    assert "2030-12-23 18:00" in listing.text and "2031-01-02 08:00" in listing.text
    assert "Europe/Berlin" in listing.text and "Berta Admin" in listing.text

    # Summer time (UTC+2) on the edit page, read back in local time as well.
    url = f"/changes/setup/freezes/{freeze.id}"
    edited = client.post(
        url,
        data={
            "starts_at": "2030-07-01T22:00",
            "ends_at": "2030-07-02T06:00",
            "reason": "Migration",
        },
    )
    assert edited.status_code == 302
    db.session.refresh(freeze)
    assert (freeze.starts_at, freeze.ends_at) == (datetime(2030, 7, 1, 20), datetime(2030, 7, 2, 4))
    [updated] = _events("freeze.updated")
    assert updated.data["after"]["reason"] == "Migration"
    page = client.get(url)
    assert 'value="2030-07-01T22:00"' in page.text and 'value="2030-07-02T06:00"' in page.text
    assert 'type="datetime-local"' in page.text


def test_freezes_list_upcoming_first_then_past(client, as_role):
    as_role("admin")
    now = utcnow()
    past = make_freeze(now - timedelta(days=30), now - timedelta(days=29), "Old audit")
    current = make_freeze(now - timedelta(hours=1), now + timedelta(hours=5), "Datacentre move")
    later = make_freeze(now + timedelta(days=9), now + timedelta(days=10), "Black Friday")
    html = client.get("/changes/setup/freezes").text
    assert html.index(current.reason) < html.index(later.reason) < html.index(past.reason)
    assert html.index("Current and upcoming") < html.index(current.reason)
    assert html.index(later.reason) < html.index(">Past<")
    assert "in force" in html


def test_delete_a_freeze(client, as_role):
    as_role("admin")
    freeze = make_freeze(utcnow() + timedelta(days=3), utcnow() + timedelta(days=4), "Sale")
    page = client.get("/changes/setup/freezes")
    action = f'action="/changes/setup/freezes/{freeze.id}/delete"'
    assert action in page.text
    form = re.search(rf"<form [^>]*{re.escape(action)}[^>]*>", page.text).group(0)
    assert 'data-confirm="Delete the freeze “Sale”?"' in form
    assert 'method="post"' in form
    freeze_id = freeze.id
    assert client.post(f"/changes/setup/freezes/{freeze_id}/delete").status_code == 302
    db.session.expire_all()
    assert db.session.get(FreezePeriod, freeze_id) is None
    [event] = _events("freeze.deleted")
    assert event.target_id == str(freeze_id) and event.data["before"]["reason"] == "Sale"
    assert "No freeze periods yet." in client.get("/changes/setup/freezes").text
    assert client.get(f"/changes/setup/freezes/{freeze_id}").status_code == 404


VALID_FREEZE = {"starts_at": "2030-06-01T09:00", "ends_at": "2030-06-02T09:00", "reason": "Audit"}


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"ends_at": "2030-06-01T08:00"}, "ends_at", "must end after it starts"),
        ({"ends_at": "2030-06-01T09:00"}, "ends_at", "must end after it starts"),
        ({"reason": ""}, "reason", "Say why changes are frozen."),
        ({"reason": "   "}, "reason", "Say why changes are frozen."),
        ({"reason": "x" * 501}, "reason", "at most 500"),
        ({"starts_at": ""}, "starts_at", "Give the date and time the freeze starts."),
        ({"ends_at": "tomorrow"}, "ends_at", "Give a date and a time"),
        ({"starts_at": "9" * 25}, "starts_at", "Give a date and a time"),
        # Converting these to UTC would leave the years datetime can hold.
        ({"starts_at": "0001-01-01T00:00"}, "starts_at", "Give a date between"),
        ({"ends_at": "9999-12-31T23:59"}, "ends_at", "Give a date between"),
        # Berlin skips 02:00–03:00 on the last Sunday of March.
        ({"starts_at": "2030-03-31T02:30"}, "starts_at", "does not exist in Europe/Berlin"),
    ],
)
def test_bad_freeze_input_is_422_and_writes_nothing(client, as_role, values, field, message):
    as_role("admin", timezone="Europe/Berlin")
    freeze = make_freeze(datetime(2030, 1, 1), datetime(2030, 1, 2), "Kept as it is")
    before = row_counts()
    for url in ("/changes/setup/freezes", f"/changes/setup/freezes/{freeze.id}"):
        response = client.post(url, data={**VALID_FREEZE, **values})
        assert response.status_code == 422, url
        assert message in (_field_error(response.text, field) or ""), url
    db.session.expire_all()
    assert row_counts() == before
    assert db.session.get(FreezePeriod, freeze.id).reason == "Kept as it is"


def test_freeze_times_follow_the_portal_zone_when_the_user_has_none(client, as_role, settings):
    settings(TIMEZONE="America/New_York")
    as_role("admin", timezone="")
    assert client.post("/changes/setup/freezes", data=VALID_FREEZE).status_code == 302
    freeze = db.session.scalar(select(FreezePeriod).where(FreezePeriod.reason == "Audit"))
    assert freeze.starts_at == datetime(2030, 6, 1, 13)  # EDT, UTC-4


# -- standard templates ----------------------------------------------------------------------


def test_create_and_edit_a_standard_template(client, as_role):
    as_role("admin")
    web, db_service = make_service("Web shop"), make_service("Database")
    retired = make_service("Legacy CRM")
    retired.is_active = False
    db.session.commit()
    form_page = client.get("/changes/setup/templates")
    assert "Legacy CRM" not in form_page.text  # retired: not offered to new templates
    assert '<label class="form-label" for="services">Services</label>' in form_page.text

    created = client.post(
        "/changes/setup/templates",
        data=_template_data(web, db_service, impact="2", likelihood="3"),
    )
    assert created.status_code == 302
    template = _template("Rotate TLS certificate")
    assert template is not None
    assert [s.name for s in template.services] == ["Database", "Web shop"]
    assert (template.impact, template.likelihood, template.is_active) == (2, 3, True)
    [event] = _events("standard_template.created")
    assert event.data["after"]["services"] == ["Database", "Web shop"]

    listing = client.get("/changes/setup/templates")
    assert "Rotate TLS certificate" in listing.text and "Database, Web shop" in listing.text
    assert "high" in listing.text

    url = f"/changes/setup/templates/{template.id}"
    page = client.get(url)
    assert page.status_code == 200 and "Install the new certificate" in page.text
    data = _template_data(web, name="Renew TLS certificate", impact="1")
    del data["is_active"]
    assert client.post(url, data=data).status_code == 302
    db.session.refresh(template)
    assert template.name == "Renew TLS certificate" and not template.is_active
    assert [s.name for s in template.services] == ["Web shop"]
    [updated] = _events("standard_template.updated")
    assert updated.data["before"]["services"] == ["Database", "Web shop"]
    assert updated.data["after"]["is_active"] is False


def test_a_retired_service_stays_on_a_template_when_it_is_saved(client, as_role):
    as_role("admin")
    web = make_service("Web shop")
    assert client.post("/changes/setup/templates", data=_template_data(web)).status_code == 302
    template = _template("Rotate TLS certificate")
    web.is_active = False
    db.session.commit()
    url = f"/changes/setup/templates/{template.id}"
    assert "Web shop (retired)" in client.get(url).text
    assert client.post(url, data=_template_data(web)).status_code == 302
    db.session.refresh(template)
    assert [s.id for s in template.services] == [web.id]


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"name": ""}, "name", "Give it a name."),
        ({"name": "rotate tls CERTIFICATE"}, "name", "exists already"),
        ({"implementation_plan": " "}, "implementation_plan", "implementation plan"),
        ({"rollback_plan": ""}, "rollback_plan", "needs its rollback plan"),
        ({"services": []}, "services", "Choose at least one service."),
        ({"services": ["999999"]}, "services", "Choose services from the list."),
        ({"impact": "4"}, "impact", "Rate it from 1 (low) to 3 (high)."),
        ({"impact": "0"}, "impact", "Rate it from 1 (low) to 3 (high)."),
        ({"impact": ""}, "impact", "Rate it from 1 (low) to 3 (high)."),
        ({"likelihood": "high"}, "likelihood", "Rate it from 1 (low) to 3 (high)."),
        ({"likelihood": "9" * 25}, "likelihood", "Rate it from 1 (low) to 3 (high)."),
        ({"description": "x" * 2001}, "description", "at most 2000"),
    ],
)
def test_bad_template_input_is_422_and_writes_nothing(client, as_role, values, field, message):
    as_role("admin")
    web = make_service("Web shop")
    for name in ("Rotate TLS certificate", "Restart the cache"):
        data = _template_data(web, name=name)
        assert client.post("/changes/setup/templates", data=data).status_code == 302
    edited = _template("Restart the cache")
    before, first_new = row_counts(), _last_event_id() + 1
    for url, name in (
        ("/changes/setup/templates", "Purge the CDN"),
        (f"/changes/setup/templates/{edited.id}", "Restart the cache"),
    ):
        response = client.post(url, data={**_template_data(web, name=name), **values})
        assert response.status_code == 422, url
        assert message in (_field_error(response.text, field) or ""), url
    db.session.expire_all()
    assert row_counts() == before
    assert not db.session.scalars(select(AuditEvent).where(AuditEvent.id >= first_new)).all()
    assert db.session.get(StandardTemplate, edited.id).name == "Restart the cache"


def test_template_list_runs_a_fixed_number_of_queries(client, as_role, count_queries):
    as_role("admin")
    services = [make_service(f"Service {n}") for n in range(3)]
    client.post("/changes/setup/templates", data=_template_data(*services, name="First"))
    client.get("/changes/setup/templates")  # the session's first-request work, out of the count
    with count_queries() as few:
        assert client.get("/changes/setup/templates").status_code == 200
    for n in range(4):
        data = _template_data(*services, name=f"Template {n}")
        assert client.post("/changes/setup/templates", data=data).status_code == 302
    with count_queries() as many:
        assert client.get("/changes/setup/templates").status_code == 200
    assert many.count == few.count


# -- CSRF ------------------------------------------------------------------------------------


def test_posts_without_the_csrf_token_are_refused(client, as_role, csrf):
    as_role("admin")
    owner = make_user(role="agent")
    freeze = make_freeze(utcnow() + timedelta(days=3), utcnow() + timedelta(days=4))
    for path, data in (
        ("/changes/setup/services", {"name": "Mail", "owner": str(owner.id)}),
        ("/changes/setup/freezes", VALID_FREEZE),
        (f"/changes/setup/freezes/{freeze.id}", VALID_FREEZE),
        (f"/changes/setup/freezes/{freeze.id}/delete", {}),
        ("/changes/setup/templates", _template_data(make_service("Mail"))),
    ):
        before = row_counts()
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "The form expired" in response.text
        db.session.expire_all()
        assert row_counts() == before, path

    token = csrf_token_from(client.get("/changes/setup/freezes").text)
    response = client.post(f"/changes/setup/freezes/{freeze.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert _events("freeze.deleted")
