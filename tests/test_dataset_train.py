"""ShardDataset, sampler, tiling, losses, config, training (resume, DDP on CPU) and evaluation on real shards.

The shards are made here from the CC0 HDR environment maps in /work/shared/data/hdri (or any EXR folder named by
DATAKIT_TEST_HDRI): HDR = PQ of the linear image scaled to nits (BT.709 -> BT.2020), SDR = a simple tone curve
and a 1/2.4 power, with a few pixels of motion between frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from datakit.cli import main
from datakit.color.gamut import convert_gamut
from datakit.color.transfer import st2084_inverse_eotf
from datakit.errors import InputError, ModelError, OutputExistsError, RecipeError, StoreError
from datakit.nn.config import build_config
from datakit.nn.dataset import ShardDataset, ShardSampler
from datakit.nn.losses import BrightnessConsistencyLoss, PyramidPerceptualLoss, pq_luma, tanh_l1_loss
from datakit.nn.tiling import tile_starts, tiled_apply
from datakit.nn.train import load_model, resolve_config, train
from datakit.store import OutputFolder, Sample, ShardReader, ShardWriter

HDRI = Path(os.environ.get("DATAKIT_TEST_HDRI", "/work/shared/data/hdri"))
REPO = Path(__file__).resolve().parents[1]


def _read_exr(path: Path) -> np.ndarray:
    import OpenEXR

    with OpenEXR.File(str(path)) as f:
        return np.asarray(f.channels()["RGB"].pixels, dtype=np.float32)


def _pair(linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sdr uint8, hdr uint16) of a relative linear BT.709 image (..., 3)."""
    nits = np.clip(linear / np.median(linear) * 40.0, 0, 10000)
    hdr = np.round(st2084_inverse_eotf(convert_gamut(nits, "bt709", "bt2020")) * 65535).astype(np.uint16)
    rel = nits / 100.0
    sdr = np.round(np.clip(rel / (1 + rel) * 1.6, 0, 1) ** (1 / 2.4) * 255).astype(np.uint8)
    return sdr, hdr


def make_root(root: Path, n_train: int = 12, n_test: int = 3, frames: int = 3, size: int = 40) -> Path:
    """An output folder (shards + manifest) of moving crops of the EXR images."""
    if not HDRI.is_dir():
        pytest.skip(f"no HDR images in {HDRI}")
    images = sorted(HDRI.glob("*.exr"))[:4]
    rng = np.random.default_rng(0)
    out = OutputFolder(root)
    out.prepare()
    small = [cv2.resize(_read_exr(p), (256, 128), interpolation=cv2.INTER_AREA) for p in images]
    for s, img in enumerate(small):
        source = f"img{s}"
        records = []
        with out.writer(source) as writer:
            n_test_here = 1 if s < n_test else 0
            for k in range(n_train // len(small) + n_test_here):
                number = s * 100 + k
                split = "test" if k < n_test_here else "train"
                y, x = int(rng.integers(0, 128 - size)), int(rng.integers(0, 256 - size - 2 * frames))
                clip = np.stack([img[y : y + size, x + 2 * t : x + 2 * t + size] for t in range(frames)])
                sdr, hdr = _pair(clip)
                sample = Sample(
                    sample_id=f"{source}-{number}", source_id=source, sdr=sdr, hdr=hdr,
                    sdr_frames=list(range(frames)), hdr_frames=list(range(frames)),
                    times=[t / 24 for t in range(frames)], crop=(x, y, size, size),
                )  # fmt: skip
                records.append(writer.add(sample, split))
        out.publish_source(source, records, {"state": "done"})
    out.finalize({})
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("shards"))


# ----------------------------------------------------------------------------------------------- dataset


def test_dataset_items_match_the_stored_arrays(data_root: Path):
    ds = ShardDataset([data_root], "test", frames=None, crop=None, augment=False)
    assert len(ds) == 3
    item = ds[0]
    ref = ds.items[0]
    sdr, hdr = ShardReader(ref.shard).arrays(ref.index)
    assert item["sdr"].shape == item["hdr"].shape == (3, 3, 40, 40)
    assert item["sdr"].dtype == item["hdr"].dtype == torch.float32
    np.testing.assert_array_equal(item["sdr"].numpy(), np.moveaxis(sdr, -1, 1) / np.float32(255))
    np.testing.assert_array_equal(item["hdr"].numpy(), np.moveaxis(hdr, -1, 1) / np.float32(65535))
    assert item["sample_id"] == ref.sample_id
    # frame window: one frame around the middle, or an explicit centre
    mid = ShardDataset([data_root], "test", frames=1, centre="middle", augment=False)[0]
    np.testing.assert_array_equal(mid["sdr"][0].numpy(), item["sdr"][1].numpy())
    first = ShardDataset([data_root], "test", frames=1, centre=0, augment=False)[0]
    np.testing.assert_array_equal(first["hdr"][0].numpy(), item["hdr"][0].numpy())
    centre = ShardDataset([data_root], "test", frames=None, crop=16, crop_mode="centre", augment=False)[0]
    np.testing.assert_array_equal(centre["sdr"].numpy(), item["sdr"][..., 12:28, 12:28].numpy())


def test_augmentation_is_identical_on_sdr_hdr_and_frames(data_root: Path):
    plain = ShardDataset([data_root], "test", crop=None, augment=False)[1]
    ds = ShardDataset([data_root], "test", crop=None, augment=True)

    def variants(x: torch.Tensor) -> list[np.ndarray]:
        out = []
        for flip in (False, True):
            y = x.flip(-1) if flip else x
            out += [torch.rot90(y, k, dims=(-2, -1)).numpy() for k in range(4)]
        return out

    seen = set()
    for seed in range(12):
        item = ds[(1, seed)]
        sv, hv = variants(plain["sdr"]), variants(plain["hdr"])
        matches = [k for k in range(8) if np.array_equal(item["sdr"].numpy(), sv[k])]
        assert len(matches) == 1, "SDR must be one dihedral transform of the stored sample (all frames together)"
        assert np.array_equal(item["hdr"].numpy(), hv[matches[0]])
        seen.add(matches[0])
    assert len(seen) >= 4


def test_sampler_splits_ranks_resumes_and_mixes_roots(data_root: Path, tmp_path: Path):
    ds = ShardDataset([data_root], "train", frames=1, crop=16)
    n = len(ds)
    r0 = ShardSampler(ds, rank=0, world_size=2, seed=3, infinite=False)
    r1 = ShardSampler(ds, rank=1, world_size=2, seed=3, infinite=False)
    a, b = [i for i, _ in r0], [i for i, _ in r1]
    assert len(a) == len(b) == n // 2
    assert not set(a) & set(b) and len(set(a) | set(b)) == 2 * (n // 2)
    stream = ShardSampler(ds, seed=3)
    it = iter(stream)
    first = [next(it) for _ in range(2 * n + 3)]
    it2 = iter(ShardSampler(ds, seed=3, start=n + 5))
    assert [next(it2) for _ in range(n - 2)] == first[n + 5 : 2 * n + 3]
    # the same draw gives the same crop
    assert torch.equal(ds[first[0]]["sdr"], ds[first[0]]["sdr"])
    # two roots: a second one without manifest (bare split folders); weight 0 excludes it
    bare = tmp_path / "bare"
    ref = ds.items[0]
    with ShardWriter(bare, "x") as writer:
        sdr, hdr = ShardReader(ref.shard).arrays(ref.index)
        for k in range(4):
            writer.add(
                Sample(f"bare-{k}", "bare", sdr, hdr, [0, 1, 2], [0, 1, 2], [0, 0.1, 0.2], (0, 0, 40, 40)), "train"
            )
    mixed = ShardDataset([data_root, bare], "train", frames=1, crop=16, weights=[0.0, 1.0])
    assert len(mixed) == n + 4
    draws = [i for i, _ in ShardSampler(mixed, seed=1, infinite=False)]
    assert all(mixed.items[i].root == 1 for i in draws) and len(draws) == n + 4


def test_dataset_rejects_missing_and_too_small(data_root: Path, tmp_path: Path):
    with pytest.raises(StoreError, match="no usable"):
        ShardDataset([data_root], "train", crop=64)
    with pytest.raises(StoreError, match="no usable"):
        ShardDataset([data_root], "train", frames=5)
    with pytest.raises(InputError, match="not found"):
        ShardDataset([tmp_path / "nope"], "train")


def test_dataloader_workers_read_the_same_items(data_root: Path):
    from torch.utils.data import DataLoader

    from datakit.nn.dataset import collate, worker_init_fn

    ds = ShardDataset([data_root], "train", frames=1, crop=16)
    sampler = ShardSampler(ds, seed=5, infinite=False)
    ref = [ds[k]["sdr"] for k in sampler]
    ds[0]  # a handle opened in the parent must not be used by the workers
    loader = DataLoader(ds, batch_size=4, sampler=sampler, num_workers=2, collate_fn=collate,
                        worker_init_fn=worker_init_fn, multiprocessing_context="spawn")  # fmt: skip
    got = torch.cat([b["sdr"] for b in loader])
    assert torch.equal(got, torch.stack(ref)[: len(got)])


# ----------------------------------------------------------------------------------------------- tiling


def test_tiled_apply_pointwise_is_exact_and_conv_is_close():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 70, 90)
    conv1 = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        torch.testing.assert_close(tiled_apply(conv1, x, 32, 8), conv1(x), atol=1e-6, rtol=0)
        conv3 = torch.nn.Conv2d(3, 3, 3, padding=1)
        full = conv3(x)
        tiled = tiled_apply(conv3, x, 32, 8)
        assert (tiled - full).abs().max() < 0.05
        assert (tiled - full).abs().mean() < 2e-3
        # multi-frame input, single-frame output
        clip = torch.rand(1, 3, 3, 50, 40)
        torch.testing.assert_close(tiled_apply(lambda t: t[:, 1] * 2, clip, 16, 4), clip[:, 1] * 2)
        torch.testing.assert_close(tiled_apply(conv1, x, None), conv1(x))
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    with pytest.raises(InputError):
        tiled_apply(conv1, x, 32, 32)


def test_convert_clip_feeds_frames_like_datakit_convert():
    from datakit.nn.evaluate import convert_clip

    class Echo(torch.nn.Module):  # returns its three input frames
        frames, output_frames = 3, 3

        def forward(self, x):
            return x

    class Mean(torch.nn.Module):  # returns the mean of its window (centre-frame model)
        frames, output_frames = 3, 1

        def forward(self, x):
            return x.mean(dim=1)

    clip = (torch.arange(4, dtype=torch.float32) / 10).view(4, 1, 1, 1).expand(4, 3, 8, 8).contiguous()
    torch.testing.assert_close(convert_clip(Echo(), clip, tile=None), clip)
    means = convert_clip(Mean(), clip, tile=None)[:, 0, 0, 0]
    # windows mirrored without repeating the edge: frame 0 -> (1, 0, 1), frame 3 -> (2, 3, 2)
    torch.testing.assert_close(means, torch.tensor([2 / 30, 1 / 10, 2 / 10, 7 / 30]))


# ----------------------------------------------------------------------------------------------- losses


def test_tanh_l1_and_bilateral_illumination_match_references():
    p, t = torch.full((1, 3, 3, 4, 4), 0.5), torch.full((1, 3, 3, 4, 4), 0.25)
    expected = 3 * (np.tanh(0.5) - np.tanh(0.25))  # per-frame mean, summed over three frames
    assert tanh_l1_loss(p, t).item() == pytest.approx(expected, rel=1e-6)
    x = torch.rand(1, 3, 24, 30, generator=torch.Generator().manual_seed(1))
    u = (torch.log1p(255 * pq_luma(x)) * (255 / np.log(256)))[0, 0].numpy().astype(np.float32)
    ref = cv2.bilateralFilter(u, 9, 10, 5, borderType=cv2.BORDER_REPLICATE)
    ours = BrightnessConsistencyLoss().illumination(x)[0, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_brightness_consistency_follows_motion_and_penalizes_flicker(data_root: Path):
    item = ShardDataset([data_root], "test", augment=False)[0]  # 3 frames moving 2 px per frame
    truth = item["hdr"].unsqueeze(0)
    loss = BrightnessConsistencyLoss()
    steady = loss(truth, truth).item()
    flicker = truth.clone()
    flicker[:, 0] = (flicker[:, 0] * 1.15).clamp(0, 1)
    assert loss(flicker, truth).item() > 3 * steady
    pred = truth.clone().requires_grad_(True)
    loss(pred, truth).backward()
    assert torch.isfinite(pred.grad).all()
    perceptual = PyramidPerceptualLoss()
    assert perceptual(truth[:, 1], truth[:, 1]).item() == 0.0
    assert perceptual(truth[:, 1], truth[:, 1].flip(-1)).item() > 0.0


def test_vgg_perceptual_loss_reads_local_weights_only(tmp_path: Path):
    from torchvision.models import vgg19

    from datakit.nn.losses import VGGPerceptualLoss, perceptual_loss

    torch.manual_seed(0)
    with torch.device("meta"):
        features = vgg19(weights=None).features[:36]
    features = features.to_empty(device="cpu")
    for p in features.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "vgg19_features.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    loss = perceptual_loss(str(path))
    assert isinstance(loss, VGGPerceptualLoss)
    x = torch.rand(1, 3, 32, 32)
    assert loss(x, x).item() == 0.0 and loss(x, x.flip(-1)).item() > 0.0
    assert isinstance(perceptual_loss(None), PyramidPerceptualLoss)
    with pytest.raises(ModelError, match="file not found"):
        perceptual_loss(str(tmp_path / "none.pth"))
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(ModelError, match="not VGG19 weights"):
        perceptual_loss(str(tmp_path / "other.pth"))


# ----------------------------------------------------------------------------------------------- config


def test_config_defaults_files_and_errors(tmp_path: Path):
    c = build_config(None, {"model": "hdcfm", "data": ["d"]})
    assert (c.crop, c.steps, c.lr, c.lr_gamma, c.resolved_loss()) == (480, 1_000_000, 5e-4, 0.5, "l1")
    assert c.milestones() == [200_000, 400_000, 600_000, 800_000]
    d = build_config(None, {"model": "dslnet", "data": ["d"]})
    assert d.milestones()[:4] == [50_000, 100_000, 150_000, 190_000] and d.steps == 350_000
    assert build_config(None, {"model": "kpnmfi", "data": ["d"]}).resolved_loss() == "kpnmfi"
    toml = tmp_path / "c.toml"
    toml.write_text('model = "agcm"\ndata = ["x"]\nsteps = 7\ncrop = 64\n[model_args]\nnf = 16\n')
    c = build_config(toml, {"steps": 9})
    assert (c.model, c.steps, c.crop, c.model_args) == ("agcm", 9, 64, {"nf": 16})
    (tmp_path / "bad.toml").write_text('model = "agcm"\ndata = ["x"]\nstepz = 3\n')
    with pytest.raises(RecipeError, match="unknown config key 'stepz'"):
        build_config(tmp_path / "bad.toml")
    (tmp_path / "bad.json").write_text('{"model": "agcm", "data": ["x"], "lr": "fast"}')
    with pytest.raises(RecipeError, match="'lr': expected a number"):
        build_config(tmp_path / "bad.json")
    with pytest.raises(RecipeError, match="must be >= 8"):
        build_config(None, {"model": "agcm", "data": ["x"], "crop": 4})
    with pytest.raises(RecipeError, match="no model"):
        build_config(None, {"data": ["x"]})


# ----------------------------------------------------------------------------------------------- training


def _cfg(root: Path, **kw):
    base = {"model": "agcm", "data": [str(root)], "steps": 6, "batch": 4, "crop": 24, "lr": 2e-3,
            "num_workers": 0, "val_every": 3, "checkpoint_every": 100, "log_every": 1, "threads": 1}  # fmt: skip
    base.update(kw)
    return base


def _final_state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_resume_continues_exactly(data_root: Path, tmp_path: Path):
    # AGCM has dropout: exact continuation needs the RNG states as well as the data stream.
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(resolve_config(straight, None, _cfg(data_root)), straight, progress=False)
    train(resolve_config(split, None, _cfg(data_root, steps=3)), split, progress=False)
    with pytest.raises(OutputExistsError):
        resolve_config(split, None, _cfg(data_root))
    with pytest.raises(RecipeError, match="'lr' cannot change"):
        resolve_config(split, None, {"steps": 6, "lr": 1e-3}, resume=True)
    cfg = resolve_config(split, None, {"steps": 6, "num_workers": 1}, resume=True)  # workers may change
    summary = train(cfg, split, resume=True, progress=False)
    assert summary["steps"] == 6
    a, b = _final_state(straight), _final_state(split)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    records = [json.loads(x) for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert (split / "curve.png").is_file() and cv2.imread(str(split / "curve.png")).shape == (520, 900, 3)


def test_short_training_lowers_validation_loss_then_eval(data_root: Path, tmp_path: Path, capsys):
    run = tmp_path / "run"
    args = ["train", "--model", "resnet", "--data", str(data_root), "--out", str(run), "--steps", "40",
            "--batch", "4", "--crop", "32", "--lr", "2e-3", "--workers", "0", "--no-progress", "--config"]  # fmt: skip
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model_args": {"nf": 16, "blocks": 2}, "val_every": 5, "threads": 1,
                               "checkpoint_every": 20}))  # fmt: skip
    assert main([*args, str(cfg)]) == 0
    vals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_l1"] for r in vals if r["kind"] == "val"]
    assert len(vals) == 8
    assert vals[-1] < 0.7 * vals[0], vals
    capsys.readouterr()
    ckpt = run / "checkpoints" / "last.pt"
    assert main(["eval", "--checkpoint", str(ckpt), "--data", str(data_root), "--tile", "24", "--overlap", "8",
                 "--threads", "1", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "resnet" and result["samples"] == 3 and result["frames"] == 9
    m = result["metrics"]
    assert 10 < m["psnr"] < 60 and 0 < m["ssim"] <= 1 and 0 < m["sr_sim"] <= 1 and m["delta_e_itp"] > 0
    assert m["temporal"] is not None and m["temporal"] >= 0
    # the classical conversion is the default model; the table has the papers' columns
    assert main(["eval", "--data", str(data_root), "--limit", "1", "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert "classical" in table and "PSNR↑" in table and "ΔE_ITP↓" in table


def test_eval_checkpoint_errors_are_one_line(data_root: Path, tmp_path: Path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": [1, 2, 3]}, foreign)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for ckpt, message in ((tmp_path / "missing.pt", "checkpoint not found"), (foreign, "not a datakit checkpoint"),
                          (junk, "not a readable PyTorch checkpoint")):  # fmt: skip
        assert main(["eval", "--model", "agcm", "--checkpoint", str(ckpt), "--data", str(data_root)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    with pytest.raises(ModelError, match="pass --checkpoint"):
        load_model("hdcfm")
    state = tmp_path / "agcm_state.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, state)
    with pytest.raises(ModelError, match="do not fit"):
        load_model("agcm", state)


def test_pdcg_trains_with_substitute_perceptual_loss_and_loads_as_pipeline(data_root: Path, tmp_path: Path):
    run = tmp_path / "pdcg"
    summary = train(resolve_config(run, None, _cfg(data_root, model="pdcg", steps=2, val_every=2, crop=32)), run,
                    progress=False)  # fmt: skip
    assert summary["steps"] == 2 and summary["val_l1"] is not None
    model, name, info = load_model(None, run / "checkpoints" / "last.pt")
    assert name == "pdcg" and info["base_model"] == "classical"
    sdr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        out = model(sdr)
    assert out.shape == (1, 3, 16, 16) and torch.isfinite(out).all()
    with pytest.raises(RecipeError, match=">= 32"):
        train(resolve_config(tmp_path / "small", None, _cfg(data_root, model="pdcg", crop=16)), tmp_path / "small")


def test_ddp_two_cpu_processes_with_gloo(data_root: Path, tmp_path: Path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
           "-m", "datakit", "train", "--model", "agcm", "--data", str(data_root), "--out", str(run),
           "--steps", "4", "--batch", "4", "--crop", "24", "--workers", "0", "--device", "cpu", "--no-progress",
           "--json"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["world_size"] == 2 and summary["steps"] == 4
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # ranks draw their own dropout
