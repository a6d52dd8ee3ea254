"""The OpenAPI description of the credentials every workspace operation takes.

Authentication is not done by DRF authentication classes (see
:mod:`workspaces.auth`), so drf-spectacular cannot infer it: views about a
workspace use :class:`WorkspaceAutoSchema`, which names the security schemes
declared in ``SPECTACULAR_SETTINGS["APPEND_COMPONENTS"]``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

SECURITY_REQUIREMENTS: list[dict[str, list[Any]]] = [
    {"bearer": []},
    {"apiKey": []},
    {"session": []},
]


class WorkspaceAutoSchema(AutoSchema):
    """An operation on a workspace: a JWT, an API key or a session cookie."""

    def get_auth(self) -> list[dict[str, list[Any]]]:
        """The security requirements of the operation (any one of them)."""
        return SECURITY_REQUIREMENTS
