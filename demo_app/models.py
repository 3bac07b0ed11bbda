"""The workspace's tables: users, teams, invitations, SSO settings and the dev mailbox.

Times are stored as naive UTC. Text and binary columns that may hold a whole CSV export
use the MariaDB variants that are large enough for it.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
from flask_login import UserMixin
from sqlalchemy.dialects import mysql

from .extensions import Base
from .extensions import db

ROLES = ("member", "admin")

_LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
_BLOB = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def utcnow() -> dt.datetime:
    """Now in UTC, naive, as the tables store it."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


team_member = sa.Table(
    "demo_team_member",
    Base.metadata,
    sa.Column("team_id", sa.ForeignKey("demo_team.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("demo_user.id", ondelete="CASCADE"), primary_key=True),
)


class Team(Base):
    __tablename__ = "demo_team"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(80), unique=True)
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(default=utcnow)
    members: sa_orm.Mapped[list[User]] = sa_orm.relationship(
        secondary=team_member, back_populates="teams", order_by="User.name"
    )


class User(UserMixin, Base):
    __tablename__ = "demo_user"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255), unique=True)
    name: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(120))
    password_hash: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))
    role: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="member")
    primary_team_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
        sa.ForeignKey("demo_team.id", ondelete="SET NULL")
    )
    totp_secret: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    totp_pending_secret: sa_orm.Mapped[str | None] = sa_orm.mapped_column(sa.String(64))
    totp_last_step: sa_orm.Mapped[int | None] = sa_orm.mapped_column(sa.BigInteger())
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(default=utcnow)

    primary_team: sa_orm.Mapped[Team | None] = sa_orm.relationship(foreign_keys=[primary_team_id])
    teams: sa_orm.Mapped[list[Team]] = sa_orm.relationship(
        secondary=team_member, back_populates="members", order_by="Team.name"
    )

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_secret is not None

    @property
    def initials(self) -> str:
        parts = [part for part in self.name.split() if part]
        return "".join(part[0] for part in parts[:2]).upper() or self.email[:1].upper()


class Invitation(Base):
    __tablename__ = "demo_invitation"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    email: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))
    role: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(16), default="member")
    team_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
        sa.ForeignKey("demo_team.id", ondelete="SET NULL")
    )
    token: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(64), unique=True)
    invited_by_id: sa_orm.Mapped[int | None] = sa_orm.mapped_column(
        sa.ForeignKey("demo_user.id", ondelete="SET NULL")
    )
    created_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(default=utcnow)
    accepted_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column()
    revoked_at: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column()

    team: sa_orm.Mapped[Team | None] = sa_orm.relationship()
    invited_by: sa_orm.Mapped[User | None] = sa_orm.relationship()

    @property
    def pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


class SsoSettings(Base):
    """The workspace's one identity provider: the facts read from its metadata."""

    __tablename__ = "demo_sso_settings"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    metadata_xml: sa_orm.Mapped[str] = sa_orm.mapped_column(_LONG_TEXT)
    entity_id: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(512))
    sso_url: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(1024))
    fingerprints: sa_orm.Mapped[list[str]] = sa_orm.mapped_column(sa.JSON())
    valid_until: sa_orm.Mapped[dt.datetime | None] = sa_orm.mapped_column()
    enforced: sa_orm.Mapped[bool] = sa_orm.mapped_column(default=False)
    updated_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(default=utcnow, onupdate=utcnow)


class MailMessage(Base):
    """A message the app sent while no SMTP server was configured."""

    __tablename__ = "demo_mail_message"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    sent_at: sa_orm.Mapped[dt.datetime] = sa_orm.mapped_column(default=utcnow)
    sender: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(320))
    recipients: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(2000))
    subject: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(500))
    body: sa_orm.Mapped[str] = sa_orm.mapped_column(_LONG_TEXT, default="")
    html: sa_orm.Mapped[str | None] = sa_orm.mapped_column(_LONG_TEXT)
    attachments: sa_orm.Mapped[list[MailAttachment]] = sa_orm.relationship(
        back_populates="message", cascade="all, delete-orphan", order_by="MailAttachment.id"
    )


class MailAttachment(Base):
    __tablename__ = "demo_mail_attachment"

    id: sa_orm.Mapped[int] = sa_orm.mapped_column(primary_key=True)
    message_id: sa_orm.Mapped[int] = sa_orm.mapped_column(
        sa.ForeignKey("demo_mail_message.id", ondelete="CASCADE")
    )
    filename: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))
    content_type: sa_orm.Mapped[str] = sa_orm.mapped_column(sa.String(255))
    data: sa_orm.Mapped[bytes] = sa_orm.mapped_column(_BLOB)
    message: sa_orm.Mapped[MailMessage] = sa_orm.relationship(back_populates="attachments")

    @property
    def size(self) -> int:
        return len(self.data)


def get_by_email(email: str) -> User | None:
    """The user with this email, compared without case."""
    query = sa.select(User).where(sa.func.lower(User.email) == email.strip().lower())
    return t.cast("User | None", db.session.scalar(query))
