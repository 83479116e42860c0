"""shadowtap's live path: config, the ASGI proxy, capture, the store and the CLI root."""

__version__ = "0.1.0"
