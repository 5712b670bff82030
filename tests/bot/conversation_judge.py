"""The labelled conversation set (tests/fixtures/conversation_set.jsonl) and the judge of what counts
as handled sensibly, shared by tests/bot/test_conversation_set.py and bench/conversation_eval.py.

Each case is a list of turns from one new citizen on a text channel (the in-process memory channel,
through the Inbox); the judge looks at the replies to the last turn:
- smalltalk: text replies only (never passages, never the staff form), the intent's own sentence, and
  popular questions as suggestions for a greeting;
- outside: the honest "not my field" line and no staff form;
- handoff: the leave-a-message offer at once, with the expected category;
- faq: that FAQ's answer (or a clarification that offers it), no second citation line;
- offer: no FAQ answer is invented; the staff form is offered; not called out of scope;
- followup: true: the reply says which topic it took (or, for an uncovered follow-up, that topic);
  false: it does not.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import texts
from bot.channels.memory import MemoryChannel
from bot.messages import Reply
from bot.pipeline.inbox import Inbox

SET = Path(__file__).resolve().parents[1] / "fixtures" / "conversation_set.jsonl"


@dataclass(frozen=True)
class Verdict:
    id: str
    group: str
    ok: bool
    why: str
    replies: tuple[str, ...]


def load_set(path: Path = SET) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def judge(case: dict[str, Any], replies: list[Reply], kb_question: Any) -> str | None:
    """None when the replies are sensible for the case, else why not."""
    exp = case["expect"]
    kinds = [r.kind for r in replies]
    text = "\n".join(r.text for r in replies)
    outside = texts.say("scope.outside")
    if "smalltalk" in exp:
        intent = exp["smalltalk"]
        if set(kinds) != {"text"}:
            return f"small talk got {kinds}"
        if texts.say(f"smalltalk.{intent}") not in text:
            return f"not the {intent} reply"
        if intent == "greeting" and not replies[0].suggestions:
            return "a greeting without popular questions"
        return None
    if exp.get("outside"):
        if outside not in text:
            return "not called out of scope"
        return "the staff form was offered" if "handoff_offer" in kinds else None
    if "handoff" in exp:
        offer = [r for r in replies if r.kind == "handoff_offer"]
        if not offer:
            return f"no handoff offer: {kinds}"
        return None if offer[0].category == exp["handoff"] else f"category {offer[0].category}"
    if outside in text:
        return "a policy question called out of scope"
    if "faq" in exp:
        first = replies[0]
        wanted = exp["faq"]
        if first.kind == "answer":
            if first.faq_id != wanted:
                return f"answered {first.faq_id}, expected {wanted}"
            if "来源：" in first.text and "《" in first.text.split("来源：")[0]:
                return "the source is cited twice"
        elif first.kind == "clarify":
            if kb_question(wanted) not in first.suggestions:
                return f"clarify without {wanted}"
        else:
            return f"{first.kind} instead of the answer {wanted}"
    if exp.get("offer"):
        if "answer" in kinds and "faq" not in exp:
            return f"invented an answer: {replies[0].faq_id}"
        if "handoff_offer" not in kinds and "clarify" not in kinds:
            return f"no staff form offered: {kinds}"
    if "followup" in exp:
        said = "接着“" in text or "关于“" in text
        if exp["followup"] and not said:
            return "the topic taken is not said"
        if not exp["followup"] and said:
            return "an unrelated question was read as a follow-up"
    return None


def run(inbox: Inbox, cases: list[dict[str, Any]] | None = None) -> list[Verdict]:
    kb = inbox.dialogue.kb

    def question(faq_id: str) -> str:
        rec = kb.record(faq_id)
        return rec.question if rec is not None else f"?{faq_id}"

    out: list[Verdict] = []
    for case in cases if cases is not None else load_set():
        chat = MemoryChannel(inbox, user_id=f"set-{case['id']}-{uuid.uuid4().hex[:6]}")
        replies: list[Reply] = []
        for turn in case["turns"]:
            replies = chat.ask(turn)
        why = judge(case, replies, question)
        out.append(Verdict(case["id"], case["group"], why is None, why or "", tuple(r.text for r in replies)))
    return out


__all__ = ["SET", "Verdict", "judge", "load_set", "run"]
