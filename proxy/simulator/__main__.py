"""`python -m shadowtap.proxy.simulator`: the same command as `shadowtap simulator`."""

from __future__ import annotations

from shadowtap.proxy.simulator.command import simulator


def main(argv: list[str] | None = None) -> None:
    simulator.main(args=argv, prog_name="python -m shadowtap.proxy.simulator")


if __name__ == "__main__":
    main()
