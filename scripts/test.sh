#!/usr/bin/env bash
# The whole test suite from a fresh machine: system packages, a virtualenv with the
# project and its test extras, then lint, types and the tests on SQLite, PostgreSQL
# and MariaDB. Extra arguments go to pytest (e.g. `bash scripts/test.sh -k spool`).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${FLASK_AUDIT_VENV:-.venv}
# Debian packages the tests need, installed when missing: xmlsec1 signs and checks SAML
# messages, chromium runs the browser tests (driven by Playwright, never downloaded),
# iproute2 makes the network namespaces of the multi-host load test, LibreOffice (without
# its desktop) opens exported CSV files as a spreadsheet user would, NATS and RabbitMQ
# receive the streaming tests' events (.ci/run starts them), and npm fetches axe-core,
# the accessibility checker the browser tests inject into each page.
apt_packages=(xmlsec1 chromium iproute2 libreoffice-calc-nogui nats-server rabbitmq-server)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test,docs,postgres,mysql,saml,demo]"

axe_dir=${FLASK_AUDIT_AXE_DIR:-.cache/axe}
[ -f "$axe_dir/node_modules/axe-core/axe.min.js" ] ||
  npm install --no-audit --no-fund --silent --prefix "$axe_dir" "axe-core@4"
export FLASK_AUDIT_AXE="$PWD/$axe_dir/node_modules/axe-core/axe.min.js"

echo "== ruff"
"$venv/bin/ruff" check --no-fix flask_audit tests benchmarks demo_app
"$venv/bin/ruff" format --check flask_audit tests benchmarks demo_app
echo "== mypy"
"$venv/bin/mypy"
echo "== docs"
"$venv/bin/sphinx-build" -W -q -b html docs docs/_build/html
echo "== pytest"
"$venv/bin/pytest" -n 2 --dist loadscope "$@"
