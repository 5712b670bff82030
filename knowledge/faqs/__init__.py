"""The FAQ knowledge base: `FaqStore` (records and CRUD with versions, synonym sets, import and export
of xlsx / csv / jsonl files), the record types, `faq_dict` (the one FAQ-to-dict conversion), the field
parsing shared with the console and the command line, and the formula-safe spreadsheet cell used by
every file the service writes. Modules: records (types, to and from a dict), fields (cleaning and
validation), rows (the rows as written), store (CRUD and versions), synonyms, reading and importing
(import files), exporting, cells.
"""

from knowledge.faqs.cells import formula_safe
from knowledge.faqs.fields import parse_date, question_key
from knowledge.faqs.importing import DEFAULT_MAX_BYTES
from knowledge.faqs.records import (
    FIELD_LABELS,
    FIELDS,
    META_FIELDS,
    STATUS_LABELS,
    STATUSES,
    FaqRecord,
    ImportFailed,
    ImportItem,
    ImportReport,
    RowError,
    SynonymSetRecord,
    VersionRecord,
    faq_dict,
)
from knowledge.faqs.store import FaqStore

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FIELDS",
    "FIELD_LABELS",
    "META_FIELDS",
    "STATUSES",
    "STATUS_LABELS",
    "FaqRecord",
    "FaqStore",
    "ImportFailed",
    "ImportItem",
    "ImportReport",
    "RowError",
    "SynonymSetRecord",
    "VersionRecord",
    "faq_dict",
    "formula_safe",
    "parse_date",
    "question_key",
]
