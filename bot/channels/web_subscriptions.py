"""The widget's subscription settings (政策订阅): GET /api/v1/subscriptions gives the catalogue's
topics and which of them the session's visitor follows, PUT sets them (the checkboxes). The visitor is
the widget session's user, the same id that `GET /api/v1/messages` delivers the pushes to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from knowledge.errors import PolicybotError
from knowledge.subscriptions import SubscriptionStore

if TYPE_CHECKING:
    from bot.channels.web import WebChannel


class TopicOut(BaseModel):
    tag: str
    category: str | None = None
    subscribed: bool


class SubscriptionsOut(BaseModel):
    topics: list[TopicOut] = Field(description="The tag catalogue's topics, in catalogue order")
    tags: list[str] = Field(description="The topics this visitor follows")


class SubscriptionsIn(BaseModel):
    session: str = Field(..., max_length=400)
    tags: list[Annotated[str, Field(max_length=50)]] = Field(..., max_length=100)


def add_routes(api: APIRouter, channel: WebChannel) -> None:
    store = SubscriptionStore(channel.sessions)

    def state(user_id: str) -> SubscriptionsOut:
        from knowledge.policies.tags import TagCatalogue

        mine = store.tags_of(channel.name, user_id)
        topics = [
            TopicOut(tag=t.name, category=t.category, subscribed=t.name in mine)
            for t in TagCatalogue(channel.sessions).list()
        ]
        return SubscriptionsOut(topics=topics, tags=mine)

    @api.get(
        "/subscriptions", response_model=SubscriptionsOut, summary="Topics and this visitor's subscriptions"
    )
    def subscriptions(session: Annotated[str, Query(max_length=400)]) -> SubscriptionsOut:
        return state(channel.user_of(session))

    @api.put("/subscriptions", response_model=SubscriptionsOut, summary="Set this visitor's subscriptions")
    def set_subscriptions(body: SubscriptionsIn) -> SubscriptionsOut:
        user_id = channel.user_of(body.session)
        channel.limiter.check_key("session:" + user_id)
        try:
            store.replace(channel.name, user_id, body.tags)
        except PolicybotError as exc:
            raise HTTPException(422, exc.user_message) from None
        return state(user_id)


__all__ = ["add_routes"]
