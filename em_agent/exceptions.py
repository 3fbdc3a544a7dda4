"""The one domain exception. Services raise it; the API renders it as the contract's error body."""

from rest_framework import status


class ApplicationError(Exception):
    """The one domain exception: services raise it, the handler renders it as the contract's body."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status_code = status_code
        self.fields = fields
        self.headers = headers or {}
