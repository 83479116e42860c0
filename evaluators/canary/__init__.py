"""The canary guard loop: over a sliding window of canaried live traffic, compare the candidate with
the primary on the same requests and roll the canary back when a guard turns red.

- window: what the store holds for one candidate's window (its answers, the fallbacks, the
  primary's twin answers, feedback);
- results: a guard's verdict (GuardResult);
- rate_guards, quality_guards, feedback_guards: the guards, each firing only from min_samples;
- evaluate: every guard for one candidate now (`shadowtap canary promote` asks it too);
- loop, webhook, command: `shadowtap canary guard`, which `shadowtap serve` starts as a child.

It runs outside the live process: when it stops, canaries keep their share and nothing else changes;
the live path never waits for it.
"""
