"""The toy token-tree MDP: the tree's shape and the identities notebook 01 teaches."""

import numpy as np
import pytest

from course_lib.mdp import (
    arithmetic_value,
    build_tree,
    expected_reward,
    num_states,
    policy_gradient_bandit,
    policy_gradient_mdp,
    random_policy,
    response_probs,
    sample_responses,
    state_values,
    sum_verifier,
    token_advantages,
    uniform_credit,
)

SHAPES = [  # (vocab, depth, eos, states, leaves)
    (("a",), 1, None, 2, 1),
    (("a", "b"), 2, None, 7, 4),
    (("a", "b"), 2, "$", 10, 7),
    (("1", "2", "+"), 3, None, 40, 27),
    (("1", "2", "+"), 3, "$", 53, 40),
    (("1", "2", "+", "*"), 4, "$", 341 + 85, 256 + 85),
]


@pytest.mark.parametrize("vocab,depth,eos,n_states,n_leaves", SHAPES)
def test_tree_shape(vocab, depth, eos, n_states, n_leaves):
    tree = build_tree(vocab, depth, eos)
    assert len(tree.states) == n_states == num_states(len(vocab), depth, eos is not None)
    assert len(set(tree.states)) == n_states
    assert len(tree.leaves) == n_leaves
    # every state but the root has exactly one parent, and it is the state minus its last token
    assert tree.parent[()] is None
    for s in tree.states[1:]:
        assert tree.parent[s] == s[:-1]
        assert s in tree.children[s[:-1]]
    # each state is some parent's child exactly once: edges = states - 1, i.e. a tree
    assert sum(len(c) for c in tree.children.values()) == n_states - 1
    # transitions are deterministic: the child for action a is s + (a,)
    for s, kids in tree.children.items():
        assert kids == [s + (a,) for a in range(len(kids))]
        assert (not kids) == tree.is_terminal(s)


def test_eos_ends_a_response_and_is_not_in_the_text():
    tree = build_tree(("1", "+"), depth=3, eos="$")
    eos = len(tree.actions) - 1
    assert tree.children[(0, eos)] == []
    assert tree.text((0, 1, 0)) == "1+1"
    assert tree.text((0, eos)) == "1"


@pytest.mark.parametrize(
    "vocab,depth,eos,problem",
    [((), 2, None, "non-empty"), (("a", "a"), 2, None, "repeats"), (("a",), 0, None, "depth"),
     (("a",), 2, "a", "eos"), (tuple("abcdefghij"), 6, None, "smaller vocabulary")],
)
def test_bad_trees_are_refused_with_a_reason(vocab, depth, eos, problem):
    with pytest.raises(ValueError, match=problem):
        build_tree(vocab, depth, eos)


@pytest.mark.parametrize(
    "text,value",
    [("1+2", 3), ("12", 12), ("2*2+1", 5), ("1+2*2", 5), ("2*1*2", 4), ("", None), ("+1", None),
     ("1+", None), ("1++2", None), ("1*+2", None), ("(1)", None)],
)
def test_arithmetic_value(text, value):
    assert arithmetic_value(text) == value


@pytest.mark.parametrize("temperature", [0.2, 1.0, 5.0])
@pytest.mark.parametrize("eos", [None, "$"])
def test_values_equal_expected_terminal_reward_at_every_state(temperature, eos):
    """Backward induction over the tree == enumerating whole responses: a contextual bandit."""
    tree = build_tree(("1", "2", "+"), depth=3, eos=eos)
    policy = random_policy(tree, temperature, seed=3)
    reward = sum_verifier(3)
    V = state_values(tree, policy, reward)
    for s in tree.states:
        assert V[s] == pytest.approx(expected_reward(tree, policy, reward, s), abs=1e-12)
        assert sum(response_probs(tree, policy, s).values()) == pytest.approx(1.0)
    assert 0.0 < V[()] < 1.0  # some responses are right, some wrong


def test_temperature_moves_the_policy_between_greedy_and_uniform():
    tree = build_tree(("a", "b", "c"), depth=1)
    cold = random_policy(tree, 0.01, seed=0).probs(())
    hot = random_policy(tree, 100.0, seed=0).probs(())
    assert cold.max() > 0.999
    np.testing.assert_allclose(hot, 1 / 3, atol=0.01)
    with pytest.raises(ValueError, match="temperature"):
        random_policy(tree, 0.0)


def test_token_advantages_telescope_to_the_sequence_advantage():
    tree = build_tree(("1", "2", "+"), depth=3, eos="$")
    policy = random_policy(tree, 1.0, seed=0)
    reward = sum_verifier(3)
    V = state_values(tree, policy, reward)
    per_token_differs = False
    for o in tree.leaves:
        a = token_advantages(tree, V, o)
        assert a.shape == (len(o),)
        assert a.sum() == pytest.approx(reward(tree.text(o)) - V[()], abs=1e-12)
        per_token_differs |= bool(np.ptp(a) > 1e-6)
    assert per_token_differs  # exact credit is not uniform; only its sum is fixed
    with pytest.raises(ValueError, match="leaf"):
        token_advantages(tree, V, (0,))


def test_uniform_credit():
    np.testing.assert_array_equal(uniform_credit(1.0, 0.25, 3), [0.75, 0.75, 0.75])
    assert uniform_credit(0.0, 0.5, 0).shape == (0,)


@pytest.mark.parametrize("baseline", [None, 0.0, 0.7])
def test_uniform_credit_bandit_gradient_is_the_exact_policy_gradient(baseline):
    tree = build_tree(("1", "2", "+"), depth=3, eos="$")
    policy = random_policy(tree, 0.7, seed=1)
    reward = sum_verifier(3)
    g_mdp = policy_gradient_mdp(tree, policy, reward)
    g_bandit = policy_gradient_bandit(tree, policy, reward, baseline)
    assert g_mdp.keys() == g_bandit.keys()
    for s in g_mdp:
        np.testing.assert_allclose(g_bandit[s], g_mdp[s], atol=1e-12)


def test_policy_gradient_matches_finite_differences():
    tree = build_tree(("1", "2", "+"), depth=2, eos="$")
    policy = random_policy(tree, 0.8, seed=2)
    reward = sum_verifier(2)
    grad = policy_gradient_mdp(tree, policy, reward)
    eps = 1e-6
    for s in [(), (1,)]:
        for a in range(len(tree.actions)):
            plus = {k: v.copy() for k, v in policy.logits.items()}
            minus = {k: v.copy() for k, v in policy.logits.items()}
            plus[s][a] += eps
            minus[s][a] -= eps
            jp = state_values(tree, type(policy)(plus, policy.temperature), reward)[()]
            jm = state_values(tree, type(policy)(minus, policy.temperature), reward)[()]
            assert grad[s][a] == pytest.approx((jp - jm) / (2 * eps), abs=1e-7)


def test_sampling_token_by_token_draws_whole_responses_with_their_probability():
    tree = build_tree(("1", "2"), depth=2, eos="$")
    policy = random_policy(tree, 1.0, seed=4)
    draws = sample_responses(tree, policy, 4000, seed=0)
    assert all(not tree.children[o] for o in draws)
    for o, p in response_probs(tree, policy).items():
        assert draws.count(o) / len(draws) == pytest.approx(p, abs=0.03)
    assert sample_responses(tree, policy, 5, seed=1) == sample_responses(tree, policy, 5, seed=1)
