"""The Alembic revisions that create flask_audit's tables, for apps that manage their schema
with Flask-Migrate or Alembic instead of ``db.create_all()``.

The revisions live on their own branch, labelled ``flask_audit``, whose first has no
parent: together they do the same as ``create_all`` (tables, indexes, insert-only
triggers and the ``audit.enabled`` row), reading ``AUDIT_RETENTION_DAYS`` from the app
that runs them (90 outside an app).
Add :data:`VERSIONS_DIR` to the version locations, keeping your own ``versions`` folder.
With Flask-Migrate, in the app factory::

    import os
    from flask_audit.migrations import VERSIONS_DIR

    migrate = Migrate(app, db)

    @migrate.configure
    def add_flask_audit(config):
        own = os.path.join(config.get_main_option("script_location"), "versions")
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", os.pathsep.join([own, VERSIONS_DIR]))
        return config

Create the table before autogenerating anything else (``flask db migrate`` would put
``audit_event`` into your own revision otherwise), then join the two branches once, your
head first, so that plain ``flask db upgrade`` and ``flask db migrate`` keep working::

    flask db upgrade flask_audit@head
    flask db merge <your head> flask_audit@head -m "merge flask_audit"
    flask db upgrade

A later flask-audit release that ships a revision makes its branch a second head again:
run the same three commands once more after upgrading the package.

Alembic writes a new revision next to the first head it is based on: never let it land
in :data:`VERSIONS_DIR`, inside the installed package. With no revision of your own yet,
skip the merge and create your first one with ``flask db migrate --version-path
migrations/versions``.

With plain Alembic, put the path that ``python -c "from flask_audit.migrations import
VERSIONS_DIR; print(VERSIONS_DIR)"`` prints into ``version_locations`` in ``alembic.ini``
(with ``path_separator = os``), then ``alembic upgrade flask_audit@head``. The revision
runs online only, not with ``--sql``: it installs triggers through the connection.
"""

from __future__ import annotations

import os

#: Absolute path of the folder holding flask_audit's revisions, for ``version_locations``.
VERSIONS_DIR: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "versions")

__all__ = ["VERSIONS_DIR"]
