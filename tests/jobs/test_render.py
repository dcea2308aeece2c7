"""Rendering is pure: a job and a context in, what the message shows out. No Discord needed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.jobs.requests import SCALAR_PARAMS
from bot.render.details import details_embed
from bot.render.job import (
    ACTIONS,
    PROMPT_PREVIEW_CHARS,
    RenderContext,
    custom_id,
    prompt_preview,
    queue_place,
    render_job,
)
from tests.jobs.jobs_factory import MiB, assert_embed_within_limits, assert_message_within_limits, make_job, output
from tests.jobs.jobs_factory import succeeded as succeeded_job
from tests.jobs.virtual import T0

ROOT = Path("/srv/media")


def ctx(**changes) -> RenderContext:
    return dataclasses.replace(RenderContext(now=T0 + 10, media_root=ROOT, typical_duration_s=40.0), **changes)


def render(job, **changes):
    rendered = render_job(job, ctx(**changes))
    assert_message_within_limits(rendered)
    return rendered


def labels(rendered) -> list[str]:
    return [button.custom_id.split(":")[1] for row in rendered.rows for button in row]


# ---------------------------------------------------------------------------------------------- active jobs
def test_queued_without_a_place_in_line():
    rendered = render(make_job())
    assert rendered.content.endswith("\n⏳ Waiting to start. Job #42 · 1 credit.")
    assert rendered.content.startswith("**a cat** · `neta-lumina` · <@111111111111111111>")
    assert labels(rendered) == ["cancel", "refresh"]
    assert not rendered.final
    assert rendered.files == ()
    assert rendered.embeds == ()


@pytest.mark.parametrize(
    ("position", "shown"),
    [
        (1, "(position 1)"),
        (10, "(position 10)"),
        (11, "(about 20 in line)"),
        (100, "(about 100 in line)"),
        (101, "(about 150 in line)"),
        (150, "(about 150 in line)"),
        (151, "(about 200 in line)"),
    ],
)
def test_queued_shows_a_coarse_place_in_line(position, shown):
    assert f"Waiting to start {shown}. Job #42 · 1 credit." in render(make_job(), position=position).content


def test_queue_place_buckets():
    assert [queue_place(p) for p in (1, 9, 10, 11, 19, 20, 21, 99, 100, 101, 149, 150, 151, 1000)] == [
        *(1, 9, 10, 20, 20, 20, 30, 100, 100, 150, 150, 150, 200, 1000)
    ]


def test_submitting_names_the_kind_of_service():
    assert "📨 Sending to the image service. Job #42 · 1 credit." in render(make_job(status="submitting")).content
    video = make_job(status="submitting", kind="video", model_key="luma-video")
    assert "📨 Sending to the video service. Job #42 · 1 credit." in render(video).content


def test_running_shows_when_it_started_and_when_it_is_usually_ready():
    job = make_job(status="running", submitted_at=T0 + 2)
    soon = render(job, now=T0 + 10)
    line = f"🎨 Making your image, started <t:{int(T0 + 2)}:R>, usually ready <t:{int(T0 + 42)}:R>. Job #42 · 1 credit."
    assert line in soon.content
    late = render(job, now=T0 + 60)
    assert ", should be ready any moment. Job #42 · 1 credit." in late.content
    unknown = render(job, typical_duration_s=None)
    assert "started" in unknown.content
    assert "ready" not in unknown.content
    assert labels(soon) == ["cancel", "refresh"]


def test_the_key_changes_exactly_when_something_visible_changes():
    running = make_job(status="running", submitted_at=T0)
    assert render(running, now=T0 + 1).key == render(running, now=T0 + 39).key  # the ETA is a Discord timestamp
    assert render(running, now=T0 + 39).key != render(running, now=T0 + 41).key  # "any moment" now
    assert render(dataclasses.replace(running, upstream_status="x", poll_errors=3, next_poll_at=T0)).key == (
        render(running).key
    )
    queued = make_job()
    assert render(queued, position=12).key == render(queued, position=13).key  # both "about 20"
    assert render(queued, position=10).key != render(queued, position=11).key
    assert render(queued, position=3).key != render(queued, position=2).key
    assert render(queued).key != render(make_job(status="submitting")).key
    assert render(queued).key != render(make_job(prompt="a dog")).key
    done = succeeded_job()
    assert render(done).key == render(done, now=T0 + 999).key
    assert render(done, nsfw_mode="show").key == render(done, nsfw_mode="spoiler").key  # nothing flagged
    flagged = succeeded_job(output(nsfw=True))
    assert render(flagged, nsfw_mode="show").key != render(flagged, nsfw_mode="spoiler").key
    assert render(done).key != render(done, actions=frozenset(ACTIONS) - {"edit"}).key


# ---------------------------------------------------------------------------------------------- results
def test_succeeded_image_is_attached_and_shown_in_the_embed():
    rendered = render(succeeded_job())
    assert rendered.final
    assert [(f.path, f.filename, f.spoiler) for f in rendered.files] == [
        (ROOT / "outputs/42/0.png", "job42_0.png", False)
    ]
    (embed,) = rendered.embeds
    assert embed.image.url == "attachment://job42_0.png"
    fields = {f.name: f.value for f in embed.fields}
    assert fields == {"Model": "`neta-lumina`", "Seed": "`5`", "Size": "64×64", "Time taken": "1m 15s"}
    assert embed.footer.text == "Job #42 · 1 credit"
    assert labels(rendered) == ["reroll", "edit", "animate", "details", "delete"]
    assert rendered.content == "**a cat** · `neta-lumina` · <@111111111111111111>"


def test_succeeded_video_is_attached_without_an_embed_image_or_image_buttons():
    job = succeeded_job(output(media_type="video/mp4"), kind="video", model_key="luma-video")
    rendered = render(job)
    assert [f.filename for f in rendered.files] == ["job42_0.mp4"]
    assert rendered.embeds[0].image.url is None
    assert labels(rendered) == ["reroll", "details", "delete"]


def test_nsfw_results_follow_the_mode():
    job = succeeded_job(output(0, nsfw=True), output(1))
    shown = render(job, nsfw_mode="show")
    assert [(f.filename, f.spoiler) for f in shown.files] == [("job42_0.png", False), ("job42_1.png", False)]
    assert shown.embeds[0].image.url == "attachment://job42_0.png"

    spoiler = render(job, nsfw_mode="spoiler")
    assert [(f.filename, f.spoiler) for f in spoiler.files] == [("job42_0.png", True), ("job42_1.png", False)]
    assert spoiler.embeds[0].image.url == "attachment://job42_1.png"  # never the spoilered one

    withheld = render(job, nsfw_mode="withhold")
    assert [f.filename for f in withheld.files] == ["job42_1.png"]
    assert "🔞 The result was flagged as NSFW" in withheld.content
    only_nsfw = render(succeeded_job(output(nsfw=True)), nsfw_mode="withhold")
    assert only_nsfw.files == ()
    assert only_nsfw.embeds[0].image.url is None


def test_an_output_too_large_to_attach_becomes_a_link_with_its_expiry():
    url = "https://cdn.example/v.mp4?X-Amz-Signature=s"
    big = output(media_type="video/mp4", size=30 * MiB, source_url=url, url_expires_at=T0 + 3600)
    rendered = render(succeeded_job(big, kind="video"))
    assert rendered.files == ()
    assert f"[Download the video]({url}) (30.0 MB, over 10 MB; the link expires <t:{int(T0 + 3600)}:R>)." in (
        rendered.content
    )
    assert render(succeeded_job(big, kind="video"), upload_limit=50 * MiB).files != ()  # a boosted server

    expired = dataclasses.replace(big, url_expires_at=T0 + 5)
    content = render(succeeded_job(expired, kind="video")).content
    assert "its download link has expired" in content
    assert url not in content
    no_expiry = dataclasses.replace(big, url_expires_at=None)
    assert "; the link may expire)." in render(succeeded_job(no_expiry, kind="video")).content
    no_link = dataclasses.replace(big, source_url=None)
    assert "the service gave no link to it" in render(succeeded_job(no_link, kind="video")).content


def test_a_purged_result_says_it_is_no_longer_stored_and_attaches_nothing():
    purged = succeeded_job(output(0), output(1), outputs_purged_at=T0 + 86400 * 7)
    rendered = render(purged, retention_days=7)
    assert rendered.files == ()
    assert rendered.embeds[0].image.url is None
    assert rendered.content.endswith("\n🗑️ The result is no longer stored (results are kept for 7 days).")
    assert labels(rendered) == ["reroll", "details", "delete"]  # nothing left to edit or animate
    assert "results are kept for a while" in render(purged).content  # the retention unknown to the caller


def test_missing_files_are_not_attached():
    job = succeeded_job(output(0), output(1))
    gone = render(job, missing_outputs=frozenset({0, 1}), retention_days=7)
    assert gone.files == ()
    assert "🗑️ The result is no longer stored (results are kept for 7 days)." in gone.content
    some = render(job, missing_outputs=frozenset({0}), retention_days=7)
    assert [f.filename for f in some.files] == ["job42_1.png"]
    assert "🗑️ Some files of the result are no longer stored (results are kept for 7 days)." in some.content
    assert labels(some) == ["reroll", "edit", "animate", "details", "delete"]
    assert render(job).key != gone.key != some.key
    url = "https://cdn.example/v.mp4"
    big = output(media_type="video/mp4", size=30 * MiB, source_url=url, url_expires_at=T0 + 3600)
    linked = render(succeeded_job(big, kind="video"), missing_outputs=frozenset({0}))
    assert f"[Download the video]({url})" in linked.content  # too large to attach anyway: the link stays
    assert "no longer stored" not in linked.content


def test_failed_says_why_and_whether_credits_came_back():
    job = make_job(status="failed", error_message="The service refused this prompt.", finished_at=T0 + 5)
    rendered = render(job)
    assert rendered.content.endswith("\n❌ The service refused this prompt. Your 1 credit was refunded.")
    assert labels(rendered) == ["reroll", "details", "delete"]
    assert rendered.rows[0][0].label == "Try again"
    assert render(dataclasses.replace(job, cost=0)).content.endswith("❌ The service refused this prompt.")
    assert render(dataclasses.replace(job, cost=3)).content.endswith("Your 3 credits were refunded.")
    assert "❌ The job failed." in render(dataclasses.replace(job, error_message=None)).content


def test_cancelled_before_and_after_it_reached_the_service():
    before = render(make_job(status="cancelled", finished_at=T0 + 3))
    assert before.content.endswith("🚫 Cancelled. It never started, so your 1 credit was refunded.")
    after = render(make_job(status="cancelled", submitted_at=T0 + 1, finished_at=T0 + 3, cost=3))
    assert after.content.endswith("which cannot stop it, so its 3 credits stay spent.")
    free = render(make_job(status="cancelled", cost=0, finished_at=T0 + 3))
    assert free.content.endswith("🚫 Cancelled.")
    assert before.rows == ()
    assert before.final


# ---------------------------------------------------------------------------------------------- safety, limits
def test_the_prompt_is_inert_text():
    prompt = "@everyone @here <@123456789012345678> <@&123456789012345678> **bold** `code` ~~x~~ ||spoiler|| [a](https://x.y)"
    preview = prompt_preview(prompt)
    assert "@everyone" not in preview
    assert "@\u200beveryone" in preview
    assert "@here" not in preview
    assert "<@123456789012345678>" not in preview
    assert "<@&123456789012345678>" not in preview
    for raw in ("**bold**", "`code`", "~~x~~", "||spoiler||"):
        assert raw not in preview
    assert "\\[a](" in preview  # no masked link
    assert prompt_preview("line one\n\n# line two\n> quote") == "line one # line two > quote"  # one line
    content = render(make_job(prompt=prompt)).content
    assert "@everyone" not in content
    assert "<@123456789012345678>" not in content


@pytest.mark.parametrize("prompt", ["a" * 6000, "_" * 6000, "@everyone " * 600, "*_" * 3000, "\\" * 3000 + "x"])
def test_a_long_prompt_never_crowds_out_the_status_line(prompt):
    failed = make_job(status="failed", prompt=prompt, error_message="The service refused this prompt.")
    rendered = render(failed)
    assert rendered.content.endswith("❌ The service refused this prompt. Your 1 credit was refunded.")
    assert len(prompt_preview(prompt)) <= PROMPT_PREVIEW_CHARS
    assert prompt_preview(prompt).endswith("…")
    assert render(make_job(status="running", prompt=prompt, submitted_at=T0)).content.endswith("Job #42 · 1 credit.")
    assert_embed_within_limits(details_embed(failed))


def test_at_most_ten_files_and_2000_characters():
    outputs = tuple(output(i, size=20 * MiB, source_url=f"https://cdn.example/{'x' * 300}/{i}.png") for i in range(12))
    many_links = render(succeeded_job(*outputs))
    assert len(many_links.content) <= 2000
    many_files = render(succeeded_job(*(output(i) for i in range(12))))
    assert [f.filename for f in many_files.files] == [f"job42_{i}.png" for i in range(10)]


def test_result_buttons_depend_on_what_can_work_here():
    job = succeeded_job()
    no_followups = render(job, actions=frozenset(ACTIONS) - {"edit", "animate"})
    assert labels(no_followups) == ["reroll", "details", "delete"]
    assert labels(render(job, actions=frozenset({"details"}))) == ["details"]
    assert [b.custom_id for b in render(job).rows[0]] == [
        "gen:reroll:42",
        "gen:edit:42",
        "gen:animate:42",
        "gen:details:42",
        "gen:delete:42",
    ]
    assert len(custom_id("refresh", 2**63 - 1)) <= 100
    with pytest.raises(AssertionError):
        custom_id("explode", 1)


def test_details_embed_lists_every_parameter_within_discords_limits():
    # The richest models: kawaii-3d's nine options, uni-1's input images (no shipped model has more fields).
    options = ("aspect_ratio", "guidance", "lora_scale", "megapixels", "output_format", "prompt_strength", "quality")
    params: dict[str, object] = {key: f"value of {key}" for key in (*options, "seed", "steps")}
    params |= {"model": "wavespeed-ai/neta-lumina", "size": [1024, 768], "_internal": "hidden", "empty": ""}
    params |= {"reference_images": [{"path": "inputs/a.png", "media_type": "image/png"}] * 3}
    params |= {"source_image": {"path": "inputs/b.png", "media_type": "image/png"}}
    assert set(options) <= set(SCALAR_PARAMS)
    job = make_job(
        status="failed",
        prompt="*_" * 3000,
        params=params,
        finished_at=T0 + 3725,
        error_message="x" * 5000,
        parent_job_id=7,
        origin="reroll",
    )
    embed = details_embed(job, model_title="Neta Lumina")
    assert_embed_within_limits(embed)
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Status"] == "failed"
    assert fields["Model"] == "`neta-lumina` (Neta Lumina)"
    assert fields["Upstream model"] == "`wavespeed-ai/neta-lumina`"
    assert [f.name for f in embed.fields].count("Model") == 1
    assert fields["Reference images"] == "3 image(s)"
    assert fields["Source image"] == "1 image(s)"
    assert fields["Time taken"] == "1h 02m"
    assert fields["From"] == "reroll of job #7"
    assert "Internal" not in fields
    assert "Empty" not in fields
    assert len(fields["Why it failed"]) == 1024


def test_links_in_prompts_do_not_unfurl():
    from bot.render.job import prompt_preview

    assert prompt_preview("like https://example.com/a_b.png and <https://x.y>") == (
        "like <https://example.com/a_b.png> and <https://x.y>"
    )


def test_a_model_without_a_seed_shows_no_seed_line():
    video = succeeded_job(
        output(media_type="video/mp4"),
        model_key="luma-video",
        kind="video",
        params={"model": "ray-v2", "duration_s": 5},
    )
    fields = {f.name for f in render_job(video, ctx(takes_seed=False)).embeds[0].fields}
    assert "Seed" not in fields
    assert "Duration" in fields
    image = succeeded_job(params={"model": "wavespeed-ai/neta-lumina"})  # takes a seed, none chosen
    assert {f.name: f.value for f in render_job(image, ctx()).embeds[0].fields}["Seed"] == "random"
