"""requirements.lock pins every runtime dependency of pyproject.toml (and their dependencies) to one version, and
the Docker image and CI install from it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)")


def locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        found = PIN.match(line)
        if found:
            pins[canonicalize_name(found.group(1))] = found.group(2)
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range():
    pins = locked()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run pip-compile (README.md, Docker)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}: run pip-compile"
        )


def test_the_lock_has_no_local_paths_or_unpinned_lines():
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            assert PIN.match(stripped), f"not a pin: {line!r}"


def test_docker_and_ci_install_from_the_lock_and_the_base_image_has_an_exact_version():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--requirement requirements.lock" in dockerfile
    image = re.search(r"ARG PYTHON_IMAGE=python:(\S+)", dockerfile)
    assert image is not None
    assert re.match(r"^\d+\.\d+\.\d+-", image.group(1)), image.group(1)
    assert "FROM python:" not in dockerfile
    assert "--constraint requirements.lock" in (ROOT / ".ci" / "run").read_text()
