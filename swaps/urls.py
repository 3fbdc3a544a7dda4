from django.urls import path

from swaps.apis import CandidatesApi, SwapAcceptApi, SwapCancelApi, SwapDeclineApi, SwapDetailApi, SwapListApi

urlpatterns = [
    path("swaps", SwapListApi.as_view(), name="swaps"),
    path("swaps/candidates", CandidatesApi.as_view(), name="swap-candidates"),
    path("swaps/<int:swap_id>", SwapDetailApi.as_view(), name="swap-detail"),
    path("swaps/<int:swap_id>/accept", SwapAcceptApi.as_view(), name="swap-accept"),
    path("swaps/<int:swap_id>/decline", SwapDeclineApi.as_view(), name="swap-decline"),
    path("swaps/<int:swap_id>/cancel", SwapCancelApi.as_view(), name="swap-cancel"),
]
