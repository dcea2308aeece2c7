"""What one image job costs: Discord REST calls (the answer to the command is the job's message: defer, its first
render, the result, with an ephemeral note only when the bot adjusted something or credits run low) and database
round trips (every statement the bot sends, counted by the database itself)."""

from __future__ import annotations

from tests.e2e.commands_support import ephemeral_followups, run
from tests.e2e.harness import bot_running, calls, e2e_settings, eventually
from tests.fakes.discord import FakeDiscord

JOBS = 5
# Round trips per image job, through the whole engine (write, reserve, first render, submit, polls, download,
# result): about 70 here when this was written (5 jobs at once: small claim batches, extra polls), about 50 at scale
# in the old in-process benchmark, 62 to 300 before the engine was made leaner. Generous: it catches a statement
# per tick or per job.
ROUND_TRIPS_PER_JOB = 90


async def test_an_image_job_costs_at_most_three_discord_calls(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        before = len(fake_discord.requests)
        records = [(await run(fake_discord, bot, "imagine", {"prompt": f"a lantern {n}"}))[0] for n in range(JOBS)]
        made = fake_discord.requests[before:]
    for record in records:
        sequence = calls(fake_discord, record)
        assert sequence[0] == "POST /interactions/{id}/{token}/callback"
        assert set(sequence[1:]) == {"PATCH /webhooks/{id}/{token}/messages/@original"}
        assert len(sequence) <= 3, sequence
        assert ephemeral_followups(fake_discord, record) == []
    assert len(made) <= 3 * JOBS  # nothing else either (no bot-token call, no ping)


async def test_credits_running_low_get_an_ephemeral_note(fake_discord, fakes, tmp_path):
    settings = e2e_settings(tmp_path, fake_discord, fakes, daily_credits=4)
    async with bot_running(settings, fake_discord) as bot:
        plenty, first = await run(fake_discord, bot, "imagine", {"prompt": "a kettle"})  # 3 left: 3 more jobs
        low, second = await run(fake_discord, bot, "imagine", {"prompt": "a teapot"})  # 2 left
    assert ephemeral_followups(fake_discord, plenty) == []
    [note] = ephemeral_followups(fake_discord, low)
    assert note.startswith(f"✅ Job #{second.id} started: 1 credit. You have 2 credits left for today")
    assert "ℹ️" not in note
    assert len(calls(fake_discord, low)) <= 4  # the note is the one call added
    assert first.status == second.status == "succeeded"


async def test_an_adjusted_option_gets_an_ephemeral_note(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        record, job = await run(fake_discord, bot, "imagine", {"prompt": "a tower --size 4000x100"})
    [note] = ephemeral_followups(fake_discord, record)
    assert f"✅ Job #{job.id} started: 1 credit. You have 24 credits left" in note
    assert "ℹ️ --size 4000x100 is outside what neta-lumina allows (256–1536 a side); used 1536x256." in note
    sequence = calls(fake_discord, record)
    assert sequence.index("POST /webhooks/{id}/{token}") == 2  # after the job's message was first shown


def final_edits(fake: FakeDiscord, tokens: set[str]) -> int:
    return sum(1 for r in fake.requests if r.interaction_token in tokens and r.method == "PATCH" and r.files)


async def test_an_image_job_costs_a_bounded_number_of_database_round_trips(fake_discord, fakes, tmp_path):
    settings = e2e_settings(tmp_path, fake_discord, fakes, max_running_jobs_per_user=JOBS)
    async with bot_running(settings, fake_discord) as bot:
        database = bot.services.database
        before = database.round_trips
        records = [
            await fake_discord.dispatch(fake_discord.slash_command("imagine", {"prompt": f"a kite {n}"}))
            for n in range(JOBS)
        ]
        tokens = {record.token for record in records}
        await eventually(lambda: final_edits(fake_discord, tokens) == JOBS, timeout=30)
        trips = database.round_trips - before  # read before the checks below add their own
        statuses = [row[0] for row in await database.fetch_all("SELECT status FROM jobs")]
    assert statuses == ["succeeded"] * JOBS
    assert 0 < trips <= ROUND_TRIPS_PER_JOB * JOBS, trips / JOBS
