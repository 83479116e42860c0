"""The live path (ASGI proxy, forwarder, upstream client, capture) and the processes fed from it
(capture row builder, shadow worker)."""
