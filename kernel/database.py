"""ORM work from async code: in Django's one sync thread, with stale connections closed.

What ``channels.db.database_sync_to_async`` does, without making the code below the
adapters depend on Channels: a connection that outlived ``CONN_MAX_AGE`` or broke is
closed before and after the call, as Django does around every request.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import SyncToAsync
from django.db import close_old_connections

P = ParamSpec("P")
T = TypeVar("T")


class _InDatabaseThread(SyncToAsync):
    """``sync_to_async`` (thread-sensitive) that tidies the thread's connections."""

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the call between two ``close_old_connections``."""
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            close_old_connections()


def database_sync_to_async(function: Callable[P, T]) -> Callable[P, Coroutine[Any, Any, T]]:
    """``function`` as a coroutine function run in the database thread."""
    return _InDatabaseThread(function)
