"""Training losses of the reference models, on SMPTE ST 2084 PQ BT.2020 R'G'B' code values.

- :func:`l1_loss`: mean absolute error on PQ codes, the default (HDCFM, DSLNet, HDRTVNet).
- :class:`KPNMFILoss` (KPN-MFI, IJCAI 2022, Sec. 3.3): ``L = L_C + alpha L_T`` with ``alpha = 0.05``.
  ``L_C`` is the L1 distance of ``tanh`` of output and ground truth, summed over the three frames (tanh compresses
  large codes so bright and dark regions weigh more evenly). ``L_T`` is the inter-frame brightness consistency of
  :class:`BrightnessConsistencyLoss`.
- PDCG (HDCFM's stage 2, ACM MM 2022, Eq. 4): ``L_HG = 1.0 L1 + 0.5 L_P + 0.005 L_GAN`` with a perceptual term from
  :func:`perceptual_loss` and the non-saturating patch-GAN terms :func:`generator_gan_loss` /
  :func:`discriminator_gan_loss`.

Every tensor here is ``rgb_pq`` shaped ``(B, 3, H, W)`` or ``(B, T, 3, H, W)`` unless stated.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datakit.errors import ModelError

__all__ = [
    "BrightnessConsistencyLoss",
    "KPNMFILoss",
    "PyramidPerceptualLoss",
    "VGGPerceptualLoss",
    "discriminator_gan_loss",
    "farneback_flow",
    "generator_gan_loss",
    "l1_loss",
    "perceptual_loss",
    "pq_luma",
    "tanh_l1_loss",
    "warp",
]

_LUMA = (0.2627, 0.6780, 0.0593)  # ITU-R BT.2020 / BT.2100 non-constant-luminance weights, applied to PQ R'G'B'


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of PQ code values."""
    return (pred - target).abs().mean()


def tanh_l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """KPN-MFI content loss ``sum_i || tanh(H^_i) - tanh(H_i) ||_1``: per-frame mean L1, summed over frames.

    ``(B, 3, H, W)`` inputs count as one frame.
    """
    d = (torch.tanh(pred) - torch.tanh(target)).abs()
    if d.dim() == 5:
        return d.mean(dim=(0, 2, 3, 4)).sum()
    return d.mean()


def pq_luma(rgb_pq: torch.Tensor) -> torch.Tensor:
    """BT.2020 non-constant-luminance luma of PQ R'G'B' ``(..., 3, H, W)`` -> ``(..., 1, H, W)``."""
    r, g, b = rgb_pq.unbind(dim=-3)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(-3)


# ------------------------------------------------------------------------------ optical flow and warping


def farneback_flow(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Dense flow ``(H, W, 2)`` (x, y) with ``reference(y, x) ~ other(y + fy, x + fx)`` (OpenCV Farneback).

    Inputs: uint8 grey images ``(H, W)``. Parameters: pyramid scale 0.5, 3 levels, 15-pixel window, 3 iterations,
    polynomial neighbourhood 5 with sigma 1.2 (OpenCV's documented example values).
    """
    import cv2

    return cv2.calcOpticalFlowFarneback(reference, other, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def warp(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` ``(B, C, H, W)`` at ``(x + fx, y + fy)`` (bilinear, differentiable in ``image``).

    ``flow``: ``(B, H, W, 2)`` in pixels, as :func:`farneback_flow`. Returns the warped image and a validity mask
    ``(B, 1, H, W)`` (1 where the sample point lies inside the frame).
    """
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=image.dtype, device=image.device),
        torch.arange(w, dtype=image.dtype, device=image.device),
        indexing="ij",
    )
    px = xs + flow[..., 0].to(image.dtype)
    py = ys + flow[..., 1].to(image.dtype)
    grid = torch.stack([2.0 * px / max(w - 1, 1) - 1.0, 2.0 * py / max(h - 1, 1) - 1.0], dim=-1)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    valid = ((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)).to(image.dtype).unsqueeze(1)
    return warped, valid


# ------------------------------------------------------------------------------ KPN-MFI brightness consistency


def _gaussian_taps(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    r = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2.0
    g = torch.exp(-(r * r) / (2.0 * sigma * sigma))
    return g / g.sum()


def _blur(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable blur of ``(N, 1, H, W)`` with reflected borders."""
    k = taps.numel()
    p = k // 2
    x = F.pad(x, (p, p, p, p), mode="replicate")
    x = F.conv2d(x, taps.view(1, 1, 1, k))
    return F.conv2d(x, taps.view(1, 1, k, 1))


class BrightnessConsistencyLoss(nn.Module):
    """KPN-MFI inter-frame brightness consistency ``L_T`` for three-frame outputs ``(B, 3, 3, H, W)``.

    1. Motion: Farneback flow (:func:`farneback_flow`) from the ground-truth centre frame to each neighbour, on
       8-bit PQ luma (computed without gradient; the paper used LiteFlowNet3 on the predictions, we use OpenCV's
       classical flow so that no network weights are needed). The predicted neighbours are warped onto the centre
       frame with it (:func:`warp`); pixels whose source falls outside the frame are ignored.
    2. Illumination (Retinex): the PQ luma is taken to a log domain scaled to 0..255,
       ``u = 255 log(1 + 255 Y) / log(256)``, and smoothed by a bilateral filter with the paper's OpenCV parameters
       (d = 9, sigma_color 10 in those units, sigma_space 5; round window and replicated borders as
       ``cv2.bilateralFilter``, which it matches). The range weights are computed from the detached values (an
       image-adaptive smoothing; gradients flow through the values being averaged).
    3. Gaussian pyramid of ``levels`` = 5 layers (9-tap Gaussian, sigma 1.7, then subsampling by 2); at layer ``j``
       the masked mean L1 between each warped neighbour's illumination and the centre's is weighted by
       ``gammas[j]`` = (1/16, 1/8, 1/4, 1/2, 1) from full resolution to the coarsest layer, and summed.
    """

    def __init__(
        self,
        levels: int = 5,
        gammas: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
        *,
        bilateral_d: int = 9,
        sigma_space: float = 5.0,
        sigma_color: float = 10.0,
        pyramid_ksize: int = 9,
        pyramid_sigma: float = 1.7,
    ) -> None:
        super().__init__()
        if len(gammas) != levels:
            raise ValueError("one gamma per pyramid level is required")
        self.levels, self.gammas = levels, tuple(gammas)
        self.bilateral_d, self.sigma_space, self.sigma_color = bilateral_d, sigma_space, sigma_color
        self.pyramid_ksize, self.pyramid_sigma = pyramid_ksize, pyramid_sigma

    def illumination(self, rgb_pq: torch.Tensor) -> torch.Tensor:
        """Log-domain bilateral illumination ``(N, 1, H, W)`` of PQ frames ``(N, 3, H, W)``."""
        u = torch.log1p(255.0 * pq_luma(rgb_pq).clamp(min=0.0)) * (255.0 / math.log(256.0))
        d = self.bilateral_d
        r = d // 2
        n, _, h, w = u.shape
        patches = F.unfold(F.pad(u, (r, r, r, r), mode="replicate"), d)  # (N, d*d, H*W)
        with torch.no_grad():
            offsets = torch.arange(d, dtype=u.dtype, device=u.device) - r
            dist2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
            spatial = torch.exp(-dist2 / (2.0 * self.sigma_space**2)) * (dist2 <= r * r)  # round window, as OpenCV
            diff = patches - u.reshape(n, 1, h * w)
            weights = torch.exp(diff.square_().mul_(-1.0 / (2.0 * self.sigma_color**2))).mul_(spatial.reshape(1, -1, 1))
            weights.div_(weights.sum(dim=1, keepdim=True))
        return (patches * weights).sum(dim=1).reshape(n, 1, h, w)

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = _gaussian_taps(self.pyramid_ksize, self.pyramid_sigma, x)
        layers = [x]
        for _ in range(self.levels - 1):
            x = _blur(x, taps)[..., ::2, ::2]
            layers.append(x)
        return layers

    @staticmethod
    def flows(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Farneback flows ``(B, H, W, 2)`` from the ground-truth centre frame to its previous and next frames."""
        grey = (pq_luma(target.detach().float()).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
        prev = np.stack([farneback_flow(g[1, 0], g[0, 0]) for g in grey])
        nxt = np.stack([farneback_flow(g[1, 0], g[2, 0]) for g in grey])
        return torch.from_numpy(prev).to(target.device), torch.from_numpy(nxt).to(target.device)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.dim() != 5 or pred.shape[1] != 3:
            raise ValueError(f"brightness consistency needs three-frame outputs (B, 3, 3, H, W), got {pred.shape}")
        flow_prev, flow_next = self.flows(target)
        pred = pred.float()
        warped_prev, valid_prev = warp(pred[:, 0], flow_prev)
        warped_next, valid_next = warp(pred[:, 2], flow_next)
        b = pred.shape[0]
        illum = self.illumination(torch.cat([pred[:, 1], warped_prev, warped_next]))
        masks = torch.cat([valid_prev, valid_next])
        centre, neighbours = illum[:b], illum[b:]
        total = pred.new_zeros(())
        for gamma, c, n, m in zip(
            self.gammas, self._pyramid(centre), self._pyramid(neighbours), self._pyramid(masks), strict=True
        ):
            c2 = torch.cat([c, c])
            total = total + gamma * ((n - c2).abs() * m).sum() / m.sum().clamp(min=1.0) * 2.0
        return total


class KPNMFILoss(nn.Module):
    """KPN-MFI ``L = L_C + alpha L_T`` (tanh-L1 content + brightness consistency), ``alpha = 0.05``."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = alpha
        self.consistency = BrightnessConsistencyLoss()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = tanh_l1_loss(pred, target)
        if self.alpha > 0 and pred.dim() == 5 and pred.shape[1] == 3:
            loss = loss + self.alpha * self.consistency(pred, target)
        return loss


# ------------------------------------------------------------------------------ perceptual and adversarial


class VGGPerceptualLoss(nn.Module):
    """L1 between VGG19 features (relu1_2, relu2_2, relu3_4, relu4_4, relu5_4), averaged over the five layers.

    The ImageNet VGG19 weights are read from a local file (a torchvision ``vgg19`` state dict, full model or
    ``features`` only); nothing is downloaded. PQ code values are normalized with the ImageNet mean and standard
    deviation, as HDCFM's PDCG applies the ImageNet network to HDR frames.
    """

    LAYERS = (3, 8, 17, 26, 35)

    def __init__(self, weights_path: str | os.PathLike[str]) -> None:
        super().__init__()
        from torchvision.models import vgg19

        if not os.path.isfile(weights_path):
            raise ModelError(f"vgg19_weights: {weights_path}: file not found")
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except Exception as error:  # any unreadable file is the user's input error
            raise ModelError(f"vgg19_weights: {weights_path}: not a torch state dict ({error})") from None
        if isinstance(state, dict) and any(k.startswith("features.") for k in state):
            state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
        with torch.device("meta"):  # architecture only: the weights come from the file (no costly random init)
            features = vgg19(weights=None).features[: self.LAYERS[-1] + 1]
        features = features.to_empty(device="cpu")
        try:
            features.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as error:
            raise ModelError(
                f"vgg19_weights: {weights_path}: not VGG19 weights ({str(error).splitlines()[0]})"
            ) from None
        for p in features.parameters():
            p.requires_grad_(False)
        self.features = features.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        super().train(mode)
        self.features.eval()  # frozen feature extractor
        return self

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = (pred - self.mean) / self.std
        y = (target - self.mean) / self.std
        loss = pred.new_zeros(())
        for i, layer in enumerate(self.features):
            x, y = layer(x), layer(y)
            if i in self.LAYERS:
                loss = loss + (x - y).abs().mean()
        return loss / len(self.LAYERS)


class PyramidPerceptualLoss(nn.Module):
    """Substitute perceptual loss when no VGG19 weights are given: fixed, weight-free multi-scale structure terms.

    L1 between the Laplacian pyramids (5 levels, 5-tap binomial kernel) of output and target plus L1 between their
    Sobel gradient magnitudes at each level, averaged over levels. Like a VGG feature loss it penalizes lost edges
    and texture more than a smooth offset, but it is not a learned measure: results with it are not comparable to
    the paper's PDCG numbers.
    """

    def __init__(self, levels: int = 5) -> None:
        super().__init__()
        self.levels = levels
        self.register_buffer("taps", torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0)
        sobel = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 8.0
        self.register_buffer("sobel", torch.stack([sobel, sobel.t()]).unsqueeze(1))

    def _gradient(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = F.conv2d(F.pad(x.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate"), self.sobel)
        return torch.sqrt(g.pow(2).sum(dim=1) + 1e-12).reshape(n, c, h, w)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = torch.cat([pred, target]).float()
        n, c = x.shape[:2]
        b = pred.shape[0]
        taps = self.taps.to(x.dtype)
        loss = x.new_zeros(())
        count = 0
        for level in range(self.levels):
            flat = x.reshape(n * c, 1, *x.shape[-2:])
            last = level == self.levels - 1 or min(flat.shape[-2:]) < 8
            low = flat if last else _blur(flat, taps)
            band = (flat if last else flat - low).reshape(n, c, *flat.shape[-2:])
            grad = self._gradient(x)
            loss = loss + (band[:b] - band[b:]).abs().mean() + (grad[:b] - grad[b:]).abs().mean()
            count += 1
            if last:
                break
            low = low[..., ::2, ::2]
            x = low.reshape(n, c, *low.shape[-2:])
        return loss / count


def perceptual_loss(vgg19_weights: str | os.PathLike[str] | None) -> nn.Module:
    """:class:`VGGPerceptualLoss` from a local weights file, else the documented :class:`PyramidPerceptualLoss`."""
    return VGGPerceptualLoss(vgg19_weights) if vgg19_weights else PyramidPerceptualLoss()


def generator_gan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: BCE of the discriminator's patch logits on generated frames against 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_gan_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """PatchGAN discriminator loss: ``0.5 (BCE(real, 1) + BCE(fake, 0))`` over all patches."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return 0.5 * (real + fake)
