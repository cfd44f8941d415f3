"""The offline demo: a fake metered API on 127.0.0.1 and replays of real incidents.

Three scenarios, each run naive and guarded on a virtual clock, with a SQLite ledger in
a folder the caller gives: the overnight retry loop (`run_overnight`), the campaign
whose prompt list doubles on every retry (`run_campaign`), and the agent stuck in a
reconnaissance loop (`run_agent`). `SCENARIOS` names them for ``runaway-guard demo``.
"""

from runaway_guard.demo._agent import AgentResult, run_agent
from runaway_guard.demo._campaign import CampaignResult, run_campaign
from runaway_guard.demo._overnight import NightResult, run_overnight
from runaway_guard.demo._render import render_agent, render_campaign, render_night
from runaway_guard.demo._scenarios import SCENARIOS, Scenario

__all__ = [
    "SCENARIOS",
    "AgentResult",
    "CampaignResult",
    "NightResult",
    "Scenario",
    "render_agent",
    "render_campaign",
    "render_night",
    "run_agent",
    "run_campaign",
    "run_overnight",
]
