"""Request and response shapes of search, for the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from adapters.http.events_serializers import (
    EVENT_ID_PATTERN,
    EnvelopeSerializer,
    FormatQuerySerializer,
    events_field,
)
from history.base import DEFAULT_LIMIT, MAX_LIMIT


class SearchQuerySerializer(FormatQuerySerializer):
    """The search's own query parameters (field filters come on top: ``payload.x=1``)."""

    types = serializers.CharField(
        required=False, help_text="Comma list of types; `prefix*` and `*suffix`"
    )
    text = serializers.CharField(
        required=False, help_text="Full text: every word in the type or payload"
    )
    afterDate = serializers.DateTimeField(
        required=False, help_text="Only events created after (exclusive)"
    )
    beforeDate = serializers.DateTimeField(
        required=False, help_text="Only events created before (exclusive)"
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )
    sort = serializers.ChoiceField(
        choices=["desc", "asc"], required=False, default="desc", help_text="Newest first or last"
    )
    cursor = serializers.RegexField(
        EVENT_ID_PATTERN, required=False, help_text="The `next` of the previous page"
    )


class SearchResultSerializer(serializers.Serializer):
    events = events_field()
    next = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last page"
    )


class SearchOutputSerializer(serializers.Serializer):
    result = SearchResultSerializer()


class QueryBodySerializer(serializers.Serializer):
    query = serializers.JSONField(
        required=False,
        help_text="An Elasticsearch query of the allowed types (README: query bodies)",
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
