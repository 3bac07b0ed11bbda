"""Sphinx configuration for the flask-audit documentation (builds offline, warnings as errors)."""

from __future__ import annotations

import importlib.metadata

project = "flask-audit"
copyright = "2026, the flask-audit authors"
author = "the flask-audit authors"
release = importlib.metadata.version("flask-audit")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinxcontrib.log_cabinet",
    "pallets_sphinx_themes",
]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
html_theme = "flask"
html_context = {"project_links": []}
html_title = f"flask-audit {version}"
exclude_patterns = ["_build"]
