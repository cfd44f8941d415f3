"""The guarded transport's decisions, shared by every shell (httpx2, httpx; sync, async).

For each request: its price (a route, the contract's token price, or free), the logical
call it belongs to (the SDK's retry-count header, an idempotency key), whether one more
attempt is allowed, and the worst case to hold. After the response: what to end the hold
with, at once (a flat price, an error status, a redirect) or once the body has streamed
past (token usage). The shells only move bytes and await.

Nothing here stores a header, a URL query or a body: the ledger sees the contract, the
run, amounts and an error label such as ``HTTPStatusError 429``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from runaway_guard._classify import RETRIABLE, Kind, classify
from runaway_guard._errors import ContractError, RetriesExhausted, RunawayGuardError
from runaway_guard._events import RetriesGaveUp
from runaway_guard._flow import CallFlow
from runaway_guard._holds import Hold
from runaway_guard._price import Call, Cost, PerCall, Price
from runaway_guard.http._routes import LLM_FREE_ROUTES, Route, match, parse_routes
from runaway_guard.http._sdk import for_sdks
from runaway_guard.llm._price import Prepared, TokenPrice
from runaway_guard.llm._request import Api, api_for_path
from runaway_guard.llm._usage import UsageMeter

if TYPE_CHECKING:
    from collections.abc import Mapping

    from runaway_guard._guard import Contract

__all__ = ["Attempt", "Guarding", "Metering", "Pricing", "UnpricedRequest"]

logger = logging.getLogger("runaway_guard")

RETRY_COUNT_HEADER: Final = b"x-stainless-retry-count"
"""Sent by the OpenAI and Anthropic SDKs: 0 on a call's first attempt, n on its n-th retry."""
IDEMPOTENCY_HEADERS: Final = (b"idempotency-key", b"x-idempotency-key")
_MAX_CALLS: Final = 1024
"""Logical calls remembered between attempts (oldest forgotten first)."""
_PRICING_CACHE: Final = 1024


class UnpricedRequest(ContractError):
    """A request matches no route and the contract's price cannot price it."""


class Pricing(NamedTuple):
    """How one request is priced: free (no hold), per token, or by a `Price`."""

    price: Price | None
    api: Api | None = None
    route: Route | None = None

    @property
    def free(self) -> bool:
        return self.price is None

    @property
    def tokens(self) -> bool:
        return self.api is not None


_FREE: Final = Pricing(None)
_NO_CALL: Final = Call("")  # token-priced attempts price the request body, not a Call


class CallState:
    """A logical call across its attempts: one `CallFlow`, and why it may not go on."""

    __slots__ = ("flow", "stop")

    def __init__(self, flow: CallFlow) -> None:
        self.flow = flow
        self.stop: RunawayGuardError | None = None


class Attempt:
    """One HTTP attempt: what it was priced at, the request to send, and its hold."""

    __slots__ = ("call", "hold", "key", "prepared", "pricing", "request", "state")

    def __init__(
        self,
        state: CallState,
        key: tuple[object, ...],
        pricing: Pricing,
        request: Any,
        prepared: Prepared | None,
        call: Call,
    ) -> None:
        self.state = state
        self.key = key
        self.pricing = pricing
        self.request = request
        self.prepared = prepared
        self.call = call
        self.hold: Hold | None = None

    @property
    def flow(self) -> CallFlow:
        return self.state.flow


class Guarding:
    """The decisions of one guarded transport, bound to a contract.

    Args:
        contract: the contract every attempt is held and settled under.
        routes: ``{route: price}``; see `runaway_guard.http.client`.
        library: the ``httpx2`` or ``httpx`` module (its error and request classes).
    """

    def __init__(
        self, contract: Contract, routes: Mapping[str, object] | None, library: Any
    ) -> None:
        self.contract = contract
        self.routes = parse_routes(routes)
        self.library = library
        self._calls: OrderedDict[tuple[object, ...], CallState] = OrderedDict()
        self._lock = threading.Lock()
        self._pricing: dict[tuple[str, str, int | None, str], Pricing] = {}
        self._told = False  # said once that chat streams without usage settle at estimate

    # -- before sending ----------------------------------------------------------------------
    def pricing(self, request: Any) -> Pricing:
        """How `request` is priced. Raises `UnpricedRequest` (for the SDKs) if it cannot be."""
        url = request.url
        key = (request.method, url.host, url.port, url.path)
        found = self._pricing.get(key)
        if found is None:
            netloc = f"{url.host}:{url.port}" if url.port else url.host
            try:
                found = self._price_of(request.method, url.host, netloc, url.path)
            except RunawayGuardError as exc:
                raise for_sdks(exc) from None
            if len(self._pricing) >= _PRICING_CACHE:
                self._pricing.clear()
            self._pricing[key] = found
        return found

    def _price_of(self, method: str, host: str, netloc: str, path: str) -> Pricing:
        name = self.contract.name
        route = match(self.routes, method, host, netloc, path)
        price = self.contract.spec.price if route is None else route.price
        if price is None:
            return _FREE
        if isinstance(price, TokenPrice):
            api = api_for_path(path) if method == "POST" else None
            if api is not None:
                return Pricing(price, api, route)
            if route is None and match(LLM_FREE_ROUTES, method, host, netloc, path) is not None:
                return _FREE
            raise UnpricedRequest(
                f"contract {name!r}: {method} {netloc}{path} is not an LLM API call the token "
                f"price can read (chat/completions, responses, embeddings, messages); declare "
                f"its price in routes={{'{method} {netloc}{path}': '$0.05'}} (None if it is "
                "free)"
            )
        return Pricing(price, None, route)

    def begin(self, request: Any, pricing: Pricing, body: bytes | None, caller: int) -> Attempt:
        """Find the request's logical call, check the retry bounds, and price the attempt.

        Raises (as errors the SDKs pass through): `RetriesExhausted` past the contract's
        retry bounds, and the `ContractError` of a request that cannot be priced. Nothing
        has been sent, and no hold placed.
        """
        try:
            return self._begin(request, pricing, body, caller)
        except RunawayGuardError as exc:
            raise for_sdks(exc) from exc.__cause__

    def _begin(self, request: Any, pricing: Pricing, body: bytes | None, caller: int) -> Attempt:
        contract = self.contract
        retries, key = _identify(request, body, caller)
        state = self._state(key, retries)
        flow = state.flow
        if state.stop is not None:
            raise state.stop
        attempt_number = flow.attempt + 1
        policy = contract.spec.retry
        now = contract.guard.clock.now()
        if attempt_number > policy.attempts:
            raise self._stopped(
                state,
                "attempts",
                f"the contract allows {policy.attempts} attempt(s) per call and the client "
                f"asked for attempt {attempt_number}; refused before sending (raise "
                "retry=rg.Retry(attempts=...) or lower the client's max_retries)",
            )
        if (
            attempt_number > 1
            and policy.max_elapsed is not None
            and now - flow.started > policy.max_elapsed
        ):
            raise self._stopped(
                state,
                "elapsed",
                f"attempt {attempt_number} would start {now - flow.started:g}s after the "
                f"first, past max_elapsed={policy.max_elapsed:g}s; refused before sending",
            )
        call = _NO_CALL
        prepared = None
        if pricing.tokens:
            assert isinstance(pricing.price, TokenPrice)
            assert pricing.api is not None
            prepared, request = self._prepare(request, pricing.price, pricing.api, body, now)
            estimate = prepared.cost
        else:
            call = Call(contract.name, (request,), {}, attempt_number)
            if pricing.price is contract.spec.price:
                estimate = contract.estimate(call)
            else:
                assert pricing.price is not None
                what = f"estimate of {contract.name!r}"
                estimate = Cost.of(pricing.price.estimate(call), what=what)
        flow.fixed_estimate = estimate
        return Attempt(state, key, pricing, request, prepared, call)

    def _prepare(
        self, request: Any, price: TokenPrice, api: Api, body: bytes | None, now: float
    ) -> tuple[Prepared, Any]:
        name = self.contract.name
        try:
            data = _json(body or b"")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UnpricedRequest(
                f"contract {name!r}: the body of {request.method} {request.url.host}"
                f"{request.url.path} is not a JSON object, so its tokens cannot be bounded"
            )
        url = f"{request.url.scheme}://{request.url.host}{request.url.path}"
        when = datetime.fromtimestamp(now, UTC)
        prepared = price.prepare(api, data, contract=name, raw=body, url=url, when=when)
        shape = prepared.shape
        if api is Api.CHAT and shape.stream and not shape.include_usage and not self._told:
            self._told = True
            logger.info(
                "runaway-guard: %r streams chat completions without a final usage chunk, so "
                "they settle at their estimate; pass stream_options={'include_usage': True} "
                "to settle at their cost",
                name,
            )
        if prepared.inject:
            # Make the provider enforce the output bound the guard holds for.
            content = json.dumps({**data, **prepared.inject}, separators=(",", ":")).encode()
            headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
            request = self.library.Request(
                request.method,
                request.url,
                headers=headers,
                content=content,
                extensions=request.extensions,
            )
        return prepared, request

    def _state(self, key: tuple[object, ...], retries: int | None) -> CallState:
        with self._lock:
            state = self._calls.get(key)
            continuing = state is not None and (
                (retries is not None and retries > 0)
                or (retries is None and key[0] == "idempotency")
            )
            if not continuing or state is None:
                state = CallState(CallFlow(self.contract, (), {}))
                self._calls[key] = state
                if len(self._calls) > _MAX_CALLS:
                    self._calls.popitem(last=False)
            else:
                self._calls.move_to_end(key)
            if retries is not None and retries > state.flow.attempt:
                # The call's earlier attempts happened before this transport saw them.
                state.flow.attempt = retries
            return state

    def _stopped(
        self, state: CallState, reason: str, detail: str, *, gave_up: bool = True
    ) -> RetriesExhausted:
        """End the call: any further attempt of it is refused with the error returned."""
        flow = state.flow
        guard = self.contract.guard
        if gave_up:
            guard.emit(RetriesGaveUp(guard.clock.now(), self.contract.name, flow.attempt, reason))
        error = RetriesExhausted(
            f"contract {self.contract.name!r}: {detail}", attempts=flow.records, reason=reason
        )
        error.__cause__ = getattr(flow, "_last_error", None)
        state.stop = error
        return error

    def refused(self, attempt: Attempt, exc: RunawayGuardError) -> RunawayGuardError:
        """A hold was refused: the call ends here, and the error goes to the caller as is."""
        attempt.state.stop = exc
        return for_sdks(exc)

    # -- after sending -----------------------------------------------------------------------
    def failed(self, attempt: Attempt, exc: BaseException) -> BaseException:
        """The transport raised: end the hold as the contract's `Charge` says.

        Returns what to raise: `exc` itself, or `RetriesExhausted` (chained to it) when the
        contract's retry bounds ran out.
        """
        assert attempt.hold is not None
        try:
            attempt.flow.failed(attempt.hold, exc)
        except RetriesExhausted as stop:
            attempt.state.stop = stop
            return for_sdks(stop)
        except BaseException as error:
            if error is not exc:
                raise
            kind = classify(exc, now=self.now()).kind
            if kind not in RETRIABLE:  # a bug, an interrupt: it goes up as it is
                self._stopped(
                    attempt.state,
                    "not retriable",
                    f"the guard does not retry {kind} ({type(exc).__name__})",
                    gave_up=False,
                )
                return exc
            # The SDK would sleep and retry a connection error; the guard would refuse
            # that attempt. Say so now, without the sleep.
            policy = self.contract.spec.retry
            why = (
                f"allows {policy.attempts} attempt per call; set retry=rg.Retry(attempts=N) "
                "to retry"
                if policy.attempts == 1
                else "declines to retry it (its retry_if)"
            )
            refusal = self._stopped(
                attempt.state, "attempts", f"{kind} ({type(exc).__name__}): the contract {why}"
            )
            refusal.__cause__ = exc
            return for_sdks(refusal)
        return exc

    def received(self, attempt: Attempt, response: Any) -> Metering | None:
        """Headers arrived: settle, release or fail now, or return the `Metering` that
        will settle from the body's usage."""
        hold = attempt.hold
        assert hold is not None
        status = response.status_code
        if 200 <= status < 300:
            if attempt.prepared is not None:
                consumed = response.is_stream_consumed
                content_type, encoding = _content_headers(response.headers)
                meter = UsageMeter(
                    attempt.prepared.api,
                    sse=b"text/event-stream" in content_type,
                    # A body read already (an in-process transport) is decoded already.
                    content_encoding="" if consumed else encoding.decode("latin-1"),
                )
                metering = Metering(self, attempt, meter)
                if not consumed:
                    return metering
                meter.feed(response.content)
                metering.finish()
                return None
            hold.settle(self._actual(attempt, response))
            self._forget(attempt)
        elif status < 400:
            if status in (307, 308) or attempt.request.method in ("GET", "HEAD"):
                # Sent on unchanged to another URL: this one did not do the work.
                hold.release(f"HTTP {status}")
            else:
                # 301/302/303 after a POST usually answers a request that was processed
                # ("see the result over there"): it may have been billed.
                hold.settle(None)
            self._forget(attempt)
        else:
            self._status_failed(attempt, response)
        return None

    def _actual(self, attempt: Attempt, response: Any) -> Cost | None:
        """What a non-token price charges for a response (None: its estimate)."""
        contract = self.contract
        price = attempt.pricing.price
        if price is contract.spec.price:
            return None if contract.flat else contract.actual(attempt.call, response)
        if price is None or isinstance(price, PerCall):
            return None
        try:
            value = price.actual(attempt.call, response)
            return (
                None if value is None else Cost.of(value, what=f"actual cost of {contract.name!r}")
            )
        except Exception:
            logger.warning(
                "runaway-guard: a route price of %r could not read the actual cost; charging "
                "the estimate",
                contract.name,
                exc_info=True,
            )
            return None

    def _status_failed(self, attempt: Attempt, response: Any) -> None:
        request = attempt.request
        error = self.library.HTTPStatusError(
            f"HTTP {response.status_code} from {request.url.host}{request.url.path}",
            request=request,
            response=response,
        )
        assert attempt.hold is not None
        try:
            attempt.flow.failed(attempt.hold, error)
        except RetriesExhausted as stop:
            attempt.state.stop = stop
        except BaseException as other:
            if other is not error:
                raise
            kind = classify(error, now=self.contract.guard.clock.now()).kind
            detail = (
                f"HTTP {response.status_code} is a client error: retrying repeats it"
                if kind is Kind.CLIENT_ERROR
                else f"the contract does not retry {kind} (HTTP {response.status_code}); set "
                "retry=rg.Retry(attempts=...) to allow retries"
            )
            self._stopped(attempt.state, "not retriable", detail, gave_up=False)
        else:
            return
        # The guard will refuse the next attempt: tell the SDK not to sleep and try.
        response.headers["x-should-retry"] = "false"

    def _forget(self, attempt: Attempt) -> None:
        with self._lock:
            if self._calls.get(attempt.key) is attempt.state:
                del self._calls[attempt.key]

    def now(self) -> float:
        return self.contract.guard.clock.now()


class Metering:
    """Settles a token-priced attempt from the usage in its body, exactly once.

    At the end of the body, when the body is closed early, or when reading it fails:
    at the cost of the usage the response reported, else at the estimate.
    """

    __slots__ = ("_attempt", "_core", "_lease", "_meter", "_next_renew", "ended")

    def __init__(self, core: Guarding, attempt: Attempt, meter: UsageMeter) -> None:
        self._core = core
        self._attempt = attempt
        self._meter = meter
        self._lease = core.contract.spec.hold_lease
        # Renew well before the lease ends, so a slow stream is never reaped mid-way.
        self._next_renew = core.now() + self._lease / 3
        self.ended = False

    @property
    def flow(self) -> CallFlow:
        return self._attempt.flow

    def feed(self, chunk: bytes) -> bool:
        """Read a chunk of the body; True when the hold's lease should be renewed now."""
        self._meter.feed(chunk)
        return self._core.now() >= self._next_renew

    def renew(self) -> None:
        hold = self._attempt.hold
        assert hold is not None
        self._next_renew = self._core.now() + self._lease / 3
        hold.renew()

    def finish(self, error: BaseException | None = None) -> None:
        """End the hold: at the usage's cost, else the estimate (a failure if `error`)."""
        if self.ended:
            return
        self.ended = True
        attempt = self._attempt
        hold = attempt.hold
        price = attempt.pricing.price
        assert hold is not None
        assert attempt.prepared is not None
        assert isinstance(price, TokenPrice)
        cost: Cost | None = None
        try:
            observed = self._meter.finish()
            if observed is not None:
                cost = price.cost_of(attempt.prepared, observed)
        except Exception:  # an odd usage must not lose the settle: charge the estimate
            logger.warning(
                "runaway-guard could not price the usage of a %r response; charging its estimate",
                self._core.contract.name,
                exc_info=True,
            )
        if cost is not None:
            hold.settle(cost)
        elif error is not None:
            hold.fail(error)
        else:
            hold.settle(None)
        self._core._forget(attempt)


def _identify(
    request: Any, body: bytes | None, caller: int
) -> tuple[int | None, tuple[object, ...]]:
    """The SDK's retry count (None if not sent) and what ties one call's attempts together."""
    retries: int | None = None
    idempotency = b""
    for name, value in request.headers.raw:  # one pass: each header lookup scans the list
        lowered = name.lower()
        if lowered == RETRY_COUNT_HEADER:
            try:
                retries = int(value)
            except ValueError:
                retries = None
            if retries is not None and retries < 0:
                retries = None
        elif lowered in IDEMPOTENCY_HEADERS and value:
            idempotency = value
    if idempotency:
        return retries, ("idempotency", idempotency)
    # An SDK retries inside the call, before it returns: the next attempt comes from the
    # same thread (or task) to the same URL, with the same body.
    url = request.url
    where = (request.method, url.host, url.port, url.path, len(body or b""))
    return retries, ("request", threading.get_ident(), caller, where)


def _json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")  # what APIs send; skips json's own encoding sniffing
    except UnicodeDecodeError:
        return json.loads(body)
    return json.loads(text)


def _content_headers(headers: Any) -> tuple[bytes, bytes]:
    """The Content-Type and Content-Encoding of a response, in one pass."""
    content_type = encoding = b""
    for name, value in headers.raw:
        lowered = name.lower()
        if lowered == b"content-type":
            content_type = value.lower()
        elif lowered == b"content-encoding":
            encoding = value
    return content_type, encoding
