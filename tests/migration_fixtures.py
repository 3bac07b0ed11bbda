"""What a user's Alembic setup amounts to, for the migration tests: a script directory of
their own whose ``env.py`` runs the migrations, plus flask_audit's :data:`VERSIONS_DIR`."""

from __future__ import annotations

import pathlib

from alembic.config import Config

from flask_audit.migrations import VERSIONS_DIR

ENV_PY = """
import sqlalchemy as sa
from alembic import context

engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url"), poolclass=sa.pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
"""


def alembic_config(db_url: str, tmp_path: pathlib.Path) -> Config:
    """An Alembic config for ``db_url`` whose script directory sits in ``tmp_path``."""
    (tmp_path / "alembic").mkdir()
    (tmp_path / "alembic" / "env.py").write_text(ENV_PY)
    cfg = Config()
    cfg.set_main_option("script_location", str(tmp_path / "alembic"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", VERSIONS_DIR)
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return cfg
