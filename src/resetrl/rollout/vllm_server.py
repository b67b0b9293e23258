"""The `vllm_server` rollout engine: vLLM in a process of its own, on GPUs of its own (TRL's
vllm_mode="server"), so the trainer's device holds no second copy of the weights.

The server runs the base model with LoRA enabled; after every update the trainer writes its adapters and
the server loads them under a new name, so every request names the policy it samples from and the prefix
cache, keyed on the adapter, never serves K/V of older weights. Training every weight is not served this
way (refused before compute: `resetrl.core.memory_plan.check_layout`). Chains are generated thought by thought
(`resetrl.rollout.rounds`); each round's requests go out at once over HTTP (the completions API, token ids in
and out), so the server batches them.

`rollout.vllm_server_url` "" starts a server for the run (`python -m vllm.entrypoints.openai.api_server` on
`rollout.vllm_server_gpus` GPUs after the trainer's one) and stops it at the end; a URL uses a running one, which
must read this machine's temporary directory (adapters are passed by path; docs/cluster.md).
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from resetrl.core.lora import is_lora, unwrap
from resetrl.core.memory_plan import VLLM_LORA_RANKS
from resetrl.rollout.rounds import RoundOutput, ThoughtRounds
from resetrl.rollout.vllm_engine import INSTALL_HINT, MAX_MODEL_LEN

BASE = "base"  # the served name of the base model; adapters are served as policy-N
START_TIMEOUT_S = 1800  # a 14B model's weights read from a network file system
REQUEST_TIMEOUT_S = 3600
MAX_CONCURRENT_REQUESTS = 256


class VLLMServerEngine(ThoughtRounds):
    def __init__(self, model, tokenizer, rollout):
        super().__init__(tokenizer)
        self.url = rollout.vllm_server_url.rstrip("/")
        if not self.url and importlib.util.find_spec("vllm") is None:
            raise ImportError(INSTALL_HINT.replace("rollout.engine: vllm", "rollout.engine: vllm_server"))
        if not self.url and not getattr(unwrap(model).config, "_name_or_path", ""):
            # every stage loads its model from a directory or the hub; one built from a config has neither
            raise ValueError("rollout.engine vllm_server serves a model loaded from a directory or the hub")
        self._dir = Path(tempfile.mkdtemp(prefix="resetrl-vllm-server-"))
        self.lora = is_lora(model)
        self.served = BASE
        self.syncs = 0
        self._server: subprocess.Popen | None = None
        if not self.url:
            self.url = self._start(model, tokenizer, rollout)
        self._pool = ThreadPoolExecutor(MAX_CONCURRENT_REQUESTS, thread_name_prefix="resetrl-vllm-request")
        if self.lora:
            self.sync_weights(model)  # a resumed run's adapters are not the base model's

    # --- the server ------------------------------------------------------------------------------
    def _start(self, model, tokenizer, rollout) -> str:
        base = unwrap(model)
        source = base.config._name_or_path
        tokenizer.save_pretrained(self._dir / "tokenizer")
        on_cpu = next(model.parameters()).device.type == "cpu"
        max_len = min(base.config.max_position_embeddings, MAX_MODEL_LEN)
        port = _free_port()
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", source,
                   "--tokenizer", str(self._dir / "tokenizer"), "--served-model-name", BASE, "--host", "127.0.0.1",
                   "--port", str(port), "--dtype", str(next(model.parameters()).dtype).split(".")[-1],
                   "--seed", "0", "--enable-prefix-caching", "--max-model-len", str(max_len),
                   "--max-num-seqs", str(rollout.batch_size), "--logprobs-mode", "raw_logprobs",
                   "--enable-prompt-tokens-details", "--tensor-parallel-size", str(rollout.vllm_server_gpus),
                   "--gpu-memory-utilization", str(rollout.vllm_gpu_memory_utilization)]
        if self.lora:
            rank = min(r for r in VLLM_LORA_RANKS if r >= model.peft_config["default"].r)
            command += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", "1"]
        if on_cpu:  # see VLLMEngine: a seeded request's prefill must not be chunked on vLLM's CPU build
            command += ["--enforce-eager", "--max-num-batched-tokens", str(rollout.batch_size * max_len)]
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        if not on_cpu:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(_server_gpus(rollout.vllm_server_gpus))
        self._log = self._dir / "server.log"
        with open(self._log, "w") as log:
            self._server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                self.close()
                raise RuntimeError(f"the vLLM server exited with status {self._server.returncode} while starting:"
                                   f"\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5):
                    return url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1.0)
        tail = self._log_tail()
        self.close()
        raise RuntimeError(f"the vLLM server was not ready after {START_TIMEOUT_S} s:\n{tail}")

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def _post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"vLLM server {self.url}{path}: HTTP {error.code}: {error.read().decode()[:2000]}") \
                from None
        return json.loads(text) if text.strip().startswith("{") else {}

    # --- weights ---------------------------------------------------------------------------------
    def sync_weights(self, model) -> None:
        """Write the adapters and have the server sample from them (the previous ones are unloaded)."""
        if not is_lora(model):
            raise ValueError("rollout.engine vllm_server follows the trainer through LoRA adapters: set "
                             "rl.lora.rank > 0, or use rollout.engine vllm")
        self.syncs += 1
        name = f"policy-{self.syncs}"
        model.save_pretrained(self._dir / name)
        self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(self._dir / name)})
        previous, self.served = self.served, name
        if previous != BASE:
            self._post("/v1/unload_lora_adapter", {"lora_name": previous})
            shutil.rmtree(self._dir / previous, ignore_errors=True)

    def close(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown()
            self._pool = None
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            try:
                self._server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- sampling --------------------------------------------------------------------------------
    def _generate_round(self, contexts: list[list[int]], options: list[dict]) -> list[RoundOutput]:
        bodies = [{"model": self.served, "prompt": context, "return_token_ids": True, **o}
                  for context, o in zip(contexts, options)]
        return list(self._pool.map(self._complete, bodies))

    def _complete(self, body: dict) -> RoundOutput:
        reply = self._post("/v1/completions", body)
        usage = reply["usage"]
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        choices = sorted(reply["choices"], key=lambda c: c["index"])
        return RoundOutput(usage["prompt_tokens"] - cached,
                           [(list(c["token_ids"]), [float(x) for x in c["logprobs"]["token_logprobs"]])
                            for c in choices])


def _server_gpus(count: int) -> list[str]:
    """The `count` GPUs after the trainer's (the first) among those this job sees."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d for d in visible.split(",") if d] if visible else [str(i) for i in range(torch.cuda.device_count())]
    if len(ids) < 1 + count:
        seen = f"CUDA_VISIBLE_DEVICES={visible}" if visible else "all of the machine's"
        raise RuntimeError(f"rollout.vllm_server_gpus {count}: this job sees {len(ids)} GPU(s) ({seen}) and the "
                           f"trainer takes the first: ask the scheduler for {1 + count}")
    return ids[1:1 + count]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """The server gets SIGTERM when the trainer dies, even by kill -9 (Linux), instead of holding its GPUs."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
