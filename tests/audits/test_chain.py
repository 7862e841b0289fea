from portal.audits import fingerprint, record
from portal.audits.models import AuditEvent
from portal.audits.services import allow_retention_in_this_transaction, compute_hash, verify
from portal.extensions import db
from tests.audits.tamper import as_intruder
from tests.factories import make_user


def _write(n, actor=None):
    for i in range(n):
        record("test.event", actor, ("thing", i), before={"n": i}, after={"n": i + 1})
    db.session.commit()


def test_a_fresh_chain_verifies(ctx):
    _write(5, make_user())
    result = verify()
    assert result.ok and result.checked >= 5


def test_every_field_is_covered_by_the_hash(ctx):
    _write(1)
    event = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    original = compute_hash(event)
    for field, value in [
        ("actor_label", "mallory"),
        ("ip", "6.6.6.6"),
        ("action", "x.y"),
        ("target_id", "999"),
        ("data", {"n": 0}),
        ("user_agent", "curl"),
    ]:
        saved = getattr(event, field)
        setattr(event, field, value)
        assert compute_hash(event) != original, field
        setattr(event, field, saved)
    event.created_at = event.created_at.replace(year=2001)
    assert compute_hash(event) != original
    db.session.rollback()


def test_an_edited_row_is_named(ctx):
    _write(4)
    target = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()[1]
    as_intruder("UPDATE audit_events SET actor_label = 'mallory' WHERE id = :id", id=target.id)
    result = verify()
    assert not result.ok
    first = result.problems[0]
    assert (first.event_id, first.kind) == (target.id, "edited")


def test_a_deleted_row_is_named(ctx):
    _write(4)
    ids = db.session.scalars(db.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    as_intruder("DELETE FROM audit_events WHERE id = :id", id=ids[2])
    result = verify()
    assert [(p.event_id, p.kind) for p in result.problems] == [(ids[3], "deleted")]
    assert f"row {ids[2]} was deleted" in str(result.problems[0])


def test_a_recomputed_row_breaks_the_link_to_the_next(ctx):
    _write(3)
    events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
    middle = events[1]
    allow_retention_in_this_transaction()
    middle.actor_label = "mallory"
    middle.hash = compute_hash(middle)  # the forger rehashes the row they edited
    db.session.commit()
    result = verify()
    assert [(p.event_id, p.kind) for p in result.problems] == [(events[2].id, "broken-link")]


def test_fingerprint_hides_the_secret_but_shows_a_change(ctx):
    a, b = fingerprint("hunter2-hunter2"), fingerprint("other-secret-xx")
    assert a != b and "hunter2" not in a and a == fingerprint("hunter2-hunter2")


def test_flask_audits_verify_exits_nonzero_and_names_the_row(app, ctx):
    _write(3)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audits", "verify"])
    assert ok.exit_code == 0 and "chain intact" in ok.output
    row = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()[1]
    as_intruder("UPDATE audit_events SET ip = '1.2.3.4' WHERE id = :id", id=row.id)
    bad = runner.invoke(args=["audits", "verify"])
    assert bad.exit_code == 1
    assert f"row {row.id}: edited" in bad.output


def test_event_is_rolled_back_with_its_change(ctx):
    before = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))
    record("test.rolled_back", None, None)
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) == before


def test_the_canonical_form_is_sorted_compact_json_of_every_field():
    import json
    from datetime import datetime

    from portal.audits.chain import canonical

    names = ["id", "created_at", "actor_id", "actor_label", "ip", "user_agent", "action"]
    names += ["target_type", "target_id", "data", "prev_hash"]
    tricky = 'quote " backslash \\ newline \n tab \t nul \x00 é ✓ \U0001f600 \u2028'
    rows = [
        (1, datetime(2026, 3, 1, 8, 0), None, "system", None, None, "a.b", None, None, {}, "0"),
        (
            7,
            datetime(2026, 3, 1, 8, 0, 0, 120),
            3,
            tricky,
            "2001:db8::1",
            tricky,
            "user.role_changed",
            "user",
            "3",
            {"z": [1, {"b": None, "a": tricky}], "a": True, "n": -5},
            "f" * 64,
        ),
    ]
    for row in rows:
        body = dict(zip(names, row, strict=True))
        body["created_at"] = row[1].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical(row) == expected.encode()


def test_the_canonical_form_read_back_is_the_one_hashed_at_insert(ctx):
    from datetime import datetime

    from portal.audits.chain import canonical, event_values

    when = datetime(2026, 3, 1, 8, 30, 15, 5)
    data = {"b": ["é", {"y": None, "x": 2}], "when": when, "tags": ("a", "b"), 3: {"z"}}
    event = record("test.round_trip", None, ("thing", 1), **{"nested": data})
    db.session.commit()
    event_id, expected_hash = event.id, event.hash
    at_insert = canonical(event_values(event))
    db.session.expunge_all()
    read_back = db.session.get(AuditEvent, event_id)
    assert read_back.data == {
        "nested": {
            "b": ["é", {"y": None, "x": 2}],
            "when": "2026-03-01T08:30:15.000005Z",
            "tags": ["a", "b"],
            "3": ["z"],
        }
    }
    assert canonical(event_values(read_back)) == at_insert
    assert compute_hash(read_back) == expected_hash


def test_data_stored_as_equal_json_in_another_layout_still_verifies(ctx):
    """The value of the data is what is hashed, not the layout of its stored text."""
    event = record("test.layout", None, None, b=1, a="x")
    db.session.commit()
    as_intruder(
        "UPDATE audit_events SET data = :d WHERE id = :id", d='{"b": 1,  "a": "x"}', id=event.id
    )
    assert verify().ok
    as_intruder(
        "UPDATE audit_events SET data = :d WHERE id = :id", d='{"b": 2, "a": "x"}', id=event.id
    )
    assert [(p.event_id, p.kind) for p in verify().problems] == [(event.id, "edited")]
