"""Typed configuration: one TOML file, loaded and validated once at start-up.

Every section is a frozen dataclass. Unknown keys, wrong types and bad values raise
`ConfigError` with the key, the value and what would be accepted; the CLI turns that into exit 2.
Secrets are never written in the file, only the names of environment variables that hold them.
"""

from proxy.config.admin import AdminConfig
from proxy.config.evaluation import (
    ContextsConfig, ContractRule, ContractsConfig, EvalConfig, FreshnessConfig, FreshnessPolicy, JudgeConfig,
)
from proxy.config.gate import GateConfig
from proxy.config.live import PrimaryConfig, RedactionConfig, ServerConfig, StoreConfig
from proxy.config.loader import ShadowtapConfig, config_from_dict, load_config
from proxy.config.outcomes import OutcomesConfig
from proxy.config.shadow import CandidateConfig, ShadowConfig

__all__ = [
    "AdminConfig", "CandidateConfig", "ContextsConfig", "ContractRule", "ContractsConfig", "EvalConfig", "FreshnessConfig",
    "FreshnessPolicy", "GateConfig", "JudgeConfig", "OutcomesConfig", "PrimaryConfig", "RedactionConfig", "ServerConfig", "ShadowConfig",
    "ShadowtapConfig", "StoreConfig", "config_from_dict", "load_config",
]
