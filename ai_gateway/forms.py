import re

from django import forms
from django.conf import settings

from credits.pricing import get_price

DEFAULT_MODEL = "claude-sonnet-5"
# A dated id ("claude-sonnet-4-5-20250929") is a snapshot of the undated one beside it.
_DATED = re.compile(r"^(?P<alias>.+)-\d{8}$")
_PROVIDERS = {"claude": "Anthropic", "gpt": "OpenAI", "o1": "OpenAI", "gemini": "Google"}
# Tiers as Anthropic's model overview orders them, most capable first.
_TIERS = {
    "fable": "frontier",
    "mythos": "frontier",
    "opus": "most capable",
    "sonnet": "balanced",
    "haiku": "fastest, lowest price",
}
_ACRONYMS = {"gpt": "GPT"}
CREDITS_PER_USD = 10_000


def model_name(model: str) -> str:
    """Return a model's name as people write it: "claude-sonnet-4-5" → "Claude Sonnet 4.5"."""
    words, version = [], []
    for part in model.split("-"):
        (version if part.isdigit() or version else words).append(part)
    name = " ".join(_ACRONYMS.get(w, w.capitalize()) for w in words)
    return name + (" " + ".".join(version) if version else "")


def _offered_models() -> list[str]:
    """Return the price table's models Try AI can send, one entry per model: a dated id is
    left out when the id it is a snapshot of is offered too.

    Try AI sends through the session API, which speaks Anthropic's Messages API only, so the
    OpenAI and Gemini rows of the table are not offered here (issue 22 leaves that open).
    """
    models = {m for m in settings.AI_MODEL_PRICES if _PROVIDERS.get(m.split("-")[0]) == "Anthropic"}
    return [m for m in models if not ((dated := _DATED.match(m)) and dated["alias"] in models)]


def _sort_key(model: str) -> tuple:
    words = model.split("-")
    family = words[1] if len(words) > 1 else ""
    tiers = list(_TIERS)
    version = tuple(-int(p) for p in words if p.isdigit())
    version += (0,) * (3 - len(version))  # 5.2 before 5.1 before 5
    return (tiers.index(family) if family in tiers else len(tiers), version, model)


def model_choices(*, in_usd: bool = False) -> list[tuple[str, str]]:
    """Return Try AI's model choices: name, tier and price per million tokens (credits, or the
    US$ list price for a workspace paying with its own key)."""
    choices = []
    for model in sorted(_offered_models(), key=_sort_key):
        price = get_price(model)
        family = model.split("-")[1] if "-" in model else ""
        tier = _TIERS.get(family)
        if in_usd:
            cost = (
                f"US${price.input / CREDITS_PER_USD:,g} / US${price.output / CREDITS_PER_USD:,g}"
                " per M tokens in / out"
            )
        else:
            cost = f"{price.input:,} / {price.output:,} credits per M tokens in / out"
        choices.append(
            (model, " · ".join(part for part in (model_name(model), tier, cost) if part))
        )
    return choices


class PromptForm(forms.Form):
    model = forms.ChoiceField(
        choices=model_choices,
        initial=DEFAULT_MODEL,
        error_messages={"invalid_choice": "That model is not offered: choose one from the list."},
    )
    max_tokens = forms.IntegerField(
        label="Max tokens",
        min_value=1,
        max_value=128_000,
        initial=512,
        error_messages={"required": "Give the most tokens the answer may use (e.g. 512)."},
        help_text="The longest answer you accept; on AI credits this much is held until the "
        "answer arrives.",
    )
    system = forms.CharField(
        label="System prompt (optional)",
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    prompt = forms.CharField(
        max_length=100_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"required": "Write a prompt first."},
    )

    def __init__(self, *args, in_usd: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = model_choices(in_usd=in_usd)
