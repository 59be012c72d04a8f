"""The analysis of a dense build: each stream decoded once, the frames the clips need kept on the way.

The two passes run at the same time (the SDR one in a thread; PyAV, OpenCV and numpy release the GIL), so
the two decoders share the cores as decoding both streams one after the other cannot.

1. SDR pass: luma and BGR thumbnails (:class:`datakit.pairs.analysis.ThumbnailCollector`), streaming scene
   detection, and, each time a scene ends, the clips the recipe would take from it: their frames are kept
   (:class:`datakit.pairs.retain.FrameStore`). Clips of the scene-based strategies depend on their scene only,
   so this equals the plan made from all cuts at the end (which is the one used).
2. HDR pass: luma thumbnails; once a few seconds are in (and the SDR pass is far enough ahead), a provisional
   alignment of what has been decoded against the SDR summarized so far predicts which HDR frames the clips
   need, and those are kept as the pass reaches them (recent frames wait in a ring meanwhile). The
   prediction is refreshed every :data:`REFRESH_SECONDS`, each time on the last :data:`PROVISIONAL_SECONDS`
   decoded (a constant cost on long titles), in a thread beside the pass (the pass waits for it only once it is
   half a ring ahead). The HDR pass also keeps the title's spread frames for the not_hdr gate
   (:class:`datakit.audit.hdr_range.TitleSampler`).
3. The final alignment uses both whole streams; the geometry is refined on kept frame pairs.

Each pass's decoder runs in a thread of its own a few frames ahead (:func:`datakit.pairs.analysis.read_ahead`), so
that decoding goes on while the frame before is summarized.

Frames that were not kept (memory budget, or a wrong provisional guess) are decoded again when the clip
stage asks for them: the result never depends on the guesses, only the time does.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from datakit.audit.hdr_range import TitleSampler, title_frame_count
from datakit.errors import AlignmentError
from datakit.pairs import analysis
from datakit.pairs.align import (
    Alignment,
    DenseMatcher,
    TemporalAlignment,
    align_thumbnails,
    assemble,
    pair_features,
    refine,
)
from datakit.pairs.clips import Clip, frames_needed, plan_clips
from datakit.pairs.retain import FrameStore, frame_bytes
from datakit.pairs.scenes import StreamingCuts

__all__ = ["analyse_dense"]

FIRST_GUESS_SECONDS = 3.0  # HDR decoded before the first provisional alignment
RETRY_SECONDS = 1.0  # ... and between attempts until one is confident
REFRESH_SECONDS = 60.0  # ... and between refreshes once one is (dropped frames change the offset)
PROVISIONAL_SECONDS = 30.0  # HDR a refresh aligns: the last this many seconds decoded


def _scene_clips(strategy: str, params: dict[str, Any], fps: Any, start: int, end: int) -> list[int]:
    """SDR frames of the clips the strategy takes from the one scene ``[start, end)``."""
    clips = plan_clips(strategy, params, n_frames=end - start, fps=fps, cuts=())
    return [start + f for f in frames_needed(clips)]


def _sdr_reach(until: float, max_offset: float) -> float:
    """The SDR time up to which SDR frames can show HDR decoded up to ``until`` seconds (any offset up to
    ``max_offset``, any candidate speed ratio); with ``-max_offset``, the SDR time from which they can show HDR
    decoded from ``until``."""
    return until * (1.05 if max_offset >= 0 else 1 / 1.05) + max_offset + math.copysign(1.0, max_offset)


def _provisional(
    collector: analysis.ThumbnailCollector, sdr_collector: analysis.ThumbnailCollector, until: float, max_offset: float
) -> Alignment | None:
    """Alignment of the HDR decoded so far, its last :data:`PROVISIONAL_SECONDS` up to ``until`` seconds, with
    the SDR that can show it, or None unless its offset is distinct and its frames alike (SDR frames beyond the
    decoded HDR are unmatched: coverage is not asked). Bounded windows keep each refresh's cost constant on long
    titles. Runs beside the HDR pass (snapshots of both collectors are thread-safe)."""
    start = max(0.0, until - PROVISIONAL_SECONDS)
    lo, hi = _sdr_reach(start, -max_offset) if start > 0 else -math.inf, _sdr_reach(until, max_offset)
    hdr = collector.snapshot(since=start if start > 0 else None)
    hdr = hdr.select(np.flatnonzero((hdr.times >= start) & (hdr.times < until)))
    sdr = sdr_collector.snapshot(since=lo if start > 0 else None)
    keep = np.flatnonzero((sdr.times >= lo) & (sdr.times <= hi))
    if keep.size < 8 or hdr.count < 8:
        return None
    sdr = sdr.select(keep)
    hdr.windows = ((start, until),)
    if start > 0:  # an SDR window too (from the start: the SDR's own frame numbers bound the mapping)
        sdr.windows = ((lo, hi),)
    try:
        features = pair_features(hdr, sdr)
        match = DenseMatcher(max_offset).match(features)
    except AlignmentError:
        return None
    if min(match.score("distinct"), match.score("similarity")) < 0.5:
        return None
    return assemble(features.spatial, match)


class _SdrPass(threading.Thread):
    """The SDR pass, run beside the HDR pass (both decoders then keep both cores busy): thumbnails, streaming
    cuts, and the frames of each scene's clips, kept as soon as the scene ends."""

    def __init__(self, recipe: dict[str, Any], reader: Any, store: FrameStore) -> None:
        super().__init__(name="datakit-sdr-pass", daemon=True)
        align_cfg, scenes_cfg = recipe["align"], recipe["scenes"]
        info = reader.info
        self.reader, self.store = reader, store
        self.strategy, self.clips_cfg = recipe["clips"]["strategy"], recipe["clips"]
        self.cut_stream = StreamingCuts(
            info.fps, detector=scenes_cfg["detector"], threshold=scenes_cfg["threshold"],
            min_scene_len=scenes_cfg["min_scene_len"],
        )  # fmt: skip
        self.collector = analysis.ThumbnailCollector(
            reader, luma_width=align_cfg["thumb_width"], on_bgr=self.cut_stream, keep_bgr=False,
            bgr_width=analysis.whole_factor_width(info.width, scenes_cfg["thumb_width"]),
            profile_step=analysis.profile_step(info.fps, info.frame_count),
        )  # fmt: skip
        self.progress = -1.0  # time of the last frame summarized (seconds); inf when done
        self.needed: list[int] = []  # SDR frames of the clips of the scenes that have ended, so far (append only)
        self.cuts: list[int] = []
        self.clips: list[Clip] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # handed to the HDR side, which raises it
            self.error = error
        finally:
            self.progress = math.inf

    def _run(self) -> None:
        fps = self.reader.info.fps
        scene_start, known = 0, 0
        for frame in analysis.read_ahead(self.reader.frames()):
            if not self.collector.add(frame):
                continue
            self.store.offer(frame)
            found = self.cut_stream.found()
            for cut in found[known:]:
                frames = _scene_clips(self.strategy, self.clips_cfg, fps, scene_start, cut)
                self.store.want(frames)
                self.needed.extend(frames)  # the HDR side reads a length, then the items before it
                scene_start = cut
            known = len(found)
            self.progress = frame.time
        if not self.collector.count:
            raise AlignmentError(f"{self.reader.path}: no frame could be decoded")
        self.cuts = self.cut_stream.cuts()
        n_frames = self.collector.count
        self.clips = plan_clips(self.strategy, self.clips_cfg, n_frames=n_frames, fps=fps, cuts=self.cuts)
        final = frames_needed(self.clips)
        self.store.want(final)
        self.store.end_pass()
        listed = set(self.needed)
        self.needed.extend(f for f in final if f not in listed)  # the last scene, and any the end changed


def analyse_dense(
    recipe: dict[str, Any], sdr_reader: Any, hdr_reader: Any, *, memory_bytes: int
) -> analysis.PairAnalysis:
    """Run both passes (see the module doc). ``memory_bytes``: budget for kept and waiting frames (both
    streams). Raises :class:`AlignmentError` when the pair cannot be aligned at all."""
    align_cfg = recipe["align"]
    eighth = memory_bytes // 8  # rings: an eighth per stream; kept frames: SDR a quarter, HDR half
    sdr_store = FrameStore(sdr_reader, ring_bytes=eighth, keep_bytes=2 * eighth)
    hdr_store = FrameStore(hdr_reader, ring_bytes=eighth, keep_bytes=4 * eighth)
    sdr_pass = _SdrPass(recipe, sdr_reader, sdr_store)
    sdr_pass.start()
    try:
        thumbs_hdr, hdr_stats = _hdr_pass(hdr_reader, hdr_store, sdr_pass, align_cfg)
    finally:
        sdr_pass.join()
    if sdr_pass.error is not None:
        raise sdr_pass.error
    thumbs_sdr, cuts, clips = sdr_pass.collector.snapshot(), sdr_pass.cuts, sdr_pass.clips
    sdr_needed = frames_needed(clips)

    # final alignment from both whole streams; geometry refined on kept frame pairs
    alignment, matches = align_thumbnails(thumbs_hdr, thumbs_sdr, max_offset_seconds=align_cfg["max_offset_seconds"])
    hdr_store.want(h for h in alignment.temporal.hdr_indices_for(sdr_needed) if h is not None)
    hdr_store.end_pass()
    if alignment.temporal.confidence >= 0.25:

        def kept_lumas(picks: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
            sdr = sdr_store.get([s for s, _ in picks])
            hdr = hdr_store.get([h for _, h in picks])
            return [(h.luma(), s.luma()) for h, s in zip(hdr, sdr, strict=True)]

        alignment = refine(alignment, matches, kept_lumas, allowed_sdr=sdr_needed or None)
    return analysis.PairAnalysis(
        alignment, clips, sdr_store, hdr_store, "dense (whole streams)", cuts, thumbs_sdr, thumbs_hdr, hdr_stats
    )


def _hdr_pass(
    hdr_reader: Any, hdr_store: FrameStore, sdr_pass: _SdrPass, align_cfg: dict[str, Any]
) -> tuple[analysis.Thumbnails, tuple[dict[str, Any], int] | None]:
    """HDR thumbnails, the frames a provisional alignment says the clips need (see the module doc), and the
    title's not-HDR statistics on its spread frames (:class:`datakit.audit.hdr_range.TitleSampler`)."""
    info_hdr = hdr_reader.info
    sampler = TitleSampler(title_frame_count(info_hdr))
    collector = analysis.ThumbnailCollector(
        hdr_reader, luma_width=align_cfg["thumb_width"],
        profile_step=analysis.profile_step(info_hdr.fps, info_hdr.frame_count),
    )  # fmt: skip
    max_offset = align_cfg["max_offset_seconds"]
    next_guess = FIRST_GUESS_SECONDS
    half_frame = 0.5 / float(info_hdr.fps)
    ahead: TemporalAlignment | None = None
    asked = 0  # how many of sdr_pass.needed have been mapped to HDR frames and asked for
    pending: Future[Alignment | None] | None = None  # the provisional alignment running beside the pass
    submitted = ring_frames = 0  # the frame it was asked at; the frames the store's ring holds
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="datakit-provisional") as pool:
        for frame in analysis.read_ahead(hdr_reader.frames()):
            if not collector.add(frame):
                continue
            hdr_store.offer(frame)
            sampler.offer(frame)
            until = frame.time + half_frame
            if pending is None and frame.time >= next_guess and sdr_pass.progress >= _sdr_reach(until, max_offset):
                pending = pool.submit(_provisional, collector, sdr_pass.collector, until, max_offset)
                submitted = frame.index
                ring_frames = hdr_store.ring_bytes // max(1, frame_bytes(frame))
            if pending is not None and (pending.done() or frame.index - submitted >= ring_frames // 2):
                # (waits once the pass is half a ring past the guess: the frames before it must stay in the ring)
                guess = pending.result()
                pending = None
                if guess is not None:  # frames beyond the decoded part: the headline offset (segments near the
                    # end of the decoded part are unreliable: the SDR frames there have no HDR frames to match yet)
                    ahead = dataclasses.replace(
                        guess.temporal, unmatched=(), segments=(), hdr_frame_count=info_hdr.frame_count,
                        sdr_frame_count=None,
                    )  # fmt: skip
                    asked = 0
                next_guess = frame.time + (REFRESH_SECONDS if guess is not None else RETRY_SECONDS)
            known = len(sdr_pass.needed)
            if ahead is not None and known > asked:
                hdr_store.want(h for h in ahead.hdr_indices_for(sdr_pass.needed[asked:known]) if h is not None)
                asked = known
    if not collector.count:
        raise AlignmentError(f"{hdr_reader.path}: no frame could be decoded")
    return collector.snapshot(), sampler.stats()
