"""Every URL of evalhub, pages and API, in the order of the main walk: datasets, runs and their
outputs, studies, rating, analysis and reports, people, then the API."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import APIRootView, DefaultRouter

from evalhub.api import judge_views, preference_views, rater_views
from evalhub.api import views as api
from evalhub.api.adapter_views import RunAdapterView
from evalhub.api.auth import ObtainTokenView
from evalhub.api.permissions import AUTHENTICATION_CLASSES
from evalhub.api.report_views import StudyReportView
from evalhub.api.review_views import FinalCallView, ReviewItemView, ReviewQueueView
from evalhub.views import (
    analysis,
    datasets,
    deletes,
    home,
    judges,
    judging,
    lineage,
    outputs,
    people,
    preferences,
    rating,
    review,
    run_evaluation,
    run_launch,
    runs,
    studies,
)


class ApiRootView(APIRootView):
    """The browsable index of /api/, authenticated like every other endpoint here."""

    authentication_classes = AUTHENTICATION_CLASSES


router = DefaultRouter()
router.APIRootView = ApiRootView
router.register("datasets", api.DatasetViewSet, basename="api-dataset")
router.register("runs", api.RunViewSet, basename="api-run")
router.register("systems", api.SystemViewSet, basename="api-system")
router.register("studies", api.StudyViewSet, basename="api-study")
router.register("comparisons", api.ComparisonViewSet, basename="api-comparison")
router.register("judgments", api.JudgmentViewSet, basename="api-judgment")
router.register("assignments", rater_views.AssignmentViewSet, basename="api-assignment")
router.register(
    "preference-sets", preference_views.PreferenceSetViewSet, basename="api-preference-set"
)
router.register("judges", judge_views.JudgeViewSet, basename="api-judge")
router.register("judge-runs", judge_views.JudgeRunViewSet, basename="api-judge-run")

# Login is required everywhere in the API, the schema and its docs page included.
_logged_in = {
    "authentication_classes": AUTHENTICATION_CLASSES,
    "permission_classes": [IsAuthenticated],
}

urlpatterns = [
    path("", home.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    # 1 import
    path("datasets/", datasets.dataset_list, name="dataset_list"),
    path("datasets/upload/", datasets.dataset_upload, name="dataset_upload"),
    path("datasets/<slug:name>/", datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<slug:name>/delete/", deletes.dataset_delete_view, name="dataset_delete"),
    path("datasets/<slug:name>/lineage/", lineage.dataset_lineage_view, name="dataset_lineage"),
    # 2 fine-tune
    path("runs/", runs.run_list, name="run_list"),
    path("runs/new/", run_launch.run_new, name="run_new"),
    path("runs/<int:pk>/", runs.run_detail, name="run_detail"),
    path("runs/<int:pk>/cancel/", run_launch.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/resume/", run_launch.run_resume, name="run_resume"),
    path("runs/<int:pk>/delete/", deletes.run_delete_view, name="run_delete"),
    path("runs/<int:pk>/retry/", run_launch.run_retry, name="run_retry"),
    path("runs/<int:pk>/clone/", run_launch.run_clone, name="run_clone"),
    path("runs/<int:pk>/adapter.zip", lineage.run_adapter_download, name="run_adapter"),
    # 3-4 generate and score
    path("runs/<int:run_id>/evaluate/", run_evaluation.run_evaluate, name="run_evaluate"),
    path("runs/<int:run_id>/outputs/", outputs.run_outputs, name="run_outputs"),
    # 5 study
    path("studies/", studies.study_list, name="study_list"),
    path("studies/new/", studies.study_create_view, name="study_create"),
    path("studies/plan/", studies.study_plan_view, name="study_plan"),
    path("studies/<int:pk>/", studies.study_detail, name="study_detail"),
    path("studies/<int:pk>/status/", studies.study_status, name="study_status"),
    path("studies/<int:pk>/raters/", studies.study_raters, name="study_raters"),
    path("studies/<int:pk>/signal/", studies.study_signal_view, name="study_signal"),
    path("studies/<int:pk>/delete/", deletes.study_delete_view, name="study_delete"),
    path("studies/<int:pk>/preferences/", preferences.preference_build, name="preference_build"),
    # 5b preference sets: judgments of feedback studies that train the next adapter
    path("preferences/", preferences.preference_list, name="preference_list"),
    path(
        "preferences/<slug:name>/v<int:version>/",
        preferences.preference_detail,
        name="preference_detail",
    ),
    path(
        "preferences/<slug:name>/v<int:version>/download.jsonl",
        preferences.preference_download,
        name="preference_download",
    ),
    path("studies/<int:pk>/judge/", judging.study_judge, name="study_judge"),
    path("judges/", judges.judges, name="judges"),
    # people: experts and managers
    path("people/", people.people, name="people"),
    path("people/new/", people.person_create, name="person_create"),
    path("people/<int:pk>/link/", people.person_link, name="person_link"),
    # 6 judgments
    path("rate/", rating.rate_home, name="rate_home"),
    path("rate/study/<int:pk>/", rating.rate_study, name="rate_study"),
    path("rate/study/<int:pk>/next/", rating.rate_next, name="rate_next"),
    path("rate/<str:token>/", rating.rate_item, name="rate_item"),
    # 6b adjudication: reviewers settle split or flagged comparisons
    path("review/", review.review_home, name="review_home"),
    path("review/study/<int:pk>/", review.review_study, name="review_study"),
    path("review/study/<int:pk>/next/", review.review_next_item, name="review_next"),
    path("review/study/<int:pk>/<str:token>/", review.review_comparison, name="review_item"),
    # 7 analysis and report
    path("studies/<int:pk>/analysis/", analysis.study_analysis, name="study_analysis"),
    path(
        "studies/<int:pk>/analysis/items/<int:comparison_id>/",
        analysis.study_item,
        name="study_item",
    ),
    path("studies/<int:pk>/report.<str:fmt>", analysis.study_report, name="study_report"),
    # the API
    path("api/token/", ObtainTokenView.as_view(), name="api_token"),
    path("api/schema/", SpectacularAPIView.as_view(**_logged_in), name="api_schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api_schema", **_logged_in),
        name="api_docs",
    ),
    path("api/studies/<int:pk>/report/", StudyReportView.as_view(), name="api_study_report"),
    path("api/runs/<int:pk>/adapter/", RunAdapterView.as_view(), name="api_run_adapter"),
    path(
        "api/studies/<int:pk>/judge/", judge_views.StudyJudgeView.as_view(), name="api_study_judge"
    ),
    path("api/review/studies/<int:pk>/", ReviewQueueView.as_view(), name="api_review_queue"),
    path(
        "api/review/studies/<int:pk>/<str:token>/",
        ReviewItemView.as_view(),
        name="api_review_item",
    ),
    path(
        "api/review/studies/<int:pk>/<str:token>/final-call/",
        FinalCallView.as_view(),
        name="api_review_final_call",
    ),
    path("api/", include(router.urls)),
]
