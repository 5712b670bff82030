"""Scale benchmark of the weekly gaps report: generates N logged questions for one ISO week (plus a
share in the four weeks before, for the trend) in a temporary SQLite database, then times
(1) the baseline of just reading the rows through QueryLogStore.rows and (2) the full report
(analysis + HTML/XLSX/chart per unit), printing seconds and peak RSS (resource.getrusage), and how
well the planted topics were recovered.

    python bench/gaps_scale.py            # 100,000 questions
    python bench/gaps_scale.py --n 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from knowledge.db import make_engine, make_sessionmaker
from knowledge.gaps import GapParams, generate_weekly, parse_week, set_route
from knowledge.models import QueryLog
from knowledge.usage import QueryLogStore

UNITS = [
    "青浦区人力资源和社会保障局",
    "青浦区医疗保障局",
    "青浦区住房保障和房屋管理局",
    "青浦区民政局",
    "青浦区市场监督管理局",
    "青浦区政务公开办公室",
]
PREFIXES = ["", "", "", "请问", "你好，", "您好，请问", "我想问一下", "麻烦问下", "咨询一下，"]
SUFFIXES = ["", "", "？", "?", "。", "呢", "啊，谢谢", "！"]
HOW = ["怎么", "如何", "怎样", "在哪里", "需要什么材料", "有什么条件", "流程是什么", "多久能办好"]
# Planted gaps: (subject, verb, unit) -> variants built from prefixes, question words and suffixes.
PLANTED = [
    ("灵活就业人员社保补贴", "申请", 0),
    ("新生儿医保", "办理", 1),
    ("公租房", "续租", 2),
    ("高龄津贴", "申领", 3),
    ("个体工商户营业执照", "注销", 4),
    ("失业保险金", "领取", 0),
    ("长护险", "申请", 1),
    ("人才公寓", "申请", 2),
    ("残疾人两项补贴", "申请", 3),
    ("食品经营许可证", "延续", 4),
    ("异地就医备案", "办理", 1),
    ("退休金", "调整", 0),
    ("住房公积金", "提取", 2),
    ("临时救助", "申请", 3),
    ("依申请公开", "提交", 5),
    ("社保卡", "补办", 0),
    ("居住证积分", "申请", 2),
    ("低保", "申请", 3),
    ("创业补贴", "申请", 0),
    ("医保门诊报销", "办理", 1),
]
NOISE_WORDS = (
    "停车 绿化 噪音 路灯 井盖 公交 地铁 学区 入学 疫苗 体检 献血 养犬 垃圾 装修 电梯 物业 燃气 供水 供电 "
    "网络 快递 菜场 超市 公园 图书馆 体育馆 游泳 驾照 车牌 违章 户口 护照 签证 结婚 离婚 收养 继承 公证 "
    "律师 仲裁 调解 信访 投诉 举报 税务 发票 退税 社区 志愿者 养老院 托育 幼儿园 课后 暑托 奖学金 助学金 "
    "退役军人 优抚 殡葬 墓地 宗教 文物 旅游 景区 酒店 民宿 餐饮 外卖 消防 安全 应急 防汛 台风 高温 "
    "农田 果树 渔业 河道 水质 空气 扬尘 油烟 噪声 光污染 充电桩 电动车 头盔 共享单车 出租车 网约车 "
    "停车场 加油站 菜价 猪肉 粮油 药店 医院 挂号 门诊 急诊 核酸 口罩 健身 广场舞 宠物 流浪猫 "
    "房租 押金 中介 二手房 契税 房产证 车库 阳台 漏水 空调 暖气 路面 桥梁 隧道 码头 机场 火车票 "
    "公章 印章 商标 专利 版权 广告 招牌 直播 网店 团购 会员卡 预付卡 彩票 典当 拍卖 古镇 "
    "水上 游船 露营 烧烤 钓鱼 烟花 鞭炮 灯会 庙会 马拉松 自行车 篮球 足球 羽毛球 乒乓球"
).split()
QUESTION_TAILS = ["怎么办", "在哪里", "是什么情况", "找谁", "有规定吗", "可以吗", "归谁管", ""]


def _planted_sizes(n_week: int) -> list[int]:
    """Zipf-like sizes summing to about 35% of the week's questions."""
    weights = [1.0 / (i + 1) for i in range(len(PLANTED))]
    total = 0.35 * n_week
    return [max(5, int(total * w / sum(weights))) for w in weights]


def generate(url: str, n: int, week: str, seed: int = 7) -> list[int]:
    rnd = random.Random(seed)
    period = parse_week(week)
    engine = make_engine(url)
    from bot.database import upgrade

    upgrade(engine)
    n_week = n
    n_prior = n // 5
    sizes = _planted_sizes(n_week)
    batch: list[dict[str, object]] = []
    sid = 0

    def flush() -> None:
        if batch:
            with engine.begin() as conn:
                conn.execute(insert(QueryLog), batch)
            batch.clear()

    def add(
        at: dt.datetime,
        text: str,
        outcome: str,
        *,
        score: float | None = None,
        unit: str | None = None,
        session: str | None = None,
        rating: str | None = None,
    ) -> None:
        nonlocal sid
        sid += 1
        batch.append(
            {
                "at": at,
                "channel": rnd.choice(("web", "wechat", "wechat", "telegram")),
                "user_ref": f"u{rnd.randrange(n // 2)}",
                "session_id": session or f"s{sid}",
                "text": text,
                "outcome": outcome,
                "score": score,
                "faq_id": None,
                "unit": unit,
                "rating": rating,
                "ticket_no": None,
            }
        )
        if len(batch) >= 5000:
            flush()

    def planted_text(i: int) -> str:
        subject, verb, _ = PLANTED[i]
        how = rnd.choice(HOW)
        body = f"{subject}{how}{verb}" if rnd.random() < 0.5 else f"{how}{verb}{subject}"
        return rnd.choice(PREFIXES) + body + rnd.choice(SUFFIXES)

    def when(start: dt.datetime, days: int) -> dt.datetime:
        return start + dt.timedelta(seconds=rnd.randrange(days * 86400 - 600))

    produced = 0
    for i, size in enumerate(sizes):
        unit = UNITS[PLANTED[i][2]] if i % 3 else None  # a third of topics need keyword routes / search
        for _ in range(size):
            add(
                when(period.start, 7),
                planted_text(i),
                rnd.choice(("none", "none", "passage", "handoff")),
                unit=unit,
            )
            produced += 1
    # Low-confidence answers followed by a rephrasing in the same session.
    for _ in range(n_week // 50):
        at = when(period.start, 7)
        s = f"r{rnd.randrange(10**9)}"
        add(at, planted_text(0), "clarify", score=0.6, session=s)
        add(at + dt.timedelta(minutes=2), planted_text(0), "none", session=s)
        produced += 2
    # One-off questions (unanswered noise) and answered questions.
    n_noise = n_week // 10
    for _ in range(n_noise):
        words = rnd.sample(NOISE_WORDS, 3)
        add(when(period.start, 7), rnd.choice(PREFIXES) + "".join(words) + rnd.choice(QUESTION_TAILS), "none")
        produced += 1
    answered = [
        "依申请公开多久答复",
        "政府信息公开怎么申请",
        "社保缴费基数是多少",
        "医保报销比例",
        "公积金贷款额度",
    ]
    while produced < n_week:
        add(
            when(period.start, 7),
            rnd.choice(PREFIXES) + rnd.choice(answered),
            "answer",
            score=0.95,
            unit=rnd.choice(UNITS),
            rating=rnd.choice((None, None, "useful")),
        )
        produced += 1
    # Earlier weeks: some questions of the first three planted gaps (the trend), the rest answered.
    for _ in range(n_prior):
        week_no = rnd.randrange(4)
        start = period.start - dt.timedelta(weeks=4 - week_no)
        if rnd.random() < 0.3:
            add(when(start, 7), planted_text(rnd.randrange(3)), "none")
        else:
            add(when(start, 7), rnd.choice(answered), "answer", score=0.95)
    flush()
    engine.dispose()
    return sizes


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """CPU time of this process (user + system): comparable on a busy machine, unlike wall time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="questions logged in the reported week")
    ap.add_argument("--week", default="2026-W47")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/gaps.db"
        t0 = time.perf_counter()
        sizes = generate(url, args.n, args.week)
        t_gen = time.perf_counter() - t0
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        for i, (subject, _, unit_i) in enumerate(PLANTED):
            if i % 3 == 0:  # these topics have no unit in the log: an admin's keyword route places them
                set_route(sessions, keyword=subject, unit=UNITS[unit_i], by="bench")
        period = parse_week(args.week)
        params = GapParams()
        rss0 = peak_rss_mb()
        t0, c0 = time.perf_counter(), cpu_seconds()
        n_rows = sum(
            1
            for _ in QueryLogStore(sessions).rows(
                period.start - dt.timedelta(weeks=params.trend_weeks), period.end + dt.timedelta(minutes=5)
            )
        )
        t_read, c_read = time.perf_counter() - t0, cpu_seconds() - c0
        rss_read = peak_rss_mb()
        t0, c0 = time.perf_counter(), cpu_seconds()
        result = generate_weekly(sessions, out_dir=Path(tmp) / "out", week=args.week, params=params)
        t_report, c_report = time.perf_counter() - t0, cpu_seconds() - c0
        rss_report = peak_rss_mb()
        a = result.analysis
        print(f"generated {args.n} questions in the week (+{args.n // 5} earlier) in {t_gen:.1f} s")
        print(
            f"baseline: read {n_rows} rows: {t_read:6.2f} s wall, {c_read:6.2f} s CPU, "
            f"peak RSS {rss_read:7.1f} MB (before: {rss0:.1f} MB)"
        )
        print(
            f"report:   {len(a.topics)} topics, {len(result.files) * 2} files: {t_report:6.2f} s wall, "
            f"{c_report:6.2f} s CPU, peak RSS {rss_report:7.1f} MB"
        )
        print(f"report / baseline time: {t_report / max(t_read, 1e-9):.1f}x")
        print("planted topics (expected >= planted count; rephrasings add to the first):")
        for i, (subject, _, unit_i) in enumerate(PLANTED):
            found = [t for t in a.topics if subject in t.representative]
            got = found[0] if found else None
            print(
                f"  {subject:<14} planted {sizes[i]:6d}  found "
                f"{(got.count if got else 0):6d}  in {len(found)} topic(s)  -> {got.unit if got else '-'}"
                f"{'' if got and got.unit == UNITS[unit_i] else '  (unit differs: ' + UNITS[unit_i] + ')'}"
            )
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
