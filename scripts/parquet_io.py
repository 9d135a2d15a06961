#!/usr/bin/env python3
"""Parquet for LabelForge, through polars (PyPI; Rust, streaming).

    parquet_io.py read FILE... [--columns '["a", "b"]']
    parquet_io.py write --input ROWS.jsonl --output FILE.parquet [--schema DECLARED] [--vectors JOINS]
                        [--images COLUMNS] [--rows-per-file N]

Streams the rows of the Parquet FILEs, in order, as JSON lines on stdout (one object per row, a
column per member). Nested and list columns are JSON values; a binary column is `{"base64": …}`
and a `datasets` Image column (a struct of `bytes` and `path`) `{"base64": …, "path": …}`, which
LabelForge's image fields read as they read image files. The files are read as a stream, a piece of
a row group at a time: memory does not grow with the file.

A file that is not Parquet (truncated, unfinished), a column named in --columns (a JSON list) that a
file lacks, or a column that one file has and another lacks or types differently, is reported on
stderr, naming the file and the column, with exit status 2. A file that fails while it is read is
read again with pyarrow, row group by row group and column by column, to name the damaged one.

`write` writes JSON lines as one Parquet file with fixed options (zstd level 3, statistics, row
groups of 100,000 rows), so the same lines give the same bytes. Columns take the types --schema
declares (see `declared_type`); the rest are typed from all their values (integers and decimals
together are float64; a column whose values are of different JSON types, or that holds an empty
object, is written as JSON text). --vectors joins rows of `.npy` files as fixed-size float32 lists;
--images writes `{base64, path}` columns as the `datasets` Image struct. When every column is
declared or known to hold one type, the file is streamed. --rows-per-file N writes
`FILE-00000-of-0000n.parquet`, … of N rows each instead (a Hugging Face split's shards). It prints
`{"rows": n, "files": […], "features": […]}`: the features as a Hugging Face dataset card's
`dataset_info.features` lists them.

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
        fail(damage(files, names) or f"{', '.join(files)}: reading failed ({str(error).splitlines()[0]}).")


def damage(files: list[str], names: list[str]) -> str | None:
    """Where a file polars could not read is damaged: the first row group and column that pyarrow
    cannot read either, as a message; `None` when pyarrow finds nothing (or is not installed)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    for path in files:
        try:
            parquet = pq.ParquetFile(path)
        except Exception as error:
            return f"{path}: not a readable Parquet file ({str(error).splitlines()[0]}). Write it again."
        first = 0
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            for name in names:
                try:
                    parquet.read_row_group(group, columns=[name])
                except Exception as error:
                    reason = " ".join(str(error).split())
                    span = f"row {first}" if rows == 1 else f"rows {first}–{first + rows - 1}"
                    return (
                        f"{path}: row group {group} ({span}), column '{name}': cannot be read ({reason}). The file "
                        "is damaged there: write it again."
                    )
            first += rows
    return None


WRITE_OPTIONS = {"compression": "zstd", "compression_level": 3, "statistics": True, "row_group_size": 100_000}


def feature_type(dtype):
    """A column type as `dataset_info.features` in a dataset card writes it (datasets 5)."""
    import polars as pl

    if isinstance(dtype, pl.Struct):
        return {"struct": [dict(name=field.name, **feature_type(field.dtype)) for field in dtype.fields]}
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = feature_type(dtype.inner)
        found = {"list": inner.get("dtype", inner.get("struct", inner))}
        if isinstance(dtype, pl.Array):
            found["length"] = dtype.size
        return found
    names = {pl.String: "string", pl.Int64: "int64", pl.Float64: "float64", pl.Boolean: "bool", pl.Null: "null"}
    for kind, name in names.items():
        if dtype == kind:
            return {"dtype": name}
    return {"dtype": str(dtype).lower()}


# Declared types (--schema): what LabelForge knows of a column before reading it.
#   "string" | "int64" | "float64" | "bool"   that type;
#   "uniform"                                 whatever type the values have, known to be one type;
#   {"list": T}                               a list of T;
#   {"members": T}                            an object whose members (named by the data) are T;
#   {"struct": {name: T or null}, "others": T} an object: the members named, the others as `others`;
#   null                                      not declared: inferred, and checked for mixed types.
SCALARS = {"string": "String", "int64": "Int64", "float64": "Float64", "bool": "Boolean"}


def declared_type(inferred, declared):
    """The column type: the declaration applied to the type polars inferred from the values
    (`None` where the values have none); `None` for a column that cannot be typed (declared members
    of an object no row has)."""
    import polars as pl

    if declared is None or declared == "uniform":
        return inferred
    if isinstance(declared, str):
        return getattr(pl, SCALARS[declared])
    if "list" in declared:
        inner = declared_type(inferred.inner if isinstance(inferred, pl.List) else None, declared["list"])
        return pl.List(inner) if inner is not None else inferred
    fields = {field.name: field.dtype for field in inferred.fields} if isinstance(inferred, pl.Struct) else {}
    if "members" in declared:
        typed = {name: declared_type(dtype, declared["members"]) for name, dtype in fields.items()}
        return pl.Struct(typed) if typed else inferred
    named = declared["struct"]
    typed = {name: declared_type(dtype, named.get(name, declared.get("others"))) for name, dtype in fields.items()}
    for name, inner in named.items():
        if name not in typed and inner is not None:
            typed[name] = declared_type(None, inner)
    typed = {name: dtype for name, dtype in typed.items() if dtype is not None}
    return pl.Struct(typed) if typed else inferred


class RowDeclaration:
    """The declared types of a row's columns (`--schema`: an object's declaration, `{"struct": …,
    "others": …}`)."""

    def __init__(self, declared=None, text=()):
        declared = declared or {}
        self.named = dict(declared.get("struct", {}), **{name: "string" for name in text})
        self.others = declared.get("others")

    def get(self, name):
        return self.named[name] if name in self.named else self.others

    def items(self):
        return self.named.items()


def covered(dtype, declared) -> bool:
    """Whether a declaration leaves nothing of a column's inferred type to check."""
    import polars as pl

    if declared is None:
        return False
    if isinstance(declared, str):
        return True
    if "list" in declared:
        return not isinstance(dtype, pl.List) or covered(dtype.inner, declared["list"])
    if not isinstance(dtype, pl.Struct):
        return True
    if "members" in declared:
        return all(covered(field.dtype, declared["members"]) for field in dtype.fields)
    named = declared["struct"]
    return all(
        covered(field.dtype, named[field.name] if field.name in named else declared.get("others"))
        for field in dtype.fields
    )


def kind(value) -> str:
    """A JSON value's type, as far as one Parquet column can hold it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


ITEMS = 0  # a path's step into a list's items (member names are strings)


def kinds_at(value, path: tuple, found: dict, declared=None) -> None:
    """Every JSON type found at each path inside a value (a tuple of member names and `ITEMS`) that
    the declaration leaves undeclared."""
    if declared is not None:
        if isinstance(declared, str):
            return
        if "struct" in declared and isinstance(value, dict):
            named = declared["struct"]
            for name, inner in value.items():
                kinds_at(inner, path + (name,), found, named[name] if name in named else declared.get("others"))
        elif "members" in declared and isinstance(value, dict):
            for name, inner in value.items():
                kinds_at(inner, path + (name,), found, declared["members"])
        elif "list" in declared and isinstance(value, list):
            for inner in value:
                kinds_at(inner, path + (ITEMS,), found, declared["list"])
        return
    found.setdefault(path, set()).add(kind(value))
    if isinstance(value, dict):
        if not value:
            found[path].add("empty object")
        for name, inner in value.items():
            kinds_at(inner, path + (name,), found)
    elif isinstance(value, list):
        for inner in value:
            kinds_at(inner, path + (ITEMS,), found)


def one_type(kinds: set) -> bool:
    """Whether one Parquet type holds these JSON types (null goes with any; an empty object with none)."""
    return len(kinds - {"null"}) <= 1 and "empty object" not in kinds


def as_json_text(value, path: tuple):
    """`value` with what is at `path` inside it written as JSON text (nulls stay null)."""
    if not path:
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    step, rest = path[0], path[1:]
    if step == ITEMS and isinstance(value, list):
        return [as_json_text(inner, rest) for inner in value]
    if isinstance(step, str) and isinstance(value, dict) and step in value:
        return dict(value, **{step: as_json_text(value[step], rest)})
    return value


def uniform(source: str, staging: str, schema: RowDeclaration) -> tuple[str, set]:
    """The rows as one Parquet type per column can hold them: where a column's undeclared values
    are of different JSON types (a number here, text there; polars would silently make the number
    text) or hold an empty object, the values at that place, and only there, are made JSON text, in
    a copy at `staging`. Returns the file to read (`source` itself when every column is uniform)
    and the columns made text whole."""
    found: dict[str, dict] = {}
    with open(source, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                for name, value in json.loads(line).items():
                    kinds_at(value, (), found.setdefault(name, {}), schema.get(name))
    mixed = {
        name: [path for path, kinds in paths.items() if not one_type(kinds)] for name, paths in found.items()
    }
    # The outermost mixed places: text there holds everything inside them.
    mixed = {
        name: [path for path in paths if not any(path[: len(other)] == other for other in paths if other != path)]
        for name, paths in mixed.items()
        if paths
    }
    if not mixed:
        return source, set()
    with open(source, encoding="utf-8") as lines, open(staging, "w", encoding="utf-8") as out:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            for name, paths in mixed.items():
                for path in paths:
                    if name in row:
                        row[name] = as_json_text(row[name], path)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return staging, {name for name, paths in mixed.items() if () in paths}


def with_vectors(frame, path: str, index_column: str, column: str):
    """The frame with each row's vector from an embed stage's `.npy` as `column` (by the row's
    `index_column`; null for a row that has none)."""
    import numpy as np
    import polars as pl

    vectors = np.load(path, mmap_mode="r")
    if vectors.ndim != 2 or vectors.shape[1] == 0:  # no row has a vector
        return frame
    dtype = pl.Array(pl.Float32, vectors.shape[1])
    if index_column not in frame.columns or frame.height == 0 or len(vectors) == 0:
        return frame.with_columns(pl.lit(None, dtype).alias(column))
    index = frame[index_column]
    rows = np.asarray(vectors[index.fill_null(0).to_numpy()], dtype=np.float32)
    values = pl.Series(column, rows, dtype=dtype)
    return frame.with_columns(pl.when(index.is_not_null()).then(values).otherwise(None).alias(column))


def with_images(frame, columns: list[str]):
    """The frame with each image column (`{base64, path}`) as the `datasets` Image struct
    (`{bytes, path}`)."""
    import polars as pl

    found = [name for name in columns if name in frame.columns and isinstance(frame.schema[name], pl.Struct)]
    return frame.with_columns(
        [
            pl.when(pl.col(name).is_null())
            .then(None)
            .otherwise(
                pl.struct(
                    pl.col(name).struct.field("base64").str.decode("base64").alias("bytes"),
                    pl.col(name).struct.field("path").cast(pl.String).alias("path"),
                )
            )
            .alias(name)
            for name in found
        ]
    ), found


def inferred_schema(source: str) -> dict:
    """The file's columns and types as polars infers them from all the values."""
    import polars as pl

    return dict(pl.scan_ndjson(source, infer_schema_length=None).collect_schema())


def frame_schema(inferred: dict, schema: RowDeclaration):
    """The file's columns and types: as inferred, with the declarations applied (a declared column
    no row has is added)."""
    typed = {name: declared_type(dtype, schema.get(name)) for name, dtype in inferred.items()}
    for name, declared in schema.items():
        if name not in typed and declared is not None and declared != "uniform":
            typed[name] = declared_type(None, declared)
    return {name: dtype for name, dtype in typed.items() if dtype is not None}


def write_frame(source: str, parts: list, schema: RowDeclaration, vectors: list, images: list[str], inferred=None):
    """Writes the rows of `source` to `parts` (`(path, first row, rows)`; rows `None`: all),
    returning the written schema and the image columns. Streams unless vectors or images are
    joined in."""
    import polars as pl

    columns = frame_schema(inferred if inferred is not None else inferred_schema(source), schema)
    if not vectors and not images:
        rows = pl.scan_ndjson(source, schema=columns)
        for path, first, count in parts:
            (rows if count is None else rows.slice(first, count)).sink_parquet(path, **WRITE_OPTIONS)
        return columns, []
    frame = pl.read_ndjson(source, schema=columns)
    for joined in vectors:
        frame = with_vectors(frame, joined["npy"], joined["index"], joined["column"])
        if joined.get("drop_index"):
            frame = frame.drop(joined["index"], strict=False)
    frame, found = with_images(frame, images)
    for path, first, count in parts:
        (frame if count is None else frame.slice(first, count)).write_parquet(path, **WRITE_OPTIONS)
    return dict(frame.schema), found


def file_parts(source: str, target: str, rows_per_file: int | None) -> list:
    """Where the rows go: `target` whole, or, with `rows_per_file`, `<target>-00000-of-0000n.parquet`
    and on, `rows_per_file` rows each (`(path, first row, rows)`)."""
    if rows_per_file is None:
        return [(target, 0, None)]
    with open(source, "rb") as lines:
        total = sum(1 for line in lines if line.strip())
    count = max(1, -(-total // rows_per_file))
    stem = target[: -len(".parquet")] if target.endswith(".parquet") else target
    return [(f"{stem}-{i:05d}-of-{count:05d}.parquet", i * rows_per_file, rows_per_file) for i in range(count)]


def write(source: str, target: str, declared, vectors: list, images: list[str], rows_per_file: int | None) -> None:
    import polars as pl

    handle, staging = tempfile.mkstemp(suffix=".jsonl")
    os.close(handle)
    finals = file_parts(source, target, rows_per_file)
    parts = [(path + ".partial", first, count) for path, first, count in finals]
    schema = RowDeclaration(declared)
    undeclared = None
    try:
        if os.path.getsize(source) == 0:
            for path, _, _ in parts:
                pl.DataFrame().write_parquet(path, **WRITE_OPTIONS)
            columns, found = {}, []
        else:
            try:
                inferred = inferred_schema(source)
            except pl.exceptions.PolarsError:  # values polars cannot type together: checked below
                inferred = None
            if inferred is not None and all(covered(dtype, schema.get(name)) for name, dtype in inferred.items()):
                read, as_text = source, set()
            else:
                read, as_text = uniform(source, staging, schema)
            typed = RowDeclaration(declared, text=as_text)
            try:
                columns, found = write_frame(read, parts, typed, vectors, images, inferred if read == source else None)
            except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as error:
                # A value that is not of its declared type (a LabelForge bug): the types as inferred.
                undeclared = str(error).splitlines()[0]
                read, as_text = uniform(source, staging, RowDeclaration())
                columns, found = write_frame(read, parts, RowDeclaration(text=as_text), vectors, images)
        rows = sum(pl.scan_parquet(path).select(pl.len()).collect().item() for path, _, _ in parts)
        for (path, _, _), (final, _, _) in zip(parts, finals):
            os.replace(path, final)
    except (Exception, pl.exceptions.PanicException) as error:
        fail(f"{source}: cannot be written as Parquet ({str(error).splitlines()[0]}).")
    finally:
        for path in [staging] + [path for path, _, _ in parts]:
            if os.path.exists(path):
                os.remove(path)
    features = [
        {"name": name, "dtype": "image"} if name in found else dict(name=name, **feature_type(dtype))
        for name, dtype in columns.items()
    ]
    result = {"rows": rows, "files": [path for path, _, _ in finals], "features": features, "options": WRITE_OPTIONS}
    if undeclared is not None:
        result["undeclared"] = undeclared
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    reading = sub.add_parser("read")
    reading.add_argument("files", nargs="+")
    reading.add_argument("--columns", default=None, help="a JSON list of column names")
    writing = sub.add_parser("write")
    writing.add_argument("--input", required=True)
    writing.add_argument("--output", required=True)
    writing.add_argument("--schema", default="{}", help="the declared types of the columns, as an object's")
    writing.add_argument(
        "--vectors", default="[]", help='a JSON list of {"npy", "index", "column", "drop_index"}: vectors joined to the rows'
    )
    writing.add_argument("--images", default="[]", help="a JSON list of image columns ({base64, path})")
    writing.add_argument(
        "--rows-per-file", type=int, default=None, help="write <output>-00000-of-0000n.parquet, … of this many rows"
    )
    args = parser.parse_args()
    # Ctrl-C is LabelForge's to handle: it stops this reader itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.command == "read":
        read(args.files, json.loads(args.columns) if args.columns else None)
    else:
        write(
            args.input,
            args.output,
            json.loads(args.schema),
            json.loads(args.vectors),
            json.loads(args.images),
            args.rows_per_file,
        )


if __name__ == "__main__":
    main()
