"""`policybot db current | history | upgrade [REV] | downgrade REV`: the schema revisions (Alembic)
on the configured database.
"""

from __future__ import annotations

import argparse

from bot.cli.context import Context, Subparsers
from knowledge.errors import PolicybotError


def cmd_db(args: argparse.Namespace, ctx: Context) -> int:
    """Schema revisions (Alembic): current / history / upgrade / downgrade REV (run with the NEW version)."""
    from alembic import command

    from bot.database import alembic_config
    from knowledge.db import make_engine

    cfg = alembic_config()
    if args.action == "history":
        command.history(cfg)
        return 0
    engine = make_engine(ctx.settings.database_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if args.action == "current":
            command.current(cfg)
        elif args.action == "upgrade":
            command.upgrade(cfg, args.revision or "head")
        else:
            if not args.revision:
                raise PolicybotError(
                    "请指定要回退到的版本，例如：policybot db downgrade 0001", "downgrade needs REV"
                )
            command.downgrade(cfg, args.revision)
    engine.dispose()
    print("完成")
    return 0


def add_commands(sub: Subparsers) -> None:
    p = sub.add_parser(
        "db", help="数据库结构版本（Alembic）：current | history | upgrade [REV] | downgrade REV"
    )
    p.add_argument("action", choices=["current", "history", "upgrade", "downgrade"])
    p.add_argument("revision", nargs="?")
    p.set_defaults(func=cmd_db)
