"""Websocket authentication: the session cookie, or an Authorization header (Basic/Bearer) for tools."""
from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async

from accounts.authentication import user_from_authorization


class HeaderAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth:
            user = await database_sync_to_async(user_from_authorization)(auth)
            if user is not None:
                scope = dict(scope, user=user)
        return await self.inner(scope, receive, send)


def auth_stack(inner):
    """Session auth first (AuthMiddlewareStack), then a header, which wins when present and valid."""
    return AuthMiddlewareStack(HeaderAuthMiddleware(inner))


class BrowserOriginValidator:
    """Refuse cross-site websocket hijacking: a browser (which always sends Origin) must come from an allowed
    host. Tools send no Origin and authenticate with a header, so they pass on to the login check."""

    def __init__(self, inner):
        from channels.security.websocket import AllowedHostsOriginValidator

        self.inner = inner
        self.checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        if b"origin" not in headers:
            return await self.inner(scope, receive, send)
        return await self.checked(scope, receive, send)
