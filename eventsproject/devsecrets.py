"""Development mode's secrets: made once per machine, kept 0600 in ``EVENTS_VAR_DIR``.

No secret in the repository ever signs or verifies anything. With
``DJANGO_DEBUG=true`` and no secret in the environment, the service makes a
random one the first time and keeps it in ``<EVENTS_VAR_DIR>/dev-secrets/``
(a 0700 folder, files 0600, never committed: ``var/`` is ignored), so that
``./scripts/serve``, ``manage.py minttoken`` and every process of one machine
agree. Outside development mode the secrets must come from the environment.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# Secrets that were once public (committed to the repository): never accepted.
PUBLIC_SECRETS = frozenset({"insecure-development-secret-do-not-use-in-production"})
FOLDER = "dev-secrets"


def refuse_public(name: str, value: str) -> str:
    """Return the value, unless it is a secret that was ever published."""
    if value in PUBLIC_SECRETS:
        raise ImproperlyConfigured(
            f"{name} is the old development secret from the repository, which anyone can read: "
            "set a secret of your own, e.g. from secrets.token_urlsafe(48)."
        )
    return value


def dev_secret(var_dir: Path, name: str) -> str:
    """This machine's development secret ``name``: read, or made on first use (0600)."""
    folder = var_dir / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        _create(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def _create(path: Path, value: str) -> None:
    """Write the file atomically: two processes starting at once keep the same secret."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value)
    try:
        os.link(temporary, path)  # fails if another process made it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
