"""Roles are Django groups; each grants a fixed set of capabilities. One place decides what a role may do."""
from __future__ import annotations

from enum import StrEnum


class Capability(StrEnum):
    VIEW_ALL_STUDIES = "view_all_studies"  # read every study, not only granted ones
    STORE = "store"  # STOW-RS / import
    DELETE = "delete"  # DELETE studies and series
    RUN_AI = "run_ai"  # start and cancel analyses
    REPORT = "report"  # write and sign reports
    TEACH = "teach"  # author teaching files
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"  # read the audit trail


class Role(StrEnum):
    ADMIN = "admin"
    RADIOLOGIST = "radiologist"
    RESIDENT = "resident"
    TEACHER = "teacher"
    TECHNOLOGIST = "technologist"


ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.ADMIN: frozenset(Capability),
    Role.RADIOLOGIST: frozenset(
        {Capability.VIEW_ALL_STUDIES, Capability.STORE, Capability.RUN_AI, Capability.REPORT}
    ),
    Role.RESIDENT: frozenset({Capability.RUN_AI}),
    Role.TEACHER: frozenset({Capability.TEACH, Capability.RUN_AI}),
    Role.TECHNOLOGIST: frozenset({Capability.STORE}),
}


def user_roles(user) -> set[Role]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_lightbox_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = {r for r in Role if r.value in names}
        if user.is_superuser:
            cached.add(Role.ADMIN)
        user._lightbox_roles = cached
    return cached


def has_capability(user, capability: Capability) -> bool:
    """True when one of the user's roles grants ``capability`` (superusers have them all)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return any(capability in ROLE_CAPABILITIES[r] for r in user_roles(user))
