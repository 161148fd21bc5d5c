"""Who is calling: session cookie, HTTP Basic (for tools) or a Bearer token.

Password hashing costs ~0.3 s by design, so a verified Basic credential is remembered for a short time under
a hash of the credential (never the password itself), together with the user's password hash: a password
change or deactivation anywhere (any process) takes effect on the next request. Tokens are looked up in the
database on every request (one indexed query), so revoking one is immediate.
"""
from __future__ import annotations

import base64
import binascii
import hashlib

from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

BASIC_CACHE_SECONDS = 60


def _basic_cache_key(credential: str) -> str:
    return f"accounts:basic:{hashlib.sha256(credential.encode()).hexdigest()}"


def user_from_basic(header_value: str):
    """Return the user for an ``Authorization: Basic ...`` value, or None when it is wrong."""
    try:
        decoded = base64.b64decode(header_value.split(" ", 1)[1].strip(), validate=True).decode("utf-8")
        username, password = decoded.split(":", 1)
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    key = _basic_cache_key(decoded)
    remembered = cache.get(key)
    if remembered is not None:
        user_id, password_hash = remembered
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is not None and user.password == password_hash:
            return user
        cache.delete(key)
    user = django_authenticate(username=username, password=password)
    if user is None or not user.is_active:
        return None
    cache.set(key, (user.pk, user.password), BASIC_CACHE_SECONDS)
    return user


def user_from_token(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None and token.user.is_active else None


def user_from_authorization(header_value: str):
    """Resolve an Authorization header (Basic or Bearer/Token); None when absent or invalid."""
    scheme = header_value.split(" ", 1)[0].lower() if header_value else ""
    if scheme == "basic":
        return user_from_basic(header_value)
    if scheme in {"bearer", "token"} and " " in header_value:
        return user_from_token(header_value.split(" ", 1)[1].strip())
    return None


class CachedBasicAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("basic "):
            return None
        user = user_from_basic(header)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        return (user, None)

    def authenticate_header(self, request) -> str:
        return 'Basic realm="Lightbox"'


class BearerTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme = header.split(" ", 1)[0].lower()
        if scheme not in {"bearer", "token"}:
            return None
        user = user_from_authorization(header)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return (user, None)
