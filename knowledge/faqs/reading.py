"""Reading an FAQ import file into raw rows, before any field is cleaned: the format from the extension
(xlsx, csv, jsonl, json; legacy .xls refused), the size and row limits, the text encoding (UTF-8 with or
without BOM, UTF-16 with BOM, GB18030), the header row found among the first rows (a title above it is
allowed; Chinese and English column names, each field once), JSON nesting limits, Excel day numbers in
date columns, and the undoing of the export's formula escape. Every problem is a `RowError`; a file
that cannot be read at all raises `ImportFailed`.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge.errors import PolicybotError
from knowledge.faqs.cells import unescape
from knowledge.faqs.fields import clean_line
from knowledge.faqs.records import FIELD_LABELS, ImportFailed, RowError
from knowledge.text import decode_text_bytes

_HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("编号", "问答编号", "id", "faqid"),
    "question": ("标准问题", "标准问法", "问题", "question", "standardquestion"),
    "similar": ("相似问法", "相似问题", "相似问", "扩展问法", "similar", "similarquestions"),
    "answer": ("答案", "标准答案", "回答", "答复", "answer"),
    "tags": ("标签", "政策标签", "tags", "tag"),
    "unit": ("制文单位", "发文单位", "起草单位", "unit", "draftingunit"),
    "source_policy": ("来源文件", "来源政策", "政策文件", "文号", "政策文号", "sourcepolicy", "policy"),
    "source_article": ("条款", "来源条款", "sourcearticle", "article"),
    "valid_from": ("生效日期", "生效时间", "validfrom"),
    "valid_to": ("失效日期", "失效时间", "validto"),
    "status": ("状态", "status"),
    "service_url": ("办事链接", "办事入口", "办理链接", "serviceurl", "service"),
}

# Characters that never occur in a text file: their presence means the bytes were decoded wrongly.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]")
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass
class RawRow:
    """One data row of an import file, before cleaning."""

    line: int
    values: dict[str, Any]  # field -> raw value (only the fields present in the file)
    labels: dict[str, str]  # field -> column name as written in the file


def file_error(zh: str, en: str) -> ImportFailed:
    return ImportFailed([RowError(None, None, zh, en)])


MAX_JSON_DEPTH = 10  # a row is an object of scalars and lists of strings: two levels
_TOO_DEEP_ZH = f"JSON 嵌套层数过多（最多 {MAX_JSON_DEPTH} 层）"
_TOO_DEEP_EN = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"


def _json_deeper_than(value: object, limit: int) -> bool:
    """Whether parsed JSON nests more than `limit` arrays/objects (iterative: no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def detect_format(p: Path, fmt: str | None) -> str:
    name = (fmt or p.suffix.lstrip(".")).casefold().lstrip(".")
    aliases = {
        "xlsx": "xlsx",
        "xlsm": "xlsx",
        "csv": "csv",
        "jsonl": "jsonl",
        "ndjson": "jsonl",
        "json": "json",
    }
    if name in aliases:
        return aliases[name]
    if name in ("xls", "et", "wps"):
        raise file_error(
            "不支持旧版 .xls 文件，请在 Excel/WPS 中另存为 .xlsx",
            "legacy .xls is not supported; save as .xlsx",
        )
    raise file_error(
        f"无法识别的文件格式：{name or '（无扩展名）'}（支持 xlsx、csv、jsonl）",
        f"unknown file format {name!r} (xlsx, csv, jsonl supported)",
    )


def check_file(p: Path, max_bytes: int) -> None:
    """Reject a missing, empty or oversized file from its size alone (nothing is read)."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise file_error(f"文件不存在：{p.name}", f"file not found: {p}") from None
    except OSError as e:
        raise file_error(f"无法读取文件：{p.name}", f"cannot stat {p}: {e}") from None
    if not p.is_file():
        raise file_error(f"不是文件：{p.name}", f"not a regular file: {p}")
    if st.st_size == 0:
        raise file_error("文件为空", "the file is empty")
    if st.st_size > max_bytes:
        raise file_error(
            f"文件过大（{st.st_size / 1048576:.1f} MB，上限 {max_bytes / 1048576:.1f} MB），请拆分后导入",
            f"file too large ({st.st_size} bytes, limit {max_bytes})",
        )


def _read_bytes(p: Path, max_bytes: int) -> bytes:
    with p.open("rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise file_error("文件过大，请拆分后导入", f"file larger than {max_bytes} bytes")
    if not data:
        raise file_error("文件为空", "the file is empty")
    return data


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (a superset of GBK)."""
    if data.startswith(b"PK\x03\x04"):
        raise file_error("这是 Excel（xlsx）文件，请使用 .xlsx 扩展名导入", "this is an xlsx file, not csv")
    text = decode_text_bytes(data)
    if text is None or _NOT_TEXT.search(text):
        raise file_error(
            "文件编码无法识别：不是 UTF-8 或 GBK/GB18030 文本（可能是 UTF-16 无 BOM 或二进制文件）。"
            "请在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重试",
            "unrecognised encoding: not UTF-8 or GBK/GB18030 text (UTF-16 without BOM or binary?)",
        )
    return text.lstrip("\ufeff")


def _header_key(h: object) -> str:
    s = unicodedata.normalize("NFKC", "" if h is None else str(h)).casefold()
    s = re.sub(r"\((必填|选填|可选|required|optional)\)", "", s)
    return re.sub(r"[\s*_\-]", "", s)


_HEADER_INDEX: dict[str, str] = {_header_key(a): f for f, aliases in _HEADER_ALIASES.items() for a in aliases}


def _map_header(
    cells: Sequence[object],
) -> tuple[dict[int, str], dict[str, str], list[str], list[RowError], int]:
    """Column index -> field, field -> label, ignored labels, errors, number of recognised columns."""
    columns: dict[int, str] = {}
    labels: dict[str, str] = {}
    ignored: list[str] = []
    errors: list[RowError] = []
    for i, cell in enumerate(cells):
        label = clean_line("" if cell is None else cell)
        if not label:
            continue
        name = _HEADER_INDEX.get(_header_key(label))
        if name is None:
            ignored.append(label)
        elif name in labels:
            errors.append(
                RowError(
                    None, label, f"与「{labels[name]}」重复（同一列出现两次）", f"duplicate column for {name}"
                )
            )
        else:
            columns[i] = name
            labels[name] = label
    return columns, labels, ignored, errors, len(columns)


def _tabular(
    rows: Iterator[tuple[int, Sequence[object]]], max_rows: int, warnings: list[str]
) -> list[RawRow]:
    """Find the header among the first rows (a title row above it is allowed), then map data rows."""
    scanned: list[tuple[int, Sequence[object]]] = []
    header: tuple[dict[int, str], dict[str, str], list[str], list[RowError], int] | None = None
    header_line = 0
    for line, cells in rows:
        if not any(c is not None and str(c).strip() for c in cells):
            continue
        mapped = _map_header(cells)
        if "question" in mapped[1]:
            header, header_line = mapped, line
            break
        scanned.append((line, cells))
        if len(scanned) >= 10:
            break
    if header is None:
        if not scanned:
            raise file_error("文件中没有内容", "the file has no rows")
        accepted = "、".join(_HEADER_ALIASES["question"][:3])
        raise ImportFailed(
            [
                RowError(
                    scanned[0][0],
                    FIELD_LABELS["question"],
                    f"缺少必需的列「标准问题」（表头可写：{accepted} 或 question）",
                    "missing required column 'question'",
                )
            ]
        )
    columns, labels, ignored, errors, _ = header
    errors = [RowError(header_line, e.column, e.message, e.english) for e in errors]
    if errors:
        raise ImportFailed(errors)
    if ignored:
        warnings.append(f"已忽略未识别的列：{'、'.join(ignored)}")
    out: list[RawRow] = []
    for line, cells in rows:
        values: dict[str, Any] = {}
        blank = True
        for i, name in columns.items():
            v = cells[i] if i < len(cells) else None
            if isinstance(v, str):
                v = unescape(v)
            if v is not None and str(v).strip():
                blank = False
            values[name] = v
        if blank:
            continue
        if len(out) >= max_rows:
            raise file_error(f"行数过多（上限 {max_rows} 行），请拆分后导入", f"more than {max_rows} rows")
        out.append(RawRow(line, values, labels))
    if not out:
        raise file_error("文件中没有数据行（只有表头）", "no data rows below the header")
    return out


def read_rows(p: Path, kind: str, max_bytes: int, max_rows: int, warnings: list[str]) -> list[RawRow]:
    if kind == "xlsx":
        return _read_xlsx(p, max_bytes, max_rows, warnings)
    data = _read_bytes(p, max_bytes)
    if kind == "csv":
        return _read_csv(data, max_rows, warnings)
    return _read_json(data, kind, max_rows, warnings)


def _read_csv(data: bytes, max_rows: int, warnings: list[str]) -> list[RawRow]:
    text = _decode(data)
    if not text.strip():
        raise file_error("文件为空", "the file is empty")
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)

    def rows() -> Iterator[tuple[int, Sequence[object]]]:
        try:
            yield from enumerate(reader, start=1)
        except csv.Error as e:
            raise file_error(
                f"CSV 格式错误（约第 {reader.line_num} 行）：{e}",
                f"malformed CSV near line {reader.line_num}: {e}",
            ) from None

    return _tabular(rows(), max_rows, warnings)


def _read_xlsx(p: Path, max_bytes: int, max_rows: int, warnings: list[str]) -> list[RawRow]:
    import openpyxl

    try:
        with zipfile.ZipFile(p) as zf:
            unpacked = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError):
        raise file_error(
            "不是有效的 xlsx 文件（文件损坏或不是 Excel 2007 以上格式）", "not a valid xlsx (zip) file"
        ) from None
    if unpacked > 10 * max_bytes:
        raise file_error("xlsx 文件解压后过大，请拆分后导入", f"xlsx unpacks to {unpacked} bytes")
    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for malformed workbooks
        raise file_error(
            "无法读取 xlsx 文件（文件损坏？）", f"cannot open workbook: {type(e).__name__}: {e}"
        ) from None
    try:
        if not wb.worksheets:
            raise file_error("xlsx 文件中没有工作表", "workbook has no worksheets")
        ws = wb.worksheets[0]
        if len(wb.worksheets) > 1:
            warnings.append(f"只导入了第一个工作表「{ws.title}」")

        def rows() -> Iterator[tuple[int, Sequence[object]]]:
            try:
                yield from enumerate(ws.iter_rows(values_only=True), start=1)
            except PolicybotError:
                raise
            except Exception as e:  # malformed sheet XML
                raise file_error(
                    "xlsx 工作表内容损坏", f"cannot read worksheet: {type(e).__name__}: {e}"
                ) from None

        raw = _tabular(rows(), max_rows, warnings)
    finally:
        wb.close()
    for r in raw:  # numbers in date columns are Excel day numbers
        for name in ("valid_from", "valid_to"):
            v = r.values.get(name)
            if isinstance(v, int | float) and not isinstance(v, bool):
                r.values[name] = ExcelSerial(v)
    return raw


@dataclass(frozen=True)
class ExcelSerial:
    """A number in an xlsx date column: an Excel day number."""

    value: float


def _read_json(data: bytes, kind: str, max_rows: int, warnings: list[str]) -> list[RawRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise file_error(
            "文件编码不是 UTF-8（JSON/JSONL 文件必须是 UTF-8）", "JSON/JSONL must be UTF-8"
        ) from None
    if _RAW_CONTROL.search(text):
        raise file_error(
            "文件包含非文本字符（编码错误，例如 UTF-16，或二进制文件）",
            "file contains control characters (wrong encoding such as UTF-16, or binary)",
        )
    items: list[tuple[int, object]] = []
    errors: list[RowError] = []
    if kind == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise file_error(f"不是有效的 JSON：第 {e.lineno} 行 {e.msg}", f"invalid JSON: {e}") from None
        except RecursionError:
            raise file_error(_TOO_DEEP_ZH, _TOO_DEEP_EN) from None
        if not isinstance(doc, list):
            raise file_error("JSON 文件应为对象数组", "JSON file must be an array of objects")
        for i, obj in enumerate(doc, start=1):
            if _json_deeper_than(obj, MAX_JSON_DEPTH - 1):  # the array itself is one level
                errors.append(RowError(i, None, _TOO_DEEP_ZH, _TOO_DEEP_EN))
            else:
                items.append((i, obj))
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(
                    RowError(
                        n, None, f"不是有效的 JSON（{e.msg}，第 {e.colno} 列）", f"invalid JSON: {e.msg}"
                    )
                )
                continue
            except RecursionError:  # nested deeper than the interpreter's recursion limit
                errors.append(RowError(n, None, _TOO_DEEP_ZH, _TOO_DEEP_EN))
                continue
            if _json_deeper_than(obj, MAX_JSON_DEPTH):
                errors.append(RowError(n, None, _TOO_DEEP_ZH, _TOO_DEEP_EN))
            else:
                items.append((n, obj))
    if len(items) + len(errors) > max_rows:
        raise file_error(f"行数过多（上限 {max_rows} 行），请拆分后导入", f"more than {max_rows} rows")
    out: list[RawRow] = []
    unknown: set[str] = set()
    for n, obj in items:
        if not isinstance(obj, dict):
            errors.append(RowError(n, None, "每行应为一个 JSON 对象", "each line must be a JSON object"))
            continue
        values: dict[str, Any] = {}
        labels: dict[str, str] = {}
        for key, v in obj.items():
            name = _HEADER_INDEX.get(_header_key(key))
            if name is None:
                unknown.add(str(key))
                continue
            if name in values:
                errors.append(RowError(n, str(key), f"与「{labels[name]}」重复", f"duplicate key for {name}"))
                continue
            values[name] = v
            labels[name] = str(key)
        if "question" not in values:
            errors.append(RowError(n, "question", "缺少 question（标准问题）", "missing key 'question'"))
            continue
        out.append(RawRow(n, values, labels))
    if errors:
        raise ImportFailed(errors)
    if not out:
        raise file_error("文件中没有数据", "no records in the file")
    if unknown:
        warnings.append(f"已忽略未识别的字段：{'、'.join(sorted(unknown))}")
    return out
