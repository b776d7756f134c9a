"""/api/: token, the manager's catalogue and studies, the rater's assignments, schema and docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import APIRootView, DefaultRouter

from evalhub.api import rater_views, views
from evalhub.api.auth import ObtainTokenView
from evalhub.api.permissions import AUTHENTICATION_CLASSES
from evalhub.api.report_views import StudyReportView


class ApiRootView(APIRootView):
    """The browsable index of /api/, authenticated like every other endpoint here."""

    authentication_classes = AUTHENTICATION_CLASSES


router = DefaultRouter()
router.APIRootView = ApiRootView
router.register("datasets", views.DatasetViewSet, basename="api-dataset")
router.register("runs", views.RunViewSet, basename="api-run")
router.register("systems", views.SystemViewSet, basename="api-system")
router.register("studies", views.StudyViewSet, basename="api-study")
router.register("comparisons", views.ComparisonViewSet, basename="api-comparison")
router.register("judgments", views.JudgmentViewSet, basename="api-judgment")
router.register("assignments", rater_views.AssignmentViewSet, basename="api-assignment")

# Login is required everywhere, the schema and its docs page included.
_logged_in = {
    "authentication_classes": AUTHENTICATION_CLASSES,
    "permission_classes": [IsAuthenticated],
}

urlpatterns = [
    path("token/", ObtainTokenView.as_view(), name="api_token"),
    path("schema/", SpectacularAPIView.as_view(**_logged_in), name="api_schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api_schema", **_logged_in),
        name="api_docs",
    ),
    path("studies/<int:pk>/report/", StudyReportView.as_view(), name="api_study_report"),
    path("", include(router.urls)),
]
