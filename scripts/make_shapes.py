#!/usr/bin/env python3
"""Generate data/shapes/: 60 PNG images of flat shapes with ground-truth attributes.

Each image shows 1-4 copies of one shape (circle, square, triangle) in one color (red, green,
blue, yellow) on a plain background (white, black, gray), one shape per quadrant of a 96x96
canvas, with hard edges (no anti-aliasing) so every attribute can be read back from the pixels.

Deterministic (seeded RNG, fixed order, zlib level 9): running it twice produces byte-identical
files. Python 3.11 standard library only.

Outputs (relative to the repository root):
    data/shapes/images/<shape>/shape_NNN.png   the images (an `imagefolder` tree: label = shape)
    data/shapes/shapes.jsonl                   one row per image: image (path relative to this
                                               file), shape, color, count, background, and two
                                               candidate captions (a, b) with how many of their
                                               4 facts are right
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from pathlib import Path

SEED = 20261125
SIZE = 96
CELL = SIZE // 2
ROWS = 60

SHAPES = ["circle", "square", "triangle"]
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
BACKGROUNDS = {"white": (255, 255, 255), "black": (20, 20, 20), "gray": (128, 128, 128)}
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four"}

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "data" / "shapes"


def png(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    """An 8-bit RGB, non-interlaced PNG with filter type 0 on every scanline."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(v for p in row for v in p) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def inside(shape: str, x: float, y: float, cx: float, cy: float, r: float) -> bool:
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if shape == "square":
        return abs(x - cx) <= r and abs(y - cy) <= r
    # An isosceles triangle, apex up, inscribed in the square of half-side r.
    top, bottom = cy - r, cy + r
    if not top <= y <= bottom:
        return False
    half = r * (y - top) / (bottom - top)
    return abs(x - cx) <= half


def draw(shape: str, color: tuple[int, int, int], count: int, background: tuple[int, int, int], rng: random.Random):
    pixels = [[background] * SIZE for _ in range(SIZE)]
    cells = rng.sample(range(4), count)
    for cell in cells:
        r = rng.randint(9, 15)
        left, top = (cell % 2) * CELL, (cell // 2) * CELL
        cx = left + rng.randint(r + 3, CELL - r - 3)
        cy = top + rng.randint(r + 3, CELL - r - 3)
        for y in range(top, top + CELL):
            for x in range(left, left + CELL):
                if inside(shape, x + 0.5, y + 0.5, cx, cy, r):
                    pixels[y][x] = color
    return pixels


def caption(shape: str, color: str, count: int, background: str) -> str:
    noun = shape if count == 1 else shape + "s"
    return f"{NUMBERS[count]} {color} {noun} on a {background} background"


def main() -> None:
    rng = random.Random(SEED)
    rows = []
    for i in range(ROWS):
        shape = SHAPES[i % 3]
        color = list(COLORS)[(i // 3) % 4]
        count = (i // 12) % 4 + 1
        background = list(BACKGROUNDS)[(i + i // 48) % 3]
        if COLORS[color] == BACKGROUNDS[background]:
            raise SystemExit("a shape would be invisible on its background")
        pixels = draw(shape, COLORS[color], count, BACKGROUNDS[background], rng)
        relative = f"images/{shape}/shape_{i:03d}.png"
        path = OUT_DIR / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(pixels))

        # Two candidate captions for rubric scoring, each right on some facts and wrong on the others.
        facts = {"shape": shape, "color": color, "count": count, "background": background}
        row = {"image": relative, **facts}
        for name in ["a", "b"]:
            wrong = rng.sample(list(facts), rng.randint(0, 3))
            claimed = dict(facts)
            for fact in wrong:
                choices = {"shape": SHAPES, "color": list(COLORS), "count": [1, 2, 3, 4], "background": list(BACKGROUNDS)}
                claimed[fact] = rng.choice([c for c in choices[fact] if c != facts[fact]])
            row[f"candidate_{name}"] = caption(claimed["shape"], claimed["color"], claimed["count"], claimed["background"])
            row[f"candidate_{name}_facts"] = 4 - len(wrong)
        rows.append(row)

    with open(OUT_DIR / "shapes.jsonl", "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {len(rows)} images and {OUT_DIR / 'shapes.jsonl'}")


if __name__ == "__main__":
    main()
