"""`policybot policy ...`: policy documents: import text files (with their metadata and tags), list
them, set a document's status (有效 / 已修订 / 失效 / 废止, with the document that replaced it) and expiry
date, relate documents (解读 / 配套 / 依据 / 修订), show the review list of FAQs whose source changed
(`policy review`, per drafting unit), close an item of it, and run the validity sweep.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.context import Context, Subparsers, parse_date, print_json
from knowledge.errors import PolicybotError

STATUS_CHOICES = ["有效", "已修订", "失效", "废止"]


def _tags(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [t for t in (x.strip() for x in value.replace("，", ",").replace("、", ",").split(",")) if t]


def cmd_policy_import(args: argparse.Namespace, ctx: Context) -> int:
    if len(args.files) > 1 and (args.id or args.title or args.doc_no):
        raise PolicybotError(
            "导入多个文件时不能指定 --id、--title 或 --doc-no（它们只属于一个文件）。",
            "--id/--title/--doc-no given with several files",
        )
    meta = {
        "id": args.id,
        "title": args.title,
        "doc_no": args.doc_no,
        "issuer": args.issuer,
        "issued_on": parse_date(args.date),
        "status": args.status,
        "url": args.url,
        "tags": _tags(args.tags),
        "expires_on": parse_date(args.expires),
        "service_url": args.service_url,
    }
    given = {k: v for k, v in meta.items() if v is not None}
    for f in args.files:
        r = ctx.policies.import_file(Path(f), **given)
        tags = f"，标签 {'、'.join(r.tags)}" if r.tags else ""
        print(
            f"已导入 {r.id}：《{r.title}》{r.doc_no or ''}，{r.passage_count} 个条款段落，状态 {r.status}{tags}"
        )
    return 0


def cmd_policy_list(args: argparse.Namespace, ctx: Context) -> int:
    rows = ctx.policies.library(status=args.status or "", tag=args.tag or "", q=args.search or "")
    if args.json:
        print_json([r.__dict__ | {"tags": list(r.tags)} for r in rows])
        return 0
    for r in rows:
        extra = f"\t→{r.replaced_by}" if r.replaced_by else ""
        print(
            f"{r.id}\t{r.status}\t{r.doc_no or '-'}\t{r.issued_on or '-'}\t{r.title}\t{'、'.join(r.tags)}{extra}"
        )
    return 0


def cmd_policy_status(args: argparse.Namespace, ctx: Context) -> int:
    if args.replaced_by and args.status == "有效":
        raise PolicybotError("有效的文件不能指定替代文件。", "--replaced-by with status 有效")
    r = ctx.policies.set_status(args.id, args.status, by=args.by, replaced_by=args.replaced_by)
    line = f"{r.id} 状态已改为 {r.status}"
    if r.replaced_by:
        new = ctx.policies.get(r.replaced_by)
        line += f"，已被《{new.title if new else r.replaced_by}》替代"
    print(line)
    cited = ctx.policies.citing_faqs(r.id)
    if cited and r.status != "有效":
        print(f"引用该文件的 {len(cited)} 条问答已列入制文单位的待复核清单（policybot policy review）")
    return 0


def cmd_policy_expires(args: argparse.Namespace, ctx: Context) -> int:
    day = None if args.date in ("", "none", "无") else parse_date(args.date)
    r = ctx.policies.set_expiry(args.id, day, by=args.by)
    print(f"{r.id} 有效期至 {r.expires_on}" if r.expires_on else f"{r.id} 已清除有效期")
    return 0


def cmd_policy_relate(args: argparse.Namespace, ctx: Context) -> int:
    if args.remove:
        removed = ctx.policies.unrelate(args.id, args.kind, args.other)
        print("已取消关联" if removed else "两个文件之间没有这个关联")
        return 0
    p, o = ctx.policies.relate(args.id, args.kind, args.other, by=args.by)
    print(f"已关联：《{o.title}》是《{p.title}》的{args.kind}")
    return 0


def cmd_policy_tags(args: argparse.Namespace, ctx: Context) -> int:
    r = ctx.policies.set_tags(args.id, _tags(args.tags) or [], by=args.by)
    print(f"{r.id} 标签：{'、'.join(r.tags) or '（无）'}")
    return 0


def cmd_policy_review(args: argparse.Namespace, ctx: Context) -> int:
    from bot.services import review_due
    from knowledge.models import china_today
    from knowledge.policies.review import ReviewList

    reviews = ReviewList(ctx.sessions, review_due=review_due(ctx.sessions))
    if args.done is not None:
        item = reviews.resolve(args.done, by=args.by)
        print(f"已完成复核 #{item.id}：{item.faq_id} {item.question}")
        return 0
    items = reviews.items(unit=args.unit, include_resolved=args.all)
    if args.json:
        print_json([i.as_dict() for i in items])
        return 0
    if not items:
        print("待复核清单为空")
        return 0
    today = china_today()
    for i in items:
        late = "（已逾期）" if i.overdue(today) else ""
        done = "（已完成）" if i.resolved_at else ""
        print(
            f"#{i.id}\t{i.unit or '未指定单位'}\t{i.faq_id}\t{i.reason}\t{i.due_on}{late}{done}\t{i.question}\t{i.detail}"
        )
    return 0


def cmd_policy_sweep(args: argparse.Namespace, ctx: Context) -> int:
    from bot.services import review_due
    from knowledge.policies.review import ReviewList

    r = ReviewList(ctx.sessions, review_due=review_due(ctx.sessions)).sweep(within_days=args.days)
    if args.json:
        print_json(r.as_dict())
        return 0
    for pid in r.expired_policies:
        print(f"已过有效期，标为失效：{pid}")
    print(
        f"有效性检查完成：新增待复核 {len(r.flagged)} 条，自动关闭 {len(r.resolved)} 条，待复核共 {r.open} 条"
    )
    return 0


def add_commands(sub: Subparsers) -> None:
    pol = sub.add_parser("policy", help="政策文件").add_subparsers(dest="policy_command", required=True)
    p = pol.add_parser("import", help="导入政策文本（txt / md，可多个）")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--id")
    p.add_argument("--title")
    p.add_argument("--doc-no", dest="doc_no", help="文号")
    p.add_argument("--issuer", help="发文机关")
    p.add_argument("--date", help="成文日期 YYYY-MM-DD")
    p.add_argument("--status", choices=STATUS_CHOICES)
    p.add_argument("--url", help="原文链接")
    p.add_argument("--tags", help="政策标签，逗号分隔（须在标签目录中）")
    p.add_argument("--expires", help="有效期至 YYYY-MM-DD")
    p.add_argument("--service-url", dest="service_url", help="办事链接")
    p.set_defaults(func=cmd_policy_import)
    p = pol.add_parser("list", help="列出政策文件")
    p.add_argument("--status", choices=STATUS_CHOICES)
    p.add_argument("--tag")
    p.add_argument("--search")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy_list)
    p = pol.add_parser("status", help="标注文件状态（有效 / 已修订 / 失效 / 废止）")
    p.add_argument("id")
    p.add_argument("status", choices=STATUS_CHOICES)
    p.add_argument("--replaced-by", dest="replaced_by", help="替代它的文件（编号、文号或标题）")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_policy_status)
    p = pol.add_parser("expires", help="设置有效期至（none 清除）")
    p.add_argument("id")
    p.add_argument("date")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_policy_expires)
    p = pol.add_parser("relate", help="关联文件：ID 的 解读 / 配套 / 依据 / 修订 是 ID2")
    p.add_argument("id")
    p.add_argument("kind", choices=["解读", "配套", "依据", "修订"])
    p.add_argument("other", metavar="ID2")
    p.add_argument("--remove", action="store_true", help="取消这个关联")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_policy_relate)
    p = pol.add_parser("tags", help="设置文件的标签（逗号分隔，空字符串清除）")
    p.add_argument("id")
    p.add_argument("tags")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_policy_tags)
    p = pol.add_parser("review", help="待复核问答清单（来源文件废止、修订或即将到期）")
    p.add_argument("--unit", help="只看一个制文单位")
    p.add_argument("--all", action="store_true", help="包括已完成的")
    p.add_argument("--done", type=int, metavar="N", help="标记第 N 项复核完成")
    p.add_argument("--json", action="store_true")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_policy_review)
    p = pol.add_parser("sweep", help="有效性检查：过期文件标为失效，列出30天内到期的来源")
    p.add_argument("--days", type=int, default=30, help="提前多少天列出即将到期的来源（默认30）")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_policy_sweep)
