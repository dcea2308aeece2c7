"""The toy API's fake server (see ``tests.toy.provider``), on the shared fake-provider base."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.providers._server import FakeJob, FakeProviderServer

_STATES = {"queued": "queued", "processing": "running", "completed": "done", "failed": "failed"}


class FakeToy(FakeProviderServer):
    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/jobs", self._submit)
        self.app.router.add_get("/jobs/{id}", self._poll)

    async def _submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body.get("prompt"), str) or not 1 <= (body.get("steps") or 1) <= 20:
            return web.json_response({"error": "bad request"}, status=400)
        job = self.create_job(self.new_id(), body)
        return web.json_response(self._view(job), status=201)

    async def _poll(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        job.polls += 1
        return web.json_response(self._view(job))

    def _view(self, job: FakeJob) -> dict[str, object]:
        state = _STATES[job.phase(self.clock())]
        view: dict[str, object] = {"id": job.id, "state": state}
        if state == "done":
            view["image_url"] = self.add_media(f"{job.id}.png")
        return view
