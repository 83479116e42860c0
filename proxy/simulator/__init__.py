"""A deterministic, offline OpenAI-compatible model server for the demo, tests and benchmark."""

from .server import SimulatorSettings, create_simulator_app, run_simulator, running_simulator

__all__ = ["SimulatorSettings", "create_simulator_app", "run_simulator", "running_simulator"]
