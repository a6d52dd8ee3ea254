"""Request and response shapes of search, for the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from events.serializers import EnvelopeSerializer
from history.query import MAX_LIMIT


class SearchResultSerializer(serializers.Serializer):
    events = EnvelopeSerializer(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last page"
    )


class SearchOutputSerializer(serializers.Serializer):
    result = SearchResultSerializer()


class QueryBodySerializer(serializers.Serializer):
    query = serializers.JSONField(
        required=False, help_text="An Elasticsearch query; scripts are refused"
    )
    sort = serializers.JSONField(required=False, help_text="Elasticsearch sort; default id desc")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=50)
    aggs = serializers.JSONField(
        required=False, help_text="Aggregations, 3 levels deep at most; owners only"
    )


class QueryResultSerializer(serializers.Serializer):
    size = serializers.IntegerField(help_text="How many documents this answer holds")
    documents = EnvelopeSerializer(many=True)
    aggs = serializers.JSONField()
