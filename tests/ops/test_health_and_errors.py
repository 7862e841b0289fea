import json

from portal.extensions import db
from portal.ops import health as health_module


def test_health_ok(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_health_names_the_part_that_is_down(client, monkeypatch):
    monkeypatch.setattr(health_module, "check_redis", lambda: "ConnectionError")
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json["status"] == "degraded"
    assert response.json["down"] == ["redis"]


def test_health_reports_a_database_outage(app, client, monkeypatch, settings):
    settings(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens on port 1
    app.extensions.pop("portal.redis", None)
    try:
        response = client.get("/api/health")
    finally:
        app.extensions.pop("portal.redis", None)
    assert response.status_code == 503 and "redis" in response.json["down"]


def test_version(client):
    response = client.get("/api/version")
    assert response.status_code == 200 and response.json["name"] == "ops-portal"


def test_errors_as_json_under_api(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    body = json.loads(response.text)
    assert body["status"] == 404 and body["error"] == "Not Found"


def test_errors_as_page_and_as_htmx_fragment(client, as_role):
    as_role("agent")
    page = client.get("/users/")
    assert page.status_code == 403 and "<html" in page.text
    assert "You do not have permission" in page.text
    fragment = client.get("/users/", headers={"HX-Request": "true"})
    assert fragment.status_code == 403 and "<html" not in fragment.text
    assert fragment.headers["HX-Retarget"] == "#alerts"
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "There is nothing here" in missing.text


def test_unexpected_error_is_a_500_page_without_a_trace(app, client, as_role, monkeypatch):
    as_role("admin")
    from portal.users import views

    def broken(*_args, **_kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views, "list_users", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        response = client.get("/users/")
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert response.status_code == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert "Something went wrong" in response.text
    assert db.session.execute(db.text("SELECT 1")).scalar() == 1


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_pages_load_assets_only_from_the_portal(client):
    html = client.get("/login").text
    assert "vendor/htmx-2.0.11.min.js" in html and "vendor/bootstrap-5.3.9.min.css" in html
    assert "http://" not in html.replace("http://portal.test", "") and "https://" not in html
    assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200
