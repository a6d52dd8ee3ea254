"""Speed-ups that read a dependency's private attributes: one switch, pinned versions.

A few hot paths go past a dependency's public API (the servers' sockets, a
Channels wrapper, prometheus-client's histogram parts; see docs/SIZING.md for
what each saves). Private attributes change without notice, so each fast path
names the versions it was written for, and is taken only while
``EVENTS_DIRECT_WRITES`` is on (the default) and exactly those versions are
installed. Otherwise the public path is taken, and one log line (a warning,
once per process and reason) says why. The tests of each fast path fail when
it is no longer taken, so an upgrade is a decision: check the attributes
again and move the pin, or let the fast path go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version

from django.conf import settings

logger = logging.getLogger("events.fastpaths")


def installed_version(package: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


class FastPath:
    """One speed-up and the versions of the dependencies it reads the insides of."""

    def __init__(self, name: str, pins: Mapping[str, str]) -> None:
        self.name = name
        self.pins = dict(pins)
        self._pinned: bool | None = None
        self._told: set[str] = set()

    def usable(self) -> bool:
        """Whether to take it: ``EVENTS_DIRECT_WRITES`` is on and the pinned versions are in."""
        if not settings.EVENTS_DIRECT_WRITES:
            return False
        if self._pinned is None:
            self._pinned = self._check_pins()
        return self._pinned

    def refuse(self, why: str) -> None:
        """Say once, per reason, that the public path is taken instead."""
        if why not in self._told:
            self._told.add(why)
            logger.warning("%s: %s; taking the public path instead", self.name, why)

    def lacks(self, owner: object, names: Iterable[str], prefix: str = "") -> bool:
        """Whether ``owner`` lacks an attribute the fast path reads (then it is refused)."""
        missing = [prefix + name for name in names if not hasattr(owner, name)]
        if missing:
            self.refuse(f"no {', '.join(missing)}")
        return bool(missing)

    def _check_pins(self) -> bool:
        for package, pinned in self.pins.items():
            installed = installed_version(package)
            if installed != pinned:
                self.refuse(f"written for {package} {pinned}, not {installed or 'none'}")
                return False
        return True
