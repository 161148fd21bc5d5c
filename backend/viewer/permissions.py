from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.access import can_view_study


class CanViewStudy(BasePermission):
    """May the user read the study named by the URL's ``study_uid``? (Same answer whether it exists or not.)"""

    message = "Study not found or not accessible."

    def has_permission(self, request, view) -> bool:
        uid = view.kwargs.get("study_uid", "")
        return bool(uid) and can_view_study(request.user, uid)
