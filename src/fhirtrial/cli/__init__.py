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
from . import validate as _validate  # noqa: E402

main.add_command(_validate.validate_cmd)
main.add_command(_validate.packages_cmd)
