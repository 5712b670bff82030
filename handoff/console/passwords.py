"""Password strength for console accounts: refuses common and guessable passwords that the length
and character-class rules of `handoff.console.auth.check_password_policy` let through.

Two checks, in this order. First our own short list of patterns typical of Chinese users, which
the English-centred frequency lists miss or rank too low: the "I love you" words and numbers
(woaini, aini, 5201314, 1314), "qq" followed by a QQ number, a name in pinyin plus digits or symbols
(zhangwei1990, Wang.Xiaoming88), keyboard walks (1qaz2wsx, zaq12wsx, 123qwe, qwerty) and the digit
runs that top the Chinese leak lists (123456, 888888, 123123; zxcvbn lets "Admin@123456" pass). Then
zxcvbn (Dropbox's estimator, Python port), which knows the common-password, name and word lists,
l33t substitutions, dates, repeats and sequences: a password it scores below 3 (fewer than about
10^8 guesses) is refused. Messages for the user are Chinese and say what to avoid.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from typing import Final

from zxcvbn import zxcvbn

MIN_SCORE: Final = 3  # zxcvbn's "safely unguessable: moderate protection from offline slow-hash scenario"
_ZXCVBN_MAX = 72  # zxcvbn refuses longer input; the first 72 characters decide

_LOVE = re.compile(r"woaini|5201314|1314|(?<![a-z])aini")  # on the lowercased password
_QQ = re.compile(r"qq[\W_]*\d{4,}")
_SHIFTED = str.maketrans("!@#$%^&*()", "1234567890")  # a keyboard walk typed with Shift
_WALK_RUN = 6  # this many consecutive keys of a walk
_WALKS: Final = (
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm",
    "zaq12wsxcde34rfv",
    "zaq1xsw2cde3vfr4",
    "qazwsxedcrfvtgb",
    "1q2w3e4r5t6y7u8i9o0p",
    "123qweasdzxc",
    "qweasdzxc",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "147258369",
    "741852963",
    "159753",
)
# the most common surnames in pinyin (compound ones included)
_SURNAMES: Final = frozenset(
    "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo zheng liang "
    "xie song tang han feng deng cao peng zeng xiao tian dong yuan pan cai jiang yu du ye cheng wei su "
    "lu ding ren shen yao jin fu zhong cui tan lv fan qian wan dai xia shi jia qiu hou fang bai kong "
    "yan mo meng qin gu mao hao xiong duan lei long tao ouyang situ sima zhuge shangguan".split()
)


@cache
def _syllables() -> frozenset[str]:
    """Every toneless pinyin syllable, from pypinyin's character dictionary (ü read as u)."""
    from pypinyin.pinyin_dict import pinyin_dict

    out: set[str] = set()
    for readings in set(pinyin_dict.values()):
        for reading in readings.split(","):
            plain = "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))
            if plain.isascii() and plain.isalpha() and any(v in plain for v in "aeiou"):
                out.add(plain)
    return frozenset(out)


def _splits(letters: str, low: int, high: int) -> bool:
    """Whether `letters` is between `low` and `high` pinyin syllables."""
    if not letters:
        return low <= 0
    if high <= 0:
        return False
    syllables = _syllables()
    return any(
        letters[:n] in syllables and _splits(letters[n:], low - 1, high - 1)
        for n in range(1, min(6, len(letters)) + 1)
    )


def _is_pinyin_name(password: str) -> bool:
    """All the letters of the password spell a surname and one or two more syllables."""
    if any(c.isalpha() and not c.isascii() for c in password):
        return False
    letters = "".join(c for c in password.lower() if c.isalpha())
    return any(letters.startswith(s) and _splits(letters[len(s) :], 1, 2) for s in _SURNAMES)


def _has_walk(lowered: str) -> bool:
    keys = lowered.translate(_SHIFTED)
    return any(walk[i : i + _WALK_RUN] in keys for walk in _WALKS for i in range(len(walk) - _WALK_RUN + 1))


def _has_digit_run(password: str) -> bool:
    """Six or more digits in a row that count up, count down or repeat (123456, 987654, 888888)."""
    for run in re.findall(r"\d{6,}", password):
        for i in range(len(run) - 5):
            window = run[i : i + 6]
            steps = {int(b) - int(a) for a, b in zip(window, window[1:], strict=False)}
            if (len(steps) == 1 and steps <= {-1, 0, 1}) or window[:3] * 2 == window:  # 123123, 520520
                return True
    return False


def weakness(password: str, user_inputs: Sequence[str] = ()) -> tuple[str, str] | None:
    """(Chinese message, English log reason) when the password is too guessable, else None.
    `user_inputs` (the username and its parts) make passwords built from them weaker."""
    lowered = password.lower()
    if _LOVE.search(lowered):
        return ("密码不能含有“woaini”“aini”“5201314”“1314”等常见的表白词或数字，请换一个", "love pattern")
    if _QQ.search(lowered):
        return ("密码不能是“QQ”加数字（如 qq123456），请换一个", "qq number")
    if _is_pinyin_name(password):
        return (
            "密码不能是姓名拼音加数字或符号（如 zhangwei1990），请换一个不含个人信息的密码",
            "pinyin name",
        )
    if _has_walk(lowered):
        return ("密码不能含有键盘上连续的按键（如 1qaz2wsx、qwerty），请换一个", "keyboard walk")
    if _has_digit_run(password):
        return ("密码不能含有 123456、888888 这类简单的数字串，请换一个", "digit run")
    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=[u for u in user_inputs if u])
    score = int(result["score"])
    if score < MIN_SCORE:
        warning = str(result.get("feedback", {}).get("warning") or "low score")
        return (
            "密码过于常见或容易被猜到，请换一个更长、更无规律的密码（例如几个不相关的词语加数字和符号）",
            f"zxcvbn score {score}: {warning}",
        )
    return None


__all__ = ["MIN_SCORE", "weakness"]
