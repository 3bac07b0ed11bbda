"""The extension objects, made once and bound to each app by :func:`demo_app.create_app`."""

from __future__ import annotations

import sqlalchemy.orm as sa_orm
from flask_login import LoginManager
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from flask_audit import Audit


class Base(sa_orm.DeclarativeBase):
    """The demo's declarative base; flask_audit adds its own tables to this metadata."""


db = SQLAlchemy(model_class=Base)
audit = Audit(db=db)
login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()
