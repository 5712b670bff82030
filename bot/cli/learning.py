"""`policybot kb suggestions list | approve | reject` (phrasings learned from use, reviewed before
they join an FAQ: knowledge.suggestions) and `policybot kb welcome list | set | clear` (the FAQs
pinned to the welcome message: knowledge.welcome).
"""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli.context import Context, Subparsers, print_json
from knowledge.errors import InvalidInput


def _store(ctx: Context) -> Any:
    from knowledge.suggestions import SuggestionStore

    return SuggestionStore(ctx.kb)


def _sources(sources: dict[str, int]) -> str:
    from knowledge.suggestions import SOURCE_LABELS

    return "、".join(f"{SOURCE_LABELS.get(k, k)}×{n}" for k, n in sorted(sources.items()))


def cmd_suggestions_list(args: argparse.Namespace, ctx: Context) -> int:
    store = _store(ctx)
    store.mine()
    status = None if args.status == "all" else args.status
    rows = store.list(status=status, units=args.unit or None, with_conflicts=True, limit=args.limit)
    if args.json:
        print_json([r.as_dict() for r in rows])
        return 0
    print("编号\t问答\t次数\t来源\t建议问法\t冲突")
    for r in rows:
        clash = "；".join(c.describe() for c in r.conflicts[:2]) or "-"
        print(f"{r.id}\t{r.faq_id}\t{r.count}\t{_sources(r.sources)}\t{r.text}\t{clash}")
    print(f"共 {len(rows)} 条")
    return 0


def _ids(args: argparse.Namespace, ctx: Context) -> list[int]:
    if getattr(args, "all", False):
        store = _store(ctx)
        store.mine()
        return [r.id for r in store.list(status="pending", limit=100_000)]
    if not args.ids:
        raise InvalidInput("请给出建议编号，或使用 --all", "no suggestion ids")
    try:
        return [int(i) for i in args.ids]
    except ValueError:
        raise InvalidInput("建议编号应为数字", f"bad ids {args.ids!r}") from None


def cmd_suggestions_approve(args: argparse.Namespace, ctx: Context) -> int:
    ids = _ids(args, ctx)
    result = _store(ctx).approve(ids, by=args.as_user, confirm_conflicts=args.confirm_conflicts)
    for sid in result.approved:
        print(f"已采纳 {sid}")
    for sid, why in result.refused.items():
        print(f"未采纳 {sid}：{why}")
    print(f"采纳 {len(result.approved)} 条，未采纳 {len(result.refused)} 条")
    return 0 if not result.refused else 1


def cmd_suggestions_reject(args: argparse.Namespace, ctx: Context) -> int:
    done = _store(ctx).reject(_ids(args, ctx), by=args.as_user)
    print(f"已拒绝 {len(done)} 条")
    return 0


def cmd_welcome(args: argparse.Namespace, ctx: Context) -> int:
    from knowledge.welcome import WelcomePins

    pins = WelcomePins(ctx.sessions)
    if args.action == "set":
        pins.set(args.ids, by=args.by)
    elif args.action == "clear":
        pins.set([], by=args.by)
    ids = pins.get()
    if not ids:
        print("未置顶问题：欢迎语显示答复次数最多的问题")
    for fid in ids:
        rec = ctx.faqs.get(fid)
        print(f"{fid}\t{rec.question if rec else '（已不存在）'}")
    return 0


def add_kb_commands(kb: Subparsers) -> None:
    sg = kb.add_parser("suggestions", help="从使用中学到的建议问法（审核后加入问答）").add_subparsers(
        dest="suggestions_command", required=True
    )
    p = sg.add_parser("list", help="列出建议问法（先从查询日志收集新的）")
    p.add_argument("--status", choices=["pending", "approved", "rejected", "all"], default="pending")
    p.add_argument("--unit", nargs="*", help="只看这些制文单位的问答")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_suggestions_list)
    p = sg.add_parser("approve", help="采纳：作为相似问法加入问答（经冲突检查）")
    p.add_argument("ids", nargs="*")
    p.add_argument("--all", action="store_true", help="采纳全部待审核的建议")
    p.add_argument("--as", dest="as_user", default="cli", metavar="USERNAME")
    p.add_argument(
        "--confirm-conflicts", dest="confirm_conflicts", action="store_true", help="确认冲突后仍采纳"
    )
    p.set_defaults(func=cmd_suggestions_approve)
    p = sg.add_parser("reject", help="拒绝建议问法")
    p.add_argument("ids", nargs="+")
    p.add_argument("--as", dest="as_user", default="cli", metavar="USERNAME")
    p.set_defaults(func=cmd_suggestions_reject)
    p = kb.add_parser("welcome", help="欢迎语推荐问题：list | set 问答编号... | clear")
    p.add_argument("action", choices=["list", "set", "clear"])
    p.add_argument("ids", nargs="*")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_welcome)
