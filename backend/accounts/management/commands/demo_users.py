"""``manage.py demo_users``: the demo logins of embedded mode, one per role (idempotent)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from accounts.roles import Role

DEMO_USERS = [
    ("admin", "lightbox-admin", Role.ADMIN),
    ("radiologist", "lightbox-rad", Role.RADIOLOGIST),
    ("resident", "lightbox-res", Role.RESIDENT),
    ("teacher", "lightbox-teach", Role.TEACHER),
]


def banner(url: str = "") -> str:
    lines = [f"Open {url}" if url else "", "Demo logins (change them before real use):"]
    lines += [f"  {name:12s} password {password:16s} role {role.value}" for name, password, role in DEMO_USERS]
    return "\n".join(line for line in lines if line)


class Command(BaseCommand):
    help = "Create the demo users (admin, radiologist, resident, teacher) with known passwords; print the logins."

    def add_arguments(self, parser):
        parser.add_argument("--print-only", action="store_true", help="only print the logins banner")
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, print_only: bool, url: str, **opts):
        if print_only:
            self.stdout.write(banner(url))
            return
        User = get_user_model()
        for name, password, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=name)
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = role == Role.ADMIN
                user.save()
            user.groups.add(Group.objects.get_or_create(name=role.value)[0])
        self.stdout.write(f"demo users ready: {', '.join(n for n, _, _ in DEMO_USERS)}")
