"""`policybot kb ...`: the FAQ knowledge base from the command line: import, export, list, show,
add, edit, retire, history, synonyms, sensitive words, the demo knowledge base, threshold calibration and the matcher
evaluation on a temporary store.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

from bot.cli.context import Context, Subparsers, parse_date, print_json
from knowledge.errors import PolicybotError


def load_demo(ctx: Context) -> Any:
    from knowledge import demo

    return demo.load_demo(ctx.faqs, ctx.policies)


def _faq_dict(r: Any) -> dict[str, Any]:
    from knowledge.faqs import FIELDS, META_FIELDS, faq_dict

    return faq_dict(r, (*FIELDS, *META_FIELDS))


def cmd_kb_import(args: argparse.Namespace, ctx: Context) -> int:
    report = ctx.faqs.import_file(
        Path(args.file),
        fmt=args.format,
        on_duplicate=args.on_duplicate,
        dry_run=args.dry_run,
        by=args.by,
        confirm_conflicts=args.confirm_conflicts,
    )
    print(report.summary())
    for c in report.conflicts:
        print(f"冲突：{c}")
    for w in report.warnings:
        print(f"提示：{w}")
    return 0


def cmd_kb_export(args: argparse.Namespace, ctx: Context) -> int:
    if args.format == "12345":
        return _export_hotline(args, ctx)
    n = ctx.faqs.export_file(Path(args.file), fmt=args.format, status=args.status)
    print(f"已导出 {n} 条到 {args.file}")
    return 0


def _export_hotline(args: argparse.Namespace, ctx: Context) -> int:
    """The hotline knowledge points (knowledge/faqs/hotline.py): without --status, the published entries
    that are current today (the rule the bot answers by)."""
    from knowledge.faqs.hotline import export_hotline, matcher_text
    from knowledge.models import china_today

    policies = ctx.policies
    records = ctx.faqs.list(status=args.status or "published", limit=10**9)
    if args.status is None:
        today = china_today()
        records = [
            r for r in records if policies.faq_validity(r.source_policy, r.valid_from, r.valid_to, today)[0]
        ]
    lookup = functools.lru_cache(maxsize=None)(policies.find)  # one query per source document
    paths = export_hotline(
        Path(args.file), records, policy=lookup, text=matcher_text(records, ctx.faqs.synonyms())
    )
    print(f"已导出 {len(records)} 条 12345 知识点到 {len(paths)} 个文件（每个文件至多 1000 条）：")
    for path in paths:
        print(f"  {path}")
    return 0


def cmd_kb_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = ctx.faqs.list(status=args.status, tag=args.tag, unit=args.unit, text=args.search, limit=args.limit)
    if args.json:
        print_json([_faq_dict(r) for r in rows])
        return 0
    for r in rows:
        print(f"{r.id}\t[{r.status}]\t{r.question}\t{r.unit or ''}")
    print(f"共 {len(rows)} 条")
    return 0


def cmd_kb_show(args: argparse.Namespace, ctx: Context) -> int:
    r = ctx.faqs.require(args.id)
    d = _faq_dict(r)
    if args.json:
        print_json(d)
        return 0
    for k, v in d.items():
        if isinstance(v, list):
            v = "｜".join(v)
        print(f"{k}: {v if v is not None else ''}")
    return 0


def _faq_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("question", "answer", "unit", "source_policy", "source_article", "status", "service_url"):
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
            fields[name] = parse_date(v) if v else None
    return fields


def cmd_kb_add(args: argparse.Namespace, ctx: Context) -> int:
    fields = _faq_fields(args)
    r = ctx.faqs.add(by=args.by, id=args.id, confirm_conflicts=args.confirm_conflicts, **fields)
    print(f"已新增 {r.id}")
    return 0


def cmd_kb_edit(args: argparse.Namespace, ctx: Context) -> int:
    fields = _faq_fields(args)
    if args.add_similar:
        cur = ctx.faqs.require(args.id)
        fields["similar"] = tuple(fields.get("similar", cur.similar)) + tuple(args.add_similar)
    if not fields:
        raise PolicybotError("没有要修改的内容", "no fields given")
    r = ctx.faqs.edit(args.id, by=args.by, confirm_conflicts=args.confirm_conflicts, **fields)
    print(f"已修改 {r.id}（版本戳 {r.seq}）")
    return 0


def cmd_kb_retire(args: argparse.Namespace, ctx: Context) -> int:
    r = ctx.faqs.retire(args.id, by=args.by, reason=args.reason or "")
    print(f"已下线 {r.id}")
    return 0


def cmd_kb_history(args: argparse.Namespace, ctx: Context) -> int:
    versions = ctx.faqs.history(args.id)
    if args.json:
        print_json([v.__dict__ for v in versions])
        return 0
    for v in versions:
        print(f"v{v.version_no}\t{v.at:%Y-%m-%d %H:%M}\t{v.by}\t{v.action}\t{', '.join(v.changes)}")
    return 0


def cmd_kb_demo(args: argparse.Namespace, ctx: Context) -> int:
    print(load_demo(ctx).summary())
    return 0


def cmd_kb_synonyms(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "add":
        if len(args.terms) < 2:
            raise PolicybotError("同义词组至少需要两个词", "synonym set needs two terms")
        set_id = ctx.faqs.add_synonyms(args.terms, by=args.by, confirm_conflicts=args.confirm_conflicts)
        print(f"已新增同义词组 {set_id}")
    elif args.action == "delete":
        ctx.faqs.delete_synonyms(int(args.terms[0]), by=args.by, confirm_conflicts=args.confirm_conflicts)
        print("已删除")
    else:
        for row in ctx.faqs.synonym_sets():
            print(f"{row[0]}\t{' = '.join(row[1])}")
    return 0


def cmd_kb_sensitive(args: argparse.Namespace, ctx: Context) -> int:
    """Sensitive words: a message with one gets no automatic answer (a flagged ticket instead)."""
    from knowledge.sensitive import SensitiveWords

    words = SensitiveWords(ctx.sessions)
    if args.action in ("add", "delete") and not args.words:
        raise PolicybotError("请给出至少一个词", "no sensitive word given")
    if args.action == "add":
        for w in args.words:
            print(f"已添加敏感词：{words.add(w, by=args.by)}")
    elif args.action == "delete":
        for w in args.words:
            words.delete(w)
            print(f"已删除敏感词：{w}")
    else:
        rows = words.list()
        if args.json:
            print_json(
                [{"word": r.word, "added_by": r.added_by, "added_at": r.added_at.isoformat()} for r in rows]
            )
            return 0
        for r in rows:
            print(f"{r.word}\t{r.added_by}\t{r.added_at:%Y-%m-%d}")
        print(f"共 {len(rows)} 个")
    return 0


def cmd_kb_calibrate(args: argparse.Namespace, ctx: Context) -> int:
    """What the automatic rule chooses for this store, why, and what is pinned in settings."""
    import dataclasses

    from bot.services import threshold_pins

    ctx.kb.refresh(force=True)
    report = ctx.kb.recalibrate()
    pins = threshold_pins(ctx.settings)
    in_force = pins.apply(report.thresholds)
    if args.json:
        out = dataclasses.asdict(report)
        out["in_force"] = dataclasses.asdict(in_force)
        out["pinned"] = list(pins.names())
        print_json(out)
        return 0
    t = report.thresholds
    how = "自动标定" if report.automatic else "数据不足，沿用默认值"
    print(f"本库阈值（{how}，知识库变更后自动重算）：")
    env = {"answer": "POLICYBOT_ANSWER_THRESHOLD", "margin": "POLICYBOT_ANSWER_MARGIN"}
    env["clarify"] = "POLICYBOT_CLARIFY_THRESHOLD"
    labels = {"answer": "直接答复阈值", "margin": "领先幅度", "clarify": "追问阈值"}
    for name in ("answer", "margin", "clarify"):
        chosen, used = getattr(t, name), getattr(in_force, name)
        pinned = f"（已被设置 {env[name]}={used:.3f} 固定，以设置为准）" if name in pins.names() else ""
        print(f"  {labels[name]} {chosen:.3f}{pinned}")
    e, d = report.expected, report.defaults_expected
    if e is not None and d is not None:
        print(f"依据：留出的相似问法 {report.n_held_out} 条，整条移除的问答 {report.n_negatives} 条")
        print(f"  直接答对      {e.right:.1%}（内置默认阈值 {d.right:.1%}）")
        print(f"  追问含正确项  {e.clarify_right:.1%}（默认 {d.clarify_right:.1%}）")
        print(f"  预计错答率    {e.false_answer:.1%}（默认 {d.false_answer:.1%}）")
        print(f"  库外问题拒答  {e.negatives_declined:.1%}（默认 {d.negatives_declined:.1%}）")
    for note in report.notes:
        print(f"  说明：{note}")
    return 0


def cmd_kb_eval(args: argparse.Namespace, ctx: Context) -> int:
    """Load the FAQ file into a temporary store, set thresholds from that store alone (the rule of
    `kb calibrate`; the queries are never used for it, pinned settings win), run every query."""
    import dataclasses

    from bot.database import upgrade
    from bot.services import threshold_pins
    from knowledge.calibration import calibrate
    from knowledge.db import make_engine, make_sessionmaker
    from knowledge.evaluation import evaluate, load_queries_jsonl
    from knowledge.faqs import FaqStore

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/eval.db")
        upgrade(engine)
        store = FaqStore(make_sessionmaker(engine))
        store.import_file(Path(args.faq), on_duplicate="error", by="eval", allow_empty_answer=True)
        entries = store.index_entries()
        engine.dispose()
    queries = load_queries_jsonl(Path(args.queries))
    pins = threshold_pins(ctx.settings)
    thresholds = pins.apply(calibrate(entries).thresholds)
    r = evaluate(entries, queries, thresholds)
    result: dict[str, object] = dict(r)
    result["thresholds"] = {**dataclasses.asdict(thresholds), "pinned": list(pins.names())}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"查询数 n={r['n']}")
    t = thresholds
    print(f"阈值（由该问答文件自动标定）answer={t.answer:.3f} margin={t.margin:.3f} clarify={t.clarify:.3f}")
    print(f"top-1 准确率      {r['top1']:.3f}")
    print(f"top-3 召回率      {r['top3']:.3f}")
    print(f"直接答对          {r['answer_right']:.3f}")
    print(f"追问含正确项      {r['clarify_right']:.3f}")
    print(f"范围外拒答率      {r['oos_reject']:.3f}")
    print(f"错答率            {r['false_answer']:.3f}")
    print(f"延迟 p50 / p99    {r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms")
    return 0


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
    p.add_argument("--service-url", dest="service_url", help="办事链接（一网通办事项地址，空字符串表示清除）")


def _confirm_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--confirm-conflicts",
        dest="confirm_conflicts",
        action="store_true",
        help="已有问法会被错误答复时仍然写入（记入修改历史）",
    )


def add_commands(sub: Subparsers) -> None:
    kb = sub.add_parser("kb", help="知识库管理").add_subparsers(dest="kb_command", required=True)
    p = kb.add_parser("import", help="导入 xlsx / csv / jsonl（全部成功或全部不写入）")
    p.add_argument("file")
    p.add_argument("--format", choices=["xlsx", "csv", "jsonl"])
    p.add_argument(
        "--on-duplicate", dest="on_duplicate", choices=["update", "skip", "error"], default="update"
    )
    p.add_argument("--dry-run", dest="dry_run", action="store_true")
    p.add_argument("--by", default="cli")
    _confirm_option(p)
    p.set_defaults(func=cmd_kb_import)
    p = kb.add_parser("export", help="导出 xlsx / csv / jsonl；--format 12345 导出热线知识点")
    p.add_argument("file")
    p.add_argument("--format", choices=["xlsx", "csv", "jsonl", "12345"])
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
    _confirm_option(p)
    p.set_defaults(func=cmd_kb_add)
    p = kb.add_parser("edit", help="修改问答（保留版本）")
    p.add_argument("id")
    _faq_options(p, required=False)
    p.add_argument("--add-similar", dest="add_similar", nargs="*")
    p.add_argument("--by", default="cli")
    _confirm_option(p)
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
    _confirm_option(p)
    p.set_defaults(func=cmd_kb_synonyms)
    p = kb.add_parser("sensitive", help="敏感词：list | add 词 ... | delete 词 ...")
    p.add_argument("action", choices=["list", "add", "delete"])
    p.add_argument("words", nargs="*")
    p.add_argument("--by", default="cli")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_sensitive)
    p = kb.add_parser("demo", help="载入演示知识库（五份政策文件及问答）")
    p.set_defaults(func=cmd_kb_demo)
    p = kb.add_parser("calibrate", help="查看本库自动标定的阈值及依据")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_calibrate)
    p = kb.add_parser("eval", help="评测匹配效果（临时库，阈值由该问答文件自动标定）")
    p.add_argument("--faq", required=True)
    p.add_argument("--queries", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kb_eval)
    from bot.cli.learning import add_kb_commands

    add_kb_commands(kb)
