"""The ``fhirtrial`` command: a thin click layer over the library.

Each area keeps its commands in its own module (convert, validate, serve, push …); this module
only builds the group and registers them. Data goes to stdout, messages to stderr; exit codes are
0 ok, 1 findings/failed records, 2 usage.
"""

from __future__ import annotations

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


#: command name → (module, attribute): each module is imported when its command runs (or
#: when --help lists them), so ``fhirtrial validate`` does not pay for the HTTP client, the
#: readers and the server (half a second of imports before a single file is read)
COMMANDS = {
    "convert": ("convert", "convert_cmd"),
    "fetch": ("fetch", "fetch_cmd"),
    "sync": ("fetch", "sync_cmd"),
    "load": ("serve", "load_cmd"),
    "serve": ("serve", "serve_cmd"),
    "push": ("push", "push_cmd"),
    "match": ("match", "match_cmd"),
    "find-trials": ("findtrials", "find_trials_cmd"),
    "validate": ("validate", "validate_cmd"),
    "packages": ("validate", "packages_cmd"),
    "db": ("db", "db_cmd"),
}


def seconds(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    """Option callback for a number of seconds: "nan" passes click's ``FloatRange`` (no
    comparison holds for it) and would reach a socket as a timeout."""
    if value is not None and value != value:
        raise click.BadParameter("nan is not a number of seconds")
    return value


class _Version:
    """fhirtrial's version, looked up when --version prints it (not at every start-up)."""

    def __str__(self) -> str:
        from .. import __version__

        return __version__


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            import importlib

            module, attr = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(f"{__name__}.{module}"), attr),
                             cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        # the last net under every command: an error fhirtrial raises on purpose (a damaged
        # package cache, a store it cannot open) is one line and exit 2, never a traceback
        from ..errors import FhirtrialError

        try:
            return super().invoke(ctx)
        except FhirtrialError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(2)


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.version_option(_Version(), "--version", prog_name="fhirtrial")
def main() -> None:
    """Clinical-trial registry records as valid FHIR: convert, validate, serve, push."""
