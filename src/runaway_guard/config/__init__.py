"""The configuration file: caps an operator can change without a code change.

```python
import runaway_guard as rg

guard = rg.load_config().guard()        # runaway-guard.toml, found from the cwd up
enrich = guard.contract("record-enrich")  # price, caps and provider cap from the file
```

See ``docs/config.md`` for every setting, the environment variables that override them,
and how a contract's options in the file and in code combine.
"""

from runaway_guard.config._alerts import AlertSettings, NotifierSpec
from runaway_guard.config._config import (
    CONFIG_ENV,
    CONFIG_NAME,
    ENV_VARS,
    Config,
    ContractConfig,
    find_config,
    load_config,
)
from runaway_guard.config._values import CAP_OPTIONS, CONTRACT_OPTIONS

__all__ = [
    "CAP_OPTIONS",
    "CONFIG_ENV",
    "CONFIG_NAME",
    "CONTRACT_OPTIONS",
    "ENV_VARS",
    "AlertSettings",
    "Config",
    "ContractConfig",
    "NotifierSpec",
    "find_config",
    "load_config",
]
