"""Both push transports, built alike, for the tests that must hold for each (FCM_TRANSPORT)."""

from notifications.push import TRANSPORTS, FcmGateway
from notifications.push_async import AsyncFcmGateway

__all__ = ["TRANSPORTS", "build_gateway", "close_gateway"]


def build_gateway(transport: str, app, *, send_url: str, **options) -> FcmGateway | AsyncFcmGateway:
    if transport == "async":
        return AsyncFcmGateway(app, send_url=send_url, **options)
    assert transport == "sdk", transport
    return FcmGateway(app, send_url=send_url, **options)


def close_gateway(gateway) -> None:
    close = getattr(gateway, "close", None)
    if close is not None:
        close()
