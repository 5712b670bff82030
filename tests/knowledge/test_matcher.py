"""Tests for knowledge.matcher: retrieval quality cases, scores, decisions, incremental updates,
bad input and calibration."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.calibration import calibrate
from knowledge.matcher import Decision, Hit, IndexEntry, Matcher, Thresholds, decide
from knowledge.text import TextProcessor

FAQS = [
    IndexEntry("unemp", "失业金怎么申请", ("失业保险金如何领取", "怎么领失业金")),
    IndexEntry("si-break", "社会保险断缴了怎么办", ("社保断了有什么影响",)),
    IndexEntry("pension", "退休以后养老金怎么计算", ("养老金的计算方法",)),
    IndexEntry("disclose", "依申请公开多久答复", ("申请政府信息公开要等多久",)),
    IndexEntry("housing", "住房公积金可以提取吗", ("公积金怎么取出来",)),
    IndexEntry("hukou", "外地户口可以在本市缴纳社会保险吗", ()),
    IndexEntry(
        "long",
        "灵活就业人员在本市办理城镇职工基本养老保险参保登记需要携带哪些材料以及在哪里办理手续",
        (),
    ),
    IndexEntry("short", "工伤认定", ()),
]


def make(text: TextProcessor | None = None) -> Matcher:
    m = Matcher(text or TextProcessor(synonyms=[["社会保险", "社保"]]))
    m.build(FAQS)
    return m


def top(m: Matcher, q: str) -> Hit:
    hits = m.search(q)
    assert hits, q
    return hits[0]


def test_homophone_typo_matches() -> None:
    assert top(make(), "失业今怎么申请").faq_id == "unemp"
    assert top(make(), "失业今").faq_id == "unemp"


def test_synonym_matches_the_long_form() -> None:
    m = make()
    assert top(m, "社保断缴怎么办").faq_id == "si-break"
    assert top(m, "外地户口能在本市交社保吗").faq_id == "hukou"
    # Without the synonym set the abbreviation scores lower against the long form.
    plain = make(TextProcessor())
    with_syn = top(m, "外地户口可以在本市缴纳社保吗").score
    without = top(plain, "外地户口可以在本市缴纳社保吗").score
    assert with_syn > without


def test_traditional_characters_match() -> None:
    hit = top(make(), "依申請公開多久答覆")
    assert hit.faq_id == "disclose"
    assert hit.score > 0.9


def test_filler_wrapped_question_has_the_same_top_hit() -> None:
    m = make()
    plain = top(m, "养老金怎么计算")
    wrapped = top(m, "你好，我想咨询一下，养老金怎么计算呢？谢谢")
    assert wrapped.faq_id == plain.faq_id == "pension"
    assert abs(wrapped.score - plain.score) < 1e-6


def test_exact_questions_of_any_length_score_one() -> None:
    m = make()
    short = top(m, "工伤认定")
    long = top(m, FAQS[6].question)
    assert (short.faq_id, long.faq_id) == ("short", "long")
    assert short.score > 0.99 and long.score > 0.99
    assert short.matched_text == "工伤认定"


def test_one_hit_per_faq_with_its_best_phrasing() -> None:
    hits = make().search("怎么领失业金", k=5)
    ids = [h.faq_id for h in hits]
    assert len(ids) == len(set(ids))
    assert hits[0].faq_id == "unemp" and hits[0].matched_text == "怎么领失业金"
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_unrelated_query_decides_none() -> None:
    m = make()
    assert m.decide(m.search("明天早上六点叫我起床"), Thresholds()).kind == "none"
    assert m.decide(m.search("放首周杰伦的歌"), Thresholds()).kind == "none"


def test_exact_question_is_answered() -> None:
    m = make()
    d = m.decide(m.search("住房公积金可以提取吗"), Thresholds())
    assert d.kind == "answer" and d.hits[0].faq_id == "housing"


def test_decide_rules() -> None:
    th = Thresholds(answer=0.6, margin=0.1, clarify=0.3)
    assert decide([], th) == Decision("none", ())
    assert decide([Hit("a", 0.2, "x")], th).kind == "none"
    assert decide([Hit("a", 0.9, "x"), Hit("b", 0.5, "y")], th).kind == "answer"
    close = decide([Hit("a", 0.9, "x"), Hit("b", 0.85, "y"), Hit("c", 0.4, "z"), Hit("d", 0.35, "w")], th)
    assert close.kind == "clarify" and [h.faq_id for h in close.hits] == ["a", "b", "c"]
    low = decide([Hit("a", 0.5, "x"), Hit("b", 0.1, "y")], th)
    assert low.kind == "clarify" and [h.faq_id for h in low.hits] == ["a"]


def test_upsert_and_remove_are_visible_immediately() -> None:
    m = make()
    assert len(m) == len(FAQS)
    m.upsert(IndexEntry("newfaq", "生育津贴怎么领取", ("生育补贴在哪里申请",)))
    assert len(m) == len(FAQS) + 1
    assert top(m, "生育津贴怎么领").faq_id == "newfaq"
    m.upsert(IndexEntry("newfaq", "医保卡丢了怎么补办", ()))
    old = m.search("生育津贴怎么领取")
    assert all(h.matched_text not in ("生育津贴怎么领取", "生育补贴在哪里申请") for h in old)
    assert all(h.score < 0.5 for h in old)
    assert top(m, "医保卡丢了怎么补办").faq_id == "newfaq"
    m.remove("newfaq")
    m.remove("does-not-exist")
    assert all(h.faq_id != "newfaq" for h in m.search("医保卡丢了怎么补办", k=20))
    assert len(m) == len(FAQS)


def test_many_updates_compact_without_losing_entries() -> None:
    m = make()
    for i in range(1500):
        m.upsert(IndexEntry("churn", f"临时问题第{i}号怎么办理", ()))
    assert top(m, "临时问题第1499号怎么办理").faq_id == "churn"
    assert top(m, "失业金怎么申请").faq_id == "unemp"
    assert m.phrasing_count == sum(1 + len(e.similar) for e in FAQS) + 1


def test_synonym_change_rebuilds_index() -> None:
    tp = TextProcessor()
    m = Matcher(tp)
    m.build([IndexEntry("a", "医疗保险报销比例", ()), IndexEntry("b", "医保卡余额查询", ())])
    tp.set_synonyms([["医疗保险", "医保"]])
    assert top(m, "医保报销比例").score > 0.99


def test_bad_input_gives_empty_hits_not_errors() -> None:
    m = make()
    for q in ["", "   \n\t", "😀😀😀🎉", "\x00\x01\x02", "!!!???。。。"]:
        assert m.search(q) == []
    assert Matcher().search("失业金") == []
    huge = "失业金怎么申请" + "啊" * 20_000
    assert top(m, huge).faq_id == "unemp"
    sql = top(m, "'; DROP TABLE faq; -- 失业金怎么申请")
    assert sql.faq_id == "unemp"
    mixed = top(m, "How to apply 失业金 online?")
    assert mixed.faq_id == "unemp"
    assert m.search(None) == []  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
    | st.text(alphabet="失业金社保养老申请的了吗" + string.printable)
)
def test_search_never_raises_and_scores_in_unit_interval(q: str) -> None:
    hits = MATCHER.search(q, k=5)
    assert len(hits) <= 5
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    decide(hits, Thresholds())


MATCHER = make()


def test_passage_mode_scores_query_coverage() -> None:
    m = Matcher(mode="passage")
    m.build(
        [
            IndexEntry("1", "对依申请公开的信息，行政机关应当在收到申请之日起20个工作日内予以答复；" * 3),
            IndexEntry("2", "推进政策留言板建设，完善咨询回应机制，对集中反映的问题启动专题调查。"),
        ]
    )
    hit = top(m, "依申请公开多久答复")
    assert hit.faq_id == "1"
    assert 0.0 <= hit.score <= 1.0 and hit.score > 0.5
    assert top(m, "政策留言板").faq_id == "2"


def test_calibrate_proposes_thresholds_from_the_store() -> None:
    entries = [
        IndexEntry(f"f{i}", f"第{i}类业务{c}怎么办理", (f"{c}业务第{i}类如何办",))
        for i, c in enumerate("甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥")
    ]
    rep = calibrate(entries)
    assert rep.n_held_out == 2 * len(entries)
    assert rep.n_negatives == len(entries)
    assert 0.0 <= rep.thresholds.clarify <= rep.thresholds.answer <= 1.0
    assert 0.0 <= rep.expected_answer_rate <= 1.0 and 0.0 <= rep.expected_decline_rate <= 1.0


def test_calibrate_falls_back_to_defaults_with_too_little_data() -> None:
    rep = calibrate(FAQS)
    assert rep.thresholds == Thresholds()
    assert any("too little data" in n for n in rep.notes)
