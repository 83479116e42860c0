"""Typed configuration: one TOML file, loaded and validated once at start-up.

Every section is a frozen dataclass. Unknown keys, wrong types and bad values raise
`ConfigError` with the key, the value and what would be accepted; the CLI turns that into exit 2.
Secrets are never written in the file, only the names of environment variables that hold them.
"""

from shadowtap.core.config.admin import AdminConfig
from shadowtap.core.config.canary import CanaryConfig, CandidateCanaryConfig
from shadowtap.core.config.evaluation import (
    ContextsConfig,
    ContractRule,
    ContractsConfig,
    EvalConfig,
    FreshnessConfig,
    FreshnessPolicy,
    JudgeConfig,
)
from shadowtap.core.config.gate import GateConfig
from shadowtap.core.config.live import PrimaryConfig, RedactionConfig, ServerConfig
from shadowtap.core.config.loader import ShadowtapConfig, config_from_dict, load_config
from shadowtap.core.config.outcomes import OutcomesConfig
from shadowtap.core.config.shadow import CandidateConfig, ShadowConfig
from shadowtap.core.config.store import ExportConfig, OtlpExportConfig, StoreConfig

__all__ = [
    "AdminConfig", "CanaryConfig", "CandidateCanaryConfig", "CandidateConfig",
    "ContextsConfig", "ContractRule", "ContractsConfig", "EvalConfig",
    "ExportConfig", "OtlpExportConfig",
    "FreshnessConfig", "FreshnessPolicy", "GateConfig", "JudgeConfig", "OutcomesConfig", "PrimaryConfig",
    "RedactionConfig", "ServerConfig", "ShadowConfig",
    "ShadowtapConfig", "StoreConfig", "config_from_dict", "load_config",
]
