"""The rules: stable ids, short names, and the one-line fix each finding carries."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RULES", "Rule", "rule_named"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One lint rule.

    Attributes:
        id: the stable id (``RG001``); it never changes meaning once released.
        name: a short kebab-case name, accepted wherever an id is.
        summary: what the rule catches, in one line.
        fix: the default fix, in one line (findings may say something more precise).
    """

    id: str
    name: str
    summary: str
    fix: str

    @property
    def docs(self) -> str:
        """The rule's page, relative to the docs folder."""
        return f"lint/{self.id}.md"


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "RG001",
            "unbounded-loop",
            "a while loop around a paid call has no integer bound",
            "loop `for attempt in range(MAX_CALLS)`, or count the calls and stop at a named limit",
        ),
        Rule(
            "RG002",
            "swallowed-exception",
            "an exception is swallowed inside an unbounded loop around a paid call",
            "re-raise, or count the failures and stop at a named limit",
        ),
        Rule(
            "RG003",
            "unbounded-fan-out",
            "paid calls fanned out with no concurrency limit and no chunking",
            "take an asyncio.Semaphore(N) inside each task, or gather in chunks of N",
        ),
        Rule(
            "RG004",
            "retry-without-stop",
            "a retry decorator or retrying loop around a paid call has no stop",
            "add stop=stop_after_attempt(N) (tenacity) or max_tries=N (backoff)",
        ),
        Rule(
            "RG005",
            "retry-every-exception",
            "a retry around a paid call retries every exception, 4xx included",
            "retry only transient errors (429, 5xx, timeouts); let 4xx fail at once",
        ),
        Rule(
            "RG006",
            "sdk-retries-multiplied",
            "a client that retries by itself is called inside another retry",
            "build the client with max_retries=0, or drop the outer retry",
        ),
        Rule(
            "RG007",
            "poll-without-deadline",
            "a polling loop around a paid API has no deadline",
            "stop at a deadline (time.monotonic() >= deadline) or loop `for _ in range(MAX_POLLS)`",
        ),
        Rule(
            "RG008",
            "unbounded-self-rescheduling",
            "a task that makes paid calls reschedules itself with no bound",
            "state the bound: max_retries=N on the task, or a depth check before re-enqueueing",
        ),
        Rule(
            "RG009",
            "no-output-token-bound",
            "an LLM call has no bound on its output tokens",
            "pass max_tokens (or max_completion_tokens / max_output_tokens) with a named limit",
        ),
        Rule(
            "RG010",
            "no-cost-contract",
            "a paid call site has no cost contract",
            "guard it with a runaway-guard contract, or write a `# cost contract:` comment "
            "above it (unit cost, max calls, max $ per run, provider cap)",
        ),
        Rule(
            "RG011",
            "suppression-without-reason",
            "a `# runaway-guard: ignore[...]` comment has no reason or names no known rule",
            "name the rules and say why: `# runaway-guard: ignore[RG003] <reason>`",
        ),
    )
}


def rule_named(text: str) -> Rule | None:
    """The rule with this id or name (case-insensitive), or None."""
    key = text.strip()
    rule = RULES.get(key.upper())
    if rule is not None:
        return rule
    lowered = key.lower()
    for candidate in RULES.values():
        if candidate.name == lowered:
            return candidate
    return None
