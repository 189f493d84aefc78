from django import forms
from django.views.decorators.debug import sensitive_variables

from providers.keys import SHAPES

from .models import Provider
from .services import KeyFormatError, validate_key_format


class LLMKeyForm(forms.Form):
    provider = forms.ChoiceField(
        choices=Provider.choices,
        initial=Provider.ANTHROPIC,
        error_messages={
            "invalid_choice": "That provider is not supported: choose one from the list.",
            "required": "Choose a provider.",
        },
    )
    api_key = forms.CharField(
        label="API key",
        # Never render the value back, not even after a failed submit.
        widget=forms.PasswordInput(
            render_value=False,
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "sk-ant-…, sk-… or AIza…",
            },
        ),
        max_length=1000,
        # An empty value is refused by clean_api_key, which names the chosen provider.
        required=False,
        help_text="Create a key in "
        + ", ".join(shape.where for shape in list(SHAPES.values())[:-1])
        + f" or {list(SHAPES.values())[-1].where}.",
    )

    @sensitive_variables("value")
    def clean_api_key(self) -> str:
        value = self.cleaned_data.get("api_key") or ""
        try:
            return validate_key_format(value, self.cleaned_data.get("provider", Provider.ANTHROPIC))
        except KeyFormatError as exc:
            raise forms.ValidationError(str(exc), code="format") from None
