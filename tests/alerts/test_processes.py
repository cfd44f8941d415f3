"""Eight processes share one budget: each threshold reaches the webhook exactly once."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import runaway_guard as rg
from tests.alerts import _workers
from tests.alerts.receiver import Receiver

pytestmark = pytest.mark.slow


def test_eight_processes_past_fifty_and_ninety_percent_alert_once_each(
    tmp_path: Path, receiver: Receiver
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    cap = "$10.00"  # 1,000 calls at $0.01; 8 x 120 = 960 calls reach 96%
    rg.Guard(url).close()  # create the schema once, up front
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=8, mp_context=context) as pool:
        futures = [
            pool.submit(_workers.push_day_budget, url, receiver.url, 120, cap) for _ in range(8)
        ]
        made = [f.result(timeout=300) for f in futures]
    assert [120] * 8 == made
    thresholds = Counter(
        (body["kind"], body["fields"]["budget"], body["fields"]["threshold"])
        for body in receiver.bodies()
    )
    day = "contract:fleet-enrich|money|day:2026-11-22"
    assert {("threshold", day, "50"): 1, ("threshold", day, "90"): 1} == dict(thresholds)
