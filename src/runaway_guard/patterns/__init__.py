"""Amplifier patterns: the shapes that turn a small bug into a large bill, bounded.

Each has a module of its own and a thin entry on the guard or the contract:

- fan-out (`Guard.map`, `Guard.amap`): an item bound, a concurrency bound, ordered results;
- idempotent replay (``guard.contract(..., idempotency=...)``, `Contract.call_once`,
  `Guard.idempotent`): one paid call per key, across processes;
- singleflight (`Singleflight`): concurrent identical requests in a process share a call;
- polling (`Guard.poll`, `Guard.apoll`): a deadline, and so a count, per poll loop;
- reconnects (`Guard.reconnect`, `Guard.areconnect`): a counted number, backing off;
- jobs (`Guard.job`): a lease lock against overlap and a daily run count in the ledger;
- fallback chains (`Guard.fallback`): one money cap summed across providers.
"""

from runaway_guard.patterns._fallback import Fallback, FallOverIf
from runaway_guard.patterns._fanout import OnError, afan_out, fan_out
from runaway_guard.patterns._idempotency import (
    DEFAULT_TTL,
    DEFAULT_WAIT,
    Codec,
    Idempotency,
    JSONCodec,
    KeyFunction,
)
from runaway_guard.patterns._jobs import DEFAULT_JOB_LEASE, Job, JobRun, Overlap
from runaway_guard.patterns._poll import apoll, poll
from runaway_guard.patterns._reconnect import Reconnects, areconnect, reconnect
from runaway_guard.patterns._singleflight import Singleflight

__all__ = [
    "DEFAULT_JOB_LEASE",
    "DEFAULT_TTL",
    "DEFAULT_WAIT",
    "Codec",
    "FallOverIf",
    "Fallback",
    "Idempotency",
    "JSONCodec",
    "Job",
    "JobRun",
    "KeyFunction",
    "OnError",
    "Overlap",
    "Reconnects",
    "Singleflight",
    "afan_out",
    "apoll",
    "areconnect",
    "fan_out",
    "poll",
    "reconnect",
]
