"""Hand-written attention models in the shape of Hugging Face's (the same masking rules as
BERT's and GPT-2's), for the mask tests: token ids and an ``attention_mask`` in, a hidden
state per position (and a pooled vector) out."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

VOCAB, WIDTH, HEADS = 50, 16, 2


class Block(nn.Module):
    """Self-attention (SDPA with a boolean mask, or an additive ``finfo.min`` mask, as
    transformers builds them), then a GELU feed-forward, each with a residual and LayerNorm."""

    def __init__(self, sdpa: bool) -> None:
        super().__init__()
        self.sdpa = sdpa
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)
        self.norm1 = nn.LayerNorm(WIDTH)
        self.ff = nn.Sequential(nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(), nn.Linear(4 * WIDTH, WIDTH))
        self.norm2 = nn.LayerNorm(WIDTH)

    def forward(self, x: Any, allowed: Any) -> Any:
        n, s, _ = x.shape
        q, k, v = self.qkv(x).view(n, s, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
        if self.sdpa:  # transformers' default attention: a boolean mask to SDPA
            att = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:  # transformers' eager attention: finfo.min added where a key is masked
            bias = torch.zeros_like(allowed, dtype=x.dtype).masked_fill(
                ~allowed, torch.finfo(x.dtype).min)
            scores = q @ k.transpose(-1, -2) / (WIDTH // HEADS) ** 0.5 + bias
            att = torch.softmax(scores, dim=-1) @ v
        x = self.norm1(x + self.proj(att.transpose(1, 2).reshape(n, s, WIDTH)))
        return self.norm2(x + self.ff(x))


class Encoder(nn.Module):
    """BERT-like: every token attends to every key the mask sets."""

    causal = False

    def __init__(self, seed: int = 0, sdpa: bool = True) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.tokens = nn.Embedding(VOCAB, WIDTH)
        self.positions = nn.Embedding(64, WIDTH)
        self.blocks = nn.ModuleList([Block(sdpa), Block(sdpa)])
        self.pool = nn.Linear(WIDTH, WIDTH)

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        s = input_ids.shape[1]
        x = self.tokens(input_ids) + self.positions(torch.arange(s))
        allowed = attention_mask[:, None, None, :].bool()
        if self.causal:
            allowed = allowed & torch.ones(s, s, dtype=torch.bool).tril()
        for block in self.blocks:
            x = block(x, allowed)
        keep = attention_mask.unsqueeze(-1).to(x.dtype)
        mean = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return {"last_hidden_state": x, "pooled": torch.tanh(self.pool(mean))}


class CausalLM(Encoder):
    """GPT-2-like: a token attends to the keys before it that the mask sets; with left
    padding the pad positions attend to nothing."""

    causal = True

    def __init__(self, seed: int = 0, sdpa: bool = True) -> None:
        super().__init__(seed, sdpa)
        self.head = nn.Linear(WIDTH, VOCAB)

    def forward(self, input_ids: Any, attention_mask: Any) -> Any:
        out = super().forward(input_ids, attention_mask)
        return {"logits": self.head(out["last_hidden_state"]), "pooled": out["pooled"]}


def padded(n: int, seq: int, side: str, seed: int = 0) -> dict[str, Any]:
    """``n`` rows of token ids (1..VOCAB-1, 0 for padding) with lengths from 1 to ``seq``,
    padded on the ``side`` given ("left" or "right"), and their ``attention_mask``."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, seq + 1, (n,), generator=g)
    lengths[0] = seq  # one full row
    ids = torch.randint(1, VOCAB, (n, seq), generator=g)
    pos = torch.arange(seq).expand(n, seq)
    mask = (pos >= seq - lengths[:, None]) if side == "left" else (pos < lengths[:, None])
    return {"input_ids": ids * mask, "attention_mask": mask.to(torch.int64)}
