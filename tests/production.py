"""A real server in production mode (DJANGO_DEBUG=false), with its static files collected.

The suite's own settings (tests.settings) serve the in-process test client; a server
started here runs the service's settings (``eventsproject.settings``) as a deployment
does, with ``collectstatic`` run once per test session into a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import Deployment, deployment, manage

PRODUCTION = {"DJANGO_DEBUG": "false", "DJANGO_SETTINGS_MODULE": "eventsproject.settings"}


def collect_static(static_root: Path, var_dir: Path) -> Path:
    """Run ``collectstatic`` with the service's settings into ``static_root``."""
    env = {**os.environ, **PRODUCTION, "EVENTS_VAR_DIR": str(var_dir)}
    env["EVENTS_STATIC_ROOT"] = str(static_root)
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    return static_root


@contextmanager
def production_server(static_root: Path) -> Iterator[Deployment]:
    """One uvicorn process in production mode serving the collected ``static_root``."""
    with deployment(
        1, server="uvicorn", REDIS_URL="", EVENTS_STATIC_ROOT=str(static_root), **PRODUCTION
    ) as running:
        yield running
