"""`policybot serve`: migrate once (or load the demo knowledge base into an empty database with
--demo), then run uvicorn with the app factory and the given workers.
"""

from __future__ import annotations

import argparse
import logging

from bot.cli.context import Context, Subparsers
from bot.cli.kb import load_demo
from knowledge.demo import DEMO_DIR
from knowledge.policies.tags import TagCatalogue


def cmd_serve(args: argparse.Namespace, ctx: Context) -> int:
    import os

    import uvicorn

    from bot.ratelimit import per_worker_warning

    if args.demo:
        os.environ["POLICYBOT_DEMO"] = "1"
        _load_demo_if_empty(ctx)
    else:
        _ = ctx.sessions  # migrate once before the workers start
    if warning := per_worker_warning(args.workers, ctx.settings.redis_url):
        logging.getLogger(__name__).warning(warning)  # stderr (bot.cli's handler) and the log
    print(f"policybot 服务启动：http://{args.host}:{args.port}/ （接口文档 /docs）", flush=True)
    uvicorn.run(
        "bot.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


def _load_demo_if_empty(ctx: Context) -> None:
    """An empty database gets the demo knowledge base and, when it has no tag catalogue yet, the
    demo's (knowledge/demo/tags.csv: the demo FAQs' tags in 11 topics), so that the widget's
    subscriptions (订阅) can be tried at once."""
    if ctx.faqs.count() == 0:
        print(load_demo(ctx).summary())
        catalogue = TagCatalogue(ctx.sessions)
        if not catalogue.list():
            print(f"演示标签目录：{catalogue.import_file(DEMO_DIR / 'tags.csv', by='demo')} 个订阅主题")


def add_commands(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="启动服务")
    p.add_argument("--demo", action="store_true", help="空库时载入演示知识库，并在 / 提供演示页面")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=cmd_serve)
