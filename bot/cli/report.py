"""`policybot report weekly | route | topics`: the weekly report of unanswered questions per issuing
unit (HTML + XLSX, optionally e-mailed), the keywords that route its topics to units, and the 专题
cases opened when questions concentrate (list, scan now, close).
"""

from __future__ import annotations

import argparse
import sys

from bot.cli.context import Context, Subparsers, print_json
from knowledge.errors import PolicybotError


def cmd_report_weekly(args: argparse.Namespace, ctx: Context) -> int:
    from bot.reporting import generate, require_mail, send_reports
    from knowledge.gaps import GapParams, resolve_period
    from knowledge.models import utcnow

    smtp = require_mail(ctx.settings) if args.email else None  # refuse before any work
    params = GapParams(
        same_intent=args.same_intent,
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
            print_json([r.__dict__ for r in routes])
            return 0
        for r in routes:
            print(f"{r.keyword}\t{r.unit}\t{r.updated_by}\t{r.updated_at:%Y-%m-%d %H:%M}")
        print(f"共 {len(routes)} 条")
    return 0


def cmd_report_topics(args: argparse.Namespace, ctx: Context) -> int:
    from bot.reporting import require_mail
    from bot.special import build_special_topics, mail_cases

    service = build_special_topics(ctx.settings, ctx.sessions, ctx.kb)
    if args.action == "scan":
        smtp = require_mail(ctx.settings) if args.email else None  # refuse before any work
        opened = service.scan()
        print(f"新开专题 {len(opened)} 个")
        for c in opened:
            print(f"{c.no}\t{c.unit}\t{c.label}\t{c.askers} 人 / {c.questions} 次\t期限 {c.due_on:%Y-%m-%d}")
        if smtp is not None:
            sent = mail_cases(service, smtp, ctx.settings.report_emails)
            print(f"已发送专题邮件 {len(sent)} 封" + (f"：{'、'.join(sent)}" if sent else ""))
        return 0
    if args.action == "close":
        if not args.no:
            raise PolicybotError(
                "用法：policybot report topics close 专题编号 --as 用户名", "close needs a case no"
            )
        c = service.close(args.no, by=args.by)
        print(f"专题 {c.no} 已办结")
        return 0
    cases = service.cases(status=args.status)
    if args.json:
        print_json([c.as_dict() for c in cases])
        return 0
    for c in cases:
        mail = "已发邮件" if c.emailed_at else "未发邮件"
        print(
            f"{c.no}\t{c.status_text}\t{c.unit}\t{c.label}\t{c.askers} 人 / {c.questions} 次\t"
            f"{c.trigger_text}\t期限 {c.due_on:%Y-%m-%d}\t{mail}"
        )
    print(f"共 {len(cases)} 个专题")
    return 0


def add_commands(sub: Subparsers) -> None:
    rp = sub.add_parser("report", help="未解答问题周报").add_subparsers(dest="report_command", required=True)
    p = rp.add_parser("weekly", help="生成各制文单位的周报（HTML + XLSX）及总览")
    p.add_argument("--week", help="ISO 周，如 2026-W47（默认：截至现在的 7 天）")
    p.add_argument("--unit", help="只生成该单位的报告")
    p.add_argument("--out", default="reports", help="输出目录（默认 reports）")
    p.add_argument(
        "--same-intent",
        dest="same_intent",
        type=float,
        default=0.5,
        help="两个问题的匹配相似度达到此值即视为同一问题：用于合并主题、判断换说法再问（默认 0.5）",
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
    p = rp.add_parser("topics", help="问题集中时开立的专题：list | scan（立即检查）| close 专题编号")
    p.add_argument("action", nargs="?", default="list", choices=["list", "scan", "close"])
    p.add_argument("no", nargs="?", help="专题编号（close）")
    p.add_argument("--status", choices=["open", "closed"], help="只列出该状态的专题")
    p.add_argument("--email", action="store_true", help="scan 后将新专题发送给承办单位（每个专题只发一次）")
    p.add_argument("--as", dest="by", default="cli", help="办结人（close）")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report_topics)
