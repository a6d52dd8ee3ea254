"""Keep secrets out of logs: credentials in query strings and free text.

Browsers pass WebSocket credentials as ``?token=`` or ``?apiKey=``; an access
line or a log message must never carry them. ``workspaces.redaction`` (owned
by the workspaces app, which knows its key and token formats) holds the one
set of rules; this module is the operations side's name for them.
"""

from __future__ import annotations

from workspaces.redaction import REDACTED, RedactSecretsFilter, redact_query, redact_text

__all__ = ["REDACTED", "RedactSecretsFilter", "redact_query", "redact_text"]
