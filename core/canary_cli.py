"""`shadowtap canary`: show and change which share of live traffic each candidate answers.

`start`, `promote` and `rollback` write the candidate's state and one event to the store; every live
process reads that state within [canary] state_poll_s. `guard` runs the guard loop (the evaluators
layer: named here as a string and loaded on use, like the commands in core/cli.py). Exit codes: 0
done, 1 `promote` refused (a guard is red), 2 usage error (unknown candidate, no canary table, a share
outside 0..1 or above max_share without --force).
"""

from __future__ import annotations

import getpass
import importlib
from datetime import UTC, datetime

import click
import orjson

from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.core.config import CandidateCanaryConfig, ShadowtapConfig

# Subcommands that live in a higher layer, loaded only when they run or `--help` lists them.
LAZY_SUBCOMMANDS = {"guard": "shadowtap.evaluators.canary.command:guard"}
# The guards' verdict on one candidate now (for `promote`): (config, store, name) -> red GuardResults.
RED_GUARDS = "shadowtap.evaluators.canary.evaluate:red_guards"
# What `status` shows of the last automatic rollback's window (--json has all of it).
STATUS_NUMBERS = ("cohort", "value", "threshold", "samples", "canaried", "served", "fallbacks", "since")


def _load(target: str):
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


class _CanaryGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_SUBCOMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_SUBCOMMANDS:
            return _load(LAZY_SUBCOMMANDS[name])
        return super().get_command(ctx, name)


def _options(command):
    command = click.option("--store", "store_path", default=None,
                           help="A SQLite file or a postgresql:// URL (default: the config's store).")(command)
    return click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="Config file with the [[candidates]] and their [candidates.canary] tables.")(command)


def _change_options(command):
    command = click.option("--by", "changed_by", default=None,
                           help="Who makes the change (default: the OS user).")(command)
    return click.option("--reason", default="", help="Why, recorded with the change.")(command)


@click.group(cls=_CanaryGroup)
def canary() -> None:
    """Serve a candidate to a share of live traffic: status, start, promote, rollback, guard."""


@canary.command()
@_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(config_path: str | None, store_path: str | None, as_json: bool) -> None:
    """Each canary's share, status, last change and, after an automatic rollback, the guard that
    fired with its numbers."""
    from shadowtap.core.store.canary_store import canary_events, read_canary_states

    config = load_config_or_exit(config_path)
    with open_store_or_exit(config, store_path) as store:
        states = read_canary_states(store)
        names = [c.name for c in config.candidates if c.canary is not None]
        names += sorted(name for name in states if name not in names)
        rows = []
        for name in names:
            state = states.get(name)
            canary_config = _canary_config(config, name)
            rollbacks = [event for event in canary_events(store, name) if event["guard"]]
            last = rollbacks[-1] if rollbacks else None
            rows.append({
                "candidate": name, "status": state.status if state else "off", "share": state.share if state else 0.0,
                "max_share": canary_config.max_share if canary_config else None,
                "configured": canary_config is not None,
                "changed_by": state.changed_by if state else None,
                "changed_at": _iso(state.changed_at) if state else None,
                "reason": state.reason if state else None, "guard": state.guard if state else None,
                "last_rollback": {"at": _iso(last["at"]), "guard": last["guard"], "reason": last["reason"],
                                  "window": last["window"]} if last else None,
            })
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    _print_status(rows)


@canary.command()
@click.argument("name")
@click.option("--share", type=float, required=True, help="Share of eligible live requests, 0..1 (e.g. 0.05).")
@click.option("--force", is_flag=True, help="Allow a share above the candidate's max_share.")
@_change_options
@_options
def start(name: str, share: float, force: bool, reason: str, changed_by: str | None, config_path: str | None,
          store_path: str | None) -> None:
    """Start (or restart after a rollback) NAME's canary at --share."""
    from shadowtap.core.store.canary_store import set_canary_share

    config = _config_for_share(config_path, name, share, force)
    with open_store_or_exit(config, store_path) as store:
        state = set_canary_share(store, name, share, status="running", changed_by=_who(changed_by),
                                 reason=reason or "started by hand")
    click.echo(f"canary {name}: running at {_percent(state.share)} of eligible requests")
    if not next(c for c in config.candidates if c.name == name).enabled:
        click.echo(f"shadowtap: warning: [[candidates]] {name!r} has enabled = false, so no live process "
                   "serves it until it is enabled", err=True)


@canary.command()
@click.argument("name")
@click.option("--share", type=float, required=True, help="The new, higher share, 0..1.")
@click.option("--force", is_flag=True, help="Promote even while a guard is red or above max_share.")
@_change_options
@_options
def promote(name: str, share: float, force: bool, reason: str, changed_by: str | None, config_path: str | None,
            store_path: str | None) -> None:
    """Raise a running canary's share to --share; refused while a guard is red (exit 1), unless --force."""
    from shadowtap.core.store.canary_store import read_canary_states, set_canary_share

    config = _config_for_share(config_path, name, share, force)
    with open_store_or_exit(config, store_path) as store:
        current = read_canary_states(store).get(name)
        if current is None or current.status != "running":
            what = "rolled back" if current and current.status == "rolled_back" else "not running"
            fail_usage(f"canary {name!r} is {what}: start it with `shadowtap canary start {name} --share X`")
        if share <= current.share:
            fail_usage(f"--share {share} is not above the current share {current.share}: promote raises it "
                       f"(lower it with `shadowtap canary start {name} --share {share}`)")
        red = [] if force else _load(RED_GUARDS)(config, store, name)
        if red:
            for result in red:
                click.echo(f"shadowtap: guard {result.name} is red: {result.describe()}", err=True)
            click.echo("shadowtap: not promoted; fix the cause or pass --force", err=True)
            raise SystemExit(1)
        state = set_canary_share(store, name, share, status="running", changed_by=_who(changed_by),
                                 reason=reason or ("promoted by hand (forced)" if force else "promoted by hand"))
    click.echo(f"canary {name}: promoted to {_percent(state.share)} of eligible requests")


@canary.command()
@click.argument("name")
@_change_options
@_options
def rollback(name: str, reason: str, changed_by: str | None, config_path: str | None, store_path: str | None) -> None:
    """Send NAME's share to 0 now: every live process stops giving it requests within state_poll_s."""
    from shadowtap.core.store.canary_store import read_canary_states, set_canary_share

    config = load_config_or_exit(config_path)
    with open_store_or_exit(config, store_path) as store:
        if _canary_config(config, name) is None and name not in read_canary_states(store):
            _require_canary(config, name)  # names the problem and exits 2
        set_canary_share(store, name, 0.0, status="rolled_back", changed_by=_who(changed_by),
                         reason=reason or "rolled back by hand")
    click.echo(f"canary {name}: rolled back, share 0")


def _canary_config(config: ShadowtapConfig, name: str) -> CandidateCanaryConfig | None:
    return next((c.canary for c in config.candidates if c.name == name), None)


def _require_canary(config: ShadowtapConfig, name: str) -> CandidateCanaryConfig:
    candidate = next((c for c in config.candidates if c.name == name), None)
    if candidate is None:
        known = ", ".join(c.name for c in config.candidates) or "none"
        fail_usage(f"no [[candidates]] named {name!r} in {config.source} (configured: {known}); pass --config")
    if candidate.canary is None:
        fail_usage(f"[[candidates]] {name!r} has no [candidates.canary] table, so it cannot serve live traffic; "
                   "add one (see docs/canary.md)")
    return candidate.canary


def _config_for_share(config_path: str | None, name: str, share: float, force: bool) -> ShadowtapConfig:
    """The config, once NAME is known to have a canary table and --share fits it (else exit 2)."""
    config = load_config_or_exit(config_path)
    _check_share(share, _require_canary(config, name), force)
    return config


def _check_share(share: float, canary_config: CandidateCanaryConfig, force: bool) -> None:
    if not 0 <= share <= 1:
        fail_usage(f"--share {share}: expected a number between 0 and 1 (0.05 is 5%)")
    if share > canary_config.max_share and not force:
        fail_usage(f"--share {share} is above this candidate's max_share ({canary_config.max_share}); "
                   "pass --force to go above it")


def _who(changed_by: str | None) -> str:
    if changed_by:
        return changed_by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        return "unknown"


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")


def _percent(share: float) -> str:
    return f"{share * 100:g}%"


def _print_status(rows: list[dict]) -> None:
    from rich.console import Console

    from shadowtap.core.terminal_tables import print_table

    console = Console()
    if not rows:
        console.print("no canaries: add a [candidates.canary] table to a candidate (docs/canary.md)")
        return
    columns = ["candidate", "status", "share", "max share", "changed by", "changed at", "reason", "guard"]
    table = [[row["candidate"], row["status"], _percent(row["share"]),
              _percent(row["max_share"]) if row["max_share"] is not None else "not configured",
              row["changed_by"] or "", row["changed_at"] or "", row["reason"] or "", row["guard"] or ""]
             for row in rows]
    print_table(console, "canaries", columns, table)
    for row in rows:
        last = row["last_rollback"]
        if last:
            window = last["window"] or {}
            numbers = ", ".join(f"{key}={window[key]}" for key in STATUS_NUMBERS if window.get(key) is not None)
            console.print(f"{row['candidate']}: last automatic rollback {last['at']} by guard {last['guard']}: "
                          f"{last['reason']}" + (f" ({numbers})" if numbers else ""), soft_wrap=True, markup=False)
