"""What a server process checks before it answers anything: the collected static files.

In production mode (``DJANGO_DEBUG=false``) every page that links a static file (the
landing page, the admin, Swagger UI) looks its cache-busted name up in the manifest that
``manage.py collectstatic`` writes; without it each such page would answer 500. The ASGI
application refuses to start instead, with one line naming ``collectstatic``, and
``manage.py check --deploy`` reports the same (``eventsproject.E001``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.files.storage import storages


def missing_static_manifest() -> str | None:
    """Why production pages would answer 500 for want of collected static files, or None."""
    storage = storages["staticfiles"]
    if settings.DEBUG or not isinstance(storage, ManifestFilesMixin):
        return None
    if storage.read_manifest() is not None:
        return None
    manifest = Path(storage.location) / storage.manifest_name
    return (
        f"the static files are not collected ({manifest} is missing): run "
        "`python manage.py collectstatic --noinput` with the same EVENTS_STATIC_ROOT before "
        "starting in production mode (DJANGO_DEBUG=false), or set DJANGO_DEBUG=true"
    )


def refuse_without_static_files() -> None:
    """Stop the process with one line on standard error when the manifest is missing."""
    problem = missing_static_manifest()
    if problem:
        sys.stderr.write(f"events: cannot start: {problem}.\n")
        raise SystemExit(1)


@register(Tags.staticfiles, deploy=True)
def check_static_manifest(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``manage.py check --deploy``: the same as the start refuses."""
    problem = missing_static_manifest()
    return [Error(problem, id="eventsproject.E001")] if problem else []
