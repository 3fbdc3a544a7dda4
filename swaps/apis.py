"""The swap endpoints of API.md's "Swaps" section: thin views over swaps.services and swaps.selectors."""

import datetime as dt
from collections.abc import Callable

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from em_agent.api import inputs
from em_agent.api.docs import (
    BODY_ERRORS,
    PAGINATION,
    PAGINATION_RULES,
    ErrorOutput,
    error_responses,
    operation_extensions,
    paginated,
)
from em_agent.api.fields import AwareDateTimeField, DateField
from em_agent.api.pagination import CursorPagination
from em_agent.api.views import AgentAPIView
from swaps.eligibility import CODES, NotEligible, Shift
from swaps.models import API_STATUSES, STATUS_BY_API_NAME, Swap, SwapKind
from swaps.selectors import swap_candidates_for_agent, swap_get_for_agent, swap_list_for_agent
from swaps.services import (
    swap_accept,
    swap_cancel,
    swap_decline,
    swap_offer_create,
)

_VIOLATION_EXAMPLE = {"code": "skill_missing", "detail": "Bram lacks skills the shift needs."}
# The swap section's own error codes, beside em_agent.api.docs' shared catalog (not added to it: an
# import of this module must not change what other endpoints document).
SWAP_ERRORS: dict[str, tuple[int, dict]] = {
    "not_eligible": (
        409,
        {
            "code": "not_eligible",
            "detail": "This swap is not allowed: Bram lacks skills the shift needs.",
            "violations": [_VIOLATION_EXAMPLE],
        },
    ),
    "swap_not_open": (
        409,
        {"code": "swap_not_open", "detail": "This swap offer is no longer open (completed)."},
    ),
    "swap_expired": (409, {"code": "swap_expired", "detail": "This swap offer has expired."}),
    "swap_pending": (
        409,
        {
            "code": "swap_pending",
            "detail": "This shift is already offered in another open swap; cancel that one first.",
        },
    ),
    "own_swap": (409, {"code": "own_swap", "detail": "You cannot accept your own swap offer."}),
    "not_requester": (
        409,
        {"code": "not_requester", "detail": "Only the colleague who offered the swap can cancel it."},
    ),
    "already_answered": (
        409,
        {"code": "already_answered", "detail": "You have already answered this swap offer."},
    ),
}


# How far ahead a shift can be offered (the WFM publishes weeks, not years, ahead).
HORIZON_DAYS = 365
_DATE_RULE = f"From today (the caller's zone) to {HORIZON_DAYS} days ahead."


def _check_dates(attrs: dict, *names: str) -> None:
    today = timezone.localdate()  # the active zone is the caller's (AgentAPIView)
    last = today + dt.timedelta(days=HORIZON_DAYS)
    errors = {
        name: [_("Choose a day from today to %(days)d days ahead.") % {"days": HORIZON_DAYS}]
        for name in names
        if name in attrs and not today <= attrs[name] <= last
    }
    if errors:
        raise serializers.ValidationError(errors)


class ViolationOutput(serializers.Serializer):
    code = serializers.ChoiceField(choices=CODES, help_text="Stable.")
    detail = serializers.CharField(help_text="In the request's language.")


class SwapErrorOutput(ErrorOutput):
    violations = ViolationOutput(
        many=True, required=False, help_text="With `not_eligible`: what stops the swap."
    )


def _errors(*codes: str) -> dict:
    """error_responses for the shared codes, with the swap codes added to their status's answer
    (a 409 body may carry `violations`)."""
    responses = error_responses(*(code for code in codes if code not in SWAP_ERRORS))
    for code in codes:
        if code not in SWAP_ERRORS:
            continue
        status_code, example = SWAP_ERRORS[code]
        found = responses.get(status_code)
        described = str(found.description) + ", " if found is not None and found.description else ""
        responses[status_code] = OpenApiResponse(
            response=ErrorOutput,
            description=f"{described}`{code}`",
            examples=[
                *(found.examples if found is not None else []),
                OpenApiExample(code, value=example, response_only=True, status_codes=[str(status_code)]),
            ],
        )
    if 409 in responses:
        conflict = responses[409]
        responses[409] = OpenApiResponse(
            response=SwapErrorOutput, description=conflict.description, examples=conflict.examples
        )
    return dict(sorted(responses.items()))


class _SwapAPIView(AgentAPIView):
    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, NotEligible):
            response.data["violations"] = exc.violations
        return response


# --- output ----------------------------------------------------------------------------------------


class AgentRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class _CodeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    color = serializers.CharField()


class ShiftActivityOutput(serializers.Serializer):
    activity_code = _CodeOutput()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    note = serializers.CharField()


class ShiftOutput(serializers.Serializer):
    date = serializers.DateField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    activities = ShiftActivityOutput(many=True)


# One field of each kind, used as functions: building a ShiftOutput per shift deep-copies its
# fields, which dominated a candidates answer of a thousand colleagues (measured: 2.4 s of 5).
_INSTANT = serializers.DateTimeField()
_DATE = serializers.DateField()


def _shift(snapshot: dict | None) -> dict | None:
    """A kept shift as the API shows it (ShiftOutput's shape), instants in the reader's zone."""
    if not snapshot or not snapshot["activities"]:
        return None
    activities = [
        {
            "activity_code": {
                "code": a["code"],
                "name": a["name"],
                "category": a["category"],
                "color": a["color"],
            },
            "start": dt.datetime.fromisoformat(a["start"]),
            "end": dt.datetime.fromisoformat(a["end"]),
            "note": a["note"],
        }
        for a in snapshot["activities"]
    ]
    return {
        "date": _DATE.to_representation(dt.date.fromisoformat(snapshot["date"])),
        "start": _INSTANT.to_representation(activities[0]["start"]),
        "end": _INSTANT.to_representation(max(a["end"] for a in activities)),
        "activities": [
            {
                **a,
                "start": _INSTANT.to_representation(a["start"]),
                "end": _INSTANT.to_representation(a["end"]),
            }
            for a in activities
        ],
    }


@extend_schema_field(ShiftOutput(allow_null=True))
class _ShiftField(serializers.Field):
    def to_representation(self, value):
        return _shift(value)

    def get_attribute(self, instance):
        return instance


class _OfferedShiftField(_ShiftField):
    def to_representation(self, value: Swap):
        return _shift(value.offered_shift)


class _AskedShiftField(_ShiftField):
    def to_representation(self, value: Swap):
        """The taker's shift once taken; before, the reader's own (a recipient) or the only
        recipient's; null for a give-away or a board offer nobody took yet."""
        if value.kind == SwapKind.GIVE_AWAY:
            return None
        if value.taker_shift:
            return _shift(value.taker_shift)
        recipients = list(value.recipients.all())
        reader = self.context.get("agent")
        mine = [r for r in recipients if reader is not None and r.agent_id == reader.pk]
        if mine:
            return _shift(mine[0].shift)
        return _shift(recipients[0].shift) if len(recipients) == 1 else None


class RecipientOutput(serializers.Serializer):
    agent = AgentRefOutput()
    answer = serializers.ChoiceField(choices=["pending", "accepted", "declined", "unavailable"])
    answered_at = serializers.DateTimeField(allow_null=True)
    shift = serializers.SerializerMethodField(
        help_text="Its shift on `their_date` when offered; null for a give-away."
    )

    @extend_schema_field(ShiftOutput(allow_null=True))
    def get_shift(self, recipient) -> dict | None:
        return _shift(recipient.shift)


class SwapOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=SwapKind.choices)
    status = serializers.ChoiceField(choices=API_STATUSES, source="api_status")
    status_reason = serializers.SerializerMethodField()
    date = serializers.DateField(help_text="The requester's day offered.")
    their_date = serializers.DateField(allow_null=True, help_text="The day taken back; null for a give-away.")
    open = serializers.BooleanField(help_text="On the swap board.")
    message = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    requester = AgentRefOutput()
    taker = AgentRefOutput(allow_null=True)
    offered_shift = _OfferedShiftField(help_text="The requester's shift as it was when offered.")
    asked_shift = _AskedShiftField(
        help_text="The shift taken back, as it was when offered; null for a give-away."
    )
    recipients = serializers.SerializerMethodField(
        help_text=(
            "Each colleague the offer went to, with its answer: all of them for the requester, "
            "only the reader's own row for anyone else."
        )
    )

    def get_status_reason(self, swap: Swap) -> str:
        return swap.reason_text()

    @extend_schema_field(RecipientOutput(many=True))
    def get_recipients(self, swap: Swap) -> list[dict]:
        # A colleague learns nothing of the others the offer went to (their answers, their shifts).
        reader = self.context.get("agent")
        rows = list(swap.recipients.all())
        if reader is None or reader.pk != swap.requester_id:
            rows = [row for row in rows if reader is not None and row.agent_id == reader.pk]
        return list(RecipientOutput(rows, many=True).data)


SHIFT_EXAMPLE = {
    "date": "2026-12-08",
    "start": "2026-12-08T09:00:00+01:00",
    "end": "2026-12-08T17:00:00+01:00",
    "activities": [
        {
            "activity_code": {"code": "PHONE", "name": "Phone", "category": "work", "color": "#4A90D9"},
            "start": "2026-12-08T09:00:00+01:00",
            "end": "2026-12-08T17:00:00+01:00",
            "note": "",
        }
    ],
}
SWAP_EXAMPLE = {
    "id": 17,
    "kind": "swap",
    "status": "open",
    "status_reason": "",
    "date": "2026-12-08",
    "their_date": "2026-12-08",
    "open": False,
    "message": "Dentist in the morning",
    "expires_at": "2026-12-08T07:00:00+01:00",
    "created_at": "2026-12-03T10:12:00+01:00",
    "requester": {"id": 4, "name": "Alice"},
    "taker": None,
    "offered_shift": SHIFT_EXAMPLE,
    "asked_shift": {
        **SHIFT_EXAMPLE,
        "start": "2026-12-08T13:00:00+01:00",
        "end": "2026-12-08T21:00:00+01:00",
    },
    "recipients": [
        {"agent": {"id": 5, "name": "Bram"}, "answer": "pending", "answered_at": None, "shift": None}
    ],
}

_READ_LINK = {"operationId": "swaps_read", "parameters": {"swap_id": "$response.body#/id"}}
_LINKS = {
    "ReadSwap": _READ_LINK,
    "AcceptSwap": {"operationId": "swaps_accept", "parameters": {"swap_id": "$response.body#/id"}},
    "DeclineSwap": {"operationId": "swaps_decline", "parameters": {"swap_id": "$response.body#/id"}},
    "CancelSwap": {"operationId": "swaps_cancel", "parameters": {"swap_id": "$response.body#/id"}},
}
_GATE = ("activation_required", "mfa_enrollment_required")


# --- candidates ------------------------------------------------------------------------------------


# Without the activities, which the swap shows once offered (`asked_shift`): every colleague of a
# large organisation with their activities ran to 300 KB for the phone to fetch and parse.
class CandidateShiftOutput(serializers.Serializer):
    """A colleague's shift: its day and times (its activities: the swap's `asked_shift`)."""

    date = serializers.DateField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class CandidateOutput(serializers.Serializer):
    agent = AgentRefOutput()
    shift = CandidateShiftOutput(
        allow_null=True,
        help_text="Its shift on `their_date`; null for a give-away or a colleague free that day.",
    )
    eligible = serializers.BooleanField()
    violations = ViolationOutput(many=True)


class CandidatesApi(_SwapAPIView):
    class QueryInput(inputs.QueryInput):
        date = DateField(help_text="The day of the caller's shift (its zone).")
        their_date = DateField(required=False, help_text="The colleagues' day; default: `date`.")
        kind = serializers.ChoiceField(choices=SwapKind.choices, required=False, default=SwapKind.SWAP)
        include = serializers.ChoiceField(choices=["ineligible"], required=False)

        def validate(self, attrs):
            if attrs.get("kind") == SwapKind.GIVE_AWAY and "their_date" in attrs:
                raise serializers.ValidationError({"their_date": [_("A give-away takes no shift back.")]})
            _check_dates(attrs, "date", "their_date")
            return attrs

    @extend_schema(
        operation_id="swaps_candidates",
        summary="Colleagues who may take the caller's shift",
        description=(
            "Same organisation (and team, if the organisation says so), working `their_date` (free that day, "
            "for a give-away), eligible by every rule. `include=ineligible` adds the team's other colleagues "
            "with `eligible: false` and their violations."
        ),
        parameters=[QueryInput],
        responses={200: CandidateOutput(many=True), **_errors("validation_error", "not_eligible", *_GATE)},
        extensions=operation_extensions(
            field_rules={
                "date": _DATE_RULE,
                "their_date": f"Leave out for a give-away (`kind=give_away`). {_DATE_RULE}",
            }
        ),
        examples=[
            OpenApiExample(
                "Candidates",
                value=[
                    {
                        "agent": {"id": 5, "name": "Bram"},
                        "shift": {key: SHIFT_EXAMPLE[key] for key in ("date", "start", "end")},
                        "eligible": True,
                        "violations": [],
                    }
                ],
                response_only=True,
            )
        ],
        tags=["swaps"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        results = swap_candidates_for_agent(
            agent=self.agent,
            date=data["date"],
            their_date=data.get("their_date"),
            kind=data["kind"],
            include_ineligible=data.get("include") == "ineligible",
        )
        instant = _instants()
        return Response(
            [
                {
                    "agent": {"id": c.agent.pk, "name": c.agent.name},
                    "shift": _candidate_shift(c.shift, instant),
                    "eligible": c.eligible,
                    "violations": [v.as_dict() for v in c.violations],
                }
                for c in results
            ]
        )


def _instants() -> Callable[[dt.datetime], str]:
    """DateTimeField's rendering, once per instant: a large organisation's colleagues work the
    same few shift times."""
    seen: dict[dt.datetime, str] = {}

    def instant(value: dt.datetime) -> str:
        text = seen.get(value)
        if text is None:
            text = seen[value] = _INSTANT.to_representation(value)
        return text

    return instant


def _candidate_shift(shift: Shift | None, instant: Callable[[dt.datetime], str]) -> dict | None:
    """CandidateShiftOutput's shape; None for a give-away (no shift back) or a day off."""
    if shift is None or not shift.activities:
        return None
    return {
        "date": _DATE.to_representation(shift.date),
        "start": instant(shift.start),
        "end": instant(shift.end),
    }


# --- offers ----------------------------------------------------------------------------------------


class _OfferInput(inputs.BodyInput):
    date = DateField(help_text="The day of the caller's shift offered (its zone).")
    recipients = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        default=list,
        max_length=200,
        help_text="Agent ids (from the candidates); leave out with `open: true`.",
    )
    open = serializers.BooleanField(
        required=False, default=False, help_text="true: on the swap board, no recipients."
    )
    message = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    expires_at = AwareDateTimeField(required=False, help_text="Earlier than the default expiry.")

    def validate(self, attrs):
        _check_dates(attrs, "date", "their_date")
        return attrs


@extend_schema_field({"type": "string", "enum": ["swap"], "default": "swap"})
class _SwapKindField(serializers.ChoiceField):
    pass


@extend_schema_field({"type": "string", "enum": ["give_away"]})
class _GiveAwayKindField(serializers.ChoiceField):
    pass


class SwapOfferInput(_OfferInput):
    kind = _SwapKindField(choices=["swap"], required=False, default="swap", help_text="Leave out, or `swap`.")
    their_date = DateField(required=False, help_text="The colleague's day taken back; default: `date`.")


class GiveAwayOfferInput(_OfferInput):
    kind = _GiveAwayKindField(choices=["give_away"], help_text="`give_away`: no shift taken back.")


OFFER_INPUT_SCHEMA = PolymorphicProxySerializer(
    component_name="SwapCreateInput",
    serializers=[SwapOfferInput, GiveAwayOfferInput],
    resource_type_field_name=None,
)


class SwapListApi(_SwapAPIView):
    class QueryInput(inputs.QueryInput):
        box = serializers.ChoiceField(
            choices=["board", "incoming", "outgoing"], required=False, default="outgoing"
        )
        status = inputs.CommaListField(choices=API_STATUSES, required=False, help_text="A comma list.")

    @extend_schema(
        operation_id="swaps_list",
        summary="The caller's swaps (incoming, outgoing) or the board's open offers it may take",
        parameters=[
            OpenApiParameter(
                "box",
                {"type": "string", "enum": ["board", "incoming", "outgoing"], "default": "outgoing"},
                description=(
                    "`outgoing`: the caller's offers; `incoming`: offers to it (or taken by it); "
                    "`board`: open board offers it may take."
                ),
            ),
            OpenApiParameter(
                "status",
                {"type": "array", "items": {"type": "string", "enum": API_STATUSES}, "minItems": 1},
                explode=False,
                style="form",
                description="Only these statuses, as a comma list: `open,awaiting_approval`.",
            ),
            *PAGINATION,
        ],
        responses={200: paginated(SwapOutput, "SwapPage"), **_errors("validation_error", *_GATE)},
        extensions=operation_extensions(
            field_rules=PAGINATION_RULES,
            links={
                200: {
                    name: {**link, "parameters": {"swap_id": "$response.body#/results/0/id"}}
                    for name, link in _LINKS.items()
                }
            },
        ),
        examples=[
            OpenApiExample("Swaps", value={"results": [SWAP_EXAMPLE], "next": None}, response_only=True)
        ],
        tags=["swaps"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        statuses = [STATUS_BY_API_NAME[name] for name in query.validated_data.get("status", [])]
        swaps = swap_list_for_agent(agent=self.agent, box=query.validated_data["box"], statuses=statuses)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(swaps, request, view=self)
        return paginator.get_paginated_response(
            SwapOutput(page, many=True, context={"agent": self.agent}).data
        )

    @extend_schema(
        operation_id="swaps_create",
        summary="Offer the caller's shift to chosen colleagues, or on the board",
        request=OFFER_INPUT_SCHEMA,
        responses={
            201: SwapOutput,
            **_errors(*BODY_ERRORS, "not_eligible", "swap_pending", *_GATE),
        },
        extensions=operation_extensions(
            field_rules={
                "date": _DATE_RULE,
                "their_date": _DATE_RULE,
                "recipients": "Colleagues of the caller's organisation; at least one unless `open` is true, none if it is.",
                "expires_at": "In the future and no later than the organisation's default (before the earlier shift).",
                "kind": "The organisation must allow the kind (and the board, for `open`).",
            },
            links={201: _LINKS},
        ),
        examples=[
            OpenApiExample(
                "To a colleague",
                value={
                    "date": "2026-12-08",
                    "their_date": "2026-12-08",
                    "recipients": [5],
                    "message": "Dentist",
                },
                request_only=True,
            ),
            OpenApiExample(
                "A give-away on the board",
                value={"date": "2026-12-08", "kind": "give_away", "open": True},
                request_only=True,
            ),
            OpenApiExample("Offered", value=SWAP_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        tags=["swaps"],
    )
    def post(self, request):
        give_away = isinstance(request.data, dict) and request.data.get("kind") == SwapKind.GIVE_AWAY
        serializer = (GiveAwayOfferInput if give_away else SwapOfferInput)(data=request.data)
        serializer.is_valid(raise_exception=True)
        swap = swap_offer_create(agent=self.agent, **serializer.validated_data)
        return Response(SwapOutput(swap, context={"agent": self.agent}).data, status=201)


class SwapDetailApi(_SwapAPIView):
    @extend_schema(
        operation_id="swaps_read",
        summary="One swap the caller takes part in (or may take from the board)",
        responses={200: SwapOutput, **_errors("not_found", *_GATE)},
        examples=[OpenApiExample("Swap", value=SWAP_EXAMPLE, response_only=True)],
        tags=["swaps"],
    )
    def get(self, request, swap_id: int):
        swap = swap_get_for_agent(agent=self.agent, id=swap_id)
        if swap is None:
            raise NotFound()
        return Response(SwapOutput(swap, context={"agent": self.agent}).data)


def _action_view(name: str, service, summary: str, codes: tuple[str, ...]):
    class SwapActionApi(_SwapAPIView):
        @extend_schema(
            operation_id=f"swaps_{name}",
            summary=summary,
            request=None,
            responses={200: SwapOutput, **_errors("not_found", *codes, *_GATE)},
            extensions=operation_extensions(links={200: {"ReadSwap": _READ_LINK}}),
            examples=[OpenApiExample("Swap", value=SWAP_EXAMPLE, response_only=True)],
            tags=["swaps"],
        )
        def post(self, request, swap_id: int):
            swap = service(agent=self.agent, swap_id=swap_id)
            swap = swap_get_for_agent(agent=self.agent, id=swap.pk) or swap
            return Response(SwapOutput(swap, context={"agent": self.agent}).data)

    SwapActionApi.__name__ = SwapActionApi.__qualname__ = f"Swap{name.title()}Api"
    return SwapActionApi


SwapAcceptApi = _action_view(
    "accept",
    swap_accept,
    "Take the swap: completed at once, or awaiting a supervisor",
    ("swap_not_open", "swap_expired", "schedule_changed", "not_eligible", "own_swap"),
)
SwapDeclineApi = _action_view(
    "decline",
    swap_decline,
    "Not interested: declined when every recipient declined",
    ("swap_not_open", "swap_expired", "own_swap", "already_answered"),
)
SwapCancelApi = _action_view(
    "cancel",
    swap_cancel,
    "The requester withdraws an open swap",
    ("swap_not_open", "swap_expired", "not_requester"),
)
