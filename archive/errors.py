"""The archive's user-facing error."""

from sld.tasks import SLDError


class ArchiveError(SLDError):
    """An archive file, campaign or law that cannot be used; the message says what to do."""
