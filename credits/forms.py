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
        mode, amount = data.get("mode"), data.get("monthly_limit")
        if "monthly_limit" in self.errors:
            return data
        if mode == self.MODE_AMOUNT and amount is None:
            self.add_error(
                "monthly_limit",
                "Enter a monthly limit in credits, or choose “No limit” or “Workspace default”.",
            )
        elif mode in (self.MODE_NONE, self.MODE_DEFAULT) and amount is not None:
            # A number typed beside another choice is what the admin meant more often than
            # not: refuse it rather than save the choice and drop the number silently.
            chosen = dict(self.fields["mode"].choices)[mode]
            self.add_error(
                "monthly_limit",
                f"You typed {amount:,} credits but chose “{chosen}”: choose “Limit of” to set "
                "that limit, or clear the number.",
            )
        return data

    def saved_message(self, email: str) -> str:
        """Return what was saved, in the words of the page."""
        mode = self.cleaned_data["mode"]
        if mode == self.MODE_AMOUNT:
            amount = self.cleaned_data["monthly_limit"]
            return f"{email} now has a monthly limit of {amount:,} credits."
        if mode == self.MODE_NONE:
            return f"{email} now has no monthly limit."
        return f"{email} now follows the workspace default."


class MemberLimitDefaultForm(forms.Form):
    default = forms.ChoiceField(
        choices=MemberLimitDefault.choices,
        widget=forms.RadioSelect,
        label="Members without their own limit",
    )
