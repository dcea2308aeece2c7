"""Generated outputs and users' input images on disk, so results can be shown again and reused as inputs.

Outputs live in ``outputs/<job id>/<n>.<ext>``; inputs in ``inputs/<sha256>.<ext>`` (the same image uploaded
twice is stored once). Paths in the database are relative to the store's root. Writes are atomic.

An input file's modification time is when it was last stored or reused: saving the same image again, or reusing it
(a reroll), refreshes it, and retention deletes input files untouched for longer than the retention that no
unfinished job needs (``purge_inputs``). Refreshing and deleting take one lock, so a file is never deleted between
being refreshed for a new job and that job being recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import shutil
import uuid
from collections.abc import Collection
from pathlib import Path

INPUTS_DIR = "inputs"

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
        self._inputs_lock = asyncio.Lock()  # refreshing an input file vs deleting it

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
        """Store an input image once per content; storing it again refreshes its modification time."""
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())  # up to 20 MB: off the loop
        relative = f"{INPUTS_DIR}/{digest}{extension_for(media_type)}"
        path = self.absolute(relative)
        async with self._inputs_lock:
            if not await asyncio.to_thread(_touch, path):
                await asyncio.to_thread(self._write, path, data)
        return relative

    async def save_output_file(self, job_id: int, idx: int, source: Path, media_type: str) -> str:
        """Like ``save_output``, moving the file ``source`` (e.g. a finished download) into place."""
        relative = f"outputs/{job_id}/{idx}{extension_for(media_type)}"
        await asyncio.to_thread(_move, source, self.absolute(relative))
        return relative

    async def save_input_file(self, source: Path, media_type: str) -> str:
        """Like ``save_input``, moving the file ``source`` into place (or deleting it if the content is stored)."""
        digest = await asyncio.to_thread(_sha256_of_file, source)
        relative = f"{INPUTS_DIR}/{digest}{extension_for(media_type)}"
        path = self.absolute(relative)
        async with self._inputs_lock:
            if await asyncio.to_thread(_touch, path):
                await asyncio.to_thread(source.unlink, True)
            else:
                await asyncio.to_thread(_move, source, path)
        return relative

    async def reuse(self, relative: str) -> bool:
        """Whether a stored file can be used as a job's input again; an input file's life is extended by it."""
        path = self.absolute(relative)
        if not path.is_relative_to(self.absolute(INPUTS_DIR)):
            return await asyncio.to_thread(path.exists)
        async with self._inputs_lock:
            return await asyncio.to_thread(_touch, path)

    async def read(self, relative: str) -> bytes:
        return await asyncio.to_thread(self.absolute(relative).read_bytes)

    async def exists(self, relative: str) -> bool:
        return await asyncio.to_thread(self.absolute(relative).exists)

    async def purge_job(self, job_id: int) -> None:
        await asyncio.to_thread(shutil.rmtree, self.absolute(f"outputs/{job_id}"), True)

    async def purge_inputs(self, *, older_than: float, keep: Collection[str]) -> int:
        """Delete the input files last stored or reused before ``older_than`` (Unix seconds), except the ``keep``
        paths (relative, as in the database); returns how many were deleted."""
        folder = self.absolute(INPUTS_DIR)
        candidates = await asyncio.to_thread(_files_older_than, folder, older_than)
        deleted = 0
        for path in candidates:
            if f"{INPUTS_DIR}/{path.name}" in keep:
                continue
            async with self._inputs_lock:  # checked again: it may have been refreshed for a new job meanwhile
                deleted += await asyncio.to_thread(_unlink_if_older, path, older_than)
        return deleted

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


def _move(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` atomically: renamed when on the same file system, else copied (streamed) to a
    temporary name beside ``target`` first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.move(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _touch(path: Path) -> bool:
    """Set the file's modification time to now; False if there is no such file."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def _files_older_than(folder: Path, older_than: float) -> list[Path]:
    old: list[Path] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < older_than:
                        old.append(Path(entry.path))
                except FileNotFoundError:  # replaced or deleted meanwhile
                    continue
    except FileNotFoundError:
        return []
    return old


def _unlink_if_older(path: Path, older_than: float) -> int:
    try:
        if path.stat().st_mtime >= older_than:
            return 0
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
