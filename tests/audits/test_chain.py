from sqlalchemy import text

from portal.audits import fingerprint, record
from portal.audits.models import AuditEvent
from portal.audits.services import compute_hash, verify
from portal.extensions import db
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
    db.session.execute(
        text("UPDATE audit_events SET actor_label = 'mallory' WHERE id = :id"), {"id": target.id}
    )
    db.session.commit()
    result = verify()
    assert not result.ok
    first = result.problems[0]
    assert (first.event_id, first.kind) == (target.id, "edited")


def test_a_deleted_row_is_named(ctx):
    _write(4)
    ids = db.session.scalars(db.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    db.session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": ids[2]})
    db.session.commit()
    result = verify()
    assert [(p.event_id, p.kind) for p in result.problems] == [(ids[3], "missing")]
    assert f"rows {ids[2]}..{ids[2]}" in str(result.problems[0])


def test_a_recomputed_row_breaks_the_link_to_the_next(ctx):
    _write(3)
    events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
    middle = events[1]
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
    db.session.execute(
        text("UPDATE audit_events SET ip = '1.2.3.4' WHERE id = :id"), {"id": row.id}
    )
    db.session.commit()
    bad = runner.invoke(args=["audits", "verify"])
    assert bad.exit_code == 1
    assert f"row {row.id}: edited" in bad.output


def test_event_is_rolled_back_with_its_change(ctx):
    before = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))
    record("test.rolled_back", None, None)
    db.session.rollback()
    assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) == before
