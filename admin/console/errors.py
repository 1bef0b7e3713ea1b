"""Console error pages: the same refusal the API gives, as a page with a way back."""

from __future__ import annotations

from typing import Any

from flask import render_template
from werkzeug.exceptions import HTTPException

TITLES = {400: "That request could not be used", 401: "Sign in first",
          403: "Not for your role", 404: "Not found",
          405: "Not allowed here", 429: "Too many requests", 503: "Unavailable"}


def error_page(error: HTTPException) -> Any:
    code = error.code or 500
    return render_template("console/error_page.html", code=code,
                           title=TITLES.get(code, "Something went wrong"),
                           reason=error.description), code
