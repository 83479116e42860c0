"""`shadowtap check`: is this config ready to serve? The start-up checks, printed one per line."""

from __future__ import annotations

import os

import click
import orjson

from shadowtap.core.cli_common import load_config_or_exit

_LABELS = {"ok": "ok", "problem": "PROBLEM", "note": "note"}


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="TOML config file to check.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as a JSON list.")
def check(config_path: str, as_json: bool) -> None:
    """Check a config against the world before serving with it: the primary's host accepts
    connections, litellm knows a provider for each candidate's (and the judge's) model string,
    every *_env variable is set, and the judge's and candidates' api_base hosts accept connections.

    `shadowtap serve` runs the same checks at start-up (the judge's and candidates' hosts aside)
    and logs each problem as a warning; it starts anyway. No check sends a request, a key or a
    prompt anywhere: reaching a host means connecting to it (with a TLS handshake for https).

    Exit codes: 0 no problem (notes are fine); 1 at least one problem; 2 usage or config error.
    """
    from shadowtap.core import readiness

    config = load_config_or_exit(config_path)
    results = readiness.environment_checks(config) + readiness.reachability_checks(config)
    results += readiness.model_checks(config, _import_litellm())
    if as_json:
        click.echo(orjson.dumps([result.as_dict() for result in results], option=orjson.OPT_INDENT_2).decode())
    else:
        width = max((len(result.key) for result in results), default=0)
        for result in results:
            click.echo(f"{_LABELS[result.status]:<8} {result.key:<{width}}  {result.detail}")
        found = len(readiness.problems(results))
        click.echo(f"{found} problem{'s' if found != 1 else ''}" if found else "no problems", err=True)
    if readiness.problems(results):
        raise SystemExit(1)


def _import_litellm():
    # Only for its provider table; never phone home for a newer price map.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm
