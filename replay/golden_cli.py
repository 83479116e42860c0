"""`shadowtap golden add|remove|list|show|export|import|run`: golden sets from production traffic.

Exit codes: 0 done, and for `run` the target passed the set; 1 `run` fell below the set's pass
rate or some calls failed (their items are unjudged), or a set was not found; 2 usage or config
error.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import orjson

from shadowtap.core.captures_cli import time_option
from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.core.errors import ConfigError, SelectionError, StoreError

_config_option = click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                              help="Config file: targets, redaction, and the store unless --store is given.")
_store_option = click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
                             help="Capture store (default: [store] path from --config, else shadowtap.db).")


@click.group("golden")
def golden_group() -> None:
    """Golden sets: real exchanges with reviewed reference answers, run against every candidate before it ships."""


@golden_group.command("add")
@_config_option
@_store_option
@click.argument("name")
@click.option("--id", "exchange_ids", multiple=True, metavar="ID", help="Add this exchange. Repeatable.")
@click.option("--where", "wheres", multiple=True, metavar="EXPR",
              help='Add exchanges whose primary score matches, e.g. "grounding >= 0.9". Repeatable.')
@click.option("--since", metavar="TIME", help="Exchanges at or after this time (ISO, or an age like 7d).")
@click.option("--until", metavar="TIME", help="Exchanges before this time.")
@click.option("--endpoint", default=None, help="Only this endpoint, e.g. chat.completions.")
@click.option("--tag", "tags", multiple=True, metavar="NAME=VALUE", help="Only exchanges with this tag.")
@click.option("--sample", default=None, type=click.IntRange(1), metavar="N",
              help="A deterministic sample of N of the selected exchanges.")
@click.option("--reference-text", default=None,
              help="A reviewer's reference answer instead of the primary's (one exchange only).")
@click.option("--reviewer", default=None, help="Who wrote --reference-text.")
@click.option("--description", default=None, help="What the set is for.")
@click.option("--pass", "criterion", default=None,
              help="Pass criterion: contract, or EVALUATOR>=THRESHOLD (agreement compares with the reference). "
                   "Default: the set's, else agreement>=0.8.")
@click.option("--min-pass-rate", default=None, type=click.FloatRange(0, 1),
              help="Share of items that must pass for `golden run` to exit 0 (default: the set's, else 1.0).")
def add_command(config_path, store_path, name, exchange_ids, wheres, since, until, endpoint, tags, sample,
                reference_text, reviewer, description, criterion, min_pass_rate) -> None:
    """Add selected exchanges to golden set NAME, as a new version (an exchange already in it is replaced)."""
    from shadowtap.core.store.replay_store import ExchangeQuery
    from shadowtap.replay import selection as sel
    from shadowtap.replay.golden import add_items, items_from_exchanges

    config, store = _open(config_path, store_path)
    if not (exchange_ids or wheres or since or until or endpoint or tags):
        fail_usage("golden add needs a selection: --id, --where, --since, --until, --endpoint or --tag")
    if criterion:
        _check_criterion(criterion, config, config_path)
    try:
        query = ExchangeQuery(ids=tuple(exchange_ids), since=time_option(since, "--since"),
                              until=time_option(until, "--until"), endpoint=endpoint,
                              tags=tuple(sel.parse_tag(tag) for tag in tags),
                              scores=tuple(sel.parse_where(where) for where in wheres))
        chosen = [row["id"] for row in sel.select(store.replays, sel.Selection(query, sample))]
        if not chosen:
            click.echo("no exchanges match the selection; the set is unchanged", err=True)
            sys.exit(1)
        items = items_from_exchanges(store.replays.exchanges(chosen), reference_text=reference_text,
                                     reviewer=reviewer)
        row = add_items(store.golden, name, items, description=description, pass_criterion=criterion,
                        min_pass_rate=min_pass_rate, created_by=reviewer)
    except SelectionError as exc:
        fail_usage(str(exc))
    finally:
        store.close()
    click.echo(f"golden set {name} version {row['version']}: {row['items']} items ({len(items)} added or replaced)")


@golden_group.command("remove")
@_config_option
@_store_option
@click.argument("name")
@click.option("--id", "exchange_ids", multiple=True, required=True, metavar="ID", help="Remove this exchange.")
def remove_command(config_path, store_path, name, exchange_ids) -> None:
    """Remove exchanges from golden set NAME, as a new version."""
    from shadowtap.replay.golden import remove_items

    row = _on_golden(config_path, store_path, lambda golden: remove_items(golden, name, exchange_ids))
    click.echo(f"golden set {name} version {row['version']}: {row['items']} items")


@golden_group.command("list")
@_config_option
@_store_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per set.")
def list_command(config_path, store_path, as_json) -> None:
    """Every golden set: its latest version, items, criterion and last run per target."""
    _, store = _open(config_path, store_path)
    try:
        sets = store.golden.sets()
        lasts = {row["name"]: _last_runs(store.golden.runs(row["name"])) for row in sets}
    finally:
        store.close()
    if as_json:
        for row in sets:
            click.echo(orjson.dumps({**row, "last_runs": lasts[row["name"]]}).decode())
        return
    if not sets:
        click.echo("no golden sets yet: `shadowtap golden add NAME --where ...` makes one")
        return
    for row in sets:
        runs = "; ".join(f"{run['target_name']}: {_verdict(run)}" for run in lasts[row["name"]]) or "never run"
        click.echo(f"{row['name']} v{row['version']}: {row['items']} items, pass {row['pass_criterion']} on "
                   f"{row['min_pass_rate']:.0%} of items; {runs}")


@golden_group.command("show")
@_config_option
@_store_option
@click.argument("name")
@click.option("--version", "version", default=None, type=click.IntRange(1), help="A version (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="The set, its items and its runs as one JSON object.")
def show_command(config_path, store_path, name, version, as_json) -> None:
    """A golden set's items, with their reference answers, and its runs by version and target."""
    _, store = _open(config_path, store_path)
    try:
        row = _set_or_exit(store, name, version)
        items = store.golden.items(row["id"])
        runs = store.golden.runs(name)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps({"set": row, "items": [item.to_json() for item in items], "runs": runs}).decode())
        return
    click.echo(f"{name} v{row['version']} ({row['created_at']}): {row['items']} items; pass "
               f"{row['pass_criterion']} on {row['min_pass_rate']:.0%} of items"
               + (f"; {row['description']}" if row["description"] else ""))
    for item in items:
        reference = (item.reference_text or "").replace("\n", " ")
        click.echo(f"  {item.exchange_id} [{item.reference_source}] {reference[:100]}")
    for run in runs:
        click.echo(f"  run {run['id']} v{run['version']} {run['target_name']} k={run['k']}: {_verdict(run)}")


@golden_group.command("export")
@_config_option
@_store_option
@click.argument("name")
@click.option("--version", "version", default=None, type=click.IntRange(1), help="A version (default: latest).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="JSON file to write.")
def export_command(config_path, store_path, name, version, output) -> None:
    """Write a version of a golden set to a JSON file another store can import."""
    from shadowtap.replay.golden import export_set

    data = _on_golden(config_path, store_path, lambda golden: export_set(golden, name, version))
    Path(output).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    click.echo(f"wrote {name} v{data['set']['version']} ({len(data['items'])} items) to {output}")


@golden_group.command("import")
@_config_option
@_store_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Import under this name (default: the exported set's).")
def import_command(config_path, store_path, path, name) -> None:
    """Import a golden set exported by `golden export`, as a new version."""
    from shadowtap.replay.golden import import_set

    _, store = _open(config_path, store_path)
    try:
        row = import_set(store.golden, orjson.loads(Path(path).read_bytes()), name=name)
    except (SelectionError, orjson.JSONDecodeError) as exc:
        fail_usage(f"{path}: {exc}")
    finally:
        store.close()
    click.echo(f"golden set {row['name']} version {row['version']}: {row['items']} items imported")


@golden_group.command("run")
@_config_option
@_store_option
@click.argument("name")
@click.option("--target", required=True, metavar="TARGET",
              help="candidate:NAME, model:LITELLM_MODEL_STRING, or primary (needs --allow-primary).")
@click.option("--allow-primary", is_flag=True, help="Allow --target primary.")
@click.option("--api-base", default=None, help="OpenAI-compatible base URL for the target.")
@click.option("--api-key-env", default=None, metavar="VAR", help="Env var holding the target's key.")
@click.option("-k", "k", default=1, show_default=True, type=click.IntRange(1, 100),
              help="Answers per item; an item passes when all k pass.")
@click.option("--version", "version", default=None, type=click.IntRange(1), help="A version (default: latest).")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 256),
              help="Model calls in flight at once.")
@click.option("--timeout-s", default=None, type=float, help="Total deadline per call (default 60).")
@click.option("--json", "as_json", is_flag=True, help="The outcome as one JSON object.")
def run_command(config_path, store_path, name, target, allow_primary, api_base, api_key_env, k, version,
                concurrency, timeout_s, as_json) -> None:
    """Run a target on golden set NAME; exit 1 when it falls below the set's pass rate (for CI)."""
    from shadowtap.replay.golden import exchange_rows, judge_results, record_run
    from shadowtap.replay.passing import PassCriterion
    from shadowtap.replay.runner import ReplayRunner, create_run
    from shadowtap.replay.targets import resolve_target

    config, store = _open(config_path, store_path)
    try:
        row = _set_or_exit(store, name, version)
        items = store.golden.items(row["id"])
        try:
            resolved = resolve_target(target, config, allow_primary=allow_primary, api_base=api_base,
                                      api_key_env=api_key_env, system_prompt=None, params={}, timeout_s=timeout_s)
            criterion = PassCriterion.parse(row["pass_criterion"], config, config_dir=_config_dir(config_path))
        except ConfigError as exc:
            fail_usage(str(exc))
        ids = [item.exchange_id for item in items]
        run_id = create_run(store.replays, selection={"golden_set": row["id"], "exchange_ids": ids}, target=resolved,
                            k=k, criterion=criterion.text, config=config)
        runner = ReplayRunner(store.replays, config, resolved, criterion, k=k, concurrency=concurrency,
                              exchange_rows=exchange_rows(items))
        try:
            asyncio.run(runner.run(run_id, ids))
        except StoreError as exc:
            click.echo(f"shadowtap: {exc}", err=True)
            sys.exit(1)
        outcome = judge_results(items, store.replays.results(run_id))
        recorded = record_run(store.golden, row, run_id=run_id, target_name=f"{resolved.kind}:{resolved.name}",
                              target=resolved.to_json(), k=k, outcome=outcome)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps({**recorded, "errors": outcome.errors, "failing_items": outcome.failing_items,
                                 "version": row["version"]}).decode())
    else:
        click.echo(f"golden {name} v{row['version']} against {recorded['target_name']} (k={k}): {_verdict(recorded)}")
        for exchange_id in outcome.failing_items[:20]:
            click.echo(f"  failed: {exchange_id} (`shadowtap replay show {run_id}` has the diffs)")
        if outcome.errors:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(outcome.errors.items()))
            click.echo(f"  {outcome.items - outcome.judged} items unjudged: calls failed ({reasons})", err=True)
    sys.exit(0 if recorded["passed"] else 1)


def _on_golden(config_path, store_path, work):
    """`work(store.golden)`'s result; a set that is not there exits 1 with the reason."""
    _, store = _open(config_path, store_path)
    try:
        return work(store.golden)
    except SelectionError as exc:
        click.echo(f"shadowtap: {exc}", err=True)
        sys.exit(1)
    finally:
        store.close()


def _set_or_exit(store, name: str, version: int | None) -> dict:
    row = store.golden.get(name, version)
    if row is None:
        store.close()
        click.echo(f"shadowtap: no golden set {name!r}" + (f" version {version}" if version else ""), err=True)
        sys.exit(1)
    return row


def _verdict(run: dict) -> str:
    rate = "n/a" if run["pass_rate"] is None else f"{run['pass_rate']:.0%}"
    unjudged = run["items"] - run["items_judged"]
    return (f"{'PASS' if run['passed'] else 'FAIL'} {run['items_passed']}/{run['items_judged']} items passed "
            f"({rate}; needs {run['min_pass_rate']:.0%})" + (f", {unjudged} unjudged" if unjudged else ""))


def _last_runs(runs: list[dict]) -> list[dict]:
    """The newest run per target."""
    seen: dict[str, dict] = {}
    for run in runs:
        seen.setdefault(run["target_name"], run)
    return list(seen.values())


def _check_criterion(criterion: str, config, config_path) -> None:
    from shadowtap.replay.passing import PassCriterion

    try:
        PassCriterion.parse(criterion, config, config_dir=_config_dir(config_path))
    except ConfigError as exc:
        fail_usage(str(exc))


def _open(config_path, store_path):
    config = load_config_or_exit(config_path)
    return config, open_store_or_exit(config, store_path)


def _config_dir(config_path) -> Path:
    return Path(config_path).resolve().parent if config_path else Path(".")
