"""What the generated data looks like: record counts, the org's custom attributes, the pools names and words are
drawn from, and the time span records are created and updated in."""

from __future__ import annotations

from .wire import epoch_ms

# Record counts; each `kobject.<klassName>` key defines one klass and how many kobjects it holds.
DEFAULT_SIZES: dict[str, int] = {
    "customers": 250, "companies": 120, "conversations": 300, "messages": 650, "notes": 180, "users": 520,
    "teams": 15, "tags": 140, "brands": 3, "shortcuts": 110, "routing/queues": 4, "satisfaction": 2, "audit-logs": 120,
    "kobject.order": 230, "kobject.subscription": 40, "kobject.return-request": 0,
    "schedules": 3,
    # Routing (agents' shifts and the conversations routed to them), SLAs, knowledge base, snooze options, holidays.
    "routing/statuses": 7, "routing/work-sessions": 300, "routing/work-items": 380, "slas": 4, "kb/categories": 10,
    "kb/articles": 40, "snoozes": 6, "holidays": 8,
}
# Configuration-like streams keep their size under --scale.
UNSCALED = {"teams", "brands", "routing/queues", "satisfaction", "schedules", "routing/statuses", "slas",
            "kb/categories", "snoozes", "holidays"}

# Custom attributes (GET /v1/metadata/<resource>): name -> metadata `type`. The records' `custom` keys follow these;
# an entry with `deletedAt` is an attribute removed from the org, which the data no longer has.
METADATA = {
    "customer": {"totalSpentNum": "number", "vipBool": "boolean", "tierStr": "string", "notesTxt": "text",
                 "lastOrderAt": "date", "loyaltyIdStr": {"type": "string", "deletedAt": "2022-05-01T00:00:00.000Z"}},
    "conversation": {"orderNumberStr": "string", "refundBool": "boolean", "contactReasonTree": "tree"},
    "message": {},
    "company": {"industryStr": "string", "seatsNum": "number", "websiteUrl": "url"},
}
# What GET /v1/metadata/<resource> says about some attributes besides type and displayName (Kustomer's example:
# `enumeration` an array of strings, `target` and `multi` on a lookup). Every other property gets `multi: false`.
METADATA_DETAILS = {
    "customer": {"tierStr": {"enumeration": ["bronze", "silver", "gold"]}},
    "conversation": {"orderNumberStr": {"target": "kobject.order", "multi": False}},
    "company": {"industryStr": {"enumeration": ["retail", "travel", "software"]}},
    "kobject": {"statusStr": {"enumeration": ["new", "shipped", "cancelled"]}},  # every klass
}
# Custom attributes of each klass's kobjects (metadata resource `kobject.<klass>`); klasses not named: DEFAULT_KLASS.
KLASS_FIELDS = {"subscription": {"planStr": "string", "seatsNum": "number", "renewsAt": "date", "activeBool": "boolean"}}
DEFAULT_KLASS = {"statusStr": "string", "amountNum": "number"}
AUDIT_OBJECTS = ("conversation", "customer", "message")  # whose updates the seeded audit log records

FIRST = "Ana Ben Chloe Dev Emma Farid Grace Hiro Ines Jamal Kai Lena Mateo Nora Omar Priya Quinn Rosa Sam".split()
LAST = "Smith Garcia Chen Okafor Müller Rossi Kim Nguyen Silva Novak Haddad Jensen Patel Cohen Byrne".split()
WORDS = "order refund shipping delay lock battery invoice account password upgrade return warranty".split()
COLORS = "red orange yellow green teal blue purple pink gray".split()
CHANNELS = ["email", "chat", "sms", "voice"]
# Routing statuses: the built-in ones (system: true) first, then the org's own; (name, statusType, routable).
ROUTING_STATUSES = [("Available", "available", True), ("Busy", "busy", False), ("Unavailable", "unavailable", False),
                    ("Offline", "offline", False), ("Lunch", "unavailable", False), ("Chat only", "available", True),
                    ("Training", "busy", False)]
SYSTEM_STATUSES = 4
WORK_ITEM_STATUSES = ("queued", "routed", "assigned", "wrap-up", "completed")
# Snooze options: (name, type, value); `relative` a duration in ms, `absolute` an epoch-ms time, `dynamic` an object.
SNOOZES = [("1 Hour", "relative", 3_600_000), ("Tomorrow", "dynamic", {"day": {"type": "tomorrow", "value": ""},
                                                                     "time": "09:00 am"}),
           ("2 Hours", "relative", 7_200_000), ("Next Monday", "dynamic", {"day": {"type": "weekday", "value": "monday"},
                                                                           "time": "09:00 am"}),
           ("Black Friday", "absolute", 1795737600000), ("1 Week", "relative", 604_800_000)]
HOLIDAYS = [("New Year's Day", 1, 1), ("Independence Day", 7, 4), ("Labor Day", 9, 7), ("Thanksgiving", 11, 26),
            ("Christmas", 12, 25), ("Company offsite", 3, 12), ("Boxing Day", 12, 26), ("May Day", 5, 1)]
ATTACHMENT_FILES = [("photo.jpg", "image/jpeg"), ("receipt.pdf", "application/pdf"), ("screenshot.png", "image/png"),
                    ("order-details.txt", "text/plain"), ("invoice.pdf", "application/pdf")]
# SLA first-response targets (ms) by conversation priority "1".."5", of an SLA's first version; each later version
# tightens them by a quarter of the first's.
SLA_FIRST_RESPONSE = {"1": 28_800_000, "2": 14_400_000, "3": 7_200_000, "4": 3_600_000, "5": 1_800_000}

CREATED_FROM, UPDATED_FROM, OLD, UPDATED_TO = (epoch_ms(*d) for d in ((2019, 1, 1), (2021, 1, 1), (2024, 1, 1),
                                                                      (2026, 10, 1)))
ORG_CREATED, MAX_AGE = epoch_ms(2018, 1, 1), 3 * 365 * 86400_000  # records are at most ~3 years old when updated


def scaled_sizes(scale: float) -> dict[str, int]:
    return {k: v if k in UNSCALED else round(v * scale) for k, v in DEFAULT_SIZES.items()}
