"""The operations endpoints: ``/sys/healthcheck``, ``/sys/logging``, ``/sys/heapdump``.

Thin adapters: authenticate the operator, call :mod:`sysadmin.health`,
:mod:`sysadmin.loglevels` or :mod:`sysadmin.heapdump`, record the action as
an audit event in the ``platform`` workspace, format.
"""

from __future__ import annotations

import logging
from typing import Any

from adrf.views import APIView
from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from adapters.http.events_serializers import ErrorSerializer
from adapters.http.workspace_view import json_body, request_context
from events.realtime.publishing import record_action
from kernel.caller import PLATFORM_WORKSPACE
from kernel.errors import ValidationError
from sysadmin import heapdump, loglevels
from sysadmin.health import health
from sysadmin.operators import Operator, require_operator
from sysadmin.serializers import (
    HealthSerializer,
    LoggerQuerySerializer,
    LoggersSerializer,
    LogLevelInputSerializer,
)

logger = logging.getLogger("sysadmin")
ADMIN_ERRORS = dict.fromkeys((401, 403, 500), ErrorSerializer)


async def audit(request: Request, operator: Operator, event_type: str, payload: Any) -> None:
    """Record an operator's action in the platform workspace."""
    await record_action(
        PLATFORM_WORKSPACE,
        event_type,
        payload,
        caller=operator.as_caller(),
        context=request_context(request),
    )


class HealthcheckView(APIView):
    """Whether this process can reach the broker and the history."""

    @extend_schema(
        operation_id="healthcheck",
        responses={200: HealthSerializer, 503: HealthSerializer},
        summary="200 while the broker and the history answer; 503 naming what does not",
        tags=["operations"],
    )
    async def get(self, request: Request) -> Response:
        report = await health()
        return Response(report, status=200 if report["healthy"] else 503)


class LoggingView(APIView):
    """Read or change the level of any logger, in every process of the service."""

    @extend_schema(
        operation_id="get_log_levels",
        parameters=[LoggerQuerySerializer],
        responses={200: LoggersSerializer, 400: ErrorSerializer, **ADMIN_ERRORS},
        summary="The effective level of every logger, or of one",
        tags=["operations"],
    )
    async def get(self, request: Request) -> Response:
        await require_operator(request._request)
        name = request.query_params.get("logger")
        return Response({"loggers": loglevels.levels(name)})

    @extend_schema(
        operation_id="set_log_level",
        request=LogLevelInputSerializer,
        responses={200: LoggersSerializer, 400: ErrorSerializer, **ADMIN_ERRORS},
        summary="Change a logger's level at run time (new logger names included)",
        tags=["operations"],
    )
    async def put(self, request: Request) -> Response:
        operator = await require_operator(request._request)
        name, level = parse_level_change(json_body(request))
        previous, effective = loglevels.set_level(name, level)
        shared = await loglevels.broadcast(name, level)
        logger.info("log level of %s set to %s", name, level, extra={"previous": previous})
        payload = {"logger": name, "level": level, "previous": previous, "shared": shared}
        await audit(request, operator, "sys.logging.updated", payload)
        return Response({"loggers": {name: effective}})


def parse_level_change(body: Any) -> tuple[str, str]:
    """The logger and level of a PUT body, or ValidationError."""
    if not isinstance(body, dict):
        raise ValidationError('send {"logger": "events", "level": "DEBUG"}')
    name, level = body.get("logger"), body.get("level")
    if not isinstance(name, str):
        raise ValidationError("logger must be a string", details={"field": "logger"})
    if not isinstance(level, str):
        raise ValidationError("level must be a string", details={"field": "level"})
    return loglevels.check_name(name), loglevels.check_level(level)


class HeapdumpView(APIView):
    """Write a heap snapshot of this process and download it."""

    @extend_schema(
        operation_id="heapdump",
        request=None,
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="A .heapsnapshot for Chrome DevTools"
            ),
            429: ErrorSerializer,
            **ADMIN_ERRORS,
        },
        summary="Heap snapshot for Chrome DevTools' Memory tab (one a minute)",
        tags=["operations"],
    )
    async def post(self, request: Request) -> StreamingHttpResponse:
        operator = await require_operator(request._request)
        heapdump.gate.enter(settings.HEAPDUMP_MIN_INTERVAL_SECS)
        written = await heapdump.dump()
        logger.info("heap snapshot written to %s", written.path, extra={"bytes": written.size})
        await audit(request, operator, "sys.heapdump.created", describe(written))
        return download(written)


def describe(written: heapdump.HeapDump) -> dict[str, Any]:
    """The audit payload of a heap dump."""
    return {
        "file": written.path.name,
        "bytes": written.size,
        "nodes": written.node_count,
        "edges": written.edge_count,
        "replica": settings.EVENTS_REPLICA,
    }


def download(written: heapdump.HeapDump) -> StreamingHttpResponse:
    """The snapshot as a file download."""
    response = StreamingHttpResponse(
        heapdump.read_chunks(written.path), content_type="application/octet-stream"
    )
    response["Content-Disposition"] = f'attachment; filename="{written.path.name}"'
    response["Content-Length"] = str(written.size)
    return response
