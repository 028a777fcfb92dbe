"""Toy 2-D point sets whose label picks the shape, shared by training and the shipped examples.

Every generator returns float32 points roughly in [-1, 1]^2 (the model's data range).
"""
import math

import numpy as np

SHAPES = ["two_moons", "eight_gaussians", "swiss_roll", "checkerboard", "circles", "spiral"]


def two_moons(n, rng):
    k = rng.integers(0, 2, n)
    a = rng.uniform(0, math.pi, n)
    x = np.where(k == 0, np.cos(a), 1 - np.cos(a))
    y = np.where(k == 0, np.sin(a), 0.5 - np.sin(a))
    p = np.stack([x - 0.5, y - 0.25], 1) * 0.9
    return p + rng.normal(0, 0.04, p.shape)


def eight_gaussians(n, rng):
    k = rng.integers(0, 8, n)
    c = np.stack([np.cos(k * math.pi / 4), np.sin(k * math.pi / 4)], 1) * 0.75
    return c + rng.normal(0, 0.05, c.shape)


def swiss_roll(n, rng):
    t = 1.5 * math.pi * (1 + 2 * rng.uniform(0, 1, n))
    p = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 15.0
    return p + rng.normal(0, 0.02, p.shape)


def checkerboard(n, rng):
    # A 4x4 board on [-1, 1]^2; points fill the cells whose row + column is even.
    c = rng.integers(0, 4, n)
    r = 2 * rng.integers(0, 2, n) + (c % 2)
    x = -1 + (c + rng.uniform(0, 1, n)) * 0.5
    y = -1 + (r + rng.uniform(0, 1, n)) * 0.5
    return np.stack([x, y], 1) * 0.9


def circles(n, rng):
    k = rng.integers(0, 2, n)
    a = rng.uniform(0, 2 * math.pi, n)
    r = np.where(k == 0, 0.8, 0.35)
    p = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    return p + rng.normal(0, 0.025, p.shape)


def spiral(n, rng):
    k = rng.integers(0, 2, n)
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * math.pi
    sgn = np.where(k == 0, 1.0, -1.0)
    p = sgn[:, None] * np.stack([t * np.cos(t), t * np.sin(t)], 1) / (3 * math.pi) * 0.9
    return p + rng.normal(0, 0.02, p.shape)


GENERATORS = [two_moons, eight_gaussians, swiss_roll, checkerboard, circles, spiral]


def sample(label, n, rng):
    return GENERATORS[label](n, rng).astype(np.float32)
