"""The API's request bodies: pydantic models and the hand-written OpenAPI bodies that refer to them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool

from ...delivery.receipts import RECEIPT_STATUSES
from ...registry import FORMALITIES

#: Most events one batch may carry.
MAX_BATCH = 1000

if TYPE_CHECKING:
    # A Literal of the registers exists only at run time; to mypy they are strings.
    Formality = str
else:
    Formality = Literal[FORMALITIES.names()]
# Event types, categories and channels are the project's own (config/): the profile and the event
# check them against its declarations, so the error names the declared ones.
EventType = Annotated[str, Field(min_length=1, max_length=200)]
Category = Annotated[str, Field(min_length=1, max_length=100)]
Channel = Annotated[str, Field(min_length=1, max_length=100)]
Id = Annotated[str, Field(min_length=1, max_length=200)]


class EventIn(BaseModel):
    """A lifecycle event for one customer."""

    model_config = ConfigDict(extra="forbid", title="Event")

    id: Id | None = Field(
        None,
        description="Your id for the event; a repeat of an id for the same customer is ignored. "
        "Default: a new id.",
    )
    type: EventType = Field(description="An event type declared in the project's config/events.toml.")
    customer_id: Id = Field(description="An existing customer.")
    occurred_at: AwareDatetime | None = Field(None, description="ISO 8601 with a UTC offset. Default: now.")
    data: dict[str, Any] = Field(default_factory=dict, description="Event data the journeys use.")


class CustomerIn(BaseModel):
    """A customer profile. Fields left out are cleared, except consent, which is kept when absent."""

    model_config = ConfigDict(extra="forbid", title="Customer")

    id: Id | None = Field(None, description="Must match the path, or be left out.")
    name: str | None = Field(None, max_length=200, description="Default: given + family name.")
    given_name: str | None = Field(None, max_length=200)
    family_name: str | None = Field(None, max_length=200)
    title: str | None = Field(None, description="ms, mr, mx or dr.")
    gender: str | None = Field(
        None,
        description="feminine, masculine or neutral: the grammatical gender the customer is "
        "addressed in (languages such as Arabic, Hebrew, German, Polish and Russian). Default: "
        "the title's (ms, mr), else words that need none.",
    )
    preferred_name: str | None = Field(
        None, max_length=200, description="The name to address the customer by, if not the whole given name."
    )
    name_order: Literal["given_family", "family_given"] | None = Field(
        None, description="How the customer's own name is written. Default: their locale's order."
    )
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40, description="Digits with an optional leading +.")
    locale: str | None = Field(None, description="pt_BR or pt-BR. Default: en.")
    zone: str | None = Field(None, description="IANA time zone. Default: UTC.")
    country: str | None = Field(None, description="ISO 3166 alpha-2.")
    channel: Channel | None = Field(
        None, description="Preferred channel. Default: none (the country's order, then the step's)."
    )
    formality: Formality | None = Field(None, description="Default: the locale's register.")
    consent: dict[Category, StrictBool] | None = Field(
        None, description="Category → allowed. Left out: the stored consent is kept."
    )
    channel_consent: dict[Channel, StrictBool] | None = Field(
        None, description="Channel → allowed. Left out: the stored channel consent is kept."
    )
    attributes: dict[str, Any] | None = None
    region: str | None = Field(None, max_length=6, description="ISO 3166-2 subdivision, e.g. DE-BY.")
    # Checked by the profile, whose refusal does not repeat the value (religion is special-category data).
    observances: Any = Field(
        None,
        description="Calendars the customer observes: jewish, shabbat, islamic, christian, "
        "christian_orthodox, lunar_new_year, hindu. Left out: the stored ones are kept.",
    )
    latitude: float | None = Field(None, description="Where the customer is, for sun times (with longitude).")
    longitude: float | None = Field(None, description="Where the customer is, for sun times (with latitude).")


class ReceiptIn(BaseModel):
    """A provider's delivery receipt."""

    model_config = ConfigDict(title="Receipt")

    send_id: Id
    status: Literal[RECEIPT_STATUSES]  # type: ignore[valid-type]
    detail: str = Field("", max_length=2000)


#: ``POST /v1/events`` reads its body by hand (one event or a batch); OpenAPI gets it spelled out.
EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {
                            "type": "object",
                            "title": "EventBatch",
                            "required": ["events"],
                            "additionalProperties": False,
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_BATCH,
                                    "items": {"$ref": "#/components/schemas/Event"},
                                }
                            },
                        },
                    ]
                }
            }
        },
    }
}
#: ``POST /v1/receipts/{channel}`` reads the raw body (its signature covers the exact bytes).
RECEIPT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Receipt"}}},
    },
    "parameters": [
        {
            "name": "X-Outreach-Signature",
            "in": "header",
            "required": True,
            "description": "sha256=<hex HMAC-SHA256 of the exact body, keyed with the channel's secret>",
            "schema": {"type": "string"},
        }
    ],
}
#: Schemas the hand-written request bodies refer to (added to the OpenAPI components).
EXTRA_SCHEMAS: dict[str, type[BaseModel]] = {"Event": EventIn, "Receipt": ReceiptIn}
