"""Request and response shapes of the HTTP API, for validation docs and the schema."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from events import cloudevents
from events.positions import MAX_POSITION_CHARS

EVENT_ID_PATTERN = r"^[0-9]{1,16}-[0-9]{1,10}$"
POSITION_PATTERN = r"^([A-Za-z0-9_-]{1,40}:)?[0-9]{1,16}-[0-9]{1,10}$"


class TargetSerializer(serializers.Serializer):
    userId = serializers.CharField(required=False)
    sessionId = serializers.CharField(required=False)


class OptionsSerializer(serializers.Serializer):
    persist = serializers.BooleanField(required=False, default=True)


class ClientEventSerializer(serializers.Serializer):
    type = serializers.RegexField(r"^[A-Za-z0-9 ._-]{1,128}$")
    payload = serializers.JSONField(required=False, allow_null=True)
    target = TargetSerializer(required=False, allow_null=True)
    options = OptionsSerializer(required=False, allow_null=True)


class EmitInputSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=ClientEventSerializer(), min_length=1, max_length=settings.EVENTS_MAX_BATCH
    )


def position_field(help_text: str) -> serializers.RegexField:
    """A position query parameter (``<epoch>:<id>``; a bare event id is accepted)."""
    return serializers.RegexField(
        POSITION_PATTERN, required=False, max_length=MAX_POSITION_CHARS, help_text=help_text
    )


class FilterQuerySerializer(serializers.Serializer):
    """The filters of the query string; any field filter may be added (``payload.x=1``)."""

    types = serializers.CharField(required=False, help_text="Comma list; prefix* and *suffix")
    text = serializers.CharField(required=False, help_text="Words that must all appear")


class FormatQuerySerializer(serializers.Serializer):
    """``format``: the service's JSON (the default) or CloudEvents 1.0."""

    format = serializers.ChoiceField(
        choices=["json", cloudevents.FORMAT],
        required=False,
        help_text="`cloudevents`: every event as a structured CloudEvent (docs/CLOUDEVENTS.md)",
    )


class PollQuerySerializer(FilterQuerySerializer, FormatQuerySerializer):
    """The long poll's own parameters, and the filters."""

    cursor = position_field("The cursor of the last answer (``<epoch>:<id>``)")
    timeout = serializers.FloatField(
        required=False,
        min_value=0,
        max_value=settings.EVENTS_LONGPOLL_MAX_SECS,
        help_text="Seconds to wait for a matching event",
    )


class StreamQuerySerializer(FilterQuerySerializer, FormatQuerySerializer):
    """The event stream's own parameters, and the filters."""

    lastEventId = position_field("Resume after this position; the Last-Event-ID header wins")
    token = serializers.CharField(required=False, help_text="A JWT, for browsers")
    apiKey = serializers.CharField(required=False, help_text="An API key, for browsers")


class HostSerializer(serializers.Serializer):
    service = serializers.CharField()
    replica = serializers.CharField()


class SourceSerializer(serializers.Serializer):
    workspaceId = serializers.CharField()
    userId = serializers.CharField(allow_null=True)
    sessionId = serializers.CharField(allow_null=True)
    correlationId = serializers.CharField(allow_null=True)
    serviceTopic = serializers.CharField(allow_null=True)
    ip = serializers.CharField(allow_null=True)
    host = HostSerializer()


class ErrorInfoSerializer(serializers.Serializer):
    error = serializers.CharField()
    message = serializers.CharField()
    level = serializers.CharField()


class EnvelopeSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    payload = serializers.JSONField(allow_null=True)
    # DRF's metaclass moves declared fields out of the class: "source" shadows nothing.
    source = SourceSerializer()  # type: ignore[assignment]
    target = TargetSerializer(required=False)
    options = OptionsSerializer()
    error = ErrorInfoSerializer(required=False)
    cloudevent = serializers.DictField(
        required=False,
        help_text="An event emitted as a CloudEvent: the attributes kept (docs/CLOUDEVENTS.md)",
    )
    createdAt = serializers.DateTimeField()
    size = serializers.IntegerField()


class CloudEventSerializer(serializers.Serializer):
    """An event with ``format=cloudevents``: a structured CloudEvent, extensions besides."""

    specversion = serializers.ChoiceField(choices=[cloudevents.SPECVERSION])
    id = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class: these shadow nothing.
    source = serializers.CharField()  # type: ignore[assignment]
    type = serializers.CharField()
    time = serializers.DateTimeField()
    datacontenttype = serializers.CharField()
    subject = serializers.CharField(required=False)
    dataschema = serializers.CharField(required=False)
    data = serializers.JSONField(required=False)  # type: ignore[assignment]
    data_base64 = serializers.CharField(required=False)
    eventid = serializers.RegexField(EVENT_ID_PATTERN, help_text="The service's event id")
    workspace = serializers.CharField()


def events_field() -> PolymorphicProxySerializer:
    """Events as the service's envelopes or, with ``format=cloudevents``, CloudEvents."""
    return PolymorphicProxySerializer(
        component_name="EventInFormat",
        serializers=[EnvelopeSerializer, CloudEventSerializer],
        resource_type_field_name=None,
        many=True,
    )


class EmitOutputSerializer(serializers.Serializer):
    events = EnvelopeSerializer(many=True)


class PollOutputSerializer(serializers.Serializer):
    events = events_field()
    cursor = serializers.CharField(
        help_text="Where the next poll resumes: ``<epoch>:<event id>``; from another epoch "
        "(the stream was reset) it answers 410"
    )


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(required=False)
    correlationId = serializers.CharField(required=False)
