"""OpenAI Embeddings: `POST /v1/embeddings`; vectors, usage and model, never a stream."""

from __future__ import annotations

from shadowtap.proxy.dialects.base import Dialect, ShadowRequest, path_without_query


class Embeddings(Dialect):
    name = "embeddings"
    captured = True
    mirrorable = True
    streams_when_asked = False
    methods = ("POST",)

    def owns(self, path: str) -> bool:
        return path_without_query(path).endswith("/embeddings")

    def shadow_request(self, request: dict) -> ShadowRequest:
        return ShadowRequest("embedding", request)
