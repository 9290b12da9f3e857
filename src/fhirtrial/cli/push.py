"""``fhirtrial push``: studies → an external FHIR server, idempotent and resumable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import FhirtrialError
from ..push import push
from ..push.auth import BasicAuth, BearerAuth, SmartBackendAuth
from ..push.http import Auth, RetryPolicy
from ..push.strategies import UnitResult
from . import seconds

AUTH_KINDS = ("none", "bearer", "basic", "smart")


def _auth(kind: str, server: str, token_env: str, user: str | None, password_env: str,
          client_id: str | None, key: Path | None, token_url: str | None, scope: str,
          kid: str | None) -> Auth | None:
    if kind == "bearer":
        return BearerAuth(token_env)
    if kind == "basic":
        if not user:
            raise click.UsageError("--auth basic needs --user (the password comes from "
                                   f"${password_env})")
        return BasicAuth(user, password_env)
    if kind == "smart":
        if not client_id or key is None:
            raise click.UsageError("--auth smart needs --client-id and --private-key")
        return SmartBackendAuth(client_id=client_id, key_pem=key.read_bytes(),
                                token_url=token_url, fhir_base=server, scope=scope, kid=kid)
    return None


@click.command("push")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--server", required=True, envvar="FHIRTRIAL_SERVER",
              help="Base URL of the FHIR server (or $FHIRTRIAL_SERVER).")
@click.option("--fhir-version", type=click.Choice(["R4", "R5", "auto"], case_sensitive=False),
              default="auto", show_default=True,
              help="FHIR version to convert registry records to; auto reads /metadata.")
@click.option("--strategy", type=click.Choice(["auto", "transaction", "batch", "single"]),
              default="auto", show_default=True,
              help="How to write; auto picks the best the server announces.")
@click.option("--chunk-size", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="Most entries per transaction/batch (lowered when the server refuses).")
@click.option("--dry-run", is_flag=True,
              help="Compare with the server and report; write nothing.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              default=".fhirtrial-push.jsonl", show_default=True,
              help="Journal of confirmed studies; a re-run skips them.")
@click.option("--no-journal", is_flag=True, help="Neither read nor write a journal.")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=3600), default=60.0,
              show_default=True, callback=seconds,
              help="Seconds to wait for an answer.")
@click.option("--deadline", type=click.FloatRange(min=1, max=86400), default=300.0,
              show_default=True, callback=seconds,
              help="Longest one request may take, connect to last byte (a server trickling "
                   "its answer is cut off then).")
@click.option("--retries", type=click.IntRange(0, 50), default=5, show_default=True,
              help="Retries of a request on 429/502/503/504 or a lost connection.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the report as JSON to this file.")
@click.option("--auth", "auth_kind", type=click.Choice(AUTH_KINDS), default="none",
              show_default=True, help="How to authenticate.")
@click.option("--token-env", default="FHIR_TOKEN", show_default=True,
              help="bearer: environment variable holding the token.")
@click.option("--user", help="basic: user name.")
@click.option("--password-env", default="FHIR_PASSWORD", show_default=True,
              help="basic: environment variable holding the password.")
@click.option("--client-id", help="smart: the registered client id.")
@click.option("--private-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="smart: PEM private key (RSA → RS384, EC P-384 → ES384).")
@click.option("--token-url", help="smart: token endpoint (default: from "
                                  ".well-known/smart-configuration).")
@click.option("--scope", default="system/*.read system/*.write", show_default=True,
              help="smart: scopes to request.")
@click.option("--kid", help="smart: key id of the JWK the server knows.")
def push_cmd(inputs: tuple[str, ...], server: str, fhir_version: str, strategy: str,
             chunk_size: int, dry_run: bool, journal: Path, no_journal: bool, timeout: float,
             deadline: float,
             retries: int, report_path: Path | None, auth_kind: str, token_env: str,
             user: str | None,
             password_env: str, client_id: str | None, private_key: Path | None,
             token_url: str | None, scope: str, kid: str | None) -> None:
    """Push studies (registry records or converted Bundles) to a FHIR server.

    \b
    A re-run changes nothing on the server; a killed run resumes from its journal.
    Exit status: 0 every study pushed or unchanged, 1 some failed, 2 usage.
    \b
      fhirtrial push fixtures/ --server https://fhir.example.org/r4
      FHIR_TOKEN=… fhirtrial push out.ndjson --server URL --auth bearer
    """
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--server")
    tty = sys.stderr.isatty()

    def progress(r: UnitResult) -> None:
        if tty:
            click.echo(f"\r{r.name}: {r.status}\x1b[K", err=True, nl=False)

    try:
        auth = _auth(auth_kind, server, token_env, user, password_env, client_id, private_key,
                     token_url, scope, kid)
        report = push(list(inputs), server, fhir_version=fhir_version.upper()
                      if fhir_version.lower() != "auto" else "auto",
                      strategy=strategy, auth=auth, dry_run=dry_run,
                      journal=None if no_journal else journal, chunk_size=chunk_size,
                      timeout=(min(10.0, timeout), timeout), deadline=deadline,
                      retry=RetryPolicy(attempts=retries + 1), progress=progress)
    except FhirtrialError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(1)
    if tty:
        click.echo("\r\x1b[K", err=True, nl=False)
    click.echo(report.text(), nl=False)
    if report_path is not None:
        tmp = report_path.with_name(f".{report_path.name}.partial")
        tmp.write_text(report.dumps(), encoding="utf-8")
        os.replace(tmp, report_path)
    sys.exit(0 if report.ok else 1)
