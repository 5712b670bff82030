"""The `policybot` command line: serve, ask, kb ..., policy ..., tickets ..., holidays ..., users ....

Every command reads the one Settings object, migrates the database to the latest schema (so a fresh
SQLite file just works) and prints Chinese messages for domain errors instead of stack traces.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings, get_settings, settings_error_text
from knowledge.errors import PolicybotError

Handler = Callable[[argparse.Namespace, "Context"], int]


class Context:
    """Lazily built stores for one CLI invocation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: sessionmaker[Session] | None = None
        self._kb: Any = None

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            from bot.database import upgrade
            from knowledge.db import make_engine, make_sessionmaker

            engine = make_engine(self.settings.database_url)
            upgrade(engine)
            self._sessions = make_sessionmaker(engine)
        return self._sessions

    @property
    def kb(self) -> Any:
        if self._kb is None:
            from bot.services import build_knowledge_base

            self._kb = build_knowledge_base(self.settings, self.sessions)
        return self._kb

    @property
    def faqs(self) -> Any:
        from knowledge.store import FaqStore

        return FaqStore(self.sessions)

    @property
    def policies(self) -> Any:
        from knowledge.policies import PolicyStore

        return PolicyStore(self.sessions)

    @property
    def tickets(self) -> Any:
        from bot.services import build_ticket_service

        return build_ticket_service(self.settings, self.sessions)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _date(s: str | None) -> dt.date | None:
    if not s:
        return None
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise PolicybotError(f"日期格式应为 YYYY-MM-DD：{s}", f"bad date {s!r}") from None


# --- serve ----------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace, ctx: Context) -> int:
    import os

    import uvicorn

    if args.demo:
        os.environ["POLICYBOT_DEMO"] = "1"
        _load_demo_if_empty(ctx)
    else:
        _ = ctx.sessions  # migrate once before the workers start
    print(f"policybot 服务启动：http://{args.host}:{args.port}/ （接口文档 /docs）", flush=True)
    uvicorn.run(
        "bot.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


def _load_demo_if_empty(ctx: Context) -> None:
    if ctx.faqs.count() == 0:
        print(_load_demo(ctx).summary())


def _load_demo(ctx: Context) -> Any:
    from knowledge.demo import load_demo

    return load_demo(ctx.faqs, ctx.policies)


# --- ask ------------------------------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace, ctx: Context) -> int:
    result = ctx.kb.ask(args.question)
    if args.json:
        _print_json(result.as_dict())
        return 0
    print(f"决定：{result.decision}（得分 {result.score:.3f}）")
    if result.decision == "answer":
        print(result.answer)
        for s in result.sources:
            print(f"来源：{s.citation()}")
    elif result.decision == "clarify":
        print("您想问的是不是：")
        for i, h in enumerate(result.hits, 1):
            print(f"  {i}. {h.question}（{h.score:.3f}）")
    elif result.decision == "passage":
        print("知识库暂无标准答复，相关政策原文：")
        for p in result.passages:
            print(f"- {p.citation()}：{p.text[:200]}")
    else:
        print("暂无相关答复。")
    for f in result.flags:
        print(f"注意：{f}")
    return 0


# --- kb -------------------------------------------------------------------------------------------
def _faq_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "question": r.question,
        "similar": list(r.similar),
        "answer": r.answer,
        "tags": list(r.tags),
        "unit": r.unit,
        "source_policy": r.source_policy,
        "source_article": r.source_article,
        "valid_from": r.valid_from,
        "valid_to": r.valid_to,
        "status": r.status,
        "seq": r.seq,
        "updated_at": r.updated_at,
        "updated_by": r.updated_by,
    }


def cmd_kb_import(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.faqs.import_file(
        Path(args.file), fmt=args.format, on_duplicate=args.on_duplicate, dry_run=args.dry_run, by=args.by
    )
    print(report.summary())
    for w in report.warnings:
        print(f"提示：{w}")
    return 0


def cmd_kb_export(args: argparse.Namespace, ctx: Context) -> int:
    n = ctx.faqs.export_file(Path(args.file), fmt=args.format, status=args.status)
    print(f"已导出 {n} 条到 {args.file}")
    return 0


def cmd_kb_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = ctx.faqs.list(status=args.status, tag=args.tag, unit=args.unit, text=args.search, limit=args.limit)
    if args.json:
        _print_json([_faq_dict(r) for r in rows])
        return 0
    for r in rows:
        print(f"{r.id}\t[{r.status}]\t{r.question}\t{r.unit or ''}")
    print(f"共 {len(rows)} 条")
    return 0


def cmd_kb_show(args: argparse.Namespace, ctx: Context) -> int:
    r = ctx.faqs.require(args.id)
    d = _faq_dict(r)
    if args.json:
        _print_json(d)
        return 0
    for k, v in d.items():
        if isinstance(v, list):
            v = "｜".join(v)
        print(f"{k}: {v if v is not None else ''}")
    return 0


def _faq_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("question", "answer", "unit", "source_policy", "source_article", "status"):
        v = getattr(args, name, None)
        if v is not None:
            fields[name] = v
    if args.similar is not None:
        fields["similar"] = tuple(args.similar)
    if args.tag is not None:
        fields["tags"] = tuple(args.tag)
    for name in ("valid_from", "valid_to"):
        v = getattr(args, name, None)
        if v is not None:
            fields[name] = _date(v) if v else None
    return fields


def cmd_kb_add(args: argparse.Namespace, ctx: Context) -> int:
    fields = _faq_fields(args)
    r = ctx.faqs.add(by=args.by, id=args.id, **fields)
    print(f"已新增 {r.id}")
    return 0


def cmd_kb_edit(args: argparse.Namespace, ctx: Context) -> int:
    fields = _faq_fields(args)
    if args.add_similar:
        cur = ctx.faqs.require(args.id)
        fields["similar"] = tuple(fields.get("similar", cur.similar)) + tuple(args.add_similar)
    if not fields:
        raise PolicybotError("没有要修改的内容", "no fields given")
    r = ctx.faqs.edit(args.id, by=args.by, **fields)
    print(f"已修改 {r.id}（版本戳 {r.seq}）")
    return 0


def cmd_kb_retire(args: argparse.Namespace, ctx: Context) -> int:
    r = ctx.faqs.retire(args.id, by=args.by, reason=args.reason or "")
    print(f"已下线 {r.id}")
    return 0


def cmd_kb_history(args: argparse.Namespace, ctx: Context) -> int:
    versions = ctx.faqs.history(args.id)
    if args.json:
        _print_json([v.__dict__ for v in versions])
        return 0
    for v in versions:
        print(f"v{v.version_no}\t{v.at:%Y-%m-%d %H:%M}\t{v.by}\t{v.action}\t{', '.join(v.changes)}")
    return 0


def cmd_kb_demo(args: argparse.Namespace, ctx: Context) -> int:
    print(_load_demo(ctx).summary())
    return 0


def cmd_kb_synonyms(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "add":
        if len(args.terms) < 2:
            raise PolicybotError("同义词组至少需要两个词", "synonym set needs two terms")
        set_id = ctx.faqs.add_synonyms(args.terms, by=args.by)
        print(f"已新增同义词组 {set_id}")
    elif args.action == "delete":
        ctx.faqs.delete_synonyms(int(args.terms[0]), by=args.by)
        print("已删除")
    else:
        for row in ctx.faqs.synonym_sets():
            print(f"{row[0]}\t{' = '.join(row[1])}")
    return 0


def cmd_kb_calibrate(args: argparse.Namespace, ctx: Context) -> int:
    import dataclasses

    from knowledge.matcher import calibrate

    report = calibrate(ctx.faqs.index_entries(), ctx.kb.text)
    if args.json:
        _print_json(dataclasses.asdict(report))
        return 0
    t = report.thresholds
    print("建议阈值（设置为环境变量即可生效）：")
    print(f"  POLICYBOT_ANSWER_THRESHOLD={t.answer:.3f}")
    print(f"  POLICYBOT_ANSWER_MARGIN={t.margin:.3f}")
    print(f"  POLICYBOT_CLARIFY_THRESHOLD={t.clarify:.3f}")
    print(f"预计直接答复率（留出的相似问法）：{report.expected_answer_rate:.1%}（{report.n_held_out} 条）")
    print(f"预计拒答率（库外问题的近似）：{report.expected_decline_rate:.1%}（{report.n_negatives} 条）")
    for note in report.notes:
        print(f"  说明：{note}")
    return 0


def cmd_kb_eval(args: argparse.Namespace, ctx: Context) -> int:
    """Load the FAQ file into a temporary store, run every query with the default thresholds."""
    from bot.database import upgrade
    from knowledge.db import make_engine, make_sessionmaker
    from knowledge.evaluation import evaluate, load_queries_jsonl
    from knowledge.matcher import Thresholds
    from knowledge.store import FaqStore

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/eval.db")
        upgrade(engine)
        store = FaqStore(make_sessionmaker(engine))
        store.import_file(Path(args.faq), on_duplicate="error", by="eval", allow_empty_answer=True)
        entries = store.index_entries()
        engine.dispose()
    queries = load_queries_jsonl(Path(args.queries))
    s = ctx.settings
    thresholds = Thresholds(answer=s.answer_threshold, margin=s.answer_margin, clarify=s.clarify_threshold)
    result = evaluate(entries, queries, thresholds)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"查询数 n={result['n']}")
    print(f"top-1 准确率      {result['top1']:.3f}")
    print(f"top-3 召回率      {result['top3']:.3f}")
    print(f"范围外拒答率      {result['oos_reject']:.3f}")
    print(f"错答率            {result['false_answer']:.3f}")
    print(f"延迟 p50 / p99    {result['p50_ms']:.2f} / {result['p99_ms']:.2f} ms")
    return 0


# --- policy ---------------------------------------------------------------------------------------
def cmd_policy_import(args: argparse.Namespace, ctx: Context) -> int:
    meta = {
        "id": args.id,
        "title": args.title,
        "doc_no": args.doc_no,
        "issuer": args.issuer,
        "issued_on": _date(args.date),
        "status": args.status,
        "url": args.url,
    }
    r = ctx.policies.import_file(Path(args.file), **{k: v for k, v in meta.items() if v is not None})
    print(f"已导入 {r.id}：《{r.title}》{r.doc_no or ''}，{r.passage_count} 个条款段落，状态 {r.status}")
    return 0


def cmd_policy_list(args: argparse.Namespace, ctx: Context) -> int:
    for r in ctx.policies.list():
        print(f"{r.id}\t{r.status}\t{r.doc_no or '-'}\t{r.issued_on or '-'}\t{r.title}")
    return 0


def cmd_policy_status(args: argparse.Namespace, ctx: Context) -> int:
    r = ctx.policies.set_status(args.id, args.status, by=args.by)
    print(f"{r.id} 状态已改为 {r.status}")
    return 0


# --- tickets --------------------------------------------------------------------------------------
# --- db -------------------------------------------------------------------------------------------
def cmd_db(args: argparse.Namespace, ctx: Context) -> int:
    """Schema revisions (Alembic): current / history / upgrade / downgrade REV (run with the NEW version)."""
    from alembic import command

    from bot.database import alembic_config
    from knowledge.db import make_engine

    cfg = alembic_config()
    if args.action == "history":
        command.history(cfg)
        return 0
    engine = make_engine(ctx.settings.database_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if args.action == "current":
            command.current(cfg)
        elif args.action == "upgrade":
            command.upgrade(cfg, args.revision or "head")
        else:
            if not args.revision:
                raise PolicybotError(
                    "请指定要回退到的版本，例如：policybot db downgrade 0001", "downgrade needs REV"
                )
            command.downgrade(cfg, args.revision)
    engine.dispose()
    print("完成")
    return 0


def cmd_tickets_list(args: argparse.Namespace, ctx: Context) -> int:
    from handoff.privacy import mask

    rows = ctx.tickets.list(status=args.status, limit=args.limit)
    if args.json:
        _print_json(
            [
                {
                    "no": t.no,
                    "status": t.status,
                    "department": t.department,
                    "due_date": t.due_date,
                    "question": mask(t.question),
                    "contact_name": t.contact_name,
                    "contact_phone": mask(t.contact_phone) if t.contact_phone else None,
                    "channel": t.channel,
                    "created_at": t.created_at,
                }
                for t in rows
            ]
        )
        return 0
    print("编号\t状态\t承办部门\t办理期限\t联系电话\t问题")
    for t in rows:
        phone = mask(t.contact_phone) if t.contact_phone else "-"
        print(f"{t.no}\t{t.status}\t{t.department}\t{t.due_date}\t{phone}\t{mask(t.question)[:60]}")
    print(f"共 {len(rows)} 条")
    return 0


def cmd_tickets_show(args: argparse.Namespace, ctx: Context) -> int:
    from handoff.privacy import mask

    t = ctx.tickets.get(args.no)
    print(f"编号：{t.no}\n状态：{t.status}\n承办部门：{t.department}\n办理期限：{t.due_date}")
    print(f"渠道：{t.channel}\n问题：{mask(t.question)}\n答复：{t.reply or '（尚未答复）'}")
    return 0


def cmd_deliveries_list(args: argparse.Namespace, ctx: Context) -> int:
    from bot.services import build_outbox

    rows = build_outbox(ctx.settings, ctx.sessions).rows(status=args.status, limit=args.limit)
    if args.json:
        _print_json([d.as_dict() for d in rows])
        return 0
    labels = {"pending": "待发送", "sent": "已发送", "failed": "失败", "impossible": "无法送达"}
    print("编号\t类型\t渠道\t留言编号\t状态\t尝试次数\t下次尝试\t错误")
    for d in rows:
        nxt = d.next_at.strftime("%Y-%m-%d %H:%M:%S") if d.status == "pending" else "-"
        print(
            f"{d.id}\t{d.kind}\t{d.channel}\t{d.data.get('ticket_no') or '-'}\t{labels.get(d.status, d.status)}"
            f"\t{d.attempts}\t{nxt}\t{(d.last_error or '-')[:80]}"
        )
    print(f"共 {len(rows)} 条")
    return 0


# --- holidays -------------------------------------------------------------------------------------
def cmd_holidays_import(args: argparse.Namespace, ctx: Context) -> int:
    from handoff.sla import WorkCalendar
    from knowledge.text import decode_text_bytes

    text = decode_text_bytes(Path(args.file).read_bytes())
    if text is None:
        raise PolicybotError("文件编码无法识别，请保存为 UTF-8 或 GB18030 文本。", "holiday file encoding")
    cal = WorkCalendar(ctx.sessions)
    if args.file.lower().endswith(".csv"):
        result = cal.import_csv(text, by=args.by)
    else:
        result = cal.import_notice(text, year=args.year, by=args.by)
    years = "、".join(str(y) for y in result.years)
    print(f"已导入 {years} 年节假日安排：放假 {len(result.holidays)} 天，调休上班 {len(result.workdays)} 天")
    return 0


def cmd_holidays_list(args: argparse.Namespace, ctx: Context) -> int:
    from handoff.sla import WorkCalendar

    cal = WorkCalendar(ctx.sessions)
    labels = {"holiday": "放假", "workday": "上班"}
    rows = cal.list_days(args.year)
    for row in rows:
        print(f"{row.day}\t{labels.get(row.kind, row.kind)}\t{row.name}")
    if not rows:
        print(f"节假日表中没有 {args.year} 年的记录。")
    warning = cal.year_warning(args.year)
    if warning:
        print(f"注意：{warning}")
    return 0


def cmd_report_weekly(args: argparse.Namespace, ctx: Context) -> int:
    from bot.reporting import generate, require_mail, send_reports
    from knowledge.gaps import GapParams, resolve_period
    from knowledge.models import utcnow

    smtp = require_mail(ctx.settings) if args.email else None  # refuse before any work
    params = GapParams(
        low_score=args.low_score,
        rephrase_minutes=args.rephrase_minutes,
        min_topic_size=args.min_topic_size,
    )
    now = utcnow()
    period = resolve_period(args.week, now)
    result = generate(
        ctx.sessions, ctx.kb, out_dir=args.out, week=args.week, unit=args.unit, params=params, now=now
    )
    a = result.analysis
    print(
        f"统计周期：{period.describe()}（{period.label}）；提问 {a.total_questions} 条，"
        f"列出主题 {len(a.topics)} 个，建议问答 {len(a.drafts)} 条"
    )
    for f in result.files:
        print(f"{f.unit or '全部单位总览'}\t主题 {f.topics}\t未解答 {f.unanswered}\t{f.html}\t{f.xlsx}")
    if smtp is not None:
        mail = send_reports(result, smtp, ctx.settings.report_emails)
        for unit, to in mail.sent:
            print(f"已发送：{unit} -> {', '.join(to)}")
        for unit, error in mail.failed:
            print(f"发送失败：{unit}：{error}", file=sys.stderr)
        for unit in mail.without_recipients:
            print(f"未配置收件人：{unit}（POLICYBOT_REPORT_EMAILS）", file=sys.stderr)
        if mail.failed:
            return 1
    return 0


def cmd_report_route(args: argparse.Namespace, ctx: Context) -> int:
    from knowledge.gaps import delete_route, list_routes, set_route

    if args.action == "add":
        if not args.keyword or not args.unit:
            raise PolicybotError(
                "用法：policybot report route add 关键词 单位", "route add needs keyword and unit"
            )
        r = set_route(ctx.sessions, keyword=args.keyword, unit=args.unit, by=args.by)
        print(f"已设置：含“{r.keyword}”的主题归 {r.unit}")
    elif args.action == "delete":
        if not args.keyword:
            raise PolicybotError("用法：policybot report route delete 关键词", "route delete needs a keyword")
        delete_route(ctx.sessions, keyword=args.keyword)
        print(f"已删除关键词“{args.keyword.strip()}”的路由")
    else:
        routes = list_routes(ctx.sessions)
        if args.json:
            _print_json([r.__dict__ for r in routes])
            return 0
        for r in routes:
            print(f"{r.keyword}\t{r.unit}\t{r.updated_by}\t{r.updated_at:%Y-%m-%d %H:%M}")
        print(f"共 {len(routes)} 条")
    return 0


# --- telegram -------------------------------------------------------------------------------------
def cmd_telegram(args: argparse.Namespace, ctx: Context) -> int:
    """poll: development mode (long polling, deletes the webhook); set-webhook URL / delete-webhook."""
    if not ctx.settings.telegram_token:
        raise PolicybotError("请先设置 POLICYBOT_TELEGRAM_TOKEN", "telegram token not configured")
    from bot.app import create_app

    channel = create_app(ctx.settings).state.channels["telegram"]
    if args.action == "poll":
        print("Telegram 轮询模式已启动（Ctrl+C 退出）", flush=True)
        channel.run_polling()
    elif args.action == "set-webhook":
        if not args.url or not args.url.startswith("https://"):
            raise PolicybotError(
                "请用 --url 指定 https 开头的 webhook 地址，如 https://example.gov.cn/telegram/webhook",
                "webhook url missing or not https",
            )
        try:
            channel.set_webhook(args.url)
        except ValueError as exc:
            raise PolicybotError("请先设置 POLICYBOT_TELEGRAM_WEBHOOK_SECRET", str(exc)) from None
        print(f"已设置 webhook：{args.url}")
    else:
        channel.delete_webhook()
        print("已删除 webhook")
    channel.close()
    return 0


# --- privacy (PIPL) --------------------------------------------------------------------------------
def _privacy_subject(args: argparse.Namespace, ctx: Context) -> tuple[Any, str]:
    from bot.app import shared_secret
    from bot.privacy import resolve

    subject = resolve(ctx.sessions, phone=args.phone, ticket=args.ticket, user=args.user_ref)
    return subject, shared_secret(ctx.settings, ctx.sessions)


def cmd_privacy_export(args: argparse.Namespace, ctx: Context) -> int:
    """A citizen's data as JSON (contact data in clear: handle the file as personal data)."""
    import os

    from bot.privacy import export_data

    subject, secret = _privacy_subject(args, ctx)
    data = export_data(ctx.sessions, secret, subject, by=args.by)
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(
            f"已导出：留言 {len(data['tickets'])} 条，提问记录 {len(data['query_log'])} 条，"
            f"会话 {len(data['chat_sessions'])} 个 -> {args.out}（含个人信息，请妥善保管）",
            file=sys.stderr,
        )
    else:
        print(text)
    return 0


def cmd_privacy_erase(args: argparse.Namespace, ctx: Context) -> int:
    """Erase or anonymise a citizen's data (asks for confirmation unless --yes)."""
    from bot.privacy import erase_data, preview

    subject, secret = _privacy_subject(args, ctx)
    counts = preview(ctx.sessions, secret, subject)
    if counts.empty:
        print("未找到与该请求相关的个人信息，无需删除。")
        return 0
    print(f"将删除或匿名化：{counts.describe()}")
    if not args.yes:
        try:
            answer = input("确认删除？此操作不可撤销。输入 yes 继续：")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("yes", "y", "是"):
            raise PolicybotError(
                "已取消，未删除任何数据（非交互执行请加 --yes）", "privacy erase not confirmed"
            )
    done = erase_data(ctx.sessions, secret, subject, by=args.by)
    print(f"已删除：{done.describe()}")
    return 0


def cmd_privacy_purge(args: argparse.Namespace, ctx: Context) -> int:
    """Run the retention job once now (the service runs it daily)."""
    from bot.privacy import run_retention

    report = run_retention(ctx.settings, ctx.sessions)
    if args.json:
        _print_json(report.__dict__)
    else:
        print(report.describe())
    return 0


# --- parser ---------------------------------------------------------------------------------------
def _faq_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--question", required=required, help="标准问题")
    p.add_argument("--answer", required=required, help="答案")
    p.add_argument("--similar", nargs="*", help="相似问法（可多个）")
    p.add_argument("--tag", nargs="*", help="政策标签（可多个）")
    p.add_argument("--unit", help="制文单位")
    p.add_argument("--source-policy", dest="source_policy", help="来源文件（文号或政策编号）")
    p.add_argument("--source-article", dest="source_article", help="来源条款，如 二(二)")
    p.add_argument("--valid-from", dest="valid_from", help="生效日期 YYYY-MM-DD")
    p.add_argument("--valid-to", dest="valid_to", help="失效日期 YYYY-MM-DD（空字符串表示清除）")
    p.add_argument("--status", choices=["draft", "published", "retired"])


def build_parser() -> argparse.ArgumentParser:
    from handoff.console.cli import add_users_commands, cmd_tickets_reply

    parser = argparse.ArgumentParser(prog="policybot", description="政策咨询机器人 policybot")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="启动服务")
    p.add_argument("--demo", action="store_true", help="空库时载入演示知识库，并在 / 提供演示页面")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ask", help="提问（与对话相同的决策）")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    kb = sub.add_parser("kb", help="知识库管理").add_subparsers(dest="kb_command", required=True)
    p = kb.add_parser("import", help="导入 xlsx / csv / jsonl（全部成功或全部不写入）")
    p.add_argument("file")
    p.add_argument("--format", choices=["xlsx", "csv", "jsonl"])
    p.add_argument(
        "--on-duplicate", dest="on_duplicate", choices=["update", "skip", "error"], default="update"
    )
    p.add_argument("--dry-run", dest="dry_run", action="store_true")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_kb_import)
    p = kb.add_parser("export", help="导出 xlsx / csv / jsonl")
    p.add_argument("file")
    p.add_argument("--format", choices=["xlsx", "csv", "jsonl"])
    p.add_argument("--status", choices=["draft", "published", "retired"])
    p.set_defaults(func=cmd_kb_export)
    p = kb.add_parser("list", help="列出问答")
    p.add_argument("--status", choices=["draft", "published", "retired"])
    p.add_argument("--tag")
    p.add_argument("--unit")
    p.add_argument("--search")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_list)
    p = kb.add_parser("show", help="查看一条问答")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_show)
    p = kb.add_parser("add", help="新增问答")
    p.add_argument("--id")
    _faq_options(p, required=True)
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_kb_add)
    p = kb.add_parser("edit", help="修改问答（保留版本）")
    p.add_argument("id")
    _faq_options(p, required=False)
    p.add_argument("--add-similar", dest="add_similar", nargs="*")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_kb_edit)
    p = kb.add_parser("retire", help="下线问答")
    p.add_argument("id")
    p.add_argument("--reason")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_kb_retire)
    p = kb.add_parser("history", help="修改历史")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_history)
    p = kb.add_parser("synonyms", help="同义词组：list | add 词1 词2 ... | delete 编号")
    p.add_argument("action", choices=["list", "add", "delete"])
    p.add_argument("terms", nargs="*")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_kb_synonyms)
    p = kb.add_parser("demo", help="载入演示知识库（五份政策文件及问答）")
    p.set_defaults(func=cmd_kb_demo)
    p = kb.add_parser("calibrate", help="用本库的相似问法标定阈值")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_calibrate)
    p = kb.add_parser("eval", help="评测匹配效果（临时库，默认阈值）")
    p.add_argument("--faq", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_eval)

    pol = sub.add_parser("policy", help="政策文件").add_subparsers(dest="policy_command", required=True)
    p = pol.add_parser("import", help="导入政策文本（txt / md）")
    p.add_argument("file")
    p.add_argument("--id")
    p.add_argument("--title")
    p.add_argument("--doc-no", dest="doc_no", help="文号")
    p.add_argument("--issuer", help="发文机关")
    p.add_argument("--date", help="成文日期 YYYY-MM-DD")
    p.add_argument("--status", choices=["有效", "已修订", "失效", "废止"])
    p.add_argument("--url")
    p.set_defaults(func=cmd_policy_import)
    p = pol.add_parser("list")
    p.set_defaults(func=cmd_policy_list)
    p = pol.add_parser("status", help="标注文件状态（有效 / 已修订 / 失效 / 废止）")
    p.add_argument("id")
    p.add_argument("status", choices=["有效", "已修订", "失效", "废止"])
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_policy_status)

    p = sub.add_parser(
        "db", help="数据库结构版本（Alembic）：current | history | upgrade [REV] | downgrade REV"
    )
    p.add_argument("action", choices=["current", "history", "upgrade", "downgrade"])
    p.add_argument("revision", nargs="?")
    p.set_defaults(func=cmd_db)

    tk = sub.add_parser("tickets", help="政策留言").add_subparsers(dest="tickets_command", required=True)
    p = tk.add_parser("list")
    p.add_argument("--status", choices=["待受理", "办理中", "已答复", "已办结"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tickets_list)
    p = tk.add_parser("reply", help="以后台账号答复留言（权限、审计与工作台相同；答复经投递队列推送）")
    p.add_argument("no", help="留言编号")
    p.add_argument("text", help="答复内容（- 表示从标准输入读取）")
    p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="办理人员或督办的后台账号")
    p.set_defaults(func=cmd_tickets_reply)
    dl = sub.add_parser("deliveries", help="投递队列（答复等稍后发给留言人的消息）").add_subparsers(
        dest="deliveries_command", required=True
    )
    p = dl.add_parser("list", help="列出投递记录")
    p.add_argument("--status", choices=["pending", "sent", "failed", "impossible"])
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deliveries_list)
    p = tk.add_parser("show")
    p.add_argument("no")
    p.set_defaults(func=cmd_tickets_show)

    p = sub.add_parser(
        "telegram", help="Telegram 机器人：poll（开发用轮询）| set-webhook --url URL | delete-webhook"
    )
    p.add_argument("action", choices=["poll", "set-webhook", "delete-webhook"])
    p.add_argument("--url", help="set-webhook 的 https 地址（指向 /telegram/webhook）")
    p.set_defaults(func=cmd_telegram)

    hd = sub.add_parser("holidays", help="法定节假日与调休").add_subparsers(
        dest="holidays_command", required=True
    )
    p = hd.add_parser("import", help="导入国务院办公厅节假日安排通知（文本）或 CSV（date,kind,name）")
    p.add_argument("file")
    p.add_argument("--year", type=int)
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_holidays_import)
    p = hd.add_parser("list")
    p.add_argument("year", type=int)
    p.set_defaults(func=cmd_holidays_list)

    rp = sub.add_parser("report", help="未解答问题周报").add_subparsers(dest="report_command", required=True)
    p = rp.add_parser("weekly", help="生成各制文单位的周报（HTML + XLSX）及总览")
    p.add_argument("--week", help="ISO 周，如 2026-W47（默认：截至现在的 7 天）")
    p.add_argument("--unit", help="只生成该单位的报告")
    p.add_argument("--out", default="reports", help="输出目录（默认 reports）")
    p.add_argument(
        "--low-score",
        dest="low_score",
        type=float,
        default=0.9,
        help="低于此得分的答复，若同一会话随后换说法再问，计为未解答（默认 0.9）",
    )
    p.add_argument(
        "--rephrase-minutes",
        dest="rephrase_minutes",
        type=float,
        default=5.0,
        help="换说法再问的时间窗口，分钟（默认 5）",
    )
    p.add_argument(
        "--min-topic-size",
        dest="min_topic_size",
        type=int,
        default=2,
        help="列为主题的最少问题数（含留言的主题总会列出；默认 2）",
    )
    p.add_argument(
        "--email",
        action="store_true",
        help="生成后按 POLICYBOT_REPORT_EMAILS 将各单位报告发送到其邮箱（需配置 POLICYBOT_SMTP_HOST）",
    )
    p.set_defaults(func=cmd_report_weekly)
    p = rp.add_parser("route", help="主题归属关键词：list | add 关键词 单位 | delete 关键词")
    p.add_argument("action", choices=["list", "add", "delete"])
    p.add_argument("keyword", nargs="?")
    p.add_argument("unit", nargs="?")
    p.add_argument("--by", default="cli")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report_route)

    pv = sub.add_parser("privacy", help="个人信息：导出 / 删除（依申请）/ 按保存期限清理").add_subparsers(
        dest="privacy_command", required=True
    )
    for name, func, help_text in (
        ("export", cmd_privacy_export, "导出某人的全部个人信息（JSON）"),
        ("erase", cmd_privacy_erase, "删除或匿名化某人的个人信息（依申请）"),
    ):
        p = pv.add_parser(name, help=help_text)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--phone", help="留言时留下的手机号码")
        who.add_argument("--ticket", help="留言编号，如 LY20261123-0007")
        who.add_argument("--user-ref", dest="user_ref", help="渠道:用户ID，如 wechat:oAbC123 或 web:w1a2b3")
        p.add_argument("--by", default="cli", help="经办人（记入审计日志）")
        if name == "export":
            p.add_argument("--out", help="输出文件（默认打印到标准输出）")
        else:
            p.add_argument("--yes", action="store_true", help="不再确认")
        p.set_defaults(func=func)
    p = pv.add_parser("purge", help="立即执行一次保存期限清理（服务每天自动执行）")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_privacy_purge)

    add_users_commands(sub)
    return parser


def _log_to_stderr_masked() -> None:
    """Warnings and errors to stderr with personal data masked (without a handler, Python's
    last-resort handler would print them unmasked); `serve` adds uvicorn's loggers in each worker."""
    import logging

    from bot.security import install_all_log_masking

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    install_all_log_masking()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _log_to_stderr_masked()
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(settings_error_text(exc), file=sys.stderr)
        return 2
    ctx = Context(settings)
    try:
        code: int = args.func(args, ctx)
        return code
    except PolicybotError as exc:
        print(f"错误：{exc.user_message}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"错误：找不到文件 {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
