"""Chinese text processing for matching: normalisation (NFKC, full/half width, traditional to
simplified, punctuation, emoji, control characters, polite filler words), jieba tokens with a
domain dictionary, synonym canonicalisation and toneless pinyin keys. It owns the one process-wide
jieba tokenizer, which is loaded lazily on first use (about a second) and never per request, and the
features (words, single characters, pinyin) that `knowledge.matcher` indexes."""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

# Polite filler that carries no meaning for matching. Longest first so that 我想咨询一下 is removed
# whole before 一下 is considered. Single characters are sentence-final particles only.
DEFAULT_FILLERS: tuple[str, ...] = (
    "我想咨询一下",
    "我想问一下",
    "想咨询一下",
    "我想咨询",
    "我想了解一下",
    "想了解一下",
    "想问一下",
    "咨询一下",
    "请问一下",
    "请教一下",
    "麻烦问一下",
    "问一下",
    "请问",
    "请教",
    "你好",
    "您好",
    "谢谢你",
    "谢谢您",
    "谢谢",
    "多谢",
    "麻烦你",
    "麻烦您",
    "一下",
    "啊",
    "呢",
    "呀",
    "哦",
    "嘛",
    "哈",
    "喔",
    "噢",
    "哎",
    "唉",
    "吧",
)

_WS = re.compile(r"\s+")
_ASCII_RUN = re.compile(r"[a-z0-9]+")

_jieba_lock = threading.Lock()
_jieba_tokenizer: Any = None


def _jieba() -> Any:
    """The process-wide jieba tokenizer, loaded on first use (about one second)."""
    global _jieba_tokenizer
    if _jieba_tokenizer is None:
        with _jieba_lock:
            if _jieba_tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_tokenizer = jieba.dt
    return _jieba_tokenizer


def warm_up() -> None:
    """Load jieba, zhconv and pypinyin now (server start, CLI command) rather than on the first question."""
    _jieba()
    _to_simplified("申請")
    _char_pinyin("金")


@functools.lru_cache(maxsize=1)
def _zhconv() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import zhconv.zhconv
    return zhconv


@functools.lru_cache(maxsize=1)
def _t2s_table() -> dict[int, str]:
    """Single traditional characters that zhconv's zh-cn dictionary changes."""
    table = _zhconv().zhconv.getdict("zh-cn")
    return {ord(k): v for k, v in table.items() if len(k) == 1 and k != v}


def _to_simplified(s: str) -> str:
    """Traditional -> simplified. Text without a traditional character (most questions) skips
    zhconv's phrase-level conversion, which costs about 40 us per question."""
    if s.translate(_t2s_table()) == s:
        return s
    return str(_zhconv().convert(s, "zh-cn"))


@functools.lru_cache(maxsize=65536)
def _char_pinyin(ch: str) -> str:
    """Toneless pinyin of one CJK character (its most common reading), '' for anything else."""
    from pypinyin import Style, lazy_pinyin

    out = lazy_pinyin(ch, style=Style.NORMAL, errors="ignore")
    return out[0] if out else ""


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2FA1F or 0xF900 <= o <= 0xFAFF


def _clean_char(ch: str) -> str:
    """Keep letters and digits; turn punctuation, symbols (emoji), controls and marks into a space."""
    if ch.isalnum():
        return ch
    return " "


class TextProcessor:
    """Normalises Chinese questions and turns them into match features.

    Synonym sets and added words change how text normalises and splits; `version` increases on every
    such change so that an index built with an older version knows to rebuild itself.
    """

    def __init__(
        self,
        synonyms: Sequence[Sequence[str]] = (),
        words: Iterable[str] = (),
        fillers: Sequence[str] = DEFAULT_FILLERS,
    ) -> None:
        self.version = 0
        self._fillers_re = self._filler_pattern(fillers)
        self._syn_map: dict[str, str] = {}
        self._syn_re: re.Pattern[str] | None = None
        self._words: set[str] = set()
        self._lock = threading.Lock()
        if synonyms:
            self.set_synonyms(synonyms)
        if words:
            self.add_words(words)

    # -- configuration ---------------------------------------------------------------------------
    @staticmethod
    def _alternation(terms: Sequence[str]) -> re.Pattern[str] | None:
        if not terms:
            return None
        return re.compile("|".join(re.escape(t) for t in terms))

    @classmethod
    def _filler_pattern(cls, fillers: Sequence[str]) -> re.Pattern[str] | None:
        """Multi-character filler anywhere; single-character particles only at the end of a clause
        (so 哈 in 哈尔滨 stays)."""
        base = {cls._base(f) for f in fillers if isinstance(f, str) and f.strip()}
        multi = sorted((f for f in base if len(f) > 1), key=len, reverse=True)
        single = sorted(f for f in base if len(f) == 1)
        parts = [re.escape(f) for f in multi]
        if single:
            parts.append("[" + "".join(re.escape(f) for f in single) + "]+(?= |$)")
        return re.compile("|".join(parts)) if parts else None

    def set_synonyms(self, sets: Sequence[Sequence[str]]) -> None:
        """Replace all synonym sets. In each set the first term is canonical: every other term is
        rewritten to it before tokenising, so 社保 and 社会保险 become the same feature."""
        mapping: dict[str, str] = {}
        for group in sets:
            terms = [self._base(t) for t in group if isinstance(t, str)]
            terms = [t for t in terms if t]
            if len(terms) < 2:
                continue
            canonical = terms[0]
            for t in terms:
                mapping.setdefault(t, canonical)
        with self._lock:
            self._syn_map = mapping
            self._syn_re = self._alternation(sorted(mapping, key=len, reverse=True))
            self.version += 1
        self._add_to_jieba(set(mapping.values()))

    def synonyms(self) -> list[list[str]]:
        """The current synonym sets, canonical term first."""
        groups: dict[str, list[str]] = {}
        for term, canonical in self._syn_map.items():
            groups.setdefault(canonical, [canonical])
            if term != canonical:
                groups[canonical].append(term)
        return list(groups.values())

    def add_words(self, words: Iterable[str]) -> None:
        """Add domain terms (e.g. 失业保险金, 灵活就业) to the jieba dictionary of this process."""
        new = {
            w
            for w in (self.normalise(x) if isinstance(x, str) else "" for x in words)
            if len(w) >= 2 and " " not in w
        }
        new -= self._words
        if not new:
            return
        with self._lock:
            self._words |= new
            self.version += 1
        self._add_to_jieba(new)

    @staticmethod
    def _add_to_jieba(words: Iterable[str]) -> None:
        tok = _jieba()
        for w in words:
            if len(w) >= 2:
                tok.add_word(w)

    # -- normalisation ---------------------------------------------------------------------------
    @staticmethod
    def _base(s: str) -> str:
        """NFKC (full width to half width), lower case, simplified Chinese, letters and digits only."""
        s = unicodedata.normalize("NFKC", s).lower()
        s = "".join(_clean_char(ch) for ch in s)
        s = _to_simplified(s)
        return _WS.sub(" ", s).strip()

    def normalise(self, s: str, max_chars: int | None = None) -> str:
        """Canonical form used for matching: NFKC, lower case, simplified, punctuation, emoji and
        control characters removed, polite filler removed, synonyms rewritten to their canonical
        term, whitespace collapsed. `max_chars` truncates the input first (kept whole words)."""
        if not isinstance(s, str) or not s:
            return ""
        if max_chars is not None and len(s) > max_chars:
            s = s[:max_chars]
        return self._rewrite_synonyms(self._strip_fillers(self._base(s)))

    def normalise_steps(self, s: str, max_chars: int | None = None) -> list[tuple[str, str]]:
        """The stages of `normalise`, for showing staff why a question matched: (stage, text) for
        the unified form (NFKC, lower case, simplified, punctuation), filler removed, synonyms."""
        if not isinstance(s, str) or not s:
            return []
        if max_chars is not None and len(s) > max_chars:
            s = s[:max_chars]
        base = self._base(s)
        stripped = self._strip_fillers(base)
        return [("unified", base), ("fillers", stripped), ("synonyms", self._rewrite_synonyms(stripped))]

    def _strip_fillers(self, s: str) -> str:
        if self._fillers_re is not None:
            stripped = _WS.sub(" ", self._fillers_re.sub(" ", s)).strip()
            # A question made only of filler (e.g. "你好") keeps its words.
            if stripped:
                return stripped
        return s

    def _rewrite_synonyms(self, s: str) -> str:
        if self._syn_re is not None:
            syn = self._syn_map
            return self._syn_re.sub(lambda m: syn[m.group(0)], s)
        return s

    # -- features --------------------------------------------------------------------------------
    def tokens(self, s: str) -> list[str]:
        """jieba words of the normalised text (spaces dropped)."""
        norm = self.normalise(s)
        return self.tokens_of_normalised(norm)

    def tokens_of_normalised(self, norm: str) -> list[str]:
        if not norm:
            return []
        return [w for w in _jieba().lcut(norm, HMM=False) if w.strip()]

    def pinyin_key(self, s: str) -> str:
        """Toneless pinyin of the normalised text, syllables joined by spaces: homophone typos
        (失业今 / 失业金) share the same key."""
        return self.pinyin_of_normalised(self.normalise(s))

    @staticmethod
    def pinyin_of_normalised(norm: str) -> str:
        parts: list[str] = []
        run = ""
        for ch in norm + " ":
            if is_cjk(ch) or ch == " ":
                if run:
                    parts.append(run)
                    run = ""
                if ch != " ":
                    parts.append(_char_pinyin(ch) or ch)
            else:
                run += ch
        return " ".join(parts)

    def features(self, norm: str) -> dict[str, str]:
        """Match features of a normalised text, mapped to their kind:
        'w' jieba word of two or more characters (or a whole ASCII run), 'c' single CJK character,
        'p' pinyin bigram of adjacent CJK characters (prefixed with '~')."""
        feats: dict[str, str] = {}
        if not norm:
            return feats
        for w in self.tokens_of_normalised(norm):
            if len(w) >= 2 or w.isascii():
                feats.setdefault(w, "w")
        for run in _ASCII_RUN.findall(norm):
            feats.setdefault(run, "w")
        prev = ""
        for ch in norm:
            if is_cjk(ch):
                feats.setdefault(ch, "c")
                py = _char_pinyin(ch) or ch
                if prev:
                    feats.setdefault("~" + prev + "_" + py, "p")
                prev = py
            else:
                prev = ""
        return feats


def decode_text_bytes(data: bytes) -> str | None:
    """The text of an uploaded file: UTF-16 with BOM, UTF-8 (with or without BOM), else GB18030 (a
    superset of GBK, what Chinese Excel writes). None when no encoding fits."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None
