"""The roles a Switchboard user can hold; the API checks them on every route."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ANALYST = "analyst"
    APPROVER = "approver"
    COMPLIANCE = "compliance"
    OPERATOR = "operator"
    ADMIN = "admin"
    CLINICIAN = "clinician"
