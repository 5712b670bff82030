"""`policybot links ...`: service links (办事链接 of FAQs, links of policies): check them all now (the
same check the daily job runs) and list them with their health (`--broken`: only links that failed
two checks in a row), each with the FAQs and policies that use it and their drafting units.
"""

from __future__ import annotations

import argparse

from bot.cli.context import Context, Subparsers, print_json


def cmd_links_check(args: argparse.Namespace, ctx: Context) -> int:
    from bot.upkeep import build_link_checker

    run = build_link_checker(ctx.settings, ctx.sessions).run()
    if args.json:
        print_json(run.as_dict())
        return 0
    for url, p in run.results.items():
        state = "正常" if p.ok else f"失败（{p.error or f'HTTP {p.code}'}）"
        print(f"{state}\t{url}")
    print(
        f"检查 {run.checked} 个链接：正常 {run.ok}，失败 {run.failed}；"
        f"断链 {len(run.broken)} 个（新增 {len(run.newly_broken)}，恢复 {len(run.recovered)}）"
    )
    return 0


def cmd_links_list(args: argparse.Namespace, ctx: Context) -> int:
    from knowledge.links import LinkStore

    rows = LinkStore(ctx.sessions).list(broken=args.broken, unit=args.unit)
    if args.json:
        print_json([r.as_dict() for r in rows])
        return 0
    if not rows:
        print("没有断链" if args.broken else "没有办事链接")
        return 0
    for r in rows:
        if r.broken:
            state = f"断链（{r.problem()}）"
        elif r.checked_at is None:
            state = "未检查"
        elif r.fails:
            state = f"失败{r.fails}次（{r.problem()}）"
        else:
            state = "正常"
        uses = "；".join(f"{u.id} {u.unit or ''}".strip() for u in r.uses)
        print(f"{state}\t{r.url}\t{uses}")
    return 0


def add_commands(sub: Subparsers) -> None:
    links = sub.add_parser("links", help="办事链接检查").add_subparsers(dest="links_command", required=True)
    p = links.add_parser("check", help="立即检查全部办事链接")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_links_check)
    p = links.add_parser("list", help="列出办事链接及状态")
    p.add_argument("--broken", action="store_true", help="只列断链")
    p.add_argument("--unit", help="只看一个制文单位")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_links_list)
