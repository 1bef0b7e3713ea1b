"""CSV downloads of console lists: written a row at a time as the client reads, so an
export of any size never sits whole in memory, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context

# A cell starting with one of these is read as a formula by spreadsheets (CSV
# injection): it is written with an apostrophe before it, as OWASP advises.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NAME_PART_LONGEST = 40
NAME_LONGEST = 120


def download_name(*parts: str) -> str:
    """An export's file name that says what it holds, from words such as "audit",
    "2026-12-07", "content views", "by carl": lower case ASCII letters, digits and
    hyphens only (safe in a header and on every file system), each part cut short,
    ending ".csv". Empty parts are left out."""
    words = []
    for part in parts:
        ascii_text = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode()
        word = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
        if word:
            words.append(word[:NAME_PART_LONGEST].strip("-"))
    return "-".join(words)[:NAME_LONGEST].strip("-") + ".csv"


def csv_download(filename: str, header: Sequence[str],
                 rows: Iterable[Sequence[Any]]) -> Response:
    response = Response(stream_with_context(_lines(header, rows)),
                        mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def cell(value: Any) -> str:
    """A value as one CSV cell: empty for none, yes or no for a truth."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    return f"'{text}" if isinstance(value, str) and text.startswith(FORMULA_STARTS) else text


def _lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
        if buffer.tell() > 64 * 1024:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
