"""The one exception type users see.

Every error caused by what a user (or a language model) gave us derives from
``SLDError``; the command line prints its message as a single line, never a
traceback.  Messages name the problem and the fix.
"""


class SLDError(Exception):
    """A problem with the input that the user can fix; ``str(err)`` says how."""


class TaskError(SLDError):
    """A task name, task file or data file that cannot be used."""
