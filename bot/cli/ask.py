"""`policybot ask QUESTION`: one question through the knowledge base, the same decision as in a
conversation (answer, clarify, passage or decline), printed or as JSON.
"""

from __future__ import annotations

import argparse

from bot import texts
from bot.cli.context import Context, Subparsers, print_json


def cmd_ask(args: argparse.Namespace, ctx: Context) -> int:
    result = ctx.kb.ask(args.question)
    if args.json:
        print_json(result.as_dict())
        return 0
    print(f"决定：{result.decision}（得分 {result.score:.3f}）")
    if result.decision == "answer":
        print(result.answer)
        for s in result.sources:
            print(f"来源：{s.citation()}")
        if result.service_url:
            print(texts.service_link_line(result.service_url, result.link_broken))
    elif result.decision == "clarify":
        print("您想问的是不是：")
        for i, h in enumerate(result.hits, 1):
            print(f"  {i}. {h.question}（{h.score:.3f}）")
    elif result.decision == "passage":
        print(
            texts.superseded_notice(result.superseded)
            if result.superseded
            else "知识库暂无标准答复，相关政策原文："
        )
        for p in result.passages:
            print(f"- {p.citation()}：{p.text[:200]}")
    else:
        print("暂无相关答复。")
    for f in result.flags:
        print(f"注意：{f}")
    return 0


def add_commands(sub: Subparsers) -> None:
    p = sub.add_parser("ask", help="提问（与对话相同的决策）")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)
