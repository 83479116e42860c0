"""`shadowtap simulator`: the simulated upstream as a command."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--latency-ms", default=0, show_default=True, type=int, help="Delay before each answer.")
@click.option("--ttft-ms", default=0, show_default=True, type=int, help="Delay before a stream's first chunk.")
@click.option("--chunk-delay-ms", default=0, show_default=True, type=int, help="Delay between stream chunks.")
@click.option("--error-rate", default=0.0, show_default=True, type=float,
              help="Share of requests answered with --error-status.")
@click.option("--error-status", default=500, show_default=True, type=int)
def simulator(host: str, port: int, latency_ms: int, ttft_ms: int, chunk_delay_ms: int,
              error_rate: float, error_status: int) -> None:
    """Run the simulated OpenAI-compatible upstream (deterministic, offline)."""
    from shadowtap.proxy.simulator.server import SimulatorSettings, run_simulator

    settings = SimulatorSettings(latency_ms=latency_ms, ttft_ms=ttft_ms, chunk_delay_ms=chunk_delay_ms,
                                 error_rate=error_rate, error_status=error_status)
    click.echo(f"simulated upstream on http://{host}:{port}/v1 (Ctrl-C to stop)", err=True)
    run_simulator(settings, host=host, port=port)
