"""The report's user-facing error."""

from sld.tasks import SLDError


class ReportError(SLDError):
    """A report that cannot be written as asked; the message says what to do instead."""
