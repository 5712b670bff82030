"""Automatic thresholds: the rule that chooses them from a store's own phrasings (right answers
weighed against wrong ones under a false-answer cap), and the knowledge base that recomputes them
once after a burst of store changes while pinned values win."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import Engine

from knowledge.answer import KnowledgeBase
from knowledge.calibration import Samples, ThresholdPins, choose, expected
from knowledge.db import make_sessionmaker
from knowledge.demo import load_demo
from knowledge.faqs import FaqStore
from knowledge.matcher import Thresholds
from knowledge.policies import PolicyStore


def _samples(pos: list[float], neg: list[float]) -> Samples:
    p, n = np.array(pos), np.array(neg)
    return Samples(p, np.zeros_like(p), np.ones(len(p), dtype=bool), p, 40, n, np.zeros_like(n))


def test_rule_answers_more_than_a_rule_that_only_avoids_wrong_answers() -> None:
    # 40 held-out phrasings spread over 0.40-0.88, 40 removed FAQs scoring 0.30 except one at 0.62
    pos = [0.40 + 0.012 * i for i in range(40)]
    neg = [0.30] * 39 + [0.62]
    rep = choose(_samples(pos, neg))
    assert rep.automatic
    # never answering a negative would need answer > 0.62; one wrong answer in 80 questions is
    # within the 5 % cap and buys many right answers
    assert rep.thresholds.answer < 0.62
    strict = expected(_samples(pos, neg), Thresholds(0.63, rep.thresholds.margin, rep.thresholds.clarify))
    assert rep.expected is not None and rep.expected.right > strict.right
    assert rep.expected.false_answer <= 0.05 and rep.expected.negatives_declined >= 0.9
    assert any("utility" in n for n in rep.notes)


def test_rule_keeps_false_answers_within_the_cap() -> None:
    # negatives that score like positives: answering any threshold below 0.8 would break the cap
    pos = [0.50 + 0.01 * i for i in range(40)]
    neg = [0.55 + 0.006 * i for i in range(40)]
    rep = choose(_samples(pos, neg))
    assert rep.expected is not None and rep.expected.false_answer <= 0.05


def test_too_little_data_keeps_the_defaults() -> None:
    rep = choose(_samples([0.9] * 3, [0.2] * 5))
    assert not rep.automatic and rep.thresholds == Thresholds()


def test_pins_override_one_value_at_a_time() -> None:
    pins = ThresholdPins(margin=0.2)
    assert pins.apply(Thresholds(0.4, 0.01, 0.3)) == Thresholds(0.4, 0.2, 0.3)
    assert pins.names() == ("margin",) and not pins.complete


@pytest.fixture
def sessions(engine: Engine):  # type: ignore[no-untyped-def]
    s = make_sessionmaker(engine)
    load_demo(FaqStore(s), PolicyStore(s))
    return s


def test_knowledge_base_uses_the_store_thresholds_and_pins_win(sessions) -> None:  # type: ignore[no-untyped-def]
    kb = KnowledgeBase(sessions, refresh_seconds=0.0)
    kb.ask("依申请公开多长时间答复")
    assert kb.calibration is not None and kb.calibration.automatic
    assert kb.thresholds == kb.calibration.thresholds
    pinned = KnowledgeBase(sessions, refresh_seconds=0.0, pins=ThresholdPins(answer=0.99))
    pinned.ask("你好")
    assert pinned.thresholds.answer == 0.99
    assert pinned.ask("依申请公开多长时间答复").decision != "answer"
    fixed = KnowledgeBase(sessions, refresh_seconds=0.0, thresholds=Thresholds())
    fixed.ask("你好")
    assert fixed.calibration is None and fixed.thresholds == Thresholds()


def test_a_burst_of_changes_recalibrates_once_after_the_quiet_period(sessions) -> None:  # type: ignore[no-untyped-def]
    kb = KnowledgeBase(sessions, refresh_seconds=0.0, calibrate_debounce_seconds=0.5)
    kb.ask("你好")
    first = kb.calibration
    calls: list[float] = []
    original = kb.recalibrate

    def counting():  # type: ignore[no-untyped-def]
        calls.append(time.monotonic())
        return original()

    kb.recalibrate = counting  # type: ignore[method-assign]
    for i in range(3):
        kb.faqs.add(
            by="admin",
            question=f"测试新增问题第{i}条怎么办理",
            answer="见窗口",
            similar=[f"第{i}条测试怎么办"],
            confirm_conflicts=True,  # this test is about recalibration, not the publish guard
        )
        kb.ask("你好")  # the index follows each change
    assert calls == []  # nothing while changes keep coming
    deadline = time.monotonic() + 20
    while kb.calibration is first and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.7)
    assert len(calls) == 1
    assert kb.calibration is not first and kb.calibration is not None
    assert kb.calibration.n_negatives == first.n_negatives + 3  # type: ignore[union-attr]
    kb.close()
