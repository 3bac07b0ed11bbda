"""LibreOffice opens an exported CSV with accented, emoji and right-to-left text intact.

The real spreadsheet, headless: ``soffice --convert-to xlsx`` reads the export with the
CSV import set up as LibreOffice's Text Import dialog sets it up for this file, and the
workbook is converted back to CSV with an explicit UTF-8 filter to read what the cells hold.

Why "as the dialog sets it up": an admin who opens the file gets the Text Import dialog,
which preselects UTF-8 when the file starts with the UTF-8 byte order mark (it sniffs for
it) and the legacy code page otherwise. Headless, there is no dialog: LibreOffice 7.4
(Debian 12) reads a CSV given no options as Windows-1252 whatever its first bytes, and
7.6 and later as UTF-8, so the bare default would test the LibreOffice version rather than
the file. The test therefore picks the character set from the file's first bytes as the
dialog does: without the BOM it imports Windows-1252 and the text comes out as mojibake.

LibreOffice is a Debian package (``libreoffice-calc-nogui``); without it the test skips,
except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import pathlib
import shutil
import subprocess

import pytest

from ..conftest import IN_CI
from ..conftest import MakeApp
from ..export_fixtures import build_site
from ..export_fixtures import Site

#: The bytes are the same on every backend (``test_csv_export`` compares them): one suffices.
pytestmark = pytest.mark.backends("sqlite")

CSV_FILTER = "Text - txt - csv (StarCalc)"
UTF8 = "76"  # LibreOffice's number for UTF-8 in filter options
ANSI = "ANSI"  # the Windows code page (1252)
TEXTS = {
    "team": "Équipe Zoë 🚀",
    "activity": "Renamed فريق المبيعات to فريق النمو (Zoë’s team, 日本語, Ελληνικά)",
    "actor_email": "zoë@exämple.test",
    "user_agent": '=HYPERLINK("http://evil.example","click")',
}


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A LibreOffice user profile for this module's runs: made once, it makes each run faster."""
    return tmp_path_factory.mktemp("libreoffice")


@pytest.fixture(scope="module")
def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        reason = "LibreOffice is not installed (apt-get install libreoffice-calc-nogui)"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true: a missing checker is a failure", pytrace=False)
        pytest.skip(reason)
    return found


@pytest.fixture
def site(make_app: MakeApp) -> Site:
    return build_site(make_app, None)


def dialog_charset(data: bytes) -> str:
    """The character set LibreOffice's Text Import dialog preselects for ``data``."""
    return UTF8 if data.startswith(codecs.BOM_UTF8) else ANSI


def convert(
    soffice: str, profile: pathlib.Path, source: pathlib.Path, target: str, *options: str
) -> pathlib.Path:
    """Run ``soffice --headless --convert-to target`` on ``source``; the file it wrote."""
    out = source.parent / f"out-{target.split(':')[0]}"
    command = [
        soffice,
        "--headless",
        "--norestore",
        f"-env:UserInstallation={(profile / 'user').as_uri()}",
        *options,
        "--convert-to",
        target,
        "--outdir",
        str(out),
        str(source),
    ]
    env = {"HOME": str(profile), "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    written = out / f"{source.stem}.{target.split(':')[0]}"
    assert done.returncode == 0 and written.exists(), (done.stdout, done.stderr)
    return written


def open_in_libreoffice(
    soffice: str, profile: pathlib.Path, data: bytes, work: pathlib.Path
) -> list[list[str]]:
    """The cells LibreOffice reads from the CSV ``data``, through an .xlsx workbook."""
    source = work / "audit-log.csv"
    source.write_bytes(data)
    infilter = f"--infilter={CSV_FILTER}:44,34,{dialog_charset(data)},1"
    workbook = convert(soffice, profile, source, "xlsx", infilter)
    back = convert(soffice, profile, workbook, f"csv:{CSV_FILTER}:44,34,{UTF8},1")
    return list(csv.reader(io.StringIO(back.read_text("utf-8"), newline="")))


def export_of(site: Site) -> bytes:
    """What the admin receives for one event with every script in it."""
    site.insert(site.event(tenant_id="acme", **TEXTS))
    runner = site.app.test_cli_runner()
    out = pathlib.Path(site.app.instance_path) / f"lo-{id(site)}.csv"
    try:
        result = runner.invoke(args=["audit", "export", "--out", str(out), "--event-type", "team.created"])
        assert result.exit_code == 0, result.output
        return out.read_bytes()
    finally:
        out.unlink(missing_ok=True)


def test_libreoffice_opens_every_script_intact(
    site: Site, soffice: str, profile: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    data = export_of(site)
    header, row = open_in_libreoffice(soffice, profile, data, tmp_path)
    assert header[:4] == ["Time", "Team", "Entity", "Activity"]  # the BOM read as a mark, not text
    assert (row[1], row[3], row[5]) == (TEXTS["team"], TEXTS["activity"], TEXTS["actor_email"])
    assert row[9] == "'" + TEXTS["user_agent"]  # still text: no formula ran


def test_without_the_bom_libreoffice_garbles_the_text(
    site: Site, soffice: str, profile: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The same check fails for a file without the mark: the test can fail."""
    data = export_of(site).removeprefix(codecs.BOM_UTF8)
    _, row = open_in_libreoffice(soffice, profile, data, tmp_path)
    assert row[1].startswith("Ã‰quipe ZoÃ«")  # "Équipe Zoë" read as Windows-1252
