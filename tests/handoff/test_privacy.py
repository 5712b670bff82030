"""Personal-data detection and masking: generated mobiles, IDs, cards and emails inside random Chinese
text are always masked; policy-like sentences with numbers are left alone; masking is idempotent;
the logging filter masks what reaches the log.

Decision on ID-shaped numbers with a wrong checksum: they are not classified as "id_number"
(validate_id_number is False) but as "id_like" and masked the same way, because a mistyped ID
still identifies the person. Other long digit runs without a valid checksum (order numbers,
20+ digit serials) are left alone for precision.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.privacy import (
    MaskingFilter,
    contains_pii,
    find_pii,
    id_checksum,
    install_log_masking,
    luhn_ok,
    mask,
    mask_value,
    normalise_phone,
    validate_id_number,
)

# --- generators ------------------------------------------------------------------------------

_cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
_punct = st.sampled_from(list("，。！？、：；（）“” "))
chinese_text = st.text(alphabet=st.one_of(_cjk, _punct), max_size=25)


@st.composite
def mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """(digits, as written) for a valid mainland mobile in one of the usual spellings."""
    digits = draw(st.sampled_from("3456789").map(lambda c: "1" + c)) + draw(
        st.text(alphabet="0123456789", min_size=9, max_size=9)
    )
    a, b, c = digits[:3], digits[3:7], digits[7:]
    written = draw(
        st.sampled_from(
            [
                digits,
                f"{a}-{b}-{c}",
                f"{a} {b} {c}",
                f"+86{digits}",
                f"+86 {digits}",
                f"86{digits}",
                f"86-{a}-{b}-{c}",
                f"(+86){digits}",
            ]
        )
    )
    return digits, written


_AREAS = ["110101", "110105", "310115", "310118", "440305", "510104", "330106", "120101", "650102"]


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2015, 12, 31)))
    first17 = draw(st.sampled_from(_AREAS)) + born.strftime("%Y%m%d") + f"{draw(st.integers(0, 999)):03d}"
    check = id_checksum(first17)
    if check == "X" and draw(st.booleans()):
        check = "x"
    return first17 + check


@st.composite
def bank_cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(16, 19))
    body = draw(st.sampled_from(["62", "4", "51", "35"]))
    body += draw(
        st.text(alphabet="0123456789", min_size=length - 1 - len(body), max_size=length - 1 - len(body))
    )
    check = next(d for d in "0123456789" if luhn_ok(body + d))
    return body + check


emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.from_regex(r"[a-z0-9][a-z0-9._]{0,15}", fullmatch=True).filter(lambda s: not s.endswith(".")),
    st.sampled_from(["qq.com", "163.com", "example.com", "mail.sh.gov.cn", "gmail.com"]),
)


def _flat(text: str) -> str:
    return re.sub(r"[\s+()-]", "", text)


# --- mobiles ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(before=chinese_text, after=chinese_text, mobile=mobiles())
def test_mobile_in_chinese_text_is_always_masked(before: str, after: str, mobile: tuple[str, str]) -> None:
    digits, written = mobile
    text = before + written + after
    masked = mask(text)
    assert digits not in _flat(masked)
    assert not re.search(r"1[3-9][0-9]{9}", _flat(masked))
    assert f"{digits[:3]}****{digits[-4:]}" in masked
    assert [m.kind for m in find_pii(text) if m.kind == "mobile"] == ["mobile"]


@pytest.mark.parametrize(
    "text",
    [
        "请回电13812345678",
        "电话：138-1234-5678。",
        "138 1234 5678",
        "+86 138 1234 5678",
        "8613812345678",
        "（+86）13812345678",
        "１３８１２３４５６７８",
        "wx13812345678",
    ],
)
def test_mobile_spellings(text: str) -> None:
    assert "138****5678" in mask(text)


@pytest.mark.parametrize(
    "text",
    [
        "1381234567890",
        "编号21381234567",
        "13812345678901234567890",
        "138-1234-5678-9012",
    ],
)
def test_mobile_not_inside_longer_digit_runs(text: str) -> None:
    assert not [m for m in find_pii(text) if m.kind == "mobile"]


# --- ID numbers ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(before=chinese_text, after=chinese_text, id_no=id_numbers())
def test_valid_id_numbers_are_always_masked(before: str, after: str, id_no: str) -> None:
    assert validate_id_number(id_no)
    text = before + id_no + after
    found = [m for m in find_pii(text) if m.kind == "id_number"]
    assert [m.value for m in found] == [id_no]
    assert text[found[0].start : found[0].end] == id_no
    masked = mask(text)
    assert id_no not in masked and id_no[6:14] not in masked  # birth date hidden
    assert f"{id_no[:6]}********{id_no[-4:]}" in masked


@settings(max_examples=200, deadline=None)
@given(id_no=id_numbers(), wrong=st.sampled_from("0123456789X"))
def test_wrong_checksum_is_not_an_id_but_not_leaked(id_no: str, wrong: str) -> None:
    if wrong == id_no[-1].upper():
        return
    bad = id_no[:17] + wrong
    assert not validate_id_number(bad)
    kinds = [m.kind for m in find_pii(f"证件号{bad}，谢谢")]
    assert "id_number" not in kinds
    assert kinds in (["id_like"], ["bank_card"])  # a Luhn-valid run is masked as a card instead
    assert bad not in mask(f"证件号{bad}，谢谢")


def test_id_examples() -> None:
    assert validate_id_number("11010519491231002X") and validate_id_number("11010519491231002x")
    assert not validate_id_number("110105194912310021")
    assert not validate_id_number("11010519491331002X")  # month 13 (checksum adjusted below)
    assert not validate_id_number("99010519491231002X")  # no such province
    assert mask("身份证11010519491231002X") == "身份证110105********002X"
    assert mask("身份证号码：110101900307123") == "身份证号码：110101*****7123"  # old 15-digit ID
    assert mask("流水号110101900307123") == "流水号110101900307123"  # 15 digits without an ID keyword
    assert mask_value("id_number", "110105 19491231 002X") == "110105********002X"


# --- cards, emails, landlines, addresses -----------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(before=chinese_text, card=bank_cards(), spaced=st.booleans())
def test_bank_cards_are_masked(before: str, card: str, spaced: bool) -> None:
    written = " ".join(card[i : i + 4] for i in range(0, len(card), 4)) if spaced else card
    masked = mask(before + "卡号" + written)
    assert card not in _flat(masked)
    if not validate_id_number(card):  # an 18-digit card may also be a valid ID: masked as one
        assert masked.endswith(f"**** **** **** {card[-4:]}")


def test_card_failing_luhn_is_left_alone() -> None:
    assert not luhn_ok("6222021234567890124")
    assert mask("订单号6222021234567890124") == "订单号6222021234567890124"


@settings(max_examples=200, deadline=None)
@given(before=chinese_text, after=chinese_text, email=emails)
def test_emails_are_masked(before: str, after: str, email: str) -> None:
    masked = mask(before + email + after)
    local, domain = email.split("@")
    assert email not in masked
    assert f"{local[0]}***@{domain}" in masked


def test_landlines() -> None:
    assert mask("办公电话021-12345678") == "办公电话021-****5678"
    assert mask("（0571）87654321转8001") == "0571-****4321"
    assert mask("北京010-65123456") == "北京010-****3456"
    assert mask("01065123456") == "010-****3456"
    assert mask("请拨打12345热线或400-820-8820、95588") == "请拨打12345热线或400-820-8820、95588"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("上海市青浦区华新镇华腾路123弄45号", "上海市青浦区华新镇****"),
        ("我住在上海市青浦区华新镇华腾路123弄45号501室，谢谢", "我住在上海市青浦区华新镇****，谢谢"),
        ("地址：北京市朝阳区建国路88号SOHO现代城3号楼2单元1501", "地址：北京市朝阳区****"),
        ("广东省深圳市南山区粤海街道科技园社区科苑路15号", "广东省深圳市南山区粤海街道****"),
        ("四川省成都市双流县九江镇光华村3组", "四川省成都市双流县九江镇****"),
        ("我家在华腾路123弄45号", "我家在华腾路****"),
        ("阳光小区3栋2单元501室", "阳光小区****"),
    ],
)
def test_addresses(text: str, expected: str) -> None:
    assert mask(text) == expected
    found = [m for m in find_pii(text) if m.kind == "address"]
    assert len(found) == 1 and not found[0].value.startswith(("我", "地址"))


# --- precision -------------------------------------------------------------------------------

POLICY_SENTENCES = [
    "依申请公开的，行政机关应当在收到申请之日起20个工作日内予以答复。",
    "根据青人社〔2023〕11号文件，2023年1月1日起执行。",
    "沪府办发〔2024〕5号第三条第（二）项规定，补贴标准为每人每月1500元。",
    "您的工单号为LY20261123-0007，请于2026-11-30前查询。",
    "灵活就业人员缴费基数为上年度全市职工月平均工资的60%至300%，即4927元至24633元。",
    "2025年10月1日至8日放假，共8天，9月28日上班。",
    "人力资源社会保障部令第3号于2024年3月5号起施行。",
    "乘坐地铁2号线到人民广场站，3号出口。",
    "政务服务热线12345，社保热线12333，客服400-820-8820，银行95588。",
    "失业保险金领取期限最长为24个月，累计缴费满1年不足5年的，领取期限最长为12个月。",
    "统一社会信用代码为91310118MA1JL2XX3B。",
    "申请材料：身份证复印件1份、户口簿1本、照片2张（2寸）。",
    "第十二条 本办法自2023年12月1日起施行，有效期至2028年11月30日。",
    "网址 https://www.gov.cn/zhengce/content/2025-11/04/content_7000000.htm",
    "预算金额为1234567.89元，采购编号SHXM-00-20250312-12345。",
]


@pytest.mark.parametrize("sentence", POLICY_SENTENCES)
def test_no_false_positives_on_policy_text(sentence: str) -> None:
    assert find_pii(sentence) == []
    assert mask(sentence) == sentence
    assert not contains_pii(sentence)


# --- idempotence and spans -------------------------------------------------------------------

pii_piece = st.one_of(
    mobiles().map(lambda m: m[1]),
    id_numbers(),
    bank_cards(),
    emails,
    st.sampled_from(["上海市青浦区华新镇华腾路123弄45号", "021-12345678", "阳光小区3栋2单元501室"]),
    st.sampled_from(POLICY_SENTENCES),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(chinese_text, pii_piece), max_size=6))
def test_masking_is_idempotent_and_spans_are_exact(parts: list[str]) -> None:
    text = "".join(parts)
    once = mask(text)
    assert mask(once) == once
    for m in find_pii(text):
        assert text[m.start : m.end] == m.value
    assert find_pii(once) == []  # nothing detectable survives masking


def test_kinds_subset() -> None:
    text = "手机13812345678，邮箱a.b@qq.com"
    assert mask(text, kinds=["mobile"]) == "手机138****5678，邮箱a.b@qq.com"
    with pytest.raises(ValueError):
        find_pii(text, kinds=["passport"])


def test_normalise_phone() -> None:
    assert normalise_phone(" +86 138-1234-5678 ") == "13812345678"
    assert normalise_phone("１３８ １２３４ ５６７８") == "13812345678"
    assert normalise_phone("(021)12345678-123") == "021-12345678-123"
    assert normalise_phone("0571-87654321") == "0571-87654321"
    assert normalise_phone("12345") is None
    assert normalise_phone("1381234567") is None
    assert normalise_phone("手机13812345678") is None


# --- logging ---------------------------------------------------------------------------------


def test_logging_filter_masks_message_args_extra_and_traceback() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.privacy.masking")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s|%(citizen)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    flt = install_log_masking(logger)
    assert install_log_masking(logger) is flt and handler.filters == [flt]  # idempotent
    child = logging.getLogger("test.privacy.masking.child")
    child.propagate = True
    try:
        logger.info(
            "ticket from %s, id %s",
            "13812345678",
            "11010519491231002X",
            extra={"citizen": "zhang@example.com"},
        )
        child.info("child %s", "138 1234 5678", extra={"citizen": "-"})  # reaches only the handler
        try:
            raise ValueError("bad phone 13912345678")
        except ValueError:
            logger.exception("failed for %s", "13912345678", extra={"citizen": "-"})
    finally:
        logger.handlers = []
    out = stream.getvalue()
    assert "13812345678" not in out and "138 1234 5678" not in out and "13912345678" not in out
    assert "11010519491231002X" not in out and "zhang@example.com" not in out
    assert "ticket from 138****5678, id 110105********002X|z***@example.com" in out
    assert "child 138****5678" in out
    assert "ValueError: bad phone 139****5678" in out


def test_filter_survives_bad_format_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items for %s", ("x", "13812345678"), None)
    assert MaskingFilter().filter(record)
    assert "13812345678" not in record.getMessage() and "138****5678" in record.getMessage()
