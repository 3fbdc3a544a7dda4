from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from em_agent import allauth_guards, errors, health
from em_agent.apis import MeApi
from schedules.feed_apis import calendar_feed_view

# Supervisors log in to the admin through allauth: its rate limits and MFA apply there too.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = "EM Agent administration"
admin.site.site_title = "EM Agent"

api_v1: list[URLPattern | URLResolver] = [
    path("me", MeApi.as_view(), name="me"),
    path("", include("activation.urls")),
    path("", include("notifications.urls")),
    path("", include("schedules.urls")),
    path("", include("timeoff.urls")),
    path("", include("swaps.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # Stricter than allauth's defaults: these come first, so they win over the includes below.
    path("_allauth/app/v1/account/authenticators/totp", allauth_guards.guarded_app_totp_view),
    re_path(r"^_allauth/(app|browser)/v1/account/(email|phone)$", allauth_guards.not_found),
    re_path(r"^accounts/(email|phone)/", allauth_guards.not_found),
    path("_allauth/", include("allauth.headless.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ReadyView.as_view(), name="health-ready"),
    path("calendar/<slug:token>.ics", calendar_feed_view, name="calendar-feed"),
    # Anything else under /api/ is the contract's 404, even with DEBUG on (the demo).
    re_path(r"^api/", errors.api_not_found),
]

handler400 = "em_agent.errors.bad_request"
handler403 = "em_agent.errors.permission_denied"
handler404 = "em_agent.errors.page_not_found"
handler500 = "em_agent.errors.server_error"
