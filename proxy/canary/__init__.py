"""Canary serving on the live path: which requests a candidate answers, and the fallback to the primary.

- `assignment`: the deterministic per-request decision (eligibility, then a hash against the share).
- `state`: the background poller that reads each candidate's share from the store.
- `contracts`: the light output-contract validator for contract-bound requests.
- `candidate_call`: calling a candidate at its `api_base` in the request's own dialect.
- `serving`: the hook the forwarder calls; it either answers from the candidate or says why not.

The live process never imports litellm or the evaluators for this: a candidate that serves live
speaks the request's dialect at its `api_base`.
"""
