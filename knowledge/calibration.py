"""Thresholds of a store from its own phrasings: `collect` holds every similar phrasing out in turn
(its own FAQ should answer it) and removes sampled FAQs whole (nothing should answer their question),
and `choose` picks the answer / margin / clarify thresholds that maximise an expected utility over
those samples: a direct right answer gains 1, a clarify that offers the right FAQ gains half, a wrong
answer costs three, a pointless clarify a little; under two limits (estimated false answers at most
5 %, at least 90 % of the removed FAQs' questions declined). `calibrate` runs both and says why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from knowledge.matcher import Hit, IndexEntry, Matcher, Thresholds
from knowledge.text import TextProcessor

# Utility of one question's outcome (the rule; not fitted to any data).
RIGHT_ANSWER = 1.0
CLARIFY_RIGHT = 0.5  # the citizen picks the right choice: one more step
WRONG_ANSWER = -1.0  # balanced against a right answer; MAX_FALSE_ANSWER caps the total
CLARIFY_NONE = -0.1  # a menu without the right FAQ (or for a question the store cannot answer)
IN_SCOPE_SHARE = 0.5  # prior share of questions the store can answer
MAX_FALSE_ANSWER = 0.05  # estimated share of all questions answered with a wrong FAQ
MIN_NEGATIVES_DECLINED = 0.90  # questions of removed FAQs that get neither answer nor clarify

MIN_CALIBRATION_PAIRS = 20  # held-out phrasings needed to weigh right answers ...
MIN_CALIBRATION_FAQS = 20  # ... from at least this many FAQs (else they describe a few FAQs only)
MIN_CALIBRATION_NEGATIVES = 20
MAX_POSITIVES = 600  # held-out phrasings searched (a stride sample on big stores)
MAX_NEGATIVES = 300  # removed FAQs searched

ANSWER_GRID = np.round(np.arange(0.25, 0.951, 0.01), 3)
MARGIN_GRID = np.array([0.0, 0.02, 0.05, 0.08, 0.12, 0.16])
CLARIFY_GRID = np.round(np.arange(0.20, 0.951, 0.01), 3)


@dataclass(frozen=True)
class ThresholdPins:
    """Thresholds fixed by the operator (settings); None = automatic. Pinned values always win."""

    answer: float | None = None
    margin: float | None = None
    clarify: float | None = None

    def apply(self, t: Thresholds) -> Thresholds:
        return Thresholds(
            answer=t.answer if self.answer is None else self.answer,
            margin=t.margin if self.margin is None else self.margin,
            clarify=t.clarify if self.clarify is None else self.clarify,
        )

    @property
    def complete(self) -> bool:
        return None not in (self.answer, self.margin, self.clarify)

    def names(self) -> tuple[str, ...]:
        return tuple(n for n in ("answer", "margin", "clarify") if getattr(self, n) is not None)


@dataclass(frozen=True)
class Samples:
    """Per sample: top score, the second FAQ's score, whether the own FAQ is first, and the own FAQ's
    score when it is among the top 3 (else -1). Negatives have no own FAQ."""

    pos_top: npt.NDArray[np.float64]
    pos_second: npt.NDArray[np.float64]
    pos_own_first: npt.NDArray[np.bool_]
    pos_own_score: npt.NDArray[np.float64]
    pos_faqs: int  # distinct FAQs the positives come from
    neg_top: npt.NDArray[np.float64]
    neg_second: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Expected:
    """What a set of thresholds does to the samples (shares of positives / negatives)."""

    right: float  # held-out phrasings answered directly with their own FAQ
    clarify_right: float  # held-out phrasings given a clarify that offers their own FAQ
    wrong: float  # held-out phrasings answered with another FAQ
    negatives_answered: float
    negatives_declined: float
    false_answer: float  # estimated share of all questions answered wrongly (IN_SCOPE_SHARE prior)
    utility: float


@dataclass(frozen=True)
class CalibrationReport:
    thresholds: Thresholds
    expected_answer_rate: float  # held-out paraphrases answered with their own FAQ
    expected_decline_rate: float  # negatives (phrasings of FAQs not in the index) declined
    n_held_out: int
    n_negatives: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    automatic: bool = True  # False: too little data, the defaults were kept
    expected: Expected | None = None
    defaults_expected: Expected | None = None  # the same figures for the built-in defaults


def _hits_row(hits: Sequence[Hit], own: str | None) -> tuple[float, float, bool, float]:
    top = hits[0].score if hits else 0.0
    second = hits[1].score if len(hits) > 1 else 0.0
    first = bool(hits) and hits[0].faq_id == own
    own_score = next((h.score for h in hits[:3] if h.faq_id == own), -1.0)
    return top, second, first, own_score


def collect(matcher: Matcher) -> Samples:
    """Positives: each phrasing of an FAQ with two or more, searched as if it were not indexed.
    Negatives: sampled FAQs left out whole, their standard question searched. Reads the index only
    (`Matcher.search_without`), so it can run beside live searches."""
    entries = sorted(matcher.entries(), key=lambda e: e.faq_id)
    pairs = [(e, p) for e in entries if e.similar for p in (e.question, *e.similar)]
    pos = [
        _hits_row(matcher.search_without(p, 5, e.faq_id, p), e.faq_id)
        for e, p in pairs[:: max(1, -(-len(pairs) // MAX_POSITIVES))]
    ]
    neg = [
        _hits_row(matcher.search_without(e.question, 5, e.faq_id), None)
        for e in entries[:: max(1, -(-len(entries) // MAX_NEGATIVES))]
    ]
    p = np.array(pos, dtype=np.float64).reshape(-1, 4)
    n = np.array(neg, dtype=np.float64).reshape(-1, 4)
    n_faqs = len({e.faq_id for e, _ in pairs})
    return Samples(p[:, 0], p[:, 1], p[:, 2] > 0.5, p[:, 3], n_faqs, n[:, 0], n[:, 1])


def _rates(s: Samples, a: object, m: object, c: object) -> dict[str, npt.NDArray[np.float64]]:
    """Shares of each outcome for thresholds given as arrays that broadcast against (..., 1) with the
    samples on the last axis; the same rule as `decide`."""
    a, m, c = (np.asarray(x, dtype=np.float64)[..., None] for x in (a, m, c))

    def masks(top: npt.NDArray[np.float64], second: npt.NDArray[np.float64]):  # type: ignore[no-untyped-def]
        ans = (top >= a) & (top - second >= m) & (top >= c)
        return ans, (top >= c) & ~ans

    na, nc = masks(s.neg_top, s.neg_second)
    pa, pc = masks(s.pos_top, s.pos_second)
    offered = s.pos_own_score >= c

    def share(x: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
        return np.asarray(x.mean(axis=-1) if x.shape[-1] else np.zeros(x.shape[:-1]), dtype=np.float64)

    r = {
        "right": share(pa & s.pos_own_first),
        "wrong": share(pa & ~s.pos_own_first),
        "clarify_right": share(pc & offered),
        "clarify_other": share(pc & ~offered),
        "neg_answered": share(na),
        "neg_clarify": share(nc),
    }
    pos_u = RIGHT_ANSWER * r["right"] + WRONG_ANSWER * r["wrong"]
    pos_u = pos_u + CLARIFY_RIGHT * r["clarify_right"] + CLARIFY_NONE * r["clarify_other"]
    neg_u = WRONG_ANSWER * r["neg_answered"] + CLARIFY_NONE * r["neg_clarify"]
    r["utility"] = IN_SCOPE_SHARE * pos_u + (1 - IN_SCOPE_SHARE) * neg_u
    r["false"] = IN_SCOPE_SHARE * r["wrong"] + (1 - IN_SCOPE_SHARE) * r["neg_answered"]
    r["declined"] = 1.0 - r["neg_answered"] - r["neg_clarify"]
    return r


def expected(s: Samples, t: Thresholds) -> Expected:
    """Shares and utility of one set of thresholds on the samples."""
    r = {k: float(v) for k, v in _rates(s, t.answer, t.margin, t.clarify).items()}
    return Expected(
        right=round(r["right"], 4),
        clarify_right=round(r["clarify_right"], 4),
        wrong=round(r["wrong"], 4),
        negatives_answered=round(r["neg_answered"], 4),
        negatives_declined=round(r["declined"], 4),
        false_answer=round(r["false"], 4),
        utility=round(r["utility"], 4),
    )


def _utility_grid(s: Samples, use_positives: bool) -> npt.NDArray[np.float64]:
    """Utility of every (answer, margin, clarify) on the grids; -inf where a limit is broken or
    clarify is above answer. Without enough positives the utility is the answer threshold's
    lowness (more answers) at the default margin, under the same limits. One answer value at a
    time, so memory stays at margins x clarify values x samples."""
    m, c = MARGIN_GRID[:, None], CLARIFY_GRID[None, :]
    out = np.full((len(ANSWER_GRID), len(MARGIN_GRID), len(CLARIFY_GRID)), -np.inf)
    for i, a in enumerate(ANSWER_GRID):
        r = _rates(s, np.full((len(MARGIN_GRID), len(CLARIFY_GRID)), a), m + 0 * c, c + 0 * m)
        if use_positives:
            util = r["utility"]
        else:
            util = np.where(np.isclose(m + 0 * c, Thresholds().margin), -a, -np.inf)
        ok = (r["false"] <= MAX_FALSE_ANSWER + 1e-9) & (r["declined"] >= MIN_NEGATIVES_DECLINED - 1e-9)
        ok &= c + 0 * m <= a
        out[i] = np.where(ok, util, -np.inf)
    return out


def _median_choice(util: npt.NDArray[np.float64]) -> tuple[int, int, int] | None:
    """On the best plateau (cells of equal utility: no sample tells them apart), the lowest answer
    threshold, then the lowest margin (answer more when nothing says it costs), then the median
    clarify threshold."""
    best = float(util.max())
    if not np.isfinite(best):
        return None
    cells = np.argwhere(util >= best - 1e-9)
    ai = int(cells[:, 0].min())
    cells = cells[cells[:, 0] == ai]
    mi = int(cells[:, 1].min())
    cells = cells[cells[:, 1] == mi]
    ci = int(np.sort(cells[:, 2])[len(cells) // 2])
    return ai, mi, ci


def choose(s: Samples) -> CalibrationReport:
    """The thresholds the rule picks for these samples, with the reasons as notes."""
    defaults = Thresholds()
    n_pos, n_neg = len(s.pos_top), len(s.neg_top)
    notes: list[str] = []
    if n_neg < MIN_CALIBRATION_NEGATIVES:
        notes.append(
            f"too little data to calibrate ({n_neg} FAQs; need {MIN_CALIBRATION_NEGATIVES}): "
            "default thresholds kept"
        )
        return _report(s, defaults, notes, automatic=False)
    use_pos = n_pos >= MIN_CALIBRATION_PAIRS and s.pos_faqs >= MIN_CALIBRATION_FAQS
    choice = _median_choice(_utility_grid(s, use_pos))
    if choice is None:
        notes.append("no thresholds meet the limits on this store: default thresholds kept")
        return _report(s, defaults, notes, automatic=False)
    ai, mi, ci = choice
    t = Thresholds(float(ANSWER_GRID[ai]), float(MARGIN_GRID[mi]), float(CLARIFY_GRID[ci]))
    if use_pos:
        notes.append(
            f"rule: maximise expected utility (right answer +{RIGHT_ANSWER:g}, clarify offering the right FAQ "
            f"+{CLARIFY_RIGHT:g}, wrong answer {WRONG_ANSWER:g}, clarify without it {CLARIFY_NONE:g}; "
            f"{IN_SCOPE_SHARE:.0%} of questions assumed answerable) over {n_pos} held-out phrasings and "
            f"{n_neg} removed FAQs"
        )
    else:
        notes.append(
            f"only {n_pos} held-out paraphrases from {s.pos_faqs} FAQs (need {MIN_CALIBRATION_PAIRS} from "
            f"{MIN_CALIBRATION_FAQS} FAQs to weigh right answers): the lowest answer threshold within the "
            "limits was chosen, at the default margin; add similar phrasings to improve it"
        )
    notes.append(
        f"limits: estimated false answers <= {MAX_FALSE_ANSWER:.0%}, removed FAQs' questions declined "
        f">= {MIN_NEGATIVES_DECLINED:.0%}; among equally good thresholds the lowest"
    )
    for delta in (-0.05, 0.05):
        alt = Thresholds(round(t.answer + delta, 3), t.margin, min(t.clarify, round(t.answer + delta, 3)))
        e = expected(s, alt)
        notes.append(
            f"answer {alt.answer:.2f} instead: right {e.right:.1%}, false answers {e.false_answer:.1%}, "
            f"utility {e.utility:+.3f}"
        )
    return _report(s, t, notes, automatic=True)


def _report(s: Samples, t: Thresholds, notes: list[str], *, automatic: bool) -> CalibrationReport:
    e = expected(s, t)
    return CalibrationReport(
        thresholds=t,
        expected_answer_rate=e.right,
        expected_decline_rate=e.negatives_declined,
        n_held_out=len(s.pos_top),
        n_negatives=len(s.neg_top),
        notes=tuple(notes),
        automatic=automatic,
        expected=e,
        defaults_expected=expected(s, Thresholds()),
    )


def calibrate(entries: Sequence[IndexEntry], text: TextProcessor | None = None) -> CalibrationReport:
    """Thresholds for a store from its own phrasings (see the module docstring)."""
    matcher = Matcher(text or TextProcessor())
    matcher.build(e for e in entries if isinstance(e.question, str) and e.question.strip())
    return choose(collect(matcher))
