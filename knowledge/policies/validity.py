"""Whether a policy, and an FAQ that rests on it, is still current: this module owns the policy
statuses (有效 / 已修订 / 失效 / 废止; 失效 and 废止 are inactive, 已修订 stays current with a note), the
check of a status given by a caller, and the one rule that decides whether an FAQ may be given as a
current answer (its source policy's status and its [valid_from, valid_to] dates against `today`).
"""

from __future__ import annotations

import datetime as dt

from knowledge.errors import InvalidInput

STATUSES: tuple[str, ...] = ("有效", "已修订", "失效", "废止")
INACTIVE_STATUSES: frozenset[str] = frozenset({"失效", "废止"})


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidInput(
            f"文件状态“{status}”无效，只能是：{'、'.join(STATUSES)}。", f"invalid policy status {status!r}"
        )


def faq_validity(
    policy_status: str | None,
    valid_from: dt.date | dt.datetime | None,
    valid_to: dt.date | dt.datetime | None,
    today: dt.date,
) -> tuple[bool, str | None]:
    """Whether an FAQ may be given as a current answer, with the Chinese reason when not.

    `policy_status` is the status of the FAQ's source policy, None when it has none or the policy is
    not imported. A source policy that is 失效/废止 or a date outside [valid_from, valid_to] makes it
    not current. An unknown source policy does not (the FAQ may cite a document not imported); a
    policy marked 已修订 stays current with the note 来源文件已修订.
    """
    if policy_status is not None and policy_status in INACTIVE_STATUSES:
        return False, "来源文件已废止" if policy_status == "废止" else "来源文件已失效"
    start = _day(valid_from)
    end = _day(valid_to)
    if end is not None and today > end:
        return False, f"已超过有效期（{end.isoformat()}）"
    if start is not None and today < start:
        return False, f"尚未生效（{start.isoformat()}起施行）"
    if policy_status == "已修订":
        return True, "来源文件已修订"
    return True, None


def _day(value: dt.date | dt.datetime | None) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    return value
