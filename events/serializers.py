"""Request and response shapes of the HTTP API, for validation docs and the schema."""

from __future__ import annotations

from rest_framework import serializers


class TargetSerializer(serializers.Serializer):
    userId = serializers.CharField(required=False)
    sessionId = serializers.CharField(required=False)


class OptionsSerializer(serializers.Serializer):
    persist = serializers.BooleanField(required=False, default=True)


class ClientEventSerializer(serializers.Serializer):
    type = serializers.RegexField(r"^[A-Za-z0-9 ._-]{1,128}$")
    payload = serializers.JSONField(required=False, allow_null=True)
    target = TargetSerializer(required=False)
    options = OptionsSerializer(required=False)


class EmitInputSerializer(serializers.Serializer):
    # DRF passes min_length/max_length to the ListSerializer that many=True makes.
    events = ClientEventSerializer(many=True, min_length=1, max_length=100)  # type: ignore[call-arg]


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
    createdAt = serializers.DateTimeField()
    size = serializers.IntegerField()


class EmitOutputSerializer(serializers.Serializer):
    events = EnvelopeSerializer(many=True)


class PollOutputSerializer(serializers.Serializer):
    events = EnvelopeSerializer(many=True)
    cursor = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(required=False)
    correlationId = serializers.CharField(required=False)
