"""A blocked address gets 403 on every route and method of the app — signed out and
signed in, static files and unknown paths included — and a normal answer again once the
block has expired."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.routing import BuildError

from portal.audits.blocks import add_block
from portal.extensions import db
from portal.timeutil import utcnow
from tests.factories import make_user, sign_in_client
from tests.test_route_map import RULES, World, _methods

BLOCKED = "Requests from your address are blocked."
ATTACKER = {"REMOTE_ADDR": "198.51.100.23"}


def _url(app: Flask, endpoint: str) -> str:
    """A URL for the rule: the route map's, with ids that need no rows (the block answers
    before any row is looked up)."""
    if endpoint == "static":
        with app.test_request_context("/"):
            return url_for("static", filename="app.css")
    values = {f.name: ("x" if f.type == "str" else 1) for f in fields(World)}
    try:
        return World(**values).url(app, endpoint)  # type: ignore[arg-type]
    except BuildError:
        # A parameter the route map does not fill yet: any value that routes will do.
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        with app.test_request_context("/"):
            return url_for(endpoint, **dict.fromkeys(rule.arguments, 1))


CASES = [
    (rule.endpoint, method) for rule in RULES for method in [*_methods(rule), "HEAD", "OPTIONS"]
] + [("static", "GET"), ("static", "HEAD")]


def _answers(client: FlaskClient, app: Flask) -> list[tuple[str, str, int, bool]]:
    seen = []
    for endpoint, method in CASES:
        url = _url(app, endpoint)
        response = client.open(url, method=method, environ_base=ATTACKER, data={})
        blocked = BLOCKED in response.text or (method == "HEAD" and response.status_code == 403)
        seen.append((method, url, response.status_code, blocked))
    return seen


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_every_route_refuses_a_blocked_address_until_the_block_expires(
    app: Flask, client: FlaskClient, ctx: None, signed_in: bool
) -> None:
    admin = make_user(role="admin")
    row = add_block("198.51.100.0/24", "Scanning", utcnow() + timedelta(hours=1), admin, None)
    if signed_in:
        sign_in_client(client, make_user(role="admin"))
    assert len(CASES) > 200  # the whole map, every method

    refused = _answers(client, app)
    wrong = [(m, u, s) for m, u, s, blocked in refused if s != 403 or not blocked]
    assert wrong == [], wrong

    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    answered = _answers(client, app)
    # HEAD has no body to tell the block's 403 from a route's own: GET stands for it.
    still = [(m, u, s) for m, u, s, blocked in answered if blocked and m != "HEAD"]
    assert still == [], still
    assert any(s == 200 for _, _, s, _ in answered)


def test_an_address_outside_the_range_is_answered(
    app: Flask, client: FlaskClient, ctx: None
) -> None:
    admin = make_user(role="admin")
    add_block("198.51.100.0/24", "Scanning", utcnow() + timedelta(hours=1), admin, None)
    response = client.get("/login", environ_base={"REMOTE_ADDR": "198.51.101.23"})
    assert response.status_code == 200
