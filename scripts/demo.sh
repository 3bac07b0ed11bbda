#!/usr/bin/env bash
# The demo workspace from a fresh machine: a virtualenv with the project and the demo's
# extras, a seeded SQLite database in instance/, then the app on http://127.0.0.1:5000.
# DEMO_PORT changes the port; FLASK_AUDIT_VENV another virtualenv (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${FLASK_AUDIT_VENV:-.venv}
port=${DEMO_PORT:-5000}
host=127.0.0.1

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[saml,demo]"

export FLASK_AUDIT_EXTERNAL_URL="http://$host:$port"
"$venv/bin/flask" --app demo_app demo init
echo
echo "Acme Workspace is running at http://$host:$port/  (Ctrl+C to stop)"
echo "Audit logs: http://$host:$port/settings/audit-logs/   Mail: http://$host:$port/dev/mailbox/"
echo
exec "$venv/bin/flask" --app demo_app run --host "$host" --port "$port"
