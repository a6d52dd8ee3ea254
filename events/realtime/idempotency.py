"""Idempotent emits: a retried emit with the same key gets the first answer, and publishes nothing.

A client that timed out cannot tell whether its emit was published; with an
idempotency key (HTTP ``Idempotency-Key``, the WebSocket frame's ``idempotencyKey``)
it retries safely. The key is per workspace and per caller identity (an API key,
or a user), so two tenants or two credentials never meet. Each key has one slot
in a :class:`Store`:

- a first request claims the slot (Redis: one ``SET slot claim NX PX``), publishes,
  then replaces its claim with the answer, kept ``EVENTS_IDEMPOTENCY_SECS``;
- a retry finds the answer and gets it back: same events, same ids; a retry whose
  events differ gets 422 ``IdempotencyKeyReused``; a retry while the first request
  is still in flight gets 409 ``Conflict`` (``Retry-After: 1``), never a wait;
- a first request that fails (refused, broker down) releases its claim, so the
  retry may succeed; a claim whose process died ends after ``CLAIM_SECS``.

The stores: :class:`MemoryStore` (the embedded mode: one process, an LRU map
bounded in bytes) and :class:`RedisStore` (the scaled mode: every process
shares the slots ``events:idem:{<workspace>}:<sha-256>``, hash-tagged by workspace).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from django.conf import settings

from events.event import ClientEvent, Envelope
from events.metrics import IDEMPOTENT_REPLAYS
from events.realtime.publishing import publish
from kernel import outages
from kernel.caller import Caller
from kernel.context import RequestContext
from kernel.errors import Conflict, IdempotencyKeyReused, ValidationError

logger = logging.getLogger("events.idempotency")

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
# A claim outlives any publish (the broker client gives up after 30 s); past it, a claim
# whose process died frees its slot.
CLAIM_SECS = 60
SLOT_PREFIX = "events:idem:"
SOCKET_TIMEOUT_SECS = 30.0
CLAIM_TRIES = 3
# What an entry of the memory store costs besides its record (the slot, the map's own).
ENTRY_OVERHEAD_BYTES = 200
_CLAIM, _ANSWER = b"C", b"A"

_SETTLE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def parse_key(raw: Any, field: str = HEADER) -> str | None:
    """A client's idempotency key: None, or 1 to 255 visible ASCII characters (``!`` to ``~``)."""
    if raw is None:
        return None
    if (
        not isinstance(raw, str)
        or not 1 <= len(raw) <= MAX_KEY_CHARS
        or not all("!" <= char <= "~" for char in raw)
    ):
        raise ValidationError(
            f"{field} must be 1 to {MAX_KEY_CHARS} visible ASCII characters (! to ~)",
            details={"field": field},
        )
    return raw


def slot_for(workspace_id: str, caller: Caller, key: str) -> str:
    """The store's slot of a key: the workspace in a hash tag, the identity and key hashed."""
    digest = hashlib.sha256(f"{caller.identity}\x00{key}".encode()).hexdigest()
    return f"{SLOT_PREFIX}{{{workspace_id}}}:{digest}"


def fingerprint(events: list[ClientEvent]) -> bytes:
    """What a retry must repeat: the validated events, as canonical JSON, hashed."""
    try:
        canonical = orjson.dumps(events, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # nesting deeper than JSON encoding allows
        raise ValidationError(f"payload is not JSON: {exc}") from None
    return hashlib.sha256(canonical).hexdigest().encode()


class Store(ABC):
    """Slots of idempotency keys: a claim, then the answer; records are bytes."""

    @abstractmethod
    async def claim(self, slot: str, record: bytes, ttl_ms: int) -> bytes | None:
        """Put ``record`` in a free slot and return None; else return what the slot holds."""

    @abstractmethod
    async def settle(self, slot: str, claim: bytes, record: bytes, ttl_ms: int) -> None:
        """Replace our ``claim`` with the answer's ``record`` (if the claim still holds)."""

    @abstractmethod
    async def release(self, slot: str, claim: bytes) -> None:
        """Free the slot, if our ``claim`` still holds it."""


class MemoryStore(Store):
    """One process's slots: least recently used first out past ``max_bytes``, each with its TTL."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def _get(self, slot: str) -> bytes | None:
        entry = self.entries.get(slot)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            self._drop(slot)
            return None
        self.entries.move_to_end(slot)
        return entry[0]

    def _drop(self, slot: str) -> None:
        record, _ = self.entries.pop(slot)
        self.size -= len(record) + ENTRY_OVERHEAD_BYTES

    def _put(self, slot: str, record: bytes, ttl_ms: int) -> None:
        if slot in self.entries:
            self._drop(slot)
        self.entries[slot] = (record, time.monotonic() + ttl_ms / 1000)
        self.size += len(record) + ENTRY_OVERHEAD_BYTES
        while self.size > self.max_bytes:
            # Answers go, oldest first; never a claim (an emit under way): freeing it would
            # let that emit's retry publish it again.
            victim = next(
                (s for s, (held, _) in self.entries.items() if not held.startswith(_CLAIM)), None
            )
            if victim is None:
                break
            self._drop(victim)

    async def claim(self, slot: str, record: bytes, ttl_ms: int) -> bytes | None:
        found = self._get(slot)
        if found is None:
            self._put(slot, record, ttl_ms)
        return found

    async def settle(self, slot: str, claim: bytes, record: bytes, ttl_ms: int) -> None:
        if self._get(slot) == claim:
            self._put(slot, record, ttl_ms)

    async def release(self, slot: str, claim: bytes) -> None:
        if self._get(slot) == claim:
            self._drop(slot)


class RedisStore(Store):
    """Slots every process shares, in Redis (a client belongs to one event loop)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis: Any = aioredis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_SECS)
        self._settle = self.redis.register_script(_SETTLE)
        self._release = self.redis.register_script(_RELEASE)

    async def claim(self, slot: str, record: bytes, ttl_ms: int) -> bytes | None:
        # One SET NX PX claims a free slot; a taken one is read (a slot that expired in
        # between is claimed again). SET NX GET would save the GET but needs Redis 7.
        for _ in range(CLAIM_TRIES):
            if await self.redis.set(slot, record, nx=True, px=ttl_ms):
                return None
            found = await self.redis.get(slot)
            if found is not None:
                return bytes(found)
        raise Conflict("the idempotency key changed hands too often; retry shortly")

    async def settle(self, slot: str, claim: bytes, record: bytes, ttl_ms: int) -> None:
        await self._settle(keys=[slot], args=[claim, record, ttl_ms])

    async def release(self, slot: str, claim: bytes) -> None:
        await self._release(keys=[slot], args=[claim])


_memory: MemoryStore | None = None
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisStore] = (
    weakref.WeakKeyDictionary()
)


def get_store() -> Store:
    """The store of this process: Redis with ``REDIS_URL`` (one client per loop), else memory."""
    global _memory
    if not settings.REDIS_URL:
        if _memory is None:
            _memory = MemoryStore(settings.EVENTS_IDEMPOTENCY_MEMORY_BYTES)
        return _memory
    loop = asyncio.get_running_loop()
    store = _per_loop.get(loop)
    if store is None or store.url != settings.REDIS_URL:
        store = _per_loop[loop] = RedisStore(settings.REDIS_URL)
    return store


def reset_store() -> None:
    """Forget every slot of the memory store and every Redis client (tests)."""
    global _memory
    _memory = None
    _per_loop.clear()


@dataclass(frozen=True)
class Emitted:
    """An emit's answer: the stored envelopes, and whether they are a first answer's replay."""

    envelopes: list[Envelope]
    replayed: bool = False


async def publish_once(
    workspace_id: str,
    events: list[ClientEvent],
    *,
    caller: Caller,
    context: RequestContext,
    key: str | None,
) -> Emitted:
    """Publish, or with a key already answered, return that first answer and publish nothing."""
    if key is None:
        return Emitted(await publish(workspace_id, events, caller=caller, context=context))
    slot = slot_for(workspace_id, caller, key)
    wanted = fingerprint(events)
    claim = b" ".join((_CLAIM, wanted, secrets.token_hex(8).encode()))
    store = get_store()
    found = await store.claim(slot, claim, CLAIM_SECS * 1000)
    if found is not None:
        emitted = _replay(found, wanted)
        IDEMPOTENT_REPLAYS.labels(transport=context.transport).inc()
        return emitted
    # Shielded: a client that goes away (a timeout, a closed socket cancels its request)
    # must not free the slot while the events may be in the broker already; its retry
    # then finds the first answer, not a free slot that would publish them again.
    first = asyncio.ensure_future(
        _publish_and_keep(store, slot, claim, wanted, workspace_id, events, caller, context)
    )
    _first_attempts.add(first)
    first.add_done_callback(_forget_attempt)
    return Emitted(await asyncio.shield(first))


_first_attempts: set[asyncio.Future] = set()


def _forget_attempt(attempt: asyncio.Future) -> None:
    _first_attempts.discard(attempt)
    if not attempt.cancelled():
        attempt.exception()  # retrieved: whoever awaited it has it, or went away


async def _publish_and_keep(
    store: Store,
    slot: str,
    claim: bytes,
    wanted: bytes,
    workspace_id: str,
    events: list[ClientEvent],
    caller: Caller,
    context: RequestContext,
) -> list[Envelope]:
    """Publish, then keep the answer under the slot; a refused or failed publish frees it."""
    try:
        envelopes = await publish(workspace_id, events, caller=caller, context=context)
    except Exception:
        await _release(store, slot, claim)
        raise
    answer = b" ".join((_ANSWER, wanted, orjson.dumps(envelopes)))
    await _settle(store, slot, claim, answer)
    return envelopes


def _replay(found: bytes, wanted: bytes) -> Emitted:
    """What a slot already holds, for a retry: the first answer, or why it may not have it."""
    kind, held, rest = found.split(b" ", 2)
    if held != wanted:
        raise IdempotencyKeyReused(
            "this idempotency key was used for other events; use a new key for a new emit"
        )
    if kind != _ANSWER:
        raise Conflict("an emit with this idempotency key is still in progress; retry shortly")
    return Emitted(orjson.loads(rest), replayed=True)


async def _settle(store: Store, slot: str, claim: bytes, answer: bytes) -> None:
    """Keep the answer; the events are published whatever happens here, so never fail."""
    try:
        await store.settle(slot, claim, answer, settings.EVENTS_IDEMPOTENCY_SECS * 1000)
    except Exception as exc:
        _lost(exc, "keeping an idempotent emit's answer")


async def _release(store: Store, slot: str, claim: bytes) -> None:
    """Free a failed emit's slot; failing that, its claim ends by itself (``CLAIM_SECS``)."""
    try:
        await store.release(slot, claim)
    except Exception as exc:
        _lost(exc, "releasing an idempotency key")


def _lost(exc: Exception, where: str) -> None:
    dependency = outages.dependency_of(exc)
    if dependency:
        outages.failed(dependency, exc, where)
    else:
        logger.exception("failed %s", where)
