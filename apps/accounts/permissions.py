from rest_framework.permissions import DjangoModelPermissions


class RoleModelPermissions(DjangoModelPermissions):
    """Model permissions that also require `view_<model>` for reads (DRF checks none for GET)."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class HasPerm:
    """Build a permission class requiring one named Django permission, e.g. HasPerm("portfolios.import_data")."""

    def __new__(cls, perm: str):
        from rest_framework.permissions import BasePermission

        class _HasPerm(BasePermission):
            message = f"Your role does not allow this (requires {perm})."

            def has_permission(self, request, view) -> bool:
                return bool(request.user and request.user.is_authenticated and request.user.has_perm(perm))

        _HasPerm.__name__ = f"HasPerm[{perm}]"
        return _HasPerm
