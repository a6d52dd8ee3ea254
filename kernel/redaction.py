"""Keeping secrets out of logs: query strings, headers and free text.

Browsers may pass ``?token=`` and ``?apiKey=`` on WebSocket URLs, and every
request may carry ``Authorization``, ``X-Api-Key``, ``X-Admin-Token`` or a
session cookie. Whatever writes a request to a log (the access log in
``sysadmin``) passes it through these functions first.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

REDACTED = "[REDACTED]"
SECRET_PARAMS = frozenset(
    {
        *("token", "apikey", "api_key", "access_token", "x-api-key"),
        *("password", "secret", "jwt", "admintoken"),
    }
)
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-admin-token", "cookie", "set-cookie"}
)
# API keys (``evk_<prefix>_<secret>``: the prefix is a public lookup id) and JWTs.
_API_KEY = re.compile(r"\b(evk_[0-9a-f]+_)[A-Za-z0-9_-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# The password of a URL's user information: redis://user:<password>@host
_URL_PASSWORD = re.compile(r"(?P<user>://[^/\s:@]*:)[^/\s@]+@")
# ``name=secret`` pairs in free text: a query string inside a server's log line, a URL in an error.
_SECRET_PAIR = re.compile(
    r"(?P<name>(?:access_|admin_?)?token|x-api-key|api_?key|password|secret|jwt)=[^&\s\"']+",
    re.IGNORECASE,
)


def redact_query(query_string: str) -> str:
    """Return the query string with the values of credential parameters replaced."""
    if not query_string:
        return query_string
    return "&".join(_redact_param(part) for part in query_string.split("&"))


def _redact_param(part: str) -> str:
    name, equals, _ = part.partition("=")
    if equals and unquote_plus(name).lower() in SECRET_PARAMS:
        return f"{name}={REDACTED}"
    return part


def redact_header(name: str, value: str) -> str:
    """Return a header's value fit for a log (the scheme of Authorization is kept)."""
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, space, _ = value.partition(" ")
    if name.lower().endswith("authorization") and space:
        return f"{scheme} {REDACTED}"
    return REDACTED


def redact_text(text: str) -> str:
    """Return free text (a log line, a path) with keys, JWTs, URL passwords, name=secret masked."""
    text = _JWT.sub(REDACTED, _API_KEY.sub(rf"\g<1>{REDACTED}", text))
    if "://" in text:
        text = _URL_PASSWORD.sub(rf"\g<user>{REDACTED}@", text)
    if "=" not in text:
        return text
    return _SECRET_PAIR.sub(lambda m: f"{m.group('name')}={REDACTED}", text)


class RedactSecretsFilter(logging.Filter):
    """A logging filter that masks secrets in messages (the servers' request lines too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message if it holds a secret; never drop the record."""
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
