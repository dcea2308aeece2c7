"""Generated outputs and users' input images on disk, so results can be shown again and reused as inputs.

Outputs live in ``outputs/<job id>/<n>.<ext>``; inputs in ``inputs/<sha256>.<ext>`` (the same image uploaded
twice is stored once). Paths in the database are relative to the store's root. Writes are atomic.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import shutil
import uuid
from pathlib import Path

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
}


def extension_for(media_type: str) -> str:
    return _EXTENSIONS.get(media_type) or mimetypes.guess_extension(media_type) or ".bin"


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"MediaStore({str(self.root)!r})"

    def absolute(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"path outside the media store: {relative!r}")
        return path

    async def save_output(self, job_id: int, idx: int, data: bytes, media_type: str) -> str:
        relative = f"outputs/{job_id}/{idx}{extension_for(media_type)}"
        await asyncio.to_thread(self._write, self.absolute(relative), data)
        return relative

    async def save_input(self, data: bytes, media_type: str) -> str:
        relative = f"inputs/{hashlib.sha256(data).hexdigest()}{extension_for(media_type)}"
        path = self.absolute(relative)
        if not await asyncio.to_thread(path.exists):
            await asyncio.to_thread(self._write, path, data)
        return relative

    async def read(self, relative: str) -> bytes:
        return await asyncio.to_thread(self.absolute(relative).read_bytes)

    async def exists(self, relative: str) -> bool:
        return await asyncio.to_thread(self.absolute(relative).exists)

    async def purge_job(self, job_id: int) -> None:
        await asyncio.to_thread(shutil.rmtree, self.absolute(f"outputs/{job_id}"), True)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unique per write: two writes of the same path at once (the same input uploaded twice) must not share it.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
