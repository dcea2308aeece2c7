"""Who may do what with a job: the one policy, used by the job service, the buttons and ``/job show``.

- **use** its message's buttons (Reroll, Edit, Animate, Details): whoever sees the message. A public job's message
  is seen by the channel, so anyone (a follow-up job is charged to whoever clicked); a private job's message only
  by its requester.
- **view** it by number (``/job show``): its requester; for a job that is not private, also a moderator of the
  job's own server (asking from that server), and an operator anywhere.
- **manage** it (Cancel, Delete): its requester; for a job that is not private, also a moderator of the job's own
  server (asking from that server; operators count as moderators there). A private job: only its requester.

Pure functions: the caller passes the settings of the job's server (``ServerConfig``) and the bot's settings.
"""

from __future__ import annotations

from bot.i18n import msg
from bot.jobs.requester import Requester
from bot.server_settings.config import ServerConfig
from bot.settings import Settings
from bot.storage.jobs import JobRecord

NOT_YOURS_PRIVATE = msg("Only the person who started this private job can do that.")
NOT_YOURS = msg("Only the person who started this job (or a moderator) can do that.")


def is_owner(job: JobRecord, requester: Requester) -> bool:
    return job.user_id == requester.user_id


def moderates_job_server(job: JobRecord, requester: Requester, config: ServerConfig, settings: Settings) -> bool:
    """A moderator of the server the job was made in, asking from that server (their permissions and roles are
    those of the server they ask from). ``config`` is that server's settings."""
    return (
        bool(job.guild_id)
        and job.guild_id == requester.guild_id
        and config.guild_id == job.guild_id
        and requester.is_moderator(config, settings)
    )


def can_use(job: JobRecord, requester: Requester) -> bool:
    """The buttons on the job's message that make something new or show its details."""
    return is_owner(job, requester) or not job.ephemeral


def can_view(job: JobRecord, requester: Requester, config: ServerConfig, settings: Settings) -> bool:
    """The job by its number, from anywhere (``/job show``)."""
    if is_owner(job, requester):
        return True
    if job.ephemeral:
        return False
    return requester.user_id in settings.operator_user_ids or moderates_job_server(job, requester, config, settings)


def can_manage(job: JobRecord, requester: Requester, config: ServerConfig, settings: Settings) -> bool:
    """Cancel the job or delete its message."""
    if is_owner(job, requester):
        return True
    if job.ephemeral:
        return False
    return moderates_job_server(job, requester, config, settings)


def refusal(job: JobRecord) -> str:
    """What to tell someone who may not manage ``job``."""
    return NOT_YOURS_PRIVATE if job.ephemeral else NOT_YOURS
