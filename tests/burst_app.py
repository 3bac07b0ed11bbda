"""The test app as a real server process serves it: ``gunicorn tests.burst_app:app``.

Built from ``BURST_APP_CONFIG``, a JSON object of Flask settings (database URL, pool
options, ``AUDIT_*`` keys), so that each burst runs the same code under other settings.
"""

from __future__ import annotations

import json
import os

from .apps import create_app

app = create_app(**json.loads(os.environ.get("BURST_APP_CONFIG", "{}")))
