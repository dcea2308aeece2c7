"""The Extend button on a finished luma-video result, end to end: a box for an optional new prompt, then a new
video job that continues the original through the reseller's extend call, charged to whoever clicked; chains of
extensions, shown by /job show; after a restart; and the refusals, which cost nothing."""

from __future__ import annotations

from typing import Any

from tests.e2e.commands_support import ack_text, charges, ledger, max_job_id, new_job_id, run
from tests.e2e.harness import bot_running, delivered, e2e_settings, job_when
from tests.e2e.moderation_support import command
from tests.fakes.providers._server import Outcome, Timing

CLICKER = 1_200_000_000_000_000_555
STRANGER = 1_200_000_000_000_000_666
OTHERS = (1_200_000_000_000_000_888, 1_200_000_000_000_000_999)


def extend_path(remote_id: str) -> str:
    return f"/luma/generations/{remote_id}/extend"


def button_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row["components"]]


async def video(fake, bot, prompt: str = "a cat walks", **context: Any):
    _, job = await run(fake, bot, "video", {"prompt": prompt}, **context)
    return job


async def open_box(fake, job, **context: Any) -> dict[str, Any]:
    """Click Extend on ``job``'s message; returns the modal it opened."""
    record = await fake.dispatch(fake.button_click(f"gen:extend:{job.id}", job.message_id, **context))
    callback = await fake.wait_for(lambda r: r.interaction_token == record.token and "/callback" in r.path)
    assert callback.json["type"] == 9, callback.json
    return callback.json["data"]


async def send_box(fake, modal: dict[str, Any], text: str, message_id: int, **context: Any):
    field = modal["components"][0]["components"][0]["custom_id"]
    return await fake.dispatch(fake.modal_submit(modal["custom_id"], {field: text}, message_id, **context))


async def extend(fake, bot, job, text: str = "", **context: Any):
    """Click Extend, send the box with ``text``; returns (interaction record, the new job once delivered)."""
    modal = await open_box(fake, job, **context)
    before = await max_job_id(bot)
    record = await send_box(fake, modal, text, job.message_id, **context)
    return record, await delivered(bot, await new_job_id(bot, before))


async def refused_click(fake, bot, custom_id: str, message_id: int, **context: Any) -> str:
    """A click answered with an ephemeral refusal: no modal, no job, no ledger row. The bot never shows Extend
    where it cannot work; the button is put on the message here as a stale message (or a race) would show it."""
    message = fake.messages[message_id]
    button = {"type": 2, "style": 2, "label": "Extend", "custom_id": custom_id}
    message["components"] = [*message.get("components", []), {"type": 1, "components": [button]}]
    before = await charges(bot)
    record = await fake.dispatch(fake.button_click(custom_id, message_id, **context))
    callback = await fake.wait_for(lambda r: r.interaction_token == record.token and "/callback" in r.path)
    assert callback.json["type"] == 4, callback.json
    assert callback.json["data"]["flags"] & 64
    assert await charges(bot) == before
    return str(callback.json["data"]["content"])


# ------------------------------------------------------------------------------------------------ success, chains
async def test_extend_makes_a_video_that_continues_the_original_charged_to_the_clicker(fake_discord, fakes, settings):
    reseller = fakes.luma_reseller
    async with bot_running(settings, fake_discord) as bot:
        parent = await video(fake_discord, bot, "a cat walks --ar 9:16 --res 1080p")
        assert f"gen:extend:{parent.id}" in button_ids(fake_discord.messages[parent.message_id])
        modal = await open_box(fake_discord, parent, user_id=CLICKER)
        assert modal["custom_id"] == f"gen-extend:{parent.id}"
        text_input = modal["components"][0]["components"][0]
        assert text_input["required"] is False
        assert text_input["placeholder"] == "a cat walks"  # empty: the original prompt
        before = await max_job_id(bot)
        record = await send_box(fake_discord, modal, "then it jumps --enhance", parent.message_id, user_id=CLICKER)
        child = await delivered(bot, await new_job_id(bot, before))
        receipt = await ack_text(fake_discord, record, contains="✅")
        parent_ledger, child_ledger = await ledger(bot, parent.id), await ledger(bot, child.id)
    assert child.status == "succeeded", child.error_message
    assert (child.kind, child.model_key, child.origin, child.parent_job_id) == (
        "video",
        "luma-video",
        "extend",
        parent.id,
    )
    assert (child.user_id, child.prompt) == (CLICKER, "then it jumps")
    assert reseller.extended == [(parent.remote_id, {"user_prompt": "then it jumps", "expand_prompt": True})]
    assert len(reseller.requests_to("POST", extend_path(parent.remote_id))) == 1
    assert (child.params["aspect_ratio"], child.params["resolution"]) == ("9:16", "1080p")  # kept from the original
    assert f"Job #{child.id} started: 10 credits" in receipt
    assert child_ledger == [("reserve", CLICKER), ("commit", CLICKER)]
    assert parent_ledger == [("reserve", fake_discord.default_user_id), ("commit", fake_discord.default_user_id)]
    message = fake_discord.messages[child.message_id]
    assert message["attachments"]
    assert f"gen:extend:{child.id}" in button_ids(message)  # extend again


async def test_a_chain_of_extensions_shows_in_job_show(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, daily_credits=100)
    async with bot_running(settings, fake_discord) as bot:
        first = await video(fake_discord, bot, "a boat leaves the harbour")
        _, second = await extend(fake_discord, bot, first, "it sails into a storm")
        _, third = await extend(fake_discord, bot, second)  # empty box: the prompt of the job it extends
        _, other = await extend(fake_discord, bot, first, "it sinks")
        _, shown_first = await command(fake_discord, "job", {"id": first.id}, subcommand="show")
        _, shown_second = await command(fake_discord, "job", {"id": second.id}, subcommand="show")
        _, details = await command(fake_discord, "job", {"id": third.id}, subcommand="show")
    assert [job.status for job in (second, third, other)] == ["succeeded"] * 3
    assert third.prompt == "it sails into a storm"
    assert fakes.luma_reseller.extended == [
        (first.remote_id, {"user_prompt": "it sails into a storm"}),
        (second.remote_id, {"user_prompt": "it sails into a storm"}),
        (first.remote_id, {"user_prompt": "it sinks"}),
    ]
    assert f"Extended by\njob #{second.id}, job #{other.id}" in shown_first
    assert "Extends" not in shown_first
    assert f"Extends\njob #{first.id}" in shown_second
    assert f"Extended by\njob #{third.id}" in shown_second
    assert f"Extends\njob #{second.id}" in details
    assert "Extended by" not in details
    assert third.remote_id not in details  # the upstream id is not shown


# ------------------------------------------------------------------------------------------------ restarts
async def test_extend_survives_a_restart_between_click_and_submit_and_works_after_it(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, providers={"luma_reseller": {"max_concurrency": 1}})
    reseller = fakes.luma_reseller
    async with bot_running(settings, fake_discord) as bot:
        parent = await video(fake_discord, bot, "a kite rises")
        later_box = await open_box(fake_discord, parent, user_id=STRANGER)  # sent after the restart
        reseller.timing = Timing(queued_s=0, processing_s=60)
        await fake_discord.dispatch(fake_discord.slash_command("video", {"prompt": "holds the only slot"}))
        slow = await job_when(bot, parent.id + 1, lambda j: j.status == "running" and j.message_id is not None)
        before = await max_job_id(bot)
        await send_box(fake_discord, await open_box(fake_discord, parent, user_id=CLICKER), "", parent.message_id,
                       user_id=CLICKER)  # fmt: skip
        waiting = await job_when(
            bot, await new_job_id(bot, before), lambda j: j.status == "queued" and j.message_id is not None
        )
        assert await ledger(bot, waiting.id) == [("reserve", CLICKER)]
    # Stopped: the extension was clicked, charged and written, but never sent to the reseller.
    assert reseller.extended == []
    reseller.timing = Timing(queued_s=0, processing_s=0.05)
    reseller.jobs[slow.remote_id].timing = Timing(queued_s=0, processing_s=0)

    async with bot_running(settings, fake_discord) as bot:
        done = await delivered(bot, waiting.id)
        before = await max_job_id(bot)
        await send_box(fake_discord, later_box, "the string snaps", parent.message_id, user_id=STRANGER)
        after_restart = await delivered(bot, await new_job_id(bot, before))
        ledgers = [await ledger(bot, done.id), await ledger(bot, after_restart.id)]
    assert (done.status, done.origin, done.parent_job_id) == ("succeeded", "extend", parent.id)
    assert (after_restart.status, after_restart.user_id, after_restart.prompt) == (
        "succeeded",
        STRANGER,
        "the string snaps",
    )
    assert reseller.extended == [
        (parent.remote_id, {"user_prompt": "a kite rises"}),
        (parent.remote_id, {"user_prompt": "the string snaps"}),
    ]
    assert ledgers == [[("reserve", CLICKER), ("commit", CLICKER)], [("reserve", STRANGER), ("commit", STRANGER)]]
    assert fake_discord.messages[done.message_id]["attachments"]


# ------------------------------------------------------------------------------------------------ refusals
async def test_what_cannot_be_extended_is_refused_and_costs_nothing(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, daily_credits=15)  # a video costs 10
    reseller = fakes.luma_reseller
    async with bot_running(settings, fake_discord) as bot:
        parent = await video(fake_discord, bot, "a leaf falls")
        image = (await run(fake_discord, bot, "imagine", {"prompt": "a leaf"}))[1]
        assert not any(i.startswith("gen:extend") for i in button_ids(fake_discord.messages[image.message_id]))
        reseller.next_outcome(Outcome(success=False, failure="Generation failed"))
        failed = await video(fake_discord, bot, "a leaf burns", user_id=OTHERS[0])
        assert failed.status == "failed"
        assert not any(i.startswith("gen:extend") for i in button_ids(fake_discord.messages[failed.message_id]))
        reseller.timing = Timing(queued_s=0, processing_s=60)
        await fake_discord.dispatch(fake_discord.slash_command("video", {"prompt": "a leaf floats"}, user_id=OTHERS[1]))
        running = await job_when(bot, failed.id + 1, lambda j: j.status == "running" and j.message_id is not None)
        reseller.timing = Timing(queued_s=0, processing_s=0.05)

        not_video = await refused_click(fake_discord, bot, f"gen:extend:{image.id}", image.message_id)
        not_done = await refused_click(fake_discord, bot, f"gen:extend:{running.id}", running.message_id)
        no_video = await refused_click(fake_discord, bot, f"gen:extend:{failed.id}", failed.message_id)
        # A flag the extend call does not take, typed in the box.
        counts = await charges(bot)
        record = await send_box(
            fake_discord, await open_box(fake_discord, parent), "faster --ar 1:1", parent.message_id
        )
        flag = await ack_text(fake_discord, record)
        assert await charges(bot) == counts
        # Someone without the credits for a video.
        record = await send_box(
            fake_discord, await open_box(fake_discord, parent, user_id=CLICKER), "", parent.message_id,
            user_id=CLICKER,
        )  # fmt: skip
        assert (await ack_text(fake_discord, record, contains="✅")).startswith("✅")
        counts = await charges(bot)
        record = await send_box(
            fake_discord, await open_box(fake_discord, parent, user_id=CLICKER), "", parent.message_id,
            user_id=CLICKER,
        )  # fmt: skip
        broke = await ack_text(fake_discord, record, contains="credit")
        assert await charges(bot) == counts
        # The reseller no longer knows the original: the job fails and is refunded.
        del reseller.jobs[parent.remote_id]
        _, forgotten = await extend(fake_discord, bot, parent, "it lands", user_id=STRANGER)
        forgotten_ledger = await ledger(bot, forgotten.id)
    assert "is not a video that can be extended" in not_video
    assert f"Job #{running.id} is not finished yet" in not_done
    assert f"Job #{failed.id} has no video to extend (it failed)." == no_video
    assert flag.startswith("Only --enhance works when extending a video")
    assert "credit" in broke
    assert not broke.startswith("✅")
    assert forgotten.status == "failed"
    assert "can no longer extend this video" in (forgotten.error_message or "")
    assert forgotten_ledger == [("reserve", STRANGER), ("refund", STRANGER)]
    assert (
        "was refunded" in fake_discord.messages[forgotten.message_id]["content"]
        or "were refunded" in (fake_discord.messages[forgotten.message_id]["content"])
    )


async def test_a_private_video_is_extended_only_by_its_requester_and_stays_private(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        record = await fake_discord.dispatch(
            fake_discord.slash_command("video", {"prompt": "a secret garden", "private": True})
        )
        await fake_discord.wait_for(lambda r: r.interaction_token == record.token and r.method == "PATCH")
        parent = await delivered(bot, 1)
        message_id = fake_discord.interaction(record.token).original_message_id
        assert parent.ephemeral
        before = await charges(bot)
        click = await fake_discord.dispatch(fake_discord.button_click(f"gen:extend:{parent.id}", message_id,
                                                                      user_id=STRANGER))  # fmt: skip
        callback = await fake_discord.wait_for(lambda r: r.interaction_token == click.token and "/callback" in r.path)
        assert await charges(bot) == before
        modal = await open_box(fake_discord, parent)
        before_id = await max_job_id(bot)
        record = await send_box(fake_discord, modal, "", message_id)
        child = await delivered(bot, await new_job_id(bot, before_id))
        ack = fake_discord.requests_for(record.token)[0].json
    assert callback.json["type"] == 4
    assert callback.json["data"]["content"] == "Only the person who started this private job can use its buttons."
    assert (child.status, child.ephemeral, child.origin) == ("succeeded", True, "extend")
    assert ack == {"type": 5, "data": {"flags": 64}}  # its message is private too


async def test_an_extend_refused_for_personal_credits_offers_the_packs(tmp_path, fake_discord, fakes):
    sku = fake_discord.add_sku("500 credits")
    settings = e2e_settings(tmp_path, fake_discord, fakes, credit_packs={sku: 500}, personal_daily_limit=10)
    async with bot_running(settings, fake_discord) as bot:
        parent = await video(fake_discord, bot, "a kite rises", guild_id=None)  # the day's 10 credits
        counts = await charges(bot)
        modal = await open_box(fake_discord, parent, guild_id=None)
        record = await send_box(fake_discord, modal, "it climbs", parent.message_id, guild_id=None)
        refusal = await fake_discord.wait_for(
            lambda r: r.interaction_token == record.token and "Not enough credits" in str(r.json)
        )
        assert await charges(bot) == counts
    rows = (refusal.json.get("data") or refusal.json).get("components") or []
    premium = [c for row in rows for c in row.get("components", []) if c.get("style") == 6]
    assert [b["sku_id"] for b in premium] == [str(sku)]
    assert fakes.luma_reseller.extended == []
