"""Shared test fixtures: encoded demo pairs, rendered once per test session.

``demo_pair`` is the default :class:`datakit.samples.DemoSpec` (HDR10 512x288 24 fps, SDR 448x336
letterboxed, offset 6 frames). The other pairs are smaller variants used by the alignment tests; each
is rendered on first use only.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from datakit.samples import DemoPair

SMALL = {"hdr_size": (256, 144), "preset": "ultrafast"}


def hable_sdr_chain(rgb_pq: np.ndarray) -> np.ndarray:
    """A grade unlike the demo's: PQ BT.2020 R'G'B' -> BT.709 R'G'B' signal in [0, 1] (float32).

    SMPTE ST 2084 EOTF, exposure 1/40 (vs 1/100), Hable's filmic curve per channel (white point 11.2),
    saturation x1.3 around BT.2020 luminance, BT.2020 -> BT.709 primaries with clipping, then the
    ITU-R BT.709 OETF (the demo uses the BT.1886 inverse EOTF and a Reinhard curve on luminance).
    """
    from datakit.color.gamut import convert_gamut, luminance_weights
    from datakit.color.transfer import bt709_oetf, st2084_eotf

    def hable(x: np.ndarray) -> np.ndarray:
        a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
        return (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f

    linear = st2084_eotf(np.asarray(rgb_pq, np.float32)) / np.float32(40.0)
    mapped = hable(linear) / hable(np.float32(11.2))
    lum = mapped @ luminance_weights("bt2020").astype(np.float32)
    mapped = np.maximum(lum[..., None] + 1.3 * (mapped - lum[..., None]), 0.0)
    display = np.clip(convert_gamut(mapped, "bt2020", "bt709"), 0.0, 1.0)
    return np.clip(bt709_oetf(display), 0.0, 1.0).astype(np.float32)


@pytest.fixture(scope="session")
def demo_pair(tmp_path_factory: pytest.TempPathFactory) -> DemoPair:
    """The default demo pair (``DemoSpec()``) with its ``truth.json``."""
    from datakit.samples import DemoSpec, make_demo_pair

    return make_demo_pair(tmp_path_factory.mktemp("demo_default"), DemoSpec())


@pytest.fixture(scope="session")
def demo_pair_regraded(tmp_path_factory: pytest.TempPathFactory) -> DemoPair:
    """Small pair whose SDR uses :func:`hable_sdr_chain`, pillarboxed and larger than the HDR (304x162)."""
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(sdr_size=(304, 162), offset_frames=9, **SMALL)
    return make_demo_pair(tmp_path_factory.mktemp("demo_regraded"), spec, sdr_chain=hable_sdr_chain)


@pytest.fixture(scope="session")
def demo_pair_25fps(tmp_path_factory: pytest.TempPathFactory) -> DemoPair:
    """Small pair: HDR 24 fps, SDR 25 fps of the same scene times (same speed), same frame size."""
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(sdr_size=(256, 144), fps_sdr=Fraction(25), offset_frames=5, **SMALL)
    return make_demo_pair(tmp_path_factory.mktemp("demo_25fps"), spec)


@pytest.fixture(scope="session")
def demo_pair_dropped(tmp_path_factory: pytest.TempPathFactory) -> DemoPair:
    """Small letterboxed pair with four SDR frames missing (two of them adjacent)."""
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(sdr_size=(224, 168), offset_frames=4, dropped_sdr_frames=(20, 45, 46, 70), **SMALL)
    return make_demo_pair(tmp_path_factory.mktemp("demo_dropped"), spec)


@pytest.fixture(scope="session")
def demo_pair_other_title(tmp_path_factory: pytest.TempPathFactory) -> DemoPair:
    """Small pair rendered from another seed: same scene kinds, cuts and camera paths, different pictures."""
    from datakit.samples import DemoSpec, make_demo_pair

    spec = DemoSpec(sdr_size=(224, 168), seed=1, **SMALL)
    return make_demo_pair(tmp_path_factory.mktemp("demo_other_title"), spec)


# The fault tally (issue 12): every test marked ``@pytest.mark.fault(kind)`` is one case of a fault or a bad
# input. Its assertions are that the command gave one clear line with the right exit status and that nothing
# already written was lost; the summary counts the cases tried and passed per kind.
_FAULT_KINDS: dict[str, str] = {}
_FAULT_OUTCOMES: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is not None:
            _FAULT_KINDS[item.nodeid] = str(marker.args[0] if marker.args else marker.kwargs.get("kind", "other"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in _FAULT_KINDS:
        return
    if report.when == "call" or report.outcome != "passed":
        _FAULT_OUTCOMES.setdefault(report.nodeid, report.outcome)
        if report.outcome == "failed":
            _FAULT_OUTCOMES[report.nodeid] = "failed"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FAULT_OUTCOMES:
        return
    kinds = sorted(set(_FAULT_KINDS[nodeid] for nodeid in _FAULT_OUTCOMES))
    terminalreporter.section("fault tally")
    for kind in [*kinds, None]:
        outcomes = [o for n, o in _FAULT_OUTCOMES.items() if kind is None or _FAULT_KINDS[n] == kind]
        passed = outcomes.count("passed")
        failed = outcomes.count("failed")
        skipped = outcomes.count("skipped")
        label = kind or "all"
        terminalreporter.write_line(
            f"{label}: {len(outcomes)} cases tried, {passed} held (one clear line, right exit status, nothing lost), "
            f"{failed} broke, {skipped} could not be tried here"
        )
