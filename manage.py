#!/usr/bin/env python
"""Django's command-line utility for Lightbox."""
import os
import sys
from pathlib import Path


def main() -> None:
    root = Path(__file__).resolve().parent
    sys.path[:0] = [str(root / "backend"), str(root)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lightbox.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
