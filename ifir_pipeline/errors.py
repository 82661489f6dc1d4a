"""Errors that point a user at the exact place of bad input."""

from __future__ import annotations


class DataFormatError(ValueError):
    """Bad input data: names the file, the line or record, and the field.

    Example:
        >>> raise DataFormatError("corpus.jsonl", 12, "text", "empty text")
        Traceback (most recent call last):
        ...
        ifir_pipeline.errors.DataFormatError: corpus.jsonl, line 12, field 'text': empty text
    """

    def __init__(self, file: str, line: int | str | None, field: str | None, problem: str) -> None:
        self.file = str(file)
        self.line = line
        self.field = field
        self.problem = problem
        where = [self.file]
        if line is not None:
            where.append(f"line {line}" if isinstance(line, int) else str(line))
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {problem}")


class BudgetExceededError(RuntimeError):
    """Raised before a paid call would push spending past ``max_cost_usd``."""


class WriterUnavailableError(RuntimeError):
    """Most calls of a run failed for a reason that is not the content's (a rejected key, a missing model, an
    unreachable service): the run fails with that cause, and nothing is cached or materialized."""
