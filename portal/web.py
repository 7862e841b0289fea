"""Request plumbing shared by every blueprint: page-or-fragment rendering, error
pages (HTML, htmx fragment or JSON), security headers and template helpers."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import (
    Flask,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from jinja2_fragments.flask import render_block
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from . import security
from .timeutil import to_zone

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render(
    template: str, fragment: str | None = None, status: int = 200, /, **context: Any
) -> Response:
    """The full page, or only its `fragment` block when htmx asks (same URL, same data).

    The first three are positional-only, so a template variable may be called
    `status` (as the Outbox's status filter is) without becoming the HTTP status.
    """
    if fragment and is_htmx() and request.headers.get("HX-Boosted") != "true":
        body = render_block(template, fragment, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def redirect_to(location: str) -> Response:
    """A redirect that also works for htmx: its XMLHttpRequest would follow a 302 and swap
    the next page into the element, so htmx gets `HX-Redirect` and navigates itself."""
    if is_htmx():
        response = make_response("", 200)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location)


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute link for an email, built from BASE_URL, so jobs and commands (which
    have no request) make the same links as pages do."""
    base = current_app.config["SETTINGS"].BASE_URL.rstrip("/")
    path = current_app.url_map.bind("portal.invalid").build(endpoint, values)
    return base + path


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(
    code: int, title: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    if _wants_json():
        response = jsonify(error=title, message=message, status=code)
        response.status_code = code
    elif is_htmx():
        response = make_response(
            render_template("errors/_alert.html", code=code, title=title, message=message), code
        )
        # Errors land in the alert area, never in place of the element that asked.
        response.headers["HX-Retarget"] = "#alerts"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(
            render_template("errors/error.html", code=code, title=title, message=message), code
        )
    response.vary.add("HX-Request")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


MESSAGES = {
    400: "The request could not be understood.",
    401: "Sign in to continue.",
    403: "You do not have permission to do that.",
    404: "There is nothing here. The link may be wrong, or the item may be gone.",
    405: "That action is not allowed here.",
    409: "That cannot be done in the item's current state.",
    410: "This link is no longer valid.",
    413: "The upload is larger than the portal accepts.",
    422: "Some of the values sent could not be accepted.",
    429: "Too many requests. Wait a moment and try again.",
    500: "Something went wrong on our side. It has been logged.",
    503: "The portal is temporarily unavailable.",
}


def _handle_http(exc: HTTPException) -> Response:
    if (
        exc.response is not None
        and exc.code in (301, 302, 303, 307, 308, 401)
        and exc.response.status_code != exc.code
    ):
        return exc.response  # a redirect raised through abort() (e.g. to the sign-in page)
    if exc.response is not None and 300 <= exc.response.status_code < 400:
        return exc.response
    code = exc.code or 500
    if isinstance(exc, CSRFError):
        message = "The form expired or was not sent from the portal. Reload the page and retry."
    elif code == 429:
        message = MESSAGES[429]
    elif exc.description and exc.description != type(exc).description:
        message = exc.description
    else:
        message = MESSAGES.get(code, exc.description or "")
    headers = {}
    if code == 429:
        headers["Retry-After"] = dict(exc.get_headers()).get("Retry-After", "60")
    if code in (403, 429):
        from .audits import refusals

        if code == 403:
            refusals.forbidden()  # an `auth.forbidden` audit event
        else:
            refusals.rate_limited(str(exc.description))  # counted, and a RATE_LIMIT line
    return error_response(code, exc.name, message, headers)


def _handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    try:
        from .extensions import db

        db.session.rollback()
    except Exception:  # noqa: S110 - the error page must render even if the database is gone
        pass
    return error_response(500, InternalServerError().name, MESSAGES[500])


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CSP)
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _deny_undeclared() -> None:
    """Default deny: a route that names no access rule answers 403, never its content."""
    if request.endpoint is None or request.endpoint == "static":
        return
    view = current_app.view_functions.get(request.endpoint)
    if getattr(view, "access", None) is None:
        from flask import abort

        abort(403)


def _viewer_zone() -> str:
    """The signed-in user's time zone (else the portal's), looked up once per request:
    a list shows dozens of times."""
    zone: str | None = g.get("viewer_zone")
    if zone is None:
        from flask_login import current_user

        zone = getattr(current_user, "timezone", None) or current_app.config["SETTINGS"].TIMEZONE
        g.viewer_zone = zone
    return zone


# How pages show a time unless they ask for another format.
TIME_FORMAT = "%Y-%m-%d %H:%M"


def _local_time(value: Any, fmt: str = TIME_FORMAT) -> str:
    if value is None:
        return "—"
    zone = _viewer_zone()
    # Stored times are naive UTC already: a UTC viewer needs no conversion.
    local = value if zone == "UTC" else to_zone(value, zone)
    if fmt == TIME_FORMAT and isinstance(local, datetime):
        # The same text as strftime(TIME_FORMAT) at a third of its cost; a list shows
        # two times per row.
        return local.isoformat(" ", "minutes")[:16]
    return local.strftime(fmt)


def options(choices: Iterable[tuple[Any, Any]], selected: Any = None) -> Markup:
    """`<option>`s for (value, label) pairs, `selected` (compared as text) marked. A
    select of fifty people is one call here, not fifty turns of a template loop, and the
    same text pairs with the same choice (every list page asks for them) are built once."""
    chosen = "" if selected is None else str(selected)
    pairs = tuple(choices)
    # Only plain text is remembered: 1 and True, or a str and a Markup of the same
    # characters, are equal keys yet render differently.
    if all(type(value) is str and type(label) is str for value, label in pairs):
        return _options_markup(pairs, chosen)
    return _options_markup.__wrapped__(pairs, chosen)


@lru_cache(maxsize=512)
def _options_markup(choices: tuple[tuple[Any, Any], ...], chosen: str) -> Markup:
    parts = []
    for value, label in choices:
        text = str(value)
        mark = " selected" if text == chosen else ""
        parts.append(f'<option value="{escape(text)}"{mark}>{escape(label)}</option>')
    return Markup("".join(parts))  # noqa: S704 (every value and label escaped above)


# An id no row has, standing in for the real one while the route is built once.
_ID_STANDIN = str(987_654_321)


def url_with_id(endpoint: str, key: str, value: int) -> str:
    """`url_for(endpoint, key=value)` for the rows of a list: routing builds the URL once
    per request and endpoint, and each row only puts its own id in."""
    built: dict[tuple[str, str], tuple[str, str] | None] = g.setdefault("urls_with_id", {})
    if (endpoint, key) not in built:
        url = url_for(endpoint, **{key: int(_ID_STANDIN)})
        head, _, tail = url.partition(_ID_STANDIN)
        # A URL with the stand-in's digits elsewhere is built by routing for every row.
        built[endpoint, key] = (head, tail) if url.count(_ID_STANDIN) == 1 else None
    parts = built[endpoint, key]
    if parts is None:
        return url_for(endpoint, **{key: value})
    return f"{parts[0]}{int(value)}{parts[1]}"


def _template_context() -> dict[str, Any]:
    return {
        "can": security.can,
        "Permission": security.Permission,
        "settings": current_app.config["SETTINGS"],
    }


def init_web(app: Flask) -> None:
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_unexpected)
    app.after_request(_security_headers)
    app.before_request(_deny_undeclared)
    app.context_processor(_template_context)
    app.add_template_filter(_local_time, "local_time")
    app.add_template_global(options, "options")
    app.add_template_global(url_with_id, "url_with_id")
    from .markdown import render_markdown

    app.add_template_filter(render_markdown, "markdown")
    proxies = app.config["SETTINGS"].PROXY_COUNT
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
