"""The migrations build exactly the models' schema, from an empty database."""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from portal import create_app
from portal.extensions import db
from tests.conftest import TMP, settings_for_tests


def _empty_database_url() -> str:
    base = os.environ.get("TEST_DATABASE_URL", "")
    if not base.startswith("postgresql"):
        path = TMP / "migrations.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = create_engine(
        base.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS portal_migrations_test"))
        conn.execute(text("CREATE DATABASE portal_migrations_test"))
    admin.dispose()
    return base.rsplit("/", 1)[0] + "/portal_migrations_test"


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression")
def test_migrations_match_the_models_and_downgrade_cleanly():
    app = create_app(settings_for_tests(DATABASE_URL=_empty_database_url()))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, db.metadata)
            catalog = (
                "SELECT indexname FROM pg_indexes WHERE tablename = 'users'"
                if conn.dialect.name == "postgresql"
                else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users'"
            )
            indexes = set(conn.execute(text(catalog)).scalars())
        assert differences == [], differences
        # Expression indexes are invisible to the comparison; check them by name.
        assert "ix_users_name_lower" in indexes

        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        db.session.remove()
        db.engine.dispose()
