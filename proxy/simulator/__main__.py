"""Command line for the simulator: `python -m shadowtap.proxy.simulator --port 9000`."""

import argparse

from shadowtap.core.errors import ConfigError

from .server import SimulatorSettings, run_simulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shadowtap.proxy.simulator",
        description="Serve the deterministic OpenAI-compatible simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="delay before each response (before a stream's first chunk)")
    parser.add_argument("--ttft-ms", type=int, default=0,
                        help="further delay before a stream's first chunk")
    parser.add_argument("--chunk-delay-ms", type=int, default=0,
                        help="delay between stream chunks")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="share of requests (0-1, picked by request hash) that fail")
    parser.add_argument("--error-status", type=int, default=500,
                        help="status of the failures --error-rate picks")
    parser.add_argument("--seed", type=int, default=0,
                        help="changes which requests --error-rate picks")
    parser.add_argument("--require-api-key", default=None,
                        help="reject requests without this bearer key")
    parser.add_argument("--record-requests", action="store_true",
                        help="keep the last 1000 requests, readable at GET /sim/requests")
    args = parser.parse_args(argv)
    try:
        settings = SimulatorSettings(
            latency_ms=args.latency_ms, ttft_ms=args.ttft_ms, chunk_delay_ms=args.chunk_delay_ms,
            error_rate=args.error_rate, error_status=args.error_status, seed=args.seed,
            require_api_key=args.require_api_key, record_requests=args.record_requests)
    except ConfigError as exc:
        parser.error(str(exc))  # exits with status 2, the project's usage-error code
    run_simulator(settings, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
