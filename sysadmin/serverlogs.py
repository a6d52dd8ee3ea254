"""Daphne's access log through the service's JSON logs, its secrets masked.

Daphne writes one plain-text line per request and WebSocket step straight to
standard output (at its default verbosity), the whole URI included: a
``?apiKey=`` or ``?token=`` would be printed as is. Its writer is replaced by
one that logs to ``daphne.access`` (level WARNING in ``settings.LOGGING``, so
quiet by default: the service writes its own access line, sysadmin.access),
through the handler whose filter redacts secrets.
"""

from __future__ import annotations

import logging
from typing import Any

from kernel.redaction import redact_text

logger = logging.getLogger("daphne.access")


def write_entry(
    _: Any, host: str, date: Any, request: str, status: Any = None, *__: Any, **___: Any
) -> None:
    """Log one of Daphne's access entries (its ``AccessLogGenerator.write_entry``)."""
    logger.info("%s %s %s", host, redact_text(request), status or "-")


def route_daphne_access_log() -> None:
    """Send Daphne's access entries, if Daphne is installed, to ``daphne.access``."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # pragma: no cover - Daphne is a dependency
        return
    AccessLogGenerator.write_entry = write_entry
