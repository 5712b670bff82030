"""The WeChat Official Account channel (公众号, endpoint /wechat): the only package that speaks WeChat.

`edge` owns the checks of every inbound request (size cap, freshness, signatures, encryption mode,
AES, DTD refusal) and the parsing into a `WxMessage`; `render` turns replies into WeChat text; `api`
is the API client with its shared access_token; `channel` is the `WeChatChannel` (routes, inbox,
passive reply, pushes). This module re-exports the public names.
"""

from bot.channels.wechat.api import IMPOSSIBLE_ERRORS, TOKEN_ERRORS, DbSessionStorage, PolicybotWeChatClient
from bot.channels.wechat.channel import WeChatChannel, enabled
from bot.channels.wechat.edge import MAX_BODY, MODES, BadRequest, Edge, WxMessage, read_capped
from bot.channels.wechat.render import REPLY_BYTES, render_replies, render_text, split_bytes

__all__ = [
    "IMPOSSIBLE_ERRORS",
    "MAX_BODY",
    "MODES",
    "REPLY_BYTES",
    "TOKEN_ERRORS",
    "BadRequest",
    "DbSessionStorage",
    "Edge",
    "PolicybotWeChatClient",
    "WeChatChannel",
    "WxMessage",
    "enabled",
    "read_capped",
    "render_replies",
    "render_text",
    "split_bytes",
]
