"""Shard writer/reader, output folder publication, verify and inspect on real HDF5 files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from datakit.cli import main
from datakit.errors import StoreError
from datakit.store import OutputFolder, Sample, ShardReader, inspect_output, list_shards, verify_output


def make_sample(i: int, source: str = "pairA", t: int = 3, size: int = 16) -> Sample:
    rng = np.random.default_rng(i)
    return Sample(
        sample_id=f"{source}-{i:03d}",
        source_id=source,
        sdr=rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8),
        hdr=rng.integers(0, 65536, (t, size, size, 3), dtype=np.uint16),
        sdr_frames=list(range(i, i + t)),
        hdr_frames=list(range(i + 5, i + 5 + t)),
        times=[k / 24 for k in range(i, i + t)],
        crop=(1, 2, size, size),
        scene=i % 2,
        score=0.9,
        meta={"k": i},
    )


def build(root, sources=("pairA", "pairB"), n=4, max_bytes=1 << 30):
    out = OutputFolder(root)
    out.prepare()
    for source in sources:
        with out.writer(source, max_bytes=max_bytes) as writer:
            records = [writer.add(make_sample(i, source), "train" if i < n - 1 else "test") for i in range(n)]
        out.publish_source(source, records, {"state": "done", "rejected": {"static": 1}})
    return out, out.finalize({"recipe": {"name": "unit"}})


def test_round_trip_values_and_metadata(tmp_path):
    out, summary = build(tmp_path)
    assert summary["samples"] == 8
    assert summary["samples_per_split"] == {"test": 2, "train": 6}
    assert summary["rejected_by_reason"] == {"static": 2}
    records = [json.loads(line) for line in out.manifest.read_text().splitlines()]
    rec = records[1]
    reader = ShardReader(tmp_path / rec["shard"])
    sdr, hdr = reader.arrays(rec["index"])
    expected = make_sample(1)
    np.testing.assert_array_equal(sdr, expected.sdr)
    np.testing.assert_array_equal(hdr, expected.hdr)
    stored = reader.record(rec["index"])
    assert stored["sample_id"] == "pairA-001"
    assert stored["hdr_frames"] == [6, 7, 8]
    assert stored["crop"] == [1, 2, 16, 16]
    assert stored["meta"] == {"k": 1}
    with h5py.File(tmp_path / rec["shard"]) as f:
        assert f["sdr"].chunks == (1, 3, 16, 16, 3)
        assert "PQ" in f.attrs["encoding_hdr"]
        assert f.attrs["schema_version"] == 1


def test_shards_rotate_at_size_bound_and_split_by_shape(tmp_path):
    out = OutputFolder(tmp_path)
    out.prepare()
    one = make_sample(0).sdr.nbytes + make_sample(0).hdr.nbytes
    with out.writer("src", max_bytes=2 * one) as writer:
        for i in range(5):
            writer.add(make_sample(i, "src"), "train")
        writer.add(make_sample(9, "src", t=10), "train")
    names = sorted(p.name for p in list_shards(tmp_path))
    assert names == ["src-10x16x16-000.h5", "src-3x16x16-000.h5", "src-3x16x16-001.h5", "src-3x16x16-002.h5"]


def test_failure_leaves_no_shard(tmp_path):
    out = OutputFolder(tmp_path)
    out.prepare()
    with pytest.raises(RuntimeError), out.writer("src") as writer:
        writer.add(make_sample(0, "src"), "train")
        raise RuntimeError("interrupted")
    assert list(tmp_path.rglob("*.h5")) == []


def test_reset_source_removes_leftovers(tmp_path):
    out, _ = build(tmp_path)
    assert out.is_done("pairA")
    out.reset_source("pairA")
    assert not out.is_done("pairA")
    assert all("pairA" not in p.name for p in list_shards(tmp_path))


def test_reset_source_removes_only_that_source(tmp_path):
    """``sky``'s files are not ``sky-2``'s: the id ends where the shape field starts."""
    out, _ = build(tmp_path, sources=("sky-2", "sky", "sky.v2"))
    leftover = tmp_path / "shards" / "train" / ".sky-3x16x16-000.abcd1234.part.h5"
    other = tmp_path / "shards" / "train" / ".sky-2-3x16x16-000.abcd1234.part.h5"
    leftover.touch()
    other.touch()
    out.reset_source("sky")
    kept = sorted(p.relative_to(tmp_path / "shards").as_posix() for p in list_shards(tmp_path))
    assert kept == [f"{split}/{source}-3x16x16-000.h5" for split in ("test", "train") for source in ("sky-2", "sky.v2")]
    assert not leftover.exists() and other.exists()
    assert out.is_done("sky-2") and out.is_done("sky.v2") and not out.is_done("sky")


def test_folder_lock_refuses_a_second_writer(tmp_path):
    import os

    first = OutputFolder(tmp_path / "out")
    with first.locked():
        assert (tmp_path / "out" / ".datakit.lock").read_text().strip() == str(os.getpid())
        busy = pytest.raises(StoreError, match=rf"out: another datakit run \(pid {os.getpid()}\)")
        with busy, OutputFolder(tmp_path / "out").locked():
            pass
    with OutputFolder(tmp_path / "out").locked():  # released at the end of the block
        pass


def test_claim_removes_a_killed_runs_temporaries(tmp_path):
    out, _ = build(tmp_path)
    stale = [
        tmp_path / "parts" / ".pairA.k3j2l1m0.part.jsonl",
        tmp_path / ".manifest.x0y9z8w7.part.jsonl",
        tmp_path / "shards" / "train" / ".pairA-3x16x16-000.q1w2e3r4.part.h5",
    ]
    for path in stale:
        path.write_text("half written")
    assert "pairA" in out.statuses() and len(out.statuses()) == 2  # a temporary is never read as a status
    with out.locked():
        out.claim({"name": "unit"}, "digest")
    assert not any(path.exists() for path in stale)
    assert len(list_shards(tmp_path)) == 4


def test_verify_detects_damage(tmp_path):
    build(tmp_path)
    assert verify_output(tmp_path, progress=False)["problems"] == []
    assert main(["verify", str(tmp_path)]) == 0
    shard = list_shards(tmp_path)[0]
    with h5py.File(shard, "r+") as f:
        f["hdr"][0, 0, 0, 0, 0] ^= 1
    problems = verify_output(tmp_path, progress=False)["problems"]
    assert len(problems) == 1 and "content hash" in problems[0]
    assert main(["verify", str(tmp_path)]) == 1
    shard.unlink()
    assert any("missing" in p for p in verify_output(tmp_path, progress=False)["problems"])


def test_inspect_and_bad_folder(tmp_path, capsys):
    build(tmp_path / "o")
    info = inspect_output(tmp_path / "o")
    assert info["samples"] == 8 and info["sources"] == 2
    assert info["samples_per_split_and_shape"] == {"test 3x16x16": 2, "train 3x16x16": 6}
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "manifest.jsonl" in err[0]


def test_sample_validation():
    bad = make_sample(0)
    bad.hdr = bad.hdr.astype(np.float32)
    with pytest.raises(StoreError):
        bad.validate()
    with pytest.raises(StoreError):
        OutputFolder("x").writer("../escape")


def test_directly_written_chunks_read_back_through_the_standard_filter(tmp_path):
    """Chunks compressed by compress_chunk decode with hdf5plugin's Blosc2 filter, as filter-written ones do."""
    import h5py

    from datakit.store.shards import compress_chunk, shard_compression

    rng = np.random.default_rng(3)
    arrays = [
        rng.integers(0, 65535, (3, 40, 56, 3), dtype=np.uint16),
        np.repeat(np.arange(40, dtype=np.uint16)[None, :, None, None] * 1000, 3, axis=0).repeat(56, 2).repeat(3, 3),
        rng.integers(0, 255, (3, 40, 56, 3), dtype=np.uint8).astype(np.uint16),
    ]
    for shape in [(2, 37, 1100, 3), (1, 1031, 200, 3)]:  # a block of several rows; a prime height (array path)
        big = rng.integers(0, 1000, shape, dtype=np.uint16)
        assert np.array_equal(_read_direct(tmp_path / f"{shape[1]}.h5", big), big)
        crop = big[:, 1:, 3:-5]  # a view into larger frames (tiles are compressed without a copy)
        assert np.array_equal(_read_direct(tmp_path / f"{shape[1]}-crop.h5", crop), crop)
    path = tmp_path / "direct.h5"
    with h5py.File(path, "w") as f:
        direct = f.create_dataset("direct", shape=(3, 3, 40, 56, 3), dtype=np.uint16, chunks=(1, 3, 40, 56, 3),
                                  **shard_compression())  # fmt: skip
        filtered = f.create_dataset("filtered", shape=(3, 3, 40, 56, 3), dtype=np.uint16, chunks=(1, 3, 40, 56, 3),
                                    **shard_compression())  # fmt: skip
        for i, array in enumerate(arrays):
            direct.id.write_direct_chunk((i, 0, 0, 0, 0), compress_chunk(array))
            filtered[i] = array
    with h5py.File(path, "r") as f:
        for i, array in enumerate(arrays):
            assert np.array_equal(f["direct"][i], array) and np.array_equal(f["filtered"][i], array)
        smooth = len(f["direct"].id.read_direct_chunk((1, 0, 0, 0, 0))[1])
    assert smooth < arrays[1].nbytes / 10  # it is compressed


def _read_direct(path, array):
    import h5py

    from datakit.store.shards import compress_chunk, shard_compression

    with h5py.File(path, "w") as f:
        shape = (1, *array.shape)  # one sample per chunk, as in the shards
        d = f.create_dataset("a", shape=shape, dtype=array.dtype, chunks=shape, **shard_compression())
        d.id.write_direct_chunk((0,) * len(shape), compress_chunk(array))
    with h5py.File(path, "r") as f:
        return f["a"][0]


def test_content_hash_names_its_algorithm_and_ignores_layout():
    """New hashes are XXH3-128 with their algorithm as prefix; a crop (a view into a frame) hashes like its copy;
    schema-1 manifests' bare sha256 digests still verify; one changed code value changes the hash."""
    import hashlib

    from datakit.store.shards import content_hash, hash_matches

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 65535, (3, 40, 60, 3), dtype=np.uint16)
    sdr = rng.integers(0, 255, (3, 20, 30, 3), dtype=np.uint8)
    crop = frames[:, 5:25, 10:40]
    assert not crop.flags.c_contiguous
    value = content_hash(sdr, crop)
    assert value.startswith("xxh3_128:") and len(value) == len("xxh3_128:") + 32
    assert value == content_hash(sdr, np.ascontiguousarray(crop))
    legacy = hashlib.sha256(sdr.tobytes() + np.ascontiguousarray(crop).tobytes()).hexdigest()
    assert content_hash(sdr, crop, "sha256") == legacy and hash_matches(sdr, crop, legacy)
    changed = crop.copy()
    changed[2, 19, 29, 2] ^= 1
    assert not hash_matches(sdr, changed, value) and not hash_matches(sdr, changed, legacy)
    with pytest.raises(StoreError):
        content_hash(sdr, crop, "md5")
    assert not hash_matches(sdr, crop, "md5:" + "0" * 32)  # a damaged record is reported, not a crash


def test_gil_free_compression_matches_python_blosc2(monkeypatch):
    """The ctypes path (the wheel's own libblosc2, GIL released) and python-blosc2's compress2 fallback give
    chunks of the same size that decode to the same bytes."""
    import blosc2

    from datakit.store import blosc

    assert blosc._load() is not None  # the wheel ships the library: the fast path is the one used here
    rng = np.random.default_rng(5)
    data = np.add.outer(np.arange(64), np.arange(96))[None, :, :, None] * 40 + rng.integers(0, 30, (3, 64, 96, 3))
    data = data.astype(np.uint16)
    params = blosc2.CParams(
        codec=blosc2.Codec.LZ4, clevel=5, typesize=2, nthreads=1, blocksize=16 * 96 * 3 * 2 * 3,
        filters=[blosc2.Filter.SHUFFLE], filters_meta=[0],
    )  # fmt: skip
    fast = blosc.compress_bytes(data, params)
    monkeypatch.setattr(blosc, "_library", None)
    monkeypatch.setattr(blosc, "_loaded", True)
    slow = blosc.compress_bytes(data, params)
    assert len(fast) == len(slow) < 0.7 * data.nbytes
    for chunk in (fast, slow):
        assert np.array_equal(np.frombuffer(blosc2.decompress2(chunk), np.uint16), data.ravel())


def test_assembled_frames_equal_python_blosc2s_own(monkeypatch):
    """Chunks compressed into a frame template are byte for byte the frames python-blosc2's to_cframe makes,
    for compressible, incompressible and all-zero data (the last is a special chunk: to_cframe's path)."""
    from datakit.store import shards

    rng = np.random.default_rng(11)
    arrays = []
    for shape, dtype in (((3, 64, 32, 3), np.uint16), ((2, 48, 40, 3), np.uint8)):
        arrays += [
            rng.integers(0, 200, shape).astype(dtype),
            (rng.integers(0, 3, shape) + np.arange(shape[1])[None, :, None, None]).astype(dtype),
            np.zeros(shape, dtype),
        ]
    from datakit.store import blosc

    fast = [shards.compress_chunk(a) for a in arrays]
    monkeypatch.setattr(blosc, "TEMPLATE_MAX_BYTES", 1000)  # chunks above the bound are not templated
    blosc.frame_template.cache_clear()
    large = [shards.compress_chunk(a) for a in arrays]
    blosc.frame_template.cache_clear()
    monkeypatch.setattr(shards, "frame_template", lambda *args: None)
    reference = [shards.compress_chunk(a) for a in arrays]
    assert [bytes(f) for f in fast] == reference == large
    assert [isinstance(f, np.ndarray) for f in fast] == [True, True, False] * 2  # the template path was taken
    assert not any(isinstance(f, np.ndarray) for f in large)


def test_packed_sample_writes_the_same_shard_and_lets_its_pixels_go(tmp_path):
    """A producer packs a sample (hash, chunks) and drops its arrays: the writer stores the same pixels, record
    and hash as for the unpacked sample, and the chunks hold only their compressed bytes (no uncompressed-size
    buffer behind a view), so a clip waiting for the writer keeps no converted region alive."""
    ramp = np.arange(3 * 48 * 64 * 3, dtype=np.uint32).reshape(3, 48, 64, 3)
    region = (ramp * 7 // 3 % 60000).astype(np.uint16)  # compressible, as pictures are
    plain = make_sample(0, size=32)
    plain.hdr = region[:, 8:40, 16:48]  # a tile: a view into a larger converted region, as the builder makes
    packed = make_sample(0, size=32)
    packed.hdr = region[:, 8:40, 16:48]
    packed.pack()
    assert packed.hdr.shape == plain.hdr.shape and packed.hdr.strides == (0, 0, 0, 0)
    assert packed.hdr.base is not region and not np.shares_memory(packed.hdr, region)
    for name, chunk in packed.chunks.items():
        array = np.asarray(chunk)
        assert array.base is None or array.base.nbytes == array.nbytes, name  # owns just the compressed bytes
    records = []
    for folder, sample in (("plain", plain), ("packed", packed)):
        out = OutputFolder(tmp_path / folder)
        out.prepare()
        with out.writer("pairA") as writer:
            records.append(writer.add(sample, "train"))
        out.publish_source("pairA", [records[-1]], {"state": "done"})
        out.finalize({"recipe": {"name": "unit"}})
    assert records[0] == records[1]
    for folder in ("plain", "packed"):
        (record,) = [json.loads(line) for line in (tmp_path / folder / "manifest.jsonl").read_text().splitlines()]
        sdr, hdr = ShardReader(tmp_path / folder / record["shard"]).arrays(record["index"])
        np.testing.assert_array_equal(hdr, region[:, 8:40, 16:48])
        np.testing.assert_array_equal(sdr, make_sample(0, size=32).sdr)


def _resident_share(path) -> float:
    """Share of a file's pages in the page cache (``mincore`` on a mapping that touches none of them)."""
    import ctypes
    import mmap
    import os

    size = os.path.getsize(path)
    page = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        pages = (size + page - 1) // page
        vector = ctypes.create_string_buffer(pages)
        try:
            assert libc.mincore(address, size, vector) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vector.raw) / pages


def test_shard_writes_go_to_disk_and_leave_the_page_cache(tmp_path, monkeypatch):
    """Shards are synced and dropped from the page cache behind the writer (every DROP_BEHIND_BYTES and at
    close), so that a build's writes reuse pages: a buffered write leaves the file's pages cached."""
    import os

    from datakit.store import shards

    control = tmp_path / "control.bin"
    control.write_bytes(os.urandom(4 << 20))
    if _resident_share(control) < 0.5:
        pytest.skip("this filesystem does not keep written pages in the page cache")
    fd = os.open(control, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    if _resident_share(control) > 0.1:
        pytest.skip("this filesystem keeps pages the writer drops (tmpfs)")

    samples = [make_sample(i, size=128, t=4) for i in range(16)]  # 16 x 0.6 MB of incompressible pixels
    writing, written = {}, {}
    for name, every in (("drop-behind", 1 << 20), ("buffered", 1 << 62)):
        monkeypatch.setattr(shards, "DROP_BEHIND_BYTES", every)
        folder = OutputFolder(tmp_path / name)
        folder.prepare()
        with folder.writer("pairA") as writer:
            for sample in samples:
                writer.add(sample, "train")
            (part,) = (tmp_path / name).rglob("*.part.h5")
            writing[name] = _resident_share(part)
        (written[name],) = (tmp_path / name).rglob("*.h5")
    assert writing["buffered"] > 0.5  # what the kernel keeps of a plain write
    assert writing["drop-behind"] < 0.2  # all but the last DROP_BEHIND_BYTES left the cache while writing
    assert all(_resident_share(path) < 0.1 for path in written.values())  # and the rest at close (synced)
    a, b = ShardReader(written["drop-behind"]), ShardReader(written["buffered"])
    assert len(a) == len(b) == len(samples)
    for i in range(len(a)):
        for x, y in zip(a.arrays(i), b.arrays(i), strict=True):
            np.testing.assert_array_equal(x, y)
