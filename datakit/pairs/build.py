"""``datakit build``: the paired-video pipeline, one pair per job.

probe -> analysis (:mod:`datakit.pairs.dense` or :mod:`datakit.pairs.sparse`: thumbnails, alignment, scenes,
clips) -> gates -> frames (kept by the analysis, or decoded again) -> map the SDR picture onto the HDR grid ->
tiles -> shards + manifest records. Dense strategies (``consecutive``, ``global_local``) decode each stream
once and keep the frames their clips need on the way; sparse ones (``interval``, ``single``) align from short
windows and HDR keyframes, check cuts only around each clip and seek to the frames they keep, decoding the
HDR frames within :data:`~datakit.pairs.align.CLIP_REACH` of them too for the clip's timing check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from datakit import __version__
from datakit.engine import Job, run_jobs
from datakit.errors import AlignmentError, DatakitError
from datakit.pairs.schema import PAIRED_SCHEMA
from datakit.pairs.sources import PairSource, check_hashes, read_pairs
from datakit.recipe import load_recipe, recipe_hash
from datakit.store.output import OutputFolder
from datakit.store.shards import Sample

SPARSE_STRATEGIES = ("interval", "single")


def build_dataset(
    recipe_path: str | os.PathLike[str],
    pairs_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    engine: str = "local",
    report: bool = True,
    allow_truncated: bool = False,
) -> dict[str, Any]:
    """Build (or resume) a paired dataset in ``out``; returns the summary (also written to summary.json).
    A cut-off source fails its pair (reason ``truncated``) unless ``allow_truncated``."""
    recipe = load_recipe(recipe_path, {"paired": PAIRED_SCHEMA}, expected_kind="paired")
    pairs = read_pairs(pairs_path)
    frame_memory_bytes()  # a bad setting stops the build here, not every pair on its own
    folder = OutputFolder(out)
    digest = recipe_hash(recipe)
    with folder.locked():  # one writer at a time, from the first write to the last
        folder.claim(recipe, digest)
        jobs = [
            Job(pair.pair_id, build_pair, (pair, recipe, digest, str(folder.root), allow_truncated))
            for pair in pairs
            if not folder.is_done(pair.pair_id)
        ]
        results = run_jobs(jobs, workers=workers, engine=engine, desc="pairs")
        folder.record_failures(results)
        summary = folder.finalize(
            {"recipe": recipe, "recipe_hash": digest, "tool_version": __version__, "pair_count": len(pairs)}
        )
        if report:
            from datakit.report.html import write_report

            summary["report"] = str(write_report(folder.root))
    return summary


def build_pair(
    pair: PairSource, recipe: dict[str, Any], digest: str, out_root: str, allow_truncated: bool = False
) -> dict[str, Any]:
    """Process one pair end to end and publish its shards and records; returns its status."""
    folder = OutputFolder(out_root)
    folder.reset_source(pair.pair_id)
    started = time.perf_counter()
    split = pair.split or recipe["split"]["default"]
    import cv2
    from threadpoolctl import threadpool_limits

    from datakit.allocator import keep_freed_memory

    # A pair already runs its own threads (two decoders, the passes, render threads): OpenCV's pool on top of
    # them only adds hand-offs on small images (measured: 2-3 CPU s less per minute of 1080p without it), and
    # OpenBLAS's threads (numpy's and OpenCV's copies) spin between the small matrix products of the checks
    # (perf: 7 % of a sparse build's CPU in blas_thread_server).
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    keep_freed_memory()  # the same large arrays are freed and allocated again, clip after clip
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            status = _build_pair(pair, recipe, digest, folder, split, allow_truncated)
    except DatakitError as error:
        status = {"state": "failed", "split": split, "error": str(error)}
        if getattr(error, "reason", None):
            status["reason"] = error.reason  # type: ignore[attr-defined]
        folder.publish_failure(pair.pair_id, status)
        return {**status, "source_id": pair.pair_id}
    finally:
        cv2.setNumThreads(opencv_threads)
    status["seconds"] = round(time.perf_counter() - started, 2)
    return status


def _build_pair(
    pair: PairSource, recipe: dict[str, Any], digest: str, folder: OutputFolder, split: str, allow_truncated: bool
) -> dict[str, Any]:
    from datakit.audit.hdr_range import sdr_in_pq_status
    from datakit.engine import worker_threads
    from datakit.io.probe import probe, require_complete, require_hdr10, require_sdr
    from datakit.io.reader import VideoReader
    from datakit.pairs import gates
    from datakit.pairs.dense import analyse_dense
    from datakit.pairs.sparse import analyse_sparse

    check_hashes(pair)
    info_hdr, info_sdr = probe(pair.hdr), probe(pair.sdr)
    require_hdr10(info_hdr)
    warnings = require_sdr(info_sdr) or []
    warnings += require_complete(info_hdr, allow_truncated) + require_complete(info_sdr, allow_truncated)
    clips_cfg, align_cfg = recipe["clips"], recipe["align"]
    sparse = clips_cfg["strategy"] in SPARSE_STRATEGIES
    rejected: Counter[str] = Counter()
    threads = worker_threads()  # this worker's share of the cores (FFmpeg's "auto" takes them all, plus one)
    with (
        VideoReader(pair.hdr, encoding="pq", threads=threads) as hdr_reader,
        VideoReader(pair.sdr, encoding="sdr", threads=threads) as sdr_reader,
    ):
        started = time.perf_counter()
        analyse = analyse_sparse if sparse else analyse_dense
        analysed = analyse(recipe, sdr_reader, hdr_reader, memory_bytes=frame_memory_bytes())
        alignment, clips, cuts = analysed.alignment, analysed.clips, analysed.cuts
        sdr_store, hdr_store = analysed.sdr_store, analysed.hdr_store
        status: dict[str, Any] = {
            "state": "done",
            "split": split,
            "alignment": {**alignment.to_dict(), "method": analysed.method},
            "hdr": info_hdr.to_dict(),
            "sdr": info_sdr.to_dict(),
            "warnings": list(warnings),
        }
        if alignment.confidence < align_cfg["min_confidence"]:
            raise AlignmentError(
                f"{pair.pair_id}: alignment confidence {alignment.confidence:.2f} is below the recipe's "
                f"{align_cfg['min_confidence']} ({'; '.join(alignment.reasons) or 'not the same title?'})"
            )
        status["cuts"] = list(cuts) if cuts is not None else None
        status["clips_planned"] = len(clips)
        context = _PairContext(
            pair, recipe, digest, folder, split, info_hdr, info_sdr, alignment, analysed.thumbs_sdr, rejected,
            sdr_store, hdr_store, analysed.thumbs_hdr,
        )  # fmt: skip
        analysed_at = time.perf_counter()
        gate = recipe["gates"]
        limits = {k: gate[k] for k in ("min_peak_nits", "min_share_above_white")}
        status.update(sdr_in_pq_status(pair.hdr, info_hdr, limits, analysed.hdr_stats))  # frames decoded anyway
        if "verdict" in status:  # the title is SDR in a PQ container: none of its clips is HDR
            rejected[gates.NOT_HDR] += len(clips)
            records = []
        else:
            records = _clip_samples(context, clips)
        status["timings"] = {
            "analysis_seconds": round(analysed_at - started, 2),
            "clips_seconds": round(time.perf_counter() - analysed_at, 2),
            **context.timings,
        }
        status["frames_decoded_again"] = {"sdr": sdr_store.redecoded, "hdr": hdr_store.redecoded}
        status["decoding"] = {  # what the pair cost the decoders: pictures returned, seeks chosen
            name: {"pictures": reader.pictures_decoded, "seeks": reader.seeks}
            for name, reader in (("sdr", sdr_reader), ("hdr", hdr_reader))
        }
        status["clips_moved_in_time"] = context.moved_in_time
    status["rejected"] = dict(sorted(rejected.items()))
    status["clips_kept"] = len({tuple(r["sdr_frames"]) for r in records})
    folder.publish_source(pair.pair_id, records, status)
    return {**status, "source_id": pair.pair_id, "samples": len(records)}


def frame_memory_bytes() -> int:
    """Memory the analysis of a pair may hold decoded frames in: ``DATAKIT_FRAME_MEMORY_MB`` (default 3072).

    Kept frames spare the clip stage a second decode; beyond the budget frames are decoded again (slower,
    same result). With ``--workers N`` each worker holds its own budget.
    """
    value = os.environ.get("DATAKIT_FRAME_MEMORY_MB", "3072")
    try:
        return max(0, int(float(value))) << 20
    except ValueError:
        raise DatakitError(f"DATAKIT_FRAME_MEMORY_MB must be a number of megabytes, got {value!r}") from None


@dataclass
class _PairContext:
    """What the per-clip stage of one pair needs."""

    pair: PairSource
    recipe: dict[str, Any]
    digest: str
    folder: OutputFolder
    split: str
    info_hdr: Any  # datakit.io.probe.VideoInfo
    info_sdr: Any
    alignment: Any  # datakit.pairs.align.Alignment
    thumbs_sdr: Any  # datakit.pairs.analysis.Thumbnails, or None for sparse strategies
    rejected: Counter[str]
    sdr_store: Any  # datakit.pairs.retain.FrameStore: frames kept by the analysis pass, or decoded again
    hdr_store: Any
    thumbs_hdr: Any = None  # datakit.pairs.analysis.Thumbnails of the HDR stream (dense), for the clip timing check
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    moved_in_time: int = 0  # clips the timing check moved to other HDR frames


def _clip_samples(ctx: _PairContext, clips: list[Any]) -> list[dict[str, Any]]:
    """Gate each clip, fetch its frames, convert them into tiles and write the samples; returns the records.

    Three stages run at once: this thread gates clips in time order and fetches their frames (kept by the
    analysis pass, or decoded again by seeking: both readers mostly move forward), :data:`_RENDER_THREADS`
    threads convert them (:func:`_render_clip`), and a writer thread appends the samples to the shards in clip
    order, so the output does not depend on timing.
    """
    pair, recipe, digest, folder, split = ctx.pair, ctx.recipe, ctx.digest, ctx.folder, ctx.split
    hdr_w, hdr_h = ctx.info_hdr.width, ctx.info_hdr.height
    render = _RenderContext(
        pair_id=pair.pair_id, seed=recipe["store"]["seed"], gates=recipe["gates"],
        tiles=recipe["tiles"]["test" if split == "test" else "train"],
        min_confidence=recipe["align"]["min_confidence"], alignment=ctx.alignment, hdr_size=(hdr_w, hdr_h),
        valid=ctx.alignment.spatial.valid_hdr_box(hdr_w, hdr_h),  # the HDR pixels the SDR picture covers
    )  # fmt: skip
    records: list[dict[str, Any]] = []
    pending: queue.Queue[Future[tuple[str | None, list[Sample]]] | None] = queue.Queue(maxsize=_IN_FLIGHT)
    written: Counter[str] = Counter()
    failure: list[BaseException] = []
    write_seconds = [0.0]
    with (
        folder.writer(
            pair.pair_id, max_bytes=recipe["store"]["max_shard_mb"] << 20, attrs={"recipe_hash": digest}
        ) as writer,
        ThreadPoolExecutor(max_workers=_RENDER_THREADS, thread_name_prefix="datakit-clip") as pool,
    ):

        def write_in_order() -> None:
            """The writer thread: clips in order, so that shards and manifest do not depend on timing."""
            while (future := pending.get()) is not None:
                try:
                    if failure:
                        continue
                    reason, samples = future.result()
                    if reason:
                        written[reason] += 1
                    busy = time.perf_counter()
                    for sample in samples:
                        record = writer.add(sample, split)
                        record["recipe_hash"] = digest
                        records.append(record)
                    write_seconds[0] += time.perf_counter() - busy
                except BaseException as error:  # re-raised by the producer
                    failure.append(error)

        writer_thread = threading.Thread(target=write_in_order, name="datakit-writer", daemon=True)
        writer_thread.start()
        try:
            _produce_clips(ctx, clips, render, pool, pending, failure)
        finally:
            pending.put(None)
            writer_thread.join()
        if failure:
            raise failure[0]
    ctx.rejected.update(written)
    ctx.timings["writer_busy_seconds"] = round(write_seconds[0], 2)
    return records


_SDR_AHEAD = 2  # sparse builds: clips the SDR stage (decoding, cut check, gates) runs ahead of the HDR stage


@dataclass
class _Gated:
    """A clip past the gates that need only its SDR frames, with what the HDR stage needs from them."""

    number: int
    clip: Any
    sdr_frames: list[int]
    hdr_frames: list[int]
    sdr_decoded: list[Any]
    luma: np.ndarray  # thumbnails' luma of the clip's frames (the near-duplicate gate)
    thumbs_window: Any = None  # sparse: thumbnails of the SDR frames around the clip, for its timing check
    temporal_margin: float | None = None


def _produce_clips(
    ctx: _PairContext,
    clips: list[Any],
    render: _RenderContext,
    pool: ThreadPoolExecutor,
    pending: queue.Queue[Any],
    failure: list[BaseException],
) -> None:
    """Gate each clip on what is cheap (:func:`_sdr_gated`), check its timing (:func:`_clip_timing`; sparse
    analyses: on the HDR frames around it, decoded here), fetch its frames (kept, or decoded again by seeking)
    and queue its conversion. Sparse builds decode both streams here: the SDR stage runs in its own thread,
    :data:`_SDR_AHEAD` clips ahead (:func:`~datakit.pairs.analysis.read_ahead`), so that the two decoders work at
    once, as in the analysis; clips keep their order, so the output does not depend on it."""
    from datakit.pairs import gates
    from datakit.pairs.analysis import read_ahead

    gates_cfg = ctx.recipe["gates"]
    signatures: list[np.ndarray] = []
    luma_width = ctx.recipe["align"]["thumb_width"]
    sparse = ctx.thumbs_sdr is None
    gated = _sdr_gated(ctx, clips)
    ahead = read_ahead(gated, _SDR_AHEAD, name="datakit-sdr-stage") if sparse and _SDR_AHEAD else gated
    with contextlib.closing(ahead) as candidates:
        for item in candidates:
            hdr_frames, temporal_margin = item.hdr_frames, item.temporal_margin
            hdr_near: dict[int, Any] = {}  # sparse: the HDR frames decoded around the clip for its timing check
            if sparse:  # decode the HDR frames within CLIP_REACH of the predicted ones, then check
                hdr_near, thumbs_near = _hdr_around_clip(ctx, item.clip, hdr_frames, luma_width)
                hdr_frames, temporal_margin = _timed(ctx, item.clip, hdr_frames, thumbs_near, item.thumbs_window)
                if hdr_frames is None:
                    continue
            if gates_cfg["near_duplicate_threshold"] > 0:
                signature = gates.clip_signature(item.luma)
                if gates.near_duplicates([*signatures, signature], gates_cfg["near_duplicate_threshold"])[-1]:
                    ctx.rejected["near_duplicate"] += 1
                    continue
                signatures.append(signature)
            missing = [h for h in hdr_frames if h not in hdr_near]
            hdr_near.update(zip(missing, ctx.hdr_store.get(missing), strict=True))
            hdr_decoded = [hdr_near[h] for h in hdr_frames]
            if failure:
                return
            job = _ClipJob(
                item.number, item.clip, item.sdr_frames, hdr_frames, item.sdr_decoded, hdr_decoded, temporal_margin
            )
            pending.put(pool.submit(_render_clip, render, job))


def _sdr_gated(ctx: _PairContext, clips: list[Any]) -> Iterator[_Gated]:
    """The clips, in time order, past the gates their SDR frames decide: every frame mapped, no cut (sparse: a
    local cut check on the frames around the clip, decoded here), not black, not static; dense builds check
    their timing here too (on the whole streams' thumbnails). Counts rejections in ``ctx.rejected`` under
    keys the HDR stage does not use (``ambiguous_time`` only for dense builds, which run both stages in one
    thread)."""
    from datakit.pairs import gates
    from datakit.pairs.analysis import thumbnails_of, whole_factor_width
    from datakit.pairs.scenes import has_cut

    recipe, rejected, alignment, info_sdr, thumbs_sdr = (
        ctx.recipe, ctx.rejected, ctx.alignment, ctx.info_sdr, ctx.thumbs_sdr,
    )  # fmt: skip
    gates_cfg, scenes_cfg, clips_cfg = recipe["gates"], recipe["scenes"], recipe["clips"]
    margin = clips_cfg["margin"] + 1
    sdr_store = ctx.sdr_store
    luma_width = recipe["align"]["thumb_width"]
    bgr_width = whole_factor_width(info_sdr.width, scenes_cfg["thumb_width"])
    for number, clip in enumerate(sorted(clips, key=lambda c: c.frames[0])):
        sdr_frames = list(clip.frames) + list(clip.refs)
        hdr_frames = [alignment.temporal.hdr_index_for(i) for i in sdr_frames]
        if any(h is None for h in hdr_frames):
            rejected["unmatched_frame"] += 1
            continue
        temporal_margin = None
        thumbs_window = None
        if thumbs_sdr is not None:  # dense: checked on the thumbnails of the whole streams
            hdr_frames, temporal_margin = _timed(ctx, clip, hdr_frames, ctx.thumbs_hdr, thumbs_sdr)
            if hdr_frames is None:
                continue
            luma = thumbs_sdr.luma[clip.frames]
            sdr_decoded = sdr_store.get(sdr_frames)
        else:  # sparse: the same thumbnails, made here for the frames around the clip
            first, last = max(0, clip.frames[0] - margin), min(info_sdr.frame_count - 1, clip.frames[-1] + margin)
            window = sdr_store.get(list(range(first, last + 1)))
            thumbs_window = thumbnails_of(sdr_store.reader, window, luma_width=luma_width, bgr_width=bgr_width)
            if has_cut(
                list(thumbs_window.bgr), info_sdr.fps, detector=scenes_cfg["detector"],
                threshold=scenes_cfg["threshold"],
            ):  # fmt: skip
                rejected["crosses_cut"] += 1
                continue
            position = {f.index: k for k, f in enumerate(window)}
            luma = thumbs_window.luma[[position[i] for i in clip.frames]]
            sdr_decoded = [window[position[i]] if i in position else sdr_store.get([i])[0] for i in sdr_frames]
        reason = (gates_cfg["reject_black"] and gates.is_black(luma, max_mean=gates_cfg["black_max_mean"])) or (
            gates_cfg["reject_static"] and gates.is_static(luma, min_motion=gates_cfg["static_min_motion"])
        )
        if reason:
            rejected[reason] += 1
            continue
        yield _Gated(number, clip, sdr_frames, hdr_frames, sdr_decoded, luma, thumbs_window, temporal_margin)


def _timed(
    ctx: _PairContext, clip: Any, hdr_frames: list[int], thumbs_hdr: Any, thumbs_sdr: Any
) -> tuple[list[int] | None, float | None]:
    """The clip's HDR frames after :func:`_clip_timing` (moved when another offset wins, counted in the pair's
    context) and its temporal margin; ``None`` frames when the clip is rejected as ``ambiguous_time``."""
    shift, margin = _clip_timing(ctx, clip, thumbs_hdr, thumbs_sdr)
    if shift is None:
        ctx.rejected[AMBIGUOUS_TIME] += 1
        return None, margin
    if shift:
        ctx.moved_in_time += 1
        return [h + shift for h in hdr_frames], margin
    return hdr_frames, margin


AMBIGUOUS_TIME = "ambiguous_time"  # rejection: neither the predicted HDR frames nor their neighbours win clearly


def _checked_frames(ctx: _PairContext, clip: Any) -> tuple[list[int], list[int]]:
    """The SDR frames a clip's timing is checked on (:func:`datakit.pairs.align.frames_to_check`) that the
    alignment maps, and the HDR frames it predicts for them."""
    from datakit.pairs.align import frames_to_check

    temporal = ctx.alignment.temporal
    pairs = [(i, temporal.hdr_index_for(i)) for i in frames_to_check(clip.frames, ctx.info_sdr.frame_count)]
    pairs = [(i, h) for i, h in pairs if h is not None]
    return [i for i, _ in pairs], [h for _, h in pairs]


def _hdr_around_clip(
    ctx: _PairContext, clip: Any, hdr_frames: list[int], luma_width: int
) -> tuple[dict[int, Any], Any]:
    """Sparse builds: every HDR frame within :data:`~datakit.pairs.align.CLIP_REACH` of those predicted for the
    checked frames (and the clip's own), decoded in one forward run (the reader seeks to the first and decodes
    the rest without skipping: none of them is a dropped non-reference picture), with their thumbnails."""
    from datakit.pairs.align import CLIP_REACH
    from datakit.pairs.analysis import thumbnails_of

    _, predicted = _checked_frames(ctx, clip)
    around = [*predicted, *hdr_frames[: len(clip.frames)]]  # references are fetched on their own
    first = max(0, min(around) - CLIP_REACH)
    last = min(ctx.info_hdr.frame_count - 1, max(around) + CLIP_REACH)
    decoded = ctx.hdr_store.get(list(range(first, last + 1)))
    thumbs = thumbnails_of(ctx.hdr_store.reader, decoded, luma_width=luma_width)
    return {f.index: f for f in decoded}, thumbs


def _clip_timing(ctx: _PairContext, clip: Any, thumbs_hdr: Any, thumbs_sdr: Any) -> tuple[int | None, float | None]:
    """The temporal check of a clip on thumbnails (:func:`datakit.pairs.align.check_clip_timing`: the whole
    streams' in a dense build, those of the frames around the clip in a sparse one), on the frames
    :func:`_checked_frames` picks: ``(shift, margin)``, ``shift`` the HDR frames to move the clip by (0: keep),
    or None to reject it: no offset wins clearly, and the clip lies where the alignment is uncertain or its
    thumbnails prefer other HDR frames. ``(0, None)`` when there is nothing to check on."""
    from datakit.pairs.align import check_clip_timing

    sdr_frames, hdr_frames = _checked_frames(ctx, clip)
    if thumbs_sdr is None or thumbs_hdr is None or not sdr_frames:
        return 0, None
    timing = check_clip_timing(thumbs_hdr, thumbs_sdr, ctx.alignment.spatial, sdr_frames, hdr_frames)
    if timing is None:
        return 0, None
    margin = None if timing.margin is None else round(timing.margin, 2)
    uncertain = any(ctx.alignment.temporal.is_uncertain(i) for i in clip.frames)
    if timing.clear:
        return timing.shift, margin
    if timing.shift or uncertain:
        return None, margin
    return 0, margin


_RENDER_THREADS = 2  # clips converted at the same time (OpenCV and numpy release the GIL)
_IN_FLIGHT = 4  # clips converted ahead of the writer (bounds memory)


@dataclass(frozen=True)
class _RenderContext:
    """What converting a clip into samples needs, shared by the render threads (read only)."""

    pair_id: str
    seed: int
    gates: dict[str, Any]
    tiles: dict[str, Any]
    min_confidence: float
    alignment: Any
    hdr_size: tuple[int, int]
    valid: list[int]


@dataclass
class _ClipJob:
    number: int
    clip: Any
    sdr_frames: list[int]
    hdr_frames: list[int]
    sdr_decoded: list[Any]
    hdr_decoded: list[Any]
    temporal_margin: float | None = None  # the clip timing check's margin (None: not checked)


def _render_clip(ctx: _RenderContext, job: _ClipJob) -> tuple[str | None, list[Sample]]:
    """The HDR statistics, the full-resolution alignment check and the tiles of one clip: ``(reason, [])`` when the
    clip is rejected, else ``(None, samples)``. Runs in a render thread.

    Whole frames are converted only for the checks, on the centre frame: luminance statistics and the
    full-resolution alignment check (every frame's match was verified on thumbnails by the alignment); the tiles
    convert only their regions (:meth:`datakit.io.reader.Frame.rgb` ``box``, same pixels). Tile positions come
    from a generator seeded by (recipe seed, pair, clip number), so a clip's tiles do not depend on the others.
    """
    from datakit.pairs import gates
    from datakit.pairs.tiles import plan_tiles

    spatial, valid = ctx.alignment.spatial, ctx.valid
    hdr_w, hdr_h = ctx.hdr_size
    clip, hdr_decoded, sdr_decoded = job.clip, job.hdr_decoded, job.sdr_decoded
    centre = len(clip.frames) // 2
    hdr_centre = hdr_decoded[centre].rgb("uint16")
    stats = gates.hdr_stats(hdr_centre, max_pixels=1 << 16)  # recorded per sample; the not_hdr gate is per pair
    # SDR frames already on the whole HDR grid: the centre one, and every frame when the geometry cannot
    # resample a region alone (an SDR larger than the HDR needs the area pre-filter on the whole frame)
    sdr_grids = {centre: _sdr_on_hdr_grid(sdr_decoded[centre], spatial, None, hdr_w, hdr_h)}
    check = spatial.clip_confidence(hdr_centre[None], sdr_grids[centre][None], valid)
    score = min(ctx.alignment.confidence, check)
    if score < ctx.min_confidence:
        return "low_clip_alignment", []
    rng = np.random.default_rng([ctx.seed, *ctx.pair_id.encode(), job.number])
    boxes = plan_tiles(ctx.tiles["strategy"], ctx.tiles, height=valid[3], width=valid[2], rng=rng)
    if not boxes:
        return "smaller_than_tile", []
    boxes = [(valid[0] + x, valid[1] + y, w, h) for x, y, w, h in boxes]
    direct = spatial.is_identity() and (sdr_decoded[centre].width, sdr_decoded[centre].height) == (hdr_w, hdr_h)
    if not direct and spatial.shrinks:
        sdr_grids.update(
            (k, _sdr_on_hdr_grid(f, spatial, None, hdr_w, hdr_h)) for k, f in enumerate(sdr_decoded) if k != centre
        )
    tiles: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for region, members in conversion_regions(boxes):
        rx, ry, rw, rh = region
        hdr_region = np.stack(
            [
                hdr_centre[ry : ry + rh, rx : rx + rw] if k == centre else f.rgb("uint16", box=region)
                for k, f in enumerate(hdr_decoded)
            ]
        )
        sdr_region = np.stack(
            [
                sdr_grids[k][ry : ry + rh, rx : rx + rw]
                if k in sdr_grids
                else _sdr_on_hdr_grid(f, spatial, region, hdr_w, hdr_h)
                for k, f in enumerate(sdr_decoded)
            ]
        )
        for k in members:
            x, y, w, h = boxes[k]
            cut = (slice(None), slice(y - ry, y - ry + h), slice(x - rx, x - rx + w))
            tiles[k] = (sdr_region[cut], hdr_region[cut])  # views: hashed and laid out for Blosc2 without a copy
    times = [f.time for f in sdr_decoded]
    samples = [
        Sample(
            sample_id=f"{ctx.pair_id}-c{job.number:04d}-t{k:02d}",
            source_id=ctx.pair_id,
            sdr=tiles[k][0],
            hdr=tiles[k][1],
            sdr_frames=job.sdr_frames,
            hdr_frames=job.hdr_frames,
            times=times,
            crop=(x0, y0, w, h),
            scene=clip.scene,
            score=score,
            meta={
                "clip": job.number,
                "refs": len(clip.refs),
                "ref_offsets": list(clip.ref_offsets),
                "hdr_stats": stats,
                "temporal_margin": job.temporal_margin,
            },
        )
        for k, (x0, y0, w, h) in enumerate(boxes)
    ]
    for sample in samples:  # hashed and compressed here, two clips at a time; the writer thread only writes
        sample.pack()
    return None, samples


def _sdr_on_hdr_grid(frame: Any, spatial: Any, box: Any, hdr_w: int, hdr_h: int) -> np.ndarray:
    """SDR frame (BT.709 R'G'B' uint8) resampled onto the HDR grid: the whole grid (``box=None``) or one
    ``(x, y, w, h)`` box of it, converting only the SDR pixels the box reads when the geometry allows."""
    if spatial.is_identity() and (frame.width, frame.height) == (hdr_w, hdr_h):
        return frame.rgb("uint8") if box is None else frame.rgb("uint8", box=tuple(box))
    region = None if box is None else spatial.sdr_region_for(box)
    if region is None:
        whole = spatial.sdr_to_hdr_grid(frame.rgb("uint8"), hdr_w, hdr_h)
        if box is None:
            return whole
        x, y, w, h = box
        return np.ascontiguousarray(whole[y : y + h, x : x + w])
    return spatial.sdr_region_to_hdr_box(frame.rgb("uint8", box=region), region[:2], box)


def conversion_regions(boxes: list[tuple[int, int, int, int]]) -> list[tuple[tuple[int, int, int, int], list[int]]]:
    """Regions to convert for these tiles: their bounding box once when the tiles overlap enough that this
    converts fewer pixels than tile by tile (grids), else each tile alone (a few random tiles)."""
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    if (x1 - x0) * (y1 - y0) <= sum(b[2] * b[3] for b in boxes):
        return [((x0, y0, x1 - x0, y1 - y0), list(range(len(boxes))))]
    return [(box, [k]) for k, box in enumerate(boxes)]
