"""The archive: every law a campaign evaluated, in one SQLite file, and law export.

``Archive`` (``archive.store``) is the store; ``archive.records`` holds the
values it takes and returns; ``archive.export`` turns a stored law into LaTeX,
SymPy, Python or JSON (imported on demand, since it needs SymPy).
"""

from sld.archive.errors import ArchiveError
from sld.archive.records import (
    CAMPAIGN_STATUSES,
    ENTRY_STATUSES,
    CampaignRecord,
    Entry,
    LLMCall,
    LLMUsage,
    NewEntry,
    record_to_dict,
)
from sld.archive.store import DEFAULT_ARCHIVE, Archive

__all__ = [
    "Archive", "ArchiveError", "CAMPAIGN_STATUSES", "CampaignRecord", "DEFAULT_ARCHIVE",
    "ENTRY_STATUSES", "Entry", "LLMCall", "LLMUsage", "NewEntry", "record_to_dict",
]
