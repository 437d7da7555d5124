"""Which prompt tokens an edit changes: the tokens the `auto` region reads the cross-attention of.

    "a red cube on a wooden floor" → "a blue cube on a wooden floor":   differing: source {red}, target {blue}
    "a red cube on a wooden floor" → "a red cube on grass":            differing: source {wooden, floor}, target {grass}

The two token sequences are aligned by their longest matching blocks (difflib, on token ids, so it works
for word-level and BPE vocabularies alike); the tokens outside those blocks are the differing ones.

The tokens READ are the differing ones and every word token after the first of them: the text encoders
(CLIP's, the toy's) are causal, so the embedding of token i encodes the words ≤ i and all tokens after a
changed word change with it. On the toy prior the changed word's own map does not localise at all (its
key is nearly the BOS token's: precision below chance against held-out object masks) while the changed-
and-following tokens do (recall 1.0 at the chosen threshold; README "Local edits"). Positions index the
encoder's sequence (0 is BOS, never read; EOS and padding are not read either), the cross-attention's key axis.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from nerfedit.errors import UserError


@dataclass(frozen=True)
class DifferingTokens:
    """Positions (in the encoder's token sequence) of the tokens whose maps the `auto` region reads (module docstring)."""

    source: Tuple[int, ...]
    """Positions in the source prompt's tokens: the differing ones and the word tokens after the first of them."""
    target: Tuple[int, ...]
    """Positions in the target prompt's tokens, likewise."""


def differing_tokens(prior, source: str, target: str) -> DifferingTokens:
    """The tokens that differ between `source` and `target`; `UserError` (one line) when none do or the
    prior cannot read them (a word-level vocabulary maps an unknown word to its unknown token)."""
    if not source or not target:
        raise UserError("--edit-region auto needs both a source and a target prompt (it reads the words that differ)")
    src, tgt = prior.token_ids(source), prior.token_ids(target)
    src_words, tgt_words = src[1:-1], tgt[1:-1]  # BOS … EOS: only the words are compared
    matcher = difflib.SequenceMatcher(a=src_words, b=tgt_words, autojunk=False)
    kept_src, kept_tgt = set(), set()
    for block in matcher.get_matching_blocks():
        kept_src.update(range(block.a, block.a + block.size))
        kept_tgt.update(range(block.b, block.b + block.size))
    changed_src = [i + 1 for i in range(len(src_words)) if i not in kept_src]
    changed_tgt = [i + 1 for i in range(len(tgt_words)) if i not in kept_tgt]
    if not changed_src and not changed_tgt:
        raise UserError(f"--edit-region auto: the source and target prompts have the same words ('{source}'), so no region can be read from them")
    unk = getattr(prior.tokenizer, "unk_token_id", None)
    for prompt, ids, positions in ((source, src, changed_src), (target, tgt, changed_tgt)):
        if unk is not None and any(ids[p] == unk for p in positions):
            words = ", ".join(repr(w) for w in prior.unknown_words(prompt)) or "some words"
            raise UserError(f"--edit-region auto: the prior '{prior.name}' does not know {words} in '{prompt}', so it has no attention map for them")
    first_src = changed_src[0] if changed_src else changed_tgt[0]  # an insertion: from where the other changes
    first_tgt = changed_tgt[0] if changed_tgt else changed_src[0]
    return DifferingTokens(tuple(range(first_src, len(src) - 1)), tuple(range(first_tgt, len(tgt) - 1)))


def differing_tokens_per_row(prior, sources: Sequence[str], targets: Sequence[str]) -> List[DifferingTokens]:
    """`differing_tokens` of each (source, target) row."""
    return [differing_tokens(prior, s, t) for s, t in zip(sources, targets)]
