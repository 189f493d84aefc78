from django import forms
from django.conf import settings

DEFAULT_MODEL = "claude-sonnet-5"


def _model_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(settings.AI_MODEL_PRICES)]


class PromptForm(forms.Form):
    model = forms.ChoiceField(
        choices=_model_choices,
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
