"""The forwarder's canary hook: pick the candidate for a request, let it answer, or say why the primary must.

`CanaryServing.assign` runs for every request while some candidate has a share (nothing when none
has); `serve` calls the chosen candidate. A contract-bound request's answer is buffered whole and
validated first; any other answer is relayed as it arrives, stream included. Whenever the app could
still get the primary's answer instead (nothing sent yet) and the candidate failed, timed out or
broke the contract, `serve` returns False with `exchange.fallback_reason` set, and the forwarder
calls the primary as if no canary ran. A bug here falls back the same way: it never fails the request.

What the exchange records: `served_by` is the candidate's name when it answered the app, "primary"
when a canaried request fell back (and `fallback_reason` says why: contract_invalid,
candidate_error, candidate_timeout, state_stale, canary_error), NULL for every other request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

from shadowtap.core.config import ShadowtapConfig
from shadowtap.core.errors import UpstreamError, UpstreamTimeout
from shadowtap.proxy.canary.assignment import CanaryAssigner
from shadowtap.proxy.canary.candidate_call import CandidateTarget, candidate_headers, with_model
from shadowtap.proxy.canary.contracts import Contract, ContractRules, answer_errors
from shadowtap.proxy.canary.state import CanaryShares
from shadowtap.proxy.dialects import Dialect
from shadowtap.proxy.exchange import RawExchange
from shadowtap.proxy.headers import relayable_response_headers
from shadowtap.proxy.metrics import ProxyMetrics
from shadowtap.proxy.upstream_http import BodyBrokeOff, UpstreamResponse

log = logging.getLogger("shadowtap.canary")

PRIMARY = "primary"
CONTRACT_INVALID, CANDIDATE_ERROR, CANDIDATE_TIMEOUT = "contract_invalid", "candidate_error", "candidate_timeout"
STATE_STALE, CANARY_ERROR = "state_stale", "canary_error"

# The forwarder's relay: (candidate response, exchange, send, disconnect watcher), chunk by chunk.
Relay = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Assignment:
    """A request a candidate will answer: the candidate, and the request as it will be sent."""

    candidate: str
    body: bytes           # the app's request with only `model` replaced
    request: dict         # the same, parsed (for its contract)


class _Fallback(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class CanaryServing:
    """Everything the live process needs to let candidates answer a share of its requests."""

    def __init__(self, config: ShadowtapConfig, metrics: ProxyMetrics, *,
                 open_state_store: Callable[[], object]) -> None:
        candidates = [c for c in config.candidates if c.canary is not None and c.enabled]
        self._targets = {target.name: target for target in map(CandidateTarget.of, candidates) if target is not None}
        self.configured = [candidate.name for candidate in candidates]
        self.assigner = CanaryAssigner([c for c in candidates if c.name in self._targets], config.canary)
        # Every configured canary candidate keeps its region, even one that cannot serve (its key is
        # missing), so the others' regions do not depend on it.
        max_shares = [(c.name, c.canary.max_share) for c in candidates if c.canary is not None]
        self.shares = CanaryShares(open_state_store, max_shares, poll_s=config.canary.state_poll_s,
                                   stale_s=config.canary.state_stale_s)
        config_dir = Path(config.source).parent if not config.source.startswith("<") else Path.cwd()
        self._contracts = ContractRules.load(config.contracts.rules, config_dir)
        self._metrics = metrics
        # A contract-bound answer is held whole before it is checked: no larger than a request may be.
        self._max_buffered_bytes = config.server.max_body_bytes

    @property
    def running(self) -> bool:
        """Whether some candidate has a share to serve: the only question asked while none has."""
        return bool(self.shares.current.slices)

    async def start(self) -> None:
        for target in self._targets.values():
            await target.client.start()
        self.shares.start()

    async def close(self) -> None:
        self.shares.stop()
        for target in self._targets.values():
            await target.client.close()

    def health(self) -> dict:
        """/healthz's `canary`: each candidate's share and status as this process last read them."""
        snapshot = self.shares.current
        candidates = {}
        for name in self.configured:
            state = snapshot.states.get(name)
            candidates[name] = {"share": state.share if state else 0.0, "status": state.status if state else "off",
                                "guard": state.guard if state else None,   # what rolled it back, if a guard did
                                "serving": name in self._targets}
        age = None
        if snapshot.read_at is not None:
            age = round(self.shares.age_s(snapshot.read_at), 3)
        return {"stale": self.shares.stale(snapshot), "state_age_s": age, "candidates": candidates}

    def assign(self, exchange: RawExchange, dialect: Dialect) -> Assignment | None:
        """The candidate that should answer and what it is sent, or None. Call only when `running`.

        Only a request that falls in a slice is parsed. A body that is not a JSON object, or a
        request that leans on state the primary keeps (a Responses `previous_response_id`...), is
        not canaried: the primary answers it, and nothing is recorded as a fallback."""
        snapshot = self.shares.current
        name = self.assigner.assign(exchange.id, exchange.request_headers, dialect, snapshot.slices)
        if name is None:
            return None
        if self.shares.stale(snapshot):
            self.fell_back(exchange, name, STATE_STALE, "the canary state could not be read for [canary] state_stale_s")
            return None
        prepared = with_model(exchange.request_body, self._targets[name].model)
        if prepared is None or dialect.mirror_refusal(prepared[1]) is not None:
            return None
        return Assignment(name, *prepared)

    def fell_back(self, exchange: RawExchange, candidate: str, reason: str, detail: str) -> None:
        exchange.served_by = PRIMARY
        exchange.fallback_reason = reason
        self._metrics.canary_fallbacks.labels(candidate, reason).inc()
        # A stale state is logged once by the poller, not once per request while it lasts.
        log.log(logging.DEBUG if reason == STATE_STALE else logging.INFO, "canaried request answered by the primary",
                extra={"exchange_id": exchange.id, "candidate": candidate, "reason": reason, "detail": detail})

    async def serve(self, assignment: Assignment, exchange: RawExchange, dialect: Dialect, suffix: str,
                    query: bytes, send, relay: Relay, watcher) -> bool:
        """True when the candidate answered the app. False when the primary must answer: then nothing
        was sent to the app, and the fallback is recorded on the exchange."""
        candidate, body = assignment.candidate, assignment.body
        target = self._targets[candidate]
        sent = _SendTracker(send)
        try:
            contract = self._contracts.contract_for(dialect, exchange.request_headers, assignment.request)
            exchange.t_upstream_start = perf_counter()
            # One deadline: for the status line, and for a contract-bound answer the whole of it.
            deadline = asyncio.get_running_loop().time() + target.rules.timeout_s
            response = await self._call(target, exchange, dialect, suffix, query, body, deadline)
            try:
                if contract is not None:
                    await self._answer_checked(target, contract, dialect, exchange, response, sent, watcher,
                                               deadline)
                else:
                    exchange.served_by = candidate
                    await relay(response, exchange, sent, watcher)
            finally:
                response.close()
        except _Fallback as fallback:
            self.fell_back(exchange, candidate, fallback.reason, str(fallback))
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if sent.started:
                log.exception("canary serving failed after the answer started", extra={"exchange_id": exchange.id})
                return True
            log.exception("canary serving failed; the primary answers", extra={"exchange_id": exchange.id})
            self.fell_back(exchange, candidate, CANARY_ERROR, f"{type(exc).__name__}")
            return False
        exchange.served_by = candidate
        self._metrics.canary_served.labels(candidate).inc()
        return True

    async def _call(self, target: CandidateTarget, exchange: RawExchange, dialect: Dialect, suffix: str,
                    query: bytes, body: bytes, deadline: float) -> UpstreamResponse:
        headers = candidate_headers(exchange.request_headers, target.key, dialect)
        try:
            async with asyncio.timeout_at(deadline):
                response = await target.send(exchange.method, target.url_for(suffix, query), headers, body)
        except TimeoutError:
            raise _Fallback(CANDIDATE_TIMEOUT, f"no answer within {target.rules.timeout_s:g} s") from None
        except UpstreamTimeout:
            raise _Fallback(CANDIDATE_TIMEOUT, f"no answer within {target.rules.timeout_s:g} s") from None
        except UpstreamError as exc:
            raise _Fallback(CANDIDATE_ERROR, type(exc).__name__) from None
        if not 200 <= response.status < 300:
            response.close()
            raise _Fallback(CANDIDATE_ERROR, f"HTTP {response.status}")
        return response

    async def _answer_checked(self, target: CandidateTarget, contract: Contract, dialect: Dialect,
                              exchange: RawExchange, response: UpstreamResponse, send, watcher,
                              deadline: float) -> None:
        """Buffer the whole answer, check it, then send it in one piece."""
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout_at(deadline):
                async for chunk in response.chunks():
                    size += len(chunk)
                    if size > self._max_buffered_bytes:
                        raise _Fallback(CANDIDATE_ERROR, f"the answer is larger than {self._max_buffered_bytes} "
                                        "bytes ([server] max_body_bytes)")
                    chunks.append(chunk)
        except TimeoutError:
            deadline = target.rules.timeout_s
            raise _Fallback(CANDIDATE_TIMEOUT, f"the answer did not finish within {deadline:g} s") from None
        except BodyBrokeOff as exc:
            raise _Fallback(CANDIDATE_ERROR, f"the answer broke off: {type(exc).__name__}") from None
        raw_headers = response.raw_headers
        errors = answer_errors(contract, dialect, raw_headers, chunks)
        if errors:
            raise _Fallback(CONTRACT_INVALID, f"{len(errors)} contract error(s)")
        exchange.status = response.status
        exchange.response_headers = raw_headers
        headers = relayable_response_headers(raw_headers)
        headers.append((b"x-shadowtap-exchange-id", exchange.id.encode()))
        exchange.t_upstream_headers = perf_counter()
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        exchange.t_response_started = perf_counter()
        body = b"".join(chunks)
        exchange.response_chunks.append(body)
        exchange.chunk_times.append(perf_counter())
        watcher.cancel()  # once the response completes, receive() reports a disconnect
        await send({"type": "http.response.body", "body": body, "more_body": False})


class _SendTracker:
    """`send` that remembers whether the app was sent anything: after that, no fallback is possible."""

    def __init__(self, send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message) -> None:
        self.started = True
        await self._send(message)
