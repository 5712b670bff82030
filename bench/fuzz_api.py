"""Fuzzes the OpenAPI surface of the app with schemathesis (v4): for every operation in
/openapi.json, at least N generated cases (valid and, with --negative, schema-violating bodies,
queries and paths) sent to the app in-process (ASGI) on a demo knowledge base in a temporary SQLite
file, or to a live server (--url http://127.0.0.1:8000); then the edge cases the generator rarely
reaches (`edge_cases`): integers >= 2**63 and a 400-digit one in every integer query, path and
header parameter, and X-API-Key headers that are not ASCII (raw bytes: UTF-8, invalid UTF-8,
Latin-1). Reports every 5xx (goal: none) with a reproduction; exits 1 when any was found. Not part
of the normal test run (a 25-case smoke version is tests/bot/test_fuzz_smoke.py).

    python bench/fuzz_api.py [--examples 1000] [--negative] [--url URL] [--operation /api/v1/chat]
    python bench/fuzz_api.py --edge-only      # the edge cases alone (a few seconds)
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

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET_KEY, API_KEY = "fuzz-secret-" + "s" * 32, "fuzz-key-" + "k" * 32
# beyond int64 (a database BIGINT, SQLite's INTEGER) and far beyond: 400 digits
HUGE_INTEGERS = (2**63, 2**64 + 1, -(2**63) - 1, 10**399)
# X-API-Key values that are not ASCII, as raw header bytes: UTF-8 Chinese, invalid UTF-8, Latin-1
NON_ASCII_KEYS = ("密钥".encode(), b"\xff\xfe\x80key", "clé".encode("latin-1"))


def build_app(tmp: Path) -> Any:
    """The real app (demo knowledge base, WeChat and API key enabled) on a temporary SQLite file."""
    os.environ.setdefault("POLICYBOT_JOBS_ENABLED", "false")
    from bot.app import create_app
    from bot.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp / 'fuzz.db'}",
        demo=True,
        secret_key=SECRET_KEY,
        api_key=API_KEY,
        rate_limit_per_ip=0,
        rate_limit_per_session=0,
        spool_dir=str(tmp / "spool"),
        jobs_enabled=False,
        wechat_token="fuzzToken",
        wechat_app_id="wxfuzz",
        index_refresh_seconds=5.0,
    )
    from bot.database import upgrade
    from knowledge.db import make_engine, make_sessionmaker
    from knowledge.demo import load_demo
    from knowledge.faqs import FaqStore
    from knowledge.policies import PolicyStore

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


def fuzz_operation(
    op: Any, label: str, *, examples: int, counts: Counter[str], derandomize: bool = False
) -> list[str]:
    """Run `examples` generated cases of one operation; returns a description of every 5xx."""
    seen: list[str] = []

    @hsettings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        counts[label] += 1
        response = case.call()
        if response.status_code >= 500:
            seen.append(
                f"{label} -> {response.status_code}\n    {case.as_curl_command()}\n    {response.text[:300]}"
            )

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
        print(
            f"{label:<40} {counts[label]:>6} cases  {len(seen):>3} server errors  {time.monotonic() - started:6.1f} s",
            flush=True,
        )
    return counts, failures


def _is_integer(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "integer" or any(_is_integer(s) for s in schema.get("anyOf", []))


def _filler(schema: dict[str, Any]) -> str:
    """A plain valid-looking value for a required parameter that is not under test."""
    return "0" if _is_integer(schema) else "x"


def edge_cases(client: Any, spec: dict[str, Any]) -> tuple[int, list[str]]:
    """Integers >= 2**63 (and 400 digits) in every integer query, path and header parameter of the
    OpenAPI description, and non-ASCII X-API-Key headers on every operation. `client` is an httpx
    client (or Starlette's TestClient) on the app. Returns (cases sent, description of every 5xx)."""
    sent = 0
    failures: list[str] = []

    def send(
        method: str,
        path: str,
        label: str,
        *,
        params: dict[str, str] | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bool = False,
    ) -> None:
        nonlocal sent
        sent += 1
        r = client.request(method, path, params=params, headers=headers, json={} if body else None)
        if r.status_code >= 500:
            failures.append(f"{method} {path} {label} -> {r.status_code}\n    {r.text[:300]}")

    for template, operations in spec["paths"].items():
        for method, op in operations.items():
            method = method.upper()
            params = op.get("parameters", [])
            body = "requestBody" in op
            query = {
                p["name"]: _filler(p["schema"]) for p in params if p["in"] == "query" and p.get("required")
            }
            path_values = {p["name"]: _filler(p["schema"]) for p in params if p["in"] == "path"}

            def path_with(values: dict[str, str], template: str = template) -> str:
                out = template
                for name, value in values.items():
                    out = out.replace("{" + name + "}", value)
                return out

            for p in params:
                if not _is_integer(p["schema"]):
                    continue
                for number in HUGE_INTEGERS:
                    value, label = str(number), f"{p['in']} {p['name']}={str(number)[:24]}"
                    if p["in"] == "query":
                        send(
                            method,
                            path_with(path_values),
                            label,
                            params={**query, p["name"]: value},
                            body=body,
                        )
                    elif p["in"] == "path":
                        send(
                            method,
                            path_with({**path_values, p["name"]: value}),
                            label,
                            params=query,
                            body=body,
                        )
                    elif p["in"] == "header":
                        send(
                            method,
                            path_with(path_values),
                            label,
                            params=query,
                            headers=[(p["name"].encode(), value.encode())],
                            body=body,
                        )
            for key in NON_ASCII_KEYS:
                send(
                    method,
                    path_with(path_values),
                    f"X-API-Key={key!r}",
                    params=query,
                    headers=[(b"x-api-key", key)],
                    body=body,
                )
    return sent, failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000, help="cases per operation (default 1000)")
    ap.add_argument("--negative", action="store_true", help="also schema-violating cases")
    ap.add_argument("--url", help="a live server instead of the in-process app (e.g. http://127.0.0.1:8000)")
    ap.add_argument("--operation", help="only operations whose path contains this")
    ap.add_argument("--seed", type=int, help="derandomized (repeatable) generation")
    ap.add_argument(
        "--edge-only", action="store_true", help="only the edge cases (huge integers, non-ASCII keys)"
    )
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )  # refusals are noise
    with tempfile.TemporaryDirectory() as tmp:
        app = None if args.url else build_app(Path(tmp))
        schema = load_schema(app, args.url, args.negative)
        if app is not None:
            from fastapi.testclient import TestClient

            client: Any = TestClient(app, raise_server_exceptions=False)  # a 500 is counted, not raised
        else:
            client = httpx.Client(base_url=args.url.rstrip("/"), timeout=30)
        with client:  # in-process: runs the lifespan (spool thread, access-log writer)
            counts: Counter[str] = Counter()
            failures: list[str] = []
            if not args.edge_only:
                counts, failures = fuzz(schema, examples=args.examples, only=args.operation, seed=args.seed)
            edge_sent, edge_failures = edge_cases(client, client.get("/openapi.json").json())
    print(
        f"operations: {len(counts)}, cases: {sum(counts.values())}, distinct server errors: {len(failures)}"
    )
    print(
        f"edge cases (integers >= 2**63, non-ASCII X-API-Key): {edge_sent}, server errors: {len(edge_failures)}"
    )
    failures += edge_failures
    for f in failures:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
