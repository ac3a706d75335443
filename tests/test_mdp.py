"""The toy token-tree MDP: the tree's shape and the identities notebook 01 teaches."""

import numpy as np
import pytest

from course_lib.notebook.mdp import (
    arithmetic_value,
    build_tree,
    deterministic_step,
    expected_reward,
    flatten,
    gradient_estimates,
    num_states,
    open_loop_values,
    optimal_values,
    policy_gradient_bandit,
    policy_gradient_mdp,
    random_policy,
    response_probs,
    sample_responses,
    state_values,
    sum_verifier,
    token_advantages,
    typo_step,
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


@pytest.mark.parametrize("credit", ["uniform", "exact"])
def test_both_credits_are_unbiased_but_exact_credit_has_less_variance(credit):
    """Weighted by P(o) over every response, each estimator's mean is the exact gradient."""
    tree = build_tree(("1", "2", "+"), depth=3, eos="$")
    policy = random_policy(tree, 1.0, seed=0)
    reward = sum_verifier(2)
    P = response_probs(tree, policy)
    leaves = list(P)
    p = np.array([P[o] for o in leaves])
    true = flatten(policy_gradient_mdp(tree, policy, reward), policy)
    g = gradient_estimates(tree, policy, reward, leaves, credit)
    assert g.shape == (len(leaves), len(policy.logits) * len(tree.actions)) == (40, 13 * 4)
    np.testing.assert_allclose(p @ g, true, atol=1e-12)
    var = {c: p @ ((gradient_estimates(tree, policy, reward, leaves, c) - true) ** 2).sum(1)
           for c in ("uniform", "exact")}
    assert var["exact"] < 0.5 * var["uniform"]  # 0.068 vs 0.155 on this tree
    # a wrong baseline keeps the mean, costs variance
    g0 = gradient_estimates(tree, policy, reward, leaves, "uniform", baseline=0.0)
    np.testing.assert_allclose(p @ g0, true, atol=1e-12)
    assert p @ ((g0 - true) ** 2).sum(1) > var["uniform"]
    with pytest.raises(ValueError, match="credit"):
        gradient_estimates(tree, policy, reward, leaves, "critic")


def test_flatten_orders_states_like_the_policy():
    tree = build_tree(("a", "b"), depth=2)
    policy = random_policy(tree)
    flat = flatten({(1,): np.array([1.0, 2.0])}, policy)
    assert flat.tolist() == [0, 0, 0, 0, 1, 2]  # states (), (0,), (1,)


def test_deterministic_transitions_make_the_optimum_a_best_arm():
    tree = build_tree(("1", "2", "+"), depth=3, eos="$")
    reward = sum_verifier(2)
    V = optimal_values(tree, reward)
    arms = open_loop_values(tree, reward)
    assert arms == {o: reward(tree.text(o)) for o in tree.leaves}
    assert V[()] == max(arms.values()) == 1.0
    # q = 0 is the deterministic step
    assert open_loop_values(tree, reward, typo_step(tree, 0.0)) == arms
    assert optimal_values(tree, reward, typo_step(tree, 0.0)) == V


TYPO = [  # (q, closed-loop V*(root) by hand, best fixed response by hand)
    # write "2"; if it comes out "1", continue "+1"; a fixed "2$" cannot react: 1 - q
    (0.2, 0.8 + 0.1 * 0.8**2, 0.8),
    (0.3, 0.7 + 0.15 * 0.7**2, 0.7),
    (0.5, 0.5 + 0.25 * 0.5**2, 0.5),
]


@pytest.mark.parametrize("q,closed,open_", TYPO)
def test_typos_make_backward_induction_beat_every_fixed_response(q, closed, open_):
    tree = build_tree(("1", "2", "+"), depth=3, eos="$")
    reward = sum_verifier(2)
    step = typo_step(tree, q)
    for s in tree.states:
        for a in range(len(tree.actions)):
            if tree.children[s]:
                out = step(s, a)
                assert sum(p for p, _ in out) == pytest.approx(1.0)
                assert all(c in tree.children[s] for _, c in out)
    V = optimal_values(tree, reward, step)
    arms = open_loop_values(tree, reward, step)
    assert V[()] == pytest.approx(closed, abs=1e-12)
    assert max(arms.values()) == pytest.approx(open_, abs=1e-12)
    assert tree.text(max(arms, key=arms.get)) == "2"
    assert all(v <= V[()] + 1e-12 for v in arms.values())  # reacting is never worse
    assert step((), 3) == deterministic_step((), 3)  # the end token is never corrupted
    with pytest.raises(ValueError, match="q"):
        typo_step(tree, 1.5)
