"""Short pauses of the garbage collector: what start-up loaded is frozen.

A full collection (generation 2) walks every tracked object. After Django,
DRF and the rest are loaded that is over 100,000 objects, and each full pass
stopped the event loop for 60-80 ms: every event in flight waited, which was
the whole of the benchmark's p99.9 (docs/SIZING.md). ``gc.freeze()`` moves the
objects alive now out of the collector's reach for good; later passes walk
only what was made since. Start-up objects live as long as the process, so
nothing collectable is lost.

The service freezes once when the ASGI application is built, and once more a
while after its first request, when the modules loaded on first use are in.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from kernel.tasks import register

logger = logging.getLogger("eventsproject.collector")

SETTLE_SECS = 30.0


def freeze() -> None:
    """Move every object alive now out of the collector's reach."""
    gc.collect()
    gc.freeze()
    logger.debug("froze %d objects", gc.get_freeze_count())


@register
async def freeze_after_first_use() -> list[asyncio.Task]:
    """Freeze again once the first requests have loaded what they use."""

    async def later() -> None:
        await asyncio.sleep(SETTLE_SECS)
        freeze()

    return [asyncio.get_running_loop().create_task(later(), name="collector-freeze")]
