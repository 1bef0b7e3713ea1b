"""The roles a Switchboard user can hold; the API checks them on every route, and each
task queue's catalog entry names the ones that may work its tasks."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ANALYST = "analyst"
    APPROVER = "approver"
    COMPLIANCE = "compliance"
    OPERATOR = "operator"
    ADMIN = "admin"
    CLINICIAN = "clinician"
    # Registration and health information management staff, who own patient identity.
    REGISTRAR = "registrar"
