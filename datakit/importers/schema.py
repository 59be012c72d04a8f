"""The schema of ``kind = "import"`` recipes (see :mod:`datakit.recipe`; example: recipes/import_hdrtv1k.toml)."""

from __future__ import annotations

from datakit.pairs.schema import TILE_KEYS
from datakit.recipe import NUMBER, Key, Schema, at_least, in_range, one_of

IMPORT_SCHEMA: Schema = {
    "split": {
        "default": Key(str, "train", one_of("train", "test", "val"), "split of pairs whose layout names none"),
    },
    "gates": {
        "min_peak_nits": Key(NUMBER, 0.0, in_range(0.0, 10000.0), "not_hdr below this HDR p99.9 (0 disables)"),
        "min_share_above_white": Key(NUMBER, 0.0, in_range(0.0, 1.0), "not_hdr below this share > 203 nits"),
    },
    "tiles.train": TILE_KEYS,
    "tiles.test": {**TILE_KEYS, "strategy": Key(str, "full", one_of("random", "grid", "cover", "full"))},
    "store": {
        "max_shard_mb": Key(int, 1024, at_least(1)),
        "seed": Key(int, 0, at_least(0), "random tiles are drawn from (seed, source id)"),
    },
}
