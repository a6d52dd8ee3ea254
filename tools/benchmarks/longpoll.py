"""How soon a waiting long poll answers after a matching emit.

    python -m tools.benchmarks.longpoll --url http://127.0.0.1:8000 --api-key KEY [--rounds 50]

Each round starts a long poll at the current end of the stream, lets it wait,
emits one matching event over HTTP, and measures the time from sending the emit
to receiving the poll's answer (one clock: this process's). It prints p50, p99
and max, and the answer at the timeout when nothing comes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

WAIT_BEFORE_EMIT_SECS = 0.1


async def one_round(client: httpx.AsyncClient, workspace: str, n: int) -> tuple[float, float]:
    """Milliseconds from sending the emit, and from its 201, to the waiting poll's answer."""
    poll_url = f"/v2/workspaces/{workspace}/events/poll"
    start = (await client.get(poll_url, params={"timeout": "0"})).json()["cursor"]
    params = {"timeout": "10", "cursor": start, "types": "bench.longpoll"}
    waiting = asyncio.ensure_future(client.get(poll_url, params=params))
    await asyncio.sleep(WAIT_BEFORE_EMIT_SECS)
    sent = time.perf_counter()
    body = {"events": [{"type": "bench.longpoll", "payload": {"n": n}}]}
    emitted = await client.post(f"/v2/workspaces/{workspace}/events", json=body)
    emitted.raise_for_status()
    acknowledged = time.perf_counter()
    answer = await waiting
    answered = time.perf_counter()
    assert answer.json()["events"][0]["payload"] == {"n": n}  # noqa: S101 - a wrong answer is a bug
    return (answered - sent) * 1000, (answered - acknowledged) * 1000


async def timeout_answer(client: httpx.AsyncClient, workspace: str) -> tuple[float, int]:
    """Seconds a poll with nothing to receive takes at timeout=1, and its event count."""
    started = time.perf_counter()
    params = {"timeout": "1", "types": "bench.nothing"}
    answer = await client.get(f"/v2/workspaces/{workspace}/events/poll", params=params)
    return time.perf_counter() - started, len(answer.json()["events"])


async def main(args: argparse.Namespace) -> None:
    headers = {"X-Api-Key": args.api_key}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=30) as client:
        rounds = [await one_round(client, args.workspace, n) for n in range(args.rounds)]
        waited, count = await timeout_answer(client, args.workspace)
    print(f"rounds {len(rounds)}, milliseconds to the waiting poll's answer:")
    for label, values in (
        ("from sending the emit", [r[0] for r in rounds]),
        ("from the emit's 201", [r[1] for r in rounds]),
    ):
        print(f"  {label:22} {summary(values)}")
    print(f"timeout=1 with no matching event: answered after {waited:.2f} s with {count} events")


def summary(values: list[float]) -> str:
    """p50, p99 and max of some milliseconds."""
    ordered = sorted(values)
    p99 = ordered[max(0, round(0.99 * len(ordered)) - 1)]
    return f"p50 {statistics.median(ordered):.1f}  p99 {p99:.1f}  max {ordered[-1]:.1f}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--workspace", default="demo")
    parser.add_argument("--rounds", type=int, default=50)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
