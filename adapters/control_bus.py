"""The control plane's bus over the Channels channel layer (``CHANNEL_LAYERS``).

Every service process adds one channel of its own to the group ``events.control`` and
listens on it (a background task, :func:`start_listener`); :class:`ChannelLayerBus` sends
a control message to that group, so every process receives it, the sender included. With
Redis (``REDIS_URL``) the layer is channels-redis' pub/sub layer: one connection per
process, whatever the number of workspaces; without it, Channels' in-memory layer (one
process). The group is joined again every hour, well within the layer's group expiry.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.layers import get_channel_layer

from events.realtime import control
from kernel.tasks import register

logger = logging.getLogger("events.control")

GROUP = "events.control"
MESSAGE_TYPE = "control.message"
REJOIN_SECS = 3600.0
RETRY_SECS = 1.0


class ChannelLayerBus:
    """Sends control messages to every process's channel through the channel layer."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer

    async def send(self, message: control.Message) -> None:
        """Send ``message`` to the group every process listens to."""
        await self.layer.group_send(GROUP, {"type": MESSAGE_TYPE, **message})


async def _listen_once(layer: Any) -> None:
    channel = await layer.new_channel("control.")
    await layer.group_add(GROUP, channel)
    loop = asyncio.get_running_loop()
    rejoin_at = loop.time() + REJOIN_SECS
    try:
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), REJOIN_SECS)
            except TimeoutError:
                message = None
            if message is not None:
                await control.deliver(message)
            if loop.time() >= rejoin_at:
                await layer.group_add(GROUP, channel)
                rejoin_at = loop.time() + REJOIN_SECS
    finally:
        await asyncio.shield(_leave(layer, channel))


async def _leave(layer: Any, channel: str) -> None:
    try:
        await layer.group_discard(GROUP, channel)
    except Exception as exc:
        logger.info("control channel not discarded: %s", type(exc).__name__)


async def listen(layer: Any) -> None:
    """Deliver what the group receives to this process's handlers, until cancelled."""
    while True:
        try:
            await _listen_once(layer)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("the control listener lost the channel layer; retrying")
        await asyncio.sleep(RETRY_SECS)


async def start_listener() -> list[asyncio.Task]:
    """Background starter: this process listens to the group."""
    layer = get_channel_layer()
    if layer is None:
        return []
    task = asyncio.get_running_loop().create_task(listen(layer), name="control-listener")
    return [task]


def install() -> None:
    """Control messages go through the channel layer (when one is configured), and every
    service process listens (management commands send, and do not listen)."""
    layer = get_channel_layer()
    if layer is None:
        return
    control.use(ChannelLayerBus(layer))
    register(start_listener)
