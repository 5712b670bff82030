"""Console routes of FAQ file import (/console/kb/import): staff upload an xlsx, csv or jsonl file;
the store's importer makes a dry run and the page shows its report (every row that creates or
updates an entry, with the changed fields; warnings; or every error with its row and column) before
anything is written. The file waits in a staging directory under a random token with the store
version the dry run saw; the confirm step imports that same file with that expected version, so it
writes exactly what was shown or, if anything changed in the store since, nothing (upload again).
Staff may import only rows of their own units (admins and supervisors: all). Audited.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse

from handoff.console.conflict_views import guarded_write, may_override, override_wanted, refusal
from handoff.console.deps import PREFIX, Console, ConsoleDep, FaqEditor, FaqUploader, Staff, base
from handoff.console.web import ConsoleRoute, render
from knowledge.errors import InvalidInput, PolicybotError
from knowledge.faqs import FIELD_LABELS, ImportFailed, ImportReport, RowError
from knowledge.faqs.conflicts import PhrasingConflicts

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

KB_UPLOAD_PATH: Final = PREFIX + "/kb/import"
STAGED_SECONDS: Final = 3600
ON_DUPLICATE: Final = {"update": "更新已有问答", "skip": "跳过已有问答", "error": "已有问答视为错误"}
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,40}$")
_SUFFIXES: Final = (".xlsx", ".csv", ".jsonl")
EXPIRED: Final = "试导入已过期或不存在，请重新上传文件"


def _staging(console: Console) -> Path:
    root = Path(console.config.upload_dir or tempfile.gettempdir()) / "policybot-kb-uploads"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _sweep(root: Path) -> None:
    cutoff = time.time() - STAGED_SECONDS
    for p in root.iterdir():
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError:
            pass


def _page(request: Request, staff: Staff, *, status_code: int | None = None, **extra: Any) -> Response:
    ctx = base(request, staff, title="导入问答", on_duplicate_labels=ON_DUPLICATE, field_labels=FIELD_LABELS)
    ctx.update({"report": None, "errors": [], "token": "", "filename": "", "choice": "update"})
    ctx.update(extra, may_override=may_override(staff))
    if status_code is None:
        status_code = 400 if ctx.get("error") or ctx["errors"] else 200
    return render(request, "kb_import.html", ctx, status_code=status_code)


@router.get("/kb/import")
def import_form(staff: FaqEditor, request: Request) -> Response:
    return _page(request, staff)


def _permission_errors(staff: Staff, report: ImportReport) -> list[RowError]:
    out = []
    for item in report.items:
        for unit in {item.unit} if item.action == "create" else {item.unit, item.old_unit}:
            if not staff.user.may_edit_faq(unit):
                out.append(
                    RowError(
                        item.line,
                        FIELD_LABELS["unit"],
                        f"制文单位「{unit or '（空）'}」不是您所在的部门，您只能导入本部门的问答",
                        f"unit {unit!r} outside the user's departments",
                    )
                )
    return out


@router.post("/kb/import")
def import_upload(
    staff: FaqUploader,
    console: ConsoleDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    on_duplicate: Annotated[Literal["update", "skip", "error"], Form()] = "update",
) -> Response:
    name = Path(file.filename or "").name
    suffix = Path(name).suffix.casefold()
    show: dict[str, Any] = {"filename": name, "choice": on_duplicate}
    if suffix not in _SUFFIXES:
        return _page(
            request, staff, error="请上传 xlsx、csv 或 jsonl 文件（旧版 .xls 请先另存为 .xlsx）", **show
        )
    data = file.file.read(console.config.upload_max_bytes + 1)  # sync endpoint: the dry run runs in a thread
    if len(data) > console.config.upload_max_bytes:
        limit = console.config.upload_max_bytes / 1048576
        return _page(request, staff, error=f"文件过大（上限 {limit:.0f} MB），请拆分后导入", **show)
    root = _staging(console)
    _sweep(root)
    token = secrets.token_urlsafe(18)
    staged = root / f"{token}{suffix}"
    staged.write_bytes(data)
    version = console.faqs.version()  # read before the dry run: a later change refuses the confirm
    try:
        report = console.faqs.import_file(
            staged,
            on_duplicate=on_duplicate,
            dry_run=True,
            by=staff.user.username,
        )
    except ImportFailed as exc:
        staged.unlink(missing_ok=True)
        return _page(request, staff, errors=exc.errors, **show)
    except PolicybotError as exc:
        staged.unlink(missing_ok=True)
        return _page(request, staff, error=exc.user_message, **show)
    refused = _permission_errors(staff, report)
    if refused:
        staged.unlink(missing_ok=True)
        return _page(request, staff, errors=refused, **show)
    meta = {
        "user": staff.user.username,
        "file": staged.name,
        "filename": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "version": version,
        "on_duplicate": on_duplicate,
        "summary": report.summary(),
    }
    (root / f"{token}.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    console.record(staff, "faq_import_dry_run", name, summary=report.summary())
    # Conflicts: staff cannot confirm (upload a corrected file); an admin confirms with the override.
    writes = bool(report.created or report.updated) and (not report.conflicts or may_override(staff))
    return _page(request, staff, report=report, token=token if writes else "", **show)


@router.post("/kb/import/confirm")
def import_confirm(
    staff: FaqEditor,
    console: ConsoleDep,
    request: Request,
    token: Annotated[str, Form(max_length=40)],
    confirm_conflicts: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    root = _staging(console)
    meta_path = root / f"{token}.json"
    if not _TOKEN.match(token) or not meta_path.is_file():
        return _page(request, staff, error=EXPIRED)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    staged = root / str(meta["file"])
    fresh = time.time() - meta_path.stat().st_mtime < STAGED_SECONDS
    if meta.get("user") != staff.user.username or not fresh or not staged.is_file():
        return _page(request, staff, error=EXPIRED)
    keep = False  # the staged file stays only for an admin's override of a conflict refusal
    try:
        if hashlib.sha256(staged.read_bytes()).hexdigest() != meta["sha256"]:
            raise InvalidInput("暂存的文件已改变，请重新上传", "staged file changed")
        report = guarded_write(
            console,
            staff,
            lambda ok: console.faqs.import_file(
                staged,
                on_duplicate=meta["on_duplicate"],
                by=staff.user.username,
                expected_version=int(meta["version"]),
                confirm_conflicts=ok,
            ),
            confirm=override_wanted(staff, confirm_conflicts),
            target=str(meta["filename"]),
            via="import",
        )
    except ImportFailed as exc:
        return _page(request, staff, errors=exc.errors, filename=meta["filename"])
    except PhrasingConflicts as exc:
        keep = may_override(staff)
        refused = refusal(
            exc,
            staff,
            title=f"未导入「{meta['filename']}」：导入后以下已有问法会被错误答复",
            action=KB_UPLOAD_PATH + "/confirm",
            button="仍然导入",
            fields={"token": token},
        )
        return _page(request, staff, refused=refused, filename=meta["filename"], status_code=409)
    except PolicybotError as exc:
        return _page(request, staff, error=exc.user_message, filename=meta["filename"])
    finally:
        if not keep:
            meta_path.unlink(missing_ok=True)
            staged.unlink(missing_ok=True)
    console.kb.refresh(force=True)
    console.record(
        staff,
        "faq_import",
        meta["filename"],
        created=report.created,
        updated=report.updated,
        ids=(report.created_ids + report.updated_ids)[:200],
    )
    return RedirectResponse("/console/faqs?sort=recent&done=imported", status_code=303)
