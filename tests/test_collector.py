"""Start-up objects are frozen, so full garbage collections stay short (eventsproject.collector)."""

from __future__ import annotations

import gc

from eventsproject import asgi, collector


def test_what_start_up_loaded_is_out_of_the_collectors_reach():
    assert asgi.application is not None
    # Django, DRF, Channels and the project: far more than a full pass should walk each time.
    assert gc.get_freeze_count() > 50_000


async def test_what_first_use_loaded_is_frozen_a_while_later(monkeypatch):
    monkeypatch.setattr(collector, "SETTLE_SECS", 0)
    before = gc.get_freeze_count()
    loaded_on_first_use = [[n] for n in range(1_000)]  # lists are always tracked
    [task] = await collector.freeze_after_first_use()
    await task
    assert gc.get_freeze_count() >= before + len(loaded_on_first_use)
