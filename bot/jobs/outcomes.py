"""What the engine's upstream steps share with the rest of it: the lanes' names, the failure texts a job can end
with (its message adds that the credits were refunded), and the finished upstream state kept in the job row
between the poll that saw it and the download of its outputs."""

from __future__ import annotations

import base64
import json

from bot.i18n import N_
from providers.base import JobState, JobStatus, Output

POLL_LANE = "poll"
DOWNLOAD_LANE = "download"
# Failure texts; the job's message adds that the credits were refunded.
# Stored in English with the job; ``bot.i18n.render`` translates them when the message is rendered.
GENERIC_FAILURE = N_("Something went wrong on our side while running this job.")
RESTARTED_WHILE_SUBMITTING = N_(
    "The bot restarted while sending this job to the service, so it cannot tell whether the job started. "
    "It was not sent again; try again if you still want it."
)
QUEUE_TIMEOUT = N_("The service was too busy to start this job in time. Try again later.")
RUN_TIMEOUT = N_("The service took too long to finish this job, so the bot stopped waiting.")
LOST_UPSTREAM = N_("The service no longer knows this job (it may have expired).")
DOWNLOAD_FAILED = N_("The result was made but could not be downloaded.")
INPUT_GONE = N_("An input image of this job is no longer stored, so it cannot be sent.")
PROVIDER_DISABLED = N_("This model is no longer enabled on this bot.")


def submit_lane(provider: str) -> str:
    return f"submit:{provider}"


def dump_state(state: JobState) -> str:
    """A finished upstream state as JSON, kept in the job row until its outputs are downloaded."""
    outputs = [
        {
            "media_type": o.media_type,
            "url": o.url,
            "data": base64.b64encode(o.data).decode() if o.data is not None else None,
            "nsfw": o.nsfw,
        }
        for o in state.outputs
    ]
    return json.dumps({"remote_id": state.remote_id, "upstream_status": state.upstream_status, "outputs": outputs})


def load_state(text: str) -> JobState:
    data = json.loads(text)
    outputs = tuple(
        Output(
            media_type=o.get("media_type"),
            url=o.get("url"),
            data=base64.b64decode(o["data"]) if o.get("data") else None,
            nsfw=bool(o.get("nsfw")),
        )
        for o in data.get("outputs", [])
    )
    return JobState(
        remote_id=str(data.get("remote_id") or ""),
        status=JobStatus.SUCCEEDED,
        outputs=outputs,
        upstream_status=data.get("upstream_status"),
    )
