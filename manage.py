#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

from trainer.engine.environment import prefer_runtime_settings


def main() -> None:
    # Every process that trains or generates starts here (each command, the db_worker, each
    # process `accelerate launch manage.py finetune` starts, the demo's server and worker): torch
    # reads these settings once, when it loads, so they are set before anything imports it.
    # The web server (evalhub/wsgi.py) never loads torch. pytest: tests/conftest.py.
    prefer_runtime_settings()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
