"""Adding a provider is its module, its fake and its tests: a toy provider, registered here and nowhere else, is
offered (catalogue, /help, model autocomplete, ``check``), validated (the same flag parsing and clamping as every
model) and run end to end (the real discord.py client against the fake Discord, the production wiring, the toy's
fake server, a real SQLite file)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.catalogue import configured_model_keys, model_defs
from bot.runtime import build_providers
from bot.settings import Settings, settings_model
from providers import registry
from tests.e2e.commands_support import ack_text, refused, run
from tests.e2e.harness import FAST, ProviderFakes, bot_running, e2e_settings, provider_fakes
from tests.fakes.providers._server import Timing
from tests.toy.fake import FakeToy
from tests.toy.provider import SPEC, ToyProvider, ToySettings


@pytest.fixture
def toy() -> Iterator[None]:
    with registry.registered(SPEC):
        yield
    assert "toy" not in {spec.name for spec in registry.specs()}


@pytest.fixture
async def toy_fake() -> AsyncIterator[FakeToy]:
    async with FakeToy() as fake:
        fake.timing = Timing(FAST.queued_s, FAST.processing_s)
        yield fake


@pytest.fixture
async def fakes() -> AsyncIterator[ProviderFakes]:
    async with provider_fakes() as started:
        yield started


@pytest.fixture
def settings(toy, tmp_path, fake_discord, fakes, toy_fake) -> Settings:
    toy_block = {
        "api_key": toy_fake.api_key,
        "base_url": toy_fake.base_url,
        "poll_interval_s": 0.02,
        "first_poll_s": 0.02,
        "requests_per_minute": 60_000,
    }
    return e2e_settings(tmp_path, fake_discord, fakes, settings_class=settings_model(), toy=toy_block)


async def test_registering_derives_settings_and_wiring(toy, monkeypatch, tmp_path, http_session):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOY__API_KEY", "toy-secret")
    monkeypatch.setenv("TOY__CRAYON", "blue")
    settings = settings_model()(_env_file=None)  # type: ignore[call-arg]
    block = settings.providers()["toy"]
    assert isinstance(block, ToySettings)
    assert block.enabled
    assert block.crayon == "blue"
    assert settings.costs.for_model("toy-sketch") == 2
    assert "toy-sketch" in configured_model_keys(settings)
    assert [m.provider for m in model_defs() if m.key == "toy-sketch"] == ["toy"]
    providers = build_providers(settings, http_session)
    assert isinstance(providers["toy"], ToyProvider)
    assert "toy-secret" not in repr(settings) + repr(providers["toy"])


def test_a_registration_is_undone_and_names_are_unique(toy):
    with pytest.raises(ValueError, match="already registered"):
        registry.register(SPEC)
    registry.unregister("toy")
    assert "toy" not in settings_model().model_fields
    assert "toy-sketch" not in {m.key for m in model_defs()}
    registry.register(SPEC)


async def test_the_toy_is_offered_validated_and_run_end_to_end(fake_discord, fakes, toy_fake, settings):
    async with bot_running(settings, fake_discord) as bot:
        entry = bot.services.catalogue.get("toy-sketch")
        assert entry is not None
        assert entry.provider == "toy"
        assert entry.cost == 2

        # Offered: in /help and in the model autocomplete, with its title and cost.
        record = await fake_discord.dispatch(fake_discord.slash_command("help", {}))
        reply = await fake_discord.wait_for(lambda r: r.interaction_token == record.token and r.method == "PATCH")
        fields = {field["name"]: field["value"] for field in reply.json["embeds"][0]["fields"]}
        assert "`toy-sketch`" in fields["Models enabled here"]
        record = await fake_discord.dispatch(
            fake_discord.autocomplete("imagine", {"prompt": "x", "model": "toy"}, "model")
        )
        callback = await fake_discord.wait_for(lambda r: r.interaction_token == record.token)
        assert callback.json["data"]["choices"] == [
            {"name": "toy-sketch: Toy Sketch (2 credits)", "value": "toy-sketch"}
        ]

        # Validated: the flags it does not take are refused, saying what it takes; nothing reaches the toy.
        text = await refused(fake_discord, bot, "imagine", {"prompt": "a robot --foo 3", "model": "toy-sketch"})
        assert "`--foo` is not a flag" in text
        assert "`toy-sketch` takes: --model, --seed, --steps" in text
        text = await refused(fake_discord, bot, "imagine", {"prompt": "a robot --ar 16:9", "model": "toy-sketch"})
        assert "`--ar` does not work with `toy-sketch`" in text
        assert not toy_fake.requests_to("POST", "/jobs")

        # Run: submitted with the clamped options, polled to completion, delivered as a file.
        record, job = await run(
            fake_discord, bot, "imagine", {"prompt": "a robot --steps 99 --seed 7", "model": "toy-sketch"}
        )
        receipt = await ack_text(fake_discord, record, contains="✅")

    assert "ℹ️ --steps 99 is more than toy-sketch allows; used 20." in receipt
    assert job.status == "succeeded", job.error_message
    assert (job.provider, job.model_key, job.cost) == ("toy", "toy-sketch", 2)
    (submitted,) = toy_fake.requests_to("POST", "/jobs")
    assert submitted.json == {"prompt": "a robot", "steps": 20, "seed": 7}
    assert toy_fake.requests_to("GET", r"/jobs/\d+")
    final = fake_discord.requests_for(record.token)[-1]
    assert len(final.files) == 1
    assert final.files[0].data[:4] == b"\x89PNG"
    assert not fakes.wavespeed.requests_to("POST", ".*")
