"""The demo knowledge base: five public 政务公开 work plans (`knowledge/demo/policies/*.txt`, their
metadata in `policies.json`) and hand-written FAQs about them (`knowledge/demo/faqs.jsonl`, each
citing its source policy and article). `load_demo` puts both into the stores, policies first so that
every FAQ's source resolves; loading again changes nothing (identical policies are skipped, FAQs are
matched by id and updated only when they differ).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge.errors import InvalidInput
from knowledge.policies import PolicyRecord, PolicyStore

if TYPE_CHECKING:
    from knowledge.faqs import FaqStore, ImportReport

DEMO_DIR = Path(__file__).resolve().parent / "demo"
FAQ_FILE = "faqs.jsonl"
POLICY_INDEX = "policies.json"
POLICY_DIR = "policies"
_META_FIELDS = ("title", "doc_no", "issuer", "issued_on", "status", "url")


@dataclass(frozen=True)
class DemoReport:
    policies: tuple[PolicyRecord, ...]
    policies_changed: int
    faqs: ImportReport

    def summary(self) -> str:
        return (
            f"演示知识库：政策文件 {len(self.policies)} 份（其中新导入或更新 {self.policies_changed} 份），"
            f"{self.faqs.summary()}"
        )


def demo_policy_specs(directory: Path = DEMO_DIR) -> list[dict[str, Any]]:
    """The entries of policies.json, checked: each has an id and an existing file."""
    index = directory / POLICY_INDEX
    try:
        specs = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput("找不到演示政策清单 policies.json。", f"{index} not found") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput("演示政策清单 policies.json 格式错误。", f"{index}: {exc}") from exc
    if not isinstance(specs, list):
        raise InvalidInput("演示政策清单 policies.json 应为列表。", f"{index} is not a JSON list")
    for i, spec in enumerate(specs, 1):
        if not isinstance(spec, dict) or not spec.get("id") or not spec.get("file"):
            raise InvalidInput(
                f"演示政策清单第 {i} 项缺少 id 或 file。", f"{index} entry {i} lacks id or file"
            )
        if not (directory / POLICY_DIR / str(spec["file"])).is_file():
            raise InvalidInput(
                f"演示政策文件“{spec['file']}”不存在。", f"demo policy file {spec['file']} missing"
            )
    return specs


DEMO_PINS = 5  # the first FAQs of the demo file are its welcome questions (大家都在问)


def _pin_welcome(faq_store: FaqStore, path: Path, by: str) -> None:
    """The demo's welcome questions, unless staff have pinned their own."""
    from knowledge.welcome import WelcomePins

    pins = WelcomePins(faq_store.sessions)
    if pins.get():
        return
    ids: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and len(ids) < DEMO_PINS:
            ids.append(str(json.loads(line)["id"]))
    published = {r.id for r in faq_store.list(status="published", limit=len(ids) + 100) if r.id in ids}
    pins.set([i for i in ids if i in published], by=by)


def load_demo(
    faq_store: FaqStore, policy_store: PolicyStore, *, by: str = "demo", directory: Path = DEMO_DIR
) -> DemoReport:
    """Load the demo policies, then the demo FAQs. Idempotent."""
    records: list[PolicyRecord] = []
    changed = 0
    for spec in demo_policy_specs(directory):
        before = policy_store.get(str(spec["id"]))
        meta = {k: spec[k] for k in _META_FIELDS if spec.get(k) is not None}
        rec = policy_store.import_file(
            directory / POLICY_DIR / str(spec["file"]), id=str(spec["id"]), by=by, **meta
        )
        if before is None or before.seq != rec.seq:
            changed += 1
        records.append(rec)
    report = faq_store.import_file(directory / FAQ_FILE, fmt="jsonl", on_duplicate="update", by=by)
    _pin_welcome(faq_store, directory / FAQ_FILE, by)
    return DemoReport(policies=tuple(records), policies_changed=changed, faqs=report)
