"""`policybot telegram poll | set-webhook --url URL | delete-webhook`: the Telegram bot's
development polling mode and its webhook registration.
"""

from __future__ import annotations

import argparse

from bot.cli.context import Context, Subparsers
from knowledge.errors import PolicybotError


def cmd_telegram(args: argparse.Namespace, ctx: Context) -> int:
    """poll: development mode (long polling, deletes the webhook); set-webhook URL / delete-webhook."""
    if not ctx.settings.telegram_token:
        raise PolicybotError("请先设置 POLICYBOT_TELEGRAM_TOKEN", "telegram token not configured")
    from bot.app import create_app

    channel = create_app(ctx.settings).state.channels["telegram"]
    if args.action == "poll":
        print("Telegram 轮询模式已启动（Ctrl+C 退出）", flush=True)
        channel.run_polling()
    elif args.action == "set-webhook":
        if not args.url or not args.url.startswith("https://"):
            raise PolicybotError(
                "请用 --url 指定 https 开头的 webhook 地址，如 https://example.gov.cn/telegram/webhook",
                "webhook url missing or not https",
            )
        try:
            channel.set_webhook(args.url)
        except ValueError as exc:
            raise PolicybotError("请先设置 POLICYBOT_TELEGRAM_WEBHOOK_SECRET", str(exc)) from None
        print(f"已设置 webhook：{args.url}")
    else:
        channel.delete_webhook()
        print("已删除 webhook")
    channel.close()
    return 0


def add_commands(sub: Subparsers) -> None:
    p = sub.add_parser(
        "telegram", help="Telegram 机器人：poll（开发用轮询）| set-webhook --url URL | delete-webhook"
    )
    p.add_argument("action", choices=["poll", "set-webhook", "delete-webhook"])
    p.add_argument("--url", help="set-webhook 的 https 地址（指向 /telegram/webhook）")
    p.set_defaults(func=cmd_telegram)
