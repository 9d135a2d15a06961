#!/usr/bin/env python3
"""Pair up the MVP reviews for pairwise judging: data/mvp/review_pairs.jsonl.

Row k holds reviews 2k and 2k+1 of data/mvp/reviews.jsonl as `review_a` and `review_b`, with
their ids. Deterministic; Python 3.11 standard library only.
"""

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "mvp"


def main() -> None:
    reviews = [json.loads(line) for line in (DATA / "reviews.jsonl").read_text(encoding="utf-8").splitlines() if line]
    with open(DATA / "review_pairs.jsonl", "w", encoding="utf-8") as out:
        for k in range(len(reviews) // 2):
            a, b = reviews[2 * k], reviews[2 * k + 1]
            row = {"id": f"p{k + 1:04d}", "id_a": a["id"], "id_b": b["id"], "review_a": a["text"], "review_b": b["text"]}
            out.write(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")
    print(f"wrote {len(reviews) // 2} pairs to {DATA / 'review_pairs.jsonl'}")


if __name__ == "__main__":
    main()
