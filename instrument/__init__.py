"""The scale as data: load, validate and render instruments; read lavaan model files."""
from instrument.lavaan import LavaanModel, LavaanSyntaxError, Statement, parse_model, read_model
from instrument.schema import (
    DEFAULT_INSTRUMENT,
    AttentionCheck,
    Construct,
    ContextQuestion,
    Instrument,
    InstrumentError,
    Item,
    Page,
    Scale,
    Section,
    load_instrument,
    parse_instrument,
)

__all__ = [
    "DEFAULT_INSTRUMENT", "AttentionCheck", "Construct", "ContextQuestion", "Instrument",
    "InstrumentError", "Item", "LavaanModel", "Page", "LavaanSyntaxError", "Scale", "Section",
    "Statement", "load_instrument", "parse_instrument", "parse_model", "read_model",
]
