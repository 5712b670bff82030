"""Policy documents and their citable passages: DB-free parsing of policy text into metadata and
passages (`parsing`), the plain records and citation format (`records`), statuses and the FAQ
validity rule (`validity`), the in-memory passage search (`index`) and the store of the `policy` and
`policy_passage` rows (`store`). The names below are the package's public API.
"""

from knowledge.policies.index import PassageIndex
from knowledge.policies.parsing import (
    COVER_LABEL,
    DEFAULT_MAX_PASSAGE_CHARS,
    PREFACE_LABEL,
    TITLE_KEYWORDS,
    ParsedPassage,
    ParsedPolicy,
    PolicyMeta,
    cn_to_int,
    decode_policy_bytes,
    extract_metadata,
    normalise_doc_no,
    parse_cn_date,
    parse_policy_text,
    split_passages,
    squash_cjk_spaces,
)
from knowledge.policies.records import PassageHit, PassageRecord, PolicyRecord
from knowledge.policies.store import ALLOWED_SUFFIXES, MAX_FILE_BYTES, PolicyStore
from knowledge.policies.validity import INACTIVE_STATUSES, STATUSES, check_status, faq_validity

__all__ = [
    "ALLOWED_SUFFIXES",
    "COVER_LABEL",
    "DEFAULT_MAX_PASSAGE_CHARS",
    "INACTIVE_STATUSES",
    "MAX_FILE_BYTES",
    "PREFACE_LABEL",
    "STATUSES",
    "TITLE_KEYWORDS",
    "PassageHit",
    "PassageIndex",
    "PassageRecord",
    "ParsedPassage",
    "ParsedPolicy",
    "PolicyMeta",
    "PolicyRecord",
    "PolicyStore",
    "check_status",
    "cn_to_int",
    "decode_policy_bytes",
    "extract_metadata",
    "faq_validity",
    "normalise_doc_no",
    "parse_cn_date",
    "parse_policy_text",
    "split_passages",
    "squash_cjk_spaces",
]
