"""Shards, manifest and output folder shared by every dataset producer."""

from datakit.store.output import OutputFolder, read_manifest
from datakit.store.shards import SCHEMA_VERSION, Sample, ShardReader, ShardWriter, list_shards
from datakit.store.verify import inspect_output, verify_output

__all__ = [
    "SCHEMA_VERSION",
    "OutputFolder",
    "Sample",
    "ShardReader",
    "ShardWriter",
    "inspect_output",
    "list_shards",
    "read_manifest",
    "verify_output",
]
