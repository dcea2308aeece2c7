"""The layering described in ARCHITECTURE.md: cogs → bot → providers, no SQL or HTTP inside cogs, no import cycle
between the client and the wiring, and modules small enough to read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", python_files("providers"), ids=lambda p: p.name)
def test_providers_import_nothing_from_discord_bot_or_cogs(path):
    assert not imported_modules(path) & {"discord", "bot", "cogs"}


@pytest.mark.parametrize("path", python_files("bot"), ids=lambda p: p.name)
def test_bot_does_not_import_cogs(path):
    allowed = {"app.py"}  # the client loads the cog extensions by package name
    if path.name not in allowed:
        assert "cogs" not in imported_modules(path)


@pytest.mark.parametrize("path", python_files("cogs"), ids=lambda p: p.name)
def test_cogs_run_no_sql_and_open_no_http_sessions(path):
    text = path.read_text()
    assert not imported_modules(path) & {"aiosqlite", "sqlite3", "aiohttp"}
    for marker in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "ClientSession("):
        assert marker not in text, f"{path.name} contains {marker!r}"


def imported_full_names(path: Path) -> set[str]:
    """Every module a file imports, by its full dotted name (``from bot import storage`` counts as
    ``bot.storage``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("path", python_files("cogs"), ids=lambda p: p.name)
def test_cogs_reach_storage_only_through_the_services(path):
    storage = sorted(
        name for name in imported_full_names(path) if name == "bot.storage" or name.startswith("bot.storage.")
    )
    assert not storage, f"{path.name} imports {storage}: use the services (e.g. services.audit, services.engine.jobs)"


SQL = re.compile(r"\bSELECT\s[\w\s*(),.]*?\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+[a-z_]+\s+SET\b|\bDELETE\s+FROM\b")


def outside_storage(package: str) -> list[Path]:
    storage = ROOT / "bot" / "storage"
    return [path for path in python_files(package) if storage not in path.parents]


@pytest.mark.parametrize(
    "path", outside_storage("bot") + outside_storage("cogs"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_sql_lives_only_in_the_storage_repositories(path):
    found = SQL.search(path.read_text())
    assert found is None, f"{path.relative_to(ROOT)} has SQL ({found.group(0)!r}): put it in a bot/storage repository"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT used FROM credit_usage",
        "SELECT id, guild_id,\n       user_id FROM credit_ledger",
        "SELECT COUNT(*) FROM jobs",
        "INSERT INTO jobs (id) VALUES (?)",
        "UPDATE member_quota SET banned = 0",
        "DELETE FROM role_limits",
    ],
)
def test_the_sql_check_recognises_sql(sql):
    assert SQL.search(f'x = """{sql}"""') is not None


MAX_MODULE_LINES = 400
OVERSIZED_FOR_NOW: set[str] = set()


@pytest.mark.parametrize("path", python_files("bot") + python_files("cogs"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_in_bot_or_cogs_is_over_400_lines(path):
    name = path.relative_to(ROOT).as_posix()
    if name in OVERSIZED_FOR_NOW:
        return
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, (
        f"{name} has {lines} lines; split it by concern (see ARCHITECTURE.md) to stay within {MAX_MODULE_LINES}"
    )


def test_the_wiring_does_not_import_the_client():
    """bot/app.py (the Discord client) builds on bot/runtime.py (the wiring), never the other way round, not even
    for type checking: the engine starts from any ``discord.Client``."""
    names = imported_full_names(ROOT / "bot" / "runtime.py")
    assert not [name for name in names if name == "bot.app" or name.startswith("bot.app.")]


def test_architecture_md_names_every_package():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    packages = [p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "bot").rglob("__init__.py")]
    for package in [*packages, "cogs", "providers"]:
        assert f"{package}/" in text, f"ARCHITECTURE.md does not describe {package}/"
