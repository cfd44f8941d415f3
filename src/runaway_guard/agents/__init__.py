"""The agent guard: per-tool and per-ticket budgets, loop signatures, refusals, a context
budget and a halt vote, between a model and its tools, where the model cannot argue.

```python
import runaway_guard as rg
from runaway_guard import agents

guard = rg.Guard("memory://", currency="EUR")
toolbox = agents.Toolbox(guard)

@toolbox.tool(price="€0.11", max_per_run="€0.55", provider_cap="WHOIS vendor, €20/month")
def whois_lookup(asn: str) -> str: ...

with toolbox.ticket("T-4821", budget="€2.00"):
    whois_lookup("AS4242420001")
```

Framework adapters live in their own modules: `runaway_guard.agents.openai_agents` (the
OpenAI Agents SDK) and `runaway_guard.agents.langchain` (LangChain tools); both need
``pip install 'runaway-guard[agents]'``.
"""

from runaway_guard.agents._context import ContextBudget, Summariser, estimate_tokens
from runaway_guard.agents._errors import (
    AgentHalted,
    ContextBudgetExceeded,
    MoneyWallReached,
    RefusalLimitReached,
)
from runaway_guard.agents._refusal import Refusal
from runaway_guard.agents._signature import LoopRule, NormaliseHook, Signature, normalise, signature
from runaway_guard.agents._ticket import Ticket, TicketScope
from runaway_guard.agents._toolbox import Tool, Toolbox
from runaway_guard.agents._vote import Classifier, HaltVote, ModelDone, Verdict

__all__ = [
    "AgentHalted",
    "Classifier",
    "ContextBudget",
    "ContextBudgetExceeded",
    "HaltVote",
    "LoopRule",
    "ModelDone",
    "MoneyWallReached",
    "NormaliseHook",
    "Refusal",
    "RefusalLimitReached",
    "Signature",
    "Summariser",
    "Ticket",
    "TicketScope",
    "Tool",
    "Toolbox",
    "Verdict",
    "estimate_tokens",
    "normalise",
    "signature",
]
