"""What the service reads past each ASGI server's API: one module per server, pinned.

``uvicorn.py`` and ``daphne.py`` hold every private attribute the service reads of its
server (the WebSocket's direct writes, the event stream's connection), each behind
``EVENTS_DIRECT_WRITES`` and the versions it was written for (``kernel/fastpaths.py``).
An upgrade of a server is checked here, and ``tests/test_direct_writes.py`` fails when
a fast path is no longer taken.
"""
