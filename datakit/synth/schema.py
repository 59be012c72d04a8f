"""The schema of ``kind = "synthetic"`` recipes (see :mod:`datakit.recipe` and :mod:`datakit.synth.params`)."""

from __future__ import annotations

from typing import Any

from datakit.recipe import NUMBER, Key, Schema, at_least, in_range, one_of


def _clip_lengths(value: Any) -> str | None:
    if not value or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in value):
        return "must be a non-empty list of frame counts between 1 and 64"
    return None


def _ranges(value: Any) -> str | None:
    from datakit.errors import RecipeError
    from datakit.synth.params import resolve_ranges

    try:
        resolve_ranges(value)
    except RecipeError as error:
        return str(error)
    return None


SYNTH_SCHEMA: Schema = {
    "source": {
        "kind": Key(str, "images", one_of("images", "sdr_video"), "HDR images -> warp, or SDR videos -> ITM"),
        "ldr_policy": Key(str, "refuse", one_of("refuse", "warn"), "what to do with an image that is not HDR"),
        "min_dynamic_range": Key(NUMBER, 8.0, at_least(1.0), "relative images: peak / 90th-percentile luminance"),
        "min_peak_nits": Key(NUMBER, 400.0, at_least(0.0), "PQ PNG / HDR10 frames: peak below this = LDR"),
        "itm": Key(str, "bt2446c", one_of("bt2446c", "bt2408"), "inverse tone mapping of the SDR-video branch"),
        "every_seconds": Key(
            NUMBER,
            2.0,
            at_least(0.05),
            "SDR-video branch: one clip start every T seconds; HDR10 videos given as images: one frame every T seconds",
        ),
        "max_clips_per_video": Key(int, 8, at_least(1)),
    },
    "clips": {
        "lengths": Key(list, [3, 10], _clip_lengths, "frames per clip; clips of each length are made"),
        "per_source": Key(int, 2, at_least(1), "clips per source image and length"),
        "tile": Key(int, 256, in_range(16, 4096), "output clips are tile x tile pixels"),
        "fps": Key(int, 25, in_range(1, 240), "frame rate the codec step encodes at"),
    },
    "split": {
        "test_fraction": Key(NUMBER, 0.0, in_range(0.0, 1.0), "share of sources held out (by a hash of the id)"),
        "test_sources": Key(list, [], None, "source ids always held out"),
    },
    "ranges": Key(dict, {}, _ranges, "overrides of datakit.synth.params.DEFAULT_RANGES (deep-merged)"),
    "store": {
        "max_shard_mb": Key(int, 1024, at_least(1)),
    },
}
