"""A job's parameters as stored in the database, and the provider request rebuilt from them.

Input images are stored on disk (``MediaStore``) and referenced by path, so a queued job can be submitted after
a restart and a result can be reused as the input of another job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.jobs.media_store import MediaStore
from bot.storage.jobs import JobRecord
from providers.base import GenerationRequest, ImageInput, Kind

SINGLE_IMAGE_PARAMS = ("source_image", "start_frame", "end_frame")
SCALAR_PARAMS = (
    "aspect_ratio",
    "seed",
    "style",
    "output_format",
    "duration_s",
    "resolution",
    "loop",
    "enhance_prompt",
    "steps",
    "guidance",
    "quality",
    "lora_scale",
    "megapixels",
    "prompt_strength",
    "web_search",
    "extend_of",  # the upstream id of the video an Extend job continues
)


@dataclass(frozen=True, slots=True)
class StoredImage:
    path: str
    media_type: str

    def as_param(self) -> dict[str, str]:
        return {"path": self.path, "media_type": self.media_type}


def job_params(
    *,
    upstream_model: str,
    options: dict[str, Any],
    size: tuple[int, int] | None = None,
    reference_images: tuple[StoredImage, ...] = (),
    source_image: StoredImage | None = None,
    start_frame: StoredImage | None = None,
    end_frame: StoredImage | None = None,
) -> dict[str, Any]:
    """The JSON stored in ``jobs.params``: upstream model, scalar options, size and input image references."""
    unknown = set(options) - set(SCALAR_PARAMS)
    if unknown:
        raise ValueError(f"not request options: {sorted(unknown)}")
    params: dict[str, Any] = {"model": upstream_model, **{k: v for k, v in options.items() if v is not None}}
    if size is not None:
        params["size"] = list(size)
    if reference_images:
        params["reference_images"] = [image.as_param() for image in reference_images]
    for key, image in (("source_image", source_image), ("start_frame", start_frame), ("end_frame", end_frame)):
        if image is not None:
            params[key] = image.as_param()
    return params


async def build_request(job: JobRecord, media: MediaStore) -> GenerationRequest:
    """The provider request for a stored job. Raises ``OSError`` if an input file has gone."""
    params = job.params

    async def load(ref: dict[str, str]) -> ImageInput:
        return ImageInput(data=await media.read(ref["path"]), media_type=ref["media_type"])

    images: dict[str, Any] = {}
    for key in SINGLE_IMAGE_PARAMS:
        if params.get(key):
            images[key] = await load(params[key])
    references = tuple([await load(ref) for ref in params.get("reference_images", [])])
    return GenerationRequest(
        kind=Kind(job.kind),
        prompt=job.prompt,
        model=params["model"],
        user_id=str(job.user_id),
        size=tuple(params["size"]) if params.get("size") else None,  # type: ignore[arg-type]
        reference_images=references,
        **images,
        **{key: params[key] for key in SCALAR_PARAMS if key in params},
    )
