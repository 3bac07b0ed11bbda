"""Settings › Security: TOTP enrolment, disabling it, an admin's reset, and the SSO settings.

Two-factor changes are sent as flask_audit signals with ``session=db.session``, so each
event commits with the change. The SSO page reads IdP metadata with
:func:`flask_audit.sso.read_idp_metadata`, so the trail records the facts of the metadata
(entity id, sign-in URL, certificate fingerprints), and :func:`record_sso_change` turns
the difference into ``sso.configured``, ``sso.updated`` or ``sso.disabled``. Metadata that
cannot be read shows its error and records nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pathlib
import re
import typing as t

import pyotp
import sqlalchemy as sa
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import Response
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required
from markupsafe import Markup
from werkzeug.security import check_password_hash

from flask_audit import signals
from flask_audit.capture.totp import matching_step
from flask_audit.sso import IdpMetadata
from flask_audit.sso import InvalidMetadataError
from flask_audit.sso import read_idp_metadata
from flask_audit.sso import record_sso_change

from .extensions import db
from .helpers import account
from .helpers import admin_required
from .helpers import app_object
from .helpers import field
from .models import SsoSettings
from .models import User

blueprint = Blueprint("security", __name__, url_prefix="/settings")

METHOD = "authenticator app"
SAMPLE_METADATA = pathlib.Path(__file__).with_name("sample_idp_metadata.xml")
_SVG_SIZE = re.compile(r'\s(width|height)="[^"]*"')


def qr_svg(uri: str) -> Markup | None:
    """The URI as an inline SVG QR code, when the optional ``qrcode`` package is installed."""
    try:
        qrcode = importlib.import_module("qrcode")
        svg = importlib.import_module("qrcode.image.svg")
    except ImportError:
        return None
    image = qrcode.make(uri, image_factory=svg.SvgPathImage, box_size=10, border=2)
    text = _SVG_SIZE.sub("", image.to_string(encoding="unicode"), count=2)
    return Markup(
        text.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1)
    )


@blueprint.get("/security")
@login_required
def index() -> ResponseReturnValue:
    return render_template("settings/security.html", user=account(), error=None)


@blueprint.post("/security/two-factor")
@login_required
def start_two_factor() -> ResponseReturnValue:
    user = account()
    if not user.two_factor_enabled:
        user.totp_pending_secret = pyotp.random_base32()
        db.session.commit()
    return redirect(url_for("security.setup_two_factor"))


def _setup_page(user: User, error: str | None = None) -> str:
    secret = t.cast(str, user.totp_pending_secret)
    issuer = current_app.config["DEMO_PRODUCT_NAME"]
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template(
        "settings/two_factor_setup.html", user=user, uri=uri, qr=qr_svg(uri), secret=grouped, error=error
    )


@blueprint.route("/security/two-factor/setup", methods=["GET", "POST"])
@login_required
def setup_two_factor() -> ResponseReturnValue:
    user = account()
    if user.two_factor_enabled or user.totp_pending_secret is None:
        return redirect(url_for("security.index"))
    if request.method == "GET":
        return _setup_page(user)
    code = field("code", 32).replace(" ", "")
    step = matching_step(user.totp_pending_secret, code) if re.fullmatch(r"\d{6}", code) else None
    if step is None:
        return _setup_page(
            user, "That code does not match. Scan the code again and enter the current one."
        ), 400
    user.totp_secret, user.totp_pending_secret, user.totp_last_step = user.totp_pending_secret, None, step
    signals.two_factor_enabled.send(app_object(), user=user, method=METHOD, session=db.session)
    db.session.commit()
    flash("Two-factor authentication is on. You will be asked for a code when you sign in.", "success")
    return redirect(url_for("security.index"))


@blueprint.post("/security/two-factor/disable")
@login_required
def disable_two_factor() -> ResponseReturnValue:
    user = account()
    if not user.two_factor_enabled:
        return redirect(url_for("security.index"))
    if not check_password_hash(user.password_hash, request.form.get("password", "")):
        error = "Enter your current password to turn two-factor authentication off."
        return render_template("settings/security.html", user=user, error=error), 400
    user.totp_secret = user.totp_last_step = None
    signals.two_factor_disabled.send(app_object(), user=user, method=METHOD, session=db.session)
    db.session.commit()
    flash("Two-factor authentication is off.", "success")
    return redirect(url_for("security.index"))


@blueprint.post("/members/<int:user_id>/two-factor/reset")
@admin_required
def reset_two_factor(user_id: int) -> ResponseReturnValue:
    user = db.get_or_404(User, user_id)
    if user.two_factor_enabled or user.totp_pending_secret:
        user.totp_secret = user.totp_pending_secret = user.totp_last_step = None
        signals.two_factor_reset.send(app_object(), user=user, session=db.session)
        db.session.commit()
        flash(
            f"Reset two-factor authentication of {user.name}: they can enrol again after signing in.",
            "success",
        )
    return redirect(url_for("workspace.members"))


def _settings() -> SsoSettings | None:
    return db.session.scalar(sa.select(SsoSettings).order_by(SsoSettings.id).limit(1))


def _as_idp(settings: SsoSettings) -> IdpMetadata:
    until = settings.valid_until.replace(tzinfo=dt.timezone.utc) if settings.valid_until else None
    return IdpMetadata(settings.entity_id, settings.sso_url, tuple(settings.fingerprints), until)


def _sso_page(settings: SsoSettings | None, xml: str = "", error: str | None = None) -> str:
    return render_template("settings/sso.html", settings=settings, xml=xml, error=error)


def _submitted_metadata() -> str:
    """The uploaded file if one was chosen, else the pasted text; raises on undecodable bytes."""
    upload = request.files.get("metadata_file")
    if upload is not None and upload.filename:
        try:
            return t.cast(bytes, upload.read()).decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise InvalidMetadataError(
                "The uploaded file is not UTF-8 text: upload the metadata XML file."
            ) from err
    return (request.form.get("metadata_xml") or "").strip()


@blueprint.get("/sso")
@admin_required
def sso() -> ResponseReturnValue:
    xml = SAMPLE_METADATA.read_text("utf-8") if request.args.get("sample") else ""
    return _sso_page(_settings(), xml)


@blueprint.post("/sso")
@admin_required
def save_sso() -> ResponseReturnValue:
    settings = _settings()
    enforced = request.form.get("enforced") == "on"
    xml = ""
    try:
        xml = _submitted_metadata()
        if not xml and settings is None:
            raise InvalidMetadataError("Paste your identity provider's metadata XML or upload the file.")
        new = read_idp_metadata(xml) if xml else _as_idp(t.cast(SsoSettings, settings))
    except InvalidMetadataError as err:
        return _sso_page(settings, xml, str(err)), 400
    old = _as_idp(settings) if settings else None
    event = record_sso_change(
        old, new, enforced=enforced, previously_enforced=settings.enforced if settings else None
    )
    if settings is None:
        settings = SsoSettings(metadata_xml=xml)
        db.session.add(settings)
    elif xml:
        settings.metadata_xml = xml
    settings.entity_id, settings.sso_url = new.entity_id, new.sso_url
    settings.fingerprints = list(new.signing_fingerprints)
    settings.valid_until = new.valid_until.replace(tzinfo=None) if new.valid_until else None
    settings.enforced = enforced
    db.session.commit()
    flash(event.activity + "." if event is not None else "Nothing changed.", "success" if event else "info")
    return redirect(url_for("security.sso"))


@blueprint.post("/sso/disable")
@admin_required
def disable_sso() -> ResponseReturnValue:
    settings = _settings()
    if settings is not None:
        event = record_sso_change(_as_idp(settings), None, previously_enforced=settings.enforced)
        db.session.delete(settings)
        db.session.commit()
        flash(f"{event.activity if event else 'Disabled SSO'}.", "success")
    return redirect(url_for("security.sso"))


@blueprint.get("/sso/sample-idp-metadata.xml")
@admin_required
def sample_metadata() -> ResponseReturnValue:
    return Response(
        SAMPLE_METADATA.read_bytes(),
        mimetype="application/samlmetadata+xml",
        headers={"Content-Disposition": "attachment; filename=sample-idp-metadata.xml"},
    )
