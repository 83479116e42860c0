"""OpenAI Embeddings: `POST /v1/embeddings`; vectors, usage and model, never a stream."""

from __future__ import annotations

from shadowtap.proxy.dialects.base import Dialect, path_without_query


class Embeddings(Dialect):
    name = "embeddings"
    captured = True
    mirrorable = True
    streams_when_asked = False
    shadow_call = "embedding"
    methods = ("POST",)

    def owns(self, path: str) -> bool:
        return path_without_query(path).endswith("/embeddings")
