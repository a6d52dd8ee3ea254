"""A WebSocket connection's emits (events/realtime/emits.py): in order, each answered once."""

from __future__ import annotations

import asyncio

from events.event import parse_client_event
from events.realtime.emits import EmitPipeline
from kernel.caller import Caller
from tests.test_hub import CONTEXT

EMITTER = Caller.for_api_key("acme", "tests", frozenset({"emit"}))


async def test_one_failed_answer_does_not_stop_the_later_emits_of_the_connection(broker, caplog):
    failed, all_answered = asyncio.Event(), asyncio.Event()
    answered: list[tuple[str, str]] = []

    async def answer(ref, envelope, exc):
        if ref == "first":
            failed.set()
            raise RuntimeError("the answer could not be sent")
        answered.append((ref, envelope["type"]))
        if len(answered) == 3:
            all_answered.set()

    pipeline = EmitPipeline("acme", caller=EMITTER, context=CONTEXT, answer=answer, max_batch=2)
    await pipeline.put("first", parse_client_event({"type": "a"}))
    await failed.wait()

    async def three_more() -> None:
        for n in range(3):
            await pipeline.put(f"later-{n}", parse_client_event({"type": f"b{n}"}))
        await all_answered.wait()

    await asyncio.wait_for(three_more(), 10)  # a bound for the failure, not a timing
    assert answered == [("later-0", "b0"), ("later-1", "b1"), ("later-2", "b2")]
    assert "the answer could not be sent" in caplog.text
    await pipeline.close()
