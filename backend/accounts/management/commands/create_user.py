"""Create or update a user with a role, without prompts: ``manage.py create_user NAME --role radiologist``."""
from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role


class Command(BaseCommand):
    help = "Create or update a user and give it a role. Password from --password or LIGHTBOX_USER_PASSWORD."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--password", default=os.environ.get("LIGHTBOX_USER_PASSWORD"))
        parser.add_argument("--email", default="")
        parser.add_argument("--token", action="store_true", help="also print an API token for the user")

    def handle(self, *args, username: str, role: str, password: str | None, email: str, token: bool, **opts):
        if not password:
            raise CommandError("Give a password with --password or the LIGHTBOX_USER_PASSWORD variable.")
        if len(password) < 8:
            raise CommandError("The password must have at least 8 characters.")
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
        user.set_password(password)
        user.is_staff = role == Role.ADMIN
        user.save()
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        self.stdout.write(f"{'Created' if created else 'Updated'} user {username!r} with role {role}.")
        if token:
            from rest_framework.authtoken.models import Token

            self.stdout.write(f"Token: {Token.objects.get_or_create(user=user)[0].key}")
