"""`shadowtap replay run|resume|show`: re-run captured traffic against a target and report what differs.

Exit codes: 0 done (also when a run stops at its budget: its status says over_budget); 1 some calls
failed (the run's status says incomplete, and stderr counts the failures by reason), a run or
exchange was not found, or the store could not be written; 2 usage or config error (including
--target primary without --allow-primary, and resuming an over-budget run without a higher budget).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
import orjson

from shadowtap.core.captures_cli import time_option
from shadowtap.core.cli_common import fail_usage, load_config_or_exit, open_store_or_exit
from shadowtap.core.errors import ConfigError, StoreError

_config_option = click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                              help="Config file: targets, redaction, contexts, and the store unless --store is given.")
_store_option = click.option("--store", "store_path", default=None, type=click.Path(dir_okay=False),
                             help="Capture store (default: [store] path from --config, else shadowtap.db).")
_concurrency_option = click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 256),
                                   help="Model calls in flight at once.")
_rate_option = click.option("--rate", default=None, type=click.FloatRange(min=0, min_open=True), metavar="N",
                            help="At most N model calls started per second, evenly spaced, across all of "
                                 "--concurrency (default: no limit).")


@click.group("replay")
def replay_group() -> None:
    """Re-run captured exchanges against a target and see what differs and how reliably it passes."""


def _run_options(function):
    for option in reversed([
        click.option("--target", default=None, metavar="TARGET",
                     help="primary (needs --allow-primary), candidate:NAME, or model:LITELLM_MODEL_STRING."),
        click.option("--allow-primary", is_flag=True, help="Allow --target primary (re-sends traffic to it)."),
        click.option("--api-base", default=None, help="OpenAI-compatible base URL for the target."),
        click.option("--api-key-env", default=None, metavar="VAR", help="Env var holding the target's key."),
        click.option("--system-prompt", default=None, help="Replace each request's system prompt with this."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="Override a request parameter (JSON value), e.g. temperature=0. Repeatable."),
        click.option("-k", "k", default=1, show_default=True, type=click.IntRange(1, 100),
                     help="Repetitions per exchange."),
        click.option("--pass", "criterion", default="agreement>=0.8", show_default=True,
                     help="Pass criterion: contract, or EVALUATOR>=THRESHOLD (agreement compares with the "
                          "captured answer)."),
        click.option("--perturb", is_flag=True, help="Also replay deterministic perturbations of each request."),
        click.option("--paraphrase-model", default=None, metavar="LITELLM_MODEL",
                     help="Also replay paraphrases of each request's last user message, written by this model "
                          "(temperature 0, a seed; asked once per exchange and paraphrase)."),
        click.option("--paraphrase-api-base", default=None, metavar="URL",
                     help="OpenAI-compatible base URL of the paraphrase model."),
        click.option("--paraphrase-api-key-env", default=None, metavar="VAR",
                     help="Env var holding the paraphrase model's key (never the target's or a client's)."),
        click.option("--paraphrases", default=None, type=click.IntRange(1, 20), metavar="N",
                     help="Paraphrases per exchange (default 1 with --paraphrase-model)."),
        _concurrency_option,
        _rate_option,
        click.option("--budget-usd", default=None, type=float,
                     help="Start no new call (replay or paraphrase) once this much is spent."),
        click.option("--timeout-s", default=None, type=float, help="Total deadline per call (default 60)."),
        click.option("--id", "exchange_ids", multiple=True, metavar="ID", help="Only these exchanges. Repeatable."),
        click.option("--since", metavar="TIME", help="Exchanges at or after this time (ISO, or an age like 2h)."),
        click.option("--until", metavar="TIME", help="Exchanges before this time (ISO, or an age)."),
        click.option("--endpoint", default=None, help="Only this endpoint (chat.completions is replayable)."),
        click.option("--model", default=None, help="Only requests for this model."),
        click.option("--status", default=None, type=int, help="Only this HTTP status of the primary's answer."),
        click.option("--tag", "tags", multiple=True, metavar="NAME=VALUE", help="Only exchanges with this tag."),
        click.option("--flag", "flags", multiple=True, metavar="FLAG",
                     help="Only exchanges with this outcome flag (client_disconnected, stream_incomplete, "
                          "upstream_error, ...). Repeatable."),
        click.option("--where", "wheres", multiple=True, metavar="EXPR",
                     help='Only exchanges whose primary score matches, e.g. "faithfulness < 0.5". Repeatable.'),
        click.option("--sample", default=None, type=click.IntRange(1), metavar="N",
                     help="A deterministic sample of N of the selected exchanges."),
        click.option("--run", "run_id", default=None, metavar="RUN", help="Continue this run instead of a new one."),
        click.option("--dry-run", is_flag=True, help="Show what would be replayed and its estimated cost."),
    ]):
        function = option(function)
    return _config_option(_store_option(function))


@replay_group.command("run")
@_run_options
def run_command(config_path, store_path, target, allow_primary, api_base, api_key_env, system_prompt, params, k,
                criterion, perturb, paraphrase_model, paraphrase_api_base, paraphrase_api_key_env, paraphrases,
                concurrency, rate, budget_usd, timeout_s, exchange_ids, since, until, endpoint, model, status, tags,
                flags, wheres, sample, run_id, dry_run) -> None:
    """Replay the selected exchanges against a target; prints the run id first.

    Exits 1 when calls failed, counting them by reason on stderr (the run's status is incomplete).
    """
    from shadowtap.core.store.replay_store import ExchangeQuery, ReplayStore
    from shadowtap.replay import selection as sel
    from shadowtap.replay.passing import PassCriterion
    from shadowtap.replay.targets import parse_param, resolve_target

    config = load_config_or_exit(config_path)
    store = _open(config, store_path)
    replay_store = ReplayStore(store)
    if run_id:
        _resume(config, config_path, replay_store, run_id, concurrency, budget_usd, rate)
        return
    if not target:
        fail_usage("replay run needs --target (primary, candidate:NAME or model:LITELLM_MODEL_STRING)")
    try:
        resolved = resolve_target(target, config, allow_primary=allow_primary, api_base=api_base,
                                  api_key_env=api_key_env, system_prompt=system_prompt,
                                  params=dict(parse_param(p) for p in params), timeout_s=timeout_s)
        paraphrase = _paraphrase_settings(config, paraphrase_model, paraphrase_api_base, paraphrase_api_key_env,
                                          paraphrases, timeout_s)
        query = ExchangeQuery(ids=tuple(exchange_ids), since=time_option(since, "--since"),
                              until=time_option(until, "--until"), endpoint=endpoint, model=model, status=status,
                              tags=tuple(sel.parse_tag(t) for t in tags), flags=tuple(sel.parse_flag(f) for f in flags),
                              scores=tuple(sel.parse_where(w) for w in wheres))
        selection = sel.Selection(query, sample)
        pass_criterion = PassCriterion.parse(criterion, config, config_dir=_config_dir(config_path))
    except ConfigError as exc:
        fail_usage(str(exc))
    rows = sel.select(replay_store, selection)
    if dry_run:
        from shadowtap.proxy.capture.pricing import PriceTable

        estimate = sel.estimate_cost(rows, lambda row: resolved.model_for({"model": row["model"]}, row.get("endpoint")),
                                     k, PriceTable.from_litellm_package())
        calls = len(rows) * k
        extras = [what for what, wanted in (("perturbations", perturb), (f"{paraphrase.count} paraphrase(s) each, "
                  f"written by {paraphrase.writer.model}" if paraphrase else "", paraphrase)) if wanted]
        click.echo(f"would replay {len(rows)} exchanges x {k} = {calls} calls against "
                   f"{resolved.kind}:{resolved.name}" + (f" (plus {' and '.join(extras)})" if extras else ""))
        if rows:
            click.echo("first ids: " + ", ".join(row["id"] for row in rows[:5]))
        click.echo(f"estimated cost: ${estimate.usd:.4f}"
                   + (f" ({estimate.unknown} exchanges without a price or token counts)" if estimate.unknown else ""))
        return
    if not rows:
        click.echo("no exchanges match the selection", err=True)
        sys.exit(1)
    from shadowtap.replay.runner import create_run

    recorded = {**selection.to_json(), "exchange_ids": [row["id"] for row in rows], "perturb": perturb,
                "paraphrase": paraphrase.to_json() if paraphrase else None, "budget_usd": budget_usd}
    new_id = create_run(replay_store, selection=recorded, target=resolved, k=k, criterion=pass_criterion.text,
                        config=config)
    click.echo(new_id)
    sys.stdout.flush()
    _execute(config, replay_store, new_id, pass_criterion, resolved, k, concurrency, budget_usd, rate, perturb,
             paraphrase, recorded["exchange_ids"])


@replay_group.command("resume")
@_config_option
@_store_option
@click.argument("run_id", metavar="RUN")
@_concurrency_option
@_rate_option
@click.option("--budget-usd", default=None, type=float,
              help="Start no new call once the run has spent this much in total (default: the run's own budget).")
def resume_command(config_path, store_path, run_id, concurrency, rate, budget_usd) -> None:
    """Finish a run that was interrupted or whose calls failed: results not yet stored, and failed
    calls, are made again; answered ones are kept.

    A run stopped at its budget is resumed only with a higher --budget-usd.
    """
    from shadowtap.core.store.replay_store import ReplayStore

    config = load_config_or_exit(config_path)
    _resume(config, config_path, ReplayStore(_open(config, store_path)), run_id, concurrency, budget_usd, rate)


@replay_group.command("show")
@_config_option
@_store_option
@click.argument("run_id", metavar="RUN")
@click.option("--json", "as_json", is_flag=True, help="Print the run's figures and diffs as one JSON object.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print Markdown tables.")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write a self-contained HTML page (word-level diffs, no script, nothing fetched) to FILE.")
def show_command(config_path, store_path, run_id, as_json, as_markdown, html_path) -> None:
    """Per-exchange diffs against the captured answers, pass@k and consistency, and the overall figures."""
    from shadowtap.core.store.replay_store import ReplayStore
    from shadowtap.replay.show import render_markdown, render_text, run_summary

    if as_json and as_markdown:
        fail_usage("--json and --markdown are alternatives: pass one")
    config = load_config_or_exit(config_path)
    replay_store = ReplayStore(_open(config, store_path))
    run = replay_store.get_run(run_id)
    if run is None:
        click.echo(f"shadowtap: no replay run {run_id!r}", err=True)
        sys.exit(1)
    summary = run_summary(replay_store, run)
    if html_path:
        _write_html(summary, html_path)
    if as_json:
        click.echo(orjson.dumps(summary).decode())
    elif as_markdown:
        click.echo(render_markdown(summary))
    else:
        click.echo(render_text(summary))


@replay_group.command("export")
@_config_option
@_store_option
@click.option("--run", "run_ids", multiple=True, metavar="RUN", help="A replay run to include (repeatable).")
@click.option("--id", "exchange_ids", multiple=True, metavar="ID", help="An exchange to include (repeatable).")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Bundle file to write.")
def export_command(config_path, store_path, run_ids, exchange_ids, output) -> None:
    """Write an incident bundle: the exchanges, the runs' results and the config, secrets removed."""
    import dataclasses

    from shadowtap.replay.bundle import export_bundle

    if not run_ids and not exchange_ids:
        fail_usage("nothing to export: pass --run RUN and/or --id ID")
    config = load_config_or_exit(config_path)
    store = _open(config, store_path)
    snapshot = dataclasses.asdict(config)
    try:
        counts = export_bundle(store, output, exchange_ids=list(exchange_ids), run_ids=list(run_ids),
                               config_snapshot=snapshot)
    except StoreError as exc:
        fail_usage(str(exc))
    click.echo(f"wrote {output}: " + ", ".join(f"{count} {table}" for table, count in counts.items()), err=True)


@replay_group.command("import")
@_config_option
@_store_option
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
def import_command(config_path, store_path, bundle) -> None:
    """Load an incident bundle into this store, so its exchanges can be replayed here."""
    from shadowtap.core.store import CaptureStore
    from shadowtap.replay.bundle import import_bundle

    config = load_config_or_exit(config_path)
    try:
        store = CaptureStore.open(store_path or config.store.path)  # created if new: a colleague's empty store
        counts = import_bundle(store, bundle)
    except StoreError as exc:
        fail_usage(str(exc))
    click.echo(f"imported {bundle}: " + ", ".join(f"{count} {table}" for table, count in counts.items()), err=True)


def _resume(config, config_path, replay_store, run_id, concurrency, budget_usd, rate) -> None:
    from shadowtap.replay.paraphrase import ParaphraseSettings
    from shadowtap.replay.passing import PassCriterion
    from shadowtap.replay.targets import ReplayTarget

    run = replay_store.get_run(run_id)
    if run is None:
        click.echo(f"shadowtap: no replay run {run_id!r}", err=True)
        sys.exit(1)
    try:
        criterion = PassCriterion.parse(run["pass_criterion"], config, config_dir=_config_dir(config_path))
    except ConfigError as exc:
        fail_usage(str(exc))
    selection = run["selection"]
    budget_usd = budget_usd if budget_usd is not None else selection.get("budget_usd")
    spent = replay_store.spent_usd(run["id"])
    if run["status"] == "over_budget" and budget_usd is not None and spent >= budget_usd:
        fail_usage(f"replay run {run['id']} stopped at its budget: ${spent:.4f} spent of ${budget_usd:.4f}; "
                   "pass a higher --budget-usd to continue it")
    replay_store.forget_failed(run["id"])   # a resumed run makes its failed calls again
    click.echo(run["id"])
    sys.stdout.flush()
    _execute(config, replay_store, run["id"], criterion, ReplayTarget.from_json(run["target"]), run["k"],
             concurrency, budget_usd, rate, bool(selection.get("perturb")),
             ParaphraseSettings.from_json(selection.get("paraphrase")), selection["exchange_ids"])


def _execute(config, replay_store, run_id, criterion, target, k, concurrency, budget_usd, rate, perturb, paraphrase,
             exchange_ids):
    from shadowtap.replay.runner import ReplayRunner

    runner = ReplayRunner(replay_store, config, target, criterion, k=k, concurrency=concurrency,
                          budget_usd=budget_usd, rate=rate, perturb=perturb, paraphrase=paraphrase)
    try:
        summary = asyncio.run(runner.run(run_id, exchange_ids))
    except StoreError as exc:
        click.echo(f"shadowtap: {exc}", err=True)
        sys.exit(1)
    if summary.status == "over_budget":
        click.echo(f"run {run_id} stopped at its budget: ${summary.spent_usd:.4f} spent of ${budget_usd:.4f}; "
                   f"results so far are kept; `shadowtap replay resume {run_id} --budget-usd MORE` continues it",
                   err=True)
    click.echo(f"run {run_id}: {summary.status}; {summary.written} results written, "
               f"{summary.already_done} already stored; spent ${summary.spent_usd:.4f}; "
               f"see `shadowtap replay show {run_id}`", err=True)
    if summary.failed:
        from shadowtap.evaluators.report.error_reasons import describe_reasons  # only when calls failed

        click.echo(f"shadowtap: {summary.failed_calls} of {summary.calls} calls failed: "
                   f"{describe_reasons(summary.failed, limit=5)}; their figures are left out; "
                   f"`shadowtap replay resume {run_id}` makes them again", err=True)
        sys.exit(1)


def _paraphrase_settings(config, model, api_base, api_key_env, count, timeout_s):
    """ParaphraseSettings for --paraphrase-model, resolved like a `model:` target (its own base and key)."""
    from shadowtap.replay.paraphrase import ParaphraseSettings
    from shadowtap.replay.targets import resolve_target

    if not model:
        extra = [name for name, value in (("--paraphrase-api-base", api_base),
                                          ("--paraphrase-api-key-env", api_key_env), ("--paraphrases", count)) if value]
        if extra:
            fail_usage(f"{', '.join(extra)} without --paraphrase-model: name the model that writes the paraphrases")
        return None
    writer = resolve_target(f"model:{model.removeprefix('model:')}", config, api_base=api_base, api_key_env=api_key_env,
                            timeout_s=timeout_s)
    return ParaphraseSettings(writer, count or 1)


def _write_html(summary: dict, html_path: str) -> None:
    from shadowtap.replay.render_html import render_html

    try:
        Path(html_path).write_text(render_html(summary), encoding="utf-8")
    except OSError as exc:
        fail_usage(f"--html: cannot write {html_path!r}: {exc.strerror or exc}")
    click.echo(f"wrote {html_path}", err=True)


def _open(config, store_path):

    return open_store_or_exit(config, store_path).captures


def _config_dir(config_path) -> Path:
    return Path(config_path).resolve().parent if config_path else Path(".")
