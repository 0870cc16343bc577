"""Service images: one multi-stage Dockerfile per service, digest-pinned bases, non-root, only the
service's package (and what it depends on in the workspace) installed; every COPY source exists."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from tests.deploy.deploy_support import DEFAULT_PORTS, ROOT, SERVICES

IMAGES = (*SERVICES, "allinone")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def dockerfile(image: str) -> Path:
    return ROOT / "services" / image / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def workspace_deps(package: str) -> set[str]:
    """Workspace packages `package` needs (itself included), e.g. stress -> {stress, greeks, common}."""
    folder = ROOT / ("libs/common" if package == "common" else f"services/{package}")
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]}
    found = {package}
    for name in names:
        if name.startswith("sigmasight-"):
            found |= workspace_deps(name.removeprefix("sigmasight-"))
    return found


@pytest.mark.parametrize("image", IMAGES)
def test_every_copy_source_exists_in_the_repository(image: str) -> None:
    stages: set[str] = set()
    for keyword, args in instructions(dockerfile(image)):
        if keyword == "FROM" and " AS " in args.upper():
            stages.add(args.split()[-1].lower())
        if keyword != "COPY":
            continue
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        if any(a.startswith("--from=") for a in shlex.split(args)):
            assert args.split("--from=")[1].split()[0].lower() in stages
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), f"{image}: COPY {source} does not exist"
            assert not _ignored(source), f"{image}: COPY {source} is excluded by .dockerignore"


def _ignored(source: str) -> bool:
    """Whether .dockerignore excludes a top-level path the Dockerfile copies."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    top = source.split("/")[0]
    return any(rule in (top, f"{top}/") for rule in rules if rule and not rule.startswith("#"))


@pytest.mark.parametrize("image", IMAGES)
def test_image_is_multi_stage_pinned_non_root_and_installs_only_its_packages(image: str) -> None:
    steps = instructions(dockerfile(image))
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert len(froms) >= 3, "uv, build and runtime stages"
    args = dict(a.split("=", 1) for keyword, a in steps if keyword == "ARG" and "=" in a)
    bases = [args.get(f.split()[0].strip("${}"), f.split()[0]) for f in froms]
    assert all(DIGEST.search(base) for base in bases), bases
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim@sha256:")
    syncs = [a for keyword, a in steps if keyword == "RUN" and "uv sync" in a]
    assert syncs and all("--frozen --no-dev" in s and f"--package sigmasight-{image}" in s for s in syncs)
    copied = {a.split()[0].split("/src")[0] for keyword, a in steps if keyword == "COPY" and "/src " in a}
    wanted = {"libs/common" if p == "common" else f"services/{p}" for p in workspace_deps(image)}
    assert copied == wanted
    users = [a for keyword, a in steps if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    envs = " ".join(a for keyword, a in steps if keyword == "ENV")
    assert "PYTHONUNBUFFERED=1" in envs


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_serves_its_service_on_its_port(service: str) -> None:
    steps = dict(instructions(dockerfile(service)))
    assert steps["ENTRYPOINT"] == f'["python", "-m", "common.serve", "{service}"]'
    assert steps["CMD"] == f'["--port", "{DEFAULT_PORTS[service]}"]'
    assert steps["EXPOSE"] == str(DEFAULT_PORTS[service])


def test_service_entry_point_knows_every_service() -> None:
    from common.serve import main

    with pytest.raises(SystemExit) as exc:
        main(["no-such-service"])
    assert exc.value.code == 2
