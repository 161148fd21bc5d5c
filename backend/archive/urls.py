"""DICOMweb (PS3.18) resources under /dicomweb. Each path dispatches on the method to QIDO, WADO or STOW."""
from django.urls import path, re_path

from . import delete, stow
from .http import dicomweb_view
from .qido import views as qido
from .wado import views as wado

S = "studies/<str:study>"
SE = f"{S}/series/<str:series>"
I = f"{SE}/instances/<str:instance>"  # noqa: E741

urlpatterns = [
    path("studies", dicomweb_view({"GET": qido.search_studies, "POST": stow.store}), name="studies"),
    path(S, dicomweb_view({"GET": wado.retrieve_study, "POST": stow.store, "DELETE": delete.delete_study}), name="study"),
    path(f"{S}/metadata", dicomweb_view({"GET": wado.study_metadata}), name="study-metadata"),
    path(f"{S}/rendered", dicomweb_view({"GET": wado.rendered}), name="study-rendered"),
    path(f"{S}/thumbnail", dicomweb_view({"GET": wado.thumbnail}), name="study-thumbnail"),
    path(f"{S}/series", dicomweb_view({"GET": qido.search_series}), name="study-series"),
    path(f"{S}/instances", dicomweb_view({"GET": qido.search_instances}), name="study-instances"),
    path("series", dicomweb_view({"GET": qido.search_series}), name="series"),
    path("instances", dicomweb_view({"GET": qido.search_instances}), name="instances"),
    path(SE, dicomweb_view({"GET": wado.retrieve_series, "DELETE": delete.delete_series}), name="series-detail"),
    path(f"{SE}/metadata", dicomweb_view({"GET": wado.series_metadata}), name="series-metadata"),
    path(f"{SE}/rendered", dicomweb_view({"GET": wado.rendered}), name="series-rendered"),
    path(f"{SE}/thumbnail", dicomweb_view({"GET": wado.thumbnail}), name="series-thumbnail"),
    path(f"{SE}/instances", dicomweb_view({"GET": qido.search_instances}), name="series-instances"),
    path(I, dicomweb_view({"GET": wado.retrieve_instance}), name="instance"),
    path(f"{I}/metadata", dicomweb_view({"GET": wado.instance_metadata}), name="instance-metadata"),
    path(f"{I}/rendered", dicomweb_view({"GET": wado.rendered}), name="instance-rendered"),
    path(f"{I}/thumbnail", dicomweb_view({"GET": wado.thumbnail}), name="instance-thumbnail"),
    path(f"{I}/frames/<str:frames>", dicomweb_view({"GET": wado.retrieve_frames}), name="frames"),
    path(f"{I}/frames/<str:frames>/rendered", dicomweb_view({"GET": wado.rendered}), name="frame-rendered"),
    path(f"{I}/frames/<str:frames>/thumbnail", dicomweb_view({"GET": wado.thumbnail}), name="frame-thumbnail"),
    path(f"{I}/bulkdata/<str:tag>", dicomweb_view({"GET": wado.bulkdata}), name="bulkdata"),
    re_path(r"^.*$", dicomweb_view({"GET": wado.not_found, "POST": wado.not_found, "DELETE": wado.not_found})),
]
