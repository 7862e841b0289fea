"""ticket full-text search: a search table per dialect, kept current by triggers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 01:10:00.000000

The search objects are not models: their shape depends on the dialect
(PostgreSQL: a tsvector table with a GIN index; SQLite: an FTS5 virtual table
keyed by the ticket id), so migrations/env.py and the drift test leave every
object named ticket_search* alone. Database triggers keep them current, so rows
written by seeding scripts or raw SQL are indexed like those the portal writes.

What is indexed: the subject, the description and the PUBLIC replies. Internal
notes are never indexed: a requester searching their own tickets must not learn
which words an internal note contains.

Both dialects use the same tokens: runs of letters and digits, lower-cased, no
stemming, no stop words ('simple' on PostgreSQL after punctuation is turned into
spaces, unicode61 on SQLite), so a query finds the same tickets on both. Text
beyond a cap is left out of the index (PostgreSQL refuses a tsvector over 1 MB):
the description's first 20,000 characters and the newest 200,000 characters of
replies.

Note for later migrations: on SQLite, a batch_alter_table that recreates
tickets or ticket_replies drops their triggers; such a migration must create
them again (the statements are below).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

DESCRIPTION_CHARS = 20_000
REPLIES_CHARS = 200_000

POSTGRESQL_UP = [
    """
    CREATE TABLE ticket_search (
        ticket_id integer PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
        document tsvector NOT NULL
    )
    """,
    "CREATE INDEX ix_ticket_search_document ON ticket_search USING gin (document)",
    # ASCII punctuation becomes a space: the default parser would otherwise keep
    # host names, e-mail addresses and paths as single tokens, which SQLite splits.
    r"""
    CREATE FUNCTION ticket_search_words(body text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT regexp_replace(coalesce(body, ''), '[!-/:-@\[-`{-~]+', ' ', 'g')
    $$
    """,
    # PL/pgSQL rather than SQL: its plan is kept for the session, where an SQL function
    # called from a trigger would be planned again for every row.
    f"""
    CREATE FUNCTION ticket_search_refresh(targets integer[]) RETURNS void
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ticket_search (ticket_id, document)
        SELECT t.id,
               setweight(to_tsvector('simple', ticket_search_words(t.subject)), 'A')
               || setweight(to_tsvector('simple', ticket_search_words(
                      left(t.description, {DESCRIPTION_CHARS}))), 'B')
               || setweight(to_tsvector('simple', ticket_search_words(
                      left(r.bodies, {REPLIES_CHARS}))), 'C')
        FROM tickets AS t
        LEFT JOIN LATERAL (
            SELECT string_agg(body, ' ' ORDER BY id DESC) AS bodies
            FROM ticket_replies
            WHERE ticket_id = t.id AND NOT is_internal
        ) AS r ON true
        WHERE t.id = ANY (targets)
        ON CONFLICT (ticket_id) DO UPDATE SET document = excluded.document;
    END
    $$
    """,
    # Inserts and deletes are indexed once per statement (a seeding script's bulk insert
    # is one refresh, not one per row); updates per row, because only a row trigger can
    # be limited to the columns that feed the index.
    """
    CREATE FUNCTION ticket_search_on_tickets_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ticket_search_refresh(ARRAY(SELECT id FROM inserted));
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ticket_search_on_tickets_inserted
    AFTER INSERT ON tickets REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_on_tickets_inserted()
    """,
    """
    CREATE FUNCTION ticket_search_on_ticket_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ticket_search_refresh(ARRAY[NEW.id]);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ticket_search_on_ticket_updated
    AFTER UPDATE OF subject, description ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_search_on_ticket_updated()
    """,
    """
    CREATE FUNCTION ticket_search_on_replies_inserted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ticket_search_refresh(
            ARRAY(SELECT DISTINCT ticket_id FROM inserted WHERE NOT is_internal));
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ticket_search_on_replies_inserted
    AFTER INSERT ON ticket_replies REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_on_replies_inserted()
    """,
    # A deleted ticket's replies go by cascade: its refresh finds no ticket and writes
    # nothing, and its index row goes by the foreign key's own cascade.
    """
    CREATE FUNCTION ticket_search_on_replies_deleted() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM ticket_search_refresh(
            ARRAY(SELECT DISTINCT ticket_id FROM deleted WHERE NOT is_internal));
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ticket_search_on_replies_deleted
    AFTER DELETE ON ticket_replies REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_search_on_replies_deleted()
    """,
    # Both tickets when a reply moves, and a reply turned internal leaves the index.
    """
    CREATE FUNCTION ticket_search_on_reply_updated() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT (OLD.is_internal AND NEW.is_internal) THEN
            PERFORM ticket_search_refresh(ARRAY[OLD.ticket_id, NEW.ticket_id]);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER ticket_search_on_reply_updated
    AFTER UPDATE OF body, is_internal, ticket_id ON ticket_replies
    FOR EACH ROW EXECUTE FUNCTION ticket_search_on_reply_updated()
    """,
    "SELECT ticket_search_refresh(ARRAY(SELECT id FROM tickets))",
]

POSTGRESQL_TRIGGERS = {
    "ticket_search_on_tickets_inserted": "tickets",
    "ticket_search_on_ticket_updated": "tickets",
    "ticket_search_on_replies_inserted": "ticket_replies",
    "ticket_search_on_replies_deleted": "ticket_replies",
    "ticket_search_on_reply_updated": "ticket_replies",
}

POSTGRESQL_DOWN = [
    *(f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table in POSTGRESQL_TRIGGERS.items()),
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in POSTGRESQL_TRIGGERS),
    "DROP FUNCTION IF EXISTS ticket_search_refresh(integer[])",
    "DROP FUNCTION IF EXISTS ticket_search_words(text)",
    "DROP TABLE IF EXISTS ticket_search",
]


def _sqlite_refresh(ticket_id: str) -> str:
    """Delete and insert rather than INSERT OR REPLACE: the conflict policy of the
    statement that fired a trigger overrides the one inside it (an INSERT OR IGNORE
    into ticket_replies would otherwise leave the old row in place)."""
    return f"""
        DELETE FROM ticket_search WHERE rowid = {ticket_id};
        INSERT INTO ticket_search (rowid, subject, description, replies)
        SELECT t.id, t.subject, substr(t.description, 1, {DESCRIPTION_CHARS}),
               coalesce((SELECT substr(group_concat(body, ' '), 1, {REPLIES_CHARS})
                         FROM (SELECT body FROM ticket_replies
                               WHERE ticket_id = t.id AND NOT is_internal
                               ORDER BY id DESC)), '')
        FROM tickets AS t WHERE t.id = {ticket_id};
    """


SQLITE_TRIGGERS = {
    "ticket_search_ticket_insert": (
        "AFTER INSERT ON tickets", _sqlite_refresh("new.id")
    ),
    "ticket_search_ticket_update": (
        "AFTER UPDATE OF subject, description ON tickets", _sqlite_refresh("new.id")
    ),
    "ticket_search_ticket_delete": (
        "AFTER DELETE ON tickets", "DELETE FROM ticket_search WHERE rowid = old.id;"
    ),
    "ticket_search_reply_insert": (
        "AFTER INSERT ON ticket_replies WHEN NOT new.is_internal",
        _sqlite_refresh("new.ticket_id"),
    ),
    "ticket_search_reply_update": (
        "AFTER UPDATE OF body, is_internal, ticket_id ON ticket_replies",
        _sqlite_refresh("old.ticket_id") + _sqlite_refresh("new.ticket_id"),
    ),
    "ticket_search_reply_delete": (
        "AFTER DELETE ON ticket_replies WHEN NOT old.is_internal",
        _sqlite_refresh("old.ticket_id"),
    ),
}


def _sqlite_up() -> list[str]:
    statements = [
        """
        CREATE VIRTUAL TABLE ticket_search USING fts5(
            subject, description, replies, tokenize = 'unicode61 remove_diacritics 0'
        )
        """
    ]
    for name, (when, body) in SQLITE_TRIGGERS.items():
        statements.append(f"CREATE TRIGGER {name} {when} BEGIN {body} END")
    statements.append(
        f"""
        INSERT INTO ticket_search (rowid, subject, description, replies)
        SELECT t.id, t.subject, substr(t.description, 1, {DESCRIPTION_CHARS}),
               coalesce((SELECT substr(group_concat(body, ' '), 1, {REPLIES_CHARS})
                         FROM (SELECT body FROM ticket_replies
                               WHERE ticket_id = t.id AND NOT is_internal
                               ORDER BY id DESC)), '')
        FROM tickets AS t
        """
    )
    return statements


def _sqlite_down() -> list[str]:
    drops = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
    return [*drops, "DROP TABLE IF EXISTS ticket_search"]


def _run(statements: list[str]) -> None:
    for statement in statements:
        op.execute(sa.text(statement))


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _run(POSTGRESQL_UP)
    elif dialect == "sqlite":
        _run(_sqlite_up())
    else:
        raise NotImplementedError(f"ticket search has no layout for {dialect}")


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _run(POSTGRESQL_DOWN)
    elif dialect == "sqlite":
        _run(_sqlite_down())
