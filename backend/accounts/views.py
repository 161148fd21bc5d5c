from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from .roles import ROLE_CAPABILITIES, user_roles


@api_view(["GET"])
def me(request: Request) -> Response:
    """Who am I, with my roles and capabilities: the frontend shows or hides actions from this."""
    roles = user_roles(request.user)
    caps = sorted({c.value for r in roles for c in ROLE_CAPABILITIES[r]})
    return Response({"username": request.user.username, "roles": sorted(r.value for r in roles), "capabilities": caps})
