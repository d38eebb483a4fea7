"""Tiny text assets the text tests build themselves: a BERT preset, word vectors, data."""

import os

import numpy as np

POSITIVE = ["good", "great", "fine", "lovely", "liked"]
NEGATIVE = ["bad", "awful", "poor", "boring", "hated"]
FILLER = ["the", "a", "movie", "film", "plot", "i", "it", "was"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL + FILLER + POSITIVE + NEGATIVE


def sentences(words, count, seed):
    """`count` short sentences of filler plus one word from `words`."""
    rng = np.random.default_rng(seed)
    return [f"{rng.choice(FILLER)} {rng.choice(FILLER)} was {rng.choice(words)}" for _ in range(count)]


def save_tiny_bert_preset(folder, num_layers=2):
    """A random 2-layer, 8-wide BERT with VOCAB, saved as a keras-hub preset."""
    import keras_hub

    keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB), num_layers=num_layers, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=32,
    ).save_to_preset(str(folder))
    keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True).save_to_preset(str(folder))
    return str(folder)


def write_word_vectors(path, words, dim=4, header=False, seed=0):
    """A text-format vectors file: positive words near +1, negative near -1 in dim 0."""
    rng = np.random.default_rng(seed)
    lines = [f"{len(words)} {dim}"] if header else []
    vectors = {}
    for word in words:
        vector = rng.normal(0, 0.1, dim)
        vector[0] += 1.0 if word in POSITIVE else -1.0 if word in NEGATIVE else 0.0
        vectors[word] = vector.astype(np.float32)
        lines.append(word + " " + " ".join(f"{v:.6f}" for v in vector))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return vectors


def write_line_files(folder, count=20, seed=0, stem="reviews"):
    """`<stem>.pos` / `<stem>.neg`, one sentence per line."""
    os.makedirs(folder, exist_ok=True)
    for extension, words, offset in (("pos", POSITIVE, 0), ("neg", NEGATIVE, 1)):
        with open(os.path.join(folder, f"{stem}.{extension}"), "w", encoding="utf-8") as f:
            f.write("\n".join(sentences(words, count, seed + offset)) + "\n")
    return str(folder)


def save_tiny_hf_bert(folder, hidden=8, intermediate=16, layers=1, positions=32, seed=0):
    """A random BERT in Hugging Face format: config.json, model.safetensors, vocab.txt.

    Returns the tensors written, by their Hugging Face names.
    """
    import json

    from safetensors.numpy import save_file

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = len(VOCAB)

    def weights(*shape):
        return rng.normal(0, 0.2, shape).astype(np.float32)

    tensors = {
        "embeddings.word_embeddings.weight": weights(vocab, hidden),
        "embeddings.position_embeddings.weight": weights(positions, hidden),
        "embeddings.token_type_embeddings.weight": weights(2, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
        "pooler.dense.weight": weights(hidden, hidden),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
    }
    for i in range(layers):
        prefix = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            tensors[prefix + name + ".weight"] = weights(hidden, hidden)
            tensors[prefix + name + ".bias"] = weights(hidden)
        tensors[prefix + "intermediate.dense.weight"] = weights(intermediate, hidden)
        tensors[prefix + "intermediate.dense.bias"] = weights(intermediate)
        tensors[prefix + "output.dense.weight"] = weights(hidden, intermediate)
        tensors[prefix + "output.dense.bias"] = weights(hidden)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[prefix + norm + ".weight"] = np.ones(hidden, np.float32)
            tensors[prefix + norm + ".bias"] = np.zeros(hidden, np.float32)
    save_file(tensors, os.path.join(folder, "model.safetensors"))
    config = {"model_type": "bert", "vocab_size": vocab, "num_hidden_layers": layers, "num_attention_heads": 2,
              "hidden_size": hidden, "intermediate_size": intermediate, "max_position_embeddings": positions}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, f)
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    return tensors


def texts_and_labels(dataset):
    """All `(texts, labels)` of a batched dataset of strings and labels, as Python lists."""
    texts, labels = [], []
    for batch_texts, batch_labels in dataset:
        texts += [t.decode() for t in batch_texts.numpy()]
        labels += batch_labels.numpy().tolist()
    return texts, labels
