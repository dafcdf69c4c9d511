from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from apps.accounts.models import Role, User
from apps.accounts.services import user_set_role


class RoleFormMixin(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, help_text="What this user may do in RiskRadar.")


class UserRoleChangeForm(RoleFormMixin, UserChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["role"].initial = self.instance.role


class UserRoleCreationForm(RoleFormMixin, UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserRoleChangeForm
    add_form = UserRoleCreationForm
    list_display = ["username", "email", "role_display", "is_active", "last_login", "date_joined"]
    list_filter = ["groups", "is_active", "is_staff", "is_superuser"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Role", {"fields": ["role"]}),
        ("Personal", {"fields": ["first_name", "last_name", "email", "timezone"]}),
        ("Status", {"fields": ["is_active", "is_superuser", "last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["username", "role", "password1", "password2"]})]
    readonly_fields = ["last_login", "date_joined"]

    @admin.display(description="Role")
    def role_display(self, obj: User) -> str:
        return obj.role or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        user_set_role(user=obj, role=form.cleaned_data["role"])

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user_set_role(user=form.instance, role=form.cleaned_data["role"])
