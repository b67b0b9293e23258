"""The `torch` rollout engine: a batched sampler with a preallocated KV cache.

- Static shapes: one K/V buffer per layer, [rows, kv heads, slots, head dim], allocated once per
  call; decoding writes one slot per row and attends over a slice, nothing is reallocated.
- Ragged rows: each row has its own write pointer, so a finished row is refilled with the next
  waiting group at once (continuous batching) instead of idling until the batch's longest chain ends.
- Prefix sharing: the prompt + prefix of a group is prefilled once and its K/V copied into the
  group's rows; K continuations of a reset pay one prefill, not K.
The decoder step reuses the model's own modules (projections, norms, MLP, rotary embedding), so it
computes the same function as the model's forward pass; it supports Llama-style decoder layers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from resetrl.core.lora import effective_linear, unwrap
from resetrl.rollout.engine import Chain, RolloutEngine, SamplingSettings, finish_after_thought, sample_tokens

SUPPORTED_MODEL_TYPES = ("llama", "qwen2")  # pre-norm, rotary, (grouped) multi-head attention
REFILL_FRACTION = 8  # refill once 1/8 of the rows are free (or none runs): one prefill per refill


class TorchEngine(RolloutEngine):
    def __init__(self, model, tokenizer):
        super().__init__(tokenizer)
        self.sync_weights(model)

    def sync_weights(self, model) -> None:
        model = unwrap(model)  # LoRA: sample from the adapted layers (effective_linear merges them)
        config = model.config
        if config.model_type not in SUPPORTED_MODEL_TYPES or getattr(config, "use_sliding_window", False):
            raise ValueError(f"rollout.engine 'torch' supports {SUPPORTED_MODEL_TYPES} models without sliding "
                             f"windows, not {config.model_type!r}: set rollout.engine: vllm")
        self.model = model  # the trainer's own parameters: always on-policy, nothing to copy

    @torch.no_grad()
    def _sample(self, groups: list[list[Chain]], settings: SamplingSettings,
                generator: torch.Generator | None) -> None:
        _Batch(self, groups, settings, generator).run()


@dataclass
class _LayerWeights:
    """One decoder layer's parameters, with q|k|v and gate|up concatenated for one matmul each."""

    norm1: torch.Tensor
    norm2: torch.Tensor
    eps: float
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    o: torch.Tensor
    o_bias: torch.Tensor | None
    gate_up: torch.Tensor
    gate_up_bias: torch.Tensor | None
    down: torch.Tensor
    down_bias: torch.Tensor | None
    scaling: float
    act: object

    @classmethod
    def of(cls, layer) -> "_LayerWeights":
        attn, mlp = layer.self_attn, layer.mlp

        def fused(*linears):
            weights, biases = zip(*map(effective_linear, linears))
            bias = None if all(b is None for b in biases) else torch.cat(
                [b if b is not None else torch.zeros_like(w[:, 0]) for b, w in zip(biases, weights)])
            return torch.cat(weights), bias

        qkv, qkv_bias = fused(attn.q_proj, attn.k_proj, attn.v_proj)
        gate_up, gate_up_bias = fused(mlp.gate_proj, mlp.up_proj)
        o, o_bias = effective_linear(attn.o_proj)
        down, down_bias = effective_linear(mlp.down_proj)
        return cls(layer.input_layernorm.weight, layer.post_attention_layernorm.weight,
                   layer.input_layernorm.variance_epsilon, qkv, qkv_bias, o, o_bias,
                   gate_up, gate_up_bias, down, down_bias, attn.scaling, mlp.act_fn)


class _Batch:
    """One generate call: rows of a static KV cache, refilled from a queue of groups."""

    def __init__(self, engine: TorchEngine, groups: list[list[Chain]], s: SamplingSettings, generator):
        self.engine, self.s, self.generator = engine, s, generator
        model = engine.model
        self.core, self.lm_head = model.model, model.lm_head
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        rows = s.batch_size
        # A group larger than the batch is split; its parts each prefill the shared context once.
        self.queue = [g[i:i + rows] for g in groups for i in range(0, len(g), rows)]
        self.queue.reverse()  # pop() from the end serves groups in order
        self.B = min(rows, sum(len(g) for g in self.queue))
        context_len = max(len(g[0].prompt_ids) + len(g[0].prefix_ids) for g in self.queue)
        self.slots = context_len + s.response_budget
        cfg = model.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        shape = (self.B, cfg.num_key_value_heads, self.slots, head_dim)
        # Zeroed, not empty: a masked slot gets weight 0, but 0 * (NaN garbage) would still be NaN.
        self.keys = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in self.core.layers]
        self.values = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in self.core.layers]
        self.gqa = cfg.num_key_value_heads != cfg.num_attention_heads
        self.head_dim, self.n_heads, self.n_kv_heads = head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
        self.weights = [_LayerWeights.of(layer) for layer in self.core.layers]
        positions = torch.arange(self.slots, device=self.device)[None]
        cos, sin = self.core.rotary_emb(torch.zeros(1, device=self.device, dtype=self.dtype), positions)
        self.cos_SD, self.sin_SD = cos[0], sin[0]
        B, budget = self.B, s.response_budget
        self.chain: list[Chain | None] = [None] * B
        self.ptr_B = torch.zeros(B, dtype=torch.long, device=self.device)  # next KV slot = sequence length
        self.last_B = torch.zeros(B, dtype=torch.long, device=self.device)  # sampled, not yet fed
        # Stop-rule state per row, on the CPU: generated tokens kept so far and the open thought.
        self.tokens_BN = torch.zeros(B, budget, dtype=torch.long)
        self.logps_BN = torch.zeros(B, budget)
        self.kept_B = torch.zeros(B, dtype=torch.long)
        self.sampled_B = torch.zeros(B, dtype=torch.long)
        self.response_len_B = torch.zeros(B, dtype=torch.long)
        self.thought_start_B = torch.zeros(B, dtype=torch.long)
        self.thoughts_B = torch.zeros(B, dtype=torch.long)
        self.active_B = torch.zeros(B, dtype=torch.bool)
        tok = engine.tokenizer
        self.eos = -1 if s.ignore_eos else tok.eos_token_id
        self.delimiter = None if s.free_text else engine.delimiter
        # Tokens that may complete a thought delimiter: only their rows need the stop rules' check.
        self.closer_V = torch.zeros(max(len(tok), cfg.vocab_size), dtype=torch.bool)
        if self.delimiter is not None:
            self.closer_V[list(self.delimiter.closers)] = True
        self.pad = tok.pad_token_id
        # A live bar of finished chains in an interactive terminal (none in logs).
        self.bar = tqdm(total=sum(len(g) for g in self.queue), desc="sampling", unit="chain", leave=False,
                        dynamic_ncols=True, disable=not sys.stderr.isatty())

    # --- the decoder, with this call's attention -------------------------------------------------
    def _decoder(self, ids_BL: torch.Tensor, pos_BL: torch.Tensor, attend) -> torch.Tensor:
        """The model's layers with fused projections (q|k|v, gate|up) and a rotary table: the same
        function as the model's forward pass in fewer kernel calls, which is what a tiny model's
        decoding step costs."""
        x_BLE = self.core.embed_tokens(ids_BL)
        B, L, _ = x_BLE.shape
        cos_BL1D, sin_BL1D = self.cos_SD[pos_BL][:, :, None], self.sin_SD[pos_BL][:, :, None]
        n_q, n_kv, D = self.n_heads, self.n_kv_heads, self.head_dim
        for i, w in enumerate(self.weights):
            h_BLE = F.rms_norm(x_BLE, (x_BLE.shape[-1],), w.norm1, w.eps)
            qkv = F.linear(h_BLE, w.qkv, w.qkv_bias).view(B, L, n_q + 2 * n_kv, D)
            qk, v = qkv[:, :, :n_q + n_kv], qkv[:, :, n_q + n_kv:]
            half = D // 2
            rotated = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
            qk = qk * cos_BL1D + rotated * sin_BL1D
            q, k = qk[:, :, :n_q].transpose(1, 2), qk[:, :, n_q:].transpose(1, 2)
            o = attend(i, q, k, v.transpose(1, 2), w.scaling)
            x_BLE = x_BLE + F.linear(o.transpose(1, 2).reshape(B, L, -1), w.o, w.o_bias)
            h_BLE = F.rms_norm(x_BLE, (x_BLE.shape[-1],), w.norm2, w.eps)
            gate, up = F.linear(h_BLE, w.gate_up, w.gate_up_bias).chunk(2, dim=-1)
            x_BLE = x_BLE + F.linear(w.act(gate) * up, w.down, w.down_bias)
        return x_BLE

    def _prefill(self, contexts: list[list[int]], rows_R: torch.Tensor, unit_R: torch.Tensor) -> torch.Tensor:
        """Run each distinct context once, copy its K/V into its rows; next-token logits per row."""
        width = max(len(c) for c in contexts)
        ids_UW = torch.tensor([c + [self.pad] * (width - len(c)) for c in contexts], device=self.device)
        pos_UW = torch.arange(width, device=self.device).expand(len(contexts), -1)

        def attend(i, q, k, v, scale):
            # Right padding: causal attention never lets a real position see a pad after it.
            self.keys[i][rows_R, :, :width] = k[unit_R]
            self.values[i][rows_R, :, :width] = v[unit_R]
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale, enable_gqa=self.gqa)

        x_UWE = self._decoder(ids_UW, pos_UW, attend)
        last_U = torch.tensor([len(c) - 1 for c in contexts], device=self.device)
        hidden_UE = self.core.norm(x_UWE[torch.arange(len(contexts), device=self.device), last_U])
        return self.lm_head(hidden_UE)[unit_R]

    def _decode(self) -> torch.Tensor:
        """Feed every row's last token at its own position; next-token logits [B, V]."""
        rows_B = torch.arange(self.B, device=self.device)
        ptr_B = self.ptr_B
        span = int(ptr_B.max()) + 1
        visible_B11S = (torch.arange(span, device=self.device) <= ptr_B[:, None])[:, None, None, :]

        def attend(i, q, k, v, scale):
            self.keys[i][rows_B, :, ptr_B] = k[:, :, 0]
            self.values[i][rows_B, :, ptr_B] = v[:, :, 0]
            keys, values = self.keys[i][:, :, :span], self.values[i][:, :, :span]
            if self.gqa:
                # Grouped-query attention without copying K/V: query head h reads K/V head h // rep
                # (what repeat_interleave would give), so the rep query heads of each K/V head are packed
                # as rows of one matmul, as transformers' SDPA path packs them: scores [B, n_kv, rep, S].
                B, n_q = q.shape[0], q.shape[1]
                q_BKRD = q.reshape(B, self.n_kv_heads, n_q // self.n_kv_heads, q.shape[-1])
                scores_BKRS = (q_BKRD @ keys.transpose(-1, -2)) * scale
                weights_BKRS = torch.softmax(scores_BKRS.masked_fill(~visible_B11S, float("-inf")), dim=-1)
                return (weights_BKRS @ values).reshape(B, n_q, 1, -1)
            # One query per row: two batched matmuls beat the fused CPU kernel by ~5x at this shape.
            scores_BH1S = (q @ keys.transpose(-1, -2)) * scale
            weights_BH1S = torch.softmax(scores_BH1S.masked_fill(~visible_B11S, float("-inf")), dim=-1)
            return weights_BH1S @ values

        x_B1E = self._decoder(self.last_B[:, None], ptr_B[:, None], attend)
        self.ptr_B = torch.where(self.active_B.to(self.device), ptr_B + 1, 0)  # idle rows stay at slot 0
        return self.lm_head(self.core.norm(x_B1E[:, 0]))

    # --- scheduling and stop rules ----------------------------------------------------------------
    def _admit(self) -> None:
        """Move waiting groups into free rows (in order, while they fit) with one prefill."""
        free = [i for i in range(self.B) if self.chain[i] is None]
        rows, units, contexts = [], [], []
        while self.queue and len(self.queue[-1]) <= len(free) - len(rows):
            group = self.queue.pop()
            group[0].n_prefilled = len(group[0].prompt_ids) + len(group[0].prefix_ids)
            for c in group:
                row = free[len(rows)]
                rows.append(row)
                units.append(len(contexts))
                self.chain[row] = c
                self.response_len_B[row] = len(c.prefix_ids)
                self.thoughts_B[row] = len(self.engine.delimiter.ends(c.prefix_ids))
            contexts.append(group[0].prompt_ids + group[0].prefix_ids)
        if not rows:
            return
        rows_R = torch.tensor(rows)
        for t in (self.kept_B, self.sampled_B, self.thought_start_B):
            t[rows_R] = 0
        self.active_B[rows_R] = True
        self.ptr_B[rows_R.to(self.device)] = torch.tensor([len(contexts[u]) for u in units], device=self.device)
        logits_RV = self._prefill(contexts, rows_R.to(self.device), torch.tensor(units, device=self.device))
        self._record(rows_R, logits_RV)

    def _record(self, rows_R: torch.Tensor, logits_RV: torch.Tensor) -> None:
        """Sample the next token of `rows`, store it, and apply the stop rules."""
        token_R, logp_R = sample_tokens(logits_RV, self.s, self.generator)
        self.last_B[rows_R.to(self.device)] = token_R
        token_R, logp_R = token_R.cpu(), logp_R.cpu()
        kept_R = self.kept_B[rows_R]
        self.tokens_BN[rows_R, kept_R] = token_R
        self.logps_BN[rows_R, kept_R] = logp_R
        self.kept_B[rows_R] += 1
        self.sampled_B[rows_R] += 1
        self.response_len_B[rows_R] += 1
        s = self.s
        thought_len_R = self.kept_B[rows_R] - self.thought_start_B[rows_R]
        special_R = (token_R == self.eos) | self.closer_V[token_R]
        special_R |= self.response_len_B[rows_R] >= s.response_budget
        if not s.free_text:
            special_R |= thought_len_R >= s.max_thought_tokens
        for row, token in zip(rows_R[special_R].tolist(), token_R[special_R].tolist()):
            self._stop_rules(row, token)

    def _stop_rules(self, row: int, token: int) -> None:
        s, kept = self.s, int(self.kept_B[row])
        start = int(self.thought_start_B[row])
        if token == self.eos:
            return self._finish(row, "eos")
        if self.delimiter is not None and self.delimiter.completes(self.tokens_BN[row, start:kept].tolist()):
            self.thoughts_B[row] += 1
            self.thought_start_B[row] = kept
            thought = self.engine.tokenizer.decode(self.tokens_BN[row, start:kept].tolist())
            reason = finish_after_thought(s, thought, int(self.thoughts_B[row]), int(self.response_len_B[row]))
            return self._finish(row, reason) if reason else None
        thought_full = not s.free_text and kept - start >= s.max_thought_tokens
        if not thought_full and int(self.response_len_B[row]) < s.response_budget:
            return None  # a token that may close a delimiter but did not
        if s.free_text:
            return self._finish(row, "length")
        # A thought reached its token budget (or the response its budget) without a delimiter:
        # cut back to the last complete thought.
        self.kept_B[row] = start
        return self._finish(row, "overflow" if kept - start >= s.max_thought_tokens else "budget")

    def _finish(self, row: int, reason: str) -> None:
        c, kept = self.chain[row], int(self.kept_B[row])
        c.gen_ids = self.tokens_BN[row, :kept].tolist()
        c.gen_logprobs = self.logps_BN[row, :kept].tolist()
        c.n_generated, c.finish = int(self.sampled_B[row]), reason
        self.chain[row] = None
        self.active_B[row] = False
        self.bar.update(1)

    def run(self) -> None:
        self._admit()
        while bool(self.active_B.any()):
            logits_BV = self._decode()
            self._record(torch.nonzero(self.active_B).flatten(), logits_BV[self.active_B.to(self.device)])
            n_free = self.B - int(self.active_B.sum())
            if self.queue and (n_free * REFILL_FRACTION >= self.B or n_free == self.B):
                self._admit()
        self.bar.close()
