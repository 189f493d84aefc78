from django import forms

from .models import MemberLimitDefault
from .services import MAX_AMOUNT


class MemberLimitForm(forms.Form):
    """Set one member's monthly credit limit: an amount, no limit, or the workspace default."""

    MODE_AMOUNT = "amount"
    MODE_NONE = "none"
    MODE_DEFAULT = "default"

    member = forms.IntegerField(widget=forms.HiddenInput)
    mode = forms.ChoiceField(
        choices=[
            (MODE_AMOUNT, "Limit of"),
            (MODE_NONE, "No limit"),
            (MODE_DEFAULT, "Workspace default"),
        ],
        widget=forms.RadioSelect,
        initial=MODE_AMOUNT,
    )
    monthly_limit = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_AMOUNT,
        label="Credits a month",
        error_messages={
            "invalid": "Enter the limit as a whole number of credits, such as 5000.",
            "min_value": "A limit cannot be negative; enter 0 to stop this member's credits.",
        },
    )

    def clean(self):
        data = super().clean()
        missing = data.get("mode") == self.MODE_AMOUNT and data.get("monthly_limit") is None
        if missing and "monthly_limit" not in self.errors:
            self.add_error(
                "monthly_limit",
                "Enter a monthly limit in credits, or choose “No limit” or “Workspace default”.",
            )
        return data


class MemberLimitDefaultForm(forms.Form):
    default = forms.ChoiceField(
        choices=MemberLimitDefault.choices,
        widget=forms.RadioSelect,
        label="Members without their own limit",
    )
