"""The ``audit`` blueprint: the admin page, mounted at ``AUDIT_URL_PREFIX``."""

from __future__ import annotations

from flask import Flask

from .config import AuditConfig


def register(app: Flask, config: AuditConfig) -> None:
    """Mount the blueprint on ``app``."""
