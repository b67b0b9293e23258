"""Losses and advantages on hand-built tensors with known answers."""

import math

import pytest
import torch

from resetrl.losses import (
    group_zscore_G,
    grpo_advantages_G,
    grpo_loss,
    kl_k3_BT,
    masked_mean,
    ppo_clip_loss_BT,
    token_logprobs_BT,
)


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
    loss, clipped = ppo_clip_loss_BT(logp, logp.clone(), torch.tensor([2.0]), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[-2.0, -2.0]]))
    assert clipped.sum() == 0


def test_ppo_clip_caps_positive_advantage_ratio():
    old = torch.zeros(1, 1)
    new = torch.log(torch.tensor([[1.5]]))  # ratio 1.5 > 1 + 0.2
    loss, clipped = ppo_clip_loss_BT(new, old, torch.tensor([1.0]), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[-1.2]]))
    assert clipped.item() == 1.0


def test_dual_clip_bounds_negative_advantage_loss():
    old = torch.zeros(1, 1)
    new = torch.log(torch.tensor([[10.0]]))  # ratio 10: unclipped loss would be 10
    loss, _ = ppo_clip_loss_BT(new, old, torch.tensor([-1.0]), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[3.0]]))
    # Below the dual-clip bound the ordinary clipped surrogate applies: max(0.5*1, 0.8*1)
    loss, _ = ppo_clip_loss_BT(torch.log(torch.tensor([[0.5]])), old, torch.tensor([-1.0]), 0.2, 3.0)
    torch.testing.assert_close(loss, torch.tensor([[0.8]]))


def test_kl_k3_is_zero_on_equal_policies_and_positive_otherwise():
    lp = torch.log(torch.tensor([[0.3, 0.7]]))
    assert torch.equal(kl_k3_BT(lp, lp), torch.zeros_like(lp))
    assert (kl_k3_BT(lp, lp - 0.5) > 0).all()


def test_grpo_loss_is_token_mean_over_masked_tokens():
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    loss, stats = grpo_loss(logp, logp, torch.tensor([1.0, -2.0]), mask, clip_eps=0.2, dual_clip=3.0)
    # per-token losses -1, -1 (seq 0) and 2 (seq 1): token mean over 3 tokens = 0
    assert loss.item() == pytest.approx(0.0)
    assert stats["clip_frac"] == 0.0
    assert "kl" not in stats


def test_grpo_loss_gradient_ignores_masked_tokens():
    logp = torch.zeros(1, 3, requires_grad=True)
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    loss, _ = grpo_loss(logp, logp.detach(), torch.tensor([1.0]), mask, clip_eps=0.2, dual_clip=3.0)
    loss.backward()
    assert logp.grad[0, 0] == 0.0
    torch.testing.assert_close(logp.grad[0, 1:], torch.tensor([-0.5, -0.5]))


def test_grpo_loss_adds_weighted_kl():
    logp = torch.zeros(1, 2)
    ref = torch.full((1, 2), -1.0)
    mask = torch.ones(1, 2)
    base, _ = grpo_loss(logp, logp, torch.tensor([0.0]), mask, clip_eps=0.2, dual_clip=3.0)
    with_kl, stats = grpo_loss(logp, logp, torch.tensor([0.0]), mask, clip_eps=0.2, dual_clip=3.0,
                               kl_coef=0.5, ref_logp_BT=ref)
    expected_kl = math.exp(-1.0) + 1.0 - 1.0
    assert stats["kl"] == pytest.approx(expected_kl, rel=1e-6)
    assert (with_kl - base).item() == pytest.approx(0.5 * expected_kl, rel=1e-6)


def test_masked_mean_handles_empty_mask():
    assert masked_mean(torch.ones(2, 2), torch.zeros(2, 2)).item() == 0.0
