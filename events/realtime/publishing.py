"""Publishing: turn validated client events into envelopes on the broker.

Every emit, whatever its transport, and every audit or error event the
service writes about itself, goes through :func:`publish`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from events.broker import get_live_stream
from events.event import ClientEvent, Envelope, Source, encode_stored, stored_form
from events.metrics import EMITTED
from events.realtime.outbox import Pending, outbox
from kernel import outages
from kernel.caller import Caller
from kernel.context import RequestContext

# The workspace of what the service itself does across workspaces: its operators'
# actions and the archiver's failures.

logger = logging.getLogger("events.publishing")


def source_for(workspace_id: str, caller: Caller | None, context: RequestContext) -> Source:
    """The ``source`` the service sets on an event, from the caller and the request."""
    return {
        "workspaceId": workspace_id,
        "userId": caller.user_id if caller else None,
        "sessionId": caller.session_id if caller else None,
        "correlationId": context.correlation_id,
        "serviceTopic": context.service_topic or f"events:{context.transport}:emit",
        "ip": context.ip,
        "host": {"service": settings.EVENTS_SERVICE_NAME, "replica": settings.EVENTS_REPLICA},
    }


async def publish(
    workspace_id: str,
    events: list[ClientEvent],
    *,
    caller: Caller | None,
    context: RequestContext,
    error: dict[str, Any] | None = None,
) -> list[Envelope]:
    """Publish events in order, all or nothing; return the stored envelopes."""
    source = source_for(workspace_id, caller, context)
    forms = [stored_form(event, source, error=error) for event in events]
    limit = settings.EVENTS_MAX_EVENT_BYTES
    encoded = [encode_stored(form, max_bytes=limit, index=i) for i, form in enumerate(forms)]
    ids = await get_live_stream().append(workspace_id, encoded)
    outages.answered(outages.BROKER)
    EMITTED.labels(transport=context.transport).inc(len(ids))
    envelopes: list[Envelope] = []
    for event_id, form, data in zip(ids, forms, encoded, strict=True):
        envelopes.append({"id": event_id, **form, "size": len(data)})  # type: ignore[typeddict-item]
    logger.debug("published %d events", len(envelopes))
    return envelopes


def _action_event(event_type: str, payload: Any) -> ClientEvent:
    return {"type": event_type, "payload": payload, "options": {"persist": True}}


async def record_action(
    workspace_id: str,
    event_type: str,
    payload: Any,
    *,
    caller: Caller | None,
    context: RequestContext,
) -> None:
    """Queue an audit event about an action (``events.realtime.outbox``); never fail it."""
    try:
        form = stored_form(
            _action_event(event_type, payload), source_for(workspace_id, caller, context)
        )
        data = encode_stored(form, max_bytes=settings.EVENTS_MAX_EVENT_BYTES, index=0)
    except Exception:
        logger.exception("could not record %s", event_type)
        return
    outbox().put(Pending(workspace_id, data, context.transport))


async def record_action_now(
    workspace_id: str,
    event_type: str,
    payload: Any,
    *,
    caller: Caller | None,
    context: RequestContext,
) -> None:
    """Publish an audit event at once, for code whose event loop ends with the call."""
    try:
        await publish(
            workspace_id, [_action_event(event_type, payload)], caller=caller, context=context
        )
    except Exception as exc:
        dependency = outages.dependency_of(exc)
        if dependency:
            outages.failed(dependency, exc, f"recording {event_type}")  # one stack per outage
        else:
            logger.exception("could not record %s", event_type)
