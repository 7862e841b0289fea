from portal.extensions import db
from portal.users.models import User
from tests.factories import make_user


def _many(n, **fields):
    for i in range(n):
        make_user(role=fields.get("role", "agent"), name=f"{fields.get('prefix', 'Person')} {i:03}")


def test_search_filter_and_page_in_the_query_string(client, as_role):
    as_role("admin", name="Zed Admin")
    _many(30, prefix="Kim")
    make_user(role="auditor", name="Olga Auditor", email="olga@example.com")
    first = client.get("/users/?q=kim")
    assert first.status_code == 200
    assert first.text.count('href="/users/') >= 25
    assert "1–25 of 30" in first.text
    assert "page=2" in first.text and "q=kim" in first.text
    second = client.get("/users/?q=kim&page=2")
    assert "26–30 of 30" in second.text
    by_email = client.get("/users/?q=OLGA@")
    assert "Olga Auditor" in by_email.text and "Kim 001" not in by_email.text
    by_role = client.get("/users/?role=auditor")
    assert "Olga Auditor" in by_role.text and "Kim 001" not in by_role.text
    none = client.get("/users/?q=nobody-like-this")
    assert "No users match these filters." in none.text


def test_htmx_request_gets_only_the_results_fragment(client, as_role):
    as_role("admin")
    _many(3, prefix="Frag")
    full = client.get("/users/?q=frag")
    fragment = client.get("/users/?q=frag", headers={"HX-Request": "true"})
    assert "<html" in full.text and "<html" not in fragment.text
    assert 'id="users-table"' in fragment.text and "Frag 001" in fragment.text
    assert "HX-Request" in fragment.headers["Vary"]


def test_status_filter_distinguishes_deactivated(client, as_role):
    as_role("admin")
    gone = make_user(name="Gone Person")
    gone.is_active = False
    db.session.commit()
    assert "Gone Person" in client.get("/users/?status=deactivated").text
    assert "Gone Person" not in client.get("/users/?status=active").text


def test_like_wildcards_are_literal(client, as_role):
    as_role("admin")
    make_user(name="Percent Person")
    assert "Percent Person" not in client.get("/users/?q=%25").text


def test_list_runs_a_fixed_number_of_queries(client, as_role, count_queries, settings):
    settings(SHARED_CACHE_SECONDS=0)  # the incident banner asked each time
    as_role("admin")
    _many(3)
    with count_queries() as small:
        assert client.get("/users/").status_code == 200
    _many(20)
    with count_queries() as large:
        assert client.get("/users/").status_code == 200
    assert small.count == large.count, large.statements
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 24
