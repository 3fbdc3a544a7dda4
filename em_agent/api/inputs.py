"""Input as strict as the schema says: JSON types as declared (DRF would coerce `0` into `"0"` and
`"true"` into True), query parameters given once and never empty, and bodies whose shape depends on
one field (`action`, `kind`) validated by that shape's serializer.

The OpenAPI schema is what the app's client is generated from and what the fuzzer checks: whatever
it calls invalid must be refused here, or a generated client and the server disagree."""

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

_NOT_STRING = _("Must be a string.")
_NOT_INTEGER = _("Must be a whole number.")
_NOT_BOOLEAN = _("Must be true or false.")
_NOT_LIST = _("Must be a list.")
_NOT_OBJECT = _("Must be an object.")


def _json_type_error(field: serializers.Field, value: Any) -> Any:
    """The message(s) if `value` is not the JSON type the field declares; None when it is.

    Null is left to the field (its allow_null decides)."""
    if value is None:
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else [_NOT_BOOLEAN]
    if isinstance(field, serializers.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else [_NOT_INTEGER]
    if isinstance(field, serializers.ListSerializer):
        if not isinstance(value, list):
            return [_NOT_LIST]
        return _items_errors(field.child, value) if field.child is not None else None
    if isinstance(field, serializers.ListField):
        if not isinstance(value, list):
            return [_NOT_LIST]
        return _items_errors(field.child, value)
    if isinstance(field, serializers.DictField):
        if not isinstance(value, dict):
            return [_NOT_OBJECT]
        errors = {key: error for key, item in value.items() if (error := _json_type_error(field.child, item))}
        return errors or None
    if isinstance(field, serializers.Serializer):
        if not isinstance(value, dict):
            return [_NOT_OBJECT]
        return _object_errors(field, value) or None
    # Strings, choices, dates, times, datetimes: every one of them is a JSON string.
    if isinstance(
        field,
        serializers.CharField
        | serializers.ChoiceField
        | serializers.DateField
        | serializers.DateTimeField
        | serializers.TimeField,
    ):
        return None if isinstance(value, str) else [_NOT_STRING]
    return None


def _items_errors(child: serializers.Field, items: list) -> Any:
    errors = {
        str(index): error for index, item in enumerate(items) if (error := _json_type_error(child, item))
    }
    return errors or None


def _object_errors(serializer: serializers.Serializer, data: Mapping) -> dict[str, Any]:
    return {
        name: error
        for name, field in serializer.fields.items()
        if not field.read_only and name in data and (error := _json_type_error(field, data[name]))
    }


class BodyInput(serializers.Serializer):
    """A JSON request body: every field's JSON type is checked before DRF converts anything."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = _object_errors(self, data)
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


_REPEATED = _("Give this parameter once.")
_BLANK = _("This parameter may not be empty; leave it out instead.")


def single_query_values(query: QueryDict, names) -> dict[str, list[str]]:
    """Errors for the named query parameters that are repeated or empty. A parameter given twice
    would otherwise be read as its last value, and an empty one as absent: neither is what the
    schema allows, so the server must not guess."""
    errors: dict[str, list[str]] = {}
    for name in names:
        values = query.getlist(name)
        if len(values) > 1:
            errors[name] = [str(_REPEATED)]
        elif values and values[0] == "":
            errors[name] = [str(_BLANK)]
    return errors


class QueryInput(serializers.Serializer):
    """Query parameters: each declared one at most once and never empty (see single_query_values)."""

    def to_internal_value(self, data):
        if isinstance(data, QueryDict):
            errors = single_query_values(data, self.fields)
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class CommaListField(serializers.Field):
    """A comma list of closed values (`?status=pending,approved`): an array with `explode: false` in
    the schema. Every item must be one of the choices; the list is never empty."""

    default_error_messages = {
        "invalid_choice": _("Unknown value: %(values)s"),
        "empty": _("Give at least one value."),
    }

    def __init__(self, *, choices, **kwargs) -> None:
        self.choices = list(choices)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> list[str]:
        if not isinstance(data, str):
            raise serializers.ValidationError(str(_NOT_STRING))
        values = data.split(",")
        if not data or any(value == "" for value in values):
            self.fail("empty")
        unknown = sorted(set(values) - set(self.choices))
        if unknown:
            self.fail("invalid_choice", values=", ".join(unknown))
        return list(dict.fromkeys(values))

    def to_representation(self, value) -> str:
        return ",".join(value)


def discriminated(
    data: Any, *, field: str, serializers_by_value: Mapping[str, type[serializers.Serializer]], context=None
) -> dict:
    """Validates a body whose shape depends on one field (`action`, `kind`): the serializer of that
    value validates it, with that shape's required fields. An unknown or missing value is refused on
    the field itself, so the app learns which shapes there are."""
    value = data.get(field) if isinstance(data, Mapping) else None
    serializer_class = serializers_by_value.get(value) if isinstance(value, str) else None
    if serializer_class is None:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {"non_field_errors": [str(_("Invalid data. Expected a dictionary."))]}
            )
        choices = ", ".join(serializers_by_value)
        if value is None:
            message = str(
                _("This field is required.") if field not in data else _("This field may not be null.")
            )
        else:
            message = str(_("Must be one of: %(choices)s.")) % {"choices": choices}
        raise serializers.ValidationError({field: [message]})
    serializer = serializer_class(data=data, context=context or {})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
