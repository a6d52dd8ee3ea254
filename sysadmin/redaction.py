"""Keep secrets out of logs: credentials in query strings and free text.

Browsers pass WebSocket credentials as ``?token=`` or ``?apiKey=``; an access
line or a log message must never carry them. ``workspaces.redaction`` (owned
by the workspaces app, which knows its key and token formats) holds the
rules; free text here also gets generic ``name=secret`` pairs masked.
"""

from __future__ import annotations

import re

from workspaces.redaction import REDACTED, redact_query
from workspaces.redaction import redact_text as redact_credentials

__all__ = ["redact_query", "redact_text"]

_SECRET_IN_TEXT = re.compile(
    r"(?P<name>(?:access_)?token|api_?key|password|secret|jwt)=(?P<value>[^&\s\"']+)",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Mask API keys, JWTs and ``name=secret`` pairs anywhere in a message."""
    text = redact_credentials(text)
    if "=" not in text:
        return text
    return _SECRET_IN_TEXT.sub(lambda m: f"{m.group('name')}={REDACTED}", text)
