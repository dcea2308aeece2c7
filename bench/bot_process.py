"""The real bot as a separate process (``python -m bot``), configured only through its documented settings, and
what is read from outside it: CPU and peak memory from ``/proc``, counters and the event-loop lag from
``/metrics`` (``HTTP_PORT``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from providers import registry

ROOT = Path(__file__).resolve().parents[1]
# Settings of the bot that pace its work against the services' timeline; multiplied by the scale factor, like the
# fake jobs' durations and the baselines' intervals. Discord's rate limits are not scaled.
SCALED_CORE = {
    "EDIT_MIN_INTERVAL_S": 2.0,
    "QUEUE_EDIT_INTERVAL_S": 10.0,
    "COMPLETION_PING_AFTER_S": 60.0,
    "POLL_TARGET_LATENCY_S": 1.8,
}
# Not scaled: how often the learned poll plan is refitted (a cost, not a pace); short, so the warm-up is short.
FIXED_CORE = {"POLL_STATS_REFRESH_S": "2"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_DROPPED = ("DISCORD_", "DATABASE_", "ENGINE_", "SHARD_", "WEBHOOK_", "HTTP_", "DEV_GUILD_ID", "OPERATOR_")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def provider_env(
    blocks: dict[str, dict[str, Any]], scale: float, in_flight: int, *, fixed_first_poll: bool = False
) -> dict[str, str]:
    """Each provider's block pointed at its fake (``api_key`` and ``base_url`` from ``blocks``), its poll intervals
    (production defaults) scaled, and limits high enough for ``in_flight`` jobs at once. ``fixed_first_poll``
    (``--quick``): the first poll at three quarters of the model's typical duration, scaled, instead of the learned
    plan, whose prior (the typical duration) is not scaled and which a few jobs cannot teach."""
    env: dict[str, str] = {}
    for spec in registry.specs():
        fields = spec.settings.model_fields
        values: dict[str, Any] = {
            "poll_interval_s": fields["poll_interval_s"].default * scale,
            "max_poll_interval_s": fields["max_poll_interval_s"].default * scale,
            "max_concurrency": in_flight + 10,
            "requests_per_minute": 10_000_000,
        }
        if fixed_first_poll:
            values["first_poll_s"] = 0.75 * spec.models[0].capabilities.typical_duration_s * scale
        block = blocks.get(spec.name, {})
        values.update({key: block[key] for key in ("api_key", "base_url") if key in block})
        for key, value in values.items():
            env[f"{spec.name.upper()}__{key.upper()}"] = str(value)
    return env


def bot_env(
    workdir: Path,
    discord: Any,
    blocks: dict[str, dict[str, Any]],
    *,
    scale: float,
    in_flight: int,
    http_port: int,
    fixed_first_poll: bool = False,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    env = {k: v for k, v in env.items() if not k.startswith(tuple(f"{s.name.upper()}__" for s in registry.specs()))}
    env.update(
        {
            "DISCORD_TOKEN": discord.token,
            "DISCORD_API_BASE_URL": discord.api_base,
            "DATABASE_PATH": str(workdir / "bot.sqlite3"),
            "OUTPUT_DIR": str(workdir / "outputs"),
            "ALLOW_LOOPBACK_FETCH": "true",
            "DAILY_CREDITS": "1000000",
            "MAX_RUNNING_JOBS_PER_USER": "1000000",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(http_port),
            "PYTHONPATH": str(ROOT),
            **{name: str(default * scale) for name, default in SCALED_CORE.items()},
            **FIXED_CORE,
            **provider_env(blocks, scale, in_flight, fixed_first_poll=fixed_first_poll),
        }
    )
    return env


@dataclass
class Metrics:
    """One scrape of ``/metrics``: every sample as (name, labels) → value."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Metrics:
        found = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def total(self, name: str) -> float | None:
        values = [v for (n, _), v in self.samples.items() if n == name]
        return sum(values) if values else None

    def buckets(self, name: str) -> dict[float, float]:
        return {float(dict(labels)["le"]): v for (n, labels), v in self.samples.items() if n == f"{name}_bucket"}


class BotProcess:
    """``python -m bot`` in ``workdir`` (no ``.env`` there), its log in ``workdir/bot.log``."""

    def __init__(self, workdir: Path, env: dict[str, str], http_port: int) -> None:
        self.workdir = workdir
        self.env = env
        self.metrics_url = f"http://127.0.0.1:{http_port}/metrics"
        self.proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self, discord: Any, within_s: float = 60.0) -> None:
        discord.ready.clear()
        with (self.workdir / "bot.log").open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=self.workdir, env=self.env,
                stdout=asyncio.subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        self._http = aiohttp.ClientSession()
        ready = asyncio.ensure_future(discord.ready.wait())
        exited = asyncio.ensure_future(self.proc.wait())
        done, _ = await asyncio.wait({ready, exited}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        exited.cancel()
        if ready not in done:
            raise RuntimeError(f"the bot did not connect within {within_s:.0f}s; see {self.workdir / 'bot.log'}")
        for _ in range(int(within_s * 10)):
            with contextlib.suppress(aiohttp.ClientError):
                await self.scrape()
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the bot's /metrics did not answer")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def scrape(self) -> Metrics:
        assert self._http is not None
        async with self._http.get(self.metrics_url, timeout=aiohttp.ClientTimeout(total=30)) as response:
            response.raise_for_status()
            return Metrics.parse(await response.text())

    def cpu_s(self) -> float:
        """User + system CPU time of the process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=40)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
