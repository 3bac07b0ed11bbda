"""A PostgreSQL server of the test's own (``benchmarks/_pgcluster.py``), for the tests that
restart one: never the shared server the other tests use. Its binaries missing skip the
test, or fail it under ``CI=true``."""

from __future__ import annotations

import collections.abc as c
import contextlib
import pathlib
import sys
import types
import typing as t

import pytest

from .conftest import IN_CI

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def pgcluster_module() -> c.Iterator[types.ModuleType]:
    """``benchmarks/_pgcluster.py``, once PostgreSQL's server binaries are known to be there."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _pgcluster

        try:
            _pgcluster.bindir()
        except RuntimeError as err:
            if IN_CI:
                pytest.fail(f"{err} (CI=true: a missing PostgreSQL server is a failure)", pytrace=False)
            pytest.skip(str(err))
        yield _pgcluster
    finally:
        sys.path.remove(str(BENCHMARKS))


@contextlib.contextmanager
def private_cluster() -> c.Iterator[t.Any]:
    """A running private PostgreSQL server, stopped and removed afterwards."""
    with pgcluster_module() as module, module.private_cluster() as found:
        yield found


def require_server_binaries() -> None:
    """Skip the test (fail it under ``CI=true``) when PostgreSQL's server binaries are missing."""
    with pgcluster_module():
        return
