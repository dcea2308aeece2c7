"""The two baselines: the official WaveSpeed SDK's wait loop (create, then GET the result every 1 s until done)
and the Luma docs' create-then-poll loop (every 2 s), intervals scaled like everything else.

Each job is created, polled at once, then polled again ``interval`` after each answer until it is terminal, as
both loops do; what the client saw (when, after how many polls) is reported per job. Run in its own process so
that the clients do not share a CPU with the fakes::

    echo '{"provider": "wavespeed", "base_url": ..., "api_key": ..., "jobs": 100, "seed": 1,
           "loops": [{"name": "wavespeed-sdk", "interval_s": 0.5}]}' | python -m bench.baselines
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

SDK_INTERVAL_S = 1.0  # wavespeed-python 2.0.5 ``poll_interval`` default (providers.md §1.4)
LUMA_DOCS_INTERVAL_S = 2.0
LOOPS = {"wavespeed-sdk": SDK_INTERVAL_S, "luma-docs": LUMA_DOCS_INTERVAL_S}
TERMINAL = {"completed", "failed", "cancelled", "timeout", "deleted"}


@dataclass(frozen=True)
class Api:
    """How to create a job and read its state on one provider (just what the loops need)."""

    create_path: str
    body_key: str
    poll_path: str
    extra_body: tuple[tuple[str, Any], ...] = ()

    def remote_id(self, answer: Any) -> str:
        data = answer.get("data", answer) if isinstance(answer, dict) else {}
        return str(data["id"])

    def state(self, answer: Any) -> str:
        data = answer.get("data", answer) if isinstance(answer, dict) else {}
        return str(data.get("status") or data.get("state") or "")


APIS = {
    "wavespeed": Api("/api/v3/wavespeed-ai/neta-lumina", "prompt", "/api/v3/predictions/{id}/result"),
    "luma_agents": Api("/generations", "prompt", "/generations/{id}", (("model", "uni-1"),)),
    "luma_reseller": Api("/luma/generations", "user_prompt", "/luma/generations/{id}", (("aspect_ratio", "16:9"),)),
}


@dataclass
class Seen:
    remote_id: str
    created_at: float
    done_seen_at: float | None
    polls: int
    state: str


async def one_job(http: aiohttp.ClientSession, api: Api, base_url: str, prompt: str, interval_s: float) -> Seen:
    body = {api.body_key: prompt, **dict(api.extra_body)}
    async with http.post(base_url + api.create_path, json=body) as response:
        response.raise_for_status()
        remote_id = api.remote_id(await response.json())
    seen = Seen(remote_id, time.time(), None, 0, "")
    while True:
        async with http.get(base_url + api.poll_path.format(id=remote_id)) as response:
            answer = await response.json()
        seen.polls += 1
        seen.state = api.state(answer)
        if seen.state in TERMINAL:
            seen.done_seen_at = time.time()
            return seen
        await asyncio.sleep(interval_s)


async def run(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    api = APIS[spec["provider"]]
    headers = {"Authorization": f"Bearer {spec['api_key']}"}
    connector = aiohttp.TCPConnector(limit=spec.get("connections", 200))
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
        tasks = {
            loop["name"]: [
                asyncio.create_task(one_job(http, api, spec["base_url"], f"{loop['name']} {n}", loop["interval_s"]))
                for n in range(spec["jobs"])
            ]
            for loop in spec["loops"]
        }
        return {name: [asdict(seen) for seen in await asyncio.gather(*jobs)] for name, jobs in tasks.items()}


def main() -> None:
    spec = json.load(sys.stdin)
    json.dump(asyncio.run(run(spec)), sys.stdout)


if __name__ == "__main__":
    main()
