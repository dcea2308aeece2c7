"""Job durations of the fake providers (``durations.py``): per model, seeded, scaled; done times recorded; held
jobs finish together once released; polls counted per job."""

from __future__ import annotations

import statistics

import aiohttp

from tests.fakes.providers.durations import MODELS, JobClock
from tests.fakes.providers.luma_reseller import FakeLumaReseller
from tests.fakes.providers.wavespeed import FakeWaveSpeed


def durations(clock: JobClock, fake: FakeWaveSpeed, count: int) -> list[float]:
    for n in range(count):
        fake.create_job(fake.new_id(), {"prompt": f"p{n}"})
    return [u.done_wall - u.created_wall for u in clock.jobs.values() if u.done_wall is not None]


def test_images_take_seconds_and_videos_minutes_the_same_for_the_same_seed_and_scaled():
    images = durations(JobClock("neta-lumina", seed=3).attach(fake := FakeWaveSpeed()), fake, 400)
    again = durations(JobClock("neta-lumina", seed=3).attach(fake := FakeWaveSpeed()), fake, 400)
    halved = durations(JobClock("neta-lumina", seed=3, scale=0.5).attach(fake := FakeWaveSpeed()), fake, 400)
    assert images == again
    assert all(abs(h - d * 0.5) < 1e-6 for h, d in zip(halved, images, strict=True))
    fifth, *_, ninety_fifth = statistics.quantiles(images, n=20)
    assert fifth >= 3.0
    assert 4.0 <= statistics.median(images) <= 8.0
    assert ninety_fifth <= 15.0
    video = MODELS["luma-video"]
    assert video.quantile(0.05) >= 60.0
    assert video.quantile(0.95) <= 300.0


def test_a_jobs_timeline_follows_its_drawn_duration():
    fake = FakeWaveSpeed()
    clock = JobClock("neta-lumina").attach(fake)
    job = fake.create_job(fake.new_id(), {"prompt": "p"})
    upstream = clock.jobs[job.id]
    total = job.timing.queued_s + job.timing.processing_s
    assert upstream.done_wall is not None
    assert abs((upstream.done_wall - upstream.created_wall) - total) < 1e-6
    assert job.phase(job.created_at + total - 0.01) == "processing"
    assert job.phase(job.created_at + total + 0.01) == "completed"


def test_held_jobs_finish_within_the_window_once_released():
    fake = FakeWaveSpeed()
    clock = JobClock("neta-lumina", hold=True).attach(fake)
    jobs = [fake.create_job(fake.new_id(), {"prompt": f"p{n}"}) for n in range(50)]
    assert all(clock.jobs[job.id].done_wall is None for job in jobs)
    assert all(job.phase(job.created_at + 3600) == "processing" for job in jobs)
    clock.release(lead_s=0.5, window_s=1.0)
    done = [clock.jobs[job.id].done_wall for job in jobs]
    assert all(d is not None for d in done)
    assert max(d for d in done if d is not None) - min(d for d in done if d is not None) <= 1.0


async def test_polls_are_counted_per_job():
    async with FakeLumaReseller() as fake, aiohttp.ClientSession() as http:
        clock = JobClock("luma-video", scale=0.001).attach(fake)
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        async with http.post(f"{fake.base_url}/luma/generations", json={"user_prompt": "a"}, headers=headers) as r:
            first = (await r.json())["id"]
        async with http.post(f"{fake.base_url}/luma/generations", json={"user_prompt": "b"}, headers=headers) as r:
            second = (await r.json())["id"]
        for _ in range(3):
            async with http.get(f"{fake.base_url}/luma/generations/{first}", headers=headers) as r:
                assert r.status == 200
        assert clock.jobs[first].polls == 3
        assert clock.jobs[second].polls == 0
