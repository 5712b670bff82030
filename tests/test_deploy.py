"""The deployment files hold together without Docker: the Dockerfile's stages, COPY sources (present
and not excluded by .dockerignore), non-root user, health check and start command; compose.yaml
parses, wires the app to a healthy PostgreSQL 15, and every POLICYBOT_ variable it sets is a real
setting whose default values validate; requirements.lock pins every dependency of pyproject.toml
(within its floors) with sha256 hashes and the image installs from it alone."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [p.strip() for p in lines if p.strip() and not p.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p.lstrip("/")) or fnmatch.fnmatch(path.split("/")[0], p) for p in patterns
    )


def test_dockerfile_stages_user_healthcheck_and_command() -> None:
    ins = _instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert froms[0] == "python:3.11-slim AS build" and froms[-1].startswith("python:3.11-slim")
    assert len(froms) == 2
    runtime = ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][-1] :]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(w == "RUN" and "fonts-noto-cjk" in r for w, r in runtime)
    assert any(w == "COPY" and r.startswith("--from=build /opt/venv") for w, r in runtime)
    health = [rest for word, rest in runtime if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/readyz" in health[0]
    cmd = [rest for word, rest in runtime if word == "CMD"][-1]
    assert "policybot serve" in cmd and "--host 0.0.0.0" in cmd and "${POLICYBOT_WORKERS}" in cmd
    assert "exec " in cmd  # the server is PID 1's process and gets SIGTERM for a graceful stop
    assert any(w == "ENV" and "POLICYBOT_WORKERS=" in r for w, r in runtime)


def test_dockerfile_copies_exist_and_are_not_ignored() -> None:
    patterns = _dockerignore()
    sources: list[str] = []
    for word, rest in _instructions():
        if word != "COPY" or "--from=" in rest:
            continue
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        sources.extend(parts[:-1])
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY source {src} does not exist"
        assert not _ignored(src, patterns), f"COPY source {src} is excluded by .dockerignore"
    # the wheel is built from these (migrations/ ships as bot.migrations; pyproject names the README)
    needed = {"pyproject.toml", "README.md", "migrations", "bot", "knowledge", "handoff"}
    assert needed <= set(sources)
    for noise in (".git", "tests", "policybot.db", ".venv"):
        assert _ignored(noise, patterns), f"{noise} should not be sent to the Docker build"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


def _defaults(value: str) -> str:
    """Compose's interpolation with an empty environment: ${X:-d} -> d, ${X:?e} / ${X} -> a sample."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+(?::\?[^}]*)?\}", "sample", value)


def test_compose_app_and_postgres() -> None:
    services = _compose()["services"]
    db, app = services["db"], services["app"]
    assert db["image"] == "postgres:15"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data" and volume[0] in _compose()["volumes"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    context = app["build"] if isinstance(app["build"], str) else app["build"]["context"]
    assert (ROOT / context / "Dockerfile").is_file()
    env = {k: _defaults(str(v)) for k, v in app["environment"].items()}
    assert (
        env["DATABASE_URL"].startswith("postgresql+psycopg://policybot:")
        and "@db:5432/" in env["DATABASE_URL"]
    )
    assert int(env["POLICYBOT_WORKERS"]) >= 1


def test_compose_settings_are_real_and_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: _defaults(str(v)) for k, v in _compose()["services"]["app"]["environment"].items()}
    fields = {f"POLICYBOT_{name.upper()}" for name in Settings.model_fields}
    unknown = {k for k in env if k.startswith("POLICYBOT_") and k != "POLICYBOT_WORKERS"} - fields
    assert not unknown, f"compose.yaml sets unknown settings: {unknown}"
    for key in list(os.environ):
        if key.startswith("POLICYBOT_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # read from the environment exactly as in the container
    assert settings.trusted_proxies == ["172.16.0.0/12"] and settings.database_url == env["DATABASE_URL"]
    assert settings.console_cookie_secure is True
    assert not settings.wechat_token and not settings.secret_key  # empty: channel off, key generated


# --- the hash-pinned install set (requirements.lock, regenerated by scripts/lock) ------------------
def _lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name (normalised) -> (pinned version, hashes) for every requirement of requirements.lock."""
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)
    entries: dict[str, tuple[str, list[str]]] = {}
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split()
        assert all(o.startswith("--hash=sha256:") for o in options), f"unexpected option in: {line[:80]}"
        hashes = [o.split(":", 1)[1] for o in options]
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), (
            f"no sha256 for {requirement}"
        )
        name, _, version = requirement.partition("==")
        assert version and ";" not in requirement, f"not an exact pin: {requirement}"
        entries[_normalise(name)] = (version, hashes)
    return entries


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_lock_pins_every_dependency_with_hashes_within_the_floors() -> None:
    from packaging.requirements import Requirement

    entries = _lock_entries()
    project = _pyproject()
    wanted = [Requirement(r) for r in project["project"]["dependencies"]]
    wanted += [Requirement(r) for r in project["build-system"]["requires"]]  # the Dockerfile builds with it
    for req in wanted:
        name = _normalise(req.name)
        assert name in entries, (
            f"{req.name} is in pyproject.toml but not in requirements.lock: run scripts/lock"
        )
        version = entries[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"lock has {req.name}=={version}, needs {req.specifier}"
        )
    # the extras the image relies on are locked too
    assert {"psycopg-binary", "uvloop", "httptools", "websockets"} <= set(entries)
    assert "policybot" not in entries  # the package itself is installed from the source, --no-deps
    header = (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()[:3]
    assert any("scripts/lock" in line for line in header)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "scripts/lock" in readme and "--require-hashes" in readme


def test_dockerfile_installs_the_lock_with_hashes_then_the_package_alone() -> None:
    ins = _instructions()
    build = ins[: [i for i, (w, _) in enumerate(ins) if w == "FROM"][-1]]
    copies = [rest for word, rest in build if word == "COPY"]
    lock_copy = next(i for i, c in enumerate(copies) if c.startswith("requirements.lock "))
    assert lock_copy < next(i for i, c in enumerate(copies) if c.startswith("bot "))  # cached layer
    installs = [
        cmd.strip()
        for word, rest in build
        if word == "RUN"
        for cmd in rest.split("&&")
        if "pip install" in cmd
    ]
    assert installs, "no pip install in the build stage"
    locked = [c for c in installs if "-r requirements.lock" in c]
    assert locked and all("--require-hashes" in c for c in locked)
    package = installs[-1]
    assert package.endswith(" .") and "--no-deps" in package and "--no-build-isolation" in package
    for cmd in installs:  # nothing is installed unchecked: hash-checked from a lock, or our source alone
        assert "--require-hashes" in cmd or cmd == package, f"unchecked install: {cmd}"


def test_every_package_is_installed() -> None:
    """A package missing from [tool.setuptools] packages works in the editable dev install but not
    in the Docker image (a plain install)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("bot", "knowledge", "handoff")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), (
        f"add to pyproject.toml [tool.setuptools] packages: {sorted(found - listed)}"
    )
