"""DRF parsers of the CloudEvents media types, and the emit's choice of mode.

The mapping itself is plain Python in :mod:`events.cloudevents`; this module only tells
which mode a request is in (structured, batched, binary, or the service's own JSON) and
hands its body and headers there.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request

from adapters.http.workspace_view import json_body, raw_body
from events import cloudevents
from events.event import ClientEvent, parse_batch
from kernel.errors import ValidationError


class CloudEventParser(BaseParser):
    """``application/cloudevents+json``: one structured CloudEvent."""

    media_type = cloudevents.MEDIA_TYPE

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        """The body's JSON (the CloudEvent is validated by ``events.cloudevents``)."""
        try:
            return orjson.loads(stream.read() if stream is not None else b"")
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"the body is not JSON: {exc}") from None


class CloudEventBatchParser(CloudEventParser):
    """``application/cloudevents-batch+json``: a JSON array of structured CloudEvents."""

    media_type = cloudevents.BATCH_MEDIA_TYPE


PARSERS = [JSONParser, CloudEventParser, CloudEventBatchParser]


def emitted_events(request: Request, *, max_batch: int) -> list[ClientEvent]:
    """The client events of an emit, in whichever mode it came."""
    media = (request.content_type or "").partition(";")[0].strip().lower()
    if media == cloudevents.MEDIA_TYPE:
        return [cloudevents.parse_structured(request.data)]
    if media == cloudevents.BATCH_MEDIA_TYPE:
        return cloudevents.parse_structured_batch(request.data, max_batch=max_batch)
    attributes = cloudevents.binary_attributes(request.headers.items())
    if attributes is not None:
        content_type = request.headers.get("Content-Type") or None
        return [cloudevents.parse_binary(attributes, raw_body(request), content_type)]
    return parse_batch(json_body(request), max_batch=max_batch)
