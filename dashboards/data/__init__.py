"""The one data layer of the dashboards and the citizen API: the only code touching ClickHouse and commands.

Pages and routes ask `SiteData` for named, parameterised, cached queries scoped to a unit of their site.
"""

from dashboards.data.cache import TtlCache
from dashboards.data.commands import (
    CommandError,
    CommandSender,
    Delivery,
    KafkaCommandSender,
    MemoryCommandSender,
    close_senders,
    command_partition,
    episode_key,
    sender_for,
)
from dashboards.data.privacy import PERSONAL_FIELDS, mask_rows
from dashboards.data.queries import CITIZEN_API, QUERIES, Query
from dashboards.data.site import Headline, NotAllowed, Rows, SiteData
from dashboards.data.source import SourceError, close_all, warehouse_for

__all__ = [
    "CITIZEN_API",
    "PERSONAL_FIELDS",
    "QUERIES",
    "CommandError",
    "CommandSender",
    "Delivery",
    "Headline",
    "KafkaCommandSender",
    "MemoryCommandSender",
    "NotAllowed",
    "Query",
    "Rows",
    "SiteData",
    "SourceError",
    "TtlCache",
    "close_all",
    "close_senders",
    "command_partition",
    "episode_key",
    "mask_rows",
    "sender_for",
    "warehouse_for",
]
