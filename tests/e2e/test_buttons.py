"""The buttons on job messages, end to end, before and after a restart of the bot on the same database: Reroll,
Edit (a modal), Animate, Details, Delete, Cancel and Refresh. Whatever makes something is a new job charged to
whoever clicked, through the same service as the commands."""

from __future__ import annotations

from types import SimpleNamespace

import discord
import pytest

from tests.e2e.commands_support import (
    ack_text,
    b64,
    body_of,
    charges,
    ephemeral_followups,
    ledger,
    max_job_id,
    new_job_id,
    png,
    run,
    submits,
)
from tests.e2e.harness import bot_running, delivered, e2e_settings, job_when
from tests.fakes.discord import MANAGE_GUILD
from tests.fakes.discord.interactions import DEFAULT_MEMBER_PERMISSIONS
from tests.fakes.media import mp4_bytes
from tests.fakes.providers._server import Timing

CLICKER = 1_200_000_000_000_000_555
STRANGER = 1_200_000_000_000_000_666
MODERATOR = 1_200_000_000_000_000_777


async def click(fake, custom_id: str, message_id: int, **context):
    """Click a button; returns (interaction record, the interaction callback request)."""
    record = await fake.dispatch(fake.button_click(custom_id, message_id, **context))
    callback = await fake.wait_for(lambda r: r.interaction_token == record.token and "/callback" in r.path)
    return record, callback


async def follow_up_job(fake, bot, custom_id: str, message_id: int, **context):
    """Click a button that starts a job; wait until that job is delivered."""
    before = await max_job_id(bot)
    record, callback = await click(fake, custom_id, message_id, **context)
    # Deferred with "thinking": that response becomes the new job's message, private like the job it comes from.
    assert callback.json["type"] == 5
    job = await delivered(bot, await new_job_id(bot, before))
    return record, job


async def followup_text(fake, record) -> str:
    """The content of the ephemeral follow-up sent after a deferred update (type 6), e.g. a refusal."""

    def ephemeral_followup(request) -> bool:
        return (
            request.interaction_token == record.token
            and request.method == "POST"
            and request.path.startswith("/webhooks/")
            and bool((request.json or {}).get("flags", 0) & 64)
        )

    return (await fake.wait_for(ephemeral_followup)).json.get("content") or ""


def button_ids(message: dict) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


def output_bytes(bot, job) -> bytes:
    return (bot.services.media.root / job.outputs[0].path).read_bytes()


async def started(fake, bot, options: dict, **context):
    _, job = await run(fake, bot, "imagine", options, **context)
    assert job.status == "succeeded", job.error_message
    return job


# ------------------------------------------------------------------------------------------------ each button
async def test_a_finished_job_shows_every_result_button(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        job = await started(fake_discord, bot, {"prompt": "a cat", "model": "uni-1"})
    assert button_ids(fake_discord.messages[job.message_id]) == [
        f"gen:{action}:{job.id}" for action in ("reroll", "edit", "animate", "details", "delete")
    ]


@pytest.mark.parametrize(
    ("options", "provider", "same"),
    [
        ({"prompt": "a fox --ar 16:9 --seed 42 --format png"}, "wavespeed", ("prompt", "size", "output_format")),
        (
            {"prompt": "a fox", "model": "uni-1", "aspect_ratio": "2:3", "style": "manga"},
            "luma_agents",
            ("prompt", "model", "aspect_ratio", "style"),
        ),
        (
            {"prompt": "a fox --steps 12 --guidance 2 --seed 5", "model": "kawaii-3d"},
            "lumozai",
            ("prompt", "num_inference_steps", "guidance", "aspect_ratio"),
        ),
    ],
)
async def test_reroll_is_a_new_job_with_the_same_parameters_charged_to_the_clicker(
    fake_discord, fakes, settings, options, provider, same
):
    async with bot_running(settings, fake_discord) as bot:
        parent = await started(fake_discord, bot, options)
        record, job = await follow_up_job(
            fake_discord, bot, f"gen:reroll:{parent.id}", parent.message_id, user_id=CLICKER
        )
        shown = await ack_text(fake_discord, record, contains=f"Job #{job.id} ·")
        parent_ledger, job_ledger = await ledger(bot, parent.id), await ledger(bot, job.id)
    assert job.status == "succeeded", job.error_message
    assert (job.origin, job.parent_job_id, job.user_id) == ("reroll", parent.id, CLICKER)
    first, second = (body_of(r) for r in submits(fakes, provider)[-2:])
    for key in same:
        assert first[key] == second[key], key
    if "seed" in first:
        assert first["seed"] != second["seed"]
    else:
        assert "seed" not in second  # uni-1 takes no seed
    assert f"Job #{job.id} · {job.cost} credit" in shown  # the job's message says what it cost: no separate receipt
    assert ephemeral_followups(fake_discord, record) == []
    assert job_ledger == [("reserve", CLICKER), ("commit", CLICKER)]
    assert parent_ledger == [("reserve", fake_discord.default_user_id), ("commit", fake_discord.default_user_id)]
    assert fake_discord.messages[job.message_id]["attachments"]


async def test_edit_opens_a_modal_whose_submission_edits_the_output(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        parent = await started(fake_discord, bot, {"prompt": "a blue house", "model": "uni-1-max"})
        _, callback = await click(fake_discord, f"gen:edit:{parent.id}", parent.message_id, user_id=CLICKER)
        assert callback.json["type"] == 9
        modal = callback.json["data"]
        assert modal["custom_id"] == f"gen-edit:{parent.id}"
        text_input = modal["components"][0]["components"][0]
        assert text_input["value"] == "a blue house"  # the old prompt, to change
        before = await max_job_id(bot)
        record = await fake_discord.dispatch(
            fake_discord.modal_submit(
                modal["custom_id"],
                {text_input["custom_id"]: "make it red --ar 1:1 --style manga"},
                parent.message_id,
                user_id=CLICKER,
            )
        )
        job = await delivered(bot, await new_job_id(bot, before))
        shown = await ack_text(fake_discord, record, contains=f"Job #{job.id} ·")
        job_ledger = await ledger(bot, job.id)
        before_refusal = await charges(bot)
        record = await fake_discord.dispatch(
            fake_discord.modal_submit(
                modal["custom_id"], {text_input["custom_id"]: "bluer --steps 3"}, parent.message_id, user_id=CLICKER
            )
        )
        refusal = await ack_text(fake_discord, record)
        assert await charges(bot) == before_refusal
    assert job.status == "succeeded", job.error_message
    assert (job.kind, job.model_key, job.origin, job.user_id) == ("image_edit", "uni-1-max", "edit", CLICKER)
    body = body_of(submits(fakes, "luma_agents")[-1])
    assert body["type"] == "image_edit"
    assert body["prompt"] == "make it red"
    assert (body["aspect_ratio"], body["style"]) == ("1:1", "manga")
    assert "`--steps` does not work with `uni-1-max`" in refusal
    assert body["source"] == {"data": b64(output_bytes(bot, parent)), "media_type": parent.outputs[0].media_type}
    assert body["user_id"] == str(CLICKER)
    assert f"Job #{job.id} · 3 credits" in shown
    assert job_ledger == [("reserve", CLICKER), ("commit", CLICKER)]


async def test_animate_makes_a_video_from_the_output(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        parent = await started(fake_discord, bot, {"prompt": "a paper plane", "model": "kawaii-3d"})
        _, job = await follow_up_job(fake_discord, bot, f"gen:animate:{parent.id}", parent.message_id, user_id=CLICKER)
        job_ledger = await ledger(bot, job.id)
    assert job.status == "succeeded", job.error_message
    assert (job.kind, job.model_key, job.origin, job.user_id) == ("video", "luma-video", "animate", CLICKER)
    body = body_of(submits(fakes, "luma_reseller")[-1])
    media_type = parent.outputs[0].media_type
    assert body["image_url"] == f"data:{media_type};base64,{b64(output_bytes(bot, parent))}"
    assert body["user_prompt"] == "a paper plane"
    assert job_ledger == [("reserve", CLICKER), ("commit", CLICKER)]
    assert job.outputs[0].media_type == "video/mp4"


async def test_details_is_an_ephemeral_embed(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        parent = await started(fake_discord, bot, {"prompt": "a lamp --seed 7 --ar 3:2"})
        record, callback = await click(fake_discord, f"gen:details:{parent.id}", parent.message_id, user_id=CLICKER)
        await ack_text(fake_discord, record)
        assert await charges(bot) == (1, 2)
    assert callback.json == {"type": 5, "data": {"flags": 64}}
    edit = fake_discord.requests_for(record.token)[-1]
    embed = edit.json["embeds"][0]
    assert embed["title"] == f"Job #{parent.id}"
    assert embed["description"] == "a lamp"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Seed"] == "`7`"
    assert fields["Status"] == "succeeded"


async def test_delete_is_for_the_requester_or_a_moderator(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        first = await started(fake_discord, bot, {"prompt": "one"})
        second = await started(fake_discord, bot, {"prompt": "two"})
        record, callback = await click(fake_discord, f"gen:delete:{first.id}", first.message_id, user_id=STRANGER)
        assert callback.json["type"] == 6  # acknowledged before any I/O; the refusal is an ephemeral follow-up
        refusal = await followup_text(fake_discord, record)
        assert "Only the person who made this (or a moderator) can delete it." in refusal
        assert first.message_id in fake_discord.messages

        await click(fake_discord, f"gen:delete:{first.id}", first.message_id)  # the requester
        await job_when(bot, first.id, lambda job: job.message_deleted_at is not None)
        assert first.message_id not in fake_discord.messages

        await click(
            fake_discord,
            f"gen:delete:{second.id}",
            second.message_id,
            user_id=MODERATOR,
            member_permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD,
        )
        await job_when(bot, second.id, lambda job: job.message_deleted_at is not None)
        assert second.message_id not in fake_discord.messages


async def test_a_delete_discord_refuses_takes_its_mark_back(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        job = await started(fake_discord, bot, {"prompt": "stays"})
        fake_discord.fail_next("DELETE", r"/webhooks/\d+/[^/]+/messages/@original", status=403, code=50013)
        record, _ = await click(fake_discord, f"gen:delete:{job.id}", job.message_id)
        await fake_discord.wait_for(lambda r: r.interaction_token == record.token and r.method == "DELETE")
        error = await followup_text(fake_discord, record)
        kept = await bot.services.job_records.get(job.id)
        assert kept is not None
        assert kept.message_deleted_at is None  # still the job's message: delivery keeps it current
        assert job.message_id in fake_discord.messages
    assert error.startswith("Discord did not let the bot delete this message")


async def test_a_delete_whose_outcome_is_unknown_keeps_the_mark_and_can_be_clicked_again(fake_discord, fakes, settings):
    async def connection_lost() -> None:  # as if the process died while the delete was on its way
        raise ConnectionResetError

    async def server_error() -> None:  # Discord's 5xx, after discord.py's own retries: done or not, nobody knows
        raise discord.DiscordServerError(SimpleNamespace(status=503, reason="Service Unavailable"), "")

    async with bot_running(settings, fake_discord) as bot:
        job = await started(fake_discord, bot, {"prompt": "goes"})
        for unknown, error in ((connection_lost, ConnectionResetError), (server_error, discord.DiscordServerError)):
            with pytest.raises(error):
                await bot.services.engine.jobs.delete_message(job, job.message_id, unknown)
            marked = await bot.services.job_records.get(job.id)
            assert marked is not None
            assert marked.message_deleted_at is not None  # nothing sends a message that may be gone
        assert job.message_id in fake_discord.messages
        await click(fake_discord, f"gen:delete:{job.id}", job.message_id)
        await fake_discord.wait_for(lambda r: r.method == "DELETE" and r.path.endswith("/messages/@original"))
    assert job.message_id not in fake_discord.messages


async def test_cancel_refunds_a_queued_job_and_keeps_a_running_jobs_credits(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, providers={"luma_agents": {"max_concurrency": 1}})
    fakes.luma_agents.timing = Timing(queued_s=0, processing_s=30)
    async with bot_running(settings, fake_discord) as bot:
        for prompt in ("running", "queued"):
            await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": prompt, "model": "uni-1"}))
        running = await job_when(bot, 1, lambda job: job.status == "running" and job.message_id is not None)
        queued = await job_when(bot, 2, lambda job: job.status == "queued" and job.message_id is not None)
        assert button_ids(fake_discord.messages[queued.message_id]) == ["gen:cancel:2", "gen:refresh:2"]

        record, _ = await click(fake_discord, "gen:cancel:2", queued.message_id, user_id=STRANGER)
        assert "Only the person who started this job (or a moderator) can do that." in await ack_text(
            fake_discord, record
        )
        record, _ = await click(fake_discord, "gen:cancel:2", queued.message_id)
        assert await ack_text(fake_discord, record) == "Job #2 is cancelled and its 1 credit was refunded."
        record, _ = await click(
            fake_discord,
            "gen:cancel:1",
            running.message_id,
            user_id=MODERATOR,
            member_permissions=DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD,
        )
        said = await ack_text(fake_discord, record)
        assert said.startswith("Job #1 is cancelled: you will get no more updates.")
        assert "which cannot stop it, so its 1 credit stays spent" in said
        first, second = await delivered(bot, 1), await delivered(bot, 2)
        user = fake_discord.default_user_id
        assert await ledger(bot, 1) == [("reserve", user), ("commit", user)]
        assert await ledger(bot, 2) == [("reserve", user), ("refund", user)]
    assert (first.status, second.status) == ("cancelled", "cancelled")
    assert "stays spent" in fake_discord.messages[first.message_id]["content"]
    assert "never started, so your 1 credit was refunded" in fake_discord.messages[second.message_id]["content"]
    assert len(submits(fakes, "luma_agents")) == 1  # the queued job never reached the service
    assert button_ids(fake_discord.messages[second.message_id]) == []


async def test_a_private_job_is_managed_by_its_requester_alone(fake_discord, fakes, settings):
    as_moderator = {"user_id": MODERATOR, "member_permissions": DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD}

    async def private(prompt: str) -> int:
        record = await fake_discord.dispatch(
            fake_discord.slash_command("imagine", {"prompt": prompt, "model": "neta-lumina", "private": True})
        )
        await fake_discord.wait_for(lambda r: r.interaction_token == record.token and r.method == "PATCH")
        return fake_discord.interaction(record.token).original_message_id

    async with bot_running(settings, fake_discord) as bot:
        done_message = await private("a finished secret")
        done = await delivered(bot, 1)
        fakes.wavespeed.timing = Timing(queued_s=0, processing_s=30)
        running_message = await private("a running secret")
        running = await job_when(bot, 2, lambda j: j.status == "running" and j.message_id is not None)

        clicked, _ = await click(fake_discord, f"gen:delete:{done.id}", done_message, **as_moderator)
        refused_delete = await followup_text(fake_discord, clicked)
        clicked, _ = await click(fake_discord, f"gen:cancel:{running.id}", running_message, **as_moderator)
        refused_cancel = await ack_text(fake_discord, clicked)
        still = await bot.services.job_records.get(running.id)
        clicked, _ = await click(fake_discord, f"gen:cancel:{running.id}", running_message)  # the requester
        cancelled = await ack_text(fake_discord, clicked)
    assert refused_delete == "Only the person who made this private job can delete it."
    assert done_message in fake_discord.messages
    assert refused_cancel == "Only the person who started this private job can do that."
    assert still is not None
    assert still.status == "running"
    assert cancelled.startswith(f"Job #{running.id} is cancelled")


async def test_an_edit_of_a_result_uses_the_servers_default_when_its_model_cannot_edit(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        parent = await started(fake_discord, bot, {"prompt": "a lamp", "model": "neta-lumina"})
        await bot.services.server_settings.update(parent.guild_id, actor_id=MODERATOR, default_model="uni-1-max")
        _, opened = await click(fake_discord, f"gen:edit:{parent.id}", parent.message_id)
        modal = opened.json["data"]
        before = await max_job_id(bot)
        field = modal["components"][0]["components"][0]["custom_id"]
        await fake_discord.dispatch(
            fake_discord.modal_submit(modal["custom_id"], {field: "make it red"}, parent.message_id)
        )
        edited = await delivered(bot, await new_job_id(bot, before))
    # neta-lumina cannot edit: the server's default edit model, not the catalogue's (uni-1)
    assert (edited.kind, edited.model_key) == ("image_edit", "uni-1-max")


# ------------------------------------------------------------------------------------------------ after a restart
async def test_every_button_works_after_a_restart(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, providers={"wavespeed": {"max_concurrency": 1}})
    user = fake_discord.default_user_id
    async with bot_running(settings, fake_discord) as bot:
        done = await started(fake_discord, bot, {"prompt": "a green door", "model": "uni-1", "style": "manga"})
        doomed = await started(fake_discord, bot, {"prompt": "delete me", "model": "uni-1"})
        _, opened = await click(fake_discord, f"gen:edit:{done.id}", done.message_id, user_id=CLICKER)
        modal_before = opened.json["data"]
        fakes.wavespeed.timing = Timing(queued_s=0, processing_s=30)
        for prompt in ("slow one", "waiting one"):
            await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": prompt}))
        running = await job_when(bot, 3, lambda job: job.status == "running" and job.message_id is not None)
        queued = await job_when(bot, 4, lambda job: job.status == "queued" and job.message_id is not None)
    # The bot is stopped with an Edit modal open, one job running upstream and one waiting in the bot's queue.

    async with bot_running(settings, fake_discord) as bot:
        # Refresh and Cancel on the jobs that were in flight.
        record, callback = await click(fake_discord, "gen:refresh:3", running.message_id)
        assert callback.json["type"] == 6  # acknowledged first, then the message the button is on is edited
        assert "Making your image" in await ack_text(fake_discord, record)
        record, _ = await click(fake_discord, "gen:cancel:4", queued.message_id)
        assert await ack_text(fake_discord, record) == "Job #4 is cancelled and its 1 credit was refunded."
        record, _ = await click(fake_discord, "gen:cancel:3", running.message_id)
        assert "stays spent" in await ack_text(fake_discord, record)
        assert (await delivered(bot, 3)).status == "cancelled"
        assert (await delivered(bot, 4)).status == "cancelled"

        # The modal opened before the restart, submitted after it.
        before = await max_job_id(bot)
        text_input = modal_before["components"][0]["components"][0]
        await fake_discord.dispatch(
            fake_discord.modal_submit(
                modal_before["custom_id"], {text_input["custom_id"]: "paint it gold"}, done.message_id, user_id=CLICKER
            )
        )
        edited = await delivered(bot, await new_job_id(bot, before))

        # A modal opened and submitted after the restart.
        _, opened = await click(fake_discord, f"gen:edit:{done.id}", done.message_id, user_id=CLICKER)
        assert opened.json["type"] == 9
        modal = opened.json["data"]
        before = await max_job_id(bot)
        await fake_discord.dispatch(
            fake_discord.modal_submit(
                modal["custom_id"],
                {modal["components"][0]["components"][0]["custom_id"]: "paint it silver"},
                done.message_id,
                user_id=CLICKER,
            )
        )
        edited_again = await delivered(bot, await new_job_id(bot, before))

        _, rerolled = await follow_up_job(fake_discord, bot, f"gen:reroll:{done.id}", done.message_id, user_id=CLICKER)
        _, animated = await follow_up_job(fake_discord, bot, f"gen:animate:{done.id}", done.message_id, user_id=CLICKER)

        record, _ = await click(fake_discord, f"gen:details:{done.id}", done.message_id)
        await ack_text(fake_discord, record)
        details = fake_discord.requests_for(record.token)[-1].json["embeds"][0]

        await click(fake_discord, f"gen:delete:{doomed.id}", doomed.message_id)
        await job_when(bot, doomed.id, lambda job: job.message_deleted_at is not None)

        ledgers = {job.id: await ledger(bot, job.id) for job in (edited, edited_again, rerolled, animated)}
        assert await ledger(bot, 3) == [("reserve", user), ("commit", user)]
        assert await ledger(bot, 4) == [("reserve", user), ("refund", user)]

    assert (edited.kind, edited.prompt, edited.status) == ("image_edit", "paint it gold", "succeeded")
    assert (edited_again.prompt, edited_again.status) == ("paint it silver", "succeeded")
    assert (rerolled.origin, rerolled.status) == ("reroll", "succeeded")
    assert (animated.kind, animated.status) == ("video", "succeeded")
    for job in (edited, edited_again, rerolled, animated):
        assert job.user_id == CLICKER
        assert job.parent_job_id == done.id
        assert ledgers[job.id] == [("reserve", CLICKER), ("commit", CLICKER)]
    edit_bodies = [r.json for r in submits(fakes, "luma_agents") if r.json["type"] == "image_edit"]
    assert [b["prompt"] for b in edit_bodies] == ["paint it gold", "paint it silver"]
    assert details["title"] == f"Job #{done.id}"
    assert doomed.message_id not in fake_discord.messages
    assert len(submits(fakes, "wavespeed")) == 1  # the job cancelled while queued never reached the service


async def test_two_people_editing_the_same_result_each_get_their_edit(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        parent = await started(fake_discord, bot, {"prompt": "a boat", "model": "uni-1"})
        modals = {}
        for user in (CLICKER, STRANGER):
            _, opened = await click(fake_discord, f"gen:edit:{parent.id}", parent.message_id, user_id=user)
            modals[user] = opened.json["data"]
        jobs = {}
        for user, prompt in ((CLICKER, "a red boat"), (STRANGER, "a green boat")):
            before = await max_job_id(bot)
            modal = modals[user]
            await fake_discord.dispatch(
                fake_discord.modal_submit(
                    modal["custom_id"],
                    {modal["components"][0]["components"][0]["custom_id"]: prompt},
                    parent.message_id,
                    user_id=user,
                )
            )
            jobs[user] = await delivered(bot, await new_job_id(bot, before))
    assert (jobs[CLICKER].user_id, jobs[CLICKER].prompt) == (CLICKER, "a red boat")
    assert (jobs[STRANGER].user_id, jobs[STRANGER].prompt) == (STRANGER, "a green boat")


# ------------------------------------------------------------------------------------------------ more contexts
async def test_reroll_keeps_the_input_images_of_edits_and_videos(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, daily_credits=100)
    source, start = png(90, 90, (9, 9, 9)), png(100, 80, (200, 0, 0))
    async with bot_running(settings, fake_discord) as bot:
        _, edit = await run(
            fake_discord,
            bot,
            "edit",
            {
                "image": fake_discord.add_cdn_file("s.png", source),
                "prompt": "snow",
                "reference": fake_discord.add_cdn_file("r.png", start),
            },
        )
        _, video = await run(
            fake_discord,
            bot,
            "video",
            {"prompt": "melt", "start_image": fake_discord.add_cdn_file("v.png", start), "duration": "10s"},
        )
        assert button_ids(fake_discord.messages[video.message_id]) == [
            f"gen:{action}:{video.id}" for action in ("reroll", "extend", "details", "delete")
        ]
        _, edit_again = await follow_up_job(fake_discord, bot, f"gen:reroll:{edit.id}", edit.message_id)
        _, video_again = await follow_up_job(fake_discord, bot, f"gen:reroll:{video.id}", video.message_id)
    assert (edit_again.status, video_again.status) == ("succeeded", "succeeded")
    first_edit, second_edit = (r.json for r in submits(fakes, "luma_agents")[-2:])
    assert second_edit == first_edit
    assert second_edit["source"]["data"] == b64(source)
    first_video, second_video = (r.json for r in submits(fakes, "luma_reseller")[-2:])
    assert second_video == first_video
    assert second_video["image_url"] == f"data:image/png;base64,{b64(start)}"


async def test_buttons_in_dms_and_on_private_results(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        dm_job = await started(fake_discord, bot, {"prompt": "a dm cat", "model": "uni-1"}, guild_id=None)
        private_job = await started(fake_discord, bot, {"prompt": "a private cat", "model": "uni-1", "private": True})
        private_message = fake_discord.interaction(
            [r for r in fake_discord.state.interactions.values() if r.type == 2][-1].token
        ).original_message_id

        _, rerolled = await follow_up_job(
            fake_discord, bot, f"gen:reroll:{dm_job.id}", dm_job.message_id, guild_id=None
        )
        assert rerolled.guild_id == 0
        user = fake_discord.default_user_id
        assert await ledger(bot, rerolled.id) == [("reserve", user), ("commit", user)]
        _, private_again = await follow_up_job(fake_discord, bot, f"gen:reroll:{private_job.id}", private_message)
        assert private_again.ephemeral  # a reroll of a private result is private too

        record, _ = await click(fake_discord, f"gen:details:{private_job.id}", private_message, user_id=STRANGER)
        assert await ack_text(fake_discord, record) == f"There is no job #{private_job.id} you can see."
        record, _ = await click(fake_discord, f"gen:reroll:{private_job.id}", private_message, user_id=STRANGER)
        assert "Only the person who started this private job" in await ack_text(fake_discord, record)

        await click(fake_discord, f"gen:delete:{dm_job.id}", dm_job.message_id, guild_id=None)
        await job_when(bot, dm_job.id, lambda job: job.message_deleted_at is not None)
        await click(fake_discord, f"gen:delete:{private_job.id}", private_message)
        await job_when(bot, private_job.id, lambda job: job.message_deleted_at is not None)
    assert dm_job.message_id not in fake_discord.messages
    assert private_message not in fake_discord.messages


async def test_a_clicker_without_credits_is_refused_and_nothing_is_charged(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, daily_credits=3)
    async with bot_running(settings, fake_discord) as bot:
        parent = await started(fake_discord, bot, {"prompt": "a costly fox", "model": "uni-1-max"}, user_id=CLICKER)
        await started(fake_discord, bot, {"prompt": "a cheap fox"}, user_id=STRANGER)  # 2 credits left, 3 needed
        before = await charges(bot)
        record, _ = await click(fake_discord, f"gen:reroll:{parent.id}", parent.message_id, user_id=STRANGER)
        text = await ack_text(fake_discord, record)
        assert await charges(bot) == before
    assert "credit" in text
    assert not text.startswith("✅")
    assert "<t:" in text  # when the credits come back


async def test_long_markdown_heavy_prompts_stay_within_discords_limits(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, prompt_max_length=6000, daily_credits=100)
    prompt = ", ".join(["long_hair_with_*stars*"] * 250)[:5990]  # danbooru tags: underscores everywhere
    async with bot_running(settings, fake_discord) as bot:
        job = await started(fake_discord, bot, {"prompt": prompt, "model": "uni-1"})
        record, _ = await click(fake_discord, f"gen:details:{job.id}", job.message_id)
        await ack_text(fake_discord, record)
        details = fake_discord.requests_for(record.token)[-1]
        _, video = await run(
            fake_discord, bot, "video", {"prompt": prompt[:1400]}, attachment_size_limit=len(mp4_bytes()) - 1
        )
    assert details.status == 200
    assert len(details.json["embeds"][0]["description"]) <= 4096
    content = fake_discord.messages[video.message_id]["content"]
    assert len(content) <= 2000
    assert content.rstrip().endswith(")."), content[-200:]  # the download link line is whole
    assert "[Download the video](" in content


async def test_a_failed_job_offers_try_again_and_details(fake_discord, fakes, settings):
    fakes.luma_agents.fail_next("generation_failed")
    async with bot_running(settings, fake_discord) as bot:
        _, failed = await run(fake_discord, bot, "imagine", {"prompt": "a kite", "model": "uni-1"})
        assert failed.status == "failed"
        message = fake_discord.messages[failed.message_id]
        assert button_ids(message) == [f"gen:{a}:{failed.id}" for a in ("reroll", "details", "delete")]
        assert message["components"][0]["components"][0]["label"] == "Try again"
        record, _ = await click(fake_discord, f"gen:details:{failed.id}", failed.message_id)
        await ack_text(fake_discord, record)
        embed = fake_discord.requests_for(record.token)[-1].json["embeds"][0]
        _, again = await follow_up_job(fake_discord, bot, f"gen:reroll:{failed.id}", failed.message_id)
        user = fake_discord.default_user_id
        assert await ledger(bot, failed.id) == [("reserve", user), ("refund", user)]
        assert await ledger(bot, again.id) == [("reserve", user), ("commit", user)]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Status"] == "failed"
    assert "Why it failed" in fields
    assert again.status == "succeeded"


async def test_another_users_refresh_of_a_private_job_gets_none_of_it(fake_discord, fakes, settings):
    fakes.luma_agents.timing = Timing(queued_s=0, processing_s=30)
    async with bot_running(settings, fake_discord) as bot:
        started_by = await fake_discord.dispatch(
            fake_discord.slash_command("imagine", {"prompt": "a secret heron", "model": "uni-1", "private": True})
        )
        job = await job_when(bot, 1, lambda j: j.status == "running" and j.message_id is not None)
        message_id = fake_discord.interaction(started_by.token).original_message_id
        record, callback = await click(fake_discord, f"gen:refresh:{job.id}", message_id, user_id=STRANGER)
        refusal = await followup_text(fake_discord, record)
        sent = fake_discord.requests_for(record.token)
        after = await bot.services.job_records.get(job.id)
        own, _ = await click(fake_discord, f"gen:refresh:{job.id}", message_id)  # the requester still can
        await fake_discord.wait_for(lambda r: r.interaction_token == own.token and r.method == "PATCH")
    assert callback.json["type"] == 6
    assert refusal == f"There is no job #{job.id} you can see."
    assert not [r for r in sent if r.method == "PATCH"]  # the message was not edited for the stranger
    assert "secret heron" not in str([r.json for r in sent])
    assert after is not None
    assert after.interaction_token != record.token  # the stranger's token was not kept for the job
