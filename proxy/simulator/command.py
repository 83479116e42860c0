"""`shadowtap simulator` (also `python -m shadowtap.proxy.simulator`): the simulated upstream as a command."""

from __future__ import annotations

import click

from shadowtap.proxy.simulator.knobs import KNOB_HELP


def _knobs_epilog() -> str:
    width = max(len(header) for header, _ in KNOB_HELP)
    # "\b" keeps click from re-wrapping the table into one paragraph.
    lines = ["Per-request knobs (request headers, so they pass through the proxy):", "", "\b"]
    lines += [f"  {header:<{width}}  {meaning}" for header, meaning in KNOB_HELP]
    lines += ["", "Exit codes: 0 stopped; 2 a bad option, or the port is already in use."]
    return "\n".join(lines)


# Its own help names, the same as the root command's: click caches the help option of the first call,
# which may be `python -m shadowtap.proxy.simulator` outside the root group.
@click.command(epilog=_knobs_epilog(), context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--latency-ms", default=0, show_default=True, type=int,
              help="Delay before each answer (before a stream's first chunk).")
@click.option("--ttft-ms", default=0, show_default=True, type=int, help="Further delay before a stream's first chunk.")
@click.option("--chunk-delay-ms", default=0, show_default=True, type=int, help="Delay between stream chunks.")
@click.option("--error-rate", default=0.0, show_default=True, type=float,
              help="Share of requests (0-1, picked by request hash) answered with --error-status.")
@click.option("--error-status", default=500, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int, help="Changes which requests --error-rate picks.")
@click.option("--require-api-key", default=None, metavar="KEY",
              help="Reject requests without this key (a bearer token; x-api-key on Anthropic paths).")
@click.option("--record-requests", is_flag=True,
              help="Keep the last 1000 requests, readable at GET /sim/requests (DELETE clears them).")
def simulator(host: str, port: int, latency_ms: int, ttft_ms: int, chunk_delay_ms: int, error_rate: float,
              error_status: int, seed: int, require_api_key: str | None, record_requests: bool) -> None:
    """Run the simulated OpenAI-compatible upstream (deterministic, offline)."""
    import uvicorn

    from shadowtap.core.errors import ConfigError, ListenError
    from shadowtap.proxy.listening import bind_listening_sockets
    from shadowtap.proxy.simulator.server import SimulatorSettings, create_simulator_app

    try:
        settings = SimulatorSettings(latency_ms=latency_ms, ttft_ms=ttft_ms, chunk_delay_ms=chunk_delay_ms,
                                     error_rate=error_rate, error_status=error_status, seed=seed,
                                     require_api_key=require_api_key, record_requests=record_requests)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        sockets = bind_listening_sockets(host, port)
    except ListenError as exc:
        click.echo(f"shadowtap: {exc}", err=True)
        raise SystemExit(2) from None
    bound_port = sockets[0].getsockname()[1]
    click.echo(f"simulated upstream on http://{host}:{bound_port}/v1 (Ctrl-C to stop)", err=True)
    server = uvicorn.Server(uvicorn.Config(create_simulator_app(settings), host=host, port=bound_port,
                                           access_log=False, log_level="warning"))
    try:
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
