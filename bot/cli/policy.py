"""`policybot policy ...`: policy documents: import a text file (with its metadata), list them,
set a document's status (有效 / 已修订 / 失效 / 废止).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.context import Context, Subparsers, parse_date


def cmd_policy_import(args: argparse.Namespace, ctx: Context) -> int:
    meta = {
        "id": args.id,
        "title": args.title,
        "doc_no": args.doc_no,
        "issuer": args.issuer,
        "issued_on": parse_date(args.date),
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


def add_commands(sub: Subparsers) -> None:
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
