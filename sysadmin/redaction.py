"""Keep secrets out of logs: credentials in query strings and free text.

Browsers pass WebSocket credentials as ``?token=`` or ``?apiKey=``; an access
line or a log message must never carry them. ``workspaces.redaction`` (owned
by the workspaces app, which knows its key and token formats) is applied
when present; the rules here add generic ``name=secret`` pairs on top.
"""

from __future__ import annotations

import re
from types import ModuleType
from urllib.parse import unquote_plus

try:
    from workspaces import redaction as workspaces_redaction
except ImportError:  # the workspaces app may not provide it yet
    workspaces_redaction: ModuleType | None = None  # type: ignore[no-redef]

REDACTED = "[REDACTED]"
SECRET_PARAMS = frozenset(
    {"token", "apikey", "api_key", "access_token", "password", "secret", "jwt", "admintoken"}
)
_SECRET_IN_TEXT = re.compile(
    r"(?P<name>(?:access_)?token|api_?key|password|secret|jwt)=(?P<value>[^&\s\"']+)",
    re.IGNORECASE,
)


def is_secret(name: str) -> bool:
    """Whether a query parameter carries a credential."""
    return unquote_plus(name).lower() in SECRET_PARAMS


def _redact_param(part: str) -> str:
    name, equals, _ = part.partition("=")
    return f"{name}={REDACTED}" if equals and is_secret(name) else part


def redact_query(query: str) -> str:
    """Return a query string with the value of every credential replaced."""
    if not query:
        return ""
    if workspaces_redaction is not None:
        query = workspaces_redaction.redact_query(query)
    return "&".join(_redact_param(part) for part in query.split("&"))


def redact_text(text: str) -> str:
    """Mask ``name=secret`` pairs, API keys and JWTs anywhere in a message."""
    if workspaces_redaction is not None:
        text = workspaces_redaction.redact_text(text)
    if "=" not in text:
        return text
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group('name')}={REDACTED}", text)
