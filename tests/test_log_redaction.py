"""Exception text in log lines is redacted like messages are.

A failure's message often quotes what it failed on: a URL with its password,
a header, a query string. The ``exception`` field of a JSON line (the stack
trace and the exception's text) is masked with the same rules as ``message``.
"""

from __future__ import annotations

import logging

SECRET = "Sup3rSecretValue"


def test_exception_text_in_a_log_line_is_redacted(log_lines):
    logger = logging.getLogger("events.tests")
    try:
        raise ConnectionError(
            f"cannot reach redis://default:{SECRET}@cache:6379/0 with "
            f"token={SECRET} for evk_0123456789ab_{SECRET}"
        )
    except ConnectionError:
        logger.exception("the broker failed")
    (line,) = [line for line in log_lines() if line["logger"] == "events.tests"]
    assert "ConnectionError" in line["exception"]
    assert "Traceback" in line["exception"]
    assert SECRET not in line["exception"]
    assert "redis://default:[REDACTED]@cache:6379/0" in line["exception"]
    assert "evk_0123456789ab_[REDACTED]" in line["exception"]
