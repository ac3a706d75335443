"""The LLM as an MDP, on a vocabulary small enough to enumerate.

Assumption 1 of the paper: a state is the prompt plus the tokens generated so far, an action
is the next token, and the transition is deterministic, ``s' = s + a``. Every state therefore
has exactly one parent and the states form a *tree*. Assumption 2: the only reward comes at
the end, from a verifier on the whole response. This module builds that tree for a toy
vocabulary and checks, by exact enumeration, what follows from the two assumptions:

1. The value of a state (backward induction over the tree) equals the expected terminal
   reward of the complete responses below it: the MDP is a *contextual bandit* whose arms
   are whole responses (:func:`state_values` vs :func:`expected_reward`).
2. The exact per-token advantages ``V(s_{t+1}) - V(s_t)`` telescope to the sequence advantage
   ``r(o) - V(s_0)``, and the bandit gradient that gives *every* token the same credit
   ``r(o) - b`` equals the exact MDP policy gradient (:func:`policy_gradient_mdp` vs
   :func:`policy_gradient_bandit`).
3. Exact per-token credit and uniform credit give the same expected gradient but not the same
   variance (:func:`gradient_estimates`): what a critic would buy, and what GRPO pays without one.
4. The contrast case: with a transition that is not deterministic (:func:`typo_step`), states
   are no longer the policy's action histories, and backward induction over states
   (:func:`optimal_values`) can beat every fixed response of the bandit (:func:`open_loop_values`).

What is simplified, and why:

- The prompt is the empty history (the root); a real prompt would only prefix every state.
- The policy is a table of seeded random logits per state (no network), divided by a
  temperature before the softmax; gradients are taken with respect to those logits.
- No discounting (gamma = 1), as in GRPO; responses stop at an optional end-of-sequence token
  or at ``depth`` tokens.
- Everything is pure Python + NumPy, and exact: trees beyond a few thousand nodes are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

State = tuple[int, ...]  # a history: indices into TokenTree.actions
Reward = Callable[[str], float]

MAX_NODES = 20_000  # enumeration is exact; beyond this the tree is too big to be a toy


@dataclass(frozen=True)
class TokenTree:
    """Every token history of a tiny vocabulary up to ``depth`` tokens.

    Attributes:
        actions: the tokens an action can emit; the end-of-sequence token, if any, is last.
        depth: the largest number of tokens in a response.
        eos: the end-of-sequence token or ``None``; emitting it ends the response.
        states: all histories in breadth-first order (root ``()`` first).
        parent: ``parent[s]`` is the one state whose action led to ``s`` (root: ``None``).
        children: ``children[s]`` lists the states reachable in one action (leaves: ``[]``).
    """

    actions: tuple[str, ...]
    depth: int
    eos: str | None
    states: list[State] = field(repr=False)
    parent: dict[State, State | None] = field(repr=False)
    children: dict[State, list[State]] = field(repr=False)

    @property
    def leaves(self) -> list[State]:
        """The complete responses (terminal states), in breadth-first order."""
        return [s for s in self.states if not self.children[s]]

    def is_terminal(self, s: State) -> bool:
        """True when ``s`` ends in the end-of-sequence token or has ``depth`` tokens."""
        return len(s) == self.depth or (self.eos is not None and len(s) > 0 and s[-1] == len(self.actions) - 1)

    def text(self, s: State) -> str:
        """The response text of a state, without the end-of-sequence token.

        Example: with actions ``("1", "2", "+", "$")``, ``text((0, 2, 1, 3)) == "1+2"``.
        """
        eos_id = len(self.actions) - 1 if self.eos is not None else -1
        return "".join(self.actions[a] for a in s if a != eos_id)


def num_states(vocab_size: int, depth: int, eos: bool) -> int:
    """Closed-form node count of :func:`build_tree`, used to check it.

    Without an end token there are ``V**d`` histories of length ``d``; with one, each of the
    ``V**(d-1)`` open histories of length ``d-1`` also has an ``eos`` child.

    Example: ``num_states(3, 3, eos=True) == (1 + 3 + 9 + 27) + (1 + 3 + 9) == 53``.
    """
    open_ = sum(vocab_size**d for d in range(depth + 1))
    return open_ + (sum(vocab_size**d for d in range(depth)) if eos else 0)


def build_tree(vocab: Sequence[str], depth: int, eos: str | None = None) -> TokenTree:
    """Build the tree of all token histories: transitions are deterministic, ``s' = s + (a,)``.

    Args:
        vocab: the ordinary tokens, e.g. ``("1", "2", "+")``; must be distinct and non-empty.
        depth: maximum response length in tokens (>= 1).
        eos: optional end-of-sequence token (not in ``vocab``); a history ending in it is
            terminal.

    Returns:
        A :class:`TokenTree` whose ``states`` are tuples of action indices.

    Example:
        >>> t = build_tree(("a", "b"), depth=2)
        >>> t.states
        [(), (0,), (1,), (0, 0), (0, 1), (1, 0), (1, 1)]
        >>> t.parent[(1, 0)]
        (1,)
    """
    vocab = tuple(vocab)
    if not vocab or len(set(vocab)) != len(vocab):
        raise ValueError(f"vocab must be non-empty and without repeats, got {vocab!r}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if eos is not None and eos in vocab:
        raise ValueError(f"eos {eos!r} must not also be in vocab {vocab!r}")
    n = num_states(len(vocab), depth, eos is not None)
    if n > MAX_NODES:
        raise ValueError(f"vocab size {len(vocab)} and depth {depth} give {n} states (> {MAX_NODES}); "
                         "this module enumerates exactly, so use a smaller vocabulary or depth")
    actions = vocab + ((eos,) if eos is not None else ())
    states: list[State] = [()]
    parent: dict[State, State | None] = {(): None}
    children: dict[State, list[State]] = {}
    tree = TokenTree(actions, depth, eos, states, parent, children)
    i = 0
    while i < len(states):  # breadth-first: states grows while we walk it
        s = states[i]
        kids = [] if tree.is_terminal(s) else [s + (a,) for a in range(len(actions))]
        children[s] = kids
        for c in kids:
            parent[c] = s
            states.append(c)
        i += 1
    return tree


# --------------------------------------------------------------------------------- rewards

_EXPR = re.compile(r"^\d+([+*]\d+)*$")


def arithmetic_value(text: str) -> int | None:
    """Value of ``text`` if it is digits joined by ``+`` and ``*`` (usual precedence), else None.

    Parsed by hand, never with ``eval``. Example: ``arithmetic_value("2+1*2") == 4``,
    ``arithmetic_value("+2") is None``.
    """
    return sum(int(np.prod([int(f) for f in t.split("*")])) for t in text.split("+")) if _EXPR.match(text) else None


def sum_verifier(target: int) -> Reward:
    """A terminal reward: 1.0 if the response is a well-formed expression equal to ``target``.

    Example: ``sum_verifier(3)("1+2") == 1.0`` and ``sum_verifier(3)("12") == 0.0``.
    """

    def reward(text: str) -> float:
        return float(arithmetic_value(text) == target)

    reward.__name__ = f"equals_{target}"
    return reward


# --------------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Policy:
    """A tabular softmax policy: ``pi(a|s) = softmax(logits[s] / temperature)[a]``.

    Attributes:
        logits: ``logits[s]`` has shape ``(num_actions,)`` for every non-terminal state.
        temperature: > 0; low values make the policy nearly greedy, high values uniform.
    """

    logits: dict[State, np.ndarray]
    temperature: float

    def probs(self, s: State) -> np.ndarray:
        """``pi(.|s)``, shape ``(num_actions,)``, summing to 1."""
        z = self.logits[s] / self.temperature
        e = np.exp(z - z.max())
        return e / e.sum()


def random_policy(tree: TokenTree, temperature: float = 1.0, seed: int = 0) -> Policy:
    """Seeded standard-normal logits for every non-terminal state of ``tree``.

    Example: ``random_policy(tree, 0.5, seed=1).probs(())`` is the distribution of the first
    token; the same seed always gives the same policy.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rng = np.random.default_rng(seed)
    k = len(tree.actions)
    logits = {s: rng.standard_normal(k) for s in tree.states if tree.children[s]}
    return Policy(logits, float(temperature))


# --------------------------------------------------------------------------------- values


def state_values(tree: TokenTree, policy: Policy, reward: Reward) -> dict[State, float]:
    """``V(s)`` by backward induction: ``r(text(s))`` at a leaf, else ``sum_a pi(a|s) V(s+a)``.

    Deeper states are finished first (reverse breadth-first order), so each state's children
    are known when it is reached. No intermediate rewards, no discount.
    """
    V: dict[State, float] = {}
    for s in reversed(tree.states):
        kids = tree.children[s]
        V[s] = float(policy.probs(s) @ np.array([V[c] for c in kids]) if kids else reward(tree.text(s)))
    return V


def response_probs(tree: TokenTree, policy: Policy, state: State = ()) -> dict[State, float]:
    """Probability of each complete response below ``state``: the product of ``pi`` on its path.

    The values sum to 1. Example: at the root this is the whole distribution over responses,
    the "arms" of the contextual bandit.
    """
    out: dict[State, float] = {}
    stack = [(state, 1.0)]
    while stack:
        s, p = stack.pop()
        if not tree.children[s]:
            out[s] = p
        else:
            stack += [(c, p * float(pa)) for c, pa in zip(tree.children[s], policy.probs(s))]
    return out


def sample_responses(tree: TokenTree, policy: Policy, n: int, seed: int = 0) -> list[State]:
    """Draw ``n`` complete responses token by token, as an LLM samples.

    The frequency of each response approaches :func:`response_probs`: sampling token by
    token *is* sampling one arm of the bandit. Example: ``sample_responses(tree, policy, 8)``
    is a group of 8 leaves (GRPO's G = 8).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s: State = ()
        while tree.children[s]:
            s = tree.children[s][rng.choice(len(tree.actions), p=policy.probs(s))]
        out.append(s)
    return out


def expected_reward(tree: TokenTree, policy: Policy, reward: Reward, state: State = ()) -> float:
    """``E_o[r(o)]`` over complete responses ``o`` below ``state``, by enumeration."""
    return sum(p * reward(tree.text(o)) for o, p in response_probs(tree, policy, state).items())


# --------------------------------------------------------------------------------- credit


def token_advantages(tree: TokenTree, V: dict[State, float], response: State) -> np.ndarray:
    """Exact per-token advantages ``A_t = Q(s_t, a_t) - V(s_t) = V(s_{t+1}) - V(s_t)``.

    With deterministic transitions and no intermediate reward, ``Q(s, a) = V(s + a)``. The
    values differ from token to token, but they sum to ``r(o) - V(root)`` (telescoping).

    Args:
        V: output of :func:`state_values`.
        response: a complete response (a leaf of ``tree``).

    Returns:
        Shape ``(len(response),)``.
    """
    if tree.children.get(response, None) != []:
        raise ValueError(f"{response!r} is not a complete response (a leaf) of this tree")
    return np.array([V[response[: t + 1]] - V[response[:t]] for t in range(len(response))])


def uniform_credit(reward_value: float, baseline: float, length: int) -> np.ndarray:
    """GRPO's credit: every token of the response gets the sequence advantage ``r - b``.

    Example: ``uniform_credit(1.0, 0.25, 3)`` is ``array([0.75, 0.75, 0.75])``.
    """
    return np.full(length, reward_value - baseline, dtype=float)


def policy_gradient_mdp(tree: TokenTree, policy: Policy, reward: Reward) -> dict[State, np.ndarray]:
    """Exact gradient of ``J = V(root)`` w.r.t. each state's logits, from per-state advantages.

    Policy-gradient theorem on the tree: ``dJ/dlogits[s][a] = P(reach s) * pi(a|s) *
    (Q(s,a) - V(s)) / temperature``. Returns arrays of shape ``(num_actions,)`` per state.
    """
    V = state_values(tree, policy, reward)
    reach = {(): 1.0}
    grad = {}
    for s in tree.states:  # breadth-first: a parent's reach is known before its children's
        kids = tree.children[s]
        if not kids:
            continue
        pi = policy.probs(s)
        q = np.array([V[c] for c in kids])
        grad[s] = reach[s] * pi * (q - V[s]) / policy.temperature
        for c, pa in zip(kids, pi):
            reach[c] = reach[s] * float(pa)
    return grad


def policy_gradient_bandit(tree: TokenTree, policy: Policy, reward: Reward,
                           baseline: float | None = None) -> dict[State, np.ndarray]:
    """The same gradient, computed as a bandit over whole responses with uniform credit.

    ``sum_o P(o) * (r(o) - b) * sum_t grad log pi(o_t | o_<t)``: each token of ``o`` gets the
    sequence advantage ``r(o) - b``; ``grad_logits log pi(a|s) = (onehot(a) - pi(.|s)) / T``.
    Any constant baseline ``b`` gives the same result (default: the expected reward).
    """
    probs = response_probs(tree, policy)
    if baseline is None:
        baseline = sum(p * reward(tree.text(o)) for o, p in probs.items())
    grad = {s: np.zeros(len(tree.actions)) for s in policy.logits}
    for o, p in probs.items():
        adv = uniform_credit(reward(tree.text(o)), baseline, len(o))
        for t, a in enumerate(o):
            s = o[:t]
            g = np.eye(len(tree.actions))[a] - policy.probs(s)  # d log pi(a|s) / d logits, times T
            grad[s] += p * adv[t] * g / policy.temperature
    return grad


# --------------------------------------------------------------------------------- variance


def flatten(grad: dict[State, np.ndarray], policy: Policy) -> np.ndarray:
    """A per-state gradient (as from :func:`policy_gradient_mdp`) as one vector.

    Returns shape ``(S * A,)``: the ``S`` states of ``policy.logits`` in their order, each
    with its ``A`` logits; states missing from ``grad`` count as zeros.
    """
    k = len(next(iter(policy.logits.values())))
    return np.concatenate([grad.get(s, np.zeros(k)) for s in policy.logits])


def gradient_estimates(tree: TokenTree, policy: Policy, reward: Reward, responses: Sequence[State],
                       credit: str = "uniform", baseline: float | None = None) -> np.ndarray:
    """One policy-gradient estimate per sampled response, ``sum_t c_t grad log pi(o_t | o_<t)``.

    Args:
        responses: ``n`` complete responses (leaves), e.g. from :func:`sample_responses`.
        credit: ``"uniform"``: every token gets ``r(o) - b`` (GRPO's credit, no critic);
            ``"exact"``: token ``t`` gets ``V(s_{t+1}) - V(s_t)`` (a perfect critic).
        baseline: ``b`` for uniform credit (default: ``V(root)``, the expected reward).

    Returns:
        shape ``(n, S * A)``, coordinates as in :func:`flatten`. Both credits are unbiased: the
        mean over responses drawn from the policy is ``flatten(policy_gradient_mdp(...))``;
        their variances differ (notebook 01, section 7).
    """
    if credit not in ("uniform", "exact"):
        raise ValueError(f"credit must be 'uniform' or 'exact', got {credit!r}")
    V = state_values(tree, policy, reward)
    b = V[()] if baseline is None else baseline
    row = {s: i for i, s in enumerate(policy.logits)}
    k = len(tree.actions)
    out = np.zeros((len(responses), len(row), k))
    for n, o in enumerate(responses):
        c = uniform_credit(reward(tree.text(o)), b, len(o)) if credit == "uniform" else token_advantages(tree, V, o)
        for t, a in enumerate(o):
            g = np.eye(k)[a] - policy.probs(o[:t])
            out[n, row[o[:t]]] += c[t] * g / policy.temperature
    return out.reshape(len(responses), -1)


# --------------------------------------------------------------------------------- contrast

#: ``step(s, a)`` -> ``[(probability, next state), ...]``; the next states are children of s.
Step = Callable[[State, int], list[tuple[float, State]]]


def deterministic_step(s: State, a: int) -> list[tuple[float, State]]:
    """Assumption 1: the action is appended, ``s' = s + (a,)``, with probability 1."""
    return [(1.0, s + (a,))]


def typo_step(tree: TokenTree, q: float) -> Step:
    """A transition that is *not* deterministic: the state is the text actually written.

    With probability ``1 - q`` the chosen ordinary token is written; with probability ``q`` one
    of the other ordinary tokens is, uniformly. The end token is never corrupted nor produced
    by a typo. Two different action sequences can now reach the same state, and one action
    sequence can reach several: states are no longer the policy's own action histories.

    Example: with actions ``("1", "2", "+", "$")`` and ``q = 0.2``, ``typo_step(tree, 0.2)((), 1)``
    is ``[(0.8, (1,)), (0.1, (0,)), (0.1, (2,))]``.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    ordinary = len(tree.actions) - (tree.eos is not None)

    def step(s: State, a: int) -> list[tuple[float, State]]:
        if a >= ordinary or ordinary == 1:
            return [(1.0, s + (a,))]
        others = [b for b in range(ordinary) if b != a]
        return [(1.0 - q, s + (a,))] + [(q / len(others), s + (b,)) for b in others]

    return step


def optimal_values(tree: TokenTree, reward: Reward, step: Step = deterministic_step) -> dict[State, float]:
    """``V*(s)`` by backward induction over states: ``max_a sum_s' P(s'|s,a) V*(s')``.

    The policy sees the state before each action (closed loop), so it can react to what the
    transition did. Example: with ``deterministic_step``, ``V*(root)`` is the best leaf's reward.
    """
    V: dict[State, float] = {}
    for s in reversed(tree.states):
        V[s] = (max(sum(p * V[c] for p, c in step(s, a)) for a in range(len(tree.actions)))
                if tree.children[s] else float(reward(tree.text(s))))
    return V


def open_loop_values(tree: TokenTree, reward: Reward, step: Step = deterministic_step) -> dict[State, float]:
    """The bandit over whole responses: expected reward of each fixed action sequence.

    Each leaf ``o`` of ``tree``, read as the actions chosen in advance (an arm), is pushed
    through ``step``; a state that became terminal stays where it is. With
    ``deterministic_step`` this is ``{o: r(o)}``: the arm *is* the response.

    Returns:
        ``{action sequence: E[r]}`` over all leaves; ``max`` of it is the bandit's best arm.
    """
    out = {}
    for o in tree.leaves:
        dist: dict[State, float] = {(): 1.0}
        for a in o:
            nxt: dict[State, float] = {}
            for s, p in dist.items():
                for pq, c in ([(1.0, s)] if not tree.children[s] else step(s, a)):
                    nxt[c] = nxt.get(c, 0.0) + p * pq
            dist = nxt
        out[o] = sum(p * reward(tree.text(s)) for s, p in dist.items())
    return out
