from django.urls import path

from activation.apis import ActivationApi

urlpatterns = [path("activation", ActivationApi.as_view(), name="activation")]
