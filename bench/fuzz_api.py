"""Fuzzes the OpenAPI surface of the app with schemathesis (v4): for every operation in
/openapi.json, at least N generated cases (valid and, with --negative, schema-violating bodies,
queries and paths) sent to the app in-process (ASGI) on a demo knowledge base in a temporary SQLite
file, or to a live server (--url http://127.0.0.1:8000). Reports every 5xx (goal: none) with a curl
reproduction; exits 1 when any was found. Not part of the normal test run (a 25-case smoke version
is tests/bot/test_fuzz_smoke.py).

    python bench/fuzz_api.py [--examples 1000] [--negative] [--url URL] [--operation /api/v1/chat]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_app(tmp: Path) -> Any:
    """The real app (demo knowledge base, WeChat and API key enabled) on a temporary SQLite file."""
    os.environ.setdefault("POLICYBOT_JOBS_ENABLED", "false")
    from bot.app import create_app
    from bot.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp / 'fuzz.db'}", demo=True, secret_key="fuzz-secret", api_key="fuzz-key",
        rate_limit_per_ip=0, rate_limit_per_session=0, spool_dir=str(tmp / "spool"), jobs_enabled=False,
        wechat_token="fuzzToken", wechat_app_id="wxfuzz", index_refresh_seconds=5.0,
    )
    from bot.database import upgrade
    from knowledge.db import make_engine, make_sessionmaker
    from knowledge.demo import load_demo
    from knowledge.policies import PolicyStore
    from knowledge.store import FaqStore

    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    load_demo(FaqStore(sessions), PolicyStore(sessions))
    engine.dispose()
    return create_app(settings)


def load_schema(app: Any, url: str | None, negative: bool) -> Any:
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if negative else [GenerationMode.POSITIVE]
    config = SchemathesisConfig()
    config.projects.default.generation.update(modes=modes)
    if url:
        return schemathesis.openapi.from_url(url.rstrip("/") + "/openapi.json", config=config)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def fuzz_operation(op: Any, label: str, *, examples: int, counts: Counter[str], derandomize: bool = False) -> list[str]:
    """Run `examples` generated cases of one operation; returns a description of every 5xx."""
    seen: list[str] = []

    @hsettings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        counts[label] += 1
        response = case.call()
        if response.status_code >= 500:
            seen.append(f"{label} -> {response.status_code}\n    {case.as_curl_command()}\n    {response.text[:300]}")

    run()
    return seen


def fuzz(schema: Any, *, examples: int, only: str | None, seed: int | None) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        label = f"{op.method.upper()} {op.path}"
        if only and only not in op.path:
            continue
        started = time.monotonic()
        seen = fuzz_operation(op, label, examples=examples, counts=counts, derandomize=seed is not None)
        failures.extend(dict.fromkeys(seen))  # keep order, drop repeats
        print(f"{label:<40} {counts[label]:>6} cases  {len(seen):>3} server errors  {time.monotonic() - started:6.1f} s",
              flush=True)
    return counts, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000, help="cases per operation (default 1000)")
    ap.add_argument("--negative", action="store_true", help="also schema-violating cases")
    ap.add_argument("--url", help="a live server instead of the in-process app (e.g. http://127.0.0.1:8000)")
    ap.add_argument("--operation", help="only operations whose path contains this")
    ap.add_argument("--seed", type=int)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")  # refusals are noise
    hypothesis.seed = args.seed  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        app = None if args.url else build_app(Path(tmp))
        schema = load_schema(app, args.url, args.negative)
        if app is not None:
            from fastapi.testclient import TestClient

            with TestClient(app):  # run the lifespan (spool thread, access-log writer)
                counts, failures = fuzz(schema, examples=args.examples, only=args.operation, seed=args.seed)
        else:
            counts, failures = fuzz(schema, examples=args.examples, only=args.operation, seed=args.seed)
    print(f"operations: {len(counts)}, cases: {sum(counts.values())}, distinct server errors: {len(failures)}")
    for f in failures:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
