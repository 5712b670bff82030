"""`policybot tags ...`: the tag catalogue (标签目录): import it from a csv or xlsx file (columns 标签,
同义词, 分类, 说明; the file replaces the catalogue) and list it. Once a catalogue exists, FAQ and policy
tags outside it are refused and synonyms are stored as the canonical tag.
"""

from __future__ import annotations

import argparse

from bot.cli.context import Context, Subparsers, print_json


def cmd_tags_import(args: argparse.Namespace, ctx: Context) -> int:
    from knowledge.policies.tags import TagCatalogue

    n = TagCatalogue(ctx.sessions).import_file(args.file, by=args.by)
    print(f"标签目录已导入：共 {n} 个标签")
    return 0


def cmd_tags_list(args: argparse.Namespace, ctx: Context) -> int:
    from knowledge.policies.tags import TagCatalogue

    tags = TagCatalogue(ctx.sessions).list()
    if args.json:
        print_json([t.as_dict() for t in tags])
        return 0
    if not tags:
        print("尚未导入标签目录（policybot tags import FILE.csv）：目前任何标签都可使用")
        return 0
    for t in tags:
        syn = f"（同义词：{'、'.join(t.synonyms)}）" if t.synonyms else ""
        print(f"{t.category or '-'}\t{t.name}{syn}\t{t.description}")
    return 0


def add_commands(sub: Subparsers) -> None:
    tags = sub.add_parser("tags", help="标签目录").add_subparsers(dest="tags_command", required=True)
    p = tags.add_parser("import", help="导入标签目录（csv / xlsx，替换现有目录）")
    p.add_argument("file")
    p.add_argument("--by", default="cli")
    p.set_defaults(func=cmd_tags_import)
    p = tags.add_parser("list", help="列出标签目录")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tags_list)
