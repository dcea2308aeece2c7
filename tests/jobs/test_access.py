"""Who may use, view and manage a job (bot/jobs/access.py): one policy for the buttons, /job show and Cancel."""

from __future__ import annotations

import dataclasses

import pytest

from bot.jobs.access import can_manage, can_use, can_view, refusal
from bot.jobs.requester import Requester
from bot.server_settings.config import ServerConfig
from bot.settings import Settings
from tests.jobs.jobs_factory import make_job

OWNER = 111_111_111_111_111_111
OTHER = 555
OPERATOR = 999
GUILD = 222_222_222_222_222_222
ELSEWHERE = 777
MOD_ROLE = 4242


def requester(user_id: int = OTHER, guild_id: int = GUILD, *, manage: bool = False, roles=()) -> Requester:
    values = {
        "user_id": user_id,
        "guild_id": guild_id,
        "channel_id": 1,
        "role_ids": frozenset(roles),
        "channel_nsfw": False,
        "application_id": 1,
        "interaction_id": 1,
        "token": "t",
        "token_expires_at": 0.0,
        "context": 0 if guild_id else 1,
        "guild_installed": True,
        "attachment_size_limit": 10,
        "manage_guild": manage,
    }
    # Where the channel is does not matter here; fill whatever the dataclass calls it.
    where = {f.name: () if "ids" in f.name else None for f in dataclasses.fields(Requester) if f.name not in values}
    return Requester(**values, **where)


SETTINGS = Settings(_env_file=None, operator_user_ids=[OPERATOR])  # type: ignore[call-arg]
CONFIG = ServerConfig(guild_id=GUILD, moderator_roles=frozenset({MOD_ROLE}))

WHO = {
    "owner": requester(OWNER),
    "owner in DMs": requester(OWNER, 0),
    "member": requester(),
    "manage server": requester(manage=True),
    "moderator role": requester(roles={MOD_ROLE}),
    "moderator of another server": requester(guild_id=ELSEWHERE, manage=True),
    "moderator asking from DMs": requester(guild_id=0, roles={MOD_ROLE}),
    "operator": requester(OPERATOR),
    "operator elsewhere": requester(OPERATOR, ELSEWHERE),
}

# who: (use its buttons, view it by number, manage it) for a public job / a private job of GUILD
TABLE = {
    "owner": ((True, True, True), (True, True, True)),
    "owner in DMs": ((True, True, True), (True, True, True)),
    "member": ((True, False, False), (False, False, False)),
    "manage server": ((True, True, True), (False, False, False)),
    "moderator role": ((True, True, True), (False, False, False)),
    "moderator of another server": ((True, False, False), (False, False, False)),
    "moderator asking from DMs": ((True, False, False), (False, False, False)),
    "operator": ((True, True, True), (False, False, False)),
    "operator elsewhere": ((True, True, False), (False, False, False)),
}


@pytest.mark.parametrize("who", list(TABLE))
@pytest.mark.parametrize("private", [False, True], ids=["public", "private"])
def test_the_policy_table(who, private):
    job = make_job(guild_id=GUILD, ephemeral=private)
    asked = WHO[who]
    got = (can_use(job, asked), can_view(job, asked, CONFIG, SETTINGS), can_manage(job, asked, CONFIG, SETTINGS))
    assert got == TABLE[who][private]


def test_a_dm_job_is_its_requesters_alone_except_an_operator_may_view_it():
    job = make_job(guild_id=0, channel_id=5)
    dm_config = ServerConfig(guild_id=0)
    assert can_manage(job, requester(OWNER, 0), dm_config, SETTINGS)
    assert not can_manage(job, requester(OPERATOR, 0), dm_config, SETTINGS)
    assert can_view(job, requester(OPERATOR, 0), dm_config, SETTINGS)
    assert not can_view(job, requester(guild_id=0, manage=True), dm_config, SETTINGS)


def test_the_settings_of_another_server_never_make_a_moderator():
    job = make_job(guild_id=GUILD)
    other_config = ServerConfig(guild_id=ELSEWHERE, moderator_roles=frozenset({MOD_ROLE}))
    assert not can_manage(job, requester(roles={MOD_ROLE}), other_config, SETTINGS)


def test_refusals_say_whose_it_is():
    assert refusal(make_job()) == "Only the person who started this job (or a moderator) can do that."
    assert refusal(make_job(ephemeral=True)) == "Only the person who started this private job can do that."
