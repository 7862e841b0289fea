"""Bad input at every field of every form, and at every filter of every list.

One value at a time, the other fields valid. A bad value is refused with a
422 and a message at its field (never a 500) and leaves every table as it
was; a value that is odd but legitimate (HTML in a name, an SQL fragment as a
password) is accepted, and whatever is echoed back is escaped. PostgreSQL
refuses NUL in text, so a NUL that reached the database would be a 500 there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import func, select

from portal.audits.models import AuditEvent
from portal.changes import approvals as change_approvals
from portal.changes import lifecycle as change_lifecycle
from portal.changes.setup_models import FreezePeriod, Service, StandardTemplate
from portal.extensions import db
from portal.tickets import services as ticket_services
from portal.tickets.models import Ticket
from portal.tickets.setup_models import Category, Team
from portal.timeutil import utcnow
from portal.users import links, services
from portal.users.auth import LOGIN_FAILED_MESSAGE
from portal.users.models import Invitation, PasswordReset, User
from tests.changes.helpers import approved_change, make_change, make_service
from tests.conftest import row_counts
from tests.factories import PASSWORD, make_user

SCRIPT = "<script>alert(1)</script>"
# 260 characters, every part within its own limit: only the total is too long.
LONG_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + ".com"
NEW_PASSWORD = "a-fresh-passphrase-42"

BAD_VALUES: list[tuple[str, str | list[str]]] = [
    ("empty", ""),
    ("whitespace", "  \t  "),
    ("10k_chars", "x" * 10_000),
    ("nul_byte", "ab\x00cd"),
    # Long and varied enough to pass every other rule (a password's too): only the NUL is wrong.
    ("nul_in_long_value", "Long-enough\x00value-42"),
    ("control_chars", "ab\x01\x08\x1b[2J\x7fcd"),
    ("html_script", SCRIPT),
    ("sql_or", "' OR 1=1 --"),
    ("sql_drop", '"; DROP TABLE users; --'),
    ("bad_choice", "superuser"),
    ("repeated_field", ["admin", "agent"]),
    ("rtl_override", "evil\u202egnp.exe"),
    ("emoji", "😀🔥👩\u200d💻"),
    ("long_email", LONG_EMAIL),
    ("huge_number", "9" * 25),
]
assert len(LONG_EMAIL) == 260


def last_event_id() -> int:
    return db.session.scalar(select(func.max(AuditEvent.id))) or 0


# -- the forms -------------------------------------------------------------------------------


@dataclass
class Env:
    app: Flask
    client: FlaskClient
    as_role: Callable[..., User]
    settings: Callable[..., None]

    def request_context(self):  # type: ignore[no-untyped-def]
        return self.app.test_request_context("/")


@dataclass
class Form:
    name: str
    fields: list[str]
    # (env) -> (url, valid data). Runs before the "before" row counts are taken.
    setup: Callable[[Env], tuple[str, dict[str, str]]]
    # Values (by id) that are legitimate for a field: accepted, not refused.
    accepts: dict[str, set[str]] = field(default_factory=dict)
    # Fields whose value is echoed back into the page (text inputs, not passwords).
    echoes: set[str] = field(default_factory=set)
    # A field whose value is repeated into another (a password and its confirmation).
    mirrors: dict[str, str] = field(default_factory=dict)
    # Forms of one control (a select and a button) answer with a message in the alert
    # area rather than at a field.
    message_at_field: bool = True


def _login(env: Env) -> tuple[str, dict[str, str]]:
    with env.request_context():
        make_user(email="known@example.com")
    return "/login", {"email": "known@example.com", "password": PASSWORD}


def _invite(env: Env) -> tuple[str, dict[str, str]]:
    env.as_role("admin")
    return "/users/invitations", {"email": "someone.new@example.com", "role": "agent"}


def _accept_invitation(env: Env) -> tuple[str, dict[str, str]]:
    with env.request_context():
        invitation = services.invite("invitee@example.com", "agent", make_user(role="admin"))
        token = links.make_token("invite", invitation.id, invitation.nonce)
    return f"/invite/{token}", {
        "name": "New Person",
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }


def _change_password(env: Env) -> tuple[str, dict[str, str]]:
    env.as_role("requester")
    return "/account/password", {
        "current_password": PASSWORD,
        "password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD,
    }


def _forgot_password(env: Env) -> tuple[str, dict[str, str]]:
    env.settings(SELF_SERVICE_RESET=True)
    with env.request_context():
        make_user(email="forgetful@example.com")
    return "/password/forgot", {"email": "forgetful@example.com"}


def _reset_password(env: Env) -> tuple[str, dict[str, str]]:
    env.settings(SELF_SERVICE_RESET=True)
    with env.request_context():
        user = make_user()
        reset = PasswordReset(
            user_id=user.id,
            nonce=links.new_nonce(),
            expires_at=utcnow() + timedelta(days=365),
        )
        db.session.add(reset)
        db.session.commit()
        token = links.make_token("reset", reset.id, reset.nonce)
    return f"/password/reset/{token}", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}


def _change_role(env: Env) -> tuple[str, dict[str, str]]:
    env.as_role("admin")
    with env.request_context():
        target = make_user(role="requester")
    return f"/users/{target.id}/role", {"role": "agent"}


def _ticket_for(env: Env, role: str) -> Ticket:
    env.as_role(role)
    with env.request_context():
        return ticket_services.create_ticket(make_user(), "Printer jams", "Every page")


def _new_ticket(env: Env) -> tuple[str, dict[str, str]]:
    env.as_role("requester")
    return "/tickets/new", {
        "type": "request",
        "subject": "Printer jams",
        "description": "Every page",
        "priority": "",
    }


def _reply(env: Env) -> tuple[str, dict[str, str]]:
    ticket = _ticket_for(env, "agent")
    return f"/tickets/{ticket.id}/replies", {"body": "Try again now", "internal": ""}


def _escalate(env: Env) -> tuple[str, dict[str, str]]:
    ticket = _ticket_for(env, "agent")
    return f"/tickets/{ticket.id}/escalate", {"reason": "Needs the network team"}


def _ticket_fields(env: Env) -> tuple[str, dict[str, str]]:
    ticket = _ticket_for(env, "agent")
    with env.request_context():
        team = db.session.scalar(select(Team).where(Team.name == "Billing"))
        assert team is not None
        return f"/tickets/{ticket.id}/fields", {
            "priority": "high",
            "team": str(team.id),
            "category": "",
        }


def _assign(env: Env) -> tuple[str, dict[str, str]]:
    ticket = _ticket_for(env, "agent")
    with env.request_context():
        agent = make_user(role="agent")
    return f"/tickets/{ticket.id}/assign", {"assignee": str(agent.id)}


def _ticket_status(env: Env) -> tuple[str, dict[str, str]]:
    ticket = _ticket_for(env, "agent")
    return f"/tickets/{ticket.id}/status", {"status": "in_progress"}


def _incident(env: Env) -> Ticket:
    env.as_role("agent")
    with env.request_context():
        return ticket_services.create_ticket(
            make_user(), "Checkout is down", "502s", type_="incident", priority="high"
        )


def _incident_review(env: Env) -> tuple[str, dict[str, str]]:
    incident = _incident(env)
    return f"/tickets/{incident.id}/review", {
        "review-timeline": "10:02 alerts fired",
        "review-root_cause": "An expired certificate",
    }


def _action_item(env: Env) -> tuple[str, dict[str, str]]:
    incident = _incident(env)
    with env.request_context():
        owner = make_user(role="agent")
    return f"/tickets/{incident.id}/review/actions", {
        "action-description": "Alert on expiry",
        "action-owner": str(owner.id),
        "action-due_on": (utcnow().date() + timedelta(days=7)).isoformat(),
    }


def _save_view(env: Env) -> tuple[str, dict[str, str]]:
    env.as_role("requester")
    return "/tickets/views", {"name": "Open printers", "query": "status=open&q=printer"}


def _bulk_update(env: Env) -> tuple[str, dict[str, str]]:
    ticket = _ticket_for(env, "agent")
    return "/tickets/bulk", {"ids": str(ticket.id), "action": "priority", "value": "priority:high"}


def _edit_category(env: Env) -> tuple[str, dict[str, str]]:
    env.as_role("admin")
    with env.request_context():
        category = db.session.scalar(select(Category).where(Category.name == "Outage"))
        team = db.session.scalar(select(Team).where(Team.name == "Engineering"))
        assert category is not None and team is not None
        return f"/tickets/setup/categories/{category.id}", {
            "name": "Outages and incidents",
            "team": str(team.id),
        }


# -- change requests ---------------------------------------------------------------------------

CHANGE_TEXTS = ("description", "justification", "success_criteria")
CHANGE_PLANS = ("implementation_plan", "rollback_plan")


def _change_data(service_id: int) -> dict[str, str]:
    start = (utcnow() + timedelta(days=30)).replace(hour=2, minute=0, second=0, microsecond=0)
    return {
        "type": "normal",
        "title": "Renew the TLS certificate",
        "description": "It expires on Friday.",
        "justification": "Customers would see warnings.",
        "success_criteria": "The site answers with the new certificate.",
        "impact": "2",
        "likelihood": "1",
        "implementation_plan": "Install it and reload nginx.",
        "rollback_plan": "Restore the old one.",
        "services": str(service_id),
        "implementer": "",
        "window_start": start.strftime("%Y-%m-%dT%H:%M"),
        "window_end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    }


def _new_change(env: Env) -> tuple[str, dict[str, str]]:
    user = env.as_role("requester")
    with env.request_context():
        ticket = ticket_services.create_ticket(user, "Cert expiring", "x")
        service = make_service("Web shop")
    return "/changes/new", {**_change_data(service.id), "tickets": ticket.number}


def _edit_change(env: Env) -> tuple[str, dict[str, str]]:
    user = env.as_role("requester")
    with env.request_context():
        service = make_service("Web shop")
        change = make_change(user, [service])
    return f"/changes/{change.id}/edit", _change_data(service.id)


def _in_review_change(env: Env):  # type: ignore[no-untyped-def]
    env.as_role("approver")
    with env.request_context():
        change = make_change()
        change_approvals.submit(change, change.requester)
    return change


def _change_vote(env: Env) -> tuple[str, dict[str, str]]:
    change = _in_review_change(env)
    return f"/changes/{change.id}/vote", {"decision": "approve", "comment": "Looks fine"}


def _inbox_vote(env: Env) -> tuple[str, dict[str, str]]:
    change = _in_review_change(env)
    return f"/changes/inbox/{change.id}/vote", {"decision": "approve", "comment": "Looks fine"}


def _schedule_change(env: Env) -> tuple[str, dict[str, str]]:
    user = env.as_role("requester")
    with env.request_context():
        change = approved_change(requester=user)
    data = _change_data(0)
    return f"/changes/{change.id}/schedule", {
        "window_start": data["window_start"],
        "window_end": data["window_end"],
        "acknowledge_conflicts": "",
        "freeze_reason": "",
    }


def _carried_out(env: Env, **fields: Any):  # type: ignore[no-untyped-def]
    with env.request_context():
        change = approved_change(implementer=make_user(role="agent"), **fields)
        start = utcnow() + timedelta(days=1)
        change_lifecycle.schedule(change, change.requester, (start, start + timedelta(hours=1)))
        change_lifecycle.start_implementing(change, change.requester)
        change_lifecycle.start_validating(change, change.requester)
    return change


def _finish_change(env: Env) -> tuple[str, dict[str, str]]:
    user = env.as_role("requester")
    change = _carried_out(env, requester=user)
    return f"/changes/{change.id}/complete", {
        "validation_results": "The site answers with the new certificate",
        "outcome": "Done in ten minutes",
    }


def _close_change(env: Env) -> tuple[str, dict[str, str]]:
    user = env.as_role("requester")
    change = _carried_out(env, requester=user)
    with env.request_context():
        change_lifecycle.complete(change, user, "Works")
    return f"/changes/{change.id}/close", {"lessons_learned": "Renew a week earlier"}


def _review_change(env: Env) -> tuple[str, dict[str, str]]:
    change = _carried_out(env, type_="emergency")
    env.as_role("approver")
    return f"/changes/{change.id}/review", {
        "findings": "The outage justified it",
        "emergency_justified": "y",
    }


def _link_ticket(env: Env) -> tuple[str, dict[str, str]]:
    user = env.as_role("agent")
    with env.request_context():
        change = make_change(user)
        ticket = ticket_services.create_ticket(make_user(), "Cert expiring", "x")
    return f"/changes/{change.id}/tickets", {"ticket": ticket.number}


def _change_service(env: Env) -> tuple[Service, User]:
    env.as_role("admin", timezone="Europe/Berlin")
    with env.request_context():
        owner = make_user(role="agent")
        service = Service(name="Web shop", owner_id=owner.id)
        db.session.add(service)
        db.session.commit()
        return service, owner


def _new_service(env: Env) -> tuple[str, dict[str, str]]:
    _, owner = _change_service(env)
    return "/changes/setup/services", {
        "name": "Payments",
        "owner": str(owner.id),
        "description": "Card payments",
    }


def _edit_service(env: Env) -> tuple[str, dict[str, str]]:
    service, owner = _change_service(env)
    return f"/changes/setup/services/{service.id}", {
        "name": "Online shop",
        "owner": str(owner.id),
        "description": "The storefront",
        "is_active": "y",
    }


# Typed in the admin's zone (Europe/Berlin): stored an hour earlier, in UTC.
FREEZE_DATA = {
    "starts_at": "2030-12-23T18:00",
    "ends_at": "2031-01-02T08:00",
    "reason": "Year-end trading",
}


def _new_freeze(env: Env) -> tuple[str, dict[str, str]]:
    _change_service(env)
    return "/changes/setup/freezes", dict(FREEZE_DATA)


def _edit_freeze(env: Env) -> tuple[str, dict[str, str]]:
    admin = env.as_role("admin", timezone="Europe/Berlin")
    with env.request_context():
        freeze = FreezePeriod(
            starts_at=utcnow() + timedelta(days=30),
            ends_at=utcnow() + timedelta(days=31),
            reason="Stocktaking",
            created_by_id=admin.id,
        )
        db.session.add(freeze)
        db.session.commit()
        return f"/changes/setup/freezes/{freeze.id}", dict(FREEZE_DATA)


def _template_data(service: Service, name: str) -> dict[str, str]:
    return {
        "name": name,
        "description": "Routine restart",
        "implementation_plan": "Restart the app servers one at a time.",
        "rollback_plan": "Nothing to roll back: a restart changes nothing.",
        "services": str(service.id),
        "impact": "2",
        "likelihood": "1",
        "is_active": "y",
    }


def _new_template(env: Env) -> tuple[str, dict[str, str]]:
    service, _ = _change_service(env)
    return "/changes/setup/templates", _template_data(service, "Restart the web shop")


def _edit_template(env: Env) -> tuple[str, dict[str, str]]:
    service, _ = _change_service(env)
    with env.request_context():
        admin = db.session.scalar(select(User).where(User.role == "admin").order_by(User.id))
        assert admin is not None
        template = StandardTemplate(
            name="Restart the shop",
            implementation_plan="Restart it.",
            rollback_plan="None needed.",
            created_by_id=admin.id,
            services=[service],
        )
        db.session.add(template)
        db.session.commit()
        return f"/changes/setup/templates/{template.id}", _template_data(
            service, "Restart the web shop"
        )


# Long enough, varied enough, not common: these pass the password policy.
GOOD_AS_PASSWORD = {"html_script", "sql_drop", "rtl_override"}
# Odd, but text a person may type as their name.
GOOD_AS_NAME = {
    "html_script",
    "sql_or",
    "sql_drop",
    "bad_choice",
    "rtl_override",
    "emoji",
    "huge_number",
}

# Free text: anything printable is a fair thing to write.
GOOD_AS_TEXT = GOOD_AS_NAME | {"long_email"}
# A change's optional long texts: empty is fine too, and 10,000 characters fit.
CHANGE_FREE_TEXT = GOOD_AS_TEXT | {"empty", "whitespace", "10k_chars"}

FORMS = [
    Form("login", ["email", "password"], _login, echoes={"email"}),
    Form("invite", ["email", "role"], _invite, echoes={"email"}),
    Form(
        "accept_invitation",
        ["name", "password", "confirm"],
        _accept_invitation,
        accepts={"name": GOOD_AS_NAME, "password": GOOD_AS_PASSWORD},
        echoes={"name"},
        mirrors={"password": "confirm"},
    ),
    Form(
        "change_password",
        ["current_password", "password", "confirm"],
        _change_password,
        accepts={"password": GOOD_AS_PASSWORD},
        mirrors={"password": "confirm"},
    ),
    Form("forgot_password", ["email"], _forgot_password, echoes={"email"}),
    Form(
        "reset_password",
        ["password", "confirm"],
        _reset_password,
        accepts={"password": GOOD_AS_PASSWORD},
        mirrors={"password": "confirm"},
    ),
    Form("change_role", ["role"], _change_role),
    Form(
        "new_ticket",
        ["type", "subject", "description", "priority"],
        _new_ticket,
        accepts={
            "subject": GOOD_AS_NAME,
            "description": GOOD_AS_TEXT | {"empty", "whitespace", "10k_chars"},
            "priority": {"empty"},
        },
        echoes={"subject", "description"},
    ),
    Form(
        "ticket_reply",
        ["body", "internal"],
        _reply,
        accepts={
            "body": GOOD_AS_TEXT | {"10k_chars"},
            # A checkbox: any value sent means "checked", none means "not".
            "internal": {v for v, _ in BAD_VALUES},
        },
        echoes={"body"},
    ),
    Form("escalate", ["reason"], _escalate, accepts={"reason": GOOD_AS_TEXT}, echoes={"reason"}),
    Form(
        "ticket_fields",
        ["priority", "team", "category"],
        _ticket_fields,
        accepts={"category": {"empty"}},
        message_at_field=False,
    ),
    Form("assign", ["assignee"], _assign, accepts={"assignee": {"empty"}}, message_at_field=False),
    Form("ticket_status", ["status"], _ticket_status, message_at_field=False),
    Form(
        "incident_review",
        ["review-timeline", "review-root_cause"],
        _incident_review,
        accepts={
            "review-timeline": GOOD_AS_TEXT | {"empty", "whitespace", "10k_chars"},
            "review-root_cause": GOOD_AS_TEXT | {"empty", "whitespace", "10k_chars"},
        },
        echoes={"review-timeline", "review-root_cause"},
    ),
    Form(
        "action_item",
        ["action-description", "action-owner", "action-due_on"],
        _action_item,
        accepts={"action-description": GOOD_AS_TEXT},
        echoes={"action-description"},
    ),
    Form(
        "save_view",
        ["name", "query"],
        _save_view,
        # The query string is re-serialised from the filters it names: any text is fine.
        accepts={"name": GOOD_AS_NAME, "query": {v for v, _ in BAD_VALUES}},
        echoes={"name"},
    ),
    Form("bulk_update", ["ids", "action", "value"], _bulk_update, message_at_field=False),
    Form(
        "edit_category",
        ["name", "team"],
        _edit_category,
        # No default team is a choice of its own ("—").
        accepts={"name": GOOD_AS_NAME, "team": {"empty"}},
        echoes={"name"},
    ),
    Form(
        "new_change",
        [
            "type",
            "title",
            *CHANGE_TEXTS,
            "impact",
            "likelihood",
            *CHANGE_PLANS,
            "services",
            "implementer",
            "window_start",
            "window_end",
            "tickets",
        ],
        _new_change,
        accepts={
            "title": GOOD_AS_NAME,
            **{f: CHANGE_FREE_TEXT for f in (*CHANGE_TEXTS, *CHANGE_PLANS)},
            "implementer": {"empty"},
            "tickets": {"empty", "whitespace"},
        },
        echoes={"title", *CHANGE_TEXTS, *CHANGE_PLANS, "tickets"},
    ),
    Form(
        "edit_change",
        [
            "type",
            "title",
            *CHANGE_TEXTS,
            "impact",
            "likelihood",
            *CHANGE_PLANS,
            "services",
            "implementer",
            "window_start",
            "window_end",
        ],
        _edit_change,
        accepts={
            "title": GOOD_AS_NAME,
            **{f: CHANGE_FREE_TEXT for f in (*CHANGE_TEXTS, *CHANGE_PLANS)},
            "implementer": {"empty"},
        },
        echoes={"title", *CHANGE_TEXTS, *CHANGE_PLANS},
    ),
    Form(
        "change_vote",
        ["decision", "comment"],
        _change_vote,
        accepts={"comment": GOOD_AS_TEXT | {"empty", "whitespace"}},
        echoes={"comment"},
    ),
    Form(
        "inbox_vote",
        ["decision", "comment"],
        _inbox_vote,
        # The inbox it leads back to no longer lists the change, so shows no comment.
        accepts={"comment": GOOD_AS_TEXT | {"empty", "whitespace"}},
    ),
    Form(
        "schedule_change",
        ["window_start", "window_end", "acknowledge_conflicts", "freeze_reason"],
        _schedule_change,
        accepts={
            # A checkbox: any value sent means "checked".
            "acknowledge_conflicts": {v for v, _ in BAD_VALUES},
            # Only read when the window falls in a freeze; this one does not.
            "freeze_reason": GOOD_AS_TEXT | {"empty", "whitespace"},
        },
    ),
    Form(
        "finish_change",
        ["validation_results", "outcome"],
        _finish_change,
        accepts={"validation_results": GOOD_AS_TEXT | {"10k_chars"}, "outcome": CHANGE_FREE_TEXT},
        echoes={"validation_results", "outcome"},
    ),
    Form(
        "close_change",
        ["lessons_learned"],
        _close_change,
        accepts={"lessons_learned": CHANGE_FREE_TEXT},
        echoes={"lessons_learned"},
    ),
    Form(
        "review_change",
        ["findings", "emergency_justified"],
        _review_change,
        accepts={
            "findings": GOOD_AS_TEXT | {"10k_chars"},
            "emergency_justified": {v for v, _ in BAD_VALUES},
        },
        echoes={"findings"},
    ),
    Form("link_ticket", ["ticket"], _link_ticket, echoes={"ticket"}),
    Form(
        "new_service",
        ["name", "owner", "description"],
        _new_service,
        accepts={"name": GOOD_AS_NAME, "description": GOOD_AS_TEXT | {"empty", "whitespace"}},
        echoes={"name", "description"},
    ),
    Form(
        "edit_service",
        ["name", "owner", "description", "is_active"],
        _edit_service,
        accepts={
            "name": GOOD_AS_NAME,
            "description": GOOD_AS_TEXT | {"empty", "whitespace"},
            # A checkbox: any value sent means "checked", none means "not".
            "is_active": {v for v, _ in BAD_VALUES},
        },
        echoes={"name", "description"},
    ),
    Form(
        "new_freeze",
        ["starts_at", "ends_at", "reason"],
        _new_freeze,
        accepts={"reason": GOOD_AS_TEXT},
        echoes={"starts_at", "ends_at", "reason"},
    ),
    Form(
        "edit_freeze",
        ["starts_at", "ends_at", "reason"],
        _edit_freeze,
        accepts={"reason": GOOD_AS_TEXT},
        echoes={"starts_at", "ends_at", "reason"},
    ),
    *[
        Form(
            name,
            [
                "name",
                "description",
                "implementation_plan",
                "rollback_plan",
                "services",
                "impact",
                "likelihood",
                "is_active",
            ],
            setup,
            accepts={
                "name": GOOD_AS_NAME,
                "description": GOOD_AS_TEXT | {"empty", "whitespace"},
                "implementation_plan": GOOD_AS_TEXT | {"10k_chars"},
                "rollback_plan": GOOD_AS_TEXT | {"10k_chars"},
                "is_active": {v for v, _ in BAD_VALUES},
            },
            # The plans are not on the list a saved template leads to.
            echoes={"name", "description"},
        )
        for name, setup in (("new_template", _new_template), ("edit_template", _edit_template))
    ],
]
FORMS_BY_NAME = {f.name: f for f in FORMS}

CHANGE_FREE_FIELDS = ("title", *CHANGE_TEXTS, *CHANGE_PLANS)

# A repeated single-value field: WTForms reads the first value. Where the first
# value is itself valid the form may take it (or refuse the pair); either is fine,
# as long as it is treated exactly as the first value alone would be.
REPEATED_FIRST_IS_VALID = {
    ("invite", "role"),
    ("change_role", "role"),
    ("accept_invitation", "name"),
    ("new_ticket", "subject"),
    ("new_ticket", "description"),
    ("ticket_reply", "body"),
    ("ticket_reply", "internal"),
    ("escalate", "reason"),
    ("incident_review", "review-timeline"),
    ("incident_review", "review-root_cause"),
    ("action_item", "action-description"),
    ("save_view", "name"),
    ("edit_category", "name"),
    *((form, field) for form in ("new_change", "edit_change") for field in CHANGE_FREE_FIELDS),
    ("change_vote", "comment"),
    ("inbox_vote", "comment"),
    ("schedule_change", "freeze_reason"),
    ("finish_change", "validation_results"),
    ("finish_change", "outcome"),
    ("close_change", "lessons_learned"),
    ("review_change", "findings"),
    *[
        (form, field)
        for form in ("new_service", "edit_service")
        for field in ("name", "description")
    ],
    ("new_freeze", "reason"),
    ("edit_freeze", "reason"),
    *[
        (form, field)
        for form in ("new_template", "edit_template")
        for field in ("name", "description", "implementation_plan", "rollback_plan")
    ],
}


# Values the sign-in form itself refuses (missing, too long, control characters), before
# any account is looked up: no audit event, a message at the field.
LOGIN_FORM_REFUSES = {
    "empty",
    "whitespace",
    "10k_chars",
    "nul_byte",
    "control_chars",
    "nul_in_long_value",
    "long_email",
}


def _field_error(html: str, name: str) -> bool:
    return re.search(rf'<div class="invalid-feedback[^"]*" id="{name}-error">', html) is not None


def _assert_escaped(html: str, value: Any, echoed: bool) -> None:
    assert SCRIPT not in html, "a script tag came back unescaped"
    if echoed and value == SCRIPT:
        assert str(escape(SCRIPT)) in html or "&lt;script&gt;" in html


@pytest.fixture
def env(app: Flask, client: FlaskClient, as_role, settings) -> Env:  # type: ignore[no-untyped-def]
    return Env(app, client, as_role, settings)


@pytest.mark.parametrize("form_name", [f.name for f in FORMS])
def test_valid_submission_is_accepted(env: Env, form_name: str) -> None:
    """The baseline: with every field valid each form goes through (so a refusal below
    is the bad value's doing)."""
    form = FORMS_BY_NAME[form_name]
    url, data = form.setup(env)
    response = env.client.post(url, data=data)
    if form.name == "login":
        assert response.status_code == 302
    elif form.name == "forgot_password":
        assert response.status_code == 200 and "a reset link is on its way" in response.text
    else:
        assert response.status_code == 302, response.text


# Every value as a normal form post; a few also as htmx posts, which answer with
# only the form's block (another rendering path). Fewer, because password hashing
# is slow (argon2: ~50 ms idle, several times that on a busy machine).
HTMX_VALUES = {"empty", "nul_in_long_value", "10k_chars", "html_script"}
FORM_CASES = [
    pytest.param(
        form.name,
        field_name,
        value_id,
        value,
        htmx,
        id=f"{form.name}.{field_name}={value_id}" + ("-htmx" if htmx else ""),
    )
    for htmx in (False, True)
    for form in FORMS
    for field_name in form.fields
    for value_id, value in BAD_VALUES
    if not htmx or value_id in HTMX_VALUES
]


@pytest.mark.parametrize(("form_name", "field_name", "value_id", "value", "htmx"), FORM_CASES)
def test_bad_value_in_form_field(
    env: Env, form_name: str, field_name: str, value_id: str, value: str | list[str], htmx: bool
) -> None:
    form = FORMS_BY_NAME[form_name]
    url, data = form.setup(env)
    data = {**data, field_name: value}
    if field_name in form.mirrors:
        data[form.mirrors[field_name]] = value
    headers = {"HX-Request": "true"} if htmx else {}
    before, first_new_event = row_counts(), last_event_id() + 1

    response = env.client.post(url, data=data, headers=headers)
    status, html = response.status_code, response.text

    assert status < 500, f"{status} for {form_name}.{field_name}={value_id}"
    _assert_escaped(html, value, echoed=field_name in form.echoes and status == 422)
    accepted = value_id in form.accepts.get(field_name, set())
    either = value_id == "repeated_field" and (form_name, field_name) in REPEATED_FIRST_IS_VALID

    if accepted or (either and status != 422):
        assert status in (200, 302), f"a legitimate value was refused with {status}"
        if either:
            _assert_took_first_value(form_name, field_name, value)
        next_page = response.headers.get("Location") or response.headers.get("HX-Redirect")
        if next_page and field_name in form.echoes:
            # Where the value shows up next: the page the form led to.
            page = env.client.get(next_page)
            assert page.status_code == 200
            _assert_escaped(page.text, value, echoed=True)
        return

    assert status == 422, f"expected 422, got {status}"
    db.session.expire_all()
    after = row_counts()
    new_actions = set(
        db.session.scalars(select(AuditEvent.action).where(AuditEvent.id >= first_new_event))
    )
    if form_name == "login" and value_id not in LOGIN_FORM_REFUSES:
        # Well-formed, so checked against the accounts: the refusal is itself recorded (and
        # nothing else is written), with one message that does not say which part was wrong.
        assert sorted(new_actions) == ["auth.login_failed"]
        assert {k: v for k, v in after.items() if k != "audit_events"} == {
            k: v for k, v in before.items() if k != "audit_events"
        }
        assert LOGIN_FAILED_MESSAGE in html
    else:
        assert not new_actions, f"audit events written: {new_actions}"
        assert after == before
        if form.message_at_field:
            assert _field_error(html, field_name), "no error message at the field"
        else:
            assert "Choose" in html, "no message says what to do"


def _assert_took_first_value(form_name: str, field_name: str, value: Any) -> None:
    first = value[0]
    db.session.expire_all()
    if form_name == "invite":
        invitation = db.session.scalar(
            select(Invitation).where(Invitation.email == "someone.new@example.com")
        )
        assert invitation is not None and invitation.role == first
    elif form_name == "change_role":
        changed = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "user.role_changed")
        )
        assert changed is not None and changed.data["after"] == {"role": first}
    elif form_name == "accept_invitation":
        user = db.session.scalar(select(User).where(User.email == "invitee@example.com"))
        assert user is not None and user.name == first
    elif form_name == "edit_category":
        renamed = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "category.updated")
        )
        assert renamed is not None and renamed.data["after"]["name"] == first
    elif form_name in (
        "new_ticket",
        "ticket_reply",
        "escalate",
        "incident_review",
        "action_item",
        "save_view",
        "new_change",
        "edit_change",
        "change_vote",
        "inbox_vote",
        "schedule_change",
        "finish_change",
        "close_change",
        "review_change",
        "new_service",
        "edit_service",
        "new_freeze",
        "edit_freeze",
        "new_template",
        "edit_template",
    ):
        pass  # free text: the first value is as good as any


# -- list filters ----------------------------------------------------------------------------

LIST_CASES = [
    pytest.param(path, param, value_id, value, id=f"{path}?{param}={value_id}")
    for path, params in (
        ("/users/", ("q", "role", "status", "page")),
        ("/outbox/", ("status", "page")),
        ("/reports/exports", ("page",)),
        (
            "/tickets/",
            ("q", "status", "priority", "type", "team", "assignee", "sla", "sort", "page"),
        ),
        (
            "/changes/",
            (
                "status",
                "type",
                "risk",
                "service",
                "window_from",
                "window_to",
                "mine",
                "awaiting",
                "sort",
                "page",
            ),
        ),
    )
    for param in params
    for value_id, value in BAD_VALUES
]


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize(("path", "param", "value_id", "value"), LIST_CASES)
def test_bad_value_in_list_filter(
    env: Env, path: str, param: str, value_id: str, value: str | list[str], htmx: bool
) -> None:
    env.as_role("admin")
    with env.request_context():
        # Rows whose text must come back escaped.
        ticket_services.create_ticket(make_user(name=SCRIPT), SCRIPT, SCRIPT)
        services.invite("listed@example.com", "agent", make_user(role="admin"))
    before = row_counts()
    headers = {"HX-Request": "true"} if htmx else {}
    response = env.client.get(path, query_string={param: value}, headers=headers)
    assert response.status_code == 200, f"{response.status_code} for {param}={value_id}"
    _assert_escaped(response.text, value, echoed=param == "q")
    assert row_counts() == before


# -- the redirect after sign-in --------------------------------------------------------------

REDIRECT_VALUES = [
    *BAD_VALUES,
    ("crlf", "/\r\nSet-Cookie: stolen=1"),
    ("tab_slash", "/\t/evil.example"),
    ("newline_slash", "/\n/evil.example"),
    ("protocol_relative", "//evil.example"),
    ("backslash", "/\\evil.example"),
    ("absolute", "https://evil.example/"),
    ("javascript", "javascript:alert(1)"),
]
# The same check guards both; a sign-in (one password hash check each) is tried with
# the values aimed at redirects, the page a signed-in user gets with all of them.


def _assert_local(location: str) -> None:
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, f"off-site redirect to {location!r}"
    assert location.startswith("/") and not location.startswith("//"), location


@pytest.mark.parametrize(
    ("value_id", "value"), [pytest.param(i, v, id=f"next={i}") for i, v in REDIRECT_VALUES]
)
def test_bad_next_when_already_signed_in(env: Env, value_id: str, value: Any) -> None:
    env.as_role("agent")
    response = env.client.get("/login", query_string={"next": value})
    assert response.status_code == 302, response.status_code
    _assert_local(response.headers["Location"])


@pytest.mark.parametrize(
    ("value_id", "value"),
    [
        pytest.param(i, v, id=f"next={i}")
        for i, v in REDIRECT_VALUES
        if i not in dict(BAD_VALUES) or i in ("html_script", "nul_byte")
    ],
)
def test_bad_next_after_signing_in(env: Env, value_id: str, value: Any) -> None:
    url, data = _login(env)
    response = env.client.post(url, query_string={"next": value}, data=data)
    assert response.status_code == 302, response.status_code
    _assert_local(response.headers["Location"])
