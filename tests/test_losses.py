"""Losses and advantages on hand-built tensors with known answers."""

import math

import pytest
import torch

from resetrl.rl.losses import (
    gradient_signal_B,
    group_zscore_G,
    grpo_advantages_G,
    kl_k3_BT,
    masked_mean,
    policy_loss,
    ppo_clip_loss_BT,
    seq_mean_B,
    seq_weighted_mean_B,
    token_logprobs_BT,
)

CLIP = {"clip_eps": 0.2, "dual_clip": 3.0}


def per_token(adv_B: torch.Tensor, like_BT: torch.Tensor) -> torch.Tensor:
    """A sequence-level advantage at every token of its row."""
    return adv_B[:, None].expand_as(like_BT).clone()

def test_grpo_advantages_use_unbiased_std():
    adv = grpo_advantages_G(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    std = math.sqrt(0.25)  # unbiased: sum((r-mean)^2)/(n-1) = 0.75/3
    expected = torch.tensor([0.75, -0.25, -0.25, -0.25]) / (std + 1e-6)
    torch.testing.assert_close(adv, expected)


def test_zero_variance_group_gets_zero_advantage():
    assert torch.equal(grpo_advantages_G(torch.ones(8)), torch.zeros(8))
    reset = group_zscore_G(torch.zeros(4), unbiased=False, min_std=1e-8)
    assert torch.equal(reset, torch.zeros(4))


def test_population_zscore_for_reset_groups():
    adv = group_zscore_G(torch.tensor([1.0, 1.0, 0.0, 0.0]), unbiased=False, min_std=1e-8)
    torch.testing.assert_close(adv, torch.tensor([1.0, 1.0, -1.0, -1.0]))


def test_token_logprobs_scale_by_temperature():
    logits = torch.tensor([[[2.0, 0.0]]])
    lp = token_logprobs_BT(logits, torch.tensor([[0]]), temperature=0.5)
    torch.testing.assert_close(lp, torch.log_softmax(torch.tensor([4.0, 0.0]), -1)[:1].view(1, 1))


def test_ppo_clip_on_policy_equals_negative_advantage():
    logp = torch.log(torch.tensor([[0.5, 0.25]]))
    loss, clipped = ppo_clip_loss_BT(logp, logp.clone(), per_token(torch.tensor([2.0]), logp.clone()), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[-2.0, -2.0]]))
    assert clipped.sum() == 0


def test_ppo_clip_caps_positive_advantage_ratio():
    old = torch.zeros(1, 1)
    new = torch.log(torch.tensor([[1.5]]))  # ratio 1.5 > 1 + 0.2
    loss, clipped = ppo_clip_loss_BT(new, old, per_token(torch.tensor([1.0]), old), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[-1.2]]))
    assert clipped.item() == 1.0


def test_dual_clip_bounds_negative_advantage_loss():
    old = torch.zeros(1, 1)
    new = torch.log(torch.tensor([[10.0]]))  # ratio 10: unclipped loss would be 10
    loss, _ = ppo_clip_loss_BT(new, old, per_token(torch.tensor([-1.0]), old), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[3.0]]))
    # Below the dual-clip bound the ordinary clipped surrogate applies: max(0.5*1, 0.8*1)
    loss, _ = ppo_clip_loss_BT(torch.log(torch.tensor([[0.5]])), old, per_token(torch.tensor([-1.0]), old), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[0.8]]))


def test_kl_k3_is_zero_on_equal_policies_and_positive_otherwise():
    lp = torch.log(torch.tensor([[0.3, 0.7]]))
    assert torch.equal(kl_k3_BT(lp, lp), torch.zeros_like(lp))
    assert (kl_k3_BT(lp, lp - 0.5) > 0).all()


def test_grpo_loss_is_token_mean_over_masked_tokens():
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    loss, stats = policy_loss("clip_token_mean", logp, logp, per_token(torch.tensor([1.0, -2.0]), logp), mask, **CLIP)
    # per-token losses -1, -1 (seq 0) and 2 (seq 1): token mean over 3 tokens = 0
    assert loss.item() == pytest.approx(0.0)
    assert stats["clip_frac"] == 0.0
    assert "kl" not in stats


def test_grpo_loss_gradient_ignores_masked_tokens():
    logp = torch.zeros(1, 3, requires_grad=True)
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    loss, _ = policy_loss("clip_token_mean", logp, logp.detach(), per_token(torch.tensor([1.0]), logp), mask, **CLIP)
    loss.backward()
    assert logp.grad[0, 0] == 0.0
    torch.testing.assert_close(logp.grad[0, 1:], torch.tensor([-0.5, -0.5]))


def test_grpo_loss_adds_weighted_kl():
    logp = torch.zeros(1, 2)
    ref = torch.full((1, 2), -1.0)
    mask = torch.ones(1, 2)
    base, _ = policy_loss("clip_token_mean", logp, logp, per_token(torch.tensor([0.0]), logp), mask, **CLIP)
    with_kl, stats = policy_loss("clip_token_mean", logp, logp, per_token(torch.tensor([0.0]), logp), mask,
                                 clip_eps=0.2, dual_clip=3.0,
                               kl_coef=0.5, ref_logp_BT=ref)
    expected_kl = math.exp(-1.0) + 1.0 - 1.0
    assert stats["kl"] == pytest.approx(expected_kl, rel=1e-6)
    assert (with_kl - base).item() == pytest.approx(0.5 * expected_kl, rel=1e-6)


def test_masked_mean_handles_empty_mask():
    assert masked_mean(torch.ones(2, 2), torch.zeros(2, 2)).item() == 0.0


def test_reset_loss_is_advantage_weighted_sequence_mean_logprob():
    logp = torch.log(torch.tensor([[0.5, 0.25, 1.0], [0.5, 0.5, 0.5]]))
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    adv = torch.tensor([2.0, -1.0])
    loss, stats = policy_loss("pg_seq_mean", logp, logp, per_token(adv, logp), mask, **CLIP)
    seq0 = (math.log(0.5) + math.log(0.25)) / 2
    seq1 = math.log(0.5)
    assert loss.item() == pytest.approx(-(2.0 * seq0 - 1.0 * seq1) / 2)
    assert stats == {}  # no ratio, no clipping


def test_masked_prefix_gets_exactly_zero_gradient_and_suffix_tokens_share_it():
    logp = torch.zeros(2, 4, requires_grad=True)
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0],    # reset group: 2 prefix tokens masked
                         [1.0, 1.0, 1.0, 1.0]])   # base group: every response token counts
    loss, _ = policy_loss("pg_seq_mean", logp, logp.detach(), per_token(torch.tensor([1.0, 1.0]), logp), mask,
                          clip_eps=0.2, dual_clip=3.0)
    loss.backward()
    assert torch.equal(logp.grad[0, :2], torch.zeros(2))
    torch.testing.assert_close(logp.grad[0, 2:], torch.full((2,), -1.0 / 2 / 2))
    torch.testing.assert_close(logp.grad[1], torch.full((4,), -1.0 / 4 / 2))


def test_reset_at_step_one_trains_like_a_fresh_group():
    logp = torch.randn(4, 5).requires_grad_()
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    full = torch.ones(4, 5)
    loss, _ = policy_loss("pg_seq_mean", logp, logp.detach(), per_token(adv, logp), full, clip_eps=0.2, dual_clip=3.0)
    loss.backward()
    assert (logp.grad != 0).all()  # empty prefix: every response token gets gradient


def test_seq_mean_token_mean_weighs_sequences_equally():
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [3.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(seq_mean_B(x, mask), torch.tensor([1.0, 3.0]))
    logp = torch.zeros(2, 4)
    loss, _ = policy_loss("clip_seq_mean_token_mean", logp, logp, per_token(torch.tensor([1.0, 3.0]), logp), mask,
                          clip_eps=0.2, dual_clip=3.0)
    assert loss.item() == pytest.approx(-(1.0 + 3.0) / 2)  # token mean would give -(4*1 + 3)/5


def test_gradient_signal_counts_uncertain_tokens_only():
    logp = torch.log(torch.tensor([[1.0, 0.5], [0.5, 0.5]]))
    mask = torch.ones(2, 2)
    signal = gradient_signal_B(per_token(torch.tensor([2.0, -1.0]), logp), logp, mask)
    torch.testing.assert_close(signal, torch.tensor([2.0 * 0.25, 1.0 * 0.5]))


@pytest.mark.parametrize("loss_kind", ["clip_token_mean", "clip_seq_mean_token_mean"])
def test_huge_log_ratio_on_a_masked_token_gives_finite_loss_and_gradient(loss_kind):
    # A stale padded position can carry any log-prob; exp(200) overflows fp32 without the clamp.
    logp = torch.tensor([[0.0, 150.0], [-0.1, -0.2]], requires_grad=True)
    old = torch.tensor([[0.0, -50.0], [-0.1, -0.2]])
    ref = torch.tensor([[0.0, -60.0], [-0.1, -0.2]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    loss, stats = policy_loss(loss_kind, logp, old, per_token(torch.tensor([-1.0, 1.0]), logp), mask, **CLIP,
                              kl_coef=0.1, ref_logp_BT=ref)
    loss.backward()
    assert torch.isfinite(loss) and math.isfinite(stats["kl"])
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[0, 1] == 0.0  # the masked token still gets no gradient


def test_log_ratio_clamp_bounds_the_ratio_at_exp_20():
    loss_BT, _ = ppo_clip_loss_BT(torch.tensor([[500.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]),
                                  clip_eps=1e9, dual_clip=3.0)
    assert loss_BT.item() == pytest.approx(-math.exp(20.0), rel=1e-5)


def test_per_token_reset_loss_weighs_each_token_by_its_own_advantage():
    logp = torch.log(torch.tensor([[0.5, 0.25, 1.0], [0.5, 0.5, 0.5]])).requires_grad_()
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    adv = torch.tensor([[1.0, -2.0, 5.0], [0.0, 3.0, -1.0]])  # the masked tokens' values never count
    loss, _ = policy_loss("pg_seq_mean", logp, logp.detach(), adv, mask, **CLIP)
    seq0 = (1.0 * math.log(0.5) - 2.0 * math.log(0.25)) / 2
    seq1 = (3.0 * math.log(0.5) - 1.0 * math.log(0.5)) / 2
    assert loss.item() == pytest.approx(-(seq0 + seq1) / 2)
    loss.backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.25, 0.5, 0.0], [0.0, -0.75, 0.25]]))


def test_sequence_level_advantages_compute_bit_for_bit_as_one_number_per_sequence():
    # The study's sequence-level arms must train exactly as before per-token advantages existed.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 11, generator=gen).requires_grad_()
    mask = (torch.rand(8, 11, generator=gen) > 0.3).float()
    mask[3] = 0.0  # a row with nothing trained
    adv_B = torch.randn(8, generator=gen)
    ours = seq_weighted_mean_B(per_token(adv_B, x), x, mask)
    (g_ours,) = torch.autograd.grad(-ours.mean(), x)
    old = adv_B * seq_mean_B(x, mask)
    (g_old,) = torch.autograd.grad(-old.mean(), x)
    assert torch.equal(ours, old) and torch.equal(g_ours, g_old)
