"""The ``fhirtrial`` command: a thin click layer over the library.

Each area keeps its commands in its own module (convert, validate, serve, push …); this module
only builds the group and registers them. Data goes to stdout, messages to stderr; exit codes are
0 ok, 1 findings/failed records, 2 usage.
"""

from __future__ import annotations

import click

from .. import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="fhirtrial")
def main() -> None:
    """Clinical-trial registry records as valid FHIR: convert, validate, serve, push."""


# Each command module registers itself here, one line each.
from .convert import convert_cmd  # noqa: E402
from .db import db_cmd  # noqa: E402
from .fetch import fetch_cmd, sync_cmd  # noqa: E402
from .findtrials import find_trials_cmd  # noqa: E402
from .match import match_cmd  # noqa: E402
from .push import push_cmd  # noqa: E402
from .serve import load_cmd, serve_cmd  # noqa: E402
from .validate import packages_cmd, validate_cmd  # noqa: E402

for _cmd in (convert_cmd, fetch_cmd, sync_cmd, load_cmd, serve_cmd, push_cmd, match_cmd,
             find_trials_cmd, validate_cmd, packages_cmd, db_cmd):
    main.add_command(_cmd)
