"""Shapes of the operations endpoints, for validation and the OpenAPI schema."""

from __future__ import annotations

from rest_framework import serializers

from sysadmin.health import FAILING, OFF, OK, TIMEOUT
from sysadmin.loglevels import LEVELS, LOGGER_NAME

# How a dependency answered the health check (one enum in the schema: settings' overrides).
DEPENDENCY_STATES = (OK, TIMEOUT, FAILING)
ARCHIVER_STATES = (OK, FAILING, OFF)


class HealthSerializer(serializers.Serializer):
    healthy = serializers.BooleanField()
    broker = serializers.ChoiceField(choices=DEPENDENCY_STATES)
    history = serializers.ChoiceField(choices=DEPENDENCY_STATES)
    archiver = serializers.ChoiceField(choices=ARCHIVER_STATES)
    reasons = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="Why what fails fails"
    )
    replica = serializers.CharField()


class LoggersSerializer(serializers.Serializer):
    loggers = serializers.DictField(child=serializers.CharField())


class LogLevelInputSerializer(serializers.Serializer):
    logger = serializers.RegexField(LOGGER_NAME.pattern, max_length=200)
    level = serializers.ChoiceField(choices=[*LEVELS, *(level.lower() for level in LEVELS)])


class LoggerQuerySerializer(serializers.Serializer):
    logger = serializers.RegexField(
        LOGGER_NAME.pattern, required=False, max_length=200, help_text="One logger"
    )
