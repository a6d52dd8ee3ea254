"""What a server process checks before it answers anything: the collected static files.

In production mode (``DJANGO_DEBUG=false``) every page that links a static file (the
landing page, the admin, Swagger UI) looks its cache-busted name up in the manifest that
``manage.py collectstatic`` writes. Without the manifest, or with one an older version
wrote (an upgrade without ``collectstatic``), such pages would answer 500. The ASGI
application refuses to start instead, with one line naming ``collectstatic``, and
``manage.py check --deploy`` reports the same (``eventsproject.E001``, ``E002``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.contrib.staticfiles.finders import get_finders
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.files.storage import storages

MISSING = "eventsproject.E001"
STALE = "eventsproject.E002"
RUN_COLLECTSTATIC = (
    "run `python manage.py collectstatic --noinput` with the same EVENTS_STATIC_ROOT before "
    "starting in production mode (DJANGO_DEBUG=false), or set DJANGO_DEBUG=true"
)


def static_files_problems() -> list[Error]:
    """What would make production pages answer 500 for want of collected static files."""
    storage = storages["staticfiles"]
    if settings.DEBUG or not isinstance(storage, ManifestFilesMixin):
        return []
    manifest = Path(storage.location) / storage.manifest_name
    if storage.read_manifest() is None:
        return [
            Error(
                f"the static files are not collected ({manifest} is missing): {RUN_COLLECTSTATIC}",
                id=MISSING,
            )
        ]
    collected, _ = storage.load_manifest()
    missing = sorted(set(static_files()) - set(collected))
    if not missing:
        return []
    return [
        Error(
            f"{len(missing)} static files are not in {manifest} "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}), "
            f"collected for another version: {RUN_COLLECTSTATIC}",
            id=STALE,
        )
    ]


def static_files() -> list[str]:
    """The names of the static files ``collectstatic`` would collect now."""
    ignore = apps.get_app_config("staticfiles").ignore_patterns  # type: ignore[attr-defined]  # StaticFilesConfig
    names = []
    for finder in get_finders():
        for path, storage in finder.list(ignore):
            prefix = getattr(storage, "prefix", None)
            names.append(os.path.join(prefix, path) if prefix else path)
    return names


def refuse_without_static_files() -> None:
    """Stop the process with one line on standard error when a problem is found."""
    for problem in static_files_problems():
        sys.stderr.write(f"events: cannot start: {problem.msg}.\n")
        raise SystemExit(1)


@register(Tags.staticfiles, deploy=True)
def check_static_files(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``manage.py check --deploy``: what the start refuses."""
    return list(static_files_problems())
