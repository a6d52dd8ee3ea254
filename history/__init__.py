"""The history: every persistent event the broker carries, stored and searchable.

:func:`get_history` returns the configured history: Elasticsearch when
``ELASTICSEARCH_URL`` is set, else the SQLite table of this app. The archiver
(:mod:`history.archiver`) fills it; search (:mod:`history.search`) reads it.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from history.base import History

_sqlite: History | None = None
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, History] = (
    weakref.WeakKeyDictionary()
)


def get_history() -> History:
    """Return the history; an Elasticsearch client belongs to one event loop, so one per loop."""
    global _sqlite
    from django.conf import settings

    if not settings.ELASTICSEARCH_URL:
        if _sqlite is None:
            from history.sqlite import SqliteHistory

            _sqlite = SqliteHistory()
        return _sqlite
    from history.elastic import ElasticHistory

    loop = asyncio.get_running_loop()
    history = _per_loop.get(loop)
    if history is None:
        history = _per_loop[loop] = ElasticHistory(
            settings.ELASTICSEARCH_URL, prefix=settings.ELASTICSEARCH_INDEX_PREFIX
        )
    return history


def reset_history() -> None:
    """Forget every history client (tests, settings changes)."""
    global _sqlite
    _sqlite = None
    _per_loop.clear()
