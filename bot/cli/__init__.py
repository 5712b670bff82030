"""The `policybot` command line: serve, ask, kb ..., policy ..., tags ..., links ..., tickets ..., holidays ...,
subscriptions ..., users ....

Every command reads the one Settings object, migrates the database to the latest schema (so a fresh
SQLite file just works) and prints Chinese messages for domain errors instead of stack traces. This
module owns the entry point (main), the top-level parser that each command-group module adds its
subcommands to, and that error handling; the handlers live in the group modules next to their
arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from bot.cli import (
    ask,
    db,
    holidays,
    kb,
    links,
    policy,
    privacy,
    report,
    serve,
    subscriptions,
    tags,
    telegram,
    tickets,
)
from bot.cli.context import Context
from bot.settings import get_settings, settings_error_text
from knowledge.errors import PolicybotError

# In the order `policybot --help` lists them; `users` (handoff's own) comes last.
GROUPS = (
    serve,
    ask,
    kb,
    policy,
    tags,
    links,
    db,
    tickets,
    telegram,
    holidays,
    report,
    privacy,
    subscriptions,
)


def build_parser() -> argparse.ArgumentParser:
    from handoff.console.cli import add_users_commands

    parser = argparse.ArgumentParser(prog="policybot", description="政策咨询机器人 policybot")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)

    add_users_commands(sub)
    return parser


def _log_to_stderr_masked() -> None:
    """Warnings and errors to stderr with personal data masked (without a handler, Python's
    last-resort handler would print them unmasked); `serve` adds uvicorn's loggers in each worker."""
    import logging

    from bot.security import install_all_log_masking

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    install_all_log_masking()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _log_to_stderr_masked()
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(settings_error_text(exc), file=sys.stderr)
        return 2
    ctx = Context(settings)
    try:
        code: int = args.func(args, ctx)
        return code
    except PolicybotError as exc:
        print(f"错误：{exc.user_message}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"错误：找不到文件 {exc.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
