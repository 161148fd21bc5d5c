from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r"^ws/studies/(?P<study_uid>[0-9.]{1,64})/$", consumers.StudyConsumer.as_asgi()),
    re_path(r"^ws/events/$", consumers.AllEventsConsumer.as_asgi()),
]
