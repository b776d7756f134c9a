"""The memory planner: arithmetic only, checked for the choices it must make."""

from dataclasses import replace

import pytest

from trainer.engine.memory_plan import (
    GIB,
    LEAN_LOSS_CHUNK_TOKENS,
    LOSS_BYTES_PER_LOGIT,
    LOSS_CHUNK_TOKENS,
    STREAM_BUFFERS,
    ModelShape,
    plan_memory,
)

# Llama-3.1-8B as the planner sees it (LoRA r16 on all seven linear layers).
LLAMA_8B = ModelShape(
    hidden=4096,
    intermediate=14336,
    layers=32,
    kv_dim=1024,
    vocab=128256,
    tied_embeddings=False,
    quantized_params_per_layer=218_103_808,
    largest_linear_params=58_720_256,
    lora_params=41_943_040,
    lora_inputs_per_layer=38_912,
)
LOADED_8B = int(5.6 * GIB)  # NF4 linears, bf16 embeddings and output layer, fp32 adapters


def plan(
    budget_gib: float,
    tokens: int = 2048,
    shape: ModelShape = LLAMA_8B,
    loaded_bytes: int = LOADED_8B,
    **options,
):
    options.setdefault("dropout", False)
    options.setdefault("fused", True)
    return plan_memory(
        shape,
        tokens=tokens,
        loaded_bytes=loaded_bytes,
        budget_bytes=int(budget_gib * GIB),
        **options,
    )


def test_ample_memory_keeps_every_activation_and_every_dequantised_weight():
    chosen = plan(120)
    assert chosen.layer_modes == ("keep",) * 32
    assert chosen.cached_layers == 32
    assert chosen.optimizer == "adamw"
    assert not chosen.embeddings_on_cpu
    assert chosen.fits


def test_weight_copies_go_first_then_as_few_layers_recompute_as_the_budget_allows():
    copies_only = plan(95, tokens=8 * 2048)
    assert copies_only.layer_modes == ("keep",) * 32 and 0 < copies_only.cached_layers < 32
    chosen = plan(60, tokens=8 * 2048)
    kept = chosen.layer_modes.count("keep")
    assert 0 < kept < 32
    # Copies only from what one more kept layer could not use.
    copy = 2 * LLAMA_8B.quantized_params_per_layer
    one_layer = 8 * 2048 * LLAMA_8B.activation_bytes_per_token(dropout=False, fused=True)
    assert chosen.cached_layers * copy < one_layer
    assert chosen.fits
    # One more kept layer would not fit: the plan keeps as many as the budget allows.
    assert (
        not plan_memory(
            LLAMA_8B,
            tokens=8 * 2048,
            loaded_bytes=LOADED_8B,
            budget_bytes=chosen.estimated_peak_bytes
            - chosen.cached_layers * 2 * LLAMA_8B.quantized_params_per_layer
            - 1,
            dropout=False,
            fused=True,
        ).layer_modes.count("keep")
        >= kept
    )


def test_each_lever_cuts_the_estimate():
    budgets = [120, 40, 12, 7, 6.4, 6.0]
    peaks = [plan(b).estimated_peak_bytes for b in budgets]
    assert peaks == sorted(peaks, reverse=True)


def test_a_small_card_moves_the_embedding_table_before_any_layer_input():
    # An 8 GiB card: recomputing every layer and a CPU table fit; no input leaves the device.
    chosen = plan(8 * 0.88)
    assert chosen.fits
    assert set(chosen.layer_modes) == {"recompute"}
    assert chosen.embeddings_on_cpu
    assert chosen.loss_chunk_tokens < plan(120).loss_chunk_tokens
    assert chosen.estimated_peak_bytes <= 7 * GIB
    # Tighter still: inputs go to CPU, as few as the shortfall needs.
    tighter = plan(6.5)
    assert tighter.fits and tighter.embeddings_on_cpu
    assert 0 < tighter.layer_modes.count("offload") < 32
    # Inputs to CPU come before the optimizer's arithmetic changes.
    assert tighter.optimizer == "adamw"


def test_memory_the_levers_freed_beyond_the_need_buys_larger_loss_chunks():
    # Moving the table frees more than recompute-everything lacked: the chunks grow back from
    # the lean size while the estimate still fits, and stop where the next doubling would not.
    chosen = plan(8 * 0.88)
    assert LEAN_LOSS_CHUNK_TOKENS < chosen.loss_chunk_tokens < LOSS_CHUNK_TOKENS
    doubled = chosen.loss_chunk_tokens * LLAMA_8B.vocab * LOSS_BYTES_PER_LOGIT
    assert chosen.estimated_peak_bytes + doubled > chosen.budget_bytes
    assert plan(6.2).loss_chunk_tokens == LEAN_LOSS_CHUNK_TOKENS


def test_the_embedding_table_moves_before_the_optimizer_states_shrink():
    roomy = plan(6.5)
    tighter = plan(6.1)
    assert roomy.embeddings_on_cpu and roomy.optimizer == "adamw"
    assert tighter.embeddings_on_cpu and tighter.optimizer == "adamw_8bit"


def test_nothing_left_to_give_reports_that_it_does_not_fit():
    assert not plan(4).fits


def test_without_offloading_inputs_stay_on_the_device():
    chosen = plan(8 * 0.88, can_use_host_memory=False)
    assert "offload" not in chosen.layer_modes
    assert chosen.embeddings_on_cpu


@pytest.mark.parametrize(("setting", "mode"), [("on", "recompute"), ("off", "keep")])
def test_the_users_checkpointing_choice_wins(setting, mode):
    assert set(plan(120, checkpointing=setting).layer_modes) == {mode}
    assert set(plan(7, checkpointing=setting).layer_modes) == {mode}


def test_tied_embeddings_never_move_to_cpu():
    chosen = plan(6, shape=replace(LLAMA_8B, tied_embeddings=True))
    assert not chosen.embeddings_on_cpu


def test_dropout_and_unfused_kernels_cost_activation_memory():
    base = LLAMA_8B.activation_bytes_per_token(dropout=False, fused=True)
    assert LLAMA_8B.activation_bytes_per_token(dropout=True, fused=True) > base
    assert LLAMA_8B.activation_bytes_per_token(dropout=False, fused=False) > base


def test_summary_counts_layers_and_reads_in_gib():
    summary = plan(60, tokens=8 * 2048).summary()
    assert sum(summary["layers"].values()) == 32
    assert summary["budget_gib"] == 60
    assert "layer_modes" not in summary


def test_the_shape_comes_from_a_config_whatever_its_names():
    from transformers import GPT2Config, LlamaConfig

    llama = ModelShape.from_config(
        LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_key_value_heads=2,
            num_hidden_layers=3,
            vocab_size=99,
        ),
        quantized_params_per_layer=1,
        largest_linear_params=1,
        lora_params=1,
        lora_inputs_per_layer=1,
    )
    assert (llama.hidden, llama.intermediate, llama.layers, llama.kv_dim, llama.vocab) == (
        64,
        128,
        3,
        32,
        99,
    )
    gpt2 = ModelShape.from_config(
        GPT2Config(n_embd=64, n_head=4, n_layer=2, vocab_size=50),
        quantized_params_per_layer=1,
        largest_linear_params=1,
        lora_params=1,
        lora_inputs_per_layer=1,
    )
    assert (gpt2.hidden, gpt2.intermediate, gpt2.layers, gpt2.kv_dim) == (64, 256, 2, 64)
    assert gpt2.tied_embeddings


def test_the_optimizer_moves_to_cpu_memory_last_and_only_for_one_gpu_process():
    assert plan(6.1).optimizer == "adamw_8bit"
    last = plan(5.7)
    assert last.optimizer == "adamw_host" and last.fits
    assert last.estimated_peak_bytes < plan(6.1).estimated_peak_bytes
    assert plan(5.7, can_use_host_memory=False).optimizer == "adamw_8bit"


# Llama-3.1-70B as the planner sees it: its 4-bit layers loaded into CPU memory (host_layers),
# so what is loaded on the device is the bf16 embeddings and output layer, the norms and the
# fp32 adapters.
LLAMA_70B = ModelShape(
    hidden=8192,
    intermediate=28672,
    layers=80,
    kv_dim=1024,
    vocab=128256,
    tied_embeddings=False,
    quantized_params_per_layer=855_638_016,
    largest_linear_params=234_881_024,
    lora_params=207_093_760,
    lora_inputs_per_layer=77_824,
    quantized_bytes_per_layer=441_415_168,
)
LOADED_70B = int(4.7 * GIB)


def plan_70b(budget_gib: float, tokens: int = 2048, shape: ModelShape = LLAMA_70B, **options):
    options.setdefault("host_layers", 80)
    return plan(budget_gib, tokens, shape=shape, loaded_bytes=LOADED_70B, **options)


def test_a_model_that_fits_streams_nothing():
    streaming_8b = replace(LLAMA_8B, quantized_bytes_per_layer=115_000_000)
    for budget in (120, 24, 7, 5.7):
        chosen = plan(budget, shape=streaming_8b)
        assert chosen.fits and "stream" not in chosen.layer_modes
    roomy = plan_70b(70)
    assert roomy.fits and "stream" not in roomy.layer_modes


def test_70b_on_a_24_gib_card_streams_part_of_the_model_and_fits():
    chosen = plan_70b(24 * 0.88)
    streamed = chosen.layer_modes.count("stream")
    assert chosen.fits and 0 < streamed < 80
    # Streamed layers come last, after the resident ones, and never get a bf16 copy.
    assert chosen.layer_modes[-streamed:] == ("stream",) * streamed
    assert chosen.cached_layers <= 80 - streamed
    assert chosen.summary()["layers"]["stream"] == streamed
    assert chosen.embeddings_on_cpu and "offload" in chosen.layer_modes


def test_streaming_a_few_more_layers_comes_before_the_optimizer_levers():
    chosen = plan_70b(24 * 0.88)
    assert chosen.optimizer == "adamw"
    # Where every layer it could stream is not enough, the optimizer levers come after all.
    larger_batch = plan_70b(24 * 0.88, tokens=4 * 2048)
    assert larger_batch.fits and larger_batch.optimizer == "adamw_host"
    assert larger_batch.layer_modes.count("stream") > chosen.layer_modes.count("stream")


def test_less_memory_streams_more_layers():
    streamed = [plan_70b(b).layer_modes.count("stream") for b in (60, 40, 30, 21)]
    assert streamed == sorted(streamed) and streamed[0] < streamed[-1]


def test_the_estimate_holds_the_stream_buffers_not_the_streamed_layers():
    # A budget nothing fits: every layer streams; a layer twice the size costs two buffers'
    # worth more, not eighty layers' worth.
    bigger = replace(LLAMA_70B, quantized_bytes_per_layer=2 * 441_415_168)
    small, large = plan_70b(4), plan_70b(4, shape=bigger)
    assert small.layer_modes == large.layer_modes == ("stream",) * 80
    difference = large.estimated_peak_bytes - small.estimated_peak_bytes
    assert difference == STREAM_BUFFERS * 441_415_168


def test_layers_stream_only_from_one_gpu_process_that_may_recompute():
    assert "stream" not in plan_70b(24 * 0.88, can_use_host_memory=False).layer_modes
    assert "stream" not in plan_70b(24 * 0.88, checkpointing="off").layer_modes
    assert set(plan_70b(24 * 0.88, checkpointing="on").layer_modes) == {"recompute", "stream"}
