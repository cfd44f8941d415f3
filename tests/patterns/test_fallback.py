"""Fallback chains: providers in order, one money cap summed across all of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import runaway_guard as rg
from tests.helpers import contract
from tests.patterns._fakes import Provider, ProviderError, charged


def provider_fn(
    guard: rg.Guard, name: str, provider: Provider, **options: Any
) -> Callable[[str], object]:
    options.setdefault("price", "$0.04")
    options.setdefault("max_per_run", "$1.00")
    paid = contract(guard, name, **options)
    return paid(provider)


def always(status: int) -> Callable[[int, object], BaseException]:
    return lambda _, __: ProviderError(status)


def test_the_first_provider_that_answers_wins(mem: rg.Guard) -> None:
    primary, secondary = Provider(), Provider()
    chain = mem.fallback(
        "summarize",
        [provider_fn(mem, "openai", primary), provider_fn(mem, "anthropic", secondary)],
        max_per_run="$0.10",
    )
    assert "result:hi" == chain.call("hi")
    assert (1, 0, rg.parse_money("$0.04")) == (primary.calls, secondary.calls, charged(mem))


def test_an_upstream_failure_falls_over_to_the_next_provider(mem: rg.Guard) -> None:
    primary, secondary = Provider(fail=always(503)), Provider()
    chain = mem.fallback(
        "summarize",
        [provider_fn(mem, "openai", primary), provider_fn(mem, "anthropic", secondary)],
        max_per_run="$0.10",
    )
    assert "result:hi" == chain.call("hi")
    # The 5xx may have been billed: it is charged at its estimate, and counts in the cap.
    assert rg.parse_money("$0.08") == charged(mem)
    assert rg.parse_money("$0.08") == chain.spent()


def test_every_provider_failing_is_one_loud_error(mem: rg.Guard) -> None:
    chain = mem.fallback(
        "summarize",
        [
            provider_fn(
                mem, "openai", Provider(fail=always(500)), retry=rg.Retry(2, jitter="none")
            ),
            provider_fn(mem, "anthropic", Provider(fail=always(529))),
        ],
        max_per_run="$1.00",
    )
    with pytest.raises(rg.FallbackExhausted) as info:
        chain.call("hi")
    errors = info.value.errors
    assert ["openai", "anthropic"] == [name for name, _ in errors]
    assert isinstance(errors[0][1], rg.RetriesExhausted)
    assert errors[1][1] is info.value.__cause__
    assert "all 2 provider(s) failed (openai: RetriesExhausted; anthropic: ProviderError)" in str(
        info.value
    )


def test_a_rejected_request_is_not_sent_to_the_next_provider(mem: rg.Guard) -> None:
    secondary = Provider()
    chain = mem.fallback(
        "summarize",
        [provider_fn(mem, "openai", Provider(fail=always(400))), provider_fn(mem, "b", secondary)],
        max_per_run="$0.10",
    )
    with pytest.raises(ProviderError):
        chain.call("hi")
    assert 0 == secondary.calls


def test_the_cap_is_summed_across_providers(mem: rg.Guard) -> None:
    """Each provider allows $1.00 per run; together they may spend $0.10."""
    third = Provider()
    chain = mem.fallback(
        "summarize",
        [
            provider_fn(mem, "a", Provider(fail=always(502)), price="$0.06"),
            provider_fn(mem, "b", Provider(), price="$0.05"),
            provider_fn(mem, "c", third, price="$0.01"),
        ],
        max_per_run="$0.10",
    )
    with mem.run("ticket-1"), pytest.raises(rg.BudgetExceeded) as info:
        chain.call("hi")
    assert "run 'ticket-1/fallback-summarize'" in info.value.budget
    assert 0 == third.calls  # the chain's cap refuses every provider alike
    assert rg.parse_money("$0.06") == charged(mem)


def test_the_cap_holds_across_calls_in_one_run(mem: rg.Guard) -> None:
    chain = mem.fallback(
        "summarize", [provider_fn(mem, "a", Provider(), price="$0.04")], max_per_run="$0.10"
    )
    with mem.run("ticket-2"):
        chain.call("1")
        chain.call("2")
        with pytest.raises(rg.BudgetExceeded):
            chain.call("3")
        assert rg.parse_money("$0.08") == chain.spent()
    with mem.run("ticket-3"):
        chain.call("4")  # a new run, a new allowance


def test_a_providers_own_budget_falls_over(mem: rg.Guard) -> None:
    primary, secondary = Provider(), Provider()
    chain = mem.fallback(
        "summarize",
        [
            provider_fn(mem, "a", primary, max_calls_per_run=1, max_per_run=None),
            provider_fn(mem, "b", secondary),
        ],
        max_per_run="$1.00",
    )
    with mem.run("ticket-4"):
        chain.call("1")
        chain.call("2")
    assert (1, 1) == (primary.calls, secondary.calls)


def test_outside_a_run_the_chain_shares_the_implicit_runs_caps(mem: rg.Guard) -> None:
    primary, secondary = Provider(), Provider()
    direct = provider_fn(mem, "a", primary, max_calls_per_run=2, max_per_run=None)
    chain = mem.fallback("summarize", [direct, provider_fn(mem, "b", secondary)], max_per_run="$1")
    direct("outside the chain")
    chain.call("1")
    chain.call("2")  # "a" has used its 2 calls in this process's implicit run
    assert (2, 1) == (primary.calls, secondary.calls)


def test_an_open_breaker_or_a_killed_provider_falls_over(mem: rg.Guard) -> None:
    secondary = Provider()
    primary = provider_fn(mem, "a", Provider(fail=always(500)), breaker=rg.Breaker(failures=1))
    chain = mem.fallback("summarize", [primary, provider_fn(mem, "b", secondary)], max_per_run="$1")
    chain.call("1")  # the 500 opens a's breaker
    chain.call("2")  # CircuitOpen: straight to b
    mem.kill("contract:b", "provider b incident")
    with pytest.raises(rg.FallbackExhausted):
        chain.call("3")
    assert 2 == secondary.calls


def test_a_global_kill_switch_stops_the_chain(mem: rg.Guard) -> None:
    secondary = Provider()
    chain = mem.fallback(
        "summarize",
        [provider_fn(mem, "a", Provider()), provider_fn(mem, "b", secondary)],
        max_per_run="$1",
    )
    mem.kill("global", "stop everything")
    with pytest.raises(rg.KillSwitchEngaged):
        chain.call("1")
    assert 0 == secondary.calls


def test_fall_over_if_overrides_the_rule(mem: rg.Guard) -> None:
    secondary = Provider()
    chain = mem.fallback(
        "moderated",
        [provider_fn(mem, "a", Provider(fail=always(400))), provider_fn(mem, "b", secondary)],
        max_per_run="$1",
        fall_over_if=lambda exc: getattr(exc, "status_code", None) == 400 or None,
    )
    assert "result:x" == chain.call("x")


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ([], "one or more providers"),
        ([lambda p: p], "is not guarded"),
    ],
)
def test_bad_chains_are_refused(
    mem: rg.Guard, providers: list[Callable[[str], object]], message: str
) -> None:
    with pytest.raises(rg.ContractError, match=message):
        mem.fallback("bad", providers, max_per_run="$1")


def test_a_chain_of_mixed_kinds_is_refused(mem: rg.Guard) -> None:
    paid = contract(mem, "a")

    @paid
    async def later(prompt: str) -> str:
        return prompt

    mixed: list[Callable[[str], object]] = [later, paid(str)]
    with pytest.raises(rg.ContractError, match="mixes sync and async"):
        mem.fallback("bad", mixed, max_per_run="$1")


def test_a_provider_of_another_guard_is_refused(mem: rg.Guard, clock: Any) -> None:
    with rg.Guard("memory://", clock=clock) as other:
        foreign = provider_fn(other, "x", Provider())
        with pytest.raises(rg.ContractError, match="another guard"):
            mem.fallback("bad", [foreign], max_per_run="$1")


async def test_acall_falls_over_between_async_providers(mem: rg.Guard) -> None:
    @contract(mem, "a", price="$0.02")
    async def first(prompt: str) -> str:
        raise TimeoutError("read timed out")

    @contract(mem, "b", price="$0.03")
    async def second(prompt: str) -> str:
        return prompt.upper()

    chain = mem.fallback("async", [first, second], max_per_run="$0.10")
    assert "HI" == await chain.acall("hi")
    assert rg.parse_money("$0.05") == charged(mem)
    with pytest.raises(rg.ContractError, match="use acall"):
        _ = chain.call("hi")
