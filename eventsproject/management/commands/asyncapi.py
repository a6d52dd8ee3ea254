"""``manage.py asyncapi``: write the AsyncAPI document (``/v2/asyncapi.json``) to a file.

What ``scripts/test asyncapi`` hands to the AsyncAPI parser (tools/asyncapi/validate.mjs).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from adapters.asyncapi import document


class Command(BaseCommand):
    help = "Write the AsyncAPI 3.0 document of the WebSocket and the event stream."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="the file to write (default: stdout)")

    def handle(self, *args: Any, **options: Any) -> None:
        text = json.dumps(document(), indent=2) + "\n"
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                out.write(text)
        else:
            sys.stdout.write(text)
