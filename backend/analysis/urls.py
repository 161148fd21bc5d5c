from django.urls import path

from . import views

urlpatterns = [
    path("models/", views.model_list, name="analysis-models"),
    path("jobs/", views.job_list, name="analysis-jobs"),
    path("jobs/<str:job_id>/", views.job_detail, name="analysis-job"),
    path("jobs/<str:job_id>/cancel/", views.job_cancel, name="analysis-job-cancel"),
    path("studies/<str:study_uid>/results/", views.study_results, name="analysis-study-results"),
]
