"""SQLite experiments: an id is never handed out twice (AUTOINCREMENT).

Without AUTOINCREMENT, SQLite gives a new row the highest id in the table plus one, so once the
newest experiment's row is gone its id would name the next experiment created, and every URL,
``mlflow-artifacts:/<id>`` URI and script that held the old id would silently reach the new one.
With it, SQLite remembers the highest id ever used (``sqlite_sequence``).

SQLite cannot add AUTOINCREMENT to a table, so ``experiments`` is rebuilt: copied into a new
table, the old one dropped, the new one renamed; ids, names and timestamps are kept. Runs,
experiment tags and logged models reference it with ``ON DELETE CASCADE``, so the rebuild must
run with foreign keys off (dropping the old table would otherwise delete them all): ``shipyard db
upgrade`` does (see ``Database.write``) and checks every reference before it commits.

PostgreSQL needs nothing: its ids come from a sequence, which never hands out a value twice.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Tables whose rows a DROP TABLE experiments would delete while foreign keys are enforced.
_REFERENCING = ("experiment_tags", "runs", "logged_models")


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        held = [t for t in _REFERENCING if bind.exec_driver_sql(f"SELECT 1 FROM {t} LIMIT 1").first()]
        if held:
            raise RuntimeError(
                f"migration 0007 rebuilds the experiments table, which {', '.join(held)} reference with ON "
                "DELETE CASCADE: with foreign keys enforced that would delete their rows. Run it through "
                "`shipyard db upgrade`, which turns foreign keys off for the migration.")
    with op.batch_alter_table("experiments", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)
