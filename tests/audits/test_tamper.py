"""Someone with write access to the database tampers with the trail; verification finds
it and names it. The same tests run on SQLite and PostgreSQL (past the trigger, as an
intruder could). A cut tail and a chain rewritten up to its head are valid chains: only
the checkpoints exported before show them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audits import checkpoints, record
from portal.audits.models import AuditEvent
from portal.audits.services import allow_retention_in_this_transaction, compute_hash, verify
from portal.extensions import db
from tests.audits.tamper import as_intruder
from tests.factories import make_user

EVENTS = 12


@pytest.fixture
def chain(ctx, settings, tmp_path):  # type: ignore[no-untyped-def]
    """EVENTS events with a checkpoint after every fourth, exported to a file; their ids."""
    settings(AUDIT_CHECKPOINT_DIR=str(tmp_path), AUDIT_CHECKPOINT_EVERY=0)
    actor = make_user(role="admin")
    for i in range(EVENTS):
        record("test.tampered", actor, ("thing", i), before={"n": i}, after={"n": i + 1})
        db.session.commit()
        if i % 4 == 3:
            assert checkpoints.write_checkpoint("manual") is not None
    ids = list(db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)))
    assert verify().ok
    return ids


def _found(**options) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(p.event_id, p.kind) for p in verify(**options).problems]


def _exported() -> list[checkpoints.Mark]:
    return checkpoints.read_marks(checkpoints.export_file())


def test_an_untouched_chain_holds_against_its_checkpoints(chain):
    assert len(_exported()) == EVENTS // 4
    assert _found(checkpoints=_exported()) == []


def test_an_edited_row_is_named(chain):
    as_intruder("UPDATE audit_events SET actor_label = 'someone-else' WHERE id = :id", id=chain[5])
    assert _found() == [(chain[5], "edited")]
    # A change inside the data is an edit too.
    as_intruder("UPDATE audit_events SET data = :d WHERE id = :id", d='{"n":0}', id=chain[2])
    assert _found() == [(chain[2], "edited"), (chain[5], "edited")]


def test_a_backdated_row_is_named(chain):
    as_intruder(
        "UPDATE audit_events SET created_at = :at WHERE id = :id",
        at="2001-01-01 00:00:00",
        id=chain[7],
    )
    assert _found() == [(chain[7], "edited")]


def test_a_deleted_row_is_named(chain):
    as_intruder("DELETE FROM audit_events WHERE id = :id", id=chain[6])
    result = verify(checkpoints=_exported())
    assert [(p.event_id, p.kind) for p in result.problems] == [(chain[7], "deleted")]
    assert f"row {chain[6]} was deleted" in result.problems[0].detail


def test_two_reordered_rows_are_named(chain):
    first, second = chain[4], chain[5]
    as_intruder("UPDATE audit_events SET id = -1 WHERE id = :id", id=first)
    as_intruder("UPDATE audit_events SET id = :a WHERE id = :b", a=first, b=second)
    as_intruder("UPDATE audit_events SET id = :b WHERE id = -1", b=second)
    result = verify()
    assert [(p.event_id, p.kind) for p in result.problems] == [
        (first, "out-of-order"),
        (second, "out-of-order"),
    ]
    assert f"written as row {second}" in result.problems[0].detail


def test_a_cut_tail_is_found_only_with_the_checkpoints(chain):
    as_intruder("DELETE FROM audit_events WHERE id > :id", id=chain[8])
    assert _found() == []  # what is left is a valid chain
    result = verify(checkpoints=_exported())
    assert [(p.event_id, p.kind) for p in result.problems] == [(chain[11], "truncated")]
    assert f"the chain ends at row {chain[8]}" in result.problems[0].detail


def test_a_cut_tail_with_new_events_after_it_is_a_rewrite(chain):
    as_intruder("DELETE FROM audit_events WHERE id > :id", id=chain[8])
    for i in range(5):
        record("test.after_the_cut", None, None, i=i)
    db.session.commit()
    assert _found() == []
    assert _found(checkpoints=_exported()) == [(chain[11], "rewritten")]


def _rewrite_from(event_id: int) -> None:
    """Change a row and recompute every hash from it to the head, as a careful intruder would."""
    allow_retention_in_this_transaction()
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.id >= event_id).order_by(AuditEvent.id)
    ).all()
    previous = db.session.scalar(select(AuditEvent.hash).where(AuditEvent.id == event_id - 1))
    events[0].actor_label = "nobody"
    for event in events:
        event.prev_hash = previous
        event.hash = compute_hash(event)
        previous = event.hash
        db.session.flush()
    db.session.commit()


def test_a_chain_rewritten_from_the_middle_is_found_only_with_the_checkpoints(chain):
    _rewrite_from(chain[6])
    assert _found() == []
    result = verify(checkpoints=_exported())
    assert [(p.event_id, p.kind) for p in result.problems] == [(chain[7], "rewritten")]
    # The last checkpoint that still holds bounds where the rewrite began.
    assert f"after {chain[3]} on" in result.problems[0].detail


def test_a_rewrite_is_found_with_the_database_checkpoints_too(chain):
    _rewrite_from(chain[9])
    assert _found(checkpoints=checkpoints.stored_marks()) == [(chain[11], "rewritten")]


def test_a_rewritten_row_that_stops_short_of_the_head_breaks_the_next_link(chain):
    allow_retention_in_this_transaction()
    event = db.session.get(AuditEvent, chain[3])
    event.actor_label = "nobody"
    event.hash = compute_hash(event)
    db.session.commit()
    assert _found() == [(chain[4], "broken-link")]


def test_the_command_names_the_cut_tail_from_the_exported_file(app, chain):
    as_intruder("DELETE FROM audit_events WHERE id > :id", id=chain[9])
    runner = app.test_cli_runner()
    plain = runner.invoke(args=["audits", "verify", "--quiet"])
    assert plain.exit_code == 0, plain.output
    path = str(checkpoints.export_file())
    found = runner.invoke(args=["audits", "verify", "--quiet", "--checkpoints", path])
    assert found.exit_code == 1
    assert f"BROKEN: row {chain[11]}: truncated" in found.output


def test_the_command_refuses_a_file_that_holds_no_checkpoints(app, chain, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a checkpoint\n")
    result = app.test_cli_runner().invoke(args=["audits", "verify", "--checkpoints", str(bad)])
    assert result.exit_code != 0
    assert "line 1: not a checkpoint" in result.output
