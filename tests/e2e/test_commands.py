"""Every command option and inline flag, end to end: what reached the provider, what the user was told, and that a
refusal charges nothing. The real discord.py client against the fake Discord, the real adapters against the fakes."""

from __future__ import annotations

import pytest

from providers.wavespeed import size_for_aspect_ratio
from tests.e2e.commands_support import (
    PROVIDER_OF,
    ack_text,
    b64,
    body_of,
    ephemeral_followups,
    last_body,
    no_cdn_urls,
    png,
    refused,
    run,
    submits,
)
from tests.e2e.harness import bot_running, delivered, e2e_settings, eventually
from tests.fakes.media import image_bytes, mp4_bytes


# ------------------------------------------------------------------------------------------------ /imagine options
async def test_imagine_every_option_on_neta_lumina(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(
            fake_discord,
            bot,
            "imagine",
            {
                "prompt": "1girl, silver hair",
                "model": "neta-lumina",
                "aspect_ratio": "16:9",
                "seed": 42,
                "format": "webp",
            },
        )
    assert job.status == "succeeded", job.error_message
    body = last_body(fakes, "wavespeed")
    width, height = size_for_aspect_ratio("16:9")
    assert body["size"] == f"{width}*{height}" == "1344*768"
    assert body["seed"] == 42
    assert body["output_format"] == "webp"
    assert body["prompt"] == "1girl, silver hair"
    assert job.outputs[0].media_type == "image/webp"


@pytest.mark.parametrize("model", ["uni-1", "uni-1-max"])
async def test_imagine_every_option_on_uni_1(fake_discord, fakes, settings, model):
    reference = png(120, 90)
    attachment = fake_discord.add_cdn_file("reference.png", reference)
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(
            fake_discord,
            bot,
            "imagine",
            {
                "prompt": "a harbour in the style of the reference",
                "model": model,
                "aspect_ratio": "3:2",
                "style": "manga",
                "format": "jpeg",
                "reference": attachment,
            },
        )
    assert job.status == "succeeded", job.error_message
    body = last_body(fakes, "luma_agents")
    assert body["model"] == model
    assert body["type"] == "image"
    assert body["aspect_ratio"] == "3:2"
    assert body["style"] == "manga"
    assert body["output_format"] == "jpeg"
    assert body["image_ref"] == [{"data": b64(reference), "media_type": "image/png"}]
    assert body["user_id"] == str(fake_discord.default_user_id)
    assert no_cdn_urls(body)
    assert fake_discord.cdn_requests  # the bot downloaded the attachment itself


async def test_imagine_every_option_on_kawaii_3d(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(
            fake_discord,
            bot,
            "imagine",
            {"prompt": "a bunny astronaut", "model": "kawaii-3d", "aspect_ratio": "4:5", "seed": 7, "format": "jpeg"},
        )
    assert job.status == "succeeded", job.error_message
    form = last_body(fakes, "lumozai")
    assert form["model_id"] == "flux-cute-3d-kawaii"
    assert form["prompt"] == "Cute 3d Kawaii, a bunny astronaut"
    assert form["aspect_ratio"] == "4:5"
    assert form["seed"] == "7"
    assert form["output_format"] == "jpg"


OPTIONS_REFUSED = [
    ("neta-lumina", {"style": "manga"}, "`--style` does not work with `neta-lumina`"),
    ("kawaii-3d", {"style": "auto"}, "`--style` does not work with `kawaii-3d`"),
    ("uni-1", {"seed": 5}, "`--seed` does not work with `uni-1`"),
    ("uni-1", {"format": "webp"}, "`uni-1` has no --format “webp”; it takes: png, jpeg"),
    ("kawaii-3d", {"format": "jpeg", "aspect_ratio": "2:1"}, "`kawaii-3d` can do: 1:1, 16:9"),
]


async def test_imagine_options_a_model_does_not_take_are_refused(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        for model, options, says in OPTIONS_REFUSED:
            text = await refused(fake_discord, bot, "imagine", {"prompt": "a cat", "model": model, **options})
            assert says in text, (model, options, text)


async def test_imagine_reference_on_a_model_without_references_is_refused(fake_discord, fakes, settings):
    attachment = fake_discord.add_cdn_file("reference.png", png())
    async with bot_running(settings, fake_discord) as bot:
        for model in ("neta-lumina", "kawaii-3d"):
            options = {"prompt": "a cat", "model": model, "reference": attachment}
            assert f"`{model}` does not take reference images" in await refused(fake_discord, bot, "imagine", options)
    assert not fake_discord.cdn_requests  # refused before any download


async def test_imagine_private_is_the_ephemeral_reply_for_each_image_model(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        for model in ("neta-lumina", "uni-1", "uni-1-max", "kawaii-3d"):
            record, job = await run(
                fake_discord, bot, "imagine", {"prompt": "a secret", "model": model, "private": True}
            )
            assert job.status == "succeeded", job.error_message
            assert job.ephemeral
            assert job.delivery_path == "token"
            requests = fake_discord.requests_for(record.token)
            assert not [
                r
                for r in requests
                if r.method == "POST" and r.path.startswith("/webhooks") and not (r.json or {}).get("flags", 0) & 64
            ]
            final = requests[-1]
            assert final.path.endswith("/messages/@original")
            assert final.files
            assert fake_discord.messages[fake_discord.interaction(record.token).original_message_id]["flags"] & 64


# ------------------------------------------------------------------------------------------------ inline flags
FLAG_CASES = [
    ("neta-lumina", "--ar 3:2", {"size": "{}*{}".format(*size_for_aspect_ratio("3:2"))}),
    ("neta-lumina", "--aspect 9:16", {"size": "{}*{}".format(*size_for_aspect_ratio("9:16"))}),
    ("neta-lumina", "--seed 42", {"seed": 42}),
    ("neta-lumina", "--size 1024x768", {"size": "1024*768"}),
    ("neta-lumina", "—format png", {"output_format": "png"}),  # a phone's em dash
    ("uni-1", "--style manga", {"style": "manga"}),
    ("uni-1", "--format jpeg", {"output_format": "jpeg"}),
    ("uni-1", "--web", {"web_search": True}),
    ("uni-1-max", "--ar 1:3", {"aspect_ratio": "1:3"}),
    ("kawaii-3d", "--steps 28", {"num_inference_steps": "28"}),
    ("kawaii-3d", "--guidance 3.5", {"guidance": "3.5"}),
    ("kawaii-3d", "--quality 90", {"output_quality": "90"}),
    ("kawaii-3d", "--lora 0.8", {"lora_scale": "0.8"}),
    ("kawaii-3d", "--mp 0.25", {"megapixels": "0.25"}),
    ("kawaii-3d", "--strength 0.6", {"prompt_strength": "0.6"}),
    (
        "kawaii-3d",
        "--seed 9 --ar 21:9 --format webp",
        {"seed": "9", "aspect_ratio": "21:9", "output_format": "webp"},
    ),
    ("luma-video", "--duration 10s", {"duration": "10s"}),
    ("luma-video", "--res 1080p", {"resolution": "1080p"}),
    ("luma-video", "--loop", {"loop": True}),
    ("luma-video", "--enhance", {"expand_prompt": True}),
    ("luma-video", "--ar 21:9", {"aspect_ratio": "21:9"}),
]


async def test_each_inline_flag_reaches_the_provider(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, daily_credits=1000, max_running_jobs_per_user=100)
    async with bot_running(settings, fake_discord) as bot:
        for n, (model, flags, _) in enumerate(FLAG_CASES):  # all at once: each case has its own prompt
            command = "video" if model == "luma-video" else "imagine"
            options = {"prompt": f"boat {n} {flags} on a pond", **({"model": model} if command == "imagine" else {})}
            await fake_discord.dispatch(fake_discord.slash_command(command, options))
        jobs = [await delivered(bot, job_id) for job_id in await eventually(lambda: all_jobs(bot, len(FLAG_CASES)))]
    assert [job.status for job in jobs] == ["succeeded"] * len(FLAG_CASES)
    bodies = {}
    for provider in set(PROVIDER_OF.values()):
        for request in submits(fakes, provider):
            body = body_of(request)
            prompt = body.get("prompt") or body.get("user_prompt")
            assert "--" not in prompt
            assert "—" not in prompt
            bodies[prompt.removeprefix("Cute 3d Kawaii, ")] = body
    for n, (model, flags, expected) in enumerate(FLAG_CASES):
        body = bodies[f"boat {n} on a pond"]  # the flags were taken out of the prompt
        for key, value in expected.items():
            assert body.get(key) == value, (model, flags, key, body)


async def all_jobs(bot, count: int) -> list[int] | None:
    rows = await bot.services.database.fetch_all("SELECT id FROM jobs ORDER BY id")
    return [row["id"] for row in rows] if len(rows) == count else None


async def test_the_model_flag_picks_the_model(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        _, job = await run(fake_discord, bot, "imagine", {"prompt": "--model uni-1-max a fox --style manga"})
    assert job.model_key == "uni-1-max"
    body = last_body(fakes, "luma_agents")
    assert (body["model"], body["style"], body["prompt"]) == ("uni-1-max", "manga", "a fox")


async def test_a_slash_option_wins_over_the_same_flag(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        await run(
            fake_discord,
            bot,
            "imagine",
            {
                "prompt": "a cat --ar 1:1 --seed 3 --model kawaii-3d",
                "model": "neta-lumina",
                "aspect_ratio": "16:9",
                "seed": 9,
            },
        )
        await run(
            fake_discord,
            bot,
            "video",
            {
                "prompt": "waves --duration 5s --res 720p --loop",
                "duration": "10s",
                "resolution": "1080p",
                "loop": False,
            },
        )
    body = last_body(fakes, "wavespeed")
    assert (body["size"], body["seed"]) == ("1344*768", 9)
    assert not submits(fakes, "lumozai")
    video = last_body(fakes, "luma_reseller")
    assert (video["duration"], video["resolution"], video["loop"]) == ("10s", "1080p", False)


BAD_FLAG_CASES = [
    (
        "imagine",
        {"prompt": "a cat --foo 3", "model": "uni-1"},
        ["`--foo` is not a flag", "`uni-1` takes: --model, --ar, --style, --format, --web"],
    ),
    ("imagine", {"prompt": "a cat --sed 3"}, ["Did you mean --seed?", "`neta-lumina` takes: --model, --ar"]),
    (
        "imagine",
        {"prompt": "a cat --steps 20", "model": "uni-1"},
        ["`--steps` does not work with `uni-1`", "takes: --ar, --style, --format, --web"],
    ),
    ("imagine", {"prompt": "a cat --loop"}, ["`--loop` does not work with `neta-lumina`", "--size"]),
    ("video", {"prompt": "a cat --seed 4"}, ["`--seed` does not work with `luma-video`", "--duration, --res"]),
    ("edit", {"prompt": "a cat --steps 4"}, ["`--steps` does not work with `uni-1`"]),
    ("imagine", {"prompt": "--ar 16:9 --seed 3"}, ["cannot be only flags"]),
    ("imagine", {"prompt": "a cat --seed"}, ["--seed needs a whole number"]),
    ("imagine", {"prompt": "a cat --ar wide"}, ["--ar needs a ratio"]),
    ("imagine", {"prompt": "a cat --model dall-e"}, ["no model `dall-e`", "neta-lumina"]),
    ("imagine", {"prompt": "a cat", "model": "luma-video"}, ["`luma-video` does not make images"]),
]


async def test_bad_flags_are_refused_with_what_the_model_takes(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        for command, options, says in BAD_FLAG_CASES:
            if command == "edit":
                options = {**options, "image": fake_discord.add_cdn_file("in.png", png())}
            text = await refused(fake_discord, bot, command, options)
            for part in says:
                assert part in text, (options, text)


RATIO_CASES = [
    ("uni-1", "--ar 4:3", "3:1, 2:1, 16:9, 3:2, 1:1, 2:3, 9:16, 1:2, 1:3"),
    ("kawaii-3d", "--ar 3:1", "1:1, 16:9, 21:9, 3:2, 2:3, 4:5, 5:4, 3:4, 4:3, 9:16, 9:21"),
    ("luma-video", "--ar 3:2", "16:9, 9:16, 1:1, 4:3, 3:4, 21:9, 9:21"),
]


async def test_a_ratio_the_model_cannot_do_names_the_ones_it_can(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        for model, flag, ratios in RATIO_CASES:
            command = "video" if model == "luma-video" else "imagine"
            chosen = {"model": model} if command == "imagine" else {}
            text = await refused(fake_discord, bot, command, {"prompt": f"a cat {flag}", **chosen})
            slash = await refused(
                fake_discord, bot, command, {"prompt": "a cat", "aspect_ratio": flag.split()[1], **chosen}
            )
            for said in (text, slash):
                assert f"is not available with `{model}`" in said
                assert f"`{model}` can do: {ratios}." in said


async def test_numbers_out_of_range_are_clamped_and_a_note_says_so(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        record, job = await run(
            fake_discord,
            bot,
            "imagine",
            {
                "prompt": "a toy robot --steps 100 --guidance 20 --quality -5 --lora 9 --strength 2",
                "model": "kawaii-3d",
            },
        )
        receipt = await ack_text(fake_discord, record, contains="✅")
        size_record, _ = await run(fake_discord, bot, "imagine", {"prompt": "a tower --size 4000x100"})
        size_receipt = await ack_text(fake_discord, size_record, contains="✅")
        duration_record, _ = await run(fake_discord, bot, "video", {"prompt": "rain --duration 7s"})
        duration_receipt = await ack_text(fake_discord, duration_record, contains="✅")
    assert job.status == "succeeded", job.error_message
    form = submits(fakes, "lumozai")[-1].form
    assert (form["num_inference_steps"], form["guidance"], form["output_quality"]) == ("50", "10", "0")
    assert (form["lora_scale"], form["prompt_strength"]) == ("3", "1")
    for note in (
        "--steps 100 is more than kawaii-3d allows; used 50.",
        "--guidance 20 is more than kawaii-3d allows; used 10.",
        "--quality -5 is less than kawaii-3d allows; used 0.",
        "--lora 9 is more than kawaii-3d allows; used 3.",
        "--strength 2 is more than kawaii-3d allows; used 1.",
    ):
        assert f"ℹ️ {note}" in receipt
    assert last_body(fakes, "wavespeed")["size"] == "1536*256"
    assert "--size 4000x100 is outside what neta-lumina allows (256–1536 a side); used 1536x256." in size_receipt
    assert last_body(fakes, "luma_reseller")["duration"] == "5s"
    assert "--duration 7s is not offered by luma-video; used 5s" in duration_receipt


# ------------------------------------------------------------------------------------------------ /edit
@pytest.mark.parametrize("model", [None, "uni-1-max"])
async def test_edit_sends_the_image_and_the_reference_as_data(fake_discord, fakes, settings, model):
    source, reference = png(128, 96, (1, 2, 3)), image_bytes("jpeg", 80, 80)
    options = {
        "image": fake_discord.add_cdn_file("photo.png", source),
        "prompt": "make it night --ar 16:9 --style manga",
        "reference": fake_discord.add_cdn_file("mood.jpg", reference),
    }
    if model:
        options["model"] = model
    async with bot_running(settings, fake_discord) as bot:
        record, job = await run(fake_discord, bot, "edit", options)
        shown = await ack_text(fake_discord, record, contains=f"Job #{job.id} ·")
    assert job.status == "succeeded", job.error_message
    assert job.kind == "image_edit"
    assert job.model_key == (model or "uni-1")
    body = last_body(fakes, "luma_agents")
    assert body["type"] == "image_edit"
    assert body["model"] == (model or "uni-1")
    assert body["prompt"] == "make it night"
    assert body["source"] == {"data": b64(source), "media_type": "image/png"}
    assert body["image_ref"] == [{"data": b64(reference), "media_type": "image/jpeg"}]
    assert (body["aspect_ratio"], body["style"]) == ("16:9", "manga")
    assert body["user_id"] == str(fake_discord.default_user_id)
    assert no_cdn_urls(body)
    assert f"Job #{job.id} · {job.cost} credit" in shown  # the job's message says what it cost
    assert ephemeral_followups(fake_discord, record) == []  # nothing adjusted, credits plenty: no note
    assert fake_discord.messages[job.message_id]["attachments"]


async def test_edit_refuses_a_model_that_cannot_edit(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        text = await refused(
            fake_discord,
            bot,
            "edit",
            {"image": fake_discord.add_cdn_file("a.png", png()), "prompt": "x", "model": "neta-lumina"},
        )
    assert "`neta-lumina` does not make image edits. Choose one of: uni-1, uni-1-max." in text


# ------------------------------------------------------------------------------------------------ /video
async def test_video_every_option(fake_discord, fakes, settings):
    start, end = png(100, 100, (255, 0, 0)), image_bytes("webp", 100, 100)
    async with bot_running(settings, fake_discord) as bot:
        record, job = await run(
            fake_discord,
            bot,
            "video",
            {
                "prompt": "the red square turns into a circle",
                "start_image": fake_discord.add_cdn_file("start.png", start),
                "end_image": fake_discord.add_cdn_file("end.webp", end),
                "aspect_ratio": "9:16",
                "duration": "10s",
                "resolution": "1080p",
                "loop": True,
                "enhance": True,
            },
        )
    assert job.status == "succeeded", job.error_message
    body = last_body(fakes, "luma_reseller")
    assert body == {
        "user_prompt": "the red square turns into a circle",
        "aspect_ratio": "9:16",
        "loop": True,
        "expand_prompt": True,
        "duration": "10s",
        "resolution": "1080p",
        "image_url": f"data:image/png;base64,{b64(start)}",
        "image_end_url": f"data:image/webp;base64,{b64(end)}",
    }
    final = fake_discord.requests_for(record.token)[-1]
    assert [f.filename for f in final.files] == [f"job{job.id}_0.mp4"]
    assert final.files[0].data == mp4_bytes()
    embed = fake_discord.messages[job.message_id]["embeds"][0]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert (fields["Duration"], fields["Resolution"]) == ("10s", "1080p")
    assert "image" not in embed  # a video is not shown as the embed's image


async def test_a_video_over_the_upload_limit_is_a_link_that_says_when_it_expires(fake_discord, fakes, settings):
    limit = len(mp4_bytes()) - 1
    async with bot_running(settings, fake_discord) as bot:
        record, job = await run(fake_discord, bot, "video", {"prompt": "rain on a window"}, attachment_size_limit=limit)
    assert job.status == "succeeded", job.error_message
    final = fake_discord.requests_for(record.token)[-1]
    assert not final.files
    content = fake_discord.messages[job.message_id]["content"]
    output = job.outputs[0]
    assert f"[Download the video]({output.source_url})" in content
    assert f"the link expires <t:{int(output.url_expires_at)}:R>" in content


async def test_video_without_images_sends_no_frames(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        await run(fake_discord, bot, "video", {"prompt": "a quiet forest"})
    body = last_body(fakes, "luma_reseller")
    assert body == {"user_prompt": "a quiet forest", "aspect_ratio": "16:9", "loop": False}


# ------------------------------------------------------------------------------------------------ DMs and private
@pytest.mark.parametrize("private", [False, True])
async def test_edit_and_video_in_dms_and_private(fake_discord, fakes, settings, private):
    context = {"guild_id": None} if not private else {}
    async with bot_running(settings, fake_discord) as bot:
        edit_record, edit_job = await run(
            fake_discord,
            bot,
            "edit",
            {"image": fake_discord.add_cdn_file("a.png", png()), "prompt": "add a hat", "private": private},
            **context,
        )
        video_record, video_job = await run(
            fake_discord, bot, "video", {"prompt": "a hat falls", "private": private}, **context
        )
        rows = await bot.services.database.fetch_all("SELECT guild_id, user_id, kind FROM credit_ledger ORDER BY id")
    for record, job in ((edit_record, edit_job), (video_record, video_job)):
        assert job.status == "succeeded", job.error_message
        assert job.ephemeral is private
        assert job.delivery_path == "token"
        requests = fake_discord.requests_for(record.token)
        assert requests[-1].files
        public_posts = [
            r
            for r in requests
            if r.method == "POST" and r.path.startswith("/webhooks") and not (r.json or {}).get("flags", 0) & 64
        ]
        assert public_posts == []  # the job's message is the reply itself, never a followup
        callback = requests[0].json
        assert callback == ({"type": 5, "data": {"flags": 64}} if private else {"type": 5})  # public unless private
    expected_guild = fake_discord.default_guild_id if private else 0
    assert [(r["guild_id"], r["kind"]) for r in rows] == [(expected_guild, k) for k in ("reserve", "commit") * 2]


# ------------------------------------------------------------------------------------------------ autocomplete
async def choices(fake, command: str, options: dict, focused: str, **context) -> list[dict]:
    record = await fake.dispatch(fake.autocomplete(command, options, focused, **context))
    callback = await fake.wait_for(lambda r: r.interaction_token == record.token)
    assert callback.json["type"] == 8
    return callback.json["data"]["choices"]


async def test_model_autocomplete_offers_enabled_allowed_models_matching_what_was_typed(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        everything = await choices(fake_discord, "imagine", {"prompt": "x", "model": ""}, "model")
        typed = await choices(fake_discord, "imagine", {"prompt": "x", "model": "UNI"}, "model")
        by_title = await choices(fake_discord, "imagine", {"prompt": "x", "model": "kawaii"}, "model")
        edits = await choices(fake_discord, "edit", {"prompt": "x", "model": ""}, "model")
        await bot.services.server_settings.update(
            fake_discord.default_guild_id, actor_id=1, reason="test", enabled_models=["uni-1", "kawaii-3d"]
        )
        restricted = await choices(fake_discord, "imagine", {"prompt": "x", "model": ""}, "model")
        in_dms = await choices(fake_discord, "imagine", {"prompt": "x", "model": ""}, "model", guild_id=None)
    assert [c["value"] for c in everything] == ["neta-lumina", "uni-1", "uni-1-max", "kawaii-3d"]
    assert everything[1]["name"] == "uni-1: Luma uni-1 (1 credit)"
    assert [c["value"] for c in typed] == ["uni-1", "uni-1-max"]
    assert [c["value"] for c in by_title] == ["kawaii-3d"]
    assert [c["value"] for c in edits] == ["uni-1", "uni-1-max"]
    assert [c["value"] for c in restricted] == ["uni-1", "kawaii-3d"]
    assert [c["value"] for c in in_dms] == ["neta-lumina", "uni-1", "uni-1-max", "kawaii-3d"]
    assert all(len(c["name"]) <= 100 for c in everything)


async def test_model_autocomplete_leaves_out_models_without_an_api_key(tmp_path, fake_discord, fakes):
    settings = e2e_settings(tmp_path, fake_discord, fakes, providers={"luma_agents": {"api_key": None}})
    async with bot_running(settings, fake_discord):
        images = await choices(fake_discord, "imagine", {"prompt": "x", "model": ""}, "model")
        edits = await choices(fake_discord, "edit", {"prompt": "x", "model": ""}, "model")
    assert [c["value"] for c in images] == ["neta-lumina", "kawaii-3d"]
    assert edits == []


async def test_ratio_autocomplete_follows_the_chosen_model(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord):
        uni = await choices(
            fake_discord, "imagine", {"prompt": "x", "model": "uni-1", "aspect_ratio": ""}, "aspect_ratio"
        )
        default = await choices(fake_discord, "imagine", {"prompt": "x", "aspect_ratio": ""}, "aspect_ratio")
        typed = await choices(
            fake_discord, "imagine", {"prompt": "x", "model": "kawaii-3d", "aspect_ratio": "9"}, "aspect_ratio"
        )
        video = await choices(fake_discord, "video", {"prompt": "x", "aspect_ratio": ""}, "aspect_ratio")
        unknown = await choices(
            fake_discord, "imagine", {"prompt": "x", "model": "nope", "aspect_ratio": ""}, "aspect_ratio"
        )
    assert [c["value"] for c in uni] == ["3:1", "2:1", "16:9", "3:2", "1:1", "2:3", "9:16", "1:2", "1:3"]
    assert len(default) == 15  # neta-lumina, the default image model
    assert [c["value"] for c in typed] == ["16:9", "21:9", "9:16", "9:21"]
    assert [c["value"] for c in video] == ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21"]
    assert unknown == []


async def test_seed_minus_one_means_random_for_every_seed_model(fake_discord, fakes, settings):
    async with bot_running(settings, fake_discord) as bot:
        slash, _ = await run(fake_discord, bot, "imagine", {"prompt": "a duck", "model": "kawaii-3d", "seed": -1})
        notes = ephemeral_followups(fake_discord, slash)
        kawaii_slash = last_body(fakes, "lumozai")
        await run(fake_discord, bot, "imagine", {"prompt": "a duck --seed -1", "model": "kawaii-3d"})
        kawaii_flag = last_body(fakes, "lumozai")
        await run(fake_discord, bot, "imagine", {"prompt": "a duck --seed -1"})
    assert "seed" not in kawaii_slash
    assert "seed" not in kawaii_flag
    assert notes == []  # -1 is no adjustment: no note
    assert last_body(fakes, "wavespeed")["seed"] == -1  # WaveSpeed's own "random"
