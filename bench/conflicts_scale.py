"""Speed of the publish guard (knowledge/faqs/conflicts.py) on a 2,000-FAQ store: 2,000 synthetic
FAQs with 5 phrasings each (bench/matcher_scale.py's generator) in a SQLite file, then through the
guarded store: the guard's first index build, 20 edits that add a phrasing to a random FAQ, 20 new
FAQs made of another FAQ's perturbed wording (the corrupting kind: most are refused), and one
synonym set. Prints wall and CPU time per check. Run: `python bench/conflicts_scale.py [n_faqs]`.
"""

from __future__ import annotations

import functools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from matcher_scale import Perturber, generate  # noqa: E402

from bot.database import upgrade  # noqa: E402
from knowledge.db import make_engine, make_sessionmaker  # noqa: E402
from knowledge.faqs import FaqStore  # noqa: E402
from knowledge.faqs.conflicts import ConflictGuard, PhrasingConflicts  # noqa: E402
from knowledge.text import warm_up  # noqa: E402


def timed(fn):  # type: ignore[no-untyped-def]
    t, c = time.perf_counter(), time.process_time()
    try:
        fn()
        refused = False
    except PhrasingConflicts:
        refused = True
    return (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000, refused


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    warm_up()
    entries, _ = generate(n)
    rnd = random.Random(7)
    p = Perturber([e.question for e in entries], rnd)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/scale.db")
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        path = Path(tmp) / "faqs.jsonl"
        path.write_text(
            "\n".join(
                json.dumps(
                    {"id": e.faq_id, "question": e.question, "similar": list(e.similar), "answer": "答"}
                )
                for e in entries
            ),
            encoding="utf-8",
        )
        FaqStore(sessions).import_file(path, by="bench")
        store = FaqStore(sessions, guard=ConflictGuard())
        build_ms, build_cpu, _ = timed(lambda: store.guard.check(store, {}))  # type: ignore[union-attr]
        first_ms, _, _ = timed(
            lambda: store.check_change(entries[0].faq_id, similar=[*entries[0].similar, "x"])
        )
        edits, news = [], []
        for _ in range(rounds):
            e = rnd.choice(entries)
            similar = [*store.require(e.faq_id).similar, p.perturb(e.question, 2)]
            edits.append(timed(functools.partial(store.edit, e.faq_id, by="b", similar=similar)))
        for i in range(rounds):
            other = rnd.choice(entries)
            add = functools.partial(
                store.add,
                by="b",
                id=f"new-{i}",
                question=f"新问题{i}",
                answer="答",
                similar=[p.perturb(other.question, 1)],
            )
            news.append(timed(add))
        syn_ms, syn_cpu, syn_refused = timed(lambda: store.add_synonyms(["申请", "申报"], by="b"))
        engine.dispose()

    def line(label: str, rows: list[tuple[float, float, bool]]) -> None:
        wall = sorted(r[0] for r in rows)
        cpu = sorted(r[1] for r in rows)
        refused = sum(r[2] for r in rows)
        print(
            f"{label:34} wall p50 {statistics.median(wall):7.1f} ms  max {wall[-1]:7.1f} ms  "
            f"cpu p50 {statistics.median(cpu):7.1f} ms  refused {refused}/{len(rows)}"
        )

    print(f"store: {n} FAQs, {sum(1 + len(e.similar) for e in entries)} phrasings")
    print(f"guard index build (first check)    {build_ms:7.0f} ms wall, {build_cpu:7.0f} ms cpu")
    print(f"check_change preview               {first_ms:7.1f} ms")
    line("edit: add a phrasing", edits)
    line("add: another FAQ's wording", news)
    print(
        f"synonym set 申请=申报                {syn_ms:7.0f} ms wall, {syn_cpu:7.0f} ms cpu, refused {syn_refused}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
