"""A toy provider, written as a new ``providers/<name>.py`` would be: its adapter, its settings block and its
``SPEC``. Nothing else in the bot names it; registering the spec is all it takes to offer it.

The toy API: ``POST /jobs`` ``{prompt, steps, seed}`` → ``{"id", "state"}``; ``GET /jobs/{id}`` →
``{"id", "state": "queued" | "running" | "done" | "failed", "image_url"}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, SecretStr

from providers._http import HttpAdapter
from providers.base import Capabilities, GenerationRequest, JobState, JobStatus, Kind, Output
from providers.registry import ModelSpec, ProviderSettings, ProviderSpec

NAME = "toy"
MODEL = "toy-sketch-v1"
CAPABILITIES = Capabilities(
    kinds=frozenset({Kind.IMAGE}),
    fields=frozenset({"steps", "seed"}),
    steps_range=(1, 20),
    seed_range=(0, 999),
    typical_duration_s=1.0,
)
_STATUS_MAP = {"queued": JobStatus.QUEUED, "running": JobStatus.RUNNING, "done": JobStatus.SUCCEEDED}


def _parse(data: Any) -> JobState:
    state = str(data.get("state"))
    if state == "failed":
        return JobState(str(data["id"]), JobStatus.FAILED, failure_message="The toy broke.", upstream_status=state)
    status = _STATUS_MAP.get(state, JobStatus.RUNNING)
    outputs = (Output("image/png", url=data["image_url"]),) if status is JobStatus.SUCCEEDED else ()
    return JobState(str(data["id"]), status, outputs=outputs, upstream_status=state)


class ToyProvider(HttpAdapter):
    name: ClassVar[str] = NAME
    DEFAULT_BASE_URL: ClassVar[str] = "https://toy.invalid"

    @property
    def models(self) -> tuple[str, ...]:
        return (MODEL,)

    def capabilities(self, model: str) -> Capabilities:
        if model != MODEL:
            raise KeyError(model)
        return CAPABILITIES

    async def submit(self, request: GenerationRequest) -> JobState:
        body = {"prompt": request.prompt, "steps": request.steps, "seed": request.seed}
        return _parse((await self._http.submit("/jobs", json_body=body)).body)

    async def poll(self, remote_id: str) -> JobState:
        return _parse((await self._http.fetch(f"/jobs/{remote_id}")).body)


class ToySettings(ProviderSettings):
    api_key: SecretStr | None = Field(None, description="The toy's API key. Leave empty to disable the model.")
    base_url: str = ToyProvider.DEFAULT_BASE_URL
    crayon: str = Field("red", description="The toy's own setting: the crayon it draws with.")


SPEC = ProviderSpec(
    name=NAME,
    title="Toy",
    settings=ToySettings,
    factory=lambda session, block: ToyProvider(session, **block.adapter_options()),
    models=(
        ModelSpec(
            key="toy-sketch",
            upstream_model=MODEL,
            kinds=frozenset({Kind.IMAGE}),
            title="Toy Sketch",
            blurb="crayon sketches from a toy API",
            capabilities=CAPABILITIES,
            cost=2,
        ),
    ),
)
