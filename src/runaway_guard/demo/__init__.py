"""The offline demo: a fake metered API on 127.0.0.1 and replays of real incidents."""

from runaway_guard.demo._overnight import NightResult, run_overnight
from runaway_guard.demo._render import render_night

__all__ = ["NightResult", "render_night", "run_overnight"]
