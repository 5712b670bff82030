"""The share of a labelled set of citizen messages that the conversation handles sensibly
(tests/fixtures/conversation_set.jsonl, judged by tests/bot/conversation_judge.py): small talk,
chit-chat, requests for a person, colloquial questions the demo knowledge base covers, policy questions
it does not cover, follow-up pairs. Runs the whole service in process on a fresh SQLite demo database,
through the Inbox, as the in-process test channel does. Nothing here is tuned to ../shared/data.

Run: `python bench/conversation_eval.py [-v]` (about 10 s, one process, no load).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import create_app  # noqa: E402
from bot.database import upgrade  # noqa: E402
from bot.settings import Settings  # noqa: E402
from knowledge.db import make_engine, make_sessionmaker  # noqa: E402
from knowledge.demo import load_demo  # noqa: E402
from knowledge.faqs import FaqStore  # noqa: E402
from knowledge.policies import PolicyStore  # noqa: E402
from tests.bot.conversation_judge import load_set, run  # noqa: E402


def main(verbose: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="policybot-conv-"))
    url = f"sqlite:///{work / 'demo.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    load_demo(FaqStore(sessions), PolicyStore(sessions))
    engine.dispose()
    app = create_app(
        Settings(
            database_url=url,
            secret_key="bench-secret-of-32-characters-0000",
            rate_limit_per_ip=0,
            rate_limit_per_session=0,
            jobs_enabled=False,
            outbox_enabled=False,
            spool_dir=str(work / "spool"),
        )
    )
    cases = load_set()
    started = time.perf_counter()
    verdicts = run(app.state.inbox, cases)
    seconds = time.perf_counter() - started
    total, good = Counter(v.group for v in verdicts), Counter(v.group for v in verdicts if v.ok)
    print(f"{'group':<14}{'cases':>6}{'sensible':>10}")
    for group in total:
        print(f"{group:<14}{total[group]:>6}{good[group]:>10}   {good[group] / total[group]:.0%}")
    ok = sum(good.values())
    print(f"{'all':<14}{len(verdicts):>6}{ok:>10}   {ok / len(verdicts):.1%}   ({seconds:.1f} s)")
    for v in verdicts:
        if not v.ok or verbose:
            print(
                f"{'ok ' if v.ok else 'BAD'} {v.id}: {v.why}  <- {v.replies[0][:60] if v.replies else ''!r}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main("-v" in sys.argv))
