"""User-facing errors.

Everything a user can get wrong (bad input, missing model, unknown language) raises
`CalmRagError` with a one-line message; the CLI prints it and exits non-zero instead
of showing a traceback. Library users catch it like any other exception.
"""


class CalmRagError(Exception):
    """A problem the user can fix; the message says what and how."""
