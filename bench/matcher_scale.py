"""Matcher scale benchmark: 50,000 synthetic FAQs with 5 phrasings each (250,000 phrasings),
generated from the dev FAQ questions by perturbation (character swaps, filler insertion, homophone
substitution, combining two questions). Prints index build time, search latency p50/p99 on one
core, process RSS, and the rapidfuzz process.extractOne baseline latency on the same store (measured
on a sample of queries) with the ratio. Run: `python bench/matcher_scale.py [n_faqs]`."""

from __future__ import annotations

import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

from knowledge.evaluation import load_faq_jsonl
from knowledge.matcher import IndexEntry, Matcher, Thresholds
from knowledge.text import _char_pinyin, is_cjk, warm_up

DATA = Path(os.environ.get("POLICYBOT_EVAL_DATA", "/work/shared/data"))
FILLERS = ["请问", "你好", "我想咨询一下", "麻烦问下", "那个", "就是", "现在", "请帮我看看"]
N_QUERIES = 2000
N_BASELINE = 20


def rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Perturber:
    def __init__(self, base: list[str], rnd: random.Random) -> None:
        self.rnd = rnd
        self.base = base
        chars = sorted({c for q in base for c in q if is_cjk(c)})
        self.homophones: dict[str, list[str]] = {}
        for c in chars:
            self.homophones.setdefault(_char_pinyin(c), []).append(c)
        self.chars = chars

    def swap(self, s: str) -> str:
        if len(s) < 3:
            return s
        i = self.rnd.randrange(len(s) - 1)
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]

    def filler(self, s: str) -> str:
        i = self.rnd.randrange(len(s) + 1)
        return s[:i] + self.rnd.choice(FILLERS) + s[i:]

    def homophone(self, s: str) -> str:
        idx = [i for i, c in enumerate(s) if len(self.homophones.get(_char_pinyin(c), [])) > 1]
        if not idx:
            return s
        i = self.rnd.choice(idx)
        alt = [c for c in self.homophones[_char_pinyin(s[i])] if c != s[i]]
        return s[:i] + self.rnd.choice(alt) + s[i + 1 :]

    def substitute(self, s: str) -> str:
        if not s:
            return s
        i = self.rnd.randrange(len(s))
        return s[:i] + self.rnd.choice(self.chars) + s[i + 1 :]

    def combine(self) -> str:
        a, b = self.rnd.sample(self.base, 2)
        return a[: max(2, len(a) // 2)] + b[len(b) // 2 :]

    def perturb(self, s: str, n: int) -> str:
        ops = [self.swap, self.filler, self.homophone, self.substitute]
        for _ in range(n):
            s = self.rnd.choice(ops)(s)
        return s


def generate(n_faqs: int, seed: int = 20240601) -> tuple[list[IndexEntry], list[tuple[str, str]]]:
    rnd = random.Random(seed)
    base = [e.question for e in load_faq_jsonl(DATA / "faq.jsonl")]
    base += [s for e in load_faq_jsonl(DATA / "faq.jsonl") for s in e.similar]
    p = Perturber(base, rnd)
    entries: list[IndexEntry] = []
    queries: list[tuple[str, str]] = []
    for i in range(n_faqs):
        standard = p.perturb(p.combine() if rnd.random() < 0.7 else rnd.choice(base), 3)
        similar = tuple(p.perturb(standard, rnd.randint(1, 3)) for _ in range(4))
        fid = f"s{i:06d}"
        entries.append(IndexEntry(fid, standard, similar))
    for _ in range(N_QUERIES):
        e = rnd.choice(entries)
        queries.append((p.perturb(e.question, 2), e.faq_id))
    return entries, queries


def main() -> int:
    n_faqs = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}) if hasattr(os, "sched_setaffinity") else None
    warm_up()
    t0 = time.perf_counter()
    entries, queries = generate(n_faqs)
    gen_s = time.perf_counter() - t0
    rss_before = rss_mb()
    m = Matcher()
    t0, c0 = time.perf_counter(), time.process_time()
    m.build(entries)
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_after = rss_mb()
    th = Thresholds()
    lat: list[float] = []
    cpu: list[float] = []
    top1 = 0
    for q, exp in queries:
        t, c = time.perf_counter(), time.thread_time()
        hits = m.search(q, 5)
        m.decide(hits, th)
        lat.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
        top1 += int(bool(hits) and hits[0].faq_id == exp)
    lat.sort()
    cpu.sort()
    p50 = statistics.median(lat)
    p99 = lat[int(0.99 * (len(lat) - 1))]
    cpu_p50 = statistics.median(cpu)
    cpu_p99 = cpu[int(0.99 * (len(cpu) - 1))]

    from rapidfuzz import process

    texts = [t for e in entries for t in (e.question, *e.similar)]
    ids = [e.faq_id for e in entries for _ in range(1 + len(e.similar))]
    bl: list[float] = []
    b_top1 = 0
    for q, exp in queries[:N_BASELINE]:
        t = time.perf_counter()
        best = process.extractOne(q, texts)
        bl.append((time.perf_counter() - t) * 1000)
        b_top1 += int(best is not None and ids[best[2]] == exp)
    b_med = statistics.median(bl)

    # Automatic thresholds on the big index (what the service does after a change, in the background).
    from knowledge.calibration import choose, collect

    t, c = time.perf_counter(), time.process_time()
    report = choose(collect(m))
    cal_s, cal_cpu = time.perf_counter() - t, time.process_time() - c
    rss_cal = rss_mb()

    # Incremental update cost on the big index.
    t = time.perf_counter()
    for e in entries[:100]:
        m.upsert(IndexEntry(e.faq_id, e.question + "呢", e.similar))
    upsert_ms = (time.perf_counter() - t) * 1000 / 100

    print(f"store: {len(entries)} FAQs, {m.phrasing_count} phrasings indexed (generated in {gen_s:.1f} s)")
    print(
        f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(wall-clock figures include waiting for the CPU when the machine is shared)"
    )
    print(
        f"index build: {build_s:.1f} s wall, {build_cpu:.1f} s CPU (goal < 60 s); "
        f"upsert: {upsert_ms:.2f} ms per entry"
    )
    print(
        f"search+decide over {len(queries)} perturbed queries, one core: p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms wall; p50 {cpu_p50:.2f} ms, p99 {cpu_p99:.2f} ms CPU (goal < 10 ms); "
        f"top-1 {top1 / len(queries):.3f}"
    )
    print(f"process RSS: {rss_after:.0f} MB after build ({rss_before:.0f} MB before; goal < 1024 MB)")
    print(
        f"calibration (collect + choose, {report.n_held_out} held out, {report.n_negatives} removed): "
        f"{cal_s:.1f} s wall, {cal_cpu:.1f} s CPU, RSS {rss_cal:.0f} MB after; chosen {report.thresholds}"
    )
    print(
        f"baseline rapidfuzz process.extractOne over all {len(texts)} phrasings "
        f"({N_BASELINE} queries): median {b_med:.1f} ms, top-1 {b_top1 / N_BASELINE:.2f}"
    )
    print(f"latency ratio baseline / matcher (median): {b_med / p50:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
