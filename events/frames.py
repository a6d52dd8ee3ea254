"""An event's WebSocket frame, encoded once per event for every consumer of a process.

A server sends its frames unmasked (RFC 6455, section 5.1), so the bytes of an
event's frame are the same for every client: the feed builds them once and a
consumer whose socket is within reach gets them written as they are (see
:mod:`events.realtime.sockets`), without an ASGI message, a task switch or a framing
per delivery.
"""

from __future__ import annotations

import orjson
from websockets.frames import Frame, Opcode

from events.cloudevents import encode_cloudevent
from events.event import Envelope


class EventFrame:
    """The ``{"op": "event", ...}`` frame of one event: its JSON and its bytes on the wire.

    ``sse`` is the same event as one Server-Sent Events message (``id:`` the position,
    ``data:`` the event's JSON), built the first time a stream asks, then shared.
    ``cloudevents`` is the same frame with the event as a structured CloudEvent
    (``format=cloudevents``), likewise built the first time a consumer asks, then shared.
    """

    __slots__ = ("_cloudevents", "_envelope", "_sse", "data", "event", "position", "wire")

    def __init__(
        self,
        data: bytes,
        event: bytes = b"",
        position: bytes = b"",
        envelope: Envelope | None = None,
    ) -> None:
        self.data = data
        self.wire = text_frame(data)
        self.event = event
        self.position = position
        self._sse: bytes | None = None
        self._envelope = envelope
        self._cloudevents: EventFrame | None = None

    @property
    def cloudevents(self) -> EventFrame:
        """This frame with the event as a CloudEvent: encoded once, for every consumer asking."""
        if self._cloudevents is None:
            if self._envelope is None:
                raise ValueError("a frame built without its envelope has no CloudEvents form")
            event = encode_cloudevent(self._envelope)
            self._cloudevents = _frame(event, self.position)
            self._envelope = None  # no longer needed: the form is built
        return self._cloudevents

    @property
    def sse(self) -> bytes:
        """The event as one SSE message (orjson writes no newline: one ``data:`` line)."""
        if self._sse is None:
            head = b"id: " + self.position + b"\n" if self.position else b""
            self._sse = head + b"data: " + self.event + b"\n\n"
        return self._sse

    @property
    def text(self) -> str:
        """The frame's text, for a server reached through ASGI messages."""
        return self.data.decode()

    def __repr__(self) -> str:
        return f"EventFrame({self.data[:60]!r})"


def text_frame(data: bytes) -> bytes:
    """A whole text frame as a server sends it: final, unmasked, uncompressed."""
    return Frame(Opcode.TEXT, data).serialize(mask=False)


def event_frame(envelope: Envelope, epoch: str = "") -> EventFrame:
    """The frame of an event, built once per event.

    With the stream's epoch it carries ``position`` (``<epoch>:<id>``), what a
    client resumes from with ``lastEventId`` (see :mod:`events.positions`).
    """
    position = f"{epoch}:{envelope['id']}".encode() if epoch else b""
    return _frame(orjson.dumps(envelope), position, envelope)


def _frame(event: bytes, position: bytes, envelope: Envelope | None = None) -> EventFrame:
    if not position:
        return EventFrame(b'{"op":"event","event":' + event + b"}", event, envelope=envelope)
    data = b'{"op":"event","event":' + event + b',"position":"' + position + b'"}'
    return EventFrame(data, event, position, envelope)


# What a feed offers a subscription: an event and its frame.
Delivery = tuple[Envelope, EventFrame]
