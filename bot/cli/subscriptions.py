"""`policybot subscriptions ...`: the subscriptions (政策订阅) of citizens and relay partners: list them
(`--json`), and subscribe a partner's e-mail address to tags (`add-email ADDRESS --tags a,b`, tags
resolved through the tag catalogue, synonyms accepted) or remove it (`remove-email ADDRESS [--tags]`).
"""

from __future__ import annotations

import argparse
import re

from bot.cli.context import Context, Subparsers, print_json
from knowledge.errors import InvalidInput
from knowledge.subscriptions import SubscriptionStore

_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")


def _address(value: str) -> str:
    address = (value or "").strip()
    if not _ADDRESS.match(address) or len(address) > 128:
        raise InvalidInput(f"邮箱地址格式不正确：{address}", f"bad e-mail address {address!r}")
    return address.lower()


def _tags(value: str | None) -> list[str]:
    return [t.strip() for t in re.split(r"[,，、]", value or "") if t.strip()]


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    store = SubscriptionStore(ctx.sessions)
    rows = store.list(channel=args.channel)
    if args.json:
        print_json({"subscriptions": [r.as_dict() for r in rows], "per_tag": dict(store.counts())})
        return 0
    if not rows:
        print("暂无订阅")
        return 0
    for r in rows:
        print(f"{r.channel}\t{r.user_id}\t{r.tag}\t{r.label}\t{r.created_at}")
    print("按主题：" + "，".join(f"{t} {n}" for t, n in store.counts()))
    return 0


def cmd_add_email(args: argparse.Namespace, ctx: Context) -> int:
    address = _address(args.address)
    tags = _tags(args.tags)
    if not tags:
        raise InvalidInput("请用 --tags 指定订阅主题，如 --tags 就业创业,社会保障", "add-email without tags")
    store = SubscriptionStore(ctx.sessions)
    done = [store.add("email", address, t, label=args.label or "") for t in tags]
    print(f"{address} 已订阅：" + "、".join(tag for tag, _ in done))
    return 0


def cmd_remove_email(args: argparse.Namespace, ctx: Context) -> int:
    address = _address(args.address)
    store = SubscriptionStore(ctx.sessions)
    tags = _tags(args.tags)
    if tags:
        removed = [tag for tag, gone in (store.remove("email", address, t) for t in tags) if gone]
        print(f"{address} 已退订：" + ("、".join(removed) or "无"))
    else:
        print(f"{address} 已退订全部 {store.remove_subscriber('email', address)} 个主题")
    return 0


def add_commands(sub: Subparsers) -> None:
    group = sub.add_parser("subscriptions", help="政策订阅（市民与转发单位）").add_subparsers(
        dest="subscriptions_command", required=True
    )
    p = group.add_parser("list", help="列出全部订阅")
    p.add_argument("--channel", choices=["web", "wechat", "telegram", "email"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = group.add_parser("add-email", help="为转发单位（协会、园区）的邮箱订阅主题")
    p.add_argument("address")
    p.add_argument("--tags", required=True, help="主题，逗号分隔")
    p.add_argument("--label", help="单位名称")
    p.set_defaults(func=cmd_add_email)
    p = group.add_parser("remove-email", help="退订转发单位的邮箱（不指定 --tags 则全部退订）")
    p.add_argument("address")
    p.add_argument("--tags")
    p.set_defaults(func=cmd_remove_email)
