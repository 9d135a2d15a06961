#!/usr/bin/env python3
"""Parquet for LabelForge, through polars (PyPI; Rust, streaming).

    parquet_io.py read FILE... [--columns '["a", "b"]']
    parquet_io.py write --input ROWS.jsonl --output FILE.parquet

Streams the rows of the Parquet FILEs, in order, as JSON lines on stdout (one object per row, a
column per member). Nested and list columns are JSON values; a binary column is `{"base64": …}`
and a `datasets` Image column (a struct of `bytes` and `path`) `{"base64": …, "path": …}`, which
LabelForge's image fields read as they read image files. The files are read as a stream, a piece of
a row group at a time: memory does not grow with the file.

A file that is not Parquet (truncated, unfinished), a column named in --columns (a JSON list) that a
file lacks, or a column that one file has and another lacks or types differently, is reported on
stderr, naming the file and the column, with exit status 2.

`write` writes JSON lines as one Parquet file with fixed options (zstd level 3, statistics, row
groups of 100,000 rows), so the same lines give the same bytes; each column's type is inferred from
all its values (integers and decimals together are float64; a column whose values are of different
JSON types, or that holds an empty object, is written as JSON text). It prints `{"rows": n, "features":
[…]}`: the columns as a Hugging Face dataset card's `dataset_info.features` lists them.

LabelForge starts this script; it is not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(2)


def schemas(files: list[str]):
    import polars as pl

    found = []
    for path in files:
        try:
            found.append(pl.read_parquet_schema(path))
        except Exception as error:  # polars raises several kinds for a damaged file
            fail(
                f"{path}: not a readable Parquet file ({str(error).splitlines()[0]}). A truncated or unfinished "
                "file? Write it again."
            )
    return found


def json_ready(name: str, dtype):
    """An expression for the column as JSON can hold it: binary as base64."""
    import polars as pl

    column = pl.col(name)
    if dtype == pl.Binary:
        value = pl.struct(column.bin.encode("base64").alias("base64"))
    elif isinstance(dtype, pl.Struct) and {field.name for field in dtype.fields} == {"bytes", "path"}:
        value = pl.struct(
            column.struct.field("bytes").bin.encode("base64").alias("base64"),
            column.struct.field("path").alias("path"),
        )
    else:
        return column
    return pl.when(column.is_null()).then(None).otherwise(value).alias(name)


def read(files: list[str], columns: list[str] | None) -> None:
    import polars as pl

    found = schemas(files)
    first = found[0]
    for path, schema in zip(files[1:], found[1:]):
        for name in sorted(set(first) | set(schema)):
            if columns is not None and name not in columns:
                continue
            if name not in schema or name not in first:
                holder, lacker = (files[0], path) if name in first else (path, files[0])
                fail(
                    f"{lacker}: no column '{name}', which {holder} has. The shards of a dataset must share one "
                    "schema."
                )
            if first[name] != schema[name]:
                fail(
                    f"{path}: column '{name}' is {schema[name]}, but {files[0]} has it as {first[name]}. The shards "
                    "of a dataset must share one schema."
                )
    if columns is not None:
        for path, schema in zip(files, found):
            missing = [name for name in columns if name not in schema]
            if missing:
                fail(
                    f"{path}: no column '{missing[0]}' (dataset.columns names it). Its columns: "
                    + ", ".join(schema.keys())
                    + "."
                )
    names = columns if columns is not None else list(first.keys())
    frame = pl.scan_parquet(files).select(
        [json_ready(name, first[name]) for name in names]
    )
    try:
        # The stream itself, not /dev/stdout: opening that path again would truncate a file stdout is.
        frame.sink_ndjson(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        sys.exit(0)  # the reader stopped early (`--limit`)
    except Exception as error:
        if "Broken pipe" in str(error):
            sys.exit(0)
        fail(f"{', '.join(files)}: reading failed ({str(error).splitlines()[0]}).")


WRITE_OPTIONS = {"compression": "zstd", "compression_level": 3, "statistics": True, "row_group_size": 100_000}


def feature_type(dtype):
    """A column type as `dataset_info.features` in a dataset card writes it (datasets 5)."""
    import polars as pl

    if isinstance(dtype, pl.Struct):
        return {"struct": [dict(name=field.name, **feature_type(field.dtype)) for field in dtype.fields]}
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = feature_type(dtype.inner)
        return {"list": inner.get("dtype", inner.get("struct", inner))}
    names = {pl.String: "string", pl.Int64: "int64", pl.Float64: "float64", pl.Boolean: "bool", pl.Null: "null"}
    for kind, name in names.items():
        if dtype == kind:
            return {"dtype": name}
    return {"dtype": str(dtype).lower()}


def kind(value) -> str:
    """A JSON value's type, as far as one Parquet column can hold it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def kinds_at(value, path: str, found: dict) -> None:
    """Every JSON type found at each path inside a value (`a.b`, `a[]`)."""
    found.setdefault(path, set()).add(kind(value))
    if isinstance(value, dict):
        if not value:
            found[path].add("empty object")
        for name, inner in value.items():
            kinds_at(inner, path + "." + name, found)
    elif isinstance(value, list):
        for inner in value:
            kinds_at(inner, path + "[]", found)


def one_type(kinds: set) -> bool:
    """Whether one Parquet type holds these JSON types (null goes with any; an empty object with none)."""
    return len(kinds - {"null"}) <= 1 and "empty object" not in kinds


def uniform(source: str, staging: str) -> str:
    """The rows as one Parquet type per column can hold them: a column whose values are of
    different JSON types anywhere inside (a number here, text there; polars would silently make the
    number text) or hold an empty object is made JSON text, in a copy at `staging`. Returns the file
    to read: `source` itself when every column is uniform."""
    found: dict[str, dict] = {}
    with open(source, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                for name, value in json.loads(line).items():
                    kinds_at(value, "", found.setdefault(name, {}))
    as_text = {name for name, paths in found.items() if not all(one_type(kinds) for kinds in paths.values())}
    if not as_text:
        return source
    with open(source, encoding="utf-8") as lines, open(staging, "w", encoding="utf-8") as out:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            for name in as_text:
                if row.get(name) is not None:
                    row[name] = json.dumps(row[name], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return staging


def write(source: str, target: str) -> None:
    import polars as pl

    handle, staging = tempfile.mkstemp(suffix=".jsonl")
    os.close(handle)
    partial = target + ".partial"
    try:
        if os.path.getsize(source) == 0:
            frame = pl.DataFrame()
        else:
            frame = pl.read_ndjson(uniform(source, staging), infer_schema_length=None)
        frame.write_parquet(partial, **WRITE_OPTIONS)
        os.replace(partial, target)
    except Exception as error:
        fail(f"{source}: cannot be written as Parquet ({str(error).splitlines()[0]}).")
    finally:
        for path in (staging, partial):
            if os.path.exists(path):
                os.remove(path)
    features = [dict(name=name, **feature_type(dtype)) for name, dtype in frame.schema.items()]
    print(json.dumps({"rows": frame.height, "features": features, "options": WRITE_OPTIONS}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    reading = sub.add_parser("read")
    reading.add_argument("files", nargs="+")
    reading.add_argument("--columns", default=None, help="a JSON list of column names")
    writing = sub.add_parser("write")
    writing.add_argument("--input", required=True)
    writing.add_argument("--output", required=True)
    args = parser.parse_args()
    # Ctrl-C is LabelForge's to handle: it stops this reader itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.command == "read":
        read(args.files, json.loads(args.columns) if args.columns else None)
    else:
        write(args.input, args.output)


if __name__ == "__main__":
    main()
