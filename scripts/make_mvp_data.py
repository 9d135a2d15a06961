#!/usr/bin/env python3
"""Generate the LabelForge MVP dataset: 240 self-written, labeled product reviews.

Deterministic (seeded RNG, fixed iteration order): running it twice produces
byte-identical files. Python 3.11 standard library only.

Outputs (relative to the repository root):
    data/mvp/reviews.jsonl   one JSON object per line: id, text, sentiment, topic, mentions_price
    data/mvp/reviews.csv     same rows, with a header; mentions_price written as true/false
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from pathlib import Path

SEED = 20261125
ROWS_PER_CELL = 16  # 3 sentiments x 5 topics x 16 = 240 rows
PRICE_MENTIONS_PER_NONPRICE_CELL = 4  # 4/16 = 25% of non-price rows mention price

SENTIMENTS = ["positive", "negative", "neutral"]
TOPICS = ["quality", "shipping", "price", "customer_service", "usability"]

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "data" / "mvp"

# All product names are singular noun phrases so templates stay grammatical.
PRODUCTS = [
    "noise-cancelling headset",
    "blender",
    "hiking backpack",
    "desk lamp",
    "pair of running shoes",
    "coffee grinder",
    "phone case",
    "electric kettle",
    "yoga mat",
    "bluetooth speaker",
    "water bottle",
    "office chair",
    "mechanical keyboard",
    "air fryer",
    "rice cooker",
    "laptop stand",
    "smartwatch",
    "travel umbrella",
    "hair dryer",
    "cast iron skillet",
]

# Usability reviews only make sense for things with controls or a setup step.
USABILITY_PRODUCTS = [
    "noise-cancelling headset",
    "blender",
    "desk lamp",
    "coffee grinder",
    "electric kettle",
    "bluetooth speaker",
    "mechanical keyboard",
    "air fryer",
    "rice cooker",
    "smartwatch",
    "hair dryer",
    "robot vacuum",
    "label printer",
    "digital kitchen scale",
    "e-reader",
]

PRICES = [19, 24, 29, 35, 39, 45, 49, 59, 79, 89, 99, 129, 149]
FEES = [4, 5, 6, 7, 8, 10, 12, 15]

# (sentiment, topic) -> (main sentences, detail sentences). Non-price templates
# must not mention price/cost/money; that is asserted below.
TEMPLATES: dict[tuple[str, str], tuple[list[str], list[str]]] = {
    ("positive", "quality"): (
        [
            "The {p} feels solid and well built.",
            "Really impressed with the build quality of this {p}.",
            "This {p} is sturdy and the materials feel premium.",
            "Six months in and the {p} still looks and works like new.",
            "Excellent craftsmanship on the {p}; every edge and joint is clean.",
        ],
        [
            "No scratches, no rattles, nothing loose.",
            "It has survived daily use without a single issue.",
            "You can tell it was made to last.",
            "Easily the best-made one I've owned.",
            "Even the small parts feel durable.",
            "I'd happily buy another one.",
        ],
    ),
    ("negative", "quality"): (
        [
            "The {p} broke after two weeks of light use.",
            "Poor build quality on this {p}; the plastic cracked almost immediately.",
            "This {p} feels flimsy and fell apart within a month.",
            "The {p} started falling apart after a few days.",
            "Terrible quality: the {p} arrived with loose parts and wore out right away.",
        ],
        [
            "Very disappointed.",
            "I would not trust it to last a season.",
            "Everything about it feels fragile.",
            "I won't be buying this brand again.",
            "It's going straight back.",
            "Avoid this one.",
        ],
    ),
    ("neutral", "quality"): (
        [
            "The {p} is decently made, though not exceptional.",
            "Build quality on the {p} is okay; some parts feel solid and others feel a bit thin.",
            "The {p} seems about average in quality.",
            "The {p} is holding up fine so far, but it's only been a few weeks.",
            "Quality of the {p} is acceptable.",
        ],
        [
            "Time will tell how it holds up.",
            "It does the job, nothing special.",
            "Not great, not terrible.",
            "About what I expected.",
            "No major complaints, no real praise either.",
        ],
    ),
    ("positive", "shipping"): (
        [
            "The {p} arrived two days earlier than promised.",
            "Fast shipping: the {p} showed up the next day.",
            "Delivery was quick and the {p} was packed carefully.",
            "My {p} arrived well ahead of schedule and in perfect condition.",
            "Tracking was accurate and the {p} came sooner than expected.",
        ],
        [
            "The box was padded and nothing was damaged.",
            "Great delivery experience.",
            "Couldn't have asked for better shipping.",
            "The courier even left it in a safe spot.",
            "Really happy with how fast it got here.",
        ],
    ),
    ("negative", "shipping"): (
        [
            "The {p} arrived nine days late with no explanation.",
            "Shipping was a mess: the {p} was sent to the wrong address first.",
            "My {p} showed up in a crushed box with a dented corner.",
            "Delivery of the {p} kept getting pushed back, and tracking never updated.",
            "It took almost three weeks for the {p} to arrive.",
        ],
        [
            "Really frustrating delivery experience.",
            "The packaging was torn open when it arrived.",
            "I won't order from this seller again because of the shipping.",
            "I had to chase the courier twice.",
            "Terrible shipping.",
        ],
    ),
    ("neutral", "shipping"): (
        [
            "The {p} arrived on the estimated date.",
            "Shipping for the {p} took about a week, as listed.",
            "Delivery of the {p} was standard: no delays, nothing fast either.",
            "The {p} came on time, exactly as scheduled.",
            "The {p} arrived one day late, but the box was intact.",
        ],
        [
            "Packaging was plain but adequate.",
            "Tracking worked.",
            "Nothing to report either way.",
            "A standard delivery experience.",
            "It was fine.",
        ],
    ),
    ("positive", "price"): (
        [
            "Great value: the {p} cost half of what similar ones go for.",
            "For ${n}, this {p} is a steal.",
            "The {p} is very reasonably priced for what you get.",
            "I got the {p} on sale for ${n} and it's worth every penny.",
            "Honestly the best {p} you can get for the money.",
        ],
        [
            "I'd happily have paid more for it.",
            "Cheaper than the big brands and just as good.",
            "Excellent value overall.",
            "My wallet is happy.",
            "Hard to beat at this price.",
        ],
    ),
    ("negative", "price"): (
        [
            "Way overpriced: ${n} for a {p} like this is ridiculous.",
            "The {p} is not worth the money.",
            "I paid ${n} for this {p} and feel ripped off.",
            "Far too expensive for such a basic {p}.",
            "The {p} costs twice as much as comparable models.",
        ],
        [
            "You can find better for half the price.",
            "Save your money.",
            "Poor value overall.",
            "Definitely not worth what they charge.",
            "I regret spending that much.",
        ],
    ),
    ("neutral", "price"): (
        [
            "The {p} is priced about the same as other options.",
            "At ${n}, the {p} is fairly priced, neither a bargain nor a rip-off.",
            "The {p} is a bit pricey, but not unreasonable for what it is.",
            "The price of the {p} is average for this category.",
            "The {p} cost ${n}, which seems about right.",
        ],
        [
            "Not a bargain, not overpriced.",
            "You get what you pay for.",
            "I'd buy it again on sale, maybe not at full price.",
            "It's fair for the money.",
            "Nothing special about the cost either way.",
        ],
    ),
    ("positive", "customer_service"): (
        [
            "Customer support replaced my faulty {p} within a day.",
            "The support team was friendly and fixed the problem with my {p} quickly.",
            "I emailed customer service about my {p} and got a helpful answer within an hour.",
            "Outstanding customer service: they walked me through fixing a fault with my {p} step by step.",
            "The seller's support staff went above and beyond when my {p} had an issue.",
        ],
        [
            "They were polite, patient, and genuinely helpful.",
            "Best support experience I've had in years.",
            "I'll buy from them again because of how they treated me.",
            "Customer service like this is rare.",
            "They followed up to make sure everything was resolved.",
        ],
    ),
    ("negative", "customer_service"): (
        [
            "Customer service ignored three emails about my broken {p}.",
            "Support was rude and refused to help with my {p}.",
            "I spent an hour on hold trying to get help with the {p}, then got disconnected.",
            "The seller's support team kept sending me copy-paste replies about my {p}.",
            "Nobody from customer service ever responded about the defective {p}.",
        ],
        [
            "Worst support experience I've had.",
            "They clearly don't care about their customers.",
            "I gave up on contacting them.",
            "Avoid if you ever expect help.",
            "Completely unhelpful.",
        ],
    ),
    ("neutral", "customer_service"): (
        [
            "Customer service answered my question about the {p} after two days.",
            "Support for the {p} was polite but slow.",
            "I contacted the seller about my {p}, and they replied with a generic answer.",
            "The support team helped with my {p} eventually, though it took a few emails.",
            "Customer service for the {p} was okay, nothing more.",
        ],
        [
            "The issue is partly resolved.",
            "Neither impressive nor terrible.",
            "It got sorted out in the end.",
            "A standard support experience.",
            "They were polite, at least.",
        ],
    ),
    ("positive", "usability"): (
        [
            "The {p} is incredibly easy to use right out of the box.",
            "Setting up the {p} took less than five minutes.",
            "The controls on the {p} are intuitive and simple.",
            "Using the {p} every day is effortless.",
            "The {p} is so easy to use that I never needed the manual.",
        ],
        [
            "Everything is exactly where you'd expect it.",
            "Even my parents figured it out instantly.",
            "Very user-friendly design.",
            "It just works.",
            "A joy to use.",
        ],
    ),
    ("negative", "usability"): (
        [
            "The {p} is confusing and awkward to use.",
            "Setting up the {p} was a nightmare, and the instructions made no sense.",
            "The buttons on the {p} are hard to reach and easy to press by accident.",
            "Using the {p} is frustrating every single time.",
            "The {p} is clumsy to operate and the manual is useless.",
        ],
        [
            "I still haven't figured out half the features.",
            "Poorly thought-out design.",
            "I dread using it.",
            "It shouldn't be this hard.",
            "Very frustrating.",
        ],
    ),
    ("neutral", "usability"): (
        [
            "The {p} is easy enough to use once you get used to it.",
            "Setting up the {p} took about twenty minutes, which is normal.",
            "The controls on the {p} are fine, though a couple of settings are buried in menus.",
            "The {p} has a short learning curve, nothing unusual.",
            "The {p} works as described; the interface is plain.",
        ],
        [
            "It works, nothing special.",
            "Not the most intuitive, not the worst either.",
            "Usable, if a little fiddly.",
            "About what I expected.",
            "It gets the job done.",
        ],
    ),
}

# Extra sentence that adds an explicit price mention to a non-price review while
# keeping its sentiment and main topic. {n} = product price, {s} = small fee.
PRICE_ADDONS: dict[tuple[str, str], list[str]] = {
    ("positive", "quality"): [
        "Worth every penny.",
        "Great quality for the price.",
        "Well worth the ${n} I paid.",
    ],
    ("negative", "quality"): [
        "Not worth the ${n} I paid.",
        "A complete waste of money.",
        "For that price I expected much better.",
    ],
    ("neutral", "quality"): [
        "Fair quality for the price.",
        "About what you'd expect for ${n}.",
        "Decent enough for what it costs.",
    ],
    ("positive", "shipping"): [
        "Express delivery cost only ${s} extra.",
        "The ${s} express option was money well spent.",
        "Express delivery was free on orders over ${n}, which was a nice bonus.",
    ],
    ("negative", "shipping"): [
        "I even paid ${s} extra for express shipping.",
        "What a waste of the ${s} shipping fee.",
        "The extra ${s} for faster delivery was wasted money.",
    ],
    ("neutral", "shipping"): [
        "Shipping cost ${s}, which is standard.",
        "The ${s} delivery fee was about normal.",
        "I paid the usual ${s} shipping charge.",
    ],
    ("positive", "customer_service"): [
        "They even refunded my money without any hassle.",
        "They refunded the ${s} shipping cost as an apology.",
        "They gave me a ${s} credit on my account for the trouble.",
    ],
    ("negative", "customer_service"): [
        "I'm still waiting for my ${n} refund.",
        "They refused to refund my money.",
        "They wanted me to pay ${s} to ship it back for repair.",
    ],
    ("neutral", "customer_service"): [
        "They offered a partial refund of ${s}.",
        "A refund of ${s} was processed after a week.",
        "They offered a ${s} store credit, which was fine.",
    ],
    ("positive", "usability"): [
        "Great value for something this easy to use.",
        "Worth every penny for the convenience alone.",
        "Well worth the ${n} for how simple it is.",
    ],
    ("negative", "usability"): [
        "Not worth the money if you can't use it.",
        "I paid ${n} for something I can barely operate.",
        "Money wasted on a confusing design.",
    ],
    ("neutral", "usability"): [
        "Reasonable for the price, I suppose.",
        "It's fine for ${n}.",
        "Fair for what it costs.",
    ],
}

# Hand-written rows that stress escaping: apostrophes, double quotes, "&",
# non-ASCII letters, curly quotes and emoji. (sentiment, topic, mentions_price, text)
SPECIAL_ROWS: list[tuple[str, str, bool, str]] = [
    ("positive", "quality", False,
     "The café-style milk frother makes silky foam every single time, and it still feels brand new after months of daily use."),
    ("negative", "shipping", False,
     "The box was labeled \"fragile\" but the courier clearly didn't care: the glass kettle arrived shattered."),
    ("neutral", "usability", False,
     "The \"smart\" mode on the air fryer is hit or miss. The manual controls work fine, so I mostly use those."),
    ("positive", "customer_service", True,
     "Support at Smith & Sons replaced my cracked phone case at no charge and refunded the $6 shipping. Fantastic service!"),
    ("negative", "price", True,
     "The \"premium\" Müller coffee grinder costs $149 and grinds no better than my old $30 one. Don't waste your money."),
    ("positive", "usability", False,
     "The robot vacuum maps the whole flat on its own & the app is dead simple. Love it 😍"),
    ("neutral", "shipping", False,
     "The yoga mat arrived on the quoted date in a plain box 📦. Nothing to report either way."),
    ("negative", "customer_service", False,
     "I asked support \"where's my replacement?\" four times & got the same canned reply. Still waiting."),
    ("neutral", "quality", True,
     "It's a so-so toaster: the crème finish looks nice, but the lever feels a bit loose. Fair for $35, I guess."),
    ("positive", "price", True,
     "Only €25 for a backpack this good? That's a bargain, and it's half what I paid for my last one 🙌"),
    ("negative", "usability", False,
     "Don't buy this label printer if you're impatient: the touch screen's menus are a maze, and the “quick start” guide isn't quick."),
]

PRICE_RE = re.compile(
    r"\$|€|\b(price[sd]?|pricey|overpriced|costs?|money|value|dollars?|penny|cheap(er)?|"
    r"expensive|refund(ed)?|fee|paid|pay|charge|bargain|steal|wallet|credit|free)\b",
    re.IGNORECASE,
)


def render(rng: random.Random, template: str, product: str) -> str:
    return template.format(p=product, n=rng.choice(PRICES), s=rng.choice(FEES))


def make_cell(rng: random.Random, sentiment: str, topic: str, seen: set[str]) -> list[dict]:
    specials = [r for r in SPECIAL_ROWS if r[0] == sentiment and r[1] == topic]
    rows = [
        {"text": text, "sentiment": s, "topic": t, "mentions_price": mp}
        for (s, t, mp, text) in specials
    ]
    for r in rows:
        seen.add(r["text"])

    n_generate = ROWS_PER_CELL - len(rows)
    if topic == "price":
        price_flags = [True] * n_generate
    else:
        already = sum(1 for r in rows if r["mentions_price"])
        n_price = PRICE_MENTIONS_PER_NONPRICE_CELL - already
        price_flags = [True] * n_price + [False] * (n_generate - n_price)
        rng.shuffle(price_flags)

    mains, details = TEMPLATES[(sentiment, topic)]
    products = USABILITY_PRODUCTS if topic == "usability" else PRODUCTS
    for with_price in price_flags:
        for _attempt in range(1000):
            product = rng.choice(products)
            parts = [render(rng, rng.choice(mains), product), render(rng, rng.choice(details), product)]
            if with_price and topic != "price":
                parts.append(render(rng, rng.choice(PRICE_ADDONS[(sentiment, topic)]), product))
            text = " ".join(parts)
            if text not in seen:
                break
        else:
            raise RuntimeError(f"could not make a distinct text for {sentiment}/{topic}")
        seen.add(text)
        rows.append({"text": text, "sentiment": sentiment, "topic": topic, "mentions_price": with_price})
    return rows


def build_rows() -> list[dict]:
    rng = random.Random(SEED)
    seen: set[str] = set()
    rows: list[dict] = []
    for sentiment in SENTIMENTS:
        for topic in TOPICS:
            rows.extend(make_cell(rng, sentiment, topic, seen))
    rng.shuffle(rows)
    out = []
    for i, r in enumerate(rows, start=1):
        out.append({
            "id": f"r{i:04d}",
            "text": r["text"],
            "sentiment": r["sentiment"],
            "topic": r["topic"],
            "mentions_price": r["mentions_price"],
        })
    return out


def check(rows: list[dict]) -> None:
    assert len(rows) == 240, len(rows)
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts), "duplicate texts"
    for r in rows:
        words = len(r["text"].split())
        assert 8 <= words <= 45, (words, r["text"])
        assert r["sentiment"] in SENTIMENTS and r["topic"] in TOPICS
        if r["topic"] == "price":
            assert r["mentions_price"], r
        # The price flag must agree with the wording of the text.
        assert bool(PRICE_RE.search(r["text"])) == r["mentions_price"], r


def write(rows: list[dict]) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with open(OUT_DIR / "reviews.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(OUT_DIR / "reviews.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "text", "sentiment", "topic", "mentions_price"])
        for r in rows:
            w.writerow([r["id"], r["text"], r["sentiment"], r["topic"],
                        "true" if r["mentions_price"] else "false"])


def main() -> None:
    rows = build_rows()
    check(rows)
    write(rows)
    print(f"wrote {len(rows)} rows to {OUT_DIR.relative_to(ROOT)}/reviews.jsonl and reviews.csv")
    sc = Counter(r["sentiment"] for r in rows)
    tc = Counter(r["topic"] for r in rows)
    pc = Counter(r["mentions_price"] for r in rows)
    print("sentiment:", ", ".join(f"{k}={sc[k]}" for k in SENTIMENTS))
    print("topic:", ", ".join(f"{k}={tc[k]}" for k in TOPICS))
    print(f"mentions_price: true={pc[True]}, false={pc[False]}")


if __name__ == "__main__":
    main()
