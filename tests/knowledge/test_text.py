"""Tests for knowledge.text: normalisation, filler, synonyms, words, pinyin keys."""

from __future__ import annotations

from knowledge.text import TextProcessor


def test_full_width_traditional_punctuation_and_emoji_normalise() -> None:
    tp = TextProcessor()
    assert tp.normalise("ＡＢＣ１２３，失業金怎麼申請？😀") == "abc123 失业金怎么申请"
    assert tp.normalise("\x00\x07\u200b") == ""
    assert tp.normalise("") == ""


def test_polite_filler_is_removed_but_words_containing_particles_stay() -> None:
    tp = TextProcessor()
    assert tp.normalise("你好，请问一下失业金怎么领啊？") == "失业金怎么领"
    assert tp.normalise("我想咨询一下 社保断缴怎么办呢") == "社保断缴怎么办"
    assert "哈尔滨" in tp.normalise("哈尔滨的社保")
    # A message of only filler keeps its words rather than becoming empty.
    assert tp.normalise("你好") == "你好"


def test_synonyms_rewrite_to_the_first_term_and_are_editable() -> None:
    tp = TextProcessor()
    v0 = tp.version
    tp.set_synonyms([["社会保险", "社保"], ["住房公积金", "公积金"]])
    assert tp.version > v0
    assert tp.normalise("社保怎么交") == "社会保险怎么交"
    # The canonical term containing a variant is not rewritten twice.
    assert tp.normalise("住房公积金和公积金") == "住房公积金和住房公积金"
    assert ["社会保险", "社保"] in tp.synonyms()
    tp.set_synonyms([])
    assert tp.normalise("社保怎么交") == "社保怎么交"


def test_added_words_become_jieba_tokens() -> None:
    tp = TextProcessor()
    tp.add_words(["灵活就业人员参保"])
    assert "灵活就业人员参保" in tp.tokens("灵活就业人员参保怎么办理")


def test_pinyin_key_matches_homophone_typos() -> None:
    tp = TextProcessor()
    assert tp.pinyin_key("失业今") == tp.pinyin_key("失业金") == "shi ye jin"
    assert tp.pinyin_key("abc 社保") == "abc she bao"


def test_features_cover_words_chars_and_pinyin_bigrams() -> None:
    tp = TextProcessor()
    feats = tp.features(tp.normalise("申请失业金"))
    assert feats["申请"] == "w"
    assert feats["金"] == "c"
    assert feats["~ye_jin"] == "p"
