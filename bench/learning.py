"""Learning benchmark (issue 13, "Quality to reach", third bullet): does the knowledge base learn from
use? Anyone can rerun it: `.venv/bin/python bench/learning.py [--json]` (SQLite in a temp dir, about
a minute).

1. Take the demo knowledge base (69 FAQs, about 280 phrasings) and remove every similar phrasing
   from the store: only the standard questions stay.
2. Split each FAQ's removed phrasings in halves (the first ceil(n/2) are "played", the rest held out).
3. Play the first halves through the chat API as citizens would, one new session each: an answer
   with the right FAQ is rated 有用; a clarify that offers the right FAQ is answered by tapping it;
   otherwise (a wrong answer, a clarify without it, passages, nothing) the citizen leaves a message,
   which staff answer with the right FAQ by `policybot tickets answer NO --faq FAQ_ID --as USERNAME`.
4. Approve every queued candidate: `policybot kb suggestions approve --all --as reviewer` (through
   the conflict check; refused ones are counted).
5. Evaluate the held-out halves against the store before and after, with `policybot kb eval --json`
   on the exported stores and with the answering rule of the running service: top-1, right-direct
   (answered directly with the right FAQ) and false answers (answered with a wrong FAQ).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from bot import cli  # noqa: E402
from bot.app import create_app  # noqa: E402
from bot.settings import Settings, get_settings  # noqa: E402
from handoff.console import Accounts, ConsoleConfig  # noqa: E402
from knowledge.demo import DEMO_DIR  # noqa: E402

STAFF, PASSWORD = "bench-staff", "Bench-pass-2026!"


def split_demo(directory: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Write the demo without similar phrasings into `directory`; (played, held out) per FAQ."""
    shutil.copytree(DEMO_DIR, directory, dirs_exist_ok=True)
    played: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    rows = []
    for line in (DEMO_DIR / "faqs.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        similar = [s for s in row.get("similar", []) if s.strip()]
        cut = math.ceil(len(similar) / 2)
        played[row["id"]], held[row["id"]] = similar[:cut], similar[cut:]
        rows.append(dict(row, similar=[]))
    (directory / "faqs.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    return played, held


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


def play(client: TestClient, text: str, faq_id: str, question: str) -> str:
    """One citizen asking `text` who needs FAQ `faq_id`: what happened (answer / clarify / ticket)."""
    start = client.post("/api/v1/sessions", json={}).json()
    sid = start["session"]
    replies = client.post("/api/v1/chat", json={"session": sid, "text": text}).json()["replies"]
    first = replies[0]
    if first["kind"] == "answer" and first["faq_id"] == faq_id:
        client.post("/api/v1/rate", json={"session": sid, "ref": first["ref"], "rating": "useful"})
        return "answer"
    if first["kind"] == "clarify" and question in first["suggestions"]:
        picked = client.post("/api/v1/chat", json={"session": sid, "text": question}).json()["replies"][0]
        if picked["kind"] == "answer" and picked["faq_id"] == faq_id:
            client.post("/api/v1/rate", json={"session": sid, "ref": picked["ref"], "rating": "useful"})
            return "clarify"
    if first["kind"] == "answer":  # the wrong FAQ: not helped
        client.post("/api/v1/rate", json={"session": sid, "ref": first["ref"], "rating": "useless"})
    ticket = client.post("/api/v1/tickets", json={"session": sid, "question": text}).json()
    no = ticket["ticket_no"]
    code, out = run_cli("tickets", "answer", no, "--faq", faq_id, "--as", STAFF)
    if code != 0:
        raise SystemExit(f"tickets answer failed: {out}")
    return "ticket"


def evaluate(app: Any, held: dict[str, list[str]]) -> dict[str, float]:
    """The held-out phrasings through the service's own answering rule."""
    kb = app.state.kb
    kb.refresh(force=True)
    n = top1 = right = wrong = 0
    for faq_id, texts in held.items():
        for text in texts:
            n += 1
            result = kb.ask(text)
            top1 += int(bool(result.hits) and result.hits[0].faq_id == faq_id)
            if result.decision == "answer":
                right += int(result.faq_id == faq_id)
                wrong += int(result.faq_id != faq_id)
    return {
        "n": n,
        "top1": round(top1 / n, 4),
        "right_direct": round(right / n, 4),
        "false_answer": round(wrong / n, 4),
    }


def kb_eval(store_file: Path, held: dict[str, list[str]], tmp: Path) -> dict[str, Any]:
    queries = tmp / "held.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps({"query": t, "expected_id": f}, ensure_ascii=False)
            for f, ts in held.items()
            for t in ts
        )
        + "\n",
        encoding="utf-8",
    )
    code, out = run_cli("kb", "eval", "--faq", str(store_file), "--queries", str(queries), "--json")
    if code != 0:
        raise SystemExit(f"kb eval failed: {out}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="learning-") as name:
        tmp = Path(name)
        played, held = split_demo(tmp / "demo")
        url = f"sqlite:///{tmp / 'learning.db'}"
        os.environ.update(
            DATABASE_URL=url, POLICYBOT_JOBS_ENABLED="false", POLICYBOT_SPOOL_DIR=str(tmp / "spool")
        )
        get_settings.cache_clear()
        settings = Settings(
            database_url=url,
            secret_key="learning-benchmark-secret-0000000000",
            demo=True,
            rate_limit_per_ip=0,
            rate_limit_per_session=0,
            index_refresh_seconds=0.0,
            spool_dir=str(tmp / "spool"),
        )  # type: ignore[call-arg]
        app = create_app(settings)
        from knowledge.demo import load_demo

        load_demo(app.state.kb.faqs, app.state.kb.policies, directory=tmp / "demo")
        Accounts(app.state.sessions, ConsoleConfig(secret_key="learning")).add_user(
            STAFF, PASSWORD, role="supervisor", by="bench"
        )
        before_file = tmp / "before.jsonl"
        app.state.kb.faqs.export_file(before_file, fmt="jsonl")
        before = evaluate(app, held)
        before_eval = kb_eval(before_file, held, tmp)

        outcomes: dict[str, int] = {"answer": 0, "clarify": 0, "ticket": 0}
        with TestClient(app) as client:
            for faq_id, texts in played.items():
                rec = app.state.kb.faqs.require(faq_id)
                for text in texts:
                    outcomes[play(client, text, faq_id, rec.question)] += 1
        code, listed = run_cli("kb", "suggestions", "list", "--json")
        queued = json.loads(listed) if code == 0 else []
        sources: dict[str, int] = {}
        for s in queued:
            for k, v in s["sources"].items():
                sources[k] = sources.get(k, 0) + v
        code, approved = run_cli("kb", "suggestions", "approve", "--all", "--as", "reviewer")
        summary = approved.strip().splitlines()[-1] if approved.strip() else ""

        after_file = tmp / "after.jsonl"
        app.state.kb.faqs.export_file(after_file, fmt="jsonl")
        after = evaluate(app, held)
        after_eval = kb_eval(after_file, held, tmp)
        report = {
            "faqs": len(played),
            "played": sum(len(v) for v in played.values()),
            "held_out": sum(len(v) for v in held.values()),
            "outcomes": outcomes,
            "candidates": len(queued),
            "candidate_sources": sources,
            "approve": summary,
            "service_before": before,
            "service_after": after,
            "kb_eval_before": before_eval,
            "kb_eval_after": after_eval,
        }
        get_settings.cache_clear()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"FAQs {report['faqs']}, played {report['played']}, held out {report['held_out']}")
    print(f"played outcomes: {outcomes}; candidates {len(queued)} {sources}; {summary}")
    print(f"{'':24}{'top-1':>8}{'right-direct':>14}{'false':>8}")
    for label, r in (("service before", before), ("service after", after)):
        print(f"{label:24}{r['top1']:>8.3f}{r['right_direct']:>14.3f}{r['false_answer']:>8.3f}")
    for label, r in (("kb eval before", before_eval), ("kb eval after", after_eval)):
        right = r.get("answer_right")
        shown = f"{right:>14.3f}" if isinstance(right, int | float) else f"{'-':>14}"
        print(f"{label:24}{r['top1']:>8.3f}{shown}{r['false_answer']:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
