"""Which words of a prompt a prior can read: the ONE rule every command applies (torch-free).

Word-level vocabularies (the `toy` prior's) map every word they lack to one unknown token. Editing or
generating towards that token is editing towards noise, so every command refuses such a prompt before any
work (`refuse_unknown_words`: one line naming the flag, exit code 2). Punctuation is not a word: CLIP's
tokenizer splits "floor." into "floor" and ".", and a vocabulary without "." would turn the full stop into
the unknown token. `readable_prompt` drops exactly the punctuation the tokenizer does not know, and it is
what the prior encodes (`DiffusionPrior.encode_text`) and what the word check reads, so the two agree. A
full BPE vocabulary (Stable Diffusion) knows every punctuation mark: its prompts pass unchanged.
"""

from __future__ import annotations

import string
from typing import Callable, Dict, List, Optional

from nerfedit.errors import UserError


def _unknown_token(tokenizer) -> Optional[str]:
    return getattr(tokenizer, "unk_token", None)


def readable_prompt(tokenizer, prompt: str) -> str:
    """`prompt` without the punctuation marks `tokenizer` would map to its unknown token; whitespace collapsed."""
    unk = _unknown_token(tokenizer)
    if unk is not None:
        for mark in set(prompt) & set(string.punctuation):
            if unk in tokenizer.tokenize(mark):
                prompt = prompt.replace(mark, " ")
    return " ".join(prompt.split())


def unknown_words(tokenizer, prompt: str) -> List[str]:
    """Words of `prompt` (punctuation aside) that `tokenizer` maps to its unknown token; [] for full BPE vocabularies."""
    unk = _unknown_token(tokenizer)
    if unk is None:
        return []
    return [word for word in readable_prompt(tokenizer, prompt).split() if unk in tokenizer.tokenize(word)]


def refuse_unknown_words(unknown_in: Callable[[str], List[str]], prior_name: str, prompts: Dict[str, Optional[str]]) -> None:
    """A `UserError` naming the flag of the first prompt (`{flag: text}`) with a word the prior does not know.

    `unknown_in(text)` lists them: a prior's `unknown_words`, or `lambda text: unknown_words(tokenizer, text)`
    when only the tokenizer is loaded (validation before a run folder exists)."""
    for flag, text in prompts.items():
        unknown = unknown_in(text or "")
        if unknown:
            words = ", ".join(f"'{w}'" for w in dict.fromkeys(unknown))
            raise UserError(
                f"the prior '{prior_name}' does not know {words} in {flag}: it would edit towards noise; "
                "use words it knows (for toy: the world's shapes, colours and floors)"
            )
