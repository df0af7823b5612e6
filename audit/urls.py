from django.urls import path

from . import views

urlpatterns = [
    path("w/<slug:slug>/audit/", views.audit_list, name="audit_list"),
]
