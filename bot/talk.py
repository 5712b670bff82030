"""What a window clerk recognises before looking anything up: small talk (greetings, thanks,
farewells, "在吗", praise, emoji only; the built-in phrases are the table in `bot.texts`, administrators'
edits come from `knowledge.smalltalk`), requests for a person
(我要留言, 转人工, 人工客服, 找工作人员, 我要投诉/建议/举报 with the form's category preset), whether a
question looks like policy at all (honest scope), whether a policy passage covers the question's key
terms, and short follow-ups that only make sense with the previous answer's topic. Pure functions on
text; the Dialogue decides with them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence

from bot import texts
from handoff.tickets.records import CATEGORIES
from knowledge.smalltalk import SmallTalkEntry, compact

_TRAILING = re.compile(r"[啊呀哈呢吧哦噢喔嘛啦～~]+$")
_PERSON = re.compile(
    r"^(?:我要|我想|我需要|我想要|请|帮我|麻烦)?(?:转|找|联系|接|要)?"
    r"(?:留言|人工|人工客服|人工服务|客服|真人|工作人员|人工坐席|人工回复|转人工客服)"
    r"(?:服务|客服|一下|吧)?$"
)
_CATEGORY = re.compile(
    r"^(?:我要|我想|我需要|我想要|我来|想)(投诉|建议|举报|求助|提建议|提个建议|反映|反映问题)"
)
# Words that make a question look like a policy question even when the knowledge base has nothing.
POLICY_TERMS = (
    "政策",
    "政府",
    "公开",
    "申请",
    "办理",
    "办事",
    "补贴",
    "补助",
    "津贴",
    "社保",
    "医保",
    "养老",
    "失业",
    "就业",
    "工伤",
    "生育",
    "低保",
    "救助",
    "公积金",
    "户口",
    "户籍",
    "落户",
    "居住证",
    "身份证",
    "证明",
    "证件",
    "材料",
    "手续",
    "流程",
    "条件",
    "标准",
    "规定",
    "文件",
    "通知",
    "留言",
    "信息",
    "审批",
    "窗口",
    "热线",
    "12345",
    "12333",
    "资格",
    "待遇",
    "税",
    "缴费",
    "费用",
    "许可",
    "登记",
    "备案",
    "决策",
    "解读",
    "部门",
    "人社",
    "街道",
    "居委",
    "镇政府",
    "区政府",
    "退休",
    "人才",
    "营业执照",
    "企业",
    "创业",
    "培训",
    "招聘",
    "考试",
    "入学",
    "学籍",
    "住房",
    "保障房",
    "租房",
    "拆迁",
    "征收",
    "投诉",
    "举报",
    "工资",
    "劳动",
    "合同",
    "仲裁",
    "残疾",
    "优抚",
    "退役",
    "军人",
    "老年",
    "高龄",
    "医疗",
    "报销",
    "补缴",
    "办证",
    "年检",
    "资质",
    "监管",
    "执法",
    "处罚",
    "罚款",
    "复议",
    "诉讼",
    "法规",
    "条例",
    "办法",
    "规章",
    "会议",
    "公示",
    "公告",
    "听证",
    "意见",
    "建议",
    "期限",
    "时限",
    "答复",
    "咨询",
    "网上办",
    "一网通办",
    "专属空间",
    "订阅",
    "小区",
    "物业",
    "停车",
    "噪音",
    "垃圾",
    "道路",
    "交通",
    "公交",
    "学校",
    "医院",
    "社区",
    "谁管",
    "哪个部门",
    "归谁管",
    "违建",
    "占道",
    "扰民",
    "拖欠",
    "补偿",
    "赔偿",
    "权益",
    "维权",
    "办不了",
)
# Words that carry no topic: a message made only of these (and particles) is a follow-up question.
GENERIC = frozenset(
    "那 那么 那个 这个 这 那要 那需要 还有 另外 如果 要是 的话 要 需要 需 多久 多长时间 多长 时间 几天 "
    "什么 哪些 哪里 哪儿 在哪 在哪里 怎么 怎样 怎么样 如何 是否 有没有 能不能 可不可以 可以 能 会 "
    "吗 么 呢 吧 啊 的 了 得 地 是 有 没有 不 和 或者 还是 带 带什么 材料 资料 网上 线上 现场 "
    "办 去 做 弄 收费 要钱 免费 多少 钱 费用 几 个 次 谁 找 我 我们 你们 他们 它 东西 一样 同样 "
    "也 都 就 又 再 还 先 后 之后 以后 然后 呢 吗 多 少 快 慢 久 长 短".split()
)
_FOLLOW_LEAD = re.compile(r"^(?:那|那么|那个|这个|还有|另外|如果|要是|同样|它)")


def is_emoji_only(text: str) -> bool:
    """Only emoji, symbols, punctuation and spaces (👍, 😀😀, ^_^, ……), and at least one symbol."""
    seen = False
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("So", "Sk", "Sm", "Cs") or 0x1F000 <= ord(ch) <= 0x1FAFF:
            seen = True
        elif cat.startswith(("P", "Z", "M", "C")) or ch in "^_~":
            continue
        else:
            return False
    return seen


def smalltalk(text: str, table: Mapping[str, SmallTalkEntry] | None = None) -> str | None:
    """The small-talk intent of a whole message (greeting, thanks, ...), or None. `table` is the one
    in effect (built-in, with administrators' edits); without it, the built-in one."""
    if is_emoji_only(text):
        return "emoji"
    c = compact(text)
    if not c or len(c) > 12:
        return None
    entries = (table if table is not None else texts.smalltalk_defaults()).values()
    for candidate in (c, _TRAILING.sub("", c)):
        for entry in entries:
            if candidate in {compact(p) for p in entry.phrases}:
                return entry.intent
    return None


def person_request(text: str) -> tuple[str, str | None] | None:
    """A request for a person: (category, question or None). 我要投诉窗口态度差 -> ("投诉", the text)."""
    c = compact(text)
    if not c:
        return None
    if _PERSON.match(c):
        return "咨询", None
    m = _CATEGORY.match(c)
    if m:
        word = m.group(1)
        category = "建议" if "建议" in word else ("咨询" if word.startswith("反映") else word)
        rest = c[m.end() :]
        return category, (text.strip() if len(rest) >= 4 else None)
    return None


def looks_like_policy(text: str) -> bool:
    c = compact(text)
    return any(term in c for term in POLICY_TERMS)


def key_terms(tokens: Sequence[str]) -> list[str]:
    """Content words of a question (two characters or more, not generic)."""
    return [t for t in dict.fromkeys(tokens) if len(t) >= 2 and t not in GENERIC and not t.isdigit()]


def passage_covers(terms: Sequence[str], passage: str) -> bool:
    """At least half of the question's key terms appear in the passage (and there is one)."""
    if not terms:
        return False
    found = sum(1 for t in terms if t in passage)
    return found * 2 >= len(terms)


def is_followup(text: str, tokens: Callable[[str], list[str]]) -> bool:
    """A short message that names no topic of its own: 那要多久, 需要带什么材料, 可以网上办吗, 那个呢."""
    c = compact(text)
    if not c or len(c) > 16:
        return False
    if _FOLLOW_LEAD.match(c) and len(c) <= 10:
        return True
    return not key_terms(tokens(text))


__all__ = [
    "CATEGORIES",
    "compact",
    "is_emoji_only",
    "is_followup",
    "key_terms",
    "looks_like_policy",
    "passage_covers",
    "person_request",
    "smalltalk",
]
