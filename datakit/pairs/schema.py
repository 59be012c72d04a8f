"""The schema of ``kind = "paired"`` recipes (see :mod:`datakit.recipe`)."""

from __future__ import annotations

from datakit.recipe import NUMBER, Key, Schema, at_least, in_range, one_of

TILE_KEYS = {
    "strategy": Key(
        str, "full", one_of("random", "grid", "cover", "full"), "random K crops, a grid, covering squares, or frames"
    ),
    "size": Key(int, 480, at_least(16), "tile side in HDR pixels (random, grid, cover)"),
    "count": Key(int, 4, at_least(1), "crops per clip (random)"),
    "step": Key(int, 240, at_least(1), "grid step in HDR pixels (grid)"),
    "remainder": Key(int, 48, at_least(0), "grid: add an edge-flush tile when the remainder exceeds this"),
}

PAIRED_SCHEMA: Schema = {
    "split": {
        "default": Key(str, "train", one_of("train", "test", "val"), "split of pairs whose pairs file names none"),
    },
    "align": {
        "max_offset_seconds": Key(NUMBER, 10.0, at_least(0.0)),
        "min_confidence": Key(NUMBER, 0.5, in_range(0.0, 1.0), "pairs and clips below are rejected"),
        "thumb_width": Key(int, 64, in_range(16, 512), "luma thumbnail width for temporal alignment"),
    },
    "scenes": {
        "detector": Key(str, "content", one_of("content", "adaptive")),
        "threshold": Key(NUMBER, None, at_least(0.0), "PySceneDetect threshold (default: the detector's own)"),
        "min_scene_len": Key(int, 8, at_least(1), "frames"),
        "thumb_width": Key(int, 256, in_range(32, 1024), "scene detection runs on frames this wide"),
    },
    "clips": {
        "strategy": Key(str, "consecutive", one_of("consecutive", "interval", "single", "global_local")),
        "frames": Key(int, 10, in_range(1, 64), "consecutive frames per clip"),
        "margin": Key(int, 2, at_least(0), "frames kept away from cuts"),
        "max_per_scene": Key(int, 1, at_least(1)),
        "every_seconds": Key(NUMBER, 2.0, at_least(0.01), "interval and single strategies"),
        "refs": Key(int, 0, in_range(0, 32), "global_local: reference frames across the scene"),
        "ref_stride": Key(int, 8, at_least(1), "global_local: frames between references"),
        "snap_to_keyframes": Key(
            bool,
            False,
            None,
            "interval/single: move each clip (at most half an interval, 1 s) to start on an "
            "HDR keyframe, so that seeking to it decodes nothing before it",
        ),
    },
    "gates": {
        "reject_black": Key(bool, True),
        "black_max_mean": Key(NUMBER, 0.03, in_range(0.0, 1.0), "mean SDR luma below this is black"),
        "reject_static": Key(bool, False),
        "static_min_motion": Key(NUMBER, 0.002, at_least(0.0), "mean abs luma change per frame"),
        "near_duplicate_threshold": Key(NUMBER, 0.0, at_least(0.0), "0 disables; thumbnail distance"),
        "min_peak_nits": Key(NUMBER, 0.0, in_range(0.0, 10000.0), "per-pair not_hdr below this p99.99 peak (0: off)"),
        "min_share_above_white": Key(NUMBER, 0.0, in_range(0.0, 1.0), "not_hdr (per pair) below this share > 203 nits"),
    },
    "tiles.train": TILE_KEYS,
    "tiles.test": {**TILE_KEYS, "strategy": Key(str, "full", one_of("random", "grid", "cover", "full"))},
    "store": {
        "max_shard_mb": Key(int, 1024, at_least(1)),
        "seed": Key(int, 0, at_least(0), "random tiles are drawn from (seed, pair id, clip number)"),
    },
}
