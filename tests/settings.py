"""The test suite's settings: development mode and test-only secrets, asked for explicitly.

The service's own default is production (``DJANGO_DEBUG`` unset is off) and it
refuses to start without secrets; the tests, and the servers they start (which
inherit this environment), say what they run with.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-django-secret-key-" + "x" * 40)
os.environ.setdefault("JWT_SECRET", "tests-only-jwt-secret-" + "x" * 40)

from eventsproject.settings import *  # noqa: F403

# The in-process test client renders the admin without collected files (pytest-django turns
# DEBUG off): plain names here. Servers that tests/production.py starts run the service's
# own storage (compressed, cache-busted names) on files collected once per session.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
