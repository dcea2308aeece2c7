from __future__ import annotations

import pytest

from tests.e2e.harness import ProviderFakes, e2e_settings, provider_fakes


@pytest.fixture
async def fakes():
    async with provider_fakes() as started:
        yield started


@pytest.fixture
def settings(tmp_path, fake_discord, fakes: ProviderFakes):
    return e2e_settings(tmp_path, fake_discord, fakes)
