"""The route map: every route declares its access, and every role meets it.

Walks `app.url_map` (all but `static`) so a new route is covered the moment it
is registered: it must carry an `access` marker (portal/security.py), it must
answer each role and a signed-out visitor as that marker and ROLE_PERMISSIONS
say, never with a 500, and every state-changing method must refuse a request
without a CSRF token before writing anything.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.routing import Rule

from portal import create_app, security
from portal.audits import blocks as ip_blocks
from portal.audits import reviews as access_reviews
from portal.audits.models import VerificationRun
from portal.audits.review_models import AccessReviewItem
from portal.changes import pdf as change_pdf
from portal.changes import services as change_services
from portal.changes.setup_models import FreezePeriod, Service, StandardTemplate
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.reports import services as export_services
from portal.security import PUBLIC, SIGNED_IN, Permission, Role
from portal.tickets import services as ticket_services
from portal.tickets.attachments import add_attachment
from portal.tickets.extra_models import SavedView
from portal.tickets.setup_models import (
    Category,
    Holiday,
    RoutingRule,
    SlaCalendar,
    SlaPolicy,
    Team,
)
from portal.timeutil import utcnow
from portal.users import auth, links, services
from portal.users.models import PasswordReset, User
from tests.conftest import csrf_token_from, row_counts, settings_for_tests
from tests.factories import make_user, sign_in_client

ROLES = [r.value for r in Role]
ANONYMOUS = "anonymous"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# HEAD and OPTIONS are answered by Flask itself from GET / the rule's methods.
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}


def _rules() -> list[Rule]:
    """The routes, read at collection time from an app built like the test app.

    Building an app opens no database connection; the session `app` fixture is
    still the one that answers, and test_collected_routes_match_the_app checks
    that both have the same routes.
    """
    app = create_app(settings_for_tests())
    rules = [r for r in app.url_map.iter_rules() if r.endpoint != "static"]
    return sorted(rules, key=lambda r: (r.rule, r.endpoint))


RULES = _rules()


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - AUTOMATIC_METHODS)


def _route_id(rule: Rule, method: str | None = None) -> str:
    return f"{method} {rule.rule}" if method else f"{rule.rule} ({rule.endpoint})"


ROUTE_CASES = [
    pytest.param(rule.endpoint, method, who, id=f"{_route_id(rule, method)} as {who}")
    for rule in RULES
    for method in _methods(rule)
    for who in [*ROLES, ANONYMOUS]
]
WRITE_CASES = [
    pytest.param(rule.endpoint, method, id=_route_id(rule, method))
    for rule in RULES
    for method in _methods(rule)
    if method in WRITE_METHODS
]


def _rule(app: Flask, endpoint: str) -> Rule:
    return next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)


# -- the objects URL parameters name ---------------------------------------------------------


@dataclass
class World:
    """Real rows for every kind of id a URL can carry."""

    target_id: int
    target_session_id: int
    invitation_id: int
    invite_token: str
    message_id: int
    reset_token: str
    ticket_id: int
    attachment_id: int
    team_id: int
    category_id: int
    rule_id: int
    policy_id: int
    calendar_id: int
    holiday_id: int
    view_id: int
    change_id: int
    service_id: int
    freeze_id: int
    template_id: int
    record_id: int
    export_id: int
    own_session_id: int | None = None
    review_id: int | None = None
    review_item_id: int | None = None
    block_id: int | None = None
    verification_run_id: int | None = None

    def url(self, app: Flask, endpoint: str) -> str:
        params: dict[str, object] = {
            "user_id": self.target_id,
            "invitation_id": self.invitation_id,
            "message_id": self.message_id,
            "session_id": self.target_session_id,
            "token": self.invite_token,
            "ticket_id": self.ticket_id,
            "attachment_id": self.attachment_id,
            "team_id": self.team_id,
            "category_id": self.category_id,
            "rule_id": self.rule_id,
            "policy_id": self.policy_id,
            "calendar_id": self.calendar_id,
            "holiday_id": self.holiday_id,
            "view_id": self.view_id,
            "change_id": self.change_id,
            "service_id": self.service_id,
            "freeze_id": self.freeze_id,
            "template_id": self.template_id,
            "record_id": self.record_id,
            "export_id": self.export_id,
            "direction": "down",
            "name": "my_tickets",
            "subscription_id": 1,
            "item_id": 1,
            "event_id": 1,  # every world records events, the first among them
            "review_id": self.review_id,
            "review_item_id": self.review_item_id,
            "run_id": self.verification_run_id,
            "block_id": self.block_id,
            "alert_id": 1,  # none is raised: an admin's acknowledgement finds nothing (404)
            # No scheduled audit has run in the world: runs and findings are not found (404).
            "check_run_id": 1,
            "finding_id": 1,
        }
        if endpoint == "users.end_my_session" and self.own_session_id is not None:
            params["session_id"] = self.own_session_id  # one's own (second) session
        if endpoint == "users.reset_password":
            params["token"] = self.reset_token
        arguments = _rule(app, endpoint).arguments
        with app.test_request_context("/"):
            return url_for(endpoint, **{k: v for k, v in params.items() if k in arguments})


def build_world(app: Flask) -> World:
    with app.test_request_context("/"):
        inviter = make_user(role="admin", name="Inviting Admin")
        # Locked, so that "unlock" has something to do.
        target = make_user(
            role="requester",
            name="Target Person",
            locked_until=utcnow() + timedelta(days=365),
        )
        auth._open_session(target, "10.0.0.9", "target-browser")
        db.session.commit()
        target_session = auth.open_sessions(target)[0]
        invitation = services.invite("invitee@example.com", "agent", inviter)
        message_id = db.session.scalar(select(func.max(OutboxMessage.id)))
        reset = PasswordReset(
            user_id=target.id,
            nonce=links.new_nonce(),
            expires_at=utcnow() + timedelta(days=365),
        )
        db.session.add(reset)
        db.session.commit()
        ticket = ticket_services.create_ticket(target, "Printer jams", "Every page")
        upload = FileStorage(io.BytesIO(b"paper tray log"), "tray.log", content_type="text/plain")
        attachment = add_attachment(ticket, target, upload)
        calendar = db.session.scalar(select(SlaCalendar).order_by(SlaCalendar.id))
        holiday = Holiday(calendar_id=calendar.id, day=utcnow().date(), name="Founders' day")
        db.session.add(holiday)
        # Someone else's saved view: every role that may open the list gets 404 deleting it.
        view = SavedView(user_id=target.id, name="Open", query="status=open")
        db.session.add(view)
        db.session.commit()
        # Another requester's draft, ready to submit: only admins work it; a requester
        # role sees it as someone else's (403).
        shop = Service(name="Web shop", owner_id=inviter.id)
        db.session.add(shop)
        db.session.commit()
        change = change_services.create_change(
            target,
            "Renew the TLS certificate",
            justification="It expires on Friday.",
            implementation_plan="Install it.",
            rollback_plan="Restore the old one.",
            services=[shop],
        )
        freeze = FreezePeriod(
            starts_at=utcnow() + timedelta(days=300),
            ends_at=utcnow() + timedelta(days=301),
            reason="Year-end trading",
            created_by_id=inviter.id,
        )
        template = StandardTemplate(name="Restart the cache", created_by_id=inviter.id)
        db.session.add_all([freeze, template])
        db.session.commit()
        record = change_pdf.request_pdf(change, target)
        # The benchmarking range (RFC 2544): no request of any test comes from it.
        block = ip_blocks.add_block(
            "198.18.0.0/15", "Route map", utcnow() + timedelta(days=1), inviter, None
        )
        export = export_services.request_export("tickets", {}, target)
        # Queued, never run: starting another one shows this one instead.
        verification = VerificationRun(problems=[])
        db.session.add(verification)
        db.session.commit()
        # An open access review of everyone, decided by the admins: the target's item.
        review = access_reviews.start_campaign(inviter, scope="all", reviewer_rule="admins")
        review_item_id = db.session.scalar(
            select(AccessReviewItem.id).where(
                AccessReviewItem.review_id == review.id, AccessReviewItem.user_id == target.id
            )
        )
        assert message_id is not None
        return World(
            target_id=target.id,
            target_session_id=target_session.id,
            invitation_id=invitation.id,
            invite_token=links.make_token("invite", invitation.id, invitation.nonce),
            message_id=message_id,
            reset_token=links.make_token("reset", reset.id, reset.nonce),
            ticket_id=ticket.id,
            attachment_id=attachment.id,
            team_id=db.session.scalar(select(Team.id).order_by(Team.id)),
            category_id=db.session.scalar(select(Category.id).order_by(Category.id)),
            rule_id=db.session.scalar(select(RoutingRule.id).order_by(RoutingRule.position)),
            policy_id=db.session.scalar(select(SlaPolicy.id).order_by(SlaPolicy.id)),
            calendar_id=calendar.id,
            holiday_id=holiday.id,
            view_id=view.id,
            change_id=change.id,
            service_id=shop.id,
            freeze_id=freeze.id,
            template_id=template.id,
            record_id=record.id,
            export_id=export.id,
            review_id=review.id,
            review_item_id=review_item_id,
            block_id=block.id,
            verification_run_id=verification.id,
        )


@pytest.fixture
def world(app: Flask, settings, tmp_path) -> Iterator[World]:  # type: ignore[no-untyped-def]
    settings(STORAGE_DIR=str(tmp_path / "storage"))  # files outlive the rolled-back rows
    # Self-service reset on, so /password/* run their code instead of answering 404.
    settings(SELF_SERVICE_RESET=True)
    yield build_world(app)


def _second_session(app: Flask, user: User) -> int:
    with app.test_request_context("/"):
        auth._open_session(user, "10.0.0.8", "another-browser")
        db.session.commit()
        return max(s.id for s in auth.open_sessions(user))


# -- every route declares its access ---------------------------------------------------------


def test_collected_routes_match_the_app(app: Flask) -> None:
    live = {
        (r.endpoint, r.rule, frozenset(r.methods or ()))
        for r in app.url_map.iter_rules()
        if r.endpoint != "static"
    }
    collected = {(r.endpoint, r.rule, frozenset(r.methods or ())) for r in RULES}
    assert live == collected


@pytest.mark.parametrize("endpoint", [pytest.param(r.endpoint, id=_route_id(r)) for r in RULES])
def test_route_declares_its_access(app: Flask, endpoint: str) -> None:
    view = app.view_functions[endpoint]
    access = getattr(view, "access", None)
    assert access is not None, (
        f"{endpoint} ({_rule(app, endpoint).rule}) has no access marker: decorate it with "
        "public, login_required or permission_required(...)"
    )
    assert access in (PUBLIC, SIGNED_IN) or isinstance(access, Permission), (
        f"{endpoint}: unknown access marker {access!r}"
    )


# The access each route is meant to have. The role walk below checks that a route
# behaves as its marker says; this pins the marker itself, so that opening a route up
# (permission_required -> login_required -> public) shows as a change to this table.
MANAGE = Permission.USERS_MANAGE
INTENDED_ACCESS: dict[str, str | Permission] = {
    "ops.api_health": PUBLIC,
    "ops.api_version": PUBLIC,
    "users.login": PUBLIC,
    "users.logout": PUBLIC,
    "users.accept_invitation": PUBLIC,
    "users.forgot_password": PUBLIC,
    "users.reset_password": PUBLIC,
    "ops.home": SIGNED_IN,
    "users.change_password": SIGNED_IN,
    "users.my_sessions": SIGNED_IN,
    "users.end_my_session": SIGNED_IN,
    "users.end_my_other_sessions": SIGNED_IN,
    "ops.outbox": MANAGE,
    "ops.outbox_message": MANAGE,
    "users.user_list": MANAGE,
    "users.user_detail": MANAGE,
    "users.change_role": MANAGE,
    "users.deactivate_user": MANAGE,
    "users.reactivate_user": MANAGE,
    "users.unlock_user": MANAGE,
    "users.reset_user_password": MANAGE,
    "users.end_user_session": MANAGE,
    "users.end_all_user_sessions": MANAGE,
    "users.end_everyone_else": MANAGE,
    "users.invitations": MANAGE,
    "users.revoke_invitation": MANAGE,
    "users.resend_invitation": MANAGE,
    "tickets.index": Permission.TICKETS_READ,
    "tickets.new": Permission.TICKETS_CREATE,
    "tickets.detail": Permission.TICKETS_READ,
    "tickets.reply": Permission.TICKETS_READ,
    "tickets.change_status": Permission.TICKETS_WORK,
    "tickets.assign": Permission.TICKETS_WORK,
    "tickets.update_fields": Permission.TICKETS_WORK,
    "tickets.escalate": Permission.TICKETS_WORK,
    "tickets.upload_attachment": Permission.TICKETS_READ,
    "tickets.download_attachment": Permission.TICKETS_READ,
    "tickets.save_view": Permission.TICKETS_READ,
    "tickets.delete_view": Permission.TICKETS_READ,
    "tickets.bulk_update": Permission.TICKETS_WORK,
    "tickets.save_review": Permission.TICKETS_WORK,
    "tickets.add_action_item": Permission.TICKETS_WORK,
    "tickets.complete_action_item": Permission.TICKETS_WORK,
    "tickets.action_item_to_ticket": Permission.TICKETS_WORK,
    # Reading changes: every role, narrowed by changes/access.py (requesters: their own).
    "changes.index": SIGNED_IN,
    "changes.detail": SIGNED_IN,
    "changes.new": Permission.CHANGES_CREATE,
    "changes.edit": Permission.CHANGES_CREATE,
    "changes.submit": Permission.CHANGES_CREATE,
    "changes.resubmit": Permission.CHANGES_CREATE,
    "changes.schedule": Permission.CHANGES_CREATE,
    "changes.start_implementing": Permission.CHANGES_CREATE,
    "changes.start_validating": Permission.CHANGES_CREATE,
    "changes.complete": Permission.CHANGES_CREATE,
    "changes.fail": Permission.CHANGES_CREATE,
    "changes.close": Permission.CHANGES_CREATE,
    "changes.link_ticket": Permission.CHANGES_CREATE,
    "changes.unlink_ticket": Permission.CHANGES_CREATE,
    "changes.inbox": Permission.CHANGES_APPROVE,
    "changes.vote": Permission.CHANGES_APPROVE,
    "changes.inbox_vote": Permission.CHANGES_APPROVE,
    "changes.review": Permission.CHANGES_APPROVE,
    "changes.calendar": SIGNED_IN,
    "changes.request_pdf": SIGNED_IN,
    "changes.pdf_status": SIGNED_IN,
    "changes.download_pdf": SIGNED_IN,
    # Exports: whoever may read a list may export it (reports/sources.py decides per list);
    # an export itself is its owner's, or an admin's, else not found (reports/views.py).
    "reports.my_exports": SIGNED_IN,
    "reports.start_export": SIGNED_IN,
    "reports.export_status": SIGNED_IN,
    "reports.cancel_export": SIGNED_IN,
    "reports.retry_export": SIGNED_IN,
    "reports.download_export": SIGNED_IN,
    # The home page's panels: each panel names who sees it (reports/dashboard.py).
    "reports.panel": SIGNED_IN,
    "reports.subscribe": Permission.REPORTS_RUN,
    "reports.end_subscription": SIGNED_IN,
    # The email's unsubscribe link: the token is the credential (a page, then a POST).
    "reports.unsubscribe": PUBLIC,
    "reports.service_desk": Permission.REPORTS_RUN,
    "reports.service_desk_csv": Permission.REPORTS_RUN,
    "reports.incidents": Permission.REPORTS_RUN,
    "reports.incidents_csv": Permission.REPORTS_RUN,
    "reports.changes": Permission.REPORTS_RUN,
    "reports.changes_csv": Permission.REPORTS_RUN,
    "reports.monthly": Permission.REPORTS_RUN,
    "reports.request_monthly": Permission.REPORTS_RUN,
    "audits.index": Permission.AUDITS_READ,
    "audits.detail": Permission.AUDITS_READ,
    # Access reviews: admins start and complete, admins and auditors read the evidence;
    # the assigned reviewer (an admin or a team lead of any role) sees and decides their
    # items, so those routes ask only for a sign-in and check the item (403 otherwise).
    "audits.access_reviews": SIGNED_IN,
    "audits.start_access_review": MANAGE,
    "audits.access_review": SIGNED_IN,
    "audits.decide_access_item": SIGNED_IN,
    "audits.confirm_access_review": SIGNED_IN,
    "audits.complete_access_review": MANAGE,
    "audits.cancel_access_review": MANAGE,
    "audits.access_review_pdf": Permission.AUDITS_READ,
    "audits.access_review_csv": Permission.AUDITS_READ,
    "audits.verify_page": Permission.AUDITS_READ,
    "audits.start_verification": Permission.AUDITS_READ,
    "audits.verification_run": Permission.AUDITS_READ,
    # Retention: auditors read the policies and what would go; admins edit them.
    "audits.retention": Permission.AUDITS_READ,
    "audits.update_retention_policy": MANAGE,
    # Containment: blocked addresses and compromised accounts are admins' (users:manage).
    "audits.blocks_list": MANAGE,
    "audits.lift_block": MANAGE,
    "users.compromise": MANAGE,
    "audits.security": Permission.AUDITS_READ,
    # Acknowledging a security alert is an admin's: USERS_MANAGE is theirs alone.
    "audits.acknowledge_alert": MANAGE,
    # Scheduled audits: reading runs and acting on findings is audit work (audits:read);
    # filing a finding as a ticket also needs tickets:create, so admins only (below).
    **{
        f"audits.{name}": Permission.AUDITS_READ
        for name in (
            "check_runs",
            "check_run_detail",
            "check_run_pdf",
            "finding_detail",
            "acknowledge_finding",
            "accept_finding",
            "finding_to_ticket",
        )
    },
    **{
        f"change_admin.{name}": Permission.SETTINGS_MANAGE
        for name in (
            "services",
            "service",
            "freezes",
            "freeze",
            "delete_freeze",
            "templates",
            "template",
        )
    },
    **{
        f"desk_admin.{name}": Permission.SETTINGS_MANAGE
        for name in (
            "teams",
            "team",
            "add_member",
            "remove_member",
            "categories",
            "category",
            "routing",
            "rule",
            "move_rule",
            "sla_settings",
            "update_policy",
            "update_calendar",
            "add_holiday",
            "remove_holiday",
        )
    },
}

# Object-level refusals on top of the route's permission: the world's ticket was filed
# by another requester, so a requester sees it as someone else's (403); and only the
# ticket's requester and agents may reply, so approvers and auditors are refused too.
ALSO_REFUSED: dict[str, set[str]] = {
    "tickets.detail": {"requester"},
    "tickets.reply": {"requester", "approver", "auditor"},
    "tickets.upload_attachment": {"requester", "approver", "auditor"},
    "tickets.download_attachment": {"requester"},
    # The world's change is another requester's: a requester role cannot see it, and
    # only its requester (or an admin) edits and submits it, only those involved (or an
    # admin) schedule and carry it out.
    "changes.detail": {"requester"},
    "changes.request_pdf": {"requester"},
    "changes.pdf_status": {"requester"},
    "changes.download_pdf": {"requester"},
    # The world's export is another requester's: an admin may see and download it, but
    # only its owner may run it again.
    "reports.retry_export": {"admin"},
    # The world's panel is an agent's own tickets: roles that work no tickets get 403.
    "reports.panel": {"requester", "approver", "auditor"},
    # The world's access review is the admins' to decide: other roles review nothing in
    # it (auditors see it all, but decide nothing).
    "audits.access_review": {"requester", "approver", "agent"},
    "audits.confirm_access_review": {"requester", "approver", "agent"},
    "audits.decide_access_item": {"requester", "approver", "agent", "auditor"},
    # An auditor reads tickets but files none: refused before the finding is looked up.
    "audits.finding_to_ticket": {"auditor"},
    **{
        f"changes.{name}": {"requester", "approver", "agent"}
        for name in (
            "edit",
            "submit",
            "resubmit",
            "schedule",
            "start_implementing",
            "start_validating",
            "complete",
            "fail",
            "close",
            "link_ticket",
            "unlink_ticket",
        )
    },
}


@pytest.mark.parametrize("endpoint", [pytest.param(r.endpoint, id=_route_id(r)) for r in RULES])
def test_route_access_is_the_intended_one(app: Flask, endpoint: str) -> None:
    assert endpoint in INTENDED_ACCESS, (
        f"{endpoint} ({_rule(app, endpoint).rule}) is new: add it to INTENDED_ACCESS "
        "with the access it is meant to have"
    )
    access = getattr(app.view_functions[endpoint], "access", None)
    assert access == INTENDED_ACCESS[endpoint], (
        f"{endpoint} declares {access!r}, meant to be {INTENDED_ACCESS[endpoint]!r}"
    )


def test_intended_access_names_no_missing_route() -> None:
    assert set(INTENDED_ACCESS) <= {r.endpoint for r in RULES}


# -- every route answers every role as the permission table says ----------------------------


def _request(client: FlaskClient, method: str, url: str, **kwargs):  # type: ignore[no-untyped-def]
    return client.open(url, method=method, data={} if method in WRITE_METHODS else None, **kwargs)


@pytest.mark.parametrize(("endpoint", "method", "who"), ROUTE_CASES)
def test_route_answers_role_as_declared(
    app: Flask, client: FlaskClient, as_role, world: World, endpoint: str, method: str, who: str
) -> None:
    if who != ANONYMOUS:
        user = as_role(who)
        world.own_session_id = _second_session(app, user)
    url = world.url(app, endpoint)
    access = app.view_functions[endpoint].access  # type: ignore[attr-defined]
    response = _request(client, method, url)
    status = response.status_code
    label = f"{method} {url} as {who} (access: {access})"

    assert status < 500, f"{label}: {status}"
    if who == ANONYMOUS:
        if access == PUBLIC:
            assert status not in (401, 403), f"{label}: a public route answered {status}"
        elif url.startswith("/api/"):
            assert status == 401, f"{label}: expected 401, got {status}"
        else:
            assert status == 302, f"{label}: expected a redirect to sign in, got {status}"
            assert urlsplit(response.headers["Location"]).path == "/login", label
    elif who in ALSO_REFUSED.get(endpoint, set()):
        assert status == 403, f"{label}: refused at the object level, got {status}"
    elif access in (PUBLIC, SIGNED_IN):
        assert status not in (401, 403), f"{label}: open to every role, got {status}"
    elif security.role_has(who, access):
        assert status not in (401, 403), f"{label}: the role holds {access}, got {status}"
    else:
        assert status == 403, f"{label}: the role lacks {access}, got {status}"


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param(r.endpoint, id=_route_id(r, "GET"))
        for r in RULES
        if "GET" in (r.methods or ()) and not r.rule.startswith("/api/")
    ],
)
def test_htmx_request_when_signed_out_gets_401_with_redirect(
    app: Flask, client: FlaskClient, world: World, endpoint: str
) -> None:
    """htmx cannot follow a 302 into a fragment: it gets 401 and HX-Redirect to sign in."""
    access = app.view_functions[endpoint].access  # type: ignore[attr-defined]
    response = client.get(world.url(app, endpoint), headers={"HX-Request": "true"})
    assert response.status_code < 500
    if access == PUBLIC:
        assert response.status_code not in (401, 403)
    else:
        assert response.status_code == 401
        assert urlsplit(response.headers["HX-Redirect"]).path == "/login"


@pytest.mark.parametrize("endpoint", ["users.forgot_password", "users.reset_password"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_self_service_routes_are_absent_when_switched_off(
    app: Flask, client: FlaskClient, settings, endpoint: str, method: str
) -> None:  # type: ignore[no-untyped-def]
    world = build_world(app)
    settings(SELF_SERVICE_RESET=False)
    before = row_counts()
    response = _request(client, method, world.url(app, endpoint))
    assert response.status_code == 404
    assert row_counts() == before


@pytest.mark.parametrize("endpoint", ["users.accept_invitation", "users.reset_password"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bogus_link_token_is_410(
    app: Flask, client: FlaskClient, world: World, endpoint: str, method: str
) -> None:
    with app.test_request_context("/"):
        url = url_for(endpoint, token="not-a-real-token")
    before = row_counts()
    response = _request(client, method, url)
    assert response.status_code == 410
    assert row_counts() == before


# -- CSRF: no token, no change ---------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "method"), WRITE_CASES)
def test_write_without_csrf_token_is_400_and_writes_nothing(
    app: Flask, client: FlaskClient, as_role, world: World, csrf: None, endpoint: str, method: str
) -> None:
    admin = as_role("admin")
    world.own_session_id = _second_session(app, admin)
    url = world.url(app, endpoint)
    # A body that would be acted on if the token were not checked.
    data = {
        "role": "agent",
        "email": "csrf-victim@example.com",
        "name": "Csrf Victim",
        "password": "a-brand-new-passphrase",
        "confirm": "a-brand-new-passphrase",
        "current_password": "irrelevant-here",
    }
    before = row_counts()
    response = client.open(url, method=method, data=data)
    assert response.status_code == 400, f"{method} {url}: {response.status_code}"
    assert "The form expired or was not sent from the portal" in response.text
    db.session.expire_all()
    assert row_counts() == before
    with app.test_request_context("/"):
        assert db.session.get(User, world.target_id).role == Role.REQUESTER  # type: ignore[union-attr]


@pytest.mark.parametrize("hx", [False, True], ids=["form-field", "htmx-header"])
def test_write_with_valid_csrf_token_is_accepted(
    app: Flask, client: FlaskClient, as_role, csrf: None, hx: bool
) -> None:
    as_role("admin")
    page = client.get("/users/invitations")
    assert page.status_code == 200
    token = csrf_token_from(page.text)
    data = {"email": "csrf-ok@example.com", "role": "agent"}
    headers = {}
    if hx:
        headers = {"HX-Request": "true", "X-CSRFToken": token}
    else:
        data["csrf_token"] = token
    before = row_counts()
    response = client.post("/users/invitations", data=data, headers=headers)
    # A plain post is redirected; an htmx one gets 200 and HX-Redirect.
    assert response.status_code in (200, 302), response.text
    assert response.headers.get("Location") or response.headers.get("HX-Redirect")
    assert row_counts()["invitations"] == before["invitations"] + 1


def test_csrf_token_of_another_session_is_refused(app: Flask, csrf: None) -> None:
    """A token lifted from one browser does not work in another."""
    other = app.test_client()
    with app.test_request_context("/"):
        sign_in_client(other, make_user(role="admin"))
    token = csrf_token_from(other.get("/users/invitations").text)
    client = app.test_client()
    with app.test_request_context("/"):
        sign_in_client(client, make_user(role="admin"))
    before = row_counts()
    response = client.post(
        "/users/invitations", data={"csrf_token": token, "email": "x@example.com", "role": "agent"}
    )
    assert response.status_code == 400
    assert row_counts() == before
