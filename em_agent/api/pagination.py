import re
from collections import OrderedDict

from django.utils.translation import gettext as _
from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from em_agent.api.inputs import single_query_values

# What CursorPagination makes (base64 of a short query string), as the schema states it.
_CURSOR = re.compile(r"[A-Za-z0-9+/=]{1,200}", re.ASCII)


def _INVALID_CURSOR() -> str:  # noqa: N802  (a message, read in the request's language)
    return _("This cursor is not valid: use the `next` link as given.")


class CursorPagination(pagination.CursorPagination):
    """The contract's list shape: {"results": [...], "next": url|null}, newest first.

    Stricter than DRF's: a page size outside 1..200 or not a number, and a cursor the server did not
    make, are 400 (DRF falls back to the default size and answers 404 to a bad cursor)."""

    # The id is unique and grows with time: rows created in one operation share created_at.
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        errors = single_query_values(
            request.query_params, (self.cursor_query_param, self.page_size_query_param)
        )
        if errors:
            raise serializers.ValidationError(errors)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise serializers.ValidationError(
                {
                    self.page_size_query_param: [
                        _("A whole number from 1 to %(max)d.") % {"max": self.max_page_size}
                    ]
                }
            )
        return int(raw)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None and not _CURSOR.fullmatch(encoded):
            raise serializers.ValidationError({self.cursor_query_param: [_INVALID_CURSOR()]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            cursor = None
        else:
            # The position is compared with ids: anything but a whole number is not one we made.
            if cursor is None or cursor.position is None or cursor.position.isdigit():
                return cursor
        raise serializers.ValidationError({self.cursor_query_param: [_INVALID_CURSOR()]})

    def get_paginated_response(self, data):
        return Response(OrderedDict([("results", data), ("next", self.get_next_link())]))

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "nullable": True, "format": "uri"},
            },
        }
