"""Evaluate the shipped checkpoints on held-out data and write each model's ``metrics.json``.

Held-out data, rebuilt here when missing (both are the test splits of the data the checkpoints were trained on):

- ``data/synth-hdri``: ``datakit synth recipes/synthetic_hdri_scene.toml --images ../shared/data/hdri --out
  data/synth-hdri`` (seed 0: scene-light targets, the recipe before the mastering grade); its test split is the
  ``night`` image, never seen in training (12 clips of 3 and 10 frames, 256 px).
- ``demo-out/dataset``: ``datakit demo --out demo-out``; its test split is the ``demo-holdout`` pair (3 clips of
  10 full 512x288 frames).

For every model with ``models/NAME/NAME.pt`` it scores the checkpoint, the untrained architecture
(``--untrained``, seed 0) and the classical baseline with ``datakit.nn.evaluate.evaluate`` (the function behind
``datakit eval``), writes ``models/NAME/metrics.json`` and the model card ``models/NAME/README.md`` (its prose from
:data:`CARDS`, its training facts from ``models/NAME/training.json``, its tables from the scores).
Run from the repository root: ``python models/evaluate_shipped.py [NAME ...]``.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = {
    "synth-hdri (test split: night)": ROOT / "data" / "synth-hdri",
    "demo (test split: demo-holdout)": ROOT / "demo-out" / "dataset",
}
METRICS = ("psnr", "ssim", "sr_sim", "delta_e_itp", "temporal")


def ensure_held_out() -> None:
    from datakit.cli import main

    if not (HELD_OUT["synth-hdri (test split: night)"] / "manifest.jsonl").is_file():
        images = ROOT.parent / "shared" / "data" / "hdri"
        main(["synth", str(ROOT / "recipes" / "synthetic_hdri.toml"), "--images", str(images), "--out",
              str(HELD_OUT["synth-hdri (test split: night)"])])  # fmt: skip
    if not (HELD_OUT["demo (test split: demo-holdout)"] / "manifest.jsonl").is_file():
        main(["demo", "--out", str(ROOT / "demo-out")])


def score(name: str, checkpoint: Path | None, data: Path, untrained: bool = False) -> dict:
    from datakit.nn.evaluate import evaluate

    result = evaluate(name, checkpoint, [data], split="test", untrained=untrained, threads=2)
    per_sample = [{k: s[k] for k in ("sample_id", *METRICS) if k in s} for s in result["per_sample"]]
    return {k: result["metrics"][k] for k in METRICS} | {"samples": len(per_sample), "per_sample": per_sample}


CARDS = {
    "agcm": (
        "HDRTVNet's AGCM (Chen et al., ICCV 2021): a base network of 1x1 convolutions whose features are modulated "
        "by a global condition vector computed from the downsampled input. Global colour mapping only: no spatial "
        "context, so it cannot restore clipped highlights."
    ),
    "hdcfm": (
        "HDCFM's first stage (He et al., ACM MM 2022, ../shared/seeds/001): hierarchical global and local feature "
        "modulation and the dynamic context transform (decoupled dynamic filter with a dynamic GC-style context "
        "block). Where the paper is silent the layer details are our reading of it (see datakit/nn/models/hdcfm.py)."
    ),
    "kpnmfi": (
        "KPN-MFI (IJCAI 2022, ../shared/seeds/004): an encoder-decoder kernel prediction network with self-attention "
        "and the multi-frame interaction module; it predicts per-pixel kernels applied to the SDR input, three frames "
        "in, three out. Trained with the paper's tanh-L1 content loss and the inter-frame brightness consistency "
        "loss (neighbours aligned with OpenCV Farneback flow instead of the paper's LiteFlowNet3)."
    ),
}


CAVEATS = {
    "kpnmfi": (
        "\n\nThis checkpoint in particular is barely trained: 600 steps on 64 px crops moved a 3.4M-parameter model "
        "little (held-out figures close to, and on the demo pair below, the untrained architecture), and its "
        "per-pixel kernels overshoot the PQ range on unusual input (outputs below 0 and above 1 on noise; "
        "`datakit convert` clips to `--peak`). It is shipped so that the multi-frame path (three frames in, three "
        "out) can be loaded, evaluated and used by `datakit convert`, not for its pictures."
    ),
}


def table(rows: dict) -> str:
    lines = ["| model | PSNR (dB) | SSIM | SR-SIM | ΔE_ITP | temporal |", "|---|---|---|---|---|---|"]
    for row, m in rows.items():
        lines.append(
            f"| {row} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['sr_sim']:.4f} | {m['delta_e_itp']:.2f} | "
            f"{m['temporal']:.5f} |"
        )
    return "\n".join(lines)


def write_card(name: str, report: dict) -> None:
    import torch

    from datakit.nn.registry import count_parameters, create_model, model_spec

    spec = model_spec(name)
    shipped = torch.load(ROOT / "models" / name / f"{name}.pt", map_location="cpu", weights_only=True)
    int8 = bool(shipped.get("quantized"))
    storage = "int8 weights with per-channel float16 scales" if int8 else "float16 weights"
    training = json.loads((ROOT / "models" / name / "training.json").read_text())
    params = count_parameters(create_model(name))
    paper = f"{spec.paper_params:,}" if spec.paper_params else "not given"
    verdicts = []
    for label, rows in report["data"].items():
        mine, base = rows[f"{name} (shipped)"], rows["classical"]
        better = [
            label_ for m, label_ in (("psnr", "PSNR"), ("ssim", "SSIM"), ("sr_sim", "SR-SIM")) if mine[m] > base[m]
        ]
        better += ["ΔE_ITP"] if mine["delta_e_itp"] < base["delta_e_itp"] else []
        verdicts.append(f"on {label.split(' ')[0]} it beats the classical baseline in {', '.join(better) or 'nothing'}")
    verdict = "On the held-out data above, " + "; ".join(verdicts) + "."
    tables = "\n\n".join(f"**{label}** ({next(iter(rows.values()))['samples']} samples)\n\n{table(rows)}"
                           for label, rows in report["data"].items())  # fmt: skip
    text = f"""# {name}: shipped checkpoint

{CARDS[name]}

- Parameters: {params:,} (paper: {paper}); input frames: {spec.frames}.
- File: `{name}.pt`, {storage} ({(ROOT / "models" / name / f"{name}.pt").stat().st_size // 1024} KiB, under
  the repository's 5 MB limit), datakit checkpoint format (loaded as float32; the figures below use these
  weights). `datakit convert IN OUT --model {name}` finds it by name.
- Trained {training["steps"]} steps ({training["seconds"] / 60:.0f} min) on {training["machine"]}, {training["threads"]}
  torch thread(s), CPU only, batch {training["batch"]}, {training["crop"]} px crops, Adam lr 5e-4 halved every
  {training["step_every"]} steps.

## Data it saw

Only what the project's own recipes make, rebuilt by these commands from the repository root:

```bash
datakit synth recipes/synthetic_hdri_scene.toml --images ../shared/data/hdri --out data/synth-hdri   # seed 0
datakit demo --out demo-out                                                                   # demo-out/dataset
datakit train --config models/{name}/train.toml --out runs/{name} --threads {training["threads"]}
python models/export_checkpoint.py runs/{name}/checkpoints/last.pt models/{name}/{name}.pt{" --int8" if int8 else ""}
python models/evaluate_shipped.py {name}                                                     # this card
```

Training split: 84 synthetic clips from seven CC0 HDR environment maps (1024x512 equirectangular images, warped
into 3- and 10-frame clips of 256x256 and degraded by the randomized chain of `datakit.synth`: five tone-mapping
operators, gamut mapping, four SDR transfers, noise, blur, H.264) and 12 tiles of the procedural demo pair.
Held out: the `night` image (12 clips) and the `demo-holdout` pair (3 full-frame clips).

## Figures (`datakit eval`, PQ code values, SSIM data range 1.0, tiles 512 px)

{tables}

The untrained row is the same architecture at its seeded initialization (`datakit eval --untrained`); classical is
BT.1886 decoding, BT.709 -> BT.2020 and SDR white at 203 cd/m^2 (BT.2408), no learning.

## What not to expect

This is a reference checkpoint that shows the training path works end to end on a CPU in minutes, not a model to
grade real footage with: it saw {training["steps"]} steps over 96 training clips (84 synthetic ones from seven
images, 12 demo tiles), where
the papers train for 10^5-10^6 iterations on thousands of real HDR10/SDR frames. {verdict} Do not compare these
figures with the papers' HDRTV1K tables (other data, other scale); retrain on real pairs built with `datakit build`
for real use.{CAVEATS.get(name, "")}
"""
    card = ROOT / "models" / name / "README.md"
    kept = card.read_text().partition("\n## CPU speed\n") if card.is_file() else ("", "", "")
    if kept[1]:  # the speed section comes from bench/bench_convert.py, not from this evaluation: keep it
        text = text.rstrip("\n") + "\n" + kept[1] + kept[2]
    card.write_text(text)


def main(names: list[str]) -> None:
    ensure_held_out()
    names = names or sorted(p.parent.name for p in (ROOT / "models").glob("*/*.pt") if p.stem == p.parent.name)
    for name in names:
        checkpoint = ROOT / "models" / name / f"{name}.pt"
        report: dict = {"model": name, "checkpoint": checkpoint.name, "machine": platform.platform(), "data": {}}
        for label, data in HELD_OUT.items():
            rows = {
                f"{name} (shipped)": score(name, checkpoint, data),
                f"{name} (untrained)": score(name, None, data, untrained=True),
                "classical": score("classical", None, data),
            }
            report["data"][label] = rows
            print(f"\n{name} on {label}\n")
            print("| model | PSNR (dB) | SSIM | SR-SIM | ΔE_ITP | temporal |")
            print("|---|---|---|---|---|---|")
            for row, m in rows.items():
                print(f"| {row} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['sr_sim']:.4f} | {m['delta_e_itp']:.2f} | "
                      f"{m['temporal']:.5f} |")  # fmt: skip
        (ROOT / "models" / name / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        write_card(name, report)


if __name__ == "__main__":
    main(sys.argv[1:])
