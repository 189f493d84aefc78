from django import forms

from workspaces.models import Workspace

from .services import NAME_MAX_LENGTH, ApiTokenNameError, api_token_validate_name


class ApiTokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=NAME_MAX_LENGTH,
        strip=True,
        help_text="What will use it, e.g. “copilot service” or “nightly summary job”.",
        error_messages={
            "required": "Give the token a name, such as the program that will use it.",
        },
    )

    def __init__(self, *args, workspace: Workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace

    def clean_name(self) -> str:
        try:
            return api_token_validate_name(workspace=self.workspace, name=self.cleaned_data["name"])
        except ApiTokenNameError as exc:
            raise forms.ValidationError(str(exc)) from None
