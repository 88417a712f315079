"""The CareCircle wire contract (docs/contract.md): vocabulary, envelope, topics, config."""

from carecircle.common.contract.config import DeviceBinding, DeviceFamily, GatewayConfig, Power
from carecircle.common.contract.envelope import (
    MAX_BATCH_ITEMS,
    SCHEMA_VERSION,
    Batch,
    Decoded,
    Envelope,
    Ident,
    Payload,
    Rejected,
    decode_batch,
    decode_envelope,
)
from carecircle.common.contract.topics import Topics, Uplink
from carecircle.common.contract.vocabulary import (
    VOCABULARY,
    Category,
    Code,
    CodeSpec,
    Kind,
    ValueType,
    spec,
)

__all__ = [
    "MAX_BATCH_ITEMS",
    "SCHEMA_VERSION",
    "VOCABULARY",
    "Batch",
    "Category",
    "Code",
    "CodeSpec",
    "Decoded",
    "DeviceBinding",
    "DeviceFamily",
    "Envelope",
    "GatewayConfig",
    "Ident",
    "Kind",
    "Payload",
    "Power",
    "Rejected",
    "Topics",
    "Uplink",
    "ValueType",
    "decode_batch",
    "decode_envelope",
    "spec",
]
