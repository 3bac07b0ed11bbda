"""A real server process for the tests that need one: gunicorn on a free loopback port."""

from __future__ import annotations

import collections.abc as c
import contextlib
import http.client
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import typing as t
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def gunicorn(
    config: c.Mapping[str, t.Any], log: pathlib.Path, *, workers: int = 2, threads: int = 16
) -> c.Iterator[int]:
    """Serve ``tests.burst_app`` built with ``config``; the port. Stopped by pid afterwards."""
    port = free_port()
    env = {**os.environ, "BURST_APP_CONFIG": json.dumps(dict(config)), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "gunicorn", f"--workers={workers}", "--worker-class=gthread"]
    command += [f"--threads={threads}", f"--bind=127.0.0.1:{port}", "--log-level=warning", "--timeout=120"]
    command += ["tests.burst_app:app"]
    help_text = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True)
    if "--no-control-socket" in help_text.stdout:
        command.append("--no-control-socket")
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _wait_ready(process, port, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: pathlib.Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            post(port, "/logout", {}, "ready-check")
            return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer on port {port} within 60 s")


def post(port: int, path: str, form: c.Mapping[str, str], request_id: str) -> tuple[int, str]:
    """POST ``form`` on a connection of its own; the status and the session cookie set, if any."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Request-ID": request_id}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, urllib.parse.urlencode(form), headers)
        response = conn.getresponse()
        response.read()
        cookies = response.headers.get_all("Set-Cookie") or []
        return response.status, "; ".join(cookie.split(";")[0] for cookie in cookies)
    finally:
        conn.close()
