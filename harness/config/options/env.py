"""Options of the Locust processes' environment (values never recorded)."""

from __future__ import annotations

from typing import Final

from harness.config.env import parse_env_assignment, parse_env_file, parse_env_from
from harness.config.options.base import Option

ENV_OPTIONS: Final = (
    # --- the locustfile's environment (harness/config/env.py); none by default ---
    Option(
        "env",
        ("--env",),
        parse_env_assignment,
        (),
        "environment variable for master and workers, NAME=VALUE; the value is never "
        "written or shown (repeatable; command line only)",
        multiple=True,
        metavar="NAME=VALUE",
        flag_only=True,
    ),
    Option(
        "env_files",
        ("--env-file",),
        parse_env_file,
        (),
        "dotenv file of NAME=VALUE lines for master and workers; --env wins (repeatable)",
        multiple=True,
        metavar="FILE",
    ),
    Option(
        "env_from",
        ("--env-from",),
        parse_env_from,
        (),
        "every key of your Secret or ConfigMap as a variable for master and workers: "
        "secret/NAME or configmap/NAME (in -n; --local reads it once; repeatable)",
        multiple=True,
        metavar="KIND/NAME",
    ),
)
