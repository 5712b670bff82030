"""`policybot holidays import | list`: China's official holidays and make-up workdays (the State
Council notice as text, or CSV) that the ticket due dates are counted on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.context import Context, Subparsers
from knowledge.errors import PolicybotError


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


def add_commands(sub: Subparsers) -> None:
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
