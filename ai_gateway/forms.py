from django import forms

from .try_ai import ProviderOffer, model_choices, provider_of

DEFAULT_MODEL = "claude-sonnet-5"


class ModelSelect(forms.Select):
    """The model picker: each option says its provider (the page's script sends to that
    provider's API); the models of a provider whose key is invalid are disabled."""

    def __init__(self, *args, off_providers: frozenset[str] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        self.off_providers = off_providers

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        provider = provider_of(str(value))
        if provider:
            option["attrs"]["data-provider"] = provider
            if provider in self.off_providers:
                option["attrs"]["disabled"] = True
        return option


class PromptForm(forms.Form):
    model = forms.ChoiceField(
        choices=(),
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

    def __init__(self, *args, offers: list[ProviderOffer], **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["model"]
        field.choices = model_choices(offers)
        field.widget = ModelSelect(
            choices=field.choices,
            off_providers=frozenset(offer.provider for offer in offers if not offer.usable),
        )
        usable = [offer for offer in offers if offer.usable]
        if usable and DEFAULT_MODEL not in usable[0].models:
            field.initial = usable[0].models[0]
