"""Synthetic stand-in for the Kaggle "Galaxy Zoo - The Galaxy Challenge" training set.

Each galaxy is drawn from a small physical model (Sérsic ellipticals; exponential disks with
bulges, bars, logarithmic spiral arms, star-forming knots, rings and dust lanes; irregulars),
observed like an SDSS gri cutout (Moffat PSF, sky + Poisson noise, foreground stars, neighbours,
Lupton et al. 2004 asinh colour stretch, JPEG) and voted on by a simulated Galaxy Zoo crowd whose
answers depend on what is visible in the image. The output has the exact Kaggle layout:
``training_solutions_rev1.csv`` plus ``images_training_rev1/<GalaxyID>.jpg``.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import fft as sfft
from scipy.special import gamma, gammaincinv

from cosmic.data import kaggle_format as kf
from cosmic.utils import follow_parent, progress

ID_MIN, ID_MAX = 100008, 999967
MAX_IMAGES = ID_MAX - ID_MIN + 1

# Galaxies are rendered on a coarse "native" grid and upsampled to 424 px, like the SDSS
# cutouts whose pixels are coarser than the 0.02 * petroR90 scale of the Kaggle images.
NATIVE_SIZE = 141
_SCALE = kf.IMAGE_SIZE / NATIVE_SIZE  # 424-px units per native pixel
_COORDS = (np.arange(NATIVE_SIZE) + 0.5) * _SCALE - 0.5  # native pixel centres in 424-px units
_FFT_SIZE = 180  # >= NATIVE_SIZE + PSF wings, a fast FFT length
_MAX_STAMP = 90  # half-size cap (native px) of a component's rendering box
_CENTRE = 212.0
_R90_PX = 50.0  # every cutout is scaled so that petroR90 spans ~50 px
_SOFTENING = 0.4 * _SCALE  # sub-pixel core radius that keeps Sérsic cusps finite
_SDSS_PIXEL = 0.396  # arcsec

# Colour that the display renders neutral grey; redder objects look yellow, bluer ones blue.
_NEUTRAL_GR, _NEUTRAL_RI = 0.38, 0.17

# Separate random streams per galaxy, so the votes can be simulated without rendering the image.
_STREAM_PARAMS, _STREAM_VOTES, _STREAM_PIXELS = 0, 1, 2

# Vote model: logit of the "features or disk" share = base + weights * visibility (`_featuredness`).
# Tuned so that about 60 % of the galaxies pass the 0.8 agreement cut, split evenly between classes.
_SCORE_BASE = {"elliptical": -1.6, "lenticular": -0.6, "spiral": -2.0, "irregular": -2.0}
_ARM_WEIGHT, _EDGE_WEIGHT = 18.0, 5.0
# Internal structure is half visible at R_e = 1.8 PSF FWHM and at 13.64 sky sigmas per native pixel.
_RES_MID, _SNR_MID = 1.8, 13.64
# Typical mean surface brightness inside R_e, sky sigmas per native pixel. Real ellipticals are brighter
# at the centre than real spirals (displayed, on a 128-px frame: 149 vs 128 of 255); with the disks any
# brighter, the synthetic order reverses and models learn that a bright core means a spiral.
_SB_ELLIPTICAL, _SB_DISK = 115.0, 30.0
# Per-frame spread of the displayed colour ln(g / i): the colour balance of SDSS cutouts varies, so that
# real ellipticals span ln(B / R) from -0.95 to -0.24 (10th-90th percentile), three times the spread of
# our ellipticals' intrinsic colours; without it, models learn that every elliptical is orange.
_COLOUR_TILT = 0.22
# Sky noise of the displayed cutout relative to one sky sigma of the flux model: the Kaggle JPEGs show
# a dark, quiet sky (measured on real frames at 128 px: median level 3.7, noise 3.0 of 255).
_SKY_NOISE = 0.52


@dataclass(frozen=True)
class _Arms:
    """Logarithmic spiral modulation of a disk component."""

    m: int
    pitch: float  # radians
    r0: float  # radius where the arms start (bar end or bulge edge), 424 px
    theta0: float  # in-plane angle of arm 0 at r0
    chirality: int
    width_power: float  # k in [(1 + cos)/2]^k: larger means thinner arms
    contrast: float  # share of the disk light that is in the arms
    wobble: tuple[float, float, float, float]  # phase wobble amp/phase, brightness ripple amp/phase
    sed: np.ndarray


@dataclass(frozen=True)
class _Component:
    """One smooth light component: a Sérsic profile (or a Gaussian ring) in a possibly inclined plane."""

    x: float
    y: float
    pa: float
    q: float  # projected axis ratio of the plane the component lives in
    re: float  # Sérsic effective radius, or the ring width, in 424 px
    n: float
    flux: float  # total flux in sky-sigma * native-pixel units
    sed: np.ndarray  # (g, r, i) weights, mean 1
    psi: float = 0.0  # in-plane position angle (bars)
    q_plane: float = 1.0  # in-plane axis ratio (bars)
    ring_radius: float = 0.0  # > 0 turns the profile into a Gaussian ring of width re
    arms: _Arms | None = None


@dataclass(frozen=True)
class _Look:
    """What a volunteer can see: the inputs of the vote model."""

    kind: str
    res: float  # effective radius / PSF FWHM
    snr: float  # mean surface brightness inside R_e in sky sigmas per native pixel
    q_obs: float  # apparent axis ratio after PSF blurring
    q_disk: float  # projected axis ratio of the disk (1 for ellipticals)
    bulge_to_total: float
    arm_contrast: float
    arms: int
    pitch_deg: float
    bar: float  # 0 (none) .. 1 (strong)
    ring: bool
    irregular: bool
    dust_lane: bool
    merger: bool
    neighbours: int
    star_overlap: float  # 0 .. 1: how much a bright star confuses the centre


@dataclass(frozen=True)
class _Galaxy:
    """Everything needed to render one cutout."""

    main: tuple[_Component, ...]
    others: tuple[_Component, ...]  # companions, tidal debris, background galaxies
    dust: tuple[float, float, float, float, float, float, float] | None  # x, y, pa, u-extent, v0, width, tau
    points: np.ndarray  # (k, 5): x, y, g, r, i fluxes of stars and unresolved knots
    fwhm: float
    moffat_beta: float
    psf_e: float
    psf_pa: float
    look: _Look


def _sed(g_r: float, r_i: float) -> np.ndarray:
    """Band weights of a colour in display units.

    Args:
        g_r: g - r colour in magnitudes.
        r_i: r - i colour in magnitudes.

    Returns:
        Array (g, r, i) of relative fluxes with mean 1.
    """
    w = np.array([10 ** (-0.4 * (g_r - _NEUTRAL_GR)), 1.0, 10 ** (0.4 * (r_i - _NEUTRAL_RI))])
    return w / w.mean()


def _b_n(n: float) -> float:
    """Sérsic b_n such that R_e encloses half of the light."""
    return float(gammaincinv(2 * n, 0.5))


def _r90_over_re(n: float) -> float:
    """Petrosian R90 / R_e of a Sérsic profile (2.0 for n = 1, 3.3 for n = 4).

    Calibrated against real Kaggle frames (galaxy area and central brightness per class, see
    benchmarks/bench_realsky_stats.py): ellipticals as concentrated as SDSS measures them (R90/R50
    ~ 3.3), disks a little more extended than a pure exponential, as their faint outskirts show.
    """
    return 2.0 + (min(max(n, 0.5), 6.0) - 1.0) * 0.43


def _sigmoid(x: float) -> float:
    """Logistic function, written with tanh so that it cannot overflow."""
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def _observed_axis_ratio(re: float, q: float, fwhm: float) -> float:
    """Axis ratio after the PSF adds its second moment to both axes."""
    psf_var = (fwhm / 2.355) ** 2
    return math.sqrt(((q * re) ** 2 + psf_var) / (re**2 + psf_var))


@dataclass
class _Body:
    """The target galaxy as drawn: its light components plus what the vote model needs."""

    components: list[_Component]
    knots: list[np.ndarray]  # (k, 5) point-source arrays of unresolved star-forming knots
    dust: tuple[float, float, float, float, float, float, float] | None  # x, y, pa, u-extent, v0, width, tau
    q_disk: float
    radius: float  # effective radius of the dominant component, 424 px
    surface_brightness: float  # mean inside R_e, sky sigmas per native pixel
    bulge_to_total: float
    arm_contrast: float = 0.0
    arms: int = 0
    pitch_deg: float = 0.0
    bar: float = 0.0
    ring: bool = False


def _knot_sed(rng: np.random.Generator) -> np.ndarray:
    """Colour of HII regions: blue, with H-alpha lifting r over i."""
    return _sed(rng.normal(0.05, 0.1), rng.normal(-0.1, 0.08))


def _draw_elliptical(rng: np.random.Generator, x0: float, y0: float, pa: float, r90: float, sb: float) -> _Body:
    """A red, round-ish Sérsic n ~ 3-5 spheroid.

    Args:
        rng: parameter stream.
        x0: centre column, 424 px.
        y0: centre row, 424 px.
        pa: position angle.
        r90: intrinsic R90, 424 px.
        sb: mean surface brightness inside R_e, sky sigmas per native pixel.

    Returns:
        The body.
    """
    n = float(rng.uniform(3.0, 5.0)) if rng.random() < 0.85 else float(rng.uniform(2.5, 6.0))
    q = float(np.clip(rng.normal(0.75, 0.15), 0.35, 1.0))
    re = r90 / _r90_over_re(n)
    flux = 2 * sb * math.pi * re**2 * q / _SCALE**2
    # A few per cent of ellipticals are blue (recent star formation).
    g_r = rng.normal(0.62, 0.08) if rng.random() < 0.08 else rng.normal(0.80, 0.05)
    sed = _sed(g_r, rng.normal(0.40, 0.03))
    return _Body([_Component(x0, y0, pa, q, re, n, flux, sed)], [], None, 1.0, re, sb, 1.0)


def _draw_disk(rng: np.random.Generator, kind: str, x0: float, y0: float, pa: float, r90: float, sb: float) -> _Body:
    """A disk galaxy: exponential disk plus bulge, bar, ring, arms and knots as the kind allows.

    Args:
        rng: parameter stream.
        kind: "spiral", "lenticular" (no arms, big red bulge) or "irregular" (clumpy, no bulge).
        x0: centre column, 424 px.
        y0: centre row, 424 px.
        pa: position angle of the disk's major axis.
        r90: intrinsic R90, 424 px.
        sb: mean surface brightness inside R_e, sky sigmas per native pixel.

    Returns:
        The body; its first component is the disk.
    """
    # Random orientation of a thick disk: apparent q = sqrt(cos^2 i + q0^2 sin^2 i).
    cos_i = float(rng.uniform(0.0, 1.0))
    q0 = float(rng.uniform(0.1, 0.2))
    q_disk = math.sqrt(cos_i**2 + q0**2 * (1 - cos_i**2))
    if kind == "irregular":
        q_disk = max(q_disk, float(rng.uniform(0.35, 0.6)))
    rd = r90 / _r90_over_re(1.0)
    if rng.random() < 0.2:
        # Low-surface-brightness disks: barely above the sky, their structure is hard to judge.
        sb *= float(rng.uniform(0.12, 0.4))
    h = rd / 1.678
    # Inclined disks look brighter per pixel, but only partly so: dust dims them again.
    flux = 2 * sb * math.pi * rd**2 * math.sqrt(q_disk) / _SCALE**2
    # Internal dust reddens inclined disks: edge-on spirals look yellow-red, not blue.
    reddening = 0.3 * (1.0 - q_disk) ** 2
    if kind == "lenticular":
        bt = float(rng.uniform(0.3, 0.65))
        disk_sed = _sed(rng.normal(0.70, 0.04) + reddening, rng.normal(0.37, 0.03) + 0.5 * reddening)
    elif kind == "spiral":
        bt = float(0.7 * rng.beta(1.6, 3.0))
        disk_sed = _sed(rng.normal(0.52, 0.10) + reddening, rng.normal(0.30, 0.05) + 0.5 * reddening)
    else:
        bt = float(rng.uniform(0.0, 0.05))
        disk_sed = _sed(rng.normal(0.35, 0.08), rng.normal(0.18, 0.05))
    body = _Body([], [], None, q_disk, rd, sb, bt)
    disk_flux = flux * (1 - bt)
    re_b = 0.0
    if bt > 0.01:
        n_b = float(rng.uniform(1.5, 4.0))
        re_b = rd * float(rng.uniform(0.15, 0.4)) * (1.6 if kind == "lenticular" else 1.0)
        # Bulges are thicker than disks, so they stay rounder when the disk is inclined.
        q_b = max(q_disk, float(rng.uniform(0.55, 0.9)))
        bulge_sed = _sed(rng.normal(0.72, 0.05), rng.normal(0.39, 0.03))
        body.components.append(_Component(x0, y0, pa, q_b, re_b, n_b, flux * bt, bulge_sed))
    has_bar = rng.random() < {"spiral": 0.32, "lenticular": 0.15, "irregular": 0.0}[kind]
    bar_len = h * float(rng.uniform(0.8, 1.6))
    psi = float(rng.uniform(0, math.pi))
    if has_bar:
        bar_frac = float(rng.uniform(0.08, 0.2))
        body.bar = (bar_frac - 0.05) / 0.15
        bar_sed = _sed(rng.normal(0.65, 0.05), rng.normal(0.35, 0.03))
        body.components.append(_Component(x0, y0, pa, q_disk, 0.55 * bar_len, 0.5, flux * bar_frac, bar_sed,
                                          psi=psi, q_plane=float(rng.uniform(0.2, 0.3))))
        disk_flux -= flux * bar_frac
    ring_prob = {"spiral": 0.12 if has_bar else 0.05, "lenticular": 0.08, "irregular": 0.0}[kind]
    if rng.random() < ring_prob:
        # Inner rings sit just outside the bar.
        body.ring = True
        radius = max(bar_len, h) * float(rng.uniform(1.1, 1.6))
        ring_frac = float(rng.uniform(0.1, 0.2))
        ring_sed = _sed(rng.normal(0.40, 0.08), rng.normal(0.22, 0.04))
        body.components.append(_Component(x0, y0, pa, q_disk, radius * float(rng.uniform(0.08, 0.14)), 1.0,
                                          flux * ring_frac, ring_sed, ring_radius=radius))
        disk_flux -= flux * ring_frac
    arms = None
    if kind == "spiral":
        body.arms = int(rng.choice([1, 2, 3, 4], p=[0.07, 0.63, 0.18, 0.12]))
        # Bulge-dominated spirals tend to have tighter arms.
        body.pitch_deg = float(np.clip(rng.normal(23 - 25 * bt, 5), 10, 30))
        body.arm_contrast = float(rng.beta(1.5, 2.5))
        # Arms start at the bar ends, or outside the bulge.
        r0 = max(bar_len if has_bar else 0.0, 1.5 * re_b, 0.3 * h)
        arm_sed = _sed(rng.normal(0.38, 0.08), rng.normal(0.20, 0.04))
        arms = _Arms(
            body.arms, math.radians(body.pitch_deg), r0, psi if has_bar else float(rng.uniform(0, 2 * math.pi)),
            int(rng.choice([-1, 1])), float(rng.uniform(1.5, 4.0)), body.arm_contrast,
            (float(rng.uniform(0, 0.35)), float(rng.uniform(0, 2 * math.pi)),
             float(rng.uniform(0, 0.4)), float(rng.uniform(0, 2 * math.pi))),
            arm_sed,
        )
        n_knots = int(rng.poisson(1 + 3 * body.arm_contrast * (1 - bt)))
        if n_knots:
            # Star-forming knots strung along the arm ridges.
            j = rng.integers(0, arms.m, n_knots)
            r = np.minimum(r0 + 0.8 * h * rng.gamma(2.0, 1.0, n_knots), 3 * h)
            theta = (arms.theta0 + arms.chirality * np.log(r / r0) / math.tan(arms.pitch)
                     + 2 * math.pi * j / arms.m + rng.normal(0, 0.15, n_knots))
            body.knots.append(_plane_points(x0, y0, pa, q_disk, r, theta,
                                            disk_flux * rng.uniform(0.004, 0.015, n_knots), _knot_sed(rng)))
    if kind == "irregular":
        # Irregulars: much of the light sits in large star-forming clumps off the centre.
        n_clumps = int(rng.integers(4, 10))
        r = rd * np.sqrt(rng.uniform(0.1, 1.8, n_clumps))
        theta = rng.uniform(0, 2 * math.pi, n_clumps)
        px, py = _plane_xy(x0, y0, pa, q_disk, r, theta)
        clump_sed = _sed(rng.normal(0.2, 0.08), rng.normal(0.05, 0.05))
        shares = rng.dirichlet(np.ones(n_clumps)) * float(rng.uniform(0.35, 0.6))
        for cx, cy, size, share in zip(px, py, rng.uniform(3, 7, n_clumps), shares):
            body.components.append(
                _Component(float(cx), float(cy), 0.0, 1.0, float(size), 0.5, flux * float(share), clump_sed))
        disk_flux -= flux * float(shares.sum())
        n_knots = int(rng.integers(10, 26))
        r = rd * np.sqrt(rng.uniform(0, 2.0, n_knots))
        body.knots.append(_plane_points(x0, y0, pa, q_disk, r, rng.uniform(0, 2 * math.pi, n_knots),
                                        flux * rng.uniform(0.005, 0.02, n_knots), _knot_sed(rng)))
    body.components.insert(0, _Component(x0, y0, pa, q_disk, rd, 1.0, disk_flux, disk_sed, arms=arms))
    if q_disk < 0.35 and rng.random() < 0.65:
        body.dust = (x0, y0, pa, 2.2 * rd, float(rng.uniform(-0.3, 0.3)) * q_disk * rd,
                     max(0.3 * q_disk * rd, 0.8 * _SCALE), float(rng.uniform(1.5, 4.0)))
    return body


def _draw_companions(
    rng: np.random.Generator, x0: float, y0: float, flux: float, grouped: bool
) -> tuple[list[_Component], bool, int]:
    """An occasional interacting companion with a tidal tail, and faint background galaxies.

    Args:
        rng: parameter stream.
        x0: target centre column, 424 px.
        y0: target centre row, 424 px.
        flux: total flux of the target.
        grouped: the target lives in a group (ellipticals), so neighbours are more common and closer.

    Returns:
        The extra components, whether there is a merger, and the number of background galaxies.
    """
    others: list[_Component] = []
    merger = bool(rng.random() < 0.06)
    if merger:
        dist, ang = float(rng.uniform(45, 110)), float(rng.uniform(0, 2 * math.pi))
        cx, cy = x0 + dist * math.cos(ang), y0 + dist * math.sin(ang)
        others.append(_Component(cx, cy, float(rng.uniform(0, math.pi)), float(rng.uniform(0.5, 1.0)),
                                 float(rng.uniform(8, 18)), float(rng.uniform(1.0, 4.0)),
                                 flux * float(rng.uniform(0.2, 0.8)),
                                 _sed(rng.normal(0.6, 0.12), rng.normal(0.32, 0.05))))
        if rng.random() < 0.6:
            # A curved tidal tail: overlapping diffuse blobs that leave the companion and fade outwards.
            n_blobs = 14
            turn = float(rng.choice([-1, 1])) * float(rng.uniform(0.5, 1.1))
            t = np.linspace(0.1, 1.0, n_blobs)
            arc_r = dist * (1.0 + 0.8 * t)
            arc_a = ang + turn * t
            tail_sed = _sed(rng.normal(0.45, 0.08), rng.normal(0.25, 0.04))
            shares = (1.15 - t) / (1.15 - t).sum() * float(rng.uniform(0.06, 0.14)) * flux
            for bx, by, size, share in zip(x0 + arc_r * np.cos(arc_a), y0 + arc_r * np.sin(arc_a), 5 + 5 * t, shares):
                others.append(_Component(float(bx), float(by), 0.0, 1.0, float(size), 0.5, float(share), tail_sed))
    # Background galaxies away from the target: small, faint and mostly red.
    neighbours = int(rng.poisson(1.5 if grouped else 0.6))
    for _ in range(neighbours):
        dist, ang = float(rng.uniform(35 if grouped else 70, 260)), float(rng.uniform(0, 2 * math.pi))
        others.append(_Component(
            _CENTRE + dist * math.cos(ang), _CENTRE + dist * math.sin(ang), float(rng.uniform(0, math.pi)),
            float(rng.uniform(0.3, 1.0)), float(rng.uniform(3, 10)), float(rng.uniform(1, 4)),
            flux * float(rng.uniform(0.01, 0.15)), _sed(rng.normal(0.9, 0.2), rng.normal(0.45, 0.1))))
    return others, merger, neighbours


def _draw_stars(rng: np.random.Generator, r90_arcsec: float) -> np.ndarray:
    """Foreground stars: the count grows with the field's area on the sky, fluxes follow a power law.

    Args:
        rng: parameter stream.
        r90_arcsec: angular R90 of the target, which sets the field of view (8.5 R90).

    Returns:
        (k, 5) array of x, y (424 px) and g, r, i fluxes.
    """
    n_stars = int(rng.poisson(float(np.clip(1.8 * (r90_arcsec / 7.5) ** 2, 0.3, 14.0))))
    xy = rng.uniform(-20, kf.IMAGE_SIZE + 20, (n_stars, 2))
    # N(> F) ~ F^-0.7; the faintest are just above the sky noise.
    flux = np.minimum(25.0 * rng.uniform(1e-9, 1, n_stars) ** (-1 / 0.7), 3e6)
    g_r = rng.uniform(0.25, 1.6, n_stars)
    # M dwarfs (g - r > 1.3) are much redder in r - i.
    r_i = 0.12 + 0.3 * g_r + np.where(g_r > 1.3, 0.6, 0.0) * rng.uniform(0, 1, n_stars)
    seds = np.array([_sed(a, b) for a, b in zip(g_r, r_i)]).reshape(n_stars, 3)
    return np.column_stack([xy, flux[:, None] * seds])


def _draw_galaxy(rng: np.random.Generator) -> _Galaxy:
    """Draw the physical and observational parameters of one cutout.

    Args:
        rng: the galaxy's parameter stream.

    Returns:
        The galaxy description used by both the vote model and the renderer.
    """
    # Apparent size in arcsec sets how coarse seeing and SDSS pixels are at the fixed R90 = 50 px.
    r90_arcsec = float(np.clip(7.5 * math.exp(0.45 * rng.standard_normal()), 3.0, 60.0))
    arcsec_per_px = 0.02 * r90_arcsec
    fwhm = float(np.clip(1.4 * math.exp(0.18 * rng.standard_normal()), 0.9, 2.4)) / arcsec_per_px
    moffat_beta = float(rng.uniform(3.0, 4.8))
    psf_e, psf_pa = float(rng.uniform(0.0, 0.08)), float(rng.uniform(0, math.pi))
    # Resampling averages several SDSS pixels for large galaxies, which lowers the noise.
    noise_gain = min(max(1.0, _SDSS_PIXEL / (_SCALE * arcsec_per_px)), 3.0)
    r90_obs = _R90_PX * math.exp(0.12 * rng.standard_normal())
    # Petrosian R90 is measured on the seeing-blurred image: remove the PSF's share.
    r90 = math.sqrt(max(r90_obs**2 - (0.9 * fwhm) ** 2, (0.35 * r90_obs) ** 2))
    x0, y0 = (float(c) for c in _CENTRE + 3.7 * rng.standard_normal(2))
    pa = float(rng.uniform(0, math.pi))
    kind = str(rng.choice(["elliptical", "lenticular", "spiral", "irregular"], p=[0.46, 0.12, 0.37, 0.05]))
    # Disks span a wider range of surface brightness than ellipticals.
    elliptical = kind == "elliptical"
    sb = (_SB_ELLIPTICAL if elliptical else _SB_DISK) * math.exp((0.4 if elliptical else 0.5) * rng.standard_normal())
    sb *= noise_gain
    if kind == "elliptical":
        body = _draw_elliptical(rng, x0, y0, pa, r90, sb)
    else:
        body = _draw_disk(rng, kind, x0, y0, pa, r90, sb)
    flux = sum(c.flux for c in body.components)
    others, merger, neighbours = _draw_companions(rng, x0, y0, flux, kind == "elliptical")
    stars = _draw_stars(rng, r90_arcsec)
    # A bright star on top of the galaxy draws "star or artifact" and "odd" votes.
    offsets = np.hypot(stars[:, 0] - x0, stars[:, 1] - y0)
    overlap = stars[:, 2:].mean(axis=1) / flux * np.exp(-((offsets / (0.6 * r90_obs)) ** 2))
    look = _Look(
        kind=kind, res=body.radius / fwhm, snr=body.surface_brightness / _SKY_NOISE,
        q_obs=_observed_axis_ratio(body.radius, body.components[0].q, fwhm), q_disk=body.q_disk,
        bulge_to_total=body.bulge_to_total, arm_contrast=body.arm_contrast, arms=body.arms,
        pitch_deg=body.pitch_deg, bar=body.bar, ring=body.ring, irregular=kind == "irregular",
        dust_lane=body.dust is not None, merger=merger, neighbours=neighbours,
        star_overlap=float(np.clip(overlap.max(initial=0.0), 0.0, 1.0)),
    )
    return _Galaxy(tuple(body.components), tuple(others), body.dust, np.concatenate([*body.knots, stars]),
                   fwhm, moffat_beta, psf_e, psf_pa, look)


def _plane_xy(
    x0: float, y0: float, pa: float, q: float, r: np.ndarray, theta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project in-plane polar coordinates of an inclined disk to image coordinates."""
    u, v = r * np.cos(theta), r * np.sin(theta) * q
    return x0 + u * math.cos(pa) - v * math.sin(pa), y0 + u * math.sin(pa) + v * math.cos(pa)


def _plane_points(x0: float, y0: float, pa: float, q: float, r: np.ndarray, theta: np.ndarray,
                  flux: np.ndarray, sed: np.ndarray) -> np.ndarray:
    """Point sources (x, y, g, r, i) at in-plane positions of an inclined disk."""
    px, py = _plane_xy(x0, y0, pa, q, r, theta)
    return np.column_stack([px, py, flux[:, None] * sed])


@dataclass(frozen=True)
class _Seen:
    """How clearly each feature shows in the cutout, 0 (invisible) .. 1 (obvious)."""

    detail: float  # resolution and surface brightness good enough to see internal structure
    arms: float
    edge_on: float
    edge_disk: float  # a thin edge-on disk that is bright and resolved enough to be recognised
    bar: float
    ring: float


def _log_sigmoid(value: float, middle: float, width: float) -> float:
    """Smooth step in log(value): 0.5 at `middle`, `width` in natural-log units."""
    return _sigmoid((math.log(value) - math.log(middle)) / width)


def _what_is_seen(look: _Look) -> _Seen:
    """Visibility of each feature given resolution, surface brightness and inclination."""
    detail = _log_sigmoid(look.res, _RES_MID, 0.35) * _log_sigmoid(look.snr, _SNR_MID, 0.45)
    # Arms and bars foreshorten and blur together as the disk tilts.
    face = min(max((look.q_disk - 0.25) / 0.35, 0.0), 1.0)
    edge_on = min(max((0.45 - look.q_obs) / 0.2, 0.0), 1.0) if look.kind != "elliptical" else 0.0
    # A thin disk needs far less resolution and depth to recognise than spiral arms.
    edge_disk = edge_on * _log_sigmoid(look.snr, 0.82, 0.5) * _log_sigmoid(look.res, 0.8, 0.35)
    # Volunteers look at the full-resolution cutout, where even faint arms show: visibility grows
    # like the square root of the arm contrast.
    return _Seen(detail, math.sqrt(look.arm_contrast) * detail * face, edge_on, edge_disk,
                 look.bar * detail * (0.3 + 0.7 * face), float(look.ring) * detail)


def _featuredness(look: _Look, seen: _Seen) -> float:
    """Logit of the expected share of "features or disk" votes, before per-galaxy scatter."""
    score = _SCORE_BASE[look.kind] + 0.8 * look.merger
    if look.kind == "elliptical":
        return score
    if look.kind == "lenticular":
        # A smooth disk around a big bulge: volunteers split between "smooth" and "disk".
        score += 1.2 * seen.detail * (1.0 - look.bulge_to_total)
    return (score + _ARM_WEIGHT * seen.arms + _EDGE_WEIGHT * seen.edge_disk + 3.0 * seen.bar
            + 4.0 * look.irregular * seen.detail + 1.5 * seen.ring - 1.0 * look.bulge_to_total)


def _lower_answer_weights(look: _Look, seen: _Seen) -> dict[int, list[float]]:
    """Expected answer shares of questions 2-11 (unnormalised), from the galaxy's true features."""
    bt = look.bulge_to_total
    p_edge = 0.03 + 0.92 * _sigmoid((0.33 - look.q_obs) / 0.05) * _log_sigmoid(look.snr, 0.65, 0.5)
    if look.kind == "elliptical":
        p_edge = 0.03
    p_bar = 0.06 + 0.85 * seen.bar
    if look.kind == "spiral":
        p_spiral = 0.1 + 0.85 * _sigmoid((seen.arms - 0.18) / 0.06)
    else:
        p_spiral = 0.3 if look.irregular else 0.1
    p_odd = min(0.05 + 0.6 * look.merger + 0.45 * seen.ring + 0.35 * look.irregular
                + 0.3 * look.dust_lane * seen.edge_on + 0.08 * min(look.neighbours, 2)
                + 0.2 * look.star_overlap, 0.95)
    bulge_index = 3.0 * min(bt / 0.55, 1.0) ** 0.7  # none .. dominant
    p_round = _sigmoid((look.q_obs - 0.8) / 0.05)
    p_cigar = _sigmoid((0.42 - look.q_obs) / 0.05)
    winding = (min(max(look.pitch_deg, 10.0), 30.0) - 10.0) / 10.0 if look.arms else 1.0  # tight .. loose
    arm_index = look.arms - 1 if look.arms else 1
    return {
        2: [p_edge, 1 - p_edge],
        3: [p_bar, 1 - p_bar],
        4: [p_spiral, 1 - p_spiral],
        5: [math.exp(-((k - bulge_index) ** 2) / (2 * 0.6**2)) + 0.02 for k in range(4)],
        6: [p_odd, 1 - p_odd],
        7: [p_round, max(1 - p_round - p_cigar, 0.05), p_cigar],
        # ring, lens or arc, disturbed, irregular, other, merger, dust lane
        8: [0.02 + 3 * look.ring, 0.03, 0.05 + 1.5 * look.merger, 0.04 + 3 * look.irregular,
            0.15 + 1.5 * look.star_overlap + 0.3 * min(look.neighbours, 2), 0.04 + 3 * look.merger,
            0.02 + 3 * look.dust_lane],
        # edge-on bulge: rounded, boxy, none
        9: [_sigmoid((bt - 0.15) / 0.05) + 0.05, 0.1 + 0.3 * math.exp(-(((bt - 0.12) / 0.05) ** 2)),
            _sigmoid((0.1 - bt) / 0.04) + 0.05],
        10: [math.exp(-((k - winding) ** 2) / (2 * 0.6**2)) + 0.03 for k in range(3)],
        # 1, 2, 3, 4, more than four, can't tell (more likely when the arms are hard to see)
        11: [*(math.exp(-((k - arm_index) ** 2) / (2 * 0.45**2)) for k in range(4)),
             0.04 + (0.25 if look.arms == 4 else 0.0), 0.1 + 1.5 * (1.0 - min(seen.arms / 0.4, 1.0))],
    }


def _vote_fractions(look: _Look, rng: np.random.Generator) -> np.ndarray:
    """Simulate the Galaxy Zoo crowd and return the 37 cumulative vote fractions.

    Q1: the latent featuredness mu = sigmoid(score + scatter) gives p ~ Beta(kappa mu, kappa (1 - mu)),
    plus a small star/artifact share. Lower questions get Dirichlet-scattered answer shares around
    what the galaxy really shows. About 40 volunteers then walk down the tree.

    Args:
        look: what is visible in the cutout.
        rng: the galaxy's vote stream.

    Returns:
        Array of shape (37,) in `CLASS_COLUMNS` order; every constraint holds to float precision.
    """
    seen = _what_is_seen(look)
    # The scatter stands for everything the model does not know about how volunteers perceive.
    mu = min(max(_sigmoid(_featuredness(look, seen) + 0.7 * rng.standard_normal()), 0.02), 0.98)
    kappa = float(rng.uniform(5.0, 20.0))
    p_feat = float(rng.beta(kappa * mu, kappa * (1 - mu)))
    # Seeing-dominated galaxies and bright stars on top draw some "star or artifact" votes.
    compact = _log_sigmoid(0.7, look.res, 0.2)
    p_star = float(rng.beta(0.6, 40.0)) + 0.15 * max(compact, look.star_overlap) * float(rng.uniform(0.2, 1.0))
    p_star = min(p_star, 0.6)
    probs = {1: np.array([(1 - p_star) * (1 - p_feat), (1 - p_star) * p_feat, p_star])}
    for q, weights in _lower_answer_weights(look, seen).items():
        w = np.clip(np.asarray(weights, dtype=float), 0.02, None)
        probs[q] = rng.dirichlet(float(rng.uniform(8, 20)) * w / w.sum() + 0.05)
    n_voters = 30 + int(rng.poisson(12))
    # Galaxy Zoo down-weights inconsistent volunteers, which makes the fractions non-round.
    voter_weights = np.where(rng.random(n_voters) < 0.85, 1.0, rng.uniform(0.2, 1.0, n_voters))
    return _tally(probs, voter_weights, rng)


def _parent_answers() -> dict[int, tuple[int, int] | None]:
    """Question -> (parent question, 0-based answer index) that leads to it, from `QUESTION_PARENT`."""
    out: dict[int, tuple[int, int] | None] = {}
    for q, parent in kf.QUESTION_PARENT.items():
        if parent is None:
            out[q] = None
        else:
            parent_q, parent_a = parent.removeprefix("Class").split(".")
            out[q] = (int(parent_q), int(parent_a) - 1)
    return out


_PARENT_ANSWER = _parent_answers()


def _tally(probs: dict[int, np.ndarray], weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Walk every voter down the decision tree and return weighted cumulative fractions.

    Args:
        probs: answer probabilities of each question 1..11.
        weights: one weight per voter.
        rng: stream for the voters' choices.

    Returns:
        Array of shape (37,); a question's answers sum to its parent answer's fraction.
    """
    out = np.zeros(len(kf.CLASS_COLUMNS))
    answers: dict[int, np.ndarray] = {}
    total = weights.sum()
    for q, sl in kf.QUESTION_SLICES.items():
        parent = _PARENT_ANSWER[q]
        asked = np.ones(weights.size, dtype=bool) if parent is None else answers[parent[0]] == parent[1]
        cumulative = np.cumsum(probs[q])
        # Draw for every voter so the stream's use does not depend on earlier answers.
        choice = np.searchsorted(cumulative, rng.random(weights.size) * cumulative[-1], side="right")
        choice = np.where(asked, np.minimum(choice, cumulative.size - 1), -1)
        answers[q] = choice
        out[sl] = np.bincount(choice[asked], weights=weights[asked], minlength=cumulative.size) / total
    return out


def _stamp(x: float, y: float, extent: float) -> tuple[np.ndarray, np.ndarray, slice, slice, slice, slice]:
    """Native-pixel box around a position, possibly reaching beyond the image.

    Args:
        x: centre column in 424-px units.
        y: centre row in 424-px units.
        extent: radius to cover in 424-px units.

    Returns:
        Column and row coordinates (424-px units) of the box, the image slices it covers
        (rows, columns) and the matching slices into the box.
    """
    half = min(int(math.ceil(extent / _SCALE)) + 2, _MAX_STAMP)
    ci, cj = int(round((x + 0.5) / _SCALE - 0.5)), int(round((y + 0.5) / _SCALE - 0.5))
    cols = np.arange(ci - half, ci + half + 1)
    rows = np.arange(cj - half, cj + half + 1)
    c0, c1 = max(cols[0], 0), min(cols[-1] + 1, NATIVE_SIZE)
    r0, r1 = max(rows[0], 0), min(rows[-1] + 1, NATIVE_SIZE)
    xs = (cols + 0.5) * _SCALE - 0.5
    ys = (rows + 0.5) * _SCALE - 0.5
    return (xs, ys, slice(r0, max(r1, r0)), slice(c0, max(c1, c0)),
            slice(r0 - rows[0], max(r1, r0) - rows[0]), slice(c0 - cols[0], max(c1, c0) - cols[0]))


def _add_component(bands: np.ndarray, comp: _Component) -> None:
    """Render a component into the (3, N, N) band images, conserving its flux.

    Args:
        bands: pre-PSF g, r, i images, modified in place.
        comp: the component.
    """
    reach = comp.ring_radius + 4 * comp.re if comp.ring_radius else comp.re * (8.0 if comp.n > 2 else 5.0)
    xs, ys, rows, cols, brows, bcols = _stamp(comp.x, comp.y, reach)
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return
    dx, dy = xs[None, :] - comp.x, ys[:, None] - comp.y
    cos_pa, sin_pa = math.cos(comp.pa), math.sin(comp.pa)
    u = dx * cos_pa + dy * sin_pa
    v = (dy * cos_pa - dx * sin_pa) / comp.q  # deprojected into the component's plane
    if comp.q_plane != 1.0:
        cos_psi, sin_psi = math.cos(comp.psi), math.sin(comp.psi)
        u, v = u * cos_psi + v * sin_psi, (v * cos_psi - u * sin_psi) / comp.q_plane
    radius = np.sqrt(u * u + v * v + _SOFTENING**2)
    if comp.ring_radius:
        profile = np.exp(-0.5 * ((radius - comp.ring_radius) / comp.re) ** 2)
    else:
        profile = np.exp(-_b_n(comp.n) * ((radius / comp.re) ** (1.0 / comp.n) - 1.0))
    norm = comp.flux / profile.sum()
    if comp.arms is None:
        bands[:, rows, cols] += (norm * comp.sed)[:, None, None] * profile[brows, bcols]
        return
    a = comp.arms
    theta = np.arctan2(v, u)
    log_r = np.log(radius / a.r0)
    phase = theta - a.theta0 - a.chirality * log_r / math.tan(a.pitch) + a.wobble[0] * np.sin(theta + a.wobble[1])
    pattern = ((1.0 + np.cos(a.m * phase)) * 0.5) ** a.width_power
    pattern *= 1.0 + a.wobble[2] * np.cos(4.0 * log_r + a.wobble[3])
    # <[(1 + cos)/2]^k> over angle; dividing by it keeps the azimuthal mean of the disk.
    mean_pattern = gamma(a.width_power + 0.5) / (math.sqrt(math.pi) * gamma(a.width_power + 1.0))
    # Arms fade out inside the bulge/bar region, where the disk is smooth.
    arm_share = a.contrast * (1.0 - np.exp(-((radius / a.r0) ** 2)))
    smooth = profile * (1.0 - arm_share)
    arm = profile * arm_share * (pattern / mean_pattern)
    bands[:, rows, cols] += (norm * comp.sed)[:, None, None] * smooth[brows, bcols]
    bands[:, rows, cols] += (norm * a.sed)[:, None, None] * arm[brows, bcols]


def _add_points(bands: np.ndarray, points: np.ndarray) -> None:
    """Deposit point sources with bilinear weights (the PSF convolution then shapes them).

    Args:
        bands: pre-PSF g, r, i images, modified in place.
        points: (k, 5) array of x, y (424 px) and g, r, i fluxes.
    """
    if not len(points):
        return
    fx = (points[:, 0] + 0.5) / _SCALE - 0.5
    fy = (points[:, 1] + 0.5) / _SCALE - 0.5
    ix, iy = np.floor(fx).astype(int), np.floor(fy).astype(int)
    tx, ty = fx - ix, fy - iy
    for ox, oy, w in ((0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)), (0, 1, (1 - tx) * ty), (1, 1, tx * ty)):
        cx, cy = ix + ox, iy + oy
        inside = (cx >= 0) & (cx < NATIVE_SIZE) & (cy >= 0) & (cy < NATIVE_SIZE)
        for band in range(3):
            np.add.at(bands[band], (cy[inside], cx[inside]), w[inside] * points[inside, 2 + band])


def _dust_attenuation(dust: tuple[float, ...]) -> np.ndarray:
    """Per-band transmission of an edge-on dust lane, stronger in g than in i.

    Args:
        dust: lane centre x, y, position angle, extent along the disk, offset and width across it, g optical depth.

    Returns:
        Array of shape (3, N, N) of transmissions in (0, 1].
    """
    x0, y0, pa, extent, offset, width, tau = dust
    dx, dy = _COORDS[None, :] - x0, _COORDS[:, None] - y0
    u = dx * math.cos(pa) + dy * math.sin(pa)
    v = dy * math.cos(pa) - dx * math.sin(pa)
    lane = np.exp(-0.5 * ((v - offset) / width) ** 2 - (u / extent) ** 2)
    return np.exp(-tau * np.array([1.0, 0.75, 0.55])[:, None, None] * lane)


def _psf_transform(fwhm: float, beta: float, e: float, pa: float) -> np.ndarray:
    """Real FFT of a slightly elliptical Moffat PSF centred on pixel (0, 0) with wrap-around.

    Args:
        fwhm: full width at half maximum in 424-px units.
        beta: Moffat power index.
        e: ellipticity 1 - b/a.
        pa: position angle of the major axis.

    Returns:
        `scipy.fft.rfft2` of the unit-sum kernel on the padded FFT grid.
    """
    d = np.fft.fftfreq(_FFT_SIZE, 1.0 / _FFT_SIZE) * _SCALE
    dx, dy = d[None, :], d[:, None]
    u = dx * math.cos(pa) + dy * math.sin(pa)
    v = (dy * math.cos(pa) - dx * math.sin(pa)) / (1.0 - e)
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    kernel = (1.0 + (u * u + v * v) / alpha**2) ** (-beta)
    return sfft.rfft2(kernel / kernel.sum())


def _lupton_rgb(gri: np.ndarray, alpha: float, q: float) -> np.ndarray:
    """Lupton et al. (2004) asinh composite: i -> R, r -> G, g -> B, colour-preserving clipping.

    Args:
        gri: (3, N, N) sky-subtracted images in sky-sigma units.
        alpha: linear stretch (display units per sigma) for faint pixels.
        q: softening; larger compresses bright regions more.

    Returns:
        (N, N, 3) uint8 image.
    """
    lum = gri.mean(axis=0)
    lum = np.where(np.abs(lum) < 1e-9, 1e-9, lum)
    scale = np.arcsinh(alpha * q * lum) / (q * lum)
    rgb = gri[::-1].transpose(1, 2, 0) * scale[..., None]
    peak = rgb.max(axis=-1, keepdims=True)
    rgb = np.where(peak > 1.0, rgb / np.maximum(peak, 1.0), rgb)
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _render(galaxy: _Galaxy, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """Render one SDSS-like cutout.

    Args:
        galaxy: the galaxy description.
        rng: the galaxy's pixel stream (noise, sky, display and JPEG settings).

    Returns:
        The 424x424 RGB image and the JPEG quality to save it with.
    """
    bands = np.zeros((3, NATIVE_SIZE, NATIVE_SIZE))
    for comp in galaxy.main:
        _add_component(bands, comp)
    if galaxy.dust is not None:
        bands *= _dust_attenuation(galaxy.dust)
    for comp in galaxy.others:
        _add_component(bands, comp)
    _add_points(bands, galaxy.points)
    kernel = _psf_transform(galaxy.fwhm, galaxy.moffat_beta, galaxy.psf_e, galaxy.psf_pa)
    blurred = sfft.irfft2(sfft.rfft2(bands, s=(_FFT_SIZE, _FFT_SIZE)) * kernel, s=(_FFT_SIZE, _FFT_SIZE))
    signal = np.maximum(blurred[:, :NATIVE_SIZE, :NATIVE_SIZE], 0.0)
    # Photon counts: sky level s counts has noise sqrt(s), which is our unit of one sky sigma.
    sky_counts = rng.uniform(60.0, 150.0, 3)[:, None, None]
    band_sigma = rng.uniform(0.9, 1.15, 3)[:, None, None]
    unit = np.sqrt(sky_counts)
    counts = rng.poisson(sky_counts + unit * signal / band_sigma)
    noise = (counts - sky_counts) / unit * band_sigma - signal
    # Imperfect sky subtraction leaves a faint tint in some frames, and the displayed sky sits a
    # little below zero, so that most of its noise is clipped to black as in the SDSS JPEGs.
    sky_noise = _SKY_NOISE * float(rng.uniform(0.75, 1.4))
    image = signal + sky_noise * (noise + rng.normal(-0.3, 0.06, 3)[:, None, None])
    if rng.random() < 0.05:
        # A few SDSS frames carry a strong colour cast (scattered light, a bad sky fit), mostly in i.
        image[int(rng.choice(3, p=[0.2, 0.2, 0.6]))] += float(rng.uniform(1.0, 3.5))
    tilt = 0.5 * float(rng.normal(0.0, _COLOUR_TILT))
    image = image * np.exp(np.array([tilt, 0.0, -tilt]))[:, None, None]
    rgb = _lupton_rgb(image, alpha=float(rng.uniform(0.09, 0.11)), q=8.0)
    quality = int(rng.integers(75, 91))
    return Image.fromarray(rgb, "RGB").resize((kf.IMAGE_SIZE, kf.IMAGE_SIZE), Image.Resampling.BICUBIC), quality


def _streams(seed: int, index: int) -> tuple[np.random.Generator, ...]:
    """Independent parameter, vote and pixel streams of galaxy `index`."""
    return tuple(
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, stream)))
        for stream in (_STREAM_PARAMS, _STREAM_VOTES, _STREAM_PIXELS)
    )


def _galaxy_ids(n_images: int, seed: int) -> np.ndarray:
    """Sorted, unique, non-sequential 6-digit GalaxyIDs."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    return np.sort(rng.choice(MAX_IMAGES, size=n_images, replace=False)) + ID_MIN


def _solutions_chunk(seed: int, indices: range) -> np.ndarray:
    """Vote fractions of galaxies `indices` without rendering."""
    rows = np.empty((len(indices), len(kf.CLASS_COLUMNS)))
    for row, index in enumerate(indices):
        params, votes, _ = _streams(seed, index)
        rows[row] = _vote_fractions(_draw_galaxy(params).look, votes)
    return rows


def _render_chunk(seed: int, indices: range, ids: np.ndarray, image_dir: str) -> np.ndarray:
    """Render, save and vote on galaxies `indices`; runs inside a worker process.

    Args:
        seed: the data-set seed.
        indices: galaxy indices of this chunk.
        ids: their GalaxyIDs.
        image_dir: folder to write `<GalaxyID>.jpg` into.

    Returns:
        Array (len(indices), 37) of vote fractions.
    """
    rows = np.empty((len(indices), len(kf.CLASS_COLUMNS)))
    for row, (index, galaxy_id) in enumerate(zip(indices, ids)):
        params, votes, pixels = _streams(seed, index)
        galaxy = _draw_galaxy(params)
        rows[row] = _vote_fractions(galaxy.look, votes)
        image, quality = _render(galaxy, pixels)
        image.save(os.path.join(image_dir, f"{int(galaxy_id)}.jpg"), "JPEG", quality=quality)
    return rows


def _as_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """Validate an integer argument and return it as a Python int."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return number


def _frame(ids: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """Solutions table as written to the CSV (6 decimals)."""
    frame = pd.DataFrame(np.round(values, 6), columns=list(kf.CLASS_COLUMNS))
    frame.insert(0, kf.ID_COLUMN, ids.astype(np.int64))
    return frame


def simulate_solutions(n_images: int, seed: int) -> pd.DataFrame:
    """Vote fractions that `generate` would write for the same arguments, without rendering images.

    Args:
        n_images: number of galaxies (1 .. 899960).
        seed: non-negative data-set seed.

    Returns:
        DataFrame with columns `kaggle_format.ALL_COLUMNS`, sorted by GalaxyID, rounded to 6 decimals.
    """
    n_images = _as_int("n_images", n_images, 1, MAX_IMAGES)
    seed = _as_int("seed", seed, 0)
    return _frame(_galaxy_ids(n_images, seed), _solutions_chunk(seed, range(n_images)))


def generate(out_dir: Path, n_images: int, seed: int, workers: int | None = None) -> pd.DataFrame:
    """Write a synthetic Kaggle Galaxy Zoo training set (solutions CSV and JPEG cutouts).

    The output is byte-identical for the same `n_images` and `seed`, whatever `workers` is.

    Args:
        out_dir: folder that receives `training_solutions_rev1.csv` and `images_training_rev1/`.
        n_images: number of galaxies (1 .. 899960).
        seed: non-negative data-set seed.
        workers: processes to render with; None means `os.cpu_count()`, 1 renders in-process.

    Returns:
        The solutions DataFrame exactly as written (GalaxyID + 37 class columns, sorted by GalaxyID).

    Raises:
        ValueError: on an invalid argument.
        FileExistsError: if the image folder holds JPEGs that this data set would not write.
    """
    n_images = _as_int("n_images", n_images, 1, MAX_IMAGES)
    seed = _as_int("seed", seed, 0)
    workers = (os.cpu_count() or 1) if workers is None else _as_int("workers", workers, 1)
    out_dir = Path(out_dir)
    image_dir = out_dir / kf.IMAGES_DIR
    ids = _galaxy_ids(n_images, seed)
    if image_dir.is_dir():
        expected = {f"{galaxy_id}.jpg" for galaxy_id in ids.tolist()}
        stale = [p.name for p in image_dir.glob("*.jpg") if p.name not in expected]
        if stale:
            raise FileExistsError(
                f"{str(image_dir)!r} already holds {len(stale)} JPEGs of another data set (e.g. {stale[0]!r}); "
                "use an empty folder"
            )
    image_dir.mkdir(parents=True, exist_ok=True)
    # The CSV is written last, so its presence marks a complete data set.
    (out_dir / kf.SOLUTIONS_CSV).unlink(missing_ok=True)

    # About four chunks per worker balances the load without much scheduling overhead.
    chunk = max(1, min(64, math.ceil(n_images / (4 * workers))))
    chunks = [range(start, min(start + chunk, n_images)) for start in range(0, n_images, chunk)]
    if workers == 1 or len(chunks) == 1:
        parts = [_render_chunk(seed, c, ids[c.start:c.stop], str(image_dir)) for c in chunks]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), initializer=follow_parent,
                                 initargs=(os.getpid(),)) as pool:
            futures = [pool.submit(_render_chunk, seed, c, ids[c.start:c.stop], str(image_dir)) for c in chunks]
            parts = [future.result() for future in progress(futures, desc="synthetic galaxies", unit="chunk")]
    frame = _frame(ids, np.concatenate(parts))
    frame.to_csv(out_dir / kf.SOLUTIONS_CSV, index=False, float_format="%.6f")
    return frame


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m cosmic.data.synthetic OUT_DIR --n-images N --seed S [--workers W]`.

    Args:
        argv: arguments without the program name; None reads `sys.argv`.

    Returns:
        Process exit code.
    """
    parser = argparse.ArgumentParser(prog="python -m cosmic.data.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for the CSV and images_training_rev1/")
    parser.add_argument("--n-images", type=int, required=True, help="number of galaxies")
    parser.add_argument("--seed", type=int, required=True, help="data-set seed (>= 0)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        generate(args.out_dir, args.n_images, args.seed, args.workers)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - start
    rate = args.n_images / elapsed
    print(f"wrote {args.n_images} images to {args.out_dir} in {elapsed:.1f} s ({rate:.1f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
