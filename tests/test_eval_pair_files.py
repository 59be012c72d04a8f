"""``datakit eval`` finds a shipped checkpoint from ``--model`` alone and scores plain HDF5 pair files; a file in
another layout is refused with one line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from datakit.cli import main
from datakit.convert import shipped_checkpoint
from tests.checkpoints import inference_checkpoint

ROOT = Path(__file__).resolve().parent.parent
HDRI = next(
    (
        p / "shared" / "data" / "hdri"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "data" / "hdri").is_dir()
    ),
    ROOT.parent / "shared" / "data" / "hdri",
)


def _pairs(names: list[str], height: int = 48, width: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """SDR and HDR codes of CC0 photographs, ``(N, H, W, 3)``: SDR exposed at 3x the mean, clipped, BT.709 OETF;
    HDR the same scene at 100 cd/m^2 x (value / mean), BT.2020 primaries, SMPTE ST 2084 PQ."""
    import cv2

    from datakit.color.gamut import convert_gamut
    from datakit.color.transfer import bt709_oetf, st2084_inverse_eotf
    from datakit.io.images import read_hdr_image

    sdr, hdr = [], []
    for name in names:
        if not (HDRI / name).is_file():
            pytest.skip("../shared/data/hdri is not beside the repository")
        image = read_hdr_image(HDRI / name)
        rgb = cv2.resize(image.rgb_linear, (width, height), interpolation=cv2.INTER_AREA)
        rgb = np.maximum(convert_gamut(rgb, image.primaries, "bt709"), 0.0) / rgb.mean()
        sdr.append(np.round(bt709_oetf(np.clip(rgb / 3.0, 0.0, 1.0)) * 255).astype(np.uint8))
        nits = np.clip(convert_gamut(rgb * 100.0, "bt709", "bt2020"), 0.0, 10000.0)
        hdr.append(np.round(st2084_inverse_eotf(nits) * 65535).astype(np.uint16))
    return np.stack(sdr), np.stack(hdr)


def _write(path: Path, **arrays: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        for name, value in arrays.items():
            f.create_dataset(name, data=value)
    return path


def _eval_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["eval", *args, "--json", "--threads", "2"]) == 0
    return json.loads(capsys.readouterr().out)


def _psnr(pred_pq: np.ndarray, truth_codes: np.ndarray) -> float:
    """PSNR on PQ codes after the uint16 round trip (data range 1), computed here from its definition."""
    pred = np.round(np.clip(pred_pq, 0.0, 1.0) * 65535) / 65535
    mse = float(np.mean((pred - truth_codes / 65535.0) ** 2))
    return 10.0 * np.log10(1.0 / mse)


def _models_folder(root, name: str):
    """A ``DATAKIT_MODELS`` folder holding ``NAME/NAME.pt``: the architecture with perturbed weights."""
    inference_checkpoint(root / name / f"{name}.pt", name, perturb=0.05, seed=3)
    return root


def test_eval_model_name_alone_scores_the_shipped_checkpoint(tmp_path, capsys, monkeypatch) -> None:
    import torch

    from datakit.nn.train import load_model

    name = "agcm"
    monkeypatch.setenv("DATAKIT_MODELS", str(_models_folder(tmp_path / "models", name)))
    checkpoint = shipped_checkpoint(name)
    assert checkpoint == tmp_path / "models" / name / f"{name}.pt"
    sdr, hdr = _pairs(["courtyard.exr", "sunset.exr"])
    pairs = _write(tmp_path / "pairs.h5", sdr=sdr[:, None].repeat(2, axis=1), hdr=hdr[:, None].repeat(2, axis=1))
    result = _eval_json(capsys, "--model", name, "--data", str(pairs))
    assert result["checkpoint"] == str(checkpoint) and result["model"] == name
    assert result["samples"] == 2 and result["frames"] == 4
    assert [s["sample_id"] for s in result["per_sample"]] == ["pairs.h5#0", "pairs.h5#1"]
    same = _eval_json(capsys, "--model", name, "--checkpoint", str(checkpoint), "--data", str(pairs))
    assert same["metrics"] == result["metrics"]
    model = load_model(name, checkpoint)[0]
    with torch.no_grad():
        pred = model(torch.from_numpy(sdr).permute(0, 3, 1, 2).float() / 255.0).permute(0, 2, 3, 1).numpy()
    for i, row in enumerate(result["per_sample"]):
        assert row["psnr"] == pytest.approx(_psnr(pred[i], hdr[i]), abs=0.01)
    assert result["per_sample"][0]["psnr"] != pytest.approx(result["per_sample"][1]["psnr"], abs=0.1)


def test_eval_scores_single_frame_pair_files_in_order(tmp_path, capsys) -> None:
    """``(N, H, W, 3)`` arrays: one frame per sample, no temporal figure; the classical mapping scored against its
    own output is near-perfect, against the photographs' grade it is not."""
    import torch

    from datakit.nn.registry import create_model

    sdr, hdr = _pairs(["night.exr", "forest.exr", "studio.exr"])
    with torch.no_grad():
        own = create_model("classical")(torch.from_numpy(sdr).permute(0, 3, 1, 2).float() / 255.0)
    own_codes = np.round(np.clip(own.permute(0, 2, 3, 1).numpy(), 0, 1) * 65535).astype(np.uint16)
    graded = _write(tmp_path / "graded.hdf5", sdr=sdr, hdr=hdr)
    itself = _write(tmp_path / "itself.h5", sdr=sdr, hdr=own_codes)
    result = _eval_json(capsys, "--data", str(graded), str(itself), "--limit", "5")
    assert result["model"] == "classical" and result["samples"] == 5 and result["frames"] == 5
    assert result["metrics"]["temporal"] is None
    rows = result["per_sample"]
    assert [r["sample_id"] for r in rows] == [
        "graded.hdf5#0",
        "graded.hdf5#1",
        "graded.hdf5#2",
        "itself.h5#0",
        "itself.h5#1",
    ]
    assert all(r["psnr"] is None or r["psnr"] > 80 for r in rows[3:])  # identical codes: infinite PSNR (null)
    assert all(r["psnr"] < 40 for r in rows[:3])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"sdr": np.zeros((2, 16, 16, 3), np.uint8)}, "no 'hdr' array"),
        (
            {"sdr": np.zeros((2, 16, 16, 3), np.float32), "hdr": np.zeros((2, 16, 16, 3), np.uint16)},
            "'sdr' is float32, expected uint8",
        ),
        (
            {"sdr": np.zeros((2, 16, 16, 3), np.uint8), "hdr": np.zeros((2, 16, 16, 3), np.uint8)},
            "'hdr' is uint8, expected uint16",
        ),
        (
            {"sdr": np.zeros((2, 16, 16), np.uint8), "hdr": np.zeros((2, 16, 16), np.uint16)},
            "'sdr' has shape (2, 16, 16)",
        ),
        (
            {"sdr": np.zeros((2, 16, 16, 4), np.uint8), "hdr": np.zeros((2, 16, 16, 4), np.uint16)},
            "expected sdr (N, T, H, W, 3)",
        ),
        ({"sdr": np.zeros((2, 16, 16, 3), np.uint8), "hdr": np.zeros((2, 16, 18, 3), np.uint16)}, "differ in shape"),
        (
            {"sdr": np.zeros((0, 16, 16, 3), np.uint8), "hdr": np.zeros((0, 16, 16, 3), np.uint16)},
            "has shape (0, 16, 16, 3)",
        ),
    ],
)
def test_eval_refuses_a_pair_file_in_another_layout(tmp_path, capsys, arrays, message) -> None:
    path = _write(tmp_path / "bad.h5", **arrays)
    assert main(["eval", "--data", str(path)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""


def test_eval_refuses_what_is_not_an_hdf5_pair_file(tmp_path, capsys) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("not HDF5\n")
    assert main(["eval", "--data", str(text)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert main(["eval", "--data", str(tmp_path / "missing.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["eval", "--model", "resnet", "--data", str(text)]) == 2  # no shipped resnet checkpoint
    assert "pass --checkpoint" in capsys.readouterr().err


def test_eval_table_names_the_pair_file_not_a_split(tmp_path, capsys) -> None:
    sdr, hdr = _pairs(["city.exr"], 24, 40)
    path = _write(tmp_path / "one.h5", sdr=sdr, hdr=hdr)
    assert main(["eval", "--data", str(path), "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "1 samples (1 frames) of 1 pair file at full resolution" in out and "split" not in out
