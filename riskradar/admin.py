"""Admin building blocks the apps share."""

from django.contrib import admin


class ComputedAdmin(admin.ModelAdmin):
    """Rows written by RiskRadar itself (feeds, calculations): shown, never added or edited by hand.

    Deleting stays possible for whoever holds the delete permission (an Admin clearing old rows).
    """

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ComputedAdmin):
    """Rows that are a record (trades, the positions they build): not even deleted by hand."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
