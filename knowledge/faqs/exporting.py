"""Export of the FAQ store (`FaqStore` inherits `export_file`): the whole store, or the entries with
one status, as xlsx (Chinese headers, dates as dates, wrapped text), csv (UTF-8 with BOM, CRLF), jsonl
or json, every spreadsheet cell formula-safe, written to a temporary name and moved into place. The
files import back unchanged.
"""

from __future__ import annotations

import builtins
import csv
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.faqs.cells import formula_safe
from knowledge.faqs.reading import detect_format
from knowledge.faqs.records import FIELD_LABELS, FIELDS, STATUS_LABELS, FaqRecord, faq_dict


class ExportMethods:
    """The export part of FaqStore (a mixin over its `list`)."""

    if TYPE_CHECKING:

        def list(self, *, status: str | None = None, limit: int = 100) -> builtins.list[FaqRecord]: ...

    def export_file(
        self, path: str | os.PathLike[str], *, fmt: str | None = None, status: str | None = None
    ) -> int:
        """Write the store (or the entries with one status) to xlsx, csv or jsonl; returns the number
        of entries. The file is written to a temporary name and moved into place."""
        p = Path(path)
        kind = detect_format(p, fmt)
        records = self.list(status=status, limit=10**9)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".export-", suffix=p.suffix, dir=p.parent)
        os.close(fd)
        try:
            writer: Callable[[Path, list[FaqRecord]], None] = {
                "xlsx": _write_xlsx,
                "csv": _write_csv,
                "jsonl": _write_jsonl,
                "json": _write_json,
            }[kind]
            writer(Path(tmp_name), records)
            os.replace(tmp_name, p)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return len(records)


# --- export writers -----------------------------------------------------------------------------------
def _cells(r: FaqRecord) -> list[object]:
    return [
        r.id,
        r.question,
        "\n".join(r.similar),
        r.answer,
        "，".join(r.tags),
        r.unit or "",
        r.source_policy or "",
        r.source_article or "",
        r.valid_from,
        r.valid_to,
        STATUS_LABELS.get(r.status, r.status),
        r.service_url or "",
    ]


def _write_xlsx(path: Path, records: list[FaqRecord]) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("问答库")
    widths = [14, 40, 40, 60, 20, 20, 24, 10, 12, 12, 8, 40]
    for i, w in enumerate(widths):
        ws.column_dimensions[chr(ord("A") + i)].width = w
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    header = []
    for name in FIELDS:
        c = WriteOnlyCell(ws, value=FIELD_LABELS[name])
        c.font = bold
        header.append(c)
    ws.append(header)
    for r in records:
        row = []
        for i, value in enumerate(_cells(r)):
            c = WriteOnlyCell(ws, value=formula_safe(value))
            if isinstance(value, dt.date):
                c.number_format = "yyyy-mm-dd"
            if i in (1, 2, 3):
                c.alignment = wrap
            row.append(c)
        ws.append(row)
    wb.save(path)


def _write_csv(path: Path, records: list[FaqRecord]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow([FIELD_LABELS[n] for n in FIELDS])
        for r in records:
            w.writerow([formula_safe(v.isoformat() if isinstance(v, dt.date) else v) for v in _cells(r)])


def _write_jsonl(path: Path, records: list[FaqRecord]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(faq_dict(r), ensure_ascii=False) + "\n")


def _write_json(path: Path, records: list[FaqRecord]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        json.dump([faq_dict(r) for r in records], f, ensure_ascii=False, indent=1)
        f.write("\n")
